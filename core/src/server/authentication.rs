//! Who a user's SIP connection is: digest authentication (RFC 3261 section 22, RFC 8760) of the
//! connection, once, by the first request that proves an account's password (a REGISTER, as
//! clients do, or any other request carrying credentials).
//!
//! - A request on a connection that has not authenticated is answered `401` with one
//!   `WWW-Authenticate` per [`Algorithm::OFFERED`] (MD5 first, for the clients that answer the
//!   first challenge whatever it says), realm = the SIP domain, `qop="auth"`, and a nonce bound to
//!   the connection ([`NonceKey`]): nothing is written per challenge.
//! - Credentials are checked against the account's verifiers. A nonce issued to another
//!   connection (a replayed `Authorization`, or one made up) is answered with a fresh challenge; an
//!   expired one with `stale=true`; a wrong password counts a failure for the user and for the
//!   connection ([`Throttle`]), and once either is used up every attempt is refused with `403` and
//!   `Retry-After` until it opens again.
//! - Success records the connection as the address of record (`conn/<id>`,
//!   [`ConnectionRole::Sip`]). From then on every request on it acts as that user only: a From (or
//!   a REGISTER's To) naming anyone else is `403`. The connection is never authenticated again, so
//!   credentials that worked once on it give nothing to anyone who replays them elsewhere.

use super::common::{self, ConnectionRecord, ConnectionRole, SESSION_IDLE_SECS};
use super::engine::{Interrupt, Tx};
use crate::accounts::{
    self, Account, CONNECTION_THROTTLE, Throttle, ThrottlePolicy, USER_THROTTLE,
};
use crate::digest::{Algorithm, Challenge, Credentials, NonceError, NonceKey};
use crate::server_config::ServerConfig;
use crate::sip::{Method, SipMessage, SipUri};
use crate::store::keys;

/// Why a request is not taken as its user's.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Refused {
    /// Answered 401 with a fresh challenge (`stale` set when only the nonce had expired).
    Challenge { stale: bool, why: String },
    /// Answered 403.
    Forbidden(String),
    /// Answered 403 with `Retry-After`.
    Throttled { retry_after_secs: u64 },
    /// Answered 400.
    Malformed(String),
}

/// The address of record `connection` is authenticated as, if it is.
pub fn identity(tx: &mut Tx<'_>, connection: &str) -> Result<Option<String>, Interrupt> {
    Ok(
        match tx.record::<ConnectionRecord>(&keys::connection(connection))? {
            Some(ConnectionRecord {
                role: ConnectionRole::Sip { aor },
                ..
            }) => Some(aor),
            _ => None,
        },
    )
}

/// The address of record the request acts for: the user `request` names (a REGISTER's To, any
/// other request's From), if `connection` is authenticated as that user, or becomes so by the
/// request's credentials. Otherwise the request has been answered (401, 403 or 400) and the
/// result is `None`; an ACK, which is never answered, is dropped.
pub fn authenticate(
    tx: &mut Tx<'_>,
    config: &ServerConfig,
    connection: &str,
    request: &SipMessage,
) -> Result<Option<String>, Interrupt> {
    let named = if *request.method() == Method::Register {
        request.to().uri()
    } else {
        request.from().uri()
    };
    let outcome = match (identity(tx, connection)?, common::aor_of(named)) {
        (_, None) => Err(Refused::Malformed(format!(
            "{} has no user part",
            if *request.method() == Method::Register {
                "To"
            } else {
                "From"
            }
        ))),
        (Some(known), Some(aor)) if known == aor => Ok(aor),
        (Some(known), Some(_)) => Err(Refused::Forbidden(format!(
            "this connection is authenticated as {known}"
        ))),
        (None, Some(aor)) => prove(tx, config, connection, request, named, aor)?,
    };
    match outcome {
        Ok(aor) => Ok(Some(aor)),
        Err(refused) => {
            answer(tx, config, connection, request, &refused);
            Ok(None)
        }
    }
}

/// Checks the request's credentials for `aor`; on success records the connection as `aor`.
fn prove(
    tx: &mut Tx<'_>,
    config: &ServerConfig,
    connection: &str,
    request: &SipMessage,
    named: &SipUri,
    aor: String,
) -> Result<Result<String, Refused>, Interrupt> {
    let Some(header) = request.header("Authorization") else {
        return Ok(Err(Refused::Challenge {
            stale: false,
            why: "sign in: this connection has not authenticated".into(),
        }));
    };
    let credentials = match Credentials::parse(header) {
        Ok(credentials) => credentials,
        Err(error) => {
            return Ok(Err(Refused::Malformed(format!(
                "bad Authorization: {error}"
            ))));
        }
    };
    if credentials.realm != config.domain {
        return Ok(Err(Refused::Challenge {
            stale: false,
            why: format!(
                "the credentials are for another realm than {}",
                config.domain
            ),
        }));
    }
    let user = named.user().unwrap_or_default();
    if credentials.username != user
        || !named
            .host()
            .to_string()
            .eq_ignore_ascii_case(&config.domain)
    {
        return Ok(Err(Refused::Forbidden(format!(
            "the credentials are {}'s, not {aor}'s",
            credentials.username
        ))));
    }
    if !uri_matches(&credentials.uri, request) {
        return Ok(Err(Refused::Malformed(
            "the credentials' uri is not the Request-URI".into(),
        )));
    }
    let nonce_valid = config
        .signing_keys
        .iter()
        .map(|key| NonceKey(key).check(&credentials.nonce, tx.now, connection))
        .find(|checked| *checked != Err(NonceError::Foreign))
        .unwrap_or(Err(NonceError::Foreign));
    match nonce_valid {
        Ok(_) => {}
        Err(NonceError::Stale) => {
            return Ok(Err(Refused::Challenge {
                stale: true,
                why: "the nonce has expired".into(),
            }));
        }
        Err(NonceError::Foreign) => {
            return Ok(Err(Refused::Challenge {
                stale: false,
                why: "the nonce was not issued to this connection".into(),
            }));
        }
    }
    let user_key = keys::user_throttle(user);
    let connection_key = keys::connection_throttle(connection);
    let mut user_throttle = tx.record::<Throttle>(&user_key)?.unwrap_or_default();
    let mut connection_throttle = tx.record::<Throttle>(&connection_key)?.unwrap_or_default();
    if let Err(wait) = user_throttle
        .check(tx.now)
        .and(connection_throttle.check(tx.now))
    {
        return Ok(Err(Refused::Throttled {
            retry_after_secs: wait,
        }));
    }
    let account = if accounts::validate_user_name(user).is_ok() {
        tx.record::<Account>(&keys::account(user))?
    } else {
        None
    };
    let Some(account) = account else {
        // Guessing user names is a failure on the connection, like guessing passwords.
        let locked = fail(
            tx,
            &connection_key,
            &mut connection_throttle,
            CONNECTION_THROTTLE,
        );
        return Ok(Err(match locked {
            Some(wait) => Refused::Throttled {
                retry_after_secs: wait,
            },
            None => Refused::Forbidden(format!("there is no account {user}")),
        }));
    };
    if account.verifiers.realm != config.domain {
        return Ok(Err(Refused::Forbidden(format!(
            "the password of {user} was set for another domain: set it again"
        ))));
    }
    let method = request.method().as_str();
    if !credentials.verifies(account.verifiers.ha1(credentials.algorithm), method) {
        let user_locked = fail(tx, &user_key, &mut user_throttle, USER_THROTTLE);
        let connection_locked = fail(
            tx,
            &connection_key,
            &mut connection_throttle,
            CONNECTION_THROTTLE,
        );
        return Ok(Err(match user_locked.max(connection_locked) {
            Some(wait) => Refused::Throttled {
                retry_after_secs: wait,
            },
            None => Refused::Challenge {
                stale: false,
                why: "wrong user name or password".into(),
            },
        }));
    }
    if user_throttle != Throttle::default() {
        tx.delete(&user_key);
    }
    common::remember_connection(
        tx,
        connection,
        ConnectionRole::Sip { aor: aor.clone() },
        tx.now.unix_secs().saturating_add(SESSION_IDLE_SECS),
    );
    Ok(Ok(aor))
}

/// Counts a failure in `throttle` and writes it; `Some(seconds)` when it locks.
fn fail(
    tx: &mut Tx<'_>,
    key: &str,
    throttle: &mut Throttle,
    policy: ThrottlePolicy,
) -> Option<u64> {
    let locked = throttle.fail(tx.now, policy);
    tx.set_record(key, throttle);
    locked
}

/// Whether the credentials' `uri` names the request's Request-URI (RFC 3261 section 22.4).
fn uri_matches(uri: &str, request: &SipMessage) -> bool {
    match (SipUri::parse(uri), request.request_uri()) {
        (Ok(credentials), Some(target)) => {
            credentials.scheme() == target.scheme()
                && credentials.user() == target.user()
                && credentials
                    .host()
                    .to_string()
                    .eq_ignore_ascii_case(&target.host().to_string())
                && credentials.port() == target.port()
        }
        _ => false,
    }
}

fn answer(
    tx: &mut Tx<'_>,
    config: &ServerConfig,
    connection: &str,
    request: &SipMessage,
    refused: &Refused,
) {
    let (code, why, stale) = match refused {
        Refused::Challenge { stale, why } => (401, why.clone(), *stale),
        Refused::Forbidden(why) => (403, why.clone(), false),
        Refused::Throttled { retry_after_secs } => (
            403,
            format!("too many failed sign-ins: try again in {retry_after_secs} s"),
            false,
        ),
        Refused::Malformed(why) => (400, why.clone(), false),
    };
    let Some(mut response) = common::response_to(tx, request, code, None, Some(&why)) else {
        return;
    };
    if code == 401
        && let Some(key) = config.signing_keys.first()
    {
        let nonce = NonceKey(key).issue(tx.now, connection);
        for algorithm in Algorithm::OFFERED {
            let challenge = Challenge::new(&config.domain, &nonce, algorithm, stale);
            let _ = response.push_header("WWW-Authenticate", &challenge.to_string());
        }
    }
    if let Refused::Throttled { retry_after_secs } = refused {
        let _ = response.push_header("Retry-After", &retry_after_secs.to_string());
    }
    common::send_sip(tx, connection, &response);
}

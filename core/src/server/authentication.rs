//! Who a user's SIP connection is: digest authentication (RFC 3261 section 22, RFC 8760) of the
//! connection, once, by the first request that proves an account's password (a REGISTER, as
//! clients do, or any other request carrying credentials).
//!
//! - A request on a connection that has not authenticated is answered `401` with one
//!   `WWW-Authenticate` per [`Algorithm::OFFERED`](crate::digest::Algorithm::OFFERED) (MD5 first, for the clients that answer the
//!   first challenge whatever it says), realm = the SIP domain, `qop="auth"`, and a nonce bound to
//!   the connection ([`NonceKey`](crate::digest::NonceKey)): nothing is written per challenge.
//! - Credentials are checked against the account's verifiers. A nonce issued to another
//!   connection (a replayed `Authorization`, or one made up) is answered with a fresh challenge; an
//!   expired one, with the right password, with `stale=true`; a wrong password counts a failure for the user and for the
//!   connection ([`Throttle`]), and once either is used up every attempt is refused with `403` and
//!   `Retry-After` until it opens again.
//! - Success records the connection as the address of record (`conn/<id>`,
//!   [`ConnectionRole::Sip`]), with the generation of the account's password: changing the
//!   password or deleting the account signs every such connection out. From then on every request on it acts as that user only: a From (or
//!   a REGISTER's To) naming anyone else is `403`. The connection is never authenticated again, so
//!   credentials that worked once on it give nothing to anyone who replays them elsewhere.

use super::common::{self, ConnectionRecord, ConnectionRole, SESSION_IDLE_SECS};
use super::engine::{Interrupt, Tx};
use crate::accounts::{self, Account, Binding, Counters, SignInRefusal, Throttle};
use crate::digest::Credentials;
use crate::server_config::ServerConfig;
use crate::sip::{Method, SipMessage, SipUri};
use crate::store::keys;

/// The address of record `connection` is authenticated as, if it is, and if the account it
/// proved still has the password it proved (the same generation).
pub fn identity(tx: &mut Tx<'_>, connection: &str) -> Result<Option<String>, Interrupt> {
    let Some(ConnectionRecord {
        role:
            ConnectionRole::Sip {
                aor,
                user,
                generation,
            },
        ..
    }) = tx.record::<ConnectionRecord>(&keys::connection(connection))?
    else {
        return Ok(None);
    };
    let current = tx.record::<Account>(&keys::account(&user))?;
    Ok(current
        .filter(|account| account.generation == generation)
        .map(|_| aor))
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
    let (named, header) = if *request.method() == Method::Register {
        (request.to().uri(), "To")
    } else {
        (request.from().uri(), "From")
    };
    let outcome = match (identity(tx, connection)?, common::aor_of(named)) {
        (_, None) => Err(SignInRefusal::Malformed(format!(
            "{header} has no user part"
        ))),
        (Some(known), Some(aor)) if known == aor => Ok(aor),
        (Some(known), Some(_)) => Err(SignInRefusal::Forbidden(format!(
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
) -> Result<Result<String, SignInRefusal>, Interrupt> {
    let Some(header) = request.header("Authorization") else {
        return Ok(Err(SignInRefusal::sign_in_needed(
            "this connection has not authenticated",
        )));
    };
    let credentials = match Credentials::parse(header) {
        Ok(credentials) => credentials,
        Err(error) => {
            return Ok(Err(SignInRefusal::Malformed(format!(
                "bad Authorization: {error}"
            ))));
        }
    };
    let user = named.user().unwrap_or_default();
    if credentials.username != user
        || !named
            .host()
            .to_string()
            .eq_ignore_ascii_case(&config.domain)
    {
        return Ok(Err(SignInRefusal::Forbidden(format!(
            "the credentials are {}'s, not {aor}'s",
            credentials.username
        ))));
    }
    if !uri_matches(&credentials.uri, request) {
        return Ok(Err(SignInRefusal::Malformed(
            "the credentials' uri is not the Request-URI".into(),
        )));
    }
    let nonce = match accounts::check_nonce(
        &credentials,
        &config.domain,
        &config.signing_keys,
        Binding::Connection(connection),
        tx.now,
    ) {
        Ok(nonce) => nonce,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let user_key = keys::user_throttle(user);
    let connection_key = keys::connection_throttle(connection);
    let before = Counters {
        user: tx.record::<Throttle>(&user_key)?.unwrap_or_default(),
        connection: Some(tx.record::<Throttle>(&connection_key)?.unwrap_or_default()),
    };
    let account = if accounts::validate_user_name(user).is_ok() {
        tx.record::<Account>(&keys::account(user))?
    } else {
        None
    };
    let generation = account.as_ref().map_or(0, |account| account.generation);
    let mut counters = before.clone();
    // A right password with an expired nonce is answered stale=true, and not taken.
    let checked = accounts::check_password(
        &credentials,
        request.method().as_str(),
        account.as_ref(),
        &config.domain,
        &mut counters,
        tx.now,
    )
    .and_then(|()| nonce.refusal());
    if counters.user != before.user {
        if counters.user == Throttle::default() {
            tx.delete(&user_key);
        } else {
            tx.set_record(&user_key, &counters.user);
        }
    }
    if counters.connection != before.connection
        && let Some(throttle) = &counters.connection
    {
        tx.set_record(&connection_key, throttle);
    }
    if let Err(refusal) = checked {
        return Ok(Err(refusal));
    }
    common::remember_connection(
        tx,
        connection,
        ConnectionRole::Sip {
            aor: aor.clone(),
            user: user.to_owned(),
            generation,
        },
        tx.now.unix_secs().saturating_add(SESSION_IDLE_SECS),
    );
    Ok(Ok(aor))
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

/// Answers a refused request: 401 with one challenge per algorithm, 403 (with `Retry-After` when
/// throttled), or 400; the reason as a Warning.
fn answer(
    tx: &mut Tx<'_>,
    config: &ServerConfig,
    connection: &str,
    request: &SipMessage,
    refused: &SignInRefusal,
) {
    let code = match refused {
        SignInRefusal::Challenge { .. } => 401,
        SignInRefusal::Forbidden(_) | SignInRefusal::Throttled { .. } => 403,
        SignInRefusal::Malformed(_) => 400,
        SignInRefusal::Unreadable(_) => 500,
    };
    let why = refused.reason();
    let Some(mut response) = common::response_to(tx, request, code, None, Some(&why)) else {
        return;
    };
    if let SignInRefusal::Challenge { stale, .. } = refused {
        let binding = Binding::Connection(connection);
        let salt = tx.ids().token(8);
        for challenge in accounts::challenges(
            &config.domain,
            &config.signing_keys,
            binding,
            *stale,
            tx.now,
            &salt,
        ) {
            let _ = response.push_header("WWW-Authenticate", &challenge);
        }
    }
    if let SignInRefusal::Throttled { retry_after_secs } = refused {
        let _ = response.push_header("Retry-After", &retry_after_secs.to_string());
    }
    common::send_sip(tx, connection, &response);
}

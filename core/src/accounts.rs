//! Accounts: who may use the service. An account is a user name and the password verifiers of
//! [`crate::digest`] (never the password), stored in the shared store at `account/<user>`
//! ([`crate::store::keys::account`]); [`Throttle`] counts failed sign-ins per user and per
//! connection, so that guessing a password is slow while the real user is kept out for a short
//! while at most.
//!
//! The servers read accounts when a user authenticates (SIP digest on REGISTER, HTTP digest on an
//! upload); the edge creates, changes and deletes them ([`AccountChange`]).

use serde::{Deserialize, Serialize};

use crate::digest::{
    Algorithm, Challenge, Credentials, NONCE_LIFETIME_SECS, NonceError, NonceKey, Verifiers,
};
use crate::first_value::SigningKey;
use crate::store::{Record, StoreOp};
use crate::time::Timestamp;

/// The longest user name, in bytes.
pub const MAX_USER_NAME: usize = 32;

/// An account (`account/<user>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The user name: the user part of the address of record, `sip:<user>@<domain>`.
    pub user: String,
    /// The password's verifiers, for the realm they name.
    pub verifiers: Verifiers,
    /// When the account was created, in Unix seconds.
    pub created: u64,
    /// How many times the password has been changed: the connections signed in with an earlier
    /// one are signed out.
    pub generation: u64,
}

impl Record for Account {
    const VERSION: u32 = 2;
}

/// Why a user name cannot be an account's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UserNameError {
    /// Empty.
    #[error("the user name is empty")]
    Empty,
    /// Longer than [`MAX_USER_NAME`].
    #[error("the user name is longer than {MAX_USER_NAME} characters")]
    TooLong,
    /// A character outside `a-z 0-9 . _ -`, or a first character that is not a letter or digit.
    #[error(
        "a user name is lowercase letters, digits, '.', '_' and '-', starting with a letter or digit"
    )]
    Characters,
}

/// Checks that `user` can name an account: 1 to [`MAX_USER_NAME`] of `a-z 0-9 . _ -`, starting with
/// a letter or digit. One spelling per user (lowercase), and nothing a SIP URI, a store key or a
/// URL path would have to escape.
pub fn validate_user_name(user: &str) -> Result<(), UserNameError> {
    let first = user.bytes().next().ok_or(UserNameError::Empty)?;
    if user.len() > MAX_USER_NAME {
        return Err(UserNameError::TooLong);
    }
    let allowed = |b: u8| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-');
    if !first.is_ascii_alphanumeric() || !user.bytes().all(allowed) {
        return Err(UserNameError::Characters);
    }
    Ok(())
}

/// The body of an account request (`POST /sender/accounts` to create one, `PUT` to change its
/// password): the verifiers, which the client derives from the password it never sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountChange {
    /// The user name.
    pub user: String,
    /// The new password's verifiers, for the deployment's realm (its SIP domain).
    pub verifiers: Verifiers,
}

/// Why an account request is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccountChangeError {
    /// The user name is not valid.
    #[error(transparent)]
    UserName(#[from] UserNameError),
    /// The verifiers are for another realm than this deployment's.
    #[error("the verifiers are for realm {got:?}, this deployment's is {expected:?}")]
    WrongRealm {
        /// The realm they name.
        got: String,
        /// The deployment's.
        expected: String,
    },
    /// A verifier is not a hash of its algorithm's length in lowercase hex.
    #[error("the verifiers are not hashes of the right length in lowercase hex")]
    MalformedVerifiers,
}

impl AccountChange {
    /// The request for `user` with `password`, in `realm`: what a client sends.
    pub fn new(user: &str, realm: &str, password: &str) -> Self {
        Self {
            user: user.to_owned(),
            verifiers: Verifiers::derive(user, realm, password),
        }
    }

    /// The account the request creates (or the one it replaces), at `now`.
    pub fn into_account(self, now: Timestamp) -> Account {
        Account {
            user: self.user,
            verifiers: self.verifiers,
            created: now.unix_secs(),
            generation: 0,
        }
    }

    /// Checks the request against the deployment's realm.
    pub fn validate(&self, realm: &str) -> Result<(), AccountChangeError> {
        validate_user_name(&self.user)?;
        if self.verifiers.realm != realm {
            return Err(AccountChangeError::WrongRealm {
                got: self.verifiers.realm.clone(),
                expected: realm.to_owned(),
            });
        }
        if !self.verifiers.is_well_formed() {
            return Err(AccountChangeError::MalformedVerifiers);
        }
        Ok(())
    }
}

/// How many failed attempts a [`Throttle`] allows, and for how long it then refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures allowed within one window.
    pub failures: u32,
    /// The window failures are counted in, in seconds.
    pub window_secs: u64,
    /// How long every attempt is refused once the failures are used up, in seconds.
    pub lockout_secs: u64,
}

/// Per user: five wrong passwords a minute, then 30 s of refusals. An attacker who guesses keeps
/// the real user out for 30 s at a time at most, and guesses at most ten passwords a minute.
pub const USER_THROTTLE: ThrottlePolicy = ThrottlePolicy {
    failures: 5,
    window_secs: 60,
    lockout_secs: 30,
};

/// Per connection: ten failures, then five minutes of refusals on that connection.
pub const CONNECTION_THROTTLE: ThrottlePolicy = ThrottlePolicy {
    failures: 10,
    window_secs: 300,
    lockout_secs: 300,
};

/// Failed attempts counted for one user or one connection (`throttle/...`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttle {
    /// Failures in the current window.
    pub failures: u32,
    /// When the current window started, in Unix seconds.
    pub window_start: u64,
    /// Until when every attempt is refused, in Unix seconds (0: not locked).
    pub locked_until: u64,
    /// When a sweep may remove the record, in Unix seconds.
    pub expires: u64,
}

impl Record for Throttle {
    const VERSION: u32 = 1;
}

impl Throttle {
    /// `Err(seconds to wait)` while the throttle refuses attempts.
    pub fn check(&self, now: Timestamp) -> Result<(), u64> {
        let now = now.unix_secs();
        if now < self.locked_until {
            Err(self.locked_until - now)
        } else {
            Ok(())
        }
    }

    /// Counts a failure at `now`; returns `Some(seconds)` when this failure locks.
    pub fn fail(&mut self, now: Timestamp, policy: ThrottlePolicy) -> Option<u64> {
        let now = now.unix_secs();
        if now >= self.window_start.saturating_add(policy.window_secs) {
            self.failures = 0;
            self.window_start = now;
        }
        self.failures = self.failures.saturating_add(1);
        self.expires = now
            .saturating_add(policy.window_secs)
            .max(self.locked_until);
        if self.failures >= policy.failures {
            self.failures = 0;
            self.window_start = now;
            self.locked_until = now.saturating_add(policy.lockout_secs);
            self.expires = self.locked_until;
            Some(policy.lockout_secs)
        } else {
            None
        }
    }
}

/// Why a sign-in (digest credentials, or none) is not accepted; SIP and HTTP answer it alike
/// but for the throttle (SIP `403` with `Retry-After`, HTTP `429`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignInRefusal {
    /// Answered `401` with a fresh challenge (`stale` set when only the nonce had expired).
    Challenge {
        /// Whether the nonce had expired and nothing else was wrong.
        stale: bool,
        /// Why, for the answer's reason.
        why: String,
    },
    /// Answered `403`: the credentials are not for what was asked, or there is no such account.
    Forbidden(String),
    /// Too many failures: every attempt is refused for this long.
    Throttled {
        /// Seconds until attempts are taken again.
        retry_after_secs: u64,
    },
    /// Answered `400`: the credentials do not parse.
    Malformed(String),
    /// Answered `500`: the account's record does not decode (the server's own failure).
    Unreadable(String),
}

impl SignInRefusal {
    /// The refusal's reason, as an answer says it.
    pub fn reason(&self) -> String {
        match self {
            Self::Challenge { why, .. }
            | Self::Forbidden(why)
            | Self::Malformed(why)
            | Self::Unreadable(why) => why.clone(),
            Self::Throttled { retry_after_secs } => {
                format!("too many failed sign-ins: try again in {retry_after_secs} s")
            }
        }
    }

    /// The refusal when a request carries no credentials.
    pub fn sign_in_needed(scope: &str) -> Self {
        Self::Challenge {
            stale: false,
            why: format!("sign in: {scope}"),
        }
    }
}

/// What a nonce is issued for: a gateway connection (SIP), or an HTTP route (one request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding<'a> {
    /// A connection, by its gateway id.
    Connection(&'a str),
    /// An HTTP route, by its path.
    Route(&'a str),
}

impl Binding<'_> {
    /// The text a nonce is bound to.
    pub fn key(self) -> String {
        match self {
            Self::Connection(id) => format!("conn:{id}"),
            Self::Route(path) => format!("route:{path}"),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Connection(_) => "this connection",
            Self::Route(_) => "this request",
        }
    }

    /// A nonce for this binding, issued at `now` with the first of `keys`, made unique by `salt`.
    pub fn issue_nonce(self, keys: &[SigningKey], now: Timestamp, salt: &str) -> Option<String> {
        Some(NonceKey(keys.first()?).issue(now, salt, &self.key()))
    }
}

/// What the nonce of credentials is, once one of the server's keys is known to have issued it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonceState {
    /// Within its lifetime; issued at this Unix second.
    Fresh {
        /// When it was issued.
        issued: u64,
    },
    /// Past its lifetime: credentials with the right password are answered `stale=true`, so the
    /// client answers again without asking the user (RFC 7616 section 3.3).
    Stale,
}

impl NonceState {
    /// The refusal of credentials whose password was right, if the nonce was stale.
    pub fn refusal(self) -> Result<(), SignInRefusal> {
        match self {
            Self::Fresh { .. } => Ok(()),
            Self::Stale => Err(SignInRefusal::Challenge {
                stale: true,
                why: "the nonce has expired".into(),
            }),
        }
    }
}

/// The first check of credentials, before any record is read: the realm and the nonce, which one
/// of `keys` must have issued for `binding`. A stale nonce is not refused here: the password is
/// checked first, so that `stale=true` says the password was right.
pub fn check_nonce(
    credentials: &Credentials,
    realm: &str,
    keys: &[SigningKey],
    binding: Binding<'_>,
    now: Timestamp,
) -> Result<NonceState, SignInRefusal> {
    if credentials.realm != realm {
        return Err(SignInRefusal::Challenge {
            stale: false,
            why: format!("the credentials are for another realm than {realm}"),
        });
    }
    let checked = keys
        .iter()
        .map(|key| NonceKey(key).check(&credentials.nonce, now, &binding.key()))
        .find(|checked| *checked != Err(NonceError::Foreign))
        .unwrap_or(Err(NonceError::Foreign));
    match checked {
        Ok(issued) => Ok(NonceState::Fresh { issued }),
        Err(NonceError::Stale) => Ok(NonceState::Stale),
        Err(NonceError::Foreign) => Err(SignInRefusal::Challenge {
            stale: false,
            why: format!("the nonce was not issued for {}", binding.describe()),
        }),
    }
}

/// The failed-attempt counters a sign-in is judged by: the user's, and the connection's where
/// there is one. [`check_password`] changes them; the caller writes back those that changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// The user's counter.
    pub user: Throttle,
    /// The connection's counter, where the sign-in comes over a connection.
    pub connection: Option<Throttle>,
}

impl Counters {
    fn fail(&mut self, now: Timestamp) -> Option<u64> {
        let user = self.user.fail(now, USER_THROTTLE);
        let connection = self
            .connection
            .as_mut()
            .and_then(|throttle| throttle.fail(now, CONNECTION_THROTTLE));
        user.max(connection)
    }
}

/// The second check of credentials whose nonce passed: the throttles, the account, and the
/// response against the account's verifier for `method`. A failure is counted in `counters`; a
/// success clears the user's counter.
pub fn check_password(
    credentials: &Credentials,
    method: &str,
    account: Option<&Account>,
    realm: &str,
    counters: &mut Counters,
    now: Timestamp,
) -> Result<(), SignInRefusal> {
    let locked = counters.user.check(now).and(
        counters
            .connection
            .as_ref()
            .map_or(Ok(()), |throttle| throttle.check(now)),
    );
    if let Err(wait) = locked {
        return Err(SignInRefusal::Throttled {
            retry_after_secs: wait,
        });
    }
    let user = &credentials.username;
    let Some(account) = account.filter(|account| account.user == *user) else {
        // Guessing user names counts on the connection, like guessing passwords.
        let locked = counters
            .connection
            .as_mut()
            .and_then(|throttle| throttle.fail(now, CONNECTION_THROTTLE));
        return Err(match locked {
            Some(wait) => SignInRefusal::Throttled {
                retry_after_secs: wait,
            },
            None => SignInRefusal::Forbidden(format!("there is no account {user}")),
        });
    };
    if account.verifiers.realm != realm {
        return Err(SignInRefusal::Forbidden(format!(
            "the password of {user} was set for another domain: set it again"
        )));
    }
    if !credentials.verifies(account.verifiers.ha1(credentials.algorithm), method) {
        return Err(match counters.fail(now) {
            Some(wait) => SignInRefusal::Throttled {
                retry_after_secs: wait,
            },
            None => SignInRefusal::Challenge {
                stale: false,
                why: "wrong user name or password".into(),
            },
        });
    }
    counters.user = Throttle::default();
    Ok(())
}

/// The `WWW-Authenticate` values of a challenge for `binding`: one per [`Algorithm::OFFERED`], MD5
/// first, realm `realm`, `qop="auth"`, one nonce made unique by `salt` (random hex).
pub fn challenges(
    realm: &str,
    keys: &[SigningKey],
    binding: Binding<'_>,
    stale: bool,
    now: Timestamp,
    salt: &str,
) -> Vec<String> {
    let Some(nonce) = binding.issue_nonce(keys, now, salt) else {
        return Vec::new();
    };
    Algorithm::OFFERED
        .iter()
        .map(|&algorithm| Challenge::new(realm, &nonce, algorithm, stale).to_string())
        .collect()
}

/// What is kept of the HTTP credentials answering one nonce (`nonce/<nonce>`): the highest nonce
/// count taken, so that each answer is taken once (RFC 7616 section 3.4: a replayed `nc` is refused).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonceUse {
    /// The highest `nc` taken.
    pub nc: u32,
    /// When a sweep may remove the record (the nonce's expiry), in Unix seconds.
    pub expires: u64,
}

impl Record for NonceUse {
    const VERSION: u32 = 1;
}

/// An HTTP request's Digest sign-in (RFC 7616), sans I/O: [`HttpSignIn::start`] checks what needs
/// no record, [`HttpSignIn::keys`] names the records to read, [`HttpSignIn::finish`] decides with
/// them and says what to write. The edge's account routes and the FT-HTTP upload share it.
///
/// An HTTP nonce is bound to its route, not to a connection, so each answer to it (each `nc`) is
/// taken once: the store keeps the highest `nc` taken per nonce until the nonce expires, and a
/// request replayed with its `Authorization`, even with another body, is refused.
#[derive(Clone, Debug)]
pub struct HttpSignIn {
    credentials: Credentials,
    method: String,
    nonce: NonceState,
}

/// What the request's realm, keys and route are: what a sign-in is checked against.
#[derive(Clone, Copy, Debug)]
pub struct HttpRealm<'a> {
    /// The realm (the SIP domain).
    pub realm: &'a str,
    /// The keys nonces are issued and checked with.
    pub keys: &'a [SigningKey],
    /// The route the nonce is bound to.
    pub route: &'a str,
}

/// The records an [`HttpSignIn`] is decided with, as read (`None` where absent).
#[derive(Clone, Copy, Debug, Default)]
pub struct HttpSignInRecords<'a> {
    /// The account.
    pub account: Option<&'a [u8]>,
    /// The user's throttle.
    pub throttle: Option<&'a [u8]>,
    /// The nonce's use.
    pub nonce_use: Option<&'a [u8]>,
}

impl HttpSignIn {
    /// Checks the `Authorization` value of a `method` request for `target` (its path and query):
    /// `Digest` credentials for `target`, the realm, and a nonce of this route. Without one the
    /// refusal is a challenge.
    pub fn start(
        authorization: Option<&str>,
        method: &str,
        target: &str,
        realm: HttpRealm<'_>,
        now: Timestamp,
    ) -> Result<Self, SignInRefusal> {
        let Some(authorization) = authorization else {
            return Err(SignInRefusal::sign_in_needed(
                "this request needs an account's password",
            ));
        };
        let credentials = Credentials::parse(authorization)
            .map_err(|error| SignInRefusal::Malformed(format!("bad Authorization: {error}")))?;
        if credentials.uri != target {
            return Err(SignInRefusal::Malformed(
                "the credentials' uri is not the request's".into(),
            ));
        }
        let nonce = check_nonce(
            &credentials,
            realm.realm,
            realm.keys,
            Binding::Route(realm.route),
            now,
        )?;
        Ok(Self {
            credentials,
            method: method.to_owned(),
            nonce,
        })
    }

    /// The user the credentials name.
    pub fn user(&self) -> &str {
        &self.credentials.username
    }

    /// The records to read before [`HttpSignIn::finish`]: the account, the user's throttle and the
    /// nonce's use; `None` for a user name no account can have.
    pub fn keys(&self) -> Option<[String; 3]> {
        let user = self.user();
        validate_user_name(user).ok().map(|()| {
            [
                crate::store::keys::account(user),
                crate::store::keys::user_throttle(user),
                crate::store::keys::nonce_use(&self.credentials.nonce),
            ]
        })
    }

    /// Decides with the records of [`HttpSignIn::keys`]: the user, or the refusal; and the writes
    /// to apply either way (the throttle, the nonce's use), in order.
    pub fn finish(
        self,
        records: HttpSignInRecords<'_>,
        realm: &str,
        now: Timestamp,
    ) -> (Result<String, SignInRefusal>, Vec<StoreOp>) {
        let user = self.user().to_owned();
        let account_key = crate::store::keys::account(&user);
        let account = match records.account.map(|v| Account::decode(&account_key, v)) {
            None => None,
            Some(Ok(account)) => Some(account),
            Some(Err(error)) => {
                return (
                    Err(SignInRefusal::Unreadable(error.to_string())),
                    Vec::new(),
                );
            }
        };
        let nonce_key = crate::store::keys::nonce_use(&self.credentials.nonce);
        let used = records
            .nonce_use
            .and_then(|value| NonceUse::decode(&nonce_key, value).ok());
        if used
            .as_ref()
            .is_some_and(|used| self.credentials.nc <= used.nc)
        {
            return (
                Err(SignInRefusal::Challenge {
                    stale: false,
                    why: "these credentials were used already".into(),
                }),
                Vec::new(),
            );
        }
        let throttle_key = crate::store::keys::user_throttle(&user);
        let before = records
            .throttle
            .and_then(|value| Throttle::decode(&throttle_key, value).ok())
            .unwrap_or_default();
        let mut counters = Counters {
            user: before.clone(),
            connection: None,
        };
        let checked = check_password(
            &self.credentials,
            &self.method,
            account.as_ref(),
            realm,
            &mut counters,
            now,
        )
        .and_then(|()| self.nonce.refusal());
        let mut writes = Vec::new();
        if counters.user != before {
            writes.push(if counters.user == Throttle::default() {
                StoreOp::Delete { key: throttle_key }
            } else {
                StoreOp::Set {
                    key: throttle_key,
                    value: counters.user.encode(),
                }
            });
        }
        if let (Ok(()), NonceState::Fresh { issued }) = (&checked, self.nonce) {
            let taken = NonceUse {
                nc: self.credentials.nc,
                expires: issued.saturating_add(NONCE_LIFETIME_SECS),
            };
            writes.push(StoreOp::Set {
                key: nonce_key,
                value: taken.encode(),
            });
        }
        (checked.map(|()| user), writes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_one_lowercase_spelling_without_escapes() {
        for good in [
            "bob",
            "alice.smith",
            "u_2",
            "7of9",
            &"a".repeat(MAX_USER_NAME),
        ] {
            assert_eq!(validate_user_name(good), Ok(()), "{good}");
        }
        let cases = [
            ("", UserNameError::Empty),
            ("Bob", UserNameError::Characters),
            (".bob", UserNameError::Characters),
            ("bob@x", UserNameError::Characters),
            ("bo b", UserNameError::Characters),
            ("bob/..", UserNameError::Characters),
            ("bøb", UserNameError::Characters),
        ];
        for (bad, expected) in cases {
            assert_eq!(validate_user_name(bad), Err(expected), "{bad}");
        }
        assert_eq!(
            validate_user_name(&"a".repeat(MAX_USER_NAME + 1)),
            Err(UserNameError::TooLong)
        );
    }

    #[test]
    fn an_account_change_is_checked_against_the_realm() {
        let change = AccountChange::new("bob", "example.com", "pw");
        assert_eq!(change.validate("example.com"), Ok(()));
        assert_eq!(
            change.validate("other.example"),
            Err(AccountChangeError::WrongRealm {
                got: "example.com".into(),
                expected: "other.example".into()
            })
        );
        let mut spoiled = change.clone();
        spoiled.verifiers.sha256.make_ascii_uppercase();
        assert_eq!(
            spoiled.validate("example.com"),
            Err(AccountChangeError::MalformedVerifiers)
        );
        let json = serde_json::to_string(&change).unwrap();
        assert!(!json.contains("pw\""), "the password never leaves: {json}");
    }

    #[test]
    fn a_throttle_locks_after_its_failures_and_opens_again() {
        let policy = USER_THROTTLE;
        let start = Timestamp::from_unix_secs(1_000_000);
        let mut throttle = Throttle::default();
        for n in 1..policy.failures {
            assert_eq!(throttle.fail(start.plus_secs(u64::from(n)), policy), None);
        }
        let locked_at = start.plus_secs(u64::from(policy.failures));
        assert_eq!(throttle.fail(locked_at, policy), Some(policy.lockout_secs));
        assert_eq!(throttle.check(locked_at), Err(policy.lockout_secs));
        assert_eq!(
            throttle.check(locked_at.plus_secs(policy.lockout_secs)),
            Ok(())
        );
        // Failures spread beyond the window never lock.
        let mut slow = Throttle::default();
        for n in 0..20 {
            let at = start.plus_secs(n * policy.window_secs / 2);
            assert_eq!(slow.fail(at, policy), None, "failure {n}");
            assert_eq!(slow.check(at), Ok(()));
        }
    }
}

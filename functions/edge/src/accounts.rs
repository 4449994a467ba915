//! Accounts over HTTP (`/sender/accounts`), on any [`Platform`]: what a client needs to derive its
//! verifiers, sign-up, password changes and deletion. A client never sends a password: it sends
//! the verifiers of [`rcs_core::digest::Verifiers`] ([`AccountChange`]).
//!
//! | request | who may | answer |
//! |---|---|---|
//! | `GET /sender/accounts` | anyone | `200` `{"realm":…,"sign_up":"open"\|"closed"}` |
//! | `POST /sender/accounts` | the admin token, or anyone while sign-up is open | `201`, `409` if it exists |
//! | `PUT /sender/accounts/<user>` | the admin token, or `<user>` by HTTP Digest (RFC 7616) | `204`, `404` |
//! | `DELETE /sender/accounts/<user>` | the admin token, or `<user>` by HTTP Digest | `204`, `404` |
//!
//! Changing a password signs out every connection signed in with the old one (the account's
//! generation moves on); deleting an account signs out all of them and takes the user's
//! registrations off both servers. Digest nonces here are bound to the route, and each answer to
//! one is taken once ([`HttpSignIn`]).

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use rcs_core::accounts::{
    self, Account, AccountChange, HttpRealm, HttpSignIn, HttpSignInRecords, SignInRefusal,
};
use rcs_core::edge_request::Written;
use rcs_core::http_files::Answer;
use rcs_core::ids::TokenSource;
use rcs_core::server::common::Registration;
use rcs_core::server_config::ServerConfig;
use rcs_core::service::ACCOUNTS_ROUTE;
use rcs_core::store::{Record, compare_with_known, keys};
use subtle::ConstantTimeEq;

use crate::HttpRefusal;
use crate::config::{EdgeConfig, SignUp};
use crate::platform::{Platform, PlatformError};

/// The largest account request body.
const MAX_ACCOUNT_BODY: usize = 4096;

/// Who is asking.
enum Caller {
    /// The deployment's administrator (`Authorization: Bearer <admin_token>`).
    Admin,
    /// A user who proved the account's password.
    User(String),
    /// Nobody in particular.
    Anyone,
}

/// Handles a request to `/sender/accounts` or `/sender/accounts/<user>`.
pub async fn handle_accounts<R: Platform>(
    rt: &R,
    config: &EdgeConfig,
    request: Request<Bytes>,
) -> Response<Bytes> {
    match accounts_request(rt, config, &request).await {
        Ok(response) => response,
        Err(refusal) => {
            if refusal.status() == StatusCode::INTERNAL_SERVER_ERROR {
                rt.log(&format!("account request failed: {refusal}"));
            }
            refusal.into_response()
        }
    }
}

async fn accounts_request<R: Platform>(
    rt: &R,
    config: &EdgeConfig,
    request: &Request<Bytes>,
) -> Result<Response<Bytes>, HttpRefusal> {
    let path = request.uri().path();
    let named = path
        .strip_prefix(ACCOUNTS_ROUTE)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|user| !user.is_empty());
    let realm = &config.server.domain;
    match (request.method(), named) {
        (&Method::GET, None) => {
            let body = serde_json::json!({
                "realm": realm,
                "sign_up": config.sign_up.as_str(),
            });
            Ok(with_status(
                StatusCode::OK,
                "application/json",
                body.to_string(),
            ))
        }
        (&Method::POST, None) => {
            let change = account_change(request, realm)?;
            match caller(rt, config, request, None).await? {
                Caller::Admin => {}
                _ if config.sign_up == SignUp::Open => {}
                _ => return Err(HttpRefusal::SignUpClosed),
            }
            let key = keys::account(&change.user);
            if rt.get(&key).await?.is_some() {
                return Err(HttpRefusal::AccountExists(change.user));
            }
            let user = change.user.clone();
            rt.set(&key, change.into_account(rt.now()).encode()).await?;
            Ok(with_status(
                StatusCode::CREATED,
                "text/plain; charset=utf-8",
                format!("created the account {user}\n"),
            ))
        }
        (&Method::PUT, Some(user)) => {
            let change = account_change(request, realm)?;
            if change.user != user {
                return Err(HttpRefusal::BadAccountRequest(format!(
                    "the body is for {}, the path for {user}",
                    change.user
                )));
            }
            let existing = authorized_for(rt, config, request, user).await?;
            let mut account = change.into_account(rt.now());
            account.created = existing.created;
            // Every connection signed in with the old password is signed out.
            account.generation = existing.generation.saturating_add(1);
            rt.set(&keys::account(user), account.encode()).await?;
            rt.delete(&keys::user_throttle(user)).await?;
            Ok(no_content())
        }
        (&Method::DELETE, Some(user)) => {
            authorized_for(rt, config, request, user).await?;
            rt.delete(&keys::account(user)).await?;
            rt.delete(&keys::user_throttle(user)).await?;
            let aor = format!("sip:{user}@{}", realm.to_ascii_lowercase());
            let key = keys::registration(&aor);
            if let Some(value) = rt.get(&key).await? {
                if let Ok(registered) = Registration::decode(&key, &value) {
                    for device in registered.devices {
                        rt.delete(&keys::connection(&device.connection)).await?;
                    }
                }
                rt.delete(&key).await?;
            }
            Ok(no_content())
        }
        (_, None) => Err(HttpRefusal::MethodNotAllowed {
            path: path.to_owned(),
            allow: "GET, POST",
            method: request.method().to_string(),
        }),
        (_, Some(_)) => Err(HttpRefusal::MethodNotAllowed {
            path: path.to_owned(),
            allow: "PUT, DELETE",
            method: request.method().to_string(),
        }),
    }
}

/// The account `user`, if the caller is the admin or `user`; otherwise the refusal (401 with a
/// challenge, 403, 404, 429).
async fn authorized_for<R: Platform>(
    rt: &R,
    config: &EdgeConfig,
    request: &Request<Bytes>,
    user: &str,
) -> Result<Account, HttpRefusal> {
    accounts::validate_user_name(user)
        .map_err(|error| HttpRefusal::BadAccountRequest(error.to_string()))?;
    let caller = caller(rt, config, request, Some(user)).await?;
    match caller {
        Caller::Admin => {}
        Caller::User(proved) if proved == user => {}
        Caller::User(proved) => {
            return Err(HttpRefusal::Forbidden(format!(
                "{proved} may not change the account {user}"
            )));
        }
        Caller::Anyone => {
            // No credentials: the sign-in refuses with the challenge.
            let target = request.uri().path();
            let method = request.method().as_str();
            sign_in(rt, &config.server, None, method, target, ACCOUNTS_ROUTE).await?;
        }
    }
    let key = keys::account(user);
    match rt.get(&key).await? {
        Some(value) => Account::decode(&key, &value)
            .map_err(|error| HttpRefusal::Platform(PlatformError::Store(error.to_string()))),
        None => Err(HttpRefusal::NoAccount(user.to_owned())),
    }
}

/// Who the request comes from: the admin token, digest credentials (checked, failures counted),
/// or nobody. `account_of` is the account the credentials must be for, when there is one.
async fn caller<R: Platform>(
    rt: &R,
    config: &EdgeConfig,
    request: &Request<Bytes>,
    account_of: Option<&str>,
) -> Result<Caller, HttpRefusal> {
    let Some(authorization) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
    else {
        return Ok(Caller::Anyone);
    };
    if let Some(token) = authorization.strip_prefix("Bearer ") {
        if bool::from(token.trim().as_bytes().ct_eq(config.admin_token.as_bytes())) {
            return Ok(Caller::Admin);
        }
        return Err(HttpRefusal::Forbidden("the admin token is wrong".into()));
    }
    let target = request_target(request.uri());
    let user = sign_in(
        rt,
        &config.server,
        Some(authorization),
        request.method().as_str(),
        target,
        ACCOUNTS_ROUTE,
    )
    .await?;
    if let Some(named) = account_of.filter(|named| *named != user) {
        return Err(HttpRefusal::Forbidden(format!(
            "{user} may not change the account {named}"
        )));
    }
    Ok(Caller::User(user))
}

/// What a request's digest `uri` must name: its path and query, as the client wrote them (RFC 7616
/// section 3.4), whether the runtime hands the URI over absolute or not.
pub fn request_target(uri: &http::Uri) -> &str {
    uri.path_and_query().map_or(uri.path(), |p| p.as_str())
}

/// The user an HTTP request signs in as with Digest credentials for `route` (failures counted in
/// the store), or the refusal to answer with.
pub async fn sign_in<R: Platform>(
    rt: &R,
    server: &ServerConfig,
    authorization: Option<&str>,
    method: &str,
    target: &str,
    route: &str,
) -> Result<String, HttpRefusal> {
    let realm = HttpRealm {
        realm: &server.domain,
        keys: &server.signing_keys,
        route,
    };
    let now = rt.now();
    let salt = TokenSource::new(rt.entropy()?).token(8);
    let refused = |refusal: SignInRefusal| {
        HttpRefusal::SignIn(Answer::sign_in_refused(&refusal, realm, now, &salt))
    };
    // The records are written back by compare-and-swap: a sign-in of the same user at the same
    // moment makes this one read them again, so that every failure is counted.
    for _ in 0..MAX_SIGN_IN_ATTEMPTS {
        let attempt =
            HttpSignIn::start(authorization, method, target, realm, now).map_err(refused)?;
        let Some(keys) = attempt.keys() else {
            let (outcome, _) = attempt.finish(HttpSignInRecords::default(), &server.domain, now);
            return outcome.map_err(refused);
        };
        let [account, throttle, nonce_use] = &keys;
        let read = (
            rt.get(account).await?,
            rt.get(throttle).await?,
            rt.get(nonce_use).await?,
        );
        let records = HttpSignInRecords {
            account: read.0.as_deref(),
            throttle: read.1.as_deref(),
            nonce_use: read.2.as_deref(),
        };
        let (outcome, writes) = attempt.finish(records, &server.domain, now);
        let known = [
            (account, &read.0),
            (throttle, &read.1),
            (nonce_use, &read.2),
        ];
        let writes = writes
            .into_iter()
            .filter_map(|op| {
                let value = known
                    .iter()
                    .find(|(key, _)| *key == op.key())
                    .map(|(_, v)| *v);
                compare_with_known(op, value)
            })
            .collect();
        if crate::run::write_batch(rt, writes).await? == Written::All {
            return outcome.map_err(refused);
        }
    }
    Err(HttpRefusal::Platform(PlatformError::Store(format!(
        "the sign-in records kept changing ({MAX_SIGN_IN_ATTEMPTS} attempts)"
    ))))
}

/// How many times an HTTP sign-in reads and writes its records before contention fails it.
const MAX_SIGN_IN_ATTEMPTS: u32 = 8;

/// The body as an account request for `realm`, checked.
fn account_change(request: &Request<Bytes>, realm: &str) -> Result<AccountChange, HttpRefusal> {
    let body = request.body();
    if body.len() > MAX_ACCOUNT_BODY {
        return Err(HttpRefusal::BodyTooLarge(format!(
            "an account request is at most {MAX_ACCOUNT_BODY} bytes"
        )));
    }
    let change: AccountChange = serde_json::from_slice(body).map_err(|error| {
        HttpRefusal::BadAccountRequest(format!(
            "the body must be {{\"user\":…,\"verifiers\":{{…}}}}: {error}"
        ))
    })?;
    change
        .validate(realm)
        .map_err(|error| HttpRefusal::BadAccountRequest(error.to_string()))?;
    Ok(change)
}

fn with_status(status: StatusCode, content_type: &'static str, body: String) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn no_content() -> Response<Bytes> {
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

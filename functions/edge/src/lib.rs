//! # rcs-edge: the glue between the Spin components and the protocol core
//!
//! The sender-AS and receiver-AS components are a few lines each: they route a request by path
//! ([`route`]) and hand it to a handler here. Everything between HTTP and the sans-IO core lives in
//! this crate:
//! - [`config`]: the Spin variables of the edge contract, parsed into the core's `ServerConfig` and
//!   the edge's own settings; a bad value is a 500 with the variable's name and what is wrong;
//! - [`handler`]: GRIP WebSocket-over-HTTP requests (`Grip-Sig` and `Connection-Id` checked, the
//!   events handed to one `EdgeRequest`), SIP from the other server (`/receiver/peer`), and
//!   `/…/tick` (the server's due timers, the expiry sweep); every refusal is a [`HttpRefusal`];
//! - [`accounts`]: accounts over HTTP (`/sender/accounts`): sign-up, password changes and
//!   deletion, by the admin token or HTTP Digest;
//! - [`run`]: the one loop that carries out the actions of the core's edge request driver
//!   ([`rcs_core::edge_request`]) over a [`Platform`];
//! - [`platform`]: the platform as one async trait, so every handler runs natively in tests;
//! - [`spin`]: that trait over Spin's key-value, variables and outbound HTTP, and the request and
//!   response conversions of the components.
//!
//! ## Invariants
//! - One `EdgeRequest` per HTTP request, all its events in order; nothing survives in memory
//!   between requests. What a request does is the core's; this crate only does its I/O.
//! - Store writes are applied in the order the core yields them, before any publish of the request
//!   and before a peer request that follows them.
//! - Bad input gets an answer with a reason: HTTP 4xx for the framing, SIP/MSRP errors from the core
//!   for the messages, and the connection stays usable.

pub mod accounts;
pub mod config;
pub mod handler;
pub mod platform;
pub mod run;
pub mod spin;

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header};

pub use config::EdgeConfig;
pub use platform::{Platform, PlatformError};
pub use rcs_core::service::Protocol;
pub use rcs_core::service::Side;
use rcs_core::service::{ACCOUNTS_ROUTE, PEER_ROUTE, UPLOAD_ROUTE};

/// What a request of an AS component is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// A GRIP WebSocket-over-HTTP request (`POST /sender/sip`, `POST /<side>/msrp`).
    Grip(Protocol),
    /// SIP from the sender AS (`POST /receiver/peer`).
    Peer,
    /// Due timers and the expiry sweep (`POST /<side>/tick`).
    Tick,
    /// FT-HTTP upload (`POST /sender/upload`, `GET /sender/upload?tid=..&get_upload_info`).
    Upload,
    /// File download (`GET`/`HEAD /files/<sha256-hex>?exp&sig`).
    Files,
    /// Accounts (`/sender/accounts`, `/sender/accounts/<user>`).
    Accounts,
}

/// Every way an AS component refuses a request, with its status; [`HttpRefusal::into_response`] is the
/// one place a refusal becomes an HTTP answer (`text/plain`, the reason as the body).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpRefusal {
    /// No route takes the path (404).
    #[error("no such route: {path}")]
    NoRoute {
        /// The path asked for.
        path: String,
    },
    /// The route takes other methods (405, with `Allow`).
    #[error("{path} takes {allow}, not {method}")]
    MethodNotAllowed {
        /// The path asked for.
        path: String,
        /// The methods it takes.
        allow: &'static str,
        /// The method used.
        method: String,
    },
    /// A GRIP request without `Grip-Sig` (403): it did not come through the gateway.
    #[error("Grip-Sig is missing")]
    GripSigMissing,
    /// A `Grip-Sig` that does not verify or has expired (403).
    #[error("Grip-Sig refused: {0}")]
    GripSigRefused(rcs_core::grip::GripError),
    /// A GRIP request without `Connection-Id` (400).
    #[error("Connection-Id is missing")]
    ConnectionIdMissing,
    /// A body of events that does not parse (400).
    #[error("malformed WebSocket events: {0}")]
    MalformedEvents(rcs_core::grip::GripError),
    /// A peer request whose body is not `message/sip` (415).
    #[error("the body must be a SIP request as message/sip")]
    NotMessageSip,
    /// A peer request that is not a SIP request the server answers (400).
    #[error("the body is not a SIP request this server can answer")]
    Unanswerable,
    /// A tick without the admin token (401, `WWW-Authenticate: Bearer`).
    #[error("a tick needs Authorization: Bearer <admin_token>")]
    TickUnauthorized,
    /// An account request that does not parse or names something invalid (400).
    #[error("{0}")]
    BadAccountRequest(String),
    /// A refused sign-in, answered as the core writes it (401 with its challenges, 403, 429 with
    /// `Retry-After`, 400, 500).
    #[error("{}", sign_in_reason(.0))]
    SignIn(rcs_core::http_files::Answer),
    /// A caller who may not do what was asked (403).
    #[error("{0}")]
    Forbidden(String),
    /// Sign-up without the admin token while the deployment's sign-up is closed (403).
    #[error("sign-up is closed on this deployment: ask its administrator for an account")]
    SignUpClosed,
    /// No account of that name (404).
    #[error("there is no account {0}")]
    NoAccount(String),
    /// An account of that name exists already (409).
    #[error("the account {0} exists already")]
    AccountExists(String),
    /// A request body over the component's limit (413).
    #[error("{0}")]
    BodyTooLarge(String),
    /// The component's configuration is unusable (500).
    #[error("{0}")]
    Configuration(String),
    /// The platform failed: the store, the random source (500).
    #[error(transparent)]
    Platform(#[from] PlatformError),
}

impl HttpRefusal {
    /// The HTTP status of the refusal.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NoRoute { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::GripSigMissing | Self::GripSigRefused(_) => StatusCode::FORBIDDEN,
            Self::ConnectionIdMissing
            | Self::MalformedEvents(_)
            | Self::Unanswerable
            | Self::BadAccountRequest(_) => StatusCode::BAD_REQUEST,
            Self::SignIn(answer) => {
                StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            Self::Forbidden(_) | Self::SignUpClosed => StatusCode::FORBIDDEN,
            Self::NoAccount(_) => StatusCode::NOT_FOUND,
            Self::AccountExists(_) => StatusCode::CONFLICT,
            Self::NotMessageSip => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TickUnauthorized => StatusCode::UNAUTHORIZED,
            Self::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Configuration(_) | Self::Platform(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The refusal as an HTTP response.
    pub fn into_response(self) -> Response<Bytes> {
        let mut response = Response::new(Bytes::from(format!("{self}\n")));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        match self {
            Self::MethodNotAllowed { allow, .. } => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            Self::SignIn(answer) => {
                for (name, value) in &answer.headers {
                    if let (false, Ok(name), Ok(value)) = (
                        name.eq_ignore_ascii_case("content-type"),
                        http::HeaderName::from_bytes(name.as_bytes()),
                        HeaderValue::from_str(value),
                    ) {
                        headers.append(name, value);
                    }
                }
            }
            Self::TickUnauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

/// The reason a sign-in answer gives (its body, without the newline).
fn sign_in_reason(answer: &rcs_core::http_files::Answer) -> String {
    match &answer.body {
        rcs_core::http_files::AnswerBody::Full(text) => text.trim_end().to_owned(),
        _ => String::new(),
    }
}

/// The route of a request to the component of the `side` server.
pub fn route(side: Side, method: &Method, path: &str) -> Result<Route, HttpRefusal> {
    let prefix = side.path_prefix();
    let (route, allow) = match (side, path) {
        (Side::Receiver, p) if p.starts_with("/files/") => (Route::Files, "GET, HEAD"),
        // A device's one SIP connection is the sender AS's (docs/design.md).
        (Side::Sender, p) if p.strip_prefix(prefix) == Some("sip") => {
            (Route::Grip(Protocol::Sip), "POST")
        }
        (_, p) if p.strip_prefix(prefix) == Some("msrp") => (Route::Grip(Protocol::Msrp), "POST"),
        (_, p) if p.strip_prefix(prefix) == Some("tick") => (Route::Tick, "POST"),
        (Side::Receiver, PEER_ROUTE) => (Route::Peer, "POST"),
        (Side::Sender, UPLOAD_ROUTE) => (Route::Upload, rcs_core::http_files::upload::ALLOW),
        (Side::Sender, ACCOUNTS_ROUTE) => (Route::Accounts, "GET, POST"),
        (Side::Sender, p)
            if p.strip_prefix(ACCOUNTS_ROUTE)
                .is_some_and(|rest| rest.starts_with('/')) =>
        {
            (Route::Accounts, "PUT, DELETE")
        }
        _ => {
            return Err(HttpRefusal::NoRoute {
                path: path.to_owned(),
            });
        }
    };
    if allow.split(", ").any(|m| m == method.as_str()) {
        Ok(route)
    } else {
        Err(HttpRefusal::MethodNotAllowed {
            path: path.to_owned(),
            allow,
            method: method.to_string(),
        })
    }
}

#[cfg(test)]
mod tests;

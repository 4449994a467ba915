//! # rcs-edge: the glue between the Spin components and the protocol core
//!
//! The sender-AS and receiver-AS components are a few lines each: they route a request by path
//! ([`route`]) and hand it to a handler here. Everything between HTTP and the sans-IO core lives in
//! this crate:
//! - [`config`]: the Spin variables of the edge contract, parsed into the core's `ServerConfig` and
//!   the edge's own settings; a bad value is a 500 with the variable's name and what is wrong;
//! - [`handler`]: GRIP WebSocket-over-HTTP requests (`Grip-Sig` checked, events to core inputs, core
//!   outputs to response events, publishes, key-value and peer requests), SIP from the other server
//!   (`/receiver/peer`), and `/…/tick` (due timers, expiry sweep);
//! - [`run`]: one request's engine and how each core output is applied;
//! - [`runtime`]: the platform as one async trait, so every handler runs natively in tests;
//! - [`spin`]: that trait over Spin's key-value, variables and outbound HTTP, and the request and
//!   response conversions of the components.
//!
//! ## Invariants
//! - One engine per HTTP request, all its events in order; nothing survives in memory between
//!   requests.
//! - Store writes are applied in the order the core yields them, before any publish of the request
//!   and before a peer request that follows them.
//! - Bad input gets an answer with a reason: HTTP 4xx for the framing, SIP/MSRP errors from the core
//!   for the messages, and the connection stays usable.

pub mod config;
pub mod handler;
pub mod run;
pub mod runtime;
pub mod spin;

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header};

pub use config::EdgeConfig;
pub use runtime::{Runtime, RuntimeError};

/// Which application server a component is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Takes files from its users (`/sender/...`).
    Sender,
    /// Delivers files to its users (`/receiver/...`, `/files/...`).
    Receiver,
}

impl Role {
    /// The first path segment of the role's routes.
    pub fn prefix(self) -> &'static str {
        match self {
            Role::Sender => "/sender/",
            Role::Receiver => "/receiver/",
        }
    }
}

/// The WebSocket subprotocol of a GRIP route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// SIP over WebSocket (RFC 7118).
    Sip,
    /// MSRP over WebSocket (RFC 7977).
    Msrp,
}

impl Protocol {
    /// The subprotocol's name, as in `Sec-WebSocket-Protocol`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Sip => "sip",
            Protocol::Msrp => "msrp",
        }
    }
}

/// What a request of an AS component is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// A GRIP WebSocket-over-HTTP request (`POST /<role>/sip`, `POST /<role>/msrp`).
    Grip(Protocol),
    /// SIP from the sender AS (`POST /receiver/peer`).
    Peer,
    /// Due timers and the expiry sweep (`POST /<role>/tick`).
    Tick,
    /// FT-HTTP upload (`POST /sender/upload`, `GET /sender/upload?tid=..&get_upload_info`).
    Upload,
    /// File download (`GET`/`HEAD /files/<sha256-hex>?exp&sig`).
    Files,
}

/// A request no route takes: the status and the reason for the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// 404 or 405.
    pub status: StatusCode,
    /// Why, for the body.
    pub reason: String,
    /// The methods the path takes, for a 405's `Allow`.
    pub allow: Option<&'static str>,
}

impl Refusal {
    /// The refusal as an HTTP response.
    pub fn into_response(self) -> Response<Bytes> {
        let mut response = refuse(self.status, &self.reason);
        if let Some(allow) = self.allow {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}

/// The route of a request to the component playing `role`.
pub fn route(role: Role, method: &Method, path: &str) -> Result<Route, Refusal> {
    let (route, allow) = match (role, path) {
        (Role::Receiver, p) if p.starts_with("/files/") => (Route::Files, "GET, HEAD"),
        (_, p) if p.strip_prefix(role.prefix()) == Some("sip") => {
            (Route::Grip(Protocol::Sip), "POST")
        }
        (_, p) if p.strip_prefix(role.prefix()) == Some("msrp") => {
            (Route::Grip(Protocol::Msrp), "POST")
        }
        (_, p) if p.strip_prefix(role.prefix()) == Some("tick") => (Route::Tick, "POST"),
        (Role::Receiver, "/receiver/peer") => (Route::Peer, "POST"),
        (Role::Sender, "/sender/upload") => (Route::Upload, "GET, POST"),
        _ => {
            return Err(Refusal {
                status: StatusCode::NOT_FOUND,
                reason: format!("no such route: {path}"),
                allow: None,
            });
        }
    };
    if allow.split(", ").any(|m| m == method.as_str()) {
        Ok(route)
    } else {
        Err(Refusal {
            status: StatusCode::METHOD_NOT_ALLOWED,
            reason: format!("{path} takes {allow}, not {method}"),
            allow: Some(allow),
        })
    }
}

/// A plain-text answer with `reason` as its body.
pub fn refuse(status: StatusCode, reason: &str) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(format!("{reason}\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests;

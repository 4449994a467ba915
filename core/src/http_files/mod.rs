//! The HTTP file paths of the edge, sans I/O: the signed download (`GET`/`HEAD /files/<hex>`) and the
//! GSMA RCC.07 "File Transfer via HTTP" upload (`POST /sender/upload`, resume by `tid`).
//!
//! This module owns every decision those paths make; the Spin functions only move bytes between the
//! HTTP request, the key-value store and the response:
//! - [`download`]: checks a download request and plans its answer ([`download::plan`]): status,
//!   headers and the byte range to stream chunk by chunk from the store;
//! - [`range`]: the `Range` header (RFC 9110 section 14) of one file;
//! - [`headers`]: `Content-Disposition` (RFC 6266, RFC 8187), HTTP dates, entity-tag matching;
//! - [`multipart`]: an incremental `multipart/form-data` parser (RFC 7578, RFC 2046) with bounded
//!   boundary, header and preamble sizes;
//! - [`upload`]: the upload as a state machine over body bytes and store values
//!   ([`upload::UploadRequest`]), and the RCC.07 `file-resume-info` document ([`upload::ResumeInfo`]).
//!
//! Every answer is an [`Answer`]: errors carry their reason as a `text/plain` body.

pub mod download;
pub mod headers;
pub mod multipart;
pub mod range;
pub mod upload;

use std::ops::Range;

use crate::accounts::{self, Binding, HttpRealm, SignInRefusal};
use crate::time::Timestamp;

/// What an HTTP path answers: a status, headers, and a body the caller produces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// Header fields, in order (names as written, values already safe for a header line).
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: AnswerBody,
}

/// The body of an [`Answer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnswerBody {
    /// No body (`HEAD`, `304`), though `Content-Length` may say what `GET` would send.
    Empty,
    /// A small body held in full (a reason, an XML document); its type is in the headers.
    Full(String),
    /// These bytes of the file: the caller streams them chunk by chunk with
    /// [`crate::store::Manifest::chunk_reads`].
    File(Range<u64>),
}

impl Answer {
    /// An error answer whose `text/plain` body is `reason` and a newline.
    pub fn reason(status: u16, reason: impl std::fmt::Display) -> Self {
        // A reason is one line: it may quote untrusted text.
        let text = reason.to_string().replace(['\r', '\n'], " ");
        Self {
            status,
            headers: vec![
                ("Content-Type", "text/plain; charset=utf-8".to_owned()),
                ("Cache-Control", "no-store".to_owned()),
            ],
            body: AnswerBody::Full(format!("{text}\n")),
        }
    }

    /// An answer carrying a whole document of `content_type`.
    pub fn document(status: u16, content_type: &str, text: String) -> Self {
        Self {
            status,
            headers: vec![
                ("Content-Type", content_type.to_owned()),
                ("Cache-Control", "no-store".to_owned()),
            ],
            body: AnswerBody::Full(text),
        }
    }

    /// The value of the first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A header to add.
    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The answer to a refused HTTP sign-in: `401` with a challenge per algorithm for the route
    /// (its nonce made unique by `salt`, random hex), `403`, `429` with `Retry-After`, `400`, or
    /// `500` for an unreadable account.
    pub fn sign_in_refused(
        refusal: &SignInRefusal,
        realm: HttpRealm<'_>,
        now: Timestamp,
        salt: &str,
    ) -> Self {
        let reason = refusal.reason();
        match refusal {
            SignInRefusal::Challenge { stale, .. } => {
                let binding = Binding::Route(realm.route);
                accounts::challenges(realm.realm, realm.keys, binding, *stale, now, salt)
                    .into_iter()
                    .fold(Self::reason(401, reason), |answer, challenge| {
                        answer.with_header("WWW-Authenticate", challenge)
                    })
            }
            SignInRefusal::Forbidden(_) => Self::reason(403, reason),
            SignInRefusal::Throttled { retry_after_secs } => {
                Self::reason(429, reason).with_header("Retry-After", retry_after_secs.to_string())
            }
            SignInRefusal::Malformed(_) => Self::reason(400, reason),
            SignInRefusal::Unreadable(_) => Self::reason(500, reason),
        }
    }
}

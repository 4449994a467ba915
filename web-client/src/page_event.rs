//! The events the client hands the page: one enum, each variant with one name (its `type` on the
//! page) and the fields the page reads. The page's handler (`www/app.js`) has a case for every
//! name in [`PageEvent::NAMES`]; a test holds it to that.

use rcs_core::service::Protocol;
use rcs_core::service::Side;

/// Where a WebSocket stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelState {
    /// Open and registered to be used.
    Open,
    /// It could not be opened.
    Failed,
    /// It closed or broke.
    Lost,
    /// It is about to be opened again.
    Reconnecting,
}

/// Which way a file's bytes move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From this user.
    Out,
    /// To this user.
    In,
}

/// A field's value, as the page sees it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A string.
    Text(String),
    /// A number.
    Number(f64),
    /// `null`.
    Null,
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<u64> for Value {
    fn from(number: u64) -> Self {
        Self::Number(number as f64)
    }
}

impl From<u32> for Value {
    fn from(number: u32) -> Self {
        Self::Number(f64::from(number))
    }
}

impl From<u16> for Value {
    fn from(number: u16) -> Self {
        Self::Number(f64::from(number))
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Self {
        value.map_or(Self::Null, Into::into)
    }
}

/// Something for the page. Transfers are named by the page's own `id` (a number the client gives
/// each file, sent or received); chats by the id [`crate::RcsClient`]'s `chat` returned.
#[derive(Clone, Debug, PartialEq)]
pub enum PageEvent {
    /// `connection`: one of the device's three WebSockets changed state: its SIP connection
    /// (`side` sender, `channel` sip) or its MSRP connection to the `side` server.
    Connection {
        side: Side,
        channel: Protocol,
        state: ChannelState,
        reason: Option<String>,
    },
    /// `registered`: the device is registered for `expires` seconds.
    Registered { expires: u32 },
    /// `unregistered`: the device is no longer registered.
    Unregistered,
    /// `registration-failed`: the registrar refused the registration.
    RegistrationFailed { status: u16, reason: String },
    /// `chat`: a chat message arrived.
    Chat {
        from: String,
        content_type: String,
        text: String,
    },
    /// `chat-sent`: the servers took the chat message (`status` 200 or 202).
    ChatSent { id: u64, status: u16 },
    /// `chat-failed`: the chat message was refused.
    ChatFailed {
        id: u64,
        status: u16,
        reason: String,
    },
    /// `outgoing`: a file to send, being prepared.
    Outgoing {
        id: u64,
        to: String,
        name: String,
        size: u64,
    },
    /// `accepted`: the sender AS takes the file, from `resume_from`.
    Accepted { id: u64, resume_from: u64 },
    /// `offer`: a file is offered to the user (`kind` push or pull; `url` the HTTP fallback).
    Offer {
        id: u64,
        kind: &'static str,
        from: String,
        name: String,
        content_type: String,
        size: u64,
        url: Option<String>,
    },
    /// `progress`: bytes of a file moved.
    Progress {
        id: u64,
        direction: Direction,
        done: u64,
        size: u64,
        bytes_per_sec: Option<f64>,
        secs_left: Option<f64>,
    },
    /// `uploaded`: every byte of a file being sent is with the sender AS.
    Uploaded { id: u64 },
    /// `report`: the sender AS's REPORT on a file being sent (200: stored and verified).
    Report {
        id: u64,
        status: u16,
        comment: String,
    },
    /// `received`: a file arrived whole, its digest checked; `object_url` holds it.
    Received {
        id: u64,
        from: String,
        name: String,
        content_type: String,
        size: u64,
        sha256: String,
        object_url: String,
    },
    /// `ended`: the session of a file being sent ended (`cause` the Reason's, 0 if none).
    Ended { id: u64, cause: u16, reason: String },
    /// `failed`: a transfer failed (`status` 0 when no server gave one).
    Failed {
        id: u64,
        status: u16,
        reason: String,
    },
    /// `error`: something went wrong outside any transfer.
    Error { reason: String },
}

impl PageEvent {
    /// Every event's name, as the page's `type`.
    pub const NAMES: [&'static str; 17] = [
        "connection",
        "registered",
        "unregistered",
        "registration-failed",
        "chat",
        "chat-sent",
        "chat-failed",
        "outgoing",
        "accepted",
        "offer",
        "progress",
        "uploaded",
        "report",
        "received",
        "ended",
        "failed",
        "error",
    ];

    /// The event's name (its `type` on the page).
    pub fn name(&self) -> &'static str {
        Self::NAMES[self.index()]
    }

    fn index(&self) -> usize {
        match self {
            Self::Connection { .. } => 0,
            Self::Registered { .. } => 1,
            Self::Unregistered => 2,
            Self::RegistrationFailed { .. } => 3,
            Self::Chat { .. } => 4,
            Self::ChatSent { .. } => 5,
            Self::ChatFailed { .. } => 6,
            Self::Outgoing { .. } => 7,
            Self::Accepted { .. } => 8,
            Self::Offer { .. } => 9,
            Self::Progress { .. } => 10,
            Self::Uploaded { .. } => 11,
            Self::Report { .. } => 12,
            Self::Received { .. } => 13,
            Self::Ended { .. } => 14,
            Self::Failed { .. } => 15,
            Self::Error { .. } => 16,
        }
    }

    /// The event's fields besides `type`, by the names the page reads.
    pub fn fields(&self) -> Vec<(&'static str, Value)> {
        let side = |side: &Side| Value::from(side.as_str());
        match self {
            Self::Connection {
                side: server,
                channel,
                state,
                reason,
            } => vec![
                ("side", side(server)),
                (
                    "channel",
                    match channel {
                        Protocol::Sip => "sip",
                        Protocol::Msrp => "msrp",
                    }
                    .into(),
                ),
                (
                    "state",
                    match state {
                        ChannelState::Open => "open",
                        ChannelState::Failed => "failed",
                        ChannelState::Lost => "lost",
                        ChannelState::Reconnecting => "reconnecting",
                    }
                    .into(),
                ),
                ("reason", reason.clone().into()),
            ],
            Self::Registered { expires } => vec![("expires", (*expires).into())],
            Self::Unregistered => Vec::new(),
            Self::RegistrationFailed { status, reason } => vec![
                ("status", (*status).into()),
                ("reason", reason.clone().into()),
            ],
            Self::Chat {
                from,
                content_type,
                text,
            } => vec![
                ("from", from.clone().into()),
                ("contentType", content_type.clone().into()),
                ("text", text.clone().into()),
            ],
            Self::ChatSent { id, status } => {
                vec![("id", (*id).into()), ("status", (*status).into())]
            }
            Self::ChatFailed { id, status, reason } | Self::Failed { id, status, reason } => vec![
                ("id", (*id).into()),
                ("status", (*status).into()),
                ("reason", reason.clone().into()),
            ],
            Self::Ended { id, cause, reason } => vec![
                ("id", (*id).into()),
                ("cause", (*cause).into()),
                ("reason", reason.clone().into()),
            ],
            Self::Outgoing { id, to, name, size } => vec![
                ("id", (*id).into()),
                ("to", to.clone().into()),
                ("name", name.clone().into()),
                ("size", (*size).into()),
            ],
            Self::Accepted { id, resume_from } => {
                vec![("id", (*id).into()), ("resumeFrom", (*resume_from).into())]
            }
            Self::Offer {
                id,
                kind,
                from,
                name,
                content_type,
                size,
                url,
            } => vec![
                ("id", (*id).into()),
                ("kind", (*kind).into()),
                ("from", from.clone().into()),
                ("name", name.clone().into()),
                ("contentType", content_type.clone().into()),
                ("size", (*size).into()),
                ("url", url.clone().into()),
            ],
            Self::Progress {
                id,
                direction,
                done,
                size,
                bytes_per_sec,
                secs_left,
            } => vec![
                ("id", (*id).into()),
                (
                    "direction",
                    match direction {
                        Direction::Out => "out",
                        Direction::In => "in",
                    }
                    .into(),
                ),
                ("done", (*done).into()),
                ("size", (*size).into()),
                (
                    "bytesPerSec",
                    bytes_per_sec.map_or(Value::Null, Value::Number),
                ),
                ("secsLeft", secs_left.map_or(Value::Null, Value::Number)),
            ],
            Self::Uploaded { id } => vec![("id", (*id).into())],
            Self::Report {
                id,
                status,
                comment,
            } => vec![
                ("id", (*id).into()),
                ("status", (*status).into()),
                ("comment", comment.clone().into()),
            ],
            Self::Received {
                id,
                from,
                name,
                content_type,
                size,
                sha256,
                object_url,
            } => vec![
                ("id", (*id).into()),
                ("from", from.clone().into()),
                ("name", name.clone().into()),
                ("contentType", content_type.clone().into()),
                ("size", (*size).into()),
                ("sha256", sha256.clone().into()),
                ("objectUrl", object_url.clone().into()),
            ],
            Self::Error { reason } => vec![("reason", reason.clone().into())],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_has_its_own_name() {
        let mut names = PageEvent::NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PageEvent::NAMES.len());
        let event = PageEvent::Ended {
            id: 3,
            cause: 202,
            reason: "ok".into(),
        };
        assert_eq!(event.name(), "ended");
        assert_eq!(event.fields()[1], ("cause", Value::Number(202.0)));
        let failed = PageEvent::Failed {
            id: 3,
            status: 404,
            reason: "gone".into(),
        };
        assert_eq!(failed.fields()[1], ("status", Value::Number(404.0)));
    }

    #[test]
    fn the_page_handles_every_event() {
        let page = include_str!("../../www/app.js");
        let missing: Vec<_> = PageEvent::NAMES
            .iter()
            .filter(|name| !page.contains(&format!("case '{name}':")))
            .collect();
        assert!(missing.is_empty(), "www/app.js ignores {missing:?}");
    }
}

//! The user agent of an RCS file transfer client, sans I/O: registration, chat, sending a file and
//! receiving one. A device has one SIP WebSocket connection, to the sender AS, which carries the
//! whole service (chats both ways, offers and pushes in, files out), and an MSRP WebSocket
//! connection to each server a transfer is with ([`Link`]): the sender AS for files it sends, the
//! receiver AS for files it receives, as the SDP answers' and offers' paths say.
//!
//! A [`UserAgent`] owns everything a client knows about its sessions and nothing else: the caller owns
//! the two WebSocket connections, the file being sent or received, the clock and the randomness
//! (one [`Entropy`] at creation). It is driven like the servers:
//!
//! - commands ([`UserAgent::register`], [`UserAgent::chat`], [`UserAgent::send_file`],
//!   [`UserAgent::accept`], ...) and inputs ([`UserAgent::handle_sip`], [`UserAgent::handle_msrp`],
//!   [`UserAgent::handle_timeout`], [`UserAgent::msrp_connected`]) take the current time;
//! - then [`UserAgent::poll_output`] until it returns `None`: each [`Output`] is a WebSocket message
//!   to send ([`Output::Transmit`]) or an [`Event`] for the application, **in the order given**. A
//!   [`TransferEvent::Write`] always comes before the MSRP `200` that acknowledges its bytes, so a
//!   caller that applies outputs in order never acknowledges bytes it has not written;
//! - [`UserAgent::poll_timeout`] says when to call [`UserAgent::handle_timeout`] (registration
//!   refresh, MSRP transaction timeouts).
//!
//! ## Sending a file
//! [`UserAgent::send_file`] offers the file (RFC 5547 `a=file-selector` with its SHA-256, which the
//! caller computes). Once the sender AS answers, [`TransferEvent::Accepted`] says where the upload
//! resumes (`a=file-range`), and [`TransferEvent::NeedBytes`] asks for each chunk's bytes, which the
//! caller reads and hands to [`UserAgent::provide_bytes`]; at most `window` chunks are in flight. The
//! success REPORT arrives as [`TransferEvent::Report`], and the server's BYE, whose `Reason` says how
//! the receiver AS took the first value, as [`TransferEvent::Ended`]. [`UserAgent::stop_sending`]
//! stops midway: the message ends with a `#` chunk (RFC 4975 section 7.1.1), the sender AS
//! discards the upload and tells whoever is receiving it, and its BYE (cause 487) ends the session.
//!
//! ## Receiving a file
//! A push INVITE or a pull file-info MESSAGE arrives as [`TransferEvent::Offered`]; the caller calls
//! [`UserAgent::accept`] (push: the SDP answer; pull: the `a=recvonly` INVITE, with `a=file-range` to
//! resume) or [`UserAgent::decline`]. Chunks arrive as [`TransferEvent::Write`] (where to write which
//! bytes; the agent never holds file bytes); at the end [`TransferEvent::Received`] asks for the
//! digest of what was written ([`UserAgent::digest_computed`]), which the agent checks against the
//! announced one before it sends the success (or failure) REPORT. After a lost MSRP connection, open
//! a new one and call [`UserAgent::msrp_connected`]: the agent binds it to its sessions and the
//! receiver AS goes on from the last acknowledged byte. [`UserAgent::checkpoint`] and
//! [`UserAgent::restore`] carry an interrupted delivery to another process.
//!
//! ## Invariants
//! - No I/O, no clock, no async; every random value comes from the agent's [`TokenSource`].
//! - Nothing from the network panics: a message that does not parse or fits no session is answered
//!   (SIP 400/481, MSRP 400/481) or dropped, and the agent goes on.
//! - Memory is bounded by the number of sessions and chunks in flight, never by a file's size.

mod incoming;
mod outgoing;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::ops::Range;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::digest::{Challenge, Credentials};
use crate::ids::{Entropy, TokenSource};
use crate::msrp::{self, Frame, MsrpError, MsrpUri};
use crate::sdp::SdpError;
use crate::service::{Delivery, Side};
use crate::sip::{
    self, INSTANCE_PARAM, Method, NameAddr, Reason, RequestBuilder, SipError, SipMessage, SipUri,
    Transport, Warning,
};
use crate::time::Timestamp;

pub use incoming::IncomingCheckpoint;

use incoming::Incoming;
use outgoing::Outgoing;

/// The Contact parameter a user picks its delivery mode with (docs/design.md).
pub const DELIVERY_PARAM: &str = "ft-delivery";

/// Where a client opens its WebSockets for the edge at `server`: `ws://host[:port]` for an
/// `http`/`ws` URL, `wss://...` for `https`/`wss` (then [`Config::secure`] holds), with no path.
/// `None` for any other scheme, a missing host, or a path, query or fragment.
pub fn websocket_base(server: &str) -> Option<String> {
    let (scheme, rest) = server.split_once("://")?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        _ => return None,
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains(['/', '?', '#', ' ']) {
        return None;
    }
    Some(format!("{scheme}://{rest}"))
}

/// What a user agent is configured with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// The user part of the address of record (`alice` in `sip:alice@localhost`).
    pub user: String,
    /// The SIP domain.
    pub domain: String,
    /// Whether the connections are secure (`wss`, `msrps`); written in Via, SDP and MSRP URIs.
    pub secure: bool,
    /// The registration lifetime asked for, in seconds.
    pub register_expires: u32,
    /// Bytes per MSRP chunk this agent sends.
    pub chunk_size: u64,
    /// MSRP chunks this agent keeps in flight.
    pub window: usize,
    /// How long a sent MSRP chunk waits for its response before the transfer stops (408).
    pub msrp_timeout_ms: u64,
    /// The device's `+sip.instance` (RFC 5626: a URN, `urn:uuid:…`), the same each time the
    /// device registers, so that registering again replaces the device's own binding only and
    /// the user's other devices stay registered. `None`: the agent makes one, for its lifetime.
    pub instance: Option<String>,
}

impl Config {
    /// A configuration for `user` in `domain` with the defaults: insecure transports (a local
    /// host), 600 s registrations, 64 KiB chunks (the store's chunk, and what a Pushpin gateway
    /// passes), 8 in flight, 30 s MSRP timeout.
    pub fn new(user: &str, domain: &str) -> Self {
        Self {
            user: user.to_owned(),
            domain: domain.to_owned(),
            secure: false,
            register_expires: 600,
            chunk_size: 64 * 1024,
            window: 8,
            msrp_timeout_ms: msrp::DEFAULT_TRANSACTION_TIMEOUT_MS,
            instance: None,
        }
    }
}

/// A random `urn:uuid:` (RFC 4122 version 4) from `ids`, for a device's `+sip.instance`.
pub fn random_instance(ids: &mut TokenSource) -> String {
    let hex = ids.token(16);
    let variant = match &hex[16..17] {
        "0" | "4" | "8" | "c" => "8",
        "1" | "5" | "9" | "d" => "9",
        "2" | "6" | "a" | "e" => "a",
        _ => "b",
    };
    format!(
        "urn:uuid:{}-{}-4{}-{variant}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// Identifies one transfer (either direction) of one agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TransferId(pub u64);

/// Identifies one outgoing chat message of one agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChatId(pub u64);

/// A final SIP answer that refused a request: its status and the reason the server gave (the text of
/// its `Warning: 399` header, else its reason phrase).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The SIP status code.
    pub status: u16,
    /// The reason text.
    pub reason: String,
}

impl Refusal {
    /// The refusal a final response carries.
    pub fn of(response: &SipMessage) -> Self {
        Self {
            status: response.status().unwrap_or(0),
            reason: Warning::explanation(response),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.reason)
    }
}

/// The file a user sends: what the offer announces. The caller computes the SHA-256 (streaming the
/// file once) before offering, because the selector carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingFile {
    /// The file name announced (not a path).
    pub name: String,
    /// Its media type.
    pub content_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256.
    pub sha256: [u8; 32],
}

/// How an incoming file was offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OfferKind {
    /// The receiver AS invited the user and will send once the user accepts.
    Push,
    /// The receiver AS told the user about the file; accepting asks for it.
    Pull,
}

/// A file offered to the user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingFile {
    /// Push or pull.
    pub kind: OfferKind,
    /// Who sent it (the From of the offer).
    pub from: String,
    /// The announced name. Untrusted: sanitize before using it in a path.
    pub name: Option<String>,
    /// The announced media type.
    pub content_type: String,
    /// The size in bytes.
    pub size: u64,
    /// The announced SHA-256, if any.
    pub sha256: Option<[u8; 32]>,
    /// The HTTP fallback URL a pull offer carries.
    pub url: Option<String>,
}

/// What happened to a transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransferEvent {
    /// Receiving: a file is offered; answer with [`UserAgent::accept`] or [`UserAgent::decline`].
    Offered(IncomingFile),
    /// Sending: the sender AS took the offer and wants the bytes from `resume_from` (0-based) on.
    Accepted {
        /// The first byte the server lacks (`a=file-range`), 0 for a new upload.
        resume_from: u64,
    },
    /// Sending: read these bytes of the file and pass them to [`UserAgent::provide_bytes`].
    NeedBytes {
        /// 0-based, end-exclusive.
        range: Range<u64>,
    },
    /// Sending: every byte before `acknowledged` got a 200.
    Progress {
        /// The acknowledged prefix.
        acknowledged: u64,
    },
    /// Sending: every byte is acknowledged.
    Uploaded,
    /// Sending: the REPORT the server sent about the whole file.
    Report {
        /// Its status code (200 for success).
        status: u16,
        /// Its comment.
        comment: Option<String>,
    },
    /// Receiving: write `data` at `offset` of the output file (before the acknowledgement that
    /// follows this event is sent).
    Write {
        /// 0-based offset in the file.
        offset: u64,
        /// The bytes.
        data: Bytes,
    },
    /// Receiving: every byte has arrived; compute the SHA-256 of what was written and pass it to
    /// [`UserAgent::digest_computed`].
    Received {
        /// The file size.
        size: u64,
    },
    /// Receiving: the digest matched the announced one; the success REPORT is sent.
    Verified,
    /// Receiving: the digest did not match; a failure REPORT is sent.
    DigestMismatch {
        /// The announced digest.
        expected: [u8; 32],
        /// The digest of what was written.
        actual: [u8; 32],
    },
    /// Receiving: the server aborted the file before its end (a `#` chunk, RFC 4975 section
    /// 7.1.1: its sender stopped, or its bytes did not hash to the announced digest); discard what
    /// was written. The server's BYE follows, its `Reason` saying why.
    Aborted,
    /// The transfer failed: a SIP refusal, an MSRP error or timeout (408), or a bind refused.
    Failed(Refusal),
    /// The session ended with the server's BYE, or the offer was withdrawn with a CANCEL before it
    /// was answered (another device of the user took it); the transfer is over.
    Ended {
        /// The BYE's or CANCEL's Reason header, if any.
        reason: Option<Reason>,
    },
}

/// Something for the application.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The registrar accepted the registration for `expires` seconds.
    Registered {
        /// The lifetime granted.
        expires: u32,
    },
    /// The registration is removed.
    Unregistered,
    /// The registrar refused the REGISTER.
    RegistrationFailed(Refusal),
    /// A chat message was accepted (2xx).
    ChatSent {
        /// Which message.
        chat: ChatId,
        /// The status (202 from the servers).
        status: u16,
    },
    /// A chat message was refused.
    ChatFailed {
        /// Which message.
        chat: ChatId,
        /// The answer.
        refusal: Refusal,
    },
    /// A chat message arrived (and was answered 200).
    ChatReceived {
        /// The sender's URI.
        from: String,
        /// Its Content-Type.
        content_type: String,
        /// Its body.
        body: Bytes,
    },
    /// Something happened to a transfer.
    Transfer {
        /// Which transfer.
        id: TransferId,
        /// What happened.
        event: TransferEvent,
    },
}

/// Which of a device's WebSocket connections a message travels over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Link {
    /// The one SIP connection (RFC 7118), to the sender AS.
    Sip,
    /// The MSRP connection (RFC 7977) to this server: the sender AS takes the files the user
    /// sends, the receiver AS delivers the files the user receives.
    Msrp(Side),
}

/// One thing for the caller to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send this whole message over this connection (one WebSocket message).
    Transmit {
        /// Which connection.
        link: Link,
        /// The message.
        message: Bytes,
    },
    /// Tell the application.
    Event(Event),
}

/// A command the agent cannot carry out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// An address is not a SIP URI (or a user name with the agent's domain).
    #[error("{address:?} is not a SIP address")]
    BadAddress {
        /// The text given.
        address: String,
    },
    /// No transfer has this id (any more).
    #[error("no transfer {0:?}")]
    UnknownTransfer(TransferId),
    /// The transfer is not waiting for this command.
    #[error("transfer {id:?} is not {expected}")]
    WrongState {
        /// Which transfer.
        id: TransferId,
        /// What the command needs.
        expected: &'static str,
    },
    /// Bytes were provided that no planned chunk asked for.
    #[error("no chunk of {len} bytes at offset {offset} was asked for")]
    UnexpectedBytes {
        /// The offset given.
        offset: u64,
        /// How many bytes.
        len: usize,
    },
    /// A SIP message could not be built.
    #[error("SIP: {0}")]
    Sip(#[from] SipError),
    /// An SDP body could not be built.
    #[error("SDP: {0}")]
    Sdp(#[from] SdpError),
    /// An MSRP message could not be built.
    #[error("MSRP: {0}")]
    Msrp(#[from] MsrpError),
}

/// The registration's state, kept across refreshes (same Call-ID, rising CSeq, RFC 3261 10.2.4).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Registration {
    call_id: Option<String>,
    cseq: u32,
    delivery: Option<Delivery>,
    /// The REGISTER awaiting its answer.
    pending: Option<PendingRegister>,
    /// When to refresh, while registered.
    refresh_at: Option<Timestamp>,
    /// The challenge last answered and how many requests answered it (the next `nc`).
    challenge: Option<(Challenge, u32)>,
}

/// A REGISTER awaiting its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PendingRegister {
    cseq: u32,
    /// Whether it removes the binding (`Expires: 0`).
    removing: bool,
    /// Whether it carried credentials: a second `401` to it means they were refused.
    answered: bool,
}

/// A user's password, held in memory only to answer digest challenges (RFC 3261 section 22): never
/// written into a message, an event, a checkpoint or a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps the password the user typed.
    pub fn new(password: impl Into<String>) -> Self {
        Self(password.into())
    }

    /// The password itself, to derive verifiers or answer a challenge from.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A client's user agent: registration, chats and transfers over one SIP and one MSRP connection.
pub struct UserAgent {
    config: Config,
    ids: TokenSource,
    /// The `.invalid` host of RFC 7118 clients, written in Via, Contact, SDP and MSRP URIs.
    host: String,
    aor: SipUri,
    password: Option<Password>,
    registration: Registration,
    chats: BTreeMap<String, ChatId>,
    next_id: u64,
    outgoing: BTreeMap<TransferId, Outgoing>,
    /// Outgoing transfers ended by the server's BYE and still waiting for a late REPORT, oldest
    /// first; at most [`CLOSED_KEPT`].
    closed: VecDeque<TransferId>,
    incoming: BTreeMap<TransferId, Incoming>,
    outputs: VecDeque<Output>,
}

/// How many ended uploads are remembered for their late REPORT.
const CLOSED_KEPT: usize = 16;

impl fmt::Debug for UserAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserAgent")
            .field("aor", &self.aor.to_string())
            .field("outgoing", &self.outgoing.len())
            .field("incoming", &self.incoming.len())
            .finish_non_exhaustive()
    }
}

impl UserAgent {
    /// An agent for `config.user` at `config.domain`, drawing every random value from `entropy`.
    pub fn new(config: Config, entropy: Entropy) -> Result<Self, ClientError> {
        let aor =
            SipUri::parse(&format!("sip:{}@{}", config.user, config.domain)).map_err(|_| {
                ClientError::BadAddress {
                    address: format!("{}@{}", config.user, config.domain),
                }
            })?;
        let mut ids = TokenSource::new(entropy);
        let host = sip::random_invalid_host(&mut ids);
        let mut config = config;
        if config.instance.is_none() {
            config.instance = Some(random_instance(&mut ids));
        }
        Ok(Self {
            config,
            ids,
            host,
            aor,
            password: None,
            registration: Registration {
                call_id: None,
                cseq: 0,
                delivery: None,
                pending: None,
                refresh_at: None,
                challenge: None,
            },
            chats: BTreeMap::new(),
            next_id: 0,
            outgoing: BTreeMap::new(),
            closed: VecDeque::new(),
            incoming: BTreeMap::new(),
            outputs: VecDeque::new(),
        })
    }

    /// The address of record, `sip:<user>@<domain>`.
    pub fn aor(&self) -> &SipUri {
        &self.aor
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The next thing to do, in order.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.outgoing
            .values()
            .filter_map(Outgoing::next_deadline)
            .chain(self.registration.refresh_at)
            .min()
    }

    /// Whether any transfer is still going.
    pub fn has_transfers(&self) -> bool {
        self.outgoing.values().any(|t| !t.is_closed()) || !self.incoming.is_empty()
    }

    /// Resolves `to` (a SIP URI, or a bare user name in the agent's domain) to a URI.
    pub fn resolve(&self, to: &str) -> Result<SipUri, ClientError> {
        let text = if to.contains(':') {
            to.to_owned()
        } else if to.contains('@') {
            format!("sip:{to}")
        } else {
            format!("sip:{to}@{}", self.config.domain)
        };
        SipUri::parse(&text).map_err(|_| ClientError::BadAddress {
            address: to.to_owned(),
        })
    }

    /// The password the agent answers the registrar's digest challenges with (RFC 3261 section 22,
    /// RFC 8760: the strongest algorithm offered). Without one, a challenge ends the registration
    /// with [`Event::RegistrationFailed`].
    pub fn set_password(&mut self, password: Password) {
        self.password = Some(password);
    }

    /// Registers (or refreshes) with the chosen delivery mode (`None`: the server's default).
    pub fn register(&mut self, delivery: Option<Delivery>) -> Result<(), ClientError> {
        self.registration.delivery = delivery;
        self.send_register(self.config.register_expires, None)
    }

    /// Removes the registration (`Expires: 0`).
    pub fn unregister(&mut self) -> Result<(), ClientError> {
        self.registration.refresh_at = None;
        self.send_register(0, None)
    }

    /// Sends a REGISTER for `expires` seconds, with `authorization` answering a challenge.
    fn send_register(
        &mut self,
        expires: u32,
        authorization: Option<Credentials>,
    ) -> Result<(), ClientError> {
        let registrar = SipUri::parse(&format!("sip:{}", self.config.domain)).map_err(|_| {
            ClientError::BadAddress {
                address: self.config.domain.clone(),
            }
        })?;
        let call_id = match &self.registration.call_id {
            Some(id) => id.clone(),
            None => self.ids.call_id(),
        };
        let cseq = self.registration.cseq.saturating_add(1).max(1);
        let mut builder = RequestBuilder::new(
            Method::Register,
            registrar,
            NameAddr::new(self.aor.clone()),
            NameAddr::new(self.aor.clone()),
        )
        .transport(self.transport())
        .local_host(&self.host)
        .contact_user(&self.config.user)
        .call_id(&call_id)
        .cseq(cseq)
        .expires(expires);
        if let Some(instance) = &self.config.instance {
            builder = builder.contact_param(INSTANCE_PARAM, Some(&format!("\"<{instance}>\"")));
        }
        if let Some(delivery) = self.registration.delivery {
            let mode = match delivery {
                Delivery::Push => "push",
                Delivery::Pull => "pull",
            };
            builder = builder.contact_param(DELIVERY_PARAM, Some(mode));
        }
        let answered = authorization.is_some();
        if let Some(credentials) = authorization {
            builder = builder.header("Authorization", &credentials.to_string());
        }
        let register = builder.build(&mut self.ids)?;
        self.registration.call_id = Some(call_id);
        self.registration.cseq = cseq;
        self.registration.pending = Some(PendingRegister {
            cseq,
            removing: expires == 0,
            answered,
        });
        self.transmit_sip(&register);
        Ok(())
    }

    /// Sends a chat message (RFC 3428 MESSAGE) to `to`.
    pub fn chat(
        &mut self,
        to: &str,
        content_type: &str,
        body: Bytes,
    ) -> Result<ChatId, ClientError> {
        let to = self.resolve(to)?;
        let message = RequestBuilder::new(
            Method::Message,
            to.clone(),
            NameAddr::new(self.aor.clone()),
            NameAddr::new(to),
        )
        .transport(self.transport())
        .local_host(&self.host)
        .body(content_type, body)
        .build(&mut self.ids)?;
        let chat = ChatId(self.next_id());
        self.chats.insert(message.call_id().to_owned(), chat);
        self.transmit_sip(&message);
        Ok(chat)
    }

    /// Offers `file` to `to` (RFC 5547 push); the transfer then runs on events.
    pub fn send_file(&mut self, to: &str, file: OutgoingFile) -> Result<TransferId, ClientError> {
        let to = self.resolve(to)?;
        let session = self.ids.msrp_id();
        let local = self.msrp_uri(&session);
        let transfer = Outgoing::offer(self, to, file, session, local)?;
        let id = TransferId(self.next_id());
        self.outgoing.insert(id, transfer);
        Ok(id)
    }

    /// Hands over the bytes a [`TransferEvent::NeedBytes`] asked for (`data` starts at `offset`).
    pub fn provide_bytes(
        &mut self,
        id: TransferId,
        offset: u64,
        data: Bytes,
        now: Timestamp,
    ) -> Result<(), ClientError> {
        let mut transfer = self
            .outgoing
            .remove(&id)
            .ok_or(ClientError::UnknownTransfer(id))?;
        let result = transfer.provide_bytes(self, id, offset, data, now);
        self.outgoing.insert(id, transfer);
        result
    }

    /// Stops sending a file midway (see the module docs). Returns false when it is too late to
    /// stop it: every byte is sent, or the session is over.
    pub fn stop_sending(&mut self, id: TransferId) -> Result<bool, ClientError> {
        let mut transfer = self
            .outgoing
            .remove(&id)
            .ok_or(ClientError::UnknownTransfer(id))?;
        let stopped = transfer.stop(self);
        self.outgoing.insert(id, transfer);
        Ok(stopped)
    }

    /// Accepts an offered file: answers a push INVITE, or sends the pull request, asking for the
    /// bytes from `resume_from` on (pull only; a push resumes where the server stands).
    pub fn accept(&mut self, id: TransferId, resume_from: u64) -> Result<(), ClientError> {
        let mut transfer = self
            .incoming
            .remove(&id)
            .ok_or(ClientError::UnknownTransfer(id))?;
        let result = transfer.accept(self, id, resume_from);
        self.incoming.insert(id, transfer);
        result
    }

    /// Declines an offered file (push: 603 Decline; pull: the offer is forgotten).
    pub fn decline(&mut self, id: TransferId) -> Result<(), ClientError> {
        let mut transfer = self
            .incoming
            .remove(&id)
            .ok_or(ClientError::UnknownTransfer(id))?;
        transfer.decline(self)
    }

    /// The digest of what was written, after [`TransferEvent::Received`].
    pub fn digest_computed(&mut self, id: TransferId, sha256: [u8; 32]) -> Result<(), ClientError> {
        let mut transfer = self
            .incoming
            .remove(&id)
            .ok_or(ClientError::UnknownTransfer(id))?;
        let result = transfer.digest_computed(self, id, sha256);
        self.incoming.insert(id, transfer);
        result
    }

    /// What an interrupted incoming transfer needs to resume in another agent (another process).
    /// Take it after applying every output so far: it counts the bytes of every
    /// [`TransferEvent::Write`] already emitted as written.
    pub fn checkpoint(&self, id: TransferId) -> Option<IncomingCheckpoint> {
        self.incoming.get(&id).and_then(Incoming::checkpoint)
    }

    /// Takes over a delivery from a checkpoint and binds it to the current MSRP connection; the
    /// receiver AS goes on from the last byte it got a 200 for.
    pub fn restore(&mut self, checkpoint: IncomingCheckpoint) -> Result<TransferId, ClientError> {
        let id = TransferId(self.next_id());
        let transfer = Incoming::restore(self, id, checkpoint)?;
        self.incoming.insert(id, transfer);
        Ok(id)
    }

    /// A new MSRP connection to the receiver AS is open (after a drop): binds it to every delivery
    /// in progress.
    pub fn msrp_connected(&mut self) {
        let ids: Vec<TransferId> = self.incoming.keys().copied().collect();
        for id in ids {
            if let Some(mut transfer) = self.incoming.remove(&id) {
                transfer.rebind(self, id);
                self.incoming.insert(id, transfer);
            }
        }
    }

    /// Stops every transfer waiting on a chunk response overdue at `now` (408), and refreshes the
    /// registration when due.
    pub fn handle_timeout(&mut self, now: Timestamp) -> Result<(), ClientError> {
        let ids: Vec<TransferId> = self.outgoing.keys().copied().collect();
        for id in ids {
            if let Some(mut transfer) = self.outgoing.remove(&id)
                && transfer.on_timeout(self, id, now)
            {
                self.outgoing.insert(id, transfer);
            }
        }
        if self.registration.refresh_at.is_some_and(|at| at <= now) {
            self.registration.refresh_at = None;
            self.send_register(self.config.register_expires, None)?;
        }
        Ok(())
    }

    /// One WebSocket message from the SIP connection. Messages that do not parse are answered 400
    /// when they look like requests and dropped otherwise.
    pub fn handle_sip(&mut self, message: &[u8], now: Timestamp) {
        let message = match sip::parse(message, &sip::Limits::default()) {
            Ok(message) => message,
            Err(_) => return,
        };
        if message.is_response() {
            self.on_response(&message, now);
        } else {
            self.on_request(&message);
        }
    }

    /// One WebSocket message from the MSRP connection to `server`.
    pub fn handle_msrp(&mut self, server: Side, message: Bytes, now: Timestamp) {
        let frame = match msrp::parse_message(&message, &self.msrp_limits()) {
            Ok(frame) => frame,
            Err(_) => return,
        };
        let session = frame
            .headers()
            .to_path()
            .first()
            .and_then(|uri| uri.session_id.clone());
        let Some(session) = session else { return };
        if let Some(id) = self.outgoing_by_session(&session)
            && let Some(mut transfer) = self.outgoing.remove(&id)
        {
            if transfer.on_msrp(self, id, frame, now) {
                self.outgoing.insert(id, transfer);
            } else {
                self.closed.retain(|closed| *closed != id);
            }
            return;
        }
        if let Some(id) = self.incoming_by_session(&session)
            && let Some(mut transfer) = self.incoming.remove(&id)
        {
            if transfer.on_msrp(self, id, frame) {
                self.incoming.insert(id, transfer);
            }
            return;
        }
        // A request for a session this agent does not know: 481 (RFC 4975 section 7.3).
        if let Frame::Request(request) = frame
            && let Some(local) = request.headers.to_path().first().cloned()
            && let Some(response) = request.response(481, None, &local)
        {
            self.transmit_msrp(server, &Frame::Response(response));
        }
    }

    fn on_response(&mut self, response: &SipMessage, now: Timestamp) {
        let Some(status) = response.status() else {
            return;
        };
        let call_id = response.call_id();
        if self.registration.call_id.as_deref() == Some(call_id)
            && *response.method() == Method::Register
        {
            self.on_register_response(response, status, now);
            return;
        }
        if *response.method() == Method::Message
            && status >= 200
            && let Some(chat) = self.chats.remove(call_id)
        {
            let event = if status < 300 {
                Event::ChatSent { chat, status }
            } else {
                Event::ChatFailed {
                    chat,
                    refusal: Refusal::of(response),
                }
            };
            self.emit(event);
            return;
        }
        if let Some(id) = self
            .outgoing
            .iter()
            .find(|(_, t)| t.owns_response(response))
            .map(|(id, _)| *id)
            && let Some(mut transfer) = self.outgoing.remove(&id)
        {
            if transfer.on_sip_response(self, id, response, now) {
                self.outgoing.insert(id, transfer);
            }
            return;
        }
        if let Some(id) = self
            .incoming
            .iter()
            .find(|(_, t)| t.owns_response(response))
            .map(|(id, _)| *id)
            && let Some(mut transfer) = self.incoming.remove(&id)
            && transfer.on_sip_response(self, id, response)
        {
            self.incoming.insert(id, transfer);
        }
    }

    fn on_register_response(&mut self, response: &SipMessage, status: u16, now: Timestamp) {
        let Some(pending) = self.registration.pending else {
            return;
        };
        if response.cseq().seq != pending.cseq || status < 200 {
            return;
        }
        self.registration.pending = None;
        if status == 401 && self.answer_challenge(response, pending) {
            return;
        }
        let removing = pending.removing;
        if status >= 300 {
            self.registration.refresh_at = None;
            self.emit(Event::RegistrationFailed(Refusal::of(response)));
            return;
        }
        if removing {
            self.registration.refresh_at = None;
            self.emit(Event::Unregistered);
            return;
        }
        // The 200 lists every binding of the user (RFC 3261 section 10.3): this device's is the
        // one with its instance.
        let mine = response.contacts().iter().find(|contact| {
            let instance = contact.param(INSTANCE_PARAM).and_then(|p| p.value());
            instance.map(|v| {
                v.trim_matches('"')
                    .trim_start_matches('<')
                    .trim_end_matches('>')
            }) == self.config.instance.as_deref()
        });
        let expires = mine
            .and_then(NameAddr::expires)
            .or(response.expires())
            .unwrap_or(self.config.register_expires);
        // Refresh when four fifths of the lifetime have passed, so a slow answer cannot let it lapse.
        self.registration.refresh_at =
            (expires > 0).then(|| now.plus_millis(u64::from(expires) * 800));
        self.emit(Event::Registered { expires });
    }

    /// Answers the registrar's `401` with credentials, unless there is no password, no challenge
    /// the agent can answer, or the credentials just sent were refused (a challenge that is not
    /// `stale`). Whether a REGISTER with credentials went out.
    fn answer_challenge(&mut self, response: &SipMessage, pending: PendingRegister) -> bool {
        let Some(password) = self.password.clone() else {
            return false;
        };
        let offered = response
            .header_values("WWW-Authenticate")
            .filter_map(|value| Challenge::parse(value).ok());
        let Some(challenge) = Challenge::strongest(offered) else {
            return false;
        };
        if pending.answered && !challenge.stale {
            return false;
        }
        let nc = match &self.registration.challenge {
            Some((known, count)) if known.nonce == challenge.nonce => count.saturating_add(1),
            _ => 1,
        };
        let registrar = format!("sip:{}", self.config.domain);
        let cnonce = self.ids.token(16);
        let credentials = challenge.answer(
            &self.config.user,
            password.expose(),
            Method::Register.as_str(),
            &registrar,
            &cnonce,
            nc,
        );
        self.registration.challenge = Some((challenge, nc));
        let expires = if pending.removing {
            0
        } else {
            self.config.register_expires
        };
        self.send_register(expires, Some(credentials)).is_ok()
    }

    fn on_request(&mut self, request: &SipMessage) {
        match request.method() {
            Method::Invite => {
                if request.to().tag().is_some() {
                    self.reply(request, 488, Some("re-INVITE is not supported"));
                    return;
                }
                match Incoming::invited(request) {
                    Ok((transfer, file)) => {
                        let id = TransferId(self.next_id());
                        self.incoming.insert(id, transfer);
                        self.emit_transfer(id, TransferEvent::Offered(file));
                    }
                    Err(why) => self.reply(request, 488, Some(&why)),
                }
            }
            Method::Message if request.has_content_type(crate::ft_http::CONTENT_TYPE) => {
                match Incoming::offered(request) {
                    Ok((transfer, file)) => {
                        self.reply(request, 200, None);
                        let id = TransferId(self.next_id());
                        self.incoming.insert(id, transfer);
                        self.emit_transfer(id, TransferEvent::Offered(file));
                    }
                    Err(why) => self.reply(request, 400, Some(&why)),
                }
            }
            Method::Message => {
                self.reply(request, 200, None);
                self.emit(Event::ChatReceived {
                    from: request.from().uri().to_string(),
                    content_type: request.content_type().unwrap_or("text/plain").to_owned(),
                    body: request.body().clone(),
                });
            }
            Method::Bye => self.on_bye(request),
            Method::Cancel => self.on_cancel(request),
            // ACKs belong to a dialog this agent answered; every other one is absorbed.
            Method::Ack => {
                let id = self
                    .incoming
                    .iter()
                    .find(|(_, t)| t.owns_request(request))
                    .map(|(id, _)| *id);
                if let Some(id) = id
                    && let Some(mut transfer) = self.incoming.remove(&id)
                {
                    transfer.on_ack(self, id);
                    self.incoming.insert(id, transfer);
                }
            }
            Method::Options => self.reply(request, 200, None),
            _ => self.reply(request, 501, None),
        }
    }

    fn on_bye(&mut self, bye: &SipMessage) {
        let outgoing = self
            .outgoing
            .iter()
            .find(|(_, t)| t.owns_request(bye))
            .map(|(id, _)| *id);
        let incoming = self
            .incoming
            .iter()
            .find(|(_, t)| t.owns_request(bye))
            .map(|(id, _)| *id);
        let id = match (outgoing, incoming) {
            (Some(id), _) => {
                if let Some(transfer) = self.outgoing.get_mut(&id) {
                    transfer.close();
                }
                self.closed.push_back(id);
                while self.closed.len() > CLOSED_KEPT {
                    if let Some(oldest) = self.closed.pop_front() {
                        self.outgoing.remove(&oldest);
                    }
                }
                id
            }
            (None, Some(id)) => {
                self.incoming.remove(&id);
                id
            }
            (None, None) => {
                self.reply(bye, 481, None);
                return;
            }
        };
        self.reply(bye, 200, None);
        let reason = Reason::of(bye);
        self.emit_transfer(id, TransferEvent::Ended { reason });
    }

    /// CANCEL (RFC 3261 section 9.2): a pushed offer still waiting for [`UserAgent::accept`] is
    /// withdrawn, as when another device of the user took it (RFC 3326 `Reason`). The CANCEL gets
    /// `200`, the INVITE `487`, and the transfer ends with the CANCEL's reason. A CANCEL for no
    /// pending INVITE gets `481`; one for an offer already answered changes nothing (the server
    /// ends that session with a BYE).
    fn on_cancel(&mut self, cancel: &SipMessage) {
        let pending = self.incoming.iter().find_map(|(id, t)| {
            t.invite_cancelled_by(cancel)
                .map(|invite| (*id, invite.clone()))
        });
        let Some((id, invite)) = pending else {
            self.reply(cancel, 481, None);
            return;
        };
        self.reply(cancel, 200, None);
        self.reply(&invite, 487, None);
        self.incoming.remove(&id);
        let reason = Reason::of(cancel);
        self.emit_transfer(id, TransferEvent::Ended { reason });
    }

    fn outgoing_by_session(&self, session: &str) -> Option<TransferId> {
        self.outgoing
            .iter()
            .find(|(_, t)| t.session() == session)
            .map(|(id, _)| *id)
    }

    fn incoming_by_session(&self, session: &str) -> Option<TransferId> {
        self.incoming
            .iter()
            .find(|(_, t)| t.session() == Some(session))
            .map(|(id, _)| *id)
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn transport(&self) -> Transport {
        if self.config.secure {
            Transport::Wss
        } else {
            Transport::Ws
        }
    }

    /// This agent's MSRP URI for a session (RFC 7977: `.invalid` host, `;ws`).
    fn msrp_uri(&self, session: &str) -> MsrpUri {
        MsrpUri {
            secure: self.config.secure,
            userinfo: None,
            host: self.host.clone(),
            port: Some(2855),
            session_id: Some(session.to_owned()),
            transport: "ws".into(),
            params: Vec::new(),
        }
    }

    fn msrp_limits(&self) -> msrp::Limits {
        msrp::Limits {
            max_body_bytes: usize::try_from(self.config.chunk_size)
                .unwrap_or(usize::MAX)
                .max(4 << 20),
            ..msrp::Limits::default()
        }
    }

    fn reply(&mut self, request: &SipMessage, code: u16, why: Option<&str>) {
        let tag = request.to().tag().is_none().then(|| self.ids.tag());
        let reason = sip::reason_phrase(code).unwrap_or("Unknown");
        if let Ok(mut response) = sip::response(request, code, reason, tag.as_deref()) {
            if let Some(why) = why {
                let warning = Warning::miscellaneous(&self.host, why);
                let _ = response.push_header("Warning", &warning.to_string());
            }
            self.transmit_sip(&response);
        }
    }

    /// An INVITE from this agent to `to` with an SDP body, transmitted; the INVITE for its dialog.
    fn invite(&mut self, to: SipUri, sdp: Bytes) -> Result<SipMessage, ClientError> {
        let invite = RequestBuilder::new(
            Method::Invite,
            to.clone(),
            NameAddr::new(self.aor.clone()),
            NameAddr::new(to),
        )
        .transport(self.transport())
        .local_host(&self.host)
        .contact_user(&self.config.user)
        .body("application/sdp", sdp)
        .build(&mut self.ids)?;
        self.transmit_sip(&invite);
        Ok(invite)
    }

    fn transmit_sip(&mut self, message: &SipMessage) {
        self.outputs.push_back(Output::Transmit {
            link: Link::Sip,
            message: message.to_bytes(),
        });
    }

    /// Sends an MSRP frame over the connection to `server`.
    fn transmit_msrp(&mut self, server: Side, frame: &Frame) {
        let mut out = Vec::new();
        frame.encode(&mut out);
        self.outputs.push_back(Output::Transmit {
            link: Link::Msrp(server),
            message: Bytes::from(out),
        });
    }

    fn emit(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }

    fn emit_transfer(&mut self, id: TransferId, event: TransferEvent) {
        self.emit(Event::Transfer { id, event });
    }

    /// A 2xx answer to our INVITE that cannot be used (`why`): the session it set up on the server
    /// is acknowledged and ended at once (ACK, then BYE), and the transfer fails with 488.
    fn refuse_answer(
        &mut self,
        id: TransferId,
        invite: &SipMessage,
        response: &SipMessage,
        why: String,
    ) {
        if let Ok(mut dialog) = crate::sip::Dialog::uac(invite, response) {
            if let Ok(ack) = dialog.ack(&mut self.ids) {
                self.transmit_sip(&ack);
            }
            if let Ok(bye) = dialog.request(Method::Bye, &mut self.ids) {
                self.transmit_sip(&bye);
            }
        }
        self.emit_transfer(
            id,
            TransferEvent::Failed(Refusal {
                status: 488,
                reason: why,
            }),
        );
    }
}

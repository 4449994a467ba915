//! The two application servers of the patent as sans-IO state machines: the sender AS, which takes a
//! file from its user and publishes it to the shared store, and the receiver AS, which delivers a
//! stored file to its user. Both run on the [`engine`]; this module owns what they have in common:
//! the inputs and outputs an edge function exchanges with them.

pub mod common;
pub mod engine;
pub mod receiver;
pub mod sender;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::first_value::{SigningKey, Url};
use crate::msrp::MsrpUri;
use crate::sip::{Scheme, SipUri};
use crate::store::{LayoutConfig, StoreOp};
use crate::time::Timestamp;

pub use engine::Engine;
pub use receiver::ReceiverAs;
pub use sender::SenderAs;

use engine::{Logic, Miss, Tx};
use receiver::ReceiverLogic;
use sender::SenderLogic;

/// The logic of either server, so that one engine type (and one edge request driver) serves both.
#[derive(Clone, Debug)]
pub enum ServerLogic {
    /// The sender AS.
    Sender(SenderLogic),
    /// The receiver AS.
    Receiver(ReceiverLogic),
}

impl ServerLogic {
    /// The logic of the `side` server, configured with `config`.
    pub fn new(side: Side, config: ServerConfig) -> Result<Self, ConfigError> {
        Ok(match side {
            Side::Sender => Self::Sender(SenderLogic::new(config)?),
            Side::Receiver => Self::Receiver(ReceiverLogic::new(config)?),
        })
    }
}

impl Logic for ServerLogic {
    fn side(&self) -> Side {
        match self {
            Self::Sender(_) => Side::Sender,
            Self::Receiver(_) => Side::Receiver,
        }
    }

    fn handle(&self, tx: &mut Tx<'_>, input: &Input) -> Result<(), Miss> {
        match self {
            Self::Sender(logic) => logic.handle(tx, input),
            Self::Receiver(logic) => logic.handle(tx, input),
        }
    }
}

/// How a file reaches its recipient (claim 12).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Delivery {
    /// The receiver AS invites the recipient and sends the file at once.
    #[default]
    Push,
    /// The receiver AS tells the recipient about the file; the recipient's INVITE (`a=recvonly` with
    /// the file's selector) is the download request.
    Pull,
}

/// Room for an MSRP chunk's start line, headers and end line (and its event's framing), in bytes:
/// what a chunk takes in a reply beyond its body.
pub const MSRP_HEADER_ROOM: usize = 1024;

/// Which of the two application servers: a user registers with each one separately, the sender AS
/// for what the user sends, the receiver AS for what the user receives. The two registrations are
/// independent records, so a user's two connections never overwrite each other's binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Side {
    /// The sender AS: a user's outgoing files and chats.
    Sender,
    /// The receiver AS: a user's incoming files and chats.
    Receiver,
}

impl Side {
    /// `sender` or `receiver`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sender => "sender",
            Self::Receiver => "receiver",
        }
    }

    /// The first path segment of the server's routes: `/sender/` or `/receiver/`.
    pub fn path_prefix(self) -> &'static str {
        match self {
            Self::Sender => "/sender/",
            Self::Receiver => "/receiver/",
        }
    }
}

/// What both application servers are configured with (Spin variables at the edge).
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The SIP domain whose users the servers serve (`sip:alice@<domain>`).
    pub domain: String,
    /// This server's host name, written in Via, Contact, SDP and its MSRP URIs.
    pub host: String,
    /// Whether clients reach the server over TLS (`wss`, `msrps`).
    pub secure: bool,
    /// The public base URL under which files are downloadable (`<base>/files/<digest>`).
    pub public_base: Url,
    /// Signing keys of first values: the first signs, every one verifies (key rotation).
    pub signing_keys: Vec<SigningKey>,
    /// How files are kept in the shared store.
    pub layout: LayoutConfig,
    /// How long a signed URL is valid, in seconds (never beyond the file's own lifetime).
    pub url_lifetime_secs: u64,
    /// Bytes per MSRP chunk the receiver AS sends.
    pub msrp_chunk_size: u32,
    /// MSRP chunks the receiver AS keeps in flight.
    pub window: usize,
    /// The most bytes of MSRP chunks the receiver AS sends in answer to one request: a gateway caps
    /// the size of a reply ([`crate::grip::REPLY_LIMIT`]). Free window slots beyond it are filled
    /// by the next request.
    pub max_reply_bytes: usize,
    /// The longest registration granted, in seconds.
    pub max_registration_secs: u32,
    /// How files reach users who did not say (`ft-delivery` Contact parameter).
    pub default_delivery: Delivery,
}

/// Something that happened, for an application server to handle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// One WebSocket message from a user's SIP connection (subprotocol `sip`).
    Sip { connection: String, message: Bytes },
    /// WebSocket messages from a user's MSRP connection (subprotocol `msrp`), in order: one, or
    /// all that reached the server together (a gateway request carries several). Taking them
    /// together lets a server answer a run of acknowledgements with one refill of its window.
    Msrp {
        connection: String,
        messages: Vec<Bytes>,
    },
    /// A user's connection closed or was lost.
    Closed { connection: String },
    /// A SIP request from the other application server (over HTTP, `message/sip`). The server
    /// answers with exactly one [`Output::PeerResponse`].
    PeerRequest { message: Bytes },
    /// The other application server's answer to an [`Output::PeerRequest`].
    PeerResponse { message: Bytes },
    /// A timer set with [`Output::Timer`] is due.
    Timer { key: String },
}

/// Something for the caller to do, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send one WebSocket message (a whole SIP message or MSRP chunk) over a connection, named by
    /// its gateway id: the one whose message is being handled, or another one (the gateway gives
    /// every connection a channel of its own for that). A message for a user goes to the connection
    /// the user's registration is bound to, so it follows the user's latest registration.
    Send { connection: String, message: Bytes },
    /// Send a SIP request to the other application server and feed its answer back as
    /// [`Input::PeerResponse`].
    PeerRequest { message: Bytes },
    /// The answer to the [`Input::PeerRequest`] being handled.
    PeerResponse { message: Bytes },
    /// A store operation; answer a `Get` with [`engine::Engine::store_value`].
    Store(StoreOp),
    /// Feed [`Input::Timer`] with this key at `at` (or later).
    Timer { at: Timestamp, key: String },
}

/// A configuration the servers cannot run with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The host is not a valid SIP host name.
    #[error("{host:?} is not a valid host name")]
    BadHost { host: String },
    /// No key to sign first values with.
    #[error("at least one signing key is needed")]
    NoSigningKey,
    /// MSRP chunks or the store's chunks would be empty, or the window is zero.
    #[error("chunk sizes and the window must be positive")]
    ZeroSize,
    /// One MSRP chunk would not fit in a reply.
    #[error(
        "an MSRP chunk of {chunk_size} bytes does not fit in a reply of {max_reply_bytes} bytes"
    )]
    ReplyTooSmall {
        chunk_size: u32,
        max_reply_bytes: usize,
    },
    /// Stored chunks would not fit in one key-value entry.
    #[error("a stored chunk of {chunk_size} bytes exceeds the store's value limit")]
    ChunkTooLarge { chunk_size: u32 },
}

impl ServerConfig {
    /// This server's MSRP URI for a session: `msrp(s)://<host>/<session-id>;ws` (RFC 7977).
    pub fn msrp_uri(&self, session_id: &str) -> MsrpUri {
        MsrpUri {
            secure: self.secure,
            userinfo: None,
            host: self.host.clone(),
            port: None,
            session_id: Some(session_id.to_owned()),
            transport: "ws".into(),
            params: Vec::new(),
        }
    }

    /// Checks the configuration and returns the server's own SIP URI (`sip:<host>;transport=ws`).
    pub fn validate(&self) -> Result<SipUri, ConfigError> {
        if self.signing_keys.is_empty() {
            return Err(ConfigError::NoSigningKey);
        }
        if self.msrp_chunk_size == 0 || self.layout.chunk_size == 0 || self.window == 0 {
            return Err(ConfigError::ZeroSize);
        }
        if self.msrp_chunk_size as usize + MSRP_HEADER_ROOM > self.max_reply_bytes {
            return Err(ConfigError::ReplyTooSmall {
                chunk_size: self.msrp_chunk_size,
                max_reply_bytes: self.max_reply_bytes,
            });
        }
        if self.layout.chunk_size as usize > crate::store::VALUE_LIMIT {
            return Err(ConfigError::ChunkTooLarge {
                chunk_size: self.layout.chunk_size,
            });
        }
        let bad_host = || ConfigError::BadHost {
            host: self.host.clone(),
        };
        let mut uri = SipUri::new(Scheme::Sip, None, &self.host).map_err(|_| bad_host())?;
        uri.set_param("transport", Some("ws"))
            .map_err(|_| bad_host())?;
        Ok(uri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ServerConfig {
        ServerConfig {
            domain: "example.com".into(),
            host: "as.example.com".into(),
            secure: true,
            public_base: Url::parse("https://files.example.com/").unwrap(),
            signing_keys: vec![SigningKey::new(vec![7u8; 32]).unwrap()],
            layout: LayoutConfig::default(),
            url_lifetime_secs: 60,
            msrp_chunk_size: 1024,
            window: 4,
            max_reply_bytes: crate::grip::REPLY_LIMIT,
            max_registration_secs: 600,
            default_delivery: Delivery::Push,
        }
    }

    #[test]
    fn a_sound_configuration_yields_the_servers_contact() {
        assert_eq!(
            config().validate().unwrap().to_string(),
            "sip:as.example.com;transport=ws"
        );
    }

    #[test]
    fn unusable_configurations_are_refused() {
        type Spoil = fn(&mut ServerConfig);
        let cases: [(Spoil, ConfigError); 6] = [
            (|c| c.signing_keys.clear(), ConfigError::NoSigningKey),
            (
                |c| c.max_reply_bytes = 1500,
                ConfigError::ReplyTooSmall {
                    chunk_size: 1024,
                    max_reply_bytes: 1500,
                },
            ),
            (|c| c.window = 0, ConfigError::ZeroSize),
            (|c| c.msrp_chunk_size = 0, ConfigError::ZeroSize),
            (
                |c| c.layout.chunk_size = 2 << 20,
                ConfigError::ChunkTooLarge {
                    chunk_size: 2 << 20,
                },
            ),
            (
                |c| c.host = "bad host".into(),
                ConfigError::BadHost {
                    host: "bad host".into(),
                },
            ),
        ];
        for (spoil, expected) in cases {
            let mut spoiled = config();
            spoil(&mut spoiled);
            assert_eq!(spoiled.validate(), Err(expected));
        }
    }
}

//! The two application servers of the patent as sans-IO state machines: the sender AS, which takes a
//! file from its user and publishes it to the shared store, and the receiver AS, which delivers a
//! stored file to its user. Both run on the [`engine`]; this module owns what they have in common:
//! the inputs and outputs an edge function exchanges with them. What the rest of the crate needs to
//! know of the servers is in [`crate::service`] (which one, how they deliver) and
//! [`crate::server_config`] (how they are configured).

pub mod authentication;
pub mod common;
pub mod engine;
pub mod receiver;
pub mod rejection;
pub mod sender;

use bytes::Bytes;

use crate::server_config::{ServerConfig, ServerConfigError};
use crate::service::Side;
use crate::store::{StoreError, StoreOp};
use crate::time::Timestamp;

pub use engine::Engine;
pub use rejection::Rejection;

use engine::{Interrupt, Logic, Tx};
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
    pub fn new(side: Side, config: ServerConfig) -> Result<Self, ServerConfigError> {
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

    fn fail(&self, tx: &mut Tx<'_>, input: &Input, error: &StoreError) {
        common::answer_failure(tx, input, error);
    }

    fn handle(&self, tx: &mut Tx<'_>, input: &Input) -> Result<(), Interrupt> {
        match self {
            Self::Sender(logic) => logic.handle(tx, input),
            Self::Receiver(logic) => logic.handle(tx, input),
        }
    }
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
    /// Something the server found wrong with the store (a record it cannot read), for the
    /// operator's log; the input that met it has been answered as a failure.
    Fault(String),
}

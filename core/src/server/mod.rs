//! The two application servers of the patent as sans-IO state machines: the sender AS, which takes a
//! file from its user and publishes it to the shared store, and the receiver AS, which delivers a
//! stored file to its user. Both run on the [`engine`]; this module owns what they have in common:
//! the inputs and outputs an edge function exchanges with them.

pub mod engine;

use bytes::Bytes;

use crate::store::StoreOp;
use crate::time::Timestamp;

/// Something that happened, for an application server to handle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// One WebSocket message from a user's SIP connection (subprotocol `sip`).
    Sip { connection: String, message: Bytes },
    /// One WebSocket message from a user's MSRP connection (subprotocol `msrp`).
    Msrp { connection: String, message: Bytes },
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

/// Where a message for a user goes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Destination {
    /// The connection whose message is being handled, or another connection by its id.
    Connection(String),
    /// Every SIP connection registered for this address of record.
    User(String),
    /// The MSRP connection bound to this MSRP session id.
    MsrpSession(String),
}

/// Something for the caller to do, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send one WebSocket message (a whole SIP message or MSRP chunk).
    Send { to: Destination, message: Bytes },
    /// From now on, deliver what is sent to `to` over this connection as well (a gateway
    /// subscription: `to` is a [`Destination::User`] or [`Destination::MsrpSession`]).
    Subscribe { connection: String, to: Destination },
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

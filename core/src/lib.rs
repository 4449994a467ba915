//! # rcs-core: RCS file transfer through a shared store, sans I/O
//!
//! This crate is the protocol core of the project. Everything else (the Spin components, the local
//! edge host, the browser client, the command-line client) drives it; it never touches a socket, a
//! file, a clock or a random number generator itself. Time ([`time::Timestamp`]) and randomness
//! ([`ids::Entropy`]) are inputs, so every state machine runs the same on the edge, in the browser and
//! in tests driven in virtual time.
//!
//! ## What lives here
//! - [`ids`]: SIP tags, branches, Call-IDs, MSRP transaction and message ids from supplied randomness.
//! - [`sip`]: SIP over WebSocket (RFC 3261, RFC 7118): message parser and writer, request and response
//!   builders, CANCEL, dialogs.
//! - [`time`]: the timestamp type the core takes as input, and its calendar conversions.
//!
//! ## Invariants
//! - No I/O, no clock or RNG reads, no async, no locks: callers own all of that.
//! - Parsers never panic on untrusted input; they return typed errors that say what was being parsed.
//! - Everything that must outlive one edge-function request serializes with serde.

pub mod ids;
pub mod sip;
pub mod time;

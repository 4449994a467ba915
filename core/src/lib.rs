//! # rcs-core: RCS file transfer through a shared store, sans I/O
//!
//! This crate is the protocol core of the project. Everything else (the Spin components, the local
//! edge host, the browser client, the command-line client) drives it; it never touches a socket, a
//! file, a clock or a random number generator itself. Time ([`time::Timestamp`]) and randomness
//! ([`ids::Entropy`]) are inputs, so every state machine runs the same on the edge, in the browser and
//! in tests driven in virtual time.
//!
//! ## What lives here
//! - [`accounts`]: accounts (a user name and password verifiers, never the password), the requests
//!   that create and change them, and the throttle on failed sign-ins.
//! - [`client`]: the user agent of a client (CLI, browser) as a sans-IO state machine: registration,
//!   chat, sending and receiving files.
//! - [`digest`]: Digest authentication (RFC 7616, RFC 8760, RFC 3261 section 22): challenges,
//!   credentials, password verifiers, and the stateless nonces the servers issue.
//! - [`edge_request`]: one edge request of an application server, driven once: the gateway's events
//!   (or a peer request, or due timers) to engine inputs, and the engine's outputs to actions (reads,
//!   writes, the peer request, publishes) and the reply. The one place to learn how a request runs.
//! - [`first_value`]: the first value of claims 4 and 13: the content digest (feature code and storage
//!   key) and the HMAC-signed, expiring URL of a file's storage path, with its verification.
//! - [`ft_http`]: the GSMA RCC.07 FT-HTTP file-info XML (`application/vnd.gsma.rcs-ft-http+xml`) that
//!   carries the first value between application servers.
//! - [`http_files`]: the HTTP file paths of the edge: the signed download (Range, conditions,
//!   Content-Disposition) and the RCC.07 FT-HTTP upload by `tid` with its incremental multipart
//!   parser and resume info.
//! - [`grip`]: the GRIP WebSocket-over-HTTP contract between a WebSocket gateway (Pushpin, Fanout, the
//!   local host's) and the edge functions: events, control messages, publish bodies, `Grip-Sig`.
//! - [`ids`]: SIP tags, branches, Call-IDs, MSRP transaction and message ids from supplied randomness.
//! - [`msrp`]: MSRP (RFC 4975) and MSRP over WebSocket (RFC 7977): URIs, frames, the incremental
//!   parser and serializer, responses and REPORTs, chunking, reassembly and windowed sending.
//! - [`ranges`]: sets of byte ranges, for what has arrived of a file in any order.
//! - [`sdp`]: SDP bodies with MSRP media and RFC 5547 file transfer attributes; file transfer offers
//!   and answers.
//! - [`server`]: the sender AS and the receiver AS as sans-IO state machines, on one engine that
//!   handles each input as a transaction over the store records it reads.
//! - [`service`]: what every part builds on: which server ([`service::Side`]) and its routes, and
//!   how a file reaches its recipient ([`service::Delivery`]).
//! - [`server_config`]: what both servers are configured with, and its checks.
//! - [`sip`]: SIP over WebSocket (RFC 3261, RFC 7118): message parser and writer, request and response
//!   builders, CANCEL, dialogs.
//! - [`store`]: the shared-store layout (chunks, manifests, uploads) over a key-value interface, and
//!   the sans-IO upload writer that fills it.
//! - [`time`]: the timestamp type the core takes as input, and its calendar conversions.
//!
//! ## Invariants
//! - No I/O, no clock or RNG reads, no async, no locks: callers own all of that.
//! - Parsers never panic on untrusted input; they return typed errors that say what was being parsed.
//! - Everything that must outlive one edge-function request serializes with serde.

pub mod accounts;
pub mod client;
pub mod digest;
pub mod edge_request;
pub mod first_value;
pub mod ft_http;
pub mod grip;
pub mod http_files;
pub mod ids;
pub(crate) mod lex;
pub mod msrp;
pub mod ranges;
pub mod sdp;
pub mod server;
pub mod server_config;
pub mod service;
pub mod sip;
pub mod store;
pub mod time;

//! # rcs-web-client: the RCS file transfer client in a browser
//!
//! The protocol is the core's sans-IO user agent ([`rcs_core::client::UserAgent`]); this crate
//! gives it a page's WebSockets, timers, clock and randomness, and the browser's files:
//!
//! - a page (a tab) is one device of its user: one agent with one SIP socket (`/sender/sip`),
//!   which carries chats both ways, offers and pushes in and files out, and an MSRP socket to each
//!   server (`/sender/msrp` for files sent, `/receiver/msrp` for files received); its
//!   `+sip.instance` is kept for the tab, so a reload is the same device and another tab another;
//! - a file being sent is hashed, then read one chunk at a time as the agent asks for it, and a
//!   chunk waits while the MSRP socket's `bufferedAmount` is high (backpressure);
//! - a file being received is kept as Blob parts (the browser may keep them on disk), its SHA-256
//!   advances in the page's digest worker as the parts are made ([`digest`], and `digest_worker`
//!   in the browser), and the page gets an object URL once the digest matches; a file to send is
//!   hashed there too, so no hashing runs on the page's main thread;
//! - lost sockets are reopened; the receiver AS resumes a delivery from the last acknowledged byte.
//!
//! A user signs in with a password, which only the agents hold (they answer the servers' digest
//! challenges); `accountRequest` turns a new password into the
//! verifiers a sign-up sends.
//!
//! The JavaScript API is [`RcsClient`] (wasm32 only): commands in, events out through one callback,
//! each event a plain object with a `type`. Text from the network (names, chats) is passed as data,
//! never as markup.
//!
//! [`progress`], [`digest`] and [`parts`] hold the logic that needs no browser, tested natively.

pub mod digest;
pub mod page_event;
pub mod parts;
pub mod progress;

#[cfg(target_arch = "wasm32")]
mod browser;
#[cfg(target_arch = "wasm32")]
pub mod digest_worker;

#[cfg(target_arch = "wasm32")]
pub use browser::{RcsClient, account_request};

//! # rcs-web-client: the RCS file transfer client in a browser
//!
//! The protocol is the core's sans-IO user agent ([`rcs_core::client::UserAgent`]); this crate
//! gives it a page's WebSockets, timers, clock and randomness, and the browser's files:
//!
//! - a user is two agents: one on the sender AS (`/sender/sip`, `/sender/msrp`) for what the user
//!   sends, one on the receiver AS (`/receiver/sip`, `/receiver/msrp`) for what the user receives
//!   (each server keeps its own registration);
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

//! # rcs-testkit: the project's servers, gateway and users in memory, for tests
//!
//! One simulation, built on the core's edge request driver ([`rcs_core::edge_request`]), serves the
//! core's transfer tests, the client's loopback tests and the edge's handler tests:
//! - [`Net`]: both application servers over one in-memory store, in virtual time, every call one
//!   edge request carried out as the Spin components carry it out;
//! - [`Gateway`]: the GRIP gateway in front of them: open connections, their channels, what reached
//!   each; it reads replies and publishes with the core's codecs;
//! - [`Phone`]: a user with the real client [`rcs_core::client::UserAgent`], over any [`Edge`]
//!   (the [`Net`], or the edge's HTTP handlers), [`alice_and_bob`] registered, and [`run`] to move
//!   messages until all is quiet;
//! - [`server_config`] and [`file_bytes`]: the test servers' configuration and file contents.

mod config;
mod files;
mod gateway;
mod net;
mod phone;

pub use config::{DOMAIN, START, server_config, signing_key};
pub use files::file_bytes;
pub use gateway::Gateway;
pub use net::Net;
pub use phone::{Edge, Phone, alice_and_bob, password_of, run};

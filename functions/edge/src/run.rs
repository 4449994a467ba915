//! The one loop that carries out an [`EdgeRequest`]'s actions over a [`Platform`]: reads answered
//! together (concurrently), writes applied in order, the peer request POSTed to the receiver AS,
//! publishes POSTed to the gateway. What the actions are and when they come is the core's
//! ([`rcs_core::edge_request`]); this loop only does the I/O.

use futures::future::join_all;
use rcs_core::edge_request::{Action, EdgeRequest, Reply};
use rcs_core::server::ServerLogic;

use crate::config::EdgeConfig;
use crate::platform::{Platform, PlatformError};

/// Carries `request` out to its reply. A store failure ends it (the caller answers 500); a failed
/// peer request is answered for the server (a 503 with the reason) and a failed publish is logged:
/// the store already holds the new state, and a message lost there is one the user's client times
/// out on, as with any lost WebSocket message. What the server found wrong with the store (a
/// record it could not read) is logged.
pub async fn carry_out<R: Platform>(
    rt: &R,
    config: &EdgeConfig,
    mut request: EdgeRequest<ServerLogic>,
) -> Result<Reply, PlatformError> {
    loop {
        match request.next_action() {
            Action::Read(keys) => {
                let values = join_all(keys.iter().map(|key| rt.get(key))).await;
                request.answer_reads(values.into_iter().collect::<Result<_, _>>()?);
            }
            Action::Set { key, value } => rt.set(&key, value).await?,
            Action::Delete { key } => rt.delete(&key).await?,
            Action::PeerRequest(message) => {
                let answer = rt.peer_request(&config.receiver_peer_url, message).await;
                request.answer_peer(answer.map_err(|error| {
                    rt.log(&format!("peer request failed: {error}"));
                    error.to_string()
                }));
            }
            Action::Publish(body) => {
                if let Err(error) = rt.publish(&config.grip_publish_url, body).await {
                    rt.log(&format!("publish failed: {error}"));
                }
            }
            Action::Done(reply) => {
                for fault in &reply.faults {
                    rt.log(&format!("store fault: {fault}"));
                }
                return Ok(reply);
            }
        }
    }
}

//! The one loop that carries out an [`EdgeRequest`]'s actions over a [`Platform`]: reads answered
//! together (concurrently), each input's writes applied in order as batches (a run of sets in one
//! `set-many`, a run of deletes in one `delete-many`, a record the input read by
//! compare-and-swap), the peer request POSTed to the receiver AS, publishes POSTed to the
//! gateway. What the actions are and when they come is the core's ([`rcs_core::edge_request`]);
//! this loop only does the I/O.

use bytes::Bytes;
use futures::future::join_all;
use rcs_core::edge_request::{Action, EdgeRequest, Reply, Written};
use rcs_core::server::ServerLogic;
use rcs_core::store::StoreOp;

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
            Action::Write(writes) => request.answer_writes(write_batch(rt, writes).await?),
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

/// Applies writes in order: each run of sets as one `set-many`, each run of deletes as one
/// `delete-many`, each [`StoreOp::Swap`] as a compare-and-swap (a swap that deletes, as a delete
/// after the check). Every swap is checked against the store before anything is written, so that
/// a conflict found then leaves nothing behind; one that appears between that check and its swap
/// stops the batch there. A `Get` is ignored.
pub async fn write_batch<R: Platform>(
    rt: &R,
    writes: Vec<StoreOp>,
) -> Result<Written, PlatformError> {
    let mut swaps = std::collections::VecDeque::new();
    for write in &writes {
        if let StoreOp::Swap { key, expected, .. } = write {
            let (swap, current) = rt.begin_swap(key).await?;
            if current != *expected {
                return Ok(Written::Conflict { key: key.clone() });
            }
            swaps.push_back(swap);
        }
    }
    let mut sets: Vec<(String, Bytes)> = Vec::new();
    let mut deletes: Vec<String> = Vec::new();
    for write in writes {
        match write {
            StoreOp::Set { key, value } => {
                if !deletes.is_empty() {
                    rt.delete_many(std::mem::take(&mut deletes)).await?;
                }
                sets.push((key, value));
            }
            StoreOp::Delete { key } => {
                if !sets.is_empty() {
                    rt.set_many(std::mem::take(&mut sets)).await?;
                }
                deletes.push(key);
            }
            // `wasi:keyvalue` has no compare-and-delete: a delete is compared by the check above.
            StoreOp::Swap {
                key, value: None, ..
            } => {
                swaps.pop_front();
                if !sets.is_empty() {
                    rt.set_many(std::mem::take(&mut sets)).await?;
                }
                deletes.push(key);
            }
            StoreOp::Swap {
                key,
                value: Some(value),
                ..
            } => {
                if !sets.is_empty() {
                    rt.set_many(std::mem::take(&mut sets)).await?;
                }
                if !deletes.is_empty() {
                    rt.delete_many(std::mem::take(&mut deletes)).await?;
                }
                let swap = swaps.pop_front().expect("a swap begun for each");
                if !rt.swap(swap, value).await? {
                    return Ok(Written::Conflict { key });
                }
            }
            StoreOp::Get { .. } => {}
        }
    }
    if !sets.is_empty() {
        rt.set_many(sets).await?;
    }
    if !deletes.is_empty() {
        rt.delete_many(deletes).await?;
    }
    Ok(Written::All)
}

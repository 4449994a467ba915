//! The HTTP handlers of the AS components, over any [`Platform`]: GRIP WebSocket-over-HTTP requests
//! (`/…/sip`, `/…/msrp`), SIP from the other application server (`/receiver/peer`), and the
//! maintenance call that fires due timers and sweeps expired records (`/…/tick`). Each checks what
//! HTTP carries, hands the rest to one [`EdgeRequest`] and carries it out ([`carry_out`]); every
//! refusal is a [`HttpRefusal`], answered in one place.

use bytes::Bytes;
use futures::future::join_all;
use http::{HeaderValue, Request, Response, StatusCode, header};
use rcs_core::edge_request::{EdgeRequest, timer_due};
use rcs_core::grip::{self, Limits};
use rcs_core::ids::Entropy;
use rcs_core::server::ServerLogic;
use rcs_core::server::common::sweep;
use rcs_core::server::engine::Logic as _;
use rcs_core::service::{Protocol, Side};
use rcs_core::store::StoreOp;
use rcs_core::store::keys::{self, KeyKind};
use subtle::ConstantTimeEq;

use crate::HttpRefusal;
use crate::config::EdgeConfig;
use crate::platform::{Platform, PlatformError};
use crate::run::carry_out;

/// The media type of SIP carried over HTTP between the servers.
pub const MESSAGE_SIP: &str = "message/sip";

/// How many records a tick reads at once.
const SWEEP_BATCH: usize = 64;

/// Handles a GRIP request: checks `Grip-Sig` and `Connection-Id`, runs the events through one
/// [`EdgeRequest`], and answers with the events for the connection (`OPEN` first if the connection
/// opened, `m:` messages, `c:` control messages, `PONG`s, `CLOSE`).
pub async fn handle_grip<R: Platform>(
    rt: &R,
    config: &EdgeConfig,
    side: Side,
    protocol: Protocol,
    request: Request<Bytes>,
) -> Response<Bytes> {
    answer(rt, grip_request(rt, config, side, protocol, request).await)
}

async fn grip_request<R: Platform>(
    rt: &R,
    config: &EdgeConfig,
    side: Side,
    protocol: Protocol,
    request: Request<Bytes>,
) -> Result<Response<Bytes>, HttpRefusal> {
    let token = header_str(&request, "grip-sig").ok_or(HttpRefusal::GripSigMissing)?;
    grip::verify_grip_sig(token, &config.grip_sig_keys, rt.now())
        .map_err(HttpRefusal::GripSigRefused)?;
    let connection = header_str(&request, "connection-id")
        .filter(|c| !c.is_empty())
        .ok_or(HttpRefusal::ConnectionIdMissing)?;
    let events = grip::parse_events(request.body(), &Limits::default())
        .map_err(HttpRefusal::MalformedEvents)?;
    let (logic, seed) = prepare(rt, config, side)?;
    let request = EdgeRequest::grip(logic, connection, protocol, events, rt.now(), seed);
    let reply = carry_out(rt, config, request).await?;
    let mut response = ok(grip::CONTENT_TYPE, Bytes::from(reply.body()));
    if reply.opened {
        let headers = response.headers_mut();
        headers.insert(
            "sec-websocket-protocol",
            HeaderValue::from_static(protocol.name()),
        );
        headers.insert("sec-websocket-extensions", HeaderValue::from_static("grip"));
    }
    Ok(response)
}

/// Handles `POST /receiver/peer`: a SIP request (`message/sip`) from the sender AS, answered `200`
/// with the receiver AS's SIP response as `message/sip`.
pub async fn handle_peer<R: Platform>(
    rt: &R,
    config: &EdgeConfig,
    side: Side,
    request: Request<Bytes>,
) -> Response<Bytes> {
    answer(rt, peer_request(rt, config, side, request).await)
}

async fn peer_request<R: Platform>(
    rt: &R,
    config: &EdgeConfig,
    side: Side,
    request: Request<Bytes>,
) -> Result<Response<Bytes>, HttpRefusal> {
    let media_type = header_str(&request, "content-type")
        .and_then(|value| value.split(';').next())
        .map(str::trim);
    if !media_type.is_some_and(|t| t.eq_ignore_ascii_case(MESSAGE_SIP)) {
        return Err(HttpRefusal::NotMessageSip);
    }
    let (logic, seed) = prepare(rt, config, side)?;
    let request = EdgeRequest::peer(logic, request.into_body(), rt.now(), seed);
    let reply = carry_out(rt, config, request).await?;
    let answer = reply.peer_answer.ok_or(HttpRefusal::Unanswerable)?;
    Ok(ok(MESSAGE_SIP, answer))
}

/// Handles `POST /…/tick` (`Authorization: Bearer <admin_token>`): fires every timer that is due,
/// then deletes what has expired, and answers `200` with a JSON summary
/// `{"timers_fired":n,"records_checked":n,"keys_deleted":n}`.
pub async fn handle_tick<R: Platform>(
    rt: &R,
    config: &EdgeConfig,
    side: Side,
    request: Request<Bytes>,
) -> Response<Bytes> {
    answer(rt, tick_request(rt, config, side, &request).await)
}

async fn tick_request<R: Platform>(
    rt: &R,
    config: &EdgeConfig,
    side: Side,
    request: &Request<Bytes>,
) -> Result<Response<Bytes>, HttpRefusal> {
    let token = header_str(request, "authorization")
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    let authorized = token
        .is_some_and(|token| bool::from(token.as_bytes().ct_eq(config.admin_token.as_bytes())));
    if !authorized {
        return Err(HttpRefusal::TickUnauthorized);
    }
    let (logic, seed) = prepare(rt, config, side)?;
    let summary = tick(rt, config, logic, seed).await?;
    Ok(ok("application/json", Bytes::from(summary.to_string())))
}

/// The logic of the `side` server and a seed for the request's randomness.
fn prepare<R: Platform>(
    rt: &R,
    config: &EdgeConfig,
    side: Side,
) -> Result<(ServerLogic, Entropy), HttpRefusal> {
    let logic = ServerLogic::new(side, config.server.clone())
        .map_err(|error| HttpRefusal::Configuration(error.to_string()))?;
    Ok((logic, rt.entropy()?))
}

/// Fires this server's timers that are due (deleted first, so that a timer the server sets again survives),
/// then deletes what has expired.
async fn tick<R: Platform>(
    rt: &R,
    config: &EdgeConfig,
    logic: ServerLogic,
    seed: Entropy,
) -> Result<serde_json::Value, PlatformError> {
    let now = rt.now();
    let side = logic.side();
    let listed = rt
        .keys(&|key| match keys::classify(key) {
            KeyKind::Timer(timer_side, _) => timer_side == side,
            KeyKind::Expiring => true,
            KeyKind::Dependent => false,
        })
        .await?;
    let (timers, records): (Vec<String>, Vec<String>) = listed
        .into_iter()
        .partition(|key| matches!(keys::classify(key), KeyKind::Timer(..)));
    let mut due = Vec::new();
    for batch in timers.chunks(SWEEP_BATCH) {
        let values = join_all(batch.iter().map(|key| rt.get(key))).await;
        for (key, value) in batch.iter().zip(values) {
            let Some(value) = value? else { continue };
            let KeyKind::Timer(_, name) = keys::classify(key) else {
                continue;
            };
            match timer_due(&value, now) {
                Some(false) => continue,
                Some(true) => due.push(name.to_owned()),
                None => rt.log(&format!(
                    "dropping timer {key}: its due time does not parse"
                )),
            }
            rt.delete(key).await?;
        }
    }
    let fired = due.len();
    if !due.is_empty() {
        carry_out(rt, config, EdgeRequest::timers(logic, due, now, seed)).await?;
    }
    let mut deleted = 0usize;
    for batch in records.chunks(SWEEP_BATCH) {
        let values = join_all(batch.iter().map(|key| rt.get(key))).await;
        for (key, value) in batch.iter().zip(values) {
            let Some(value) = value? else { continue };
            for op in sweep(key, &value, now) {
                if let StoreOp::Delete { key } = op {
                    rt.delete(&key).await?;
                    deleted += 1;
                }
            }
        }
    }
    Ok(serde_json::json!({
        "timers_fired": fired,
        "records_checked": records.len(),
        "keys_deleted": deleted,
    }))
}

fn header_str<'r>(request: &'r Request<Bytes>, name: &str) -> Option<&'r str> {
    request.headers().get(name)?.to_str().ok()
}

/// A `200` with `body` as `content_type`.
fn ok(content_type: &'static str, body: Bytes) -> Response<Bytes> {
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The answer to a request: its response, or its refusal (logged when the platform failed).
fn answer<R: Platform>(rt: &R, outcome: Result<Response<Bytes>, HttpRefusal>) -> Response<Bytes> {
    outcome.unwrap_or_else(|refusal| {
        if refusal.status() == StatusCode::INTERNAL_SERVER_ERROR {
            rt.log(&format!("request failed: {refusal}"));
        }
        refusal.into_response()
    })
}

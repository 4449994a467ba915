//! The HTTP handlers of the AS components, over any [`Runtime`]: GRIP WebSocket-over-HTTP requests
//! (`/…/sip`, `/…/msrp`), SIP from the other application server (`/receiver/peer`), and the
//! maintenance call that fires due timers and sweeps expired records (`/…/tick`).

use bytes::Bytes;
use futures::future::join_all;
use http::{HeaderValue, Request, Response, StatusCode, header};
use rcs_core::grip::{self, Control, Limits, WsEvent};
use rcs_core::server::Input;
use rcs_core::server::common::expired;
use rcs_core::store::StoreOp;
use subtle::ConstantTimeEq;

use crate::config::EdgeConfig;
use crate::run::{Framing, Run, TIMER_PREFIX, timer_due};
use crate::runtime::{Runtime, RuntimeError};
use crate::{Protocol, Role, refuse};

/// The media type of SIP carried over HTTP between the servers.
pub const MESSAGE_SIP: &str = "message/sip";

/// How many records a tick reads at once.
const SWEEP_BATCH: usize = 64;

/// Handles a GRIP request: checks `Grip-Sig`, turns the events into inputs for one engine, and
/// answers with the events for the connection (`OPEN` first if the connection opened, `m:` messages,
/// `c:` control messages, `PONG`s, `CLOSE`).
pub async fn handle_grip<R: Runtime>(
    rt: &R,
    config: &EdgeConfig,
    role: Role,
    protocol: Protocol,
    request: Request<Bytes>,
) -> Response<Bytes> {
    let Some(token) = header_str(&request, "grip-sig") else {
        return refuse(StatusCode::FORBIDDEN, "Grip-Sig is missing");
    };
    if let Err(error) = grip::verify_grip_sig(token, &config.grip_sig_key, rt.now()) {
        return refuse(StatusCode::FORBIDDEN, &format!("Grip-Sig refused: {error}"));
    }
    let Some(connection) = header_str(&request, "connection-id").filter(|c| !c.is_empty()) else {
        return refuse(StatusCode::BAD_REQUEST, "Connection-Id is missing");
    };
    let connection = connection.to_owned();
    let events = match grip::parse_events(request.body(), &Limits::default()) {
        Ok(events) => events,
        Err(error) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                &format!("malformed WebSocket events: {error}"),
            );
        }
    };
    let framing = match protocol {
        Protocol::Sip => Framing::Text,
        Protocol::Msrp => Framing::Binary,
    };
    let mut run = match Run::new(rt, config, role, Some((&connection, framing))) {
        Ok(run) => run,
        Err(error) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    };
    let mut opened = false;
    // Consecutive MSRP messages go to the server as one input (see `Input::Msrp`).
    let mut msrp_messages = Vec::new();
    for event in events {
        let input = match event {
            // RFC 7118 and RFC 7977 allow either frame type for their messages.
            WsEvent::Text(message) | WsEvent::Binary(message) if protocol == Protocol::Msrp => {
                msrp_messages.push(message);
                continue;
            }
            WsEvent::Text(message) | WsEvent::Binary(message) => Some(Input::Sip {
                connection: connection.clone(),
                message,
            }),
            WsEvent::Open => {
                opened = true;
                run.events.push(WsEvent::Open);
                run.events.push(
                    Control::Subscribe {
                        channel: grip::connection_channel(&connection),
                    }
                    .event(),
                );
                None
            }
            WsEvent::Ping(content) => {
                run.events.push(WsEvent::Pong(content));
                None
            }
            WsEvent::Pong(_) => None,
            WsEvent::Close(status) => {
                // Completes the close handshake with the same status.
                run.events.push(WsEvent::Close(status));
                Some(Input::Closed {
                    connection: connection.clone(),
                })
            }
            WsEvent::Disconnect => Some(Input::Closed {
                connection: connection.clone(),
            }),
        };
        let messages = std::mem::take(&mut msrp_messages);
        let inputs = msrp_input(&connection, messages).into_iter().chain(input);
        for input in inputs {
            if let Err(error) = run.feed(input).await {
                return store_failure(rt, &error);
            }
        }
    }
    if let Some(input) = msrp_input(&connection, msrp_messages)
        && let Err(error) = run.feed(input).await
    {
        return store_failure(rt, &error);
    }
    run.flush().await;
    let mut body = Vec::new();
    grip::encode_events(&run.events, &mut body);
    let mut response = events_response(body);
    if opened {
        let headers = response.headers_mut();
        headers.insert(
            "sec-websocket-protocol",
            HeaderValue::from_static(protocol.name()),
        );
        headers.insert("sec-websocket-extensions", HeaderValue::from_static("grip"));
    }
    response
}

/// Handles `POST /receiver/peer`: a SIP request (`message/sip`) from the sender AS, answered `200`
/// with the receiver AS's SIP response as `message/sip`.
pub async fn handle_peer<R: Runtime>(
    rt: &R,
    config: &EdgeConfig,
    role: Role,
    request: Request<Bytes>,
) -> Response<Bytes> {
    let media_type = header_str(&request, "content-type")
        .and_then(|value| value.split(';').next())
        .map(str::trim);
    if !media_type.is_some_and(|t| t.eq_ignore_ascii_case(MESSAGE_SIP)) {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be a SIP request as message/sip",
        );
    }
    let mut run = match Run::new(rt, config, role, None) {
        Ok(run) => run,
        Err(error) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    };
    let input = Input::PeerRequest {
        message: request.into_body(),
    };
    if let Err(error) = run.feed(input).await {
        return store_failure(rt, &error);
    }
    run.flush().await;
    match run.peer_answer.take() {
        Some(answer) => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, MESSAGE_SIP)
            .body(answer)
            .unwrap_or_else(|_| Response::new(Bytes::new())),
        None => refuse(
            StatusCode::BAD_REQUEST,
            "the body is not a SIP request this server can answer",
        ),
    }
}

/// Handles `POST /…/tick` (`Authorization: Bearer <admin_token>`): fires every timer that is due,
/// then deletes what has expired, and answers `200` with a JSON summary
/// `{"timers_fired":n,"records_checked":n,"keys_deleted":n}`.
pub async fn handle_tick<R: Runtime>(
    rt: &R,
    config: &EdgeConfig,
    role: Role,
    request: Request<Bytes>,
) -> Response<Bytes> {
    let token = header_str(&request, "authorization")
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    let authorized = token
        .is_some_and(|token| bool::from(token.as_bytes().ct_eq(config.admin_token.as_bytes())));
    if !authorized {
        let mut response = refuse(
            StatusCode::UNAUTHORIZED,
            "a tick needs Authorization: Bearer <admin_token>",
        );
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    let run = match Run::new(rt, config, role, None) {
        Ok(run) => run,
        Err(error) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    };
    match tick(rt, run).await {
        Ok(summary) => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Bytes::from(summary.to_string()))
            .unwrap_or_else(|_| Response::new(Bytes::new())),
        Err(error) => store_failure(rt, &error),
    }
}

/// Whether a tick looks at `key`: timers, and the records [`expired`] judges (never file chunks,
/// `up/<id>/<n>`, which their manifest or upload record takes along).
fn tick_looks_at(key: &str) -> bool {
    key.starts_with(TIMER_PREFIX)
        || key.starts_with("file/")
        || key.strip_prefix("up/").is_some_and(|id| !id.contains('/'))
        || ["msrp/", "offer/", "conn/"]
            .iter()
            .any(|prefix| key.starts_with(prefix))
}

async fn tick<R: Runtime>(rt: &R, mut run: Run<'_, R>) -> Result<serde_json::Value, RuntimeError> {
    let now = rt.now();
    let keys = rt.keys(&tick_looks_at).await?;
    let (timers, records): (Vec<String>, Vec<String>) = keys
        .into_iter()
        .partition(|key| key.starts_with(TIMER_PREFIX));
    let mut fired = 0usize;
    for batch in timers.chunks(SWEEP_BATCH) {
        let values = join_all(batch.iter().map(|key| rt.get(key))).await;
        for (key, value) in batch.iter().zip(values) {
            let Some(value) = value? else { continue };
            match timer_due(&value, now) {
                Some(false) => continue,
                Some(true) => {
                    // Deleted before it fires, so that a timer the handler sets again survives.
                    rt.delete(key).await?;
                    fired += 1;
                    let name = key.trim_start_matches(TIMER_PREFIX).to_owned();
                    run.feed(Input::Timer { key: name }).await?;
                }
                None => {
                    rt.log(&format!(
                        "dropping timer {key}: its due time does not parse"
                    ));
                    rt.delete(key).await?;
                }
            }
        }
    }
    run.flush().await;
    let mut deleted = 0usize;
    for batch in records.chunks(SWEEP_BATCH) {
        let values = join_all(batch.iter().map(|key| rt.get(key))).await;
        for (key, value) in batch.iter().zip(values) {
            let Some(value) = value? else { continue };
            for op in expired(key, &value, now) {
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

fn events_response(body: Vec<u8>) -> Response<Bytes> {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, grip::CONTENT_TYPE)
        .body(Bytes::from(body))
        .unwrap_or_else(|_| Response::new(Bytes::new()))
}

fn store_failure<R: Runtime>(rt: &R, error: &RuntimeError) -> Response<Bytes> {
    rt.log(&format!("request failed: {error}"));
    refuse(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string())
}

/// The input for a run of MSRP messages, if there are any.
fn msrp_input(connection: &str, messages: Vec<Bytes>) -> Option<Input> {
    (!messages.is_empty()).then(|| Input::Msrp {
        connection: connection.to_owned(),
        messages,
    })
}

//! One request's run of an application server: a fresh [`Engine`], the request's inputs in order,
//! and every [`Output`] applied. Reads the engine asks for together are answered concurrently; writes
//! are applied in order as they come; messages for this request's connection become response events
//! and the rest become publishes, POSTed in as few batches as the gateway accepts once the run is done.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use futures::future::join_all;
use rcs_core::grip::{self, Control, WsEvent};
use rcs_core::server::engine::{Logic, Miss, Tx};
use rcs_core::server::receiver::ReceiverLogic;
use rcs_core::server::sender::SenderLogic;
use rcs_core::server::{ConfigError as CoreConfigError, Destination, Engine, Input, Output};
use rcs_core::sip;
use rcs_core::store::StoreOp;
use rcs_core::time::Timestamp;

use crate::Role;
use crate::config::EdgeConfig;
use crate::runtime::{Runtime, RuntimeError};

/// The largest publish request body the gateway accepts (Pushpin's default).
pub const PUBLISH_LIMIT: usize = 1_000_000;

/// The key prefix under which timers wait for `/…/tick`: `timer/<timer key>`, value the due time in
/// Unix milliseconds (decimal).
pub const TIMER_PREFIX: &str = "timer/";

/// The key-value key of a timer.
pub fn timer_key(key: &str) -> String {
    format!("{TIMER_PREFIX}{key}")
}

/// The logic of either server, so that one engine type serves both components.
pub(crate) enum AnyLogic {
    Sender(SenderLogic),
    Receiver(ReceiverLogic),
}

impl AnyLogic {
    pub(crate) fn new(role: Role, config: &EdgeConfig) -> Result<Self, CoreConfigError> {
        Ok(match role {
            Role::Sender => Self::Sender(SenderLogic::new(config.server.clone())?),
            Role::Receiver => Self::Receiver(ReceiverLogic::new(config.server.clone())?),
        })
    }
}

impl Logic for AnyLogic {
    fn handle(&self, tx: &mut Tx<'_>, input: &Input) -> Result<(), Miss> {
        match self {
            Self::Sender(logic) => logic.handle(tx, input),
            Self::Receiver(logic) => logic.handle(tx, input),
        }
    }
}

/// How a message for the connection of this request is framed: SIP as text, MSRP as binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// WebSocket text messages (subprotocol `sip`).
    Text,
    /// WebSocket binary messages (subprotocol `msrp`).
    Binary,
}

/// One request's engine and what its outputs have produced so far.
pub(crate) struct Run<'a, R> {
    rt: &'a R,
    config: &'a EdgeConfig,
    engine: Engine<AnyLogic>,
    /// The gateway connection of this request, with how its messages are framed.
    connection: Option<(&'a str, Framing)>,
    /// Events for the response to the gateway, in order.
    pub(crate) events: Vec<WsEvent>,
    /// Messages for other connections and users: (channel, message).
    publishes: Vec<(String, Bytes)>,
    /// The answer to a peer request, if the input was one.
    pub(crate) peer_answer: Option<Bytes>,
}

impl<'a, R: Runtime> Run<'a, R> {
    pub(crate) fn new(
        rt: &'a R,
        config: &'a EdgeConfig,
        role: Role,
        connection: Option<(&'a str, Framing)>,
    ) -> Result<Self, CoreConfigError> {
        Ok(Self {
            rt,
            config,
            engine: Engine::new(AnyLogic::new(role, config)?),
            connection,
            events: Vec::new(),
            publishes: Vec::new(),
            peer_answer: None,
        })
    }

    /// Handles one input to completion, applying every output.
    pub(crate) async fn feed(&mut self, input: Input) -> Result<(), RuntimeError> {
        self.engine.handle(input, self.rt.now(), self.rt.entropy()?);
        loop {
            let mut reads = Vec::new();
            while let Some(output) = self.engine.poll_output() {
                match output {
                    // The engine yields every read an attempt missed at once, after the writes
                    // of the inputs before it: collect them and answer them together.
                    Output::Store(StoreOp::Get { key }) => reads.push(key),
                    Output::Store(StoreOp::Set { key, value }) => self.rt.set(&key, value).await?,
                    Output::Store(StoreOp::Delete { key }) => self.rt.delete(&key).await?,
                    Output::Send { to, message } => self.send(to, message),
                    Output::Subscribe {
                        connection,
                        side,
                        aor,
                    } => {
                        self.control(
                            &connection,
                            Control::Subscribe {
                                channel: grip::user_channel(side, &aor),
                            },
                        );
                    }
                    Output::Unsubscribe {
                        connection,
                        side,
                        aor,
                    } => {
                        self.control(
                            &connection,
                            Control::Unsubscribe {
                                channel: grip::user_channel(side, &aor),
                            },
                        );
                    }
                    Output::PeerRequest { message } => {
                        let answer = self.peer_request(message).await;
                        self.engine.handle(
                            Input::PeerResponse { message: answer },
                            self.rt.now(),
                            self.rt.entropy()?,
                        );
                    }
                    Output::PeerResponse { message } => self.peer_answer = Some(message),
                    Output::Timer { at, key } => {
                        let due = Bytes::from(at.unix_millis().to_string());
                        self.rt.set(&timer_key(&key), due).await?;
                    }
                }
            }
            if reads.is_empty() {
                return Ok(());
            }
            let values = join_all(reads.iter().map(|key| self.rt.get(key))).await;
            for (key, value) in reads.iter().zip(values) {
                self.engine.store_value(key, value?);
            }
        }
    }

    fn send(&mut self, to: Destination, message: Bytes) {
        match to {
            Destination::Connection(target) => match self.connection {
                Some((own, framing)) if own == target => {
                    self.events.push(message_event(framing, &message));
                }
                _ => self
                    .publishes
                    .push((grip::connection_channel(&target), message)),
            },
            Destination::User(side, aor) => self
                .publishes
                .push((grip::user_channel(side, &aor), message)),
        }
    }

    fn control(&mut self, connection: &str, control: Control) {
        match self.connection {
            Some((own, _)) if own == connection => self.events.push(control.event()),
            // The gateway takes control messages only in the answer to that connection's own
            // request: a subscription change for another connection cannot be made from here.
            _ => self.rt.log(&format!(
                "cannot apply {control:?} to connection {connection} from another request"
            )),
        }
    }

    /// Sends a SIP request to the receiver AS. A failure becomes a 503 answer to the request, so
    /// the sender AS ends its user's session with a reason instead of waiting forever.
    async fn peer_request(&self, message: Bytes) -> Bytes {
        let url = &self.config.receiver_peer_url;
        match self.rt.peer_request(url, message.clone()).await {
            Ok(answer) => answer,
            Err(error) => {
                self.rt.log(&format!("peer request failed: {error}"));
                unavailable(&message, &error.to_string())
            }
        }
    }

    /// POSTs the collected publishes in as few requests of at most [`PUBLISH_LIMIT`] bytes as
    /// possible. Failures are logged: the store already holds the new state, and a message lost
    /// here is one the user's client times out on, as with any lost WebSocket message.
    pub(crate) async fn flush(&mut self) {
        let publishes = std::mem::take(&mut self.publishes);
        for body in publish_bodies(&publishes) {
            if let Err(error) = self.rt.publish(&self.config.grip_publish_url, body).await {
                self.rt.log(&format!("publish failed: {error}"));
            }
        }
    }
}

/// The event that carries `message` to this request's connection.
pub fn message_event(framing: Framing, message: &[u8]) -> WsEvent {
    let mut content = Vec::with_capacity(grip::MESSAGE_PREFIX.len() + message.len());
    content.extend_from_slice(grip::MESSAGE_PREFIX.as_bytes());
    content.extend_from_slice(message);
    match framing {
        Framing::Text => WsEvent::Text(Bytes::from(content)),
        Framing::Binary => WsEvent::Binary(Bytes::from(content)),
    }
}

/// One publish item as JSON. MSRP goes out as a binary message (`content-bin`) as on the MSRP route;
/// SIP as text when it is UTF-8.
fn publish_item(channel: &str, message: &[u8]) -> String {
    let format = match std::str::from_utf8(message) {
        Ok(text) if !message.starts_with(b"MSRP ") => serde_json::json!({ "content": text }),
        _ => serde_json::json!({ "content-bin": STANDARD.encode(message) }),
    };
    serde_json::json!({ "channel": channel, "formats": { "ws-message": format } }).to_string()
}

/// Publish request bodies for these items, each at most [`PUBLISH_LIMIT`] bytes unless a single item
/// is larger on its own (it then goes alone, and the gateway decides).
pub fn publish_bodies(items: &[(String, Bytes)]) -> Vec<String> {
    const OPEN: &str = "{\"items\":[";
    const CLOSE: &str = "]}";
    let mut bodies = Vec::new();
    let mut body = String::new();
    for (channel, message) in items {
        let item = publish_item(channel, message);
        let grown = body.len() + 1 + item.len() + CLOSE.len();
        if !body.is_empty() && grown > PUBLISH_LIMIT {
            body.push_str(CLOSE);
            bodies.push(std::mem::take(&mut body));
        }
        if body.is_empty() {
            body.push_str(OPEN);
        } else {
            body.push(',');
        }
        body.push_str(&item);
    }
    if !body.is_empty() {
        body.push_str(CLOSE);
        bodies.push(body);
    }
    bodies
}

/// A `503` answer to a SIP request, with the reason in a Warning; an empty answer if the request
/// does not parse (the engine then ignores it).
fn unavailable(request: &[u8], reason: &str) -> Bytes {
    let Ok(request) = sip::parse(request, &sip::Limits::default()) else {
        return Bytes::new();
    };
    let Ok(mut response) = sip::response(&request, 503, "Service Unavailable", None) else {
        return Bytes::new();
    };
    let text = reason.replace(['"', '\\', '\r', '\n'], " ");
    // A warning that does not fit is dropped rather than losing the answer.
    let _ = response.push_header("Warning", &format!("399 rcs-edge \"{text}\""));
    response.to_bytes()
}

/// Whether a timer stored with due time `value` (Unix milliseconds) is due at `now`; `None` if the
/// value is not a time.
pub(crate) fn timer_due(value: &[u8], now: Timestamp) -> Option<bool> {
    let millis: u64 = std::str::from_utf8(value).ok()?.trim().parse().ok()?;
    Some(millis <= now.unix_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishes_batch_under_the_gateway_limit() {
        let big = Bytes::from(vec![b'x'; 400_000]);
        let items: Vec<(String, Bytes)> = (0..5)
            .map(|i| (format!("user:u{i}"), big.clone()))
            .collect();
        let bodies = publish_bodies(&items);
        assert_eq!(bodies.len(), 3, "two items fit in a body, not three");
        let mut seen = 0;
        for body in &bodies {
            assert!(body.len() <= PUBLISH_LIMIT);
            let json: serde_json::Value = serde_json::from_str(body).unwrap();
            seen += json["items"].as_array().unwrap().len();
        }
        assert_eq!(seen, 5);
        assert!(publish_bodies(&[]).is_empty());
        let small = publish_bodies(&[
            (
                "user:a".into(),
                Bytes::from_static(b"MESSAGE sip:a SIP/2.0\r\n"),
            ),
            ("conn:7".into(), Bytes::from_static(b"MSRP abc SEND\r\n")),
        ]);
        assert_eq!(small.len(), 1);
        let json: serde_json::Value = serde_json::from_str(&small[0]).unwrap();
        assert_eq!(
            json["items"][0]["formats"]["ws-message"]["content"],
            "MESSAGE sip:a SIP/2.0\r\n"
        );
        assert_eq!(
            json["items"][1]["formats"]["ws-message"]["content-bin"],
            STANDARD.encode(b"MSRP abc SEND\r\n")
        );
    }

    #[test]
    fn a_failed_peer_request_becomes_a_503_for_the_same_transaction() {
        let request = b"MESSAGE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/WSS a.invalid;branch=z9hG4bKx\r\nFrom: <sip:a@example.com>;tag=s1\r\nTo: <sip:bob@example.com>\r\nCall-ID: c1\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
        let answer = sip::parse(
            &unavailable(request, "connection refused"),
            &sip::Limits::default(),
        )
        .unwrap();
        assert_eq!(answer.status(), Some(503));
        assert_eq!(answer.from().tag(), Some("s1"));
        assert!(
            answer
                .header("Warning")
                .unwrap()
                .contains("connection refused")
        );
        assert!(unavailable(b"garbage", "x").is_empty());
    }

    #[test]
    fn timer_values_are_due_times() {
        let now = Timestamp::from_unix_millis(5_000);
        assert_eq!(timer_due(b"5000", now), Some(true));
        assert_eq!(timer_due(b"5001", now), Some(false));
        assert_eq!(timer_due(b"soon", now), None);
    }
}

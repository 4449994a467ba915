//! The GRIP "WebSocket-over-HTTP" contract (Pushpin, Fastly Fanout): how a WebSocket gateway hands a
//! connection's events to an HTTP backend and takes the backend's events back, the control messages
//! that subscribe a connection to channels, the body that publishes to a channel from anywhere, and
//! the gateway's `Grip-Sig` token.
//!
//! A request body (and a response body) is a sequence of events, each `TYPE\r\n` or
//! `TYPE <hex length>\r\n<content>\r\n`, `Content-Type: application/websocket-events`. With the GRIP
//! extension on (`Sec-WebSocket-Extensions: grip`), every message the backend sends to the client
//! starts with `m:`, and a `TEXT` event starting with `c:` is a control message for the gateway
//! instead. The Spin components and the local host's gateway both speak it through this module.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::time::Timestamp;

/// The media type of a body of events.
pub const CONTENT_TYPE: &str = "application/websocket-events";

/// The largest reply body a gateway takes from the backend for one request, in bytes: Pushpin (and
/// so Fanout) fails the connection beyond 1,000,000 bytes.
pub const REPLY_LIMIT: usize = 1_000_000;

/// The prefix of a message for the client when the GRIP extension is on.
pub const MESSAGE_PREFIX: &str = "m:";

/// The prefix of a control message for the gateway.
pub const CONTROL_PREFIX: &str = "c:";

/// One WebSocket event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WsEvent {
    /// The connection opened (and, in a response, the backend accepts it).
    Open,
    /// A text message.
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A ping.
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
    /// A close, with its status code and reason if the frame carried one.
    Close(Option<(u16, String)>),
    /// The connection is gone without a close handshake.
    Disconnect,
}

/// Errors reading a body of events or a `Grip-Sig` token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GripError {
    /// The body ends inside an event.
    #[error("body ends inside the event at byte {offset}")]
    Truncated { offset: usize },
    /// An event type this contract does not define.
    #[error("unknown event type {kind:?} at byte {offset}")]
    UnknownEvent { kind: String, offset: usize },
    /// The content length is not hexadecimal.
    #[error("bad content length at byte {offset}")]
    BadLength { offset: usize },
    /// An event's content is not followed by CRLF.
    #[error("content of the event at byte {offset} is not followed by CRLF")]
    MissingCrlf { offset: usize },
    /// An event is larger than allowed.
    #[error("event content of {size} bytes exceeds {limit}")]
    EventTooLarge { size: usize, limit: usize },
    /// More events than allowed in one body.
    #[error("more than {limit} events in one body")]
    TooManyEvents { limit: usize },
    /// A CLOSE reason that is not UTF-8, or a one-byte CLOSE content.
    #[error("bad CLOSE content at byte {offset}")]
    BadClose { offset: usize },
    /// A `Grip-Sig` that is not a well-formed JWT.
    #[error("malformed Grip-Sig token: {what}")]
    MalformedToken { what: &'static str },
    /// A `Grip-Sig` signed with another key or algorithm.
    #[error("Grip-Sig signature does not verify")]
    BadSignature,
    /// A configured ES256 public key that is not a P-256 key in PEM.
    #[error("the Grip-Sig public key is not a P-256 public key in PEM: {0}")]
    BadPublicKey(String),
    /// A `Grip-Sig` past its expiry.
    #[error("Grip-Sig expired at {expired_at}, now is {now}")]
    Expired { expired_at: u64, now: u64 },
}

/// Bounds on a body of events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most events in one body.
    pub max_events: usize,
    /// Largest content of one event.
    pub max_event_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_events: 1024,
            max_event_bytes: 1 << 20,
        }
    }
}

/// Reads a body of events. Contents are slices of `body`.
pub fn parse_events(body: &Bytes, limits: &Limits) -> Result<Vec<WsEvent>, GripError> {
    let mut events = Vec::new();
    let mut at = 0;
    while at < body.len() {
        if events.len() == limits.max_events {
            return Err(GripError::TooManyEvents {
                limit: limits.max_events,
            });
        }
        let start = at;
        let line_end = find_crlf(body, at).ok_or(GripError::Truncated { offset: start })?;
        let line = &body[at..line_end];
        at = line_end + 2;
        let (kind, length) = match line.iter().position(|&b| b == b' ') {
            Some(space) => {
                let hex = std::str::from_utf8(&line[space + 1..])
                    .map_err(|_| GripError::BadLength { offset: start })?;
                let valid = !hex.is_empty()
                    && hex.len() <= 16
                    && hex.bytes().all(|b| b.is_ascii_hexdigit());
                let length = usize::from_str_radix(hex, 16)
                    .ok()
                    .filter(|_| valid)
                    .ok_or(GripError::BadLength { offset: start })?;
                (&line[..space], Some(length))
            }
            None => (line, None),
        };
        let content = match length {
            Some(size) if size > limits.max_event_bytes => {
                return Err(GripError::EventTooLarge {
                    size,
                    limit: limits.max_event_bytes,
                });
            }
            Some(size) => {
                let end = at.checked_add(size).filter(|&end| end + 2 <= body.len());
                let end = end.ok_or(GripError::Truncated { offset: start })?;
                if &body[end..end + 2] != b"\r\n" {
                    return Err(GripError::MissingCrlf { offset: start });
                }
                let content = body.slice(at..end);
                at = end + 2;
                content
            }
            None => Bytes::new(),
        };
        let event = match kind {
            b"OPEN" => WsEvent::Open,
            b"TEXT" => WsEvent::Text(content),
            b"BINARY" => WsEvent::Binary(content),
            b"PING" => WsEvent::Ping(content),
            b"PONG" => WsEvent::Pong(content),
            b"DISCONNECT" => WsEvent::Disconnect,
            b"CLOSE" => WsEvent::Close(
                close_content(&content).ok_or(GripError::BadClose { offset: start })?,
            ),
            other => {
                let kind = String::from_utf8_lossy(other).into_owned();
                return Err(GripError::UnknownEvent {
                    kind,
                    offset: start,
                });
            }
        };
        events.push(event);
    }
    Ok(events)
}

fn find_crlf(body: &[u8], from: usize) -> Option<usize> {
    // Event lines are short; the search is bounded by the body.
    body.get(from..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|i| from + i)
}

fn close_content(content: &[u8]) -> Option<Option<(u16, String)>> {
    match content {
        [] => Some(None),
        [high, low, reason @ ..] => {
            let reason = std::str::from_utf8(reason).ok()?;
            Some(Some((u16::from_be_bytes([*high, *low]), reason.to_owned())))
        }
        [_] => None,
    }
}

/// Writes events as a body.
pub fn encode_events(events: &[WsEvent], out: &mut Vec<u8>) {
    for event in events {
        let (kind, content): (&str, Option<std::borrow::Cow<'_, [u8]>>) = match event {
            WsEvent::Open => ("OPEN", None),
            WsEvent::Disconnect => ("DISCONNECT", None),
            WsEvent::Text(content) => ("TEXT", Some(content.as_ref().into())),
            WsEvent::Binary(content) => ("BINARY", Some(content.as_ref().into())),
            WsEvent::Ping(content) => ("PING", Some(content.as_ref().into())),
            WsEvent::Pong(content) => ("PONG", Some(content.as_ref().into())),
            WsEvent::Close(None) => ("CLOSE", None),
            WsEvent::Close(Some((code, reason))) => {
                let mut content = code.to_be_bytes().to_vec();
                content.extend_from_slice(reason.as_bytes());
                ("CLOSE", Some(content.into()))
            }
        };
        out.extend_from_slice(kind.as_bytes());
        match content {
            Some(content) => {
                out.extend_from_slice(format!(" {:x}\r\n", content.len()).as_bytes());
                out.extend_from_slice(&content);
                out.extend_from_slice(b"\r\n");
            }
            None => out.extend_from_slice(b"\r\n"),
        }
    }
}

/// A control message for the gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Control {
    /// Deliver what is published to `channel` over this connection.
    Subscribe { channel: String },
    /// Stop delivering `channel` over this connection.
    Unsubscribe { channel: String },
    /// Stop sending this connection's events to the backend.
    Detach,
}

impl Control {
    /// The control message as a `TEXT` event.
    pub fn event(&self) -> WsEvent {
        // Serializing this enum cannot fail.
        let json = serde_json::to_string(self).unwrap_or_default();
        WsEvent::Text(Bytes::from(format!("{CONTROL_PREFIX}{json}")))
    }

    /// The control message a `TEXT` event from the backend carries, if it is one.
    pub fn from_event(event: &WsEvent) -> Option<Control> {
        let WsEvent::Text(content) = event else {
            return None;
        };
        serde_json::from_slice(content.strip_prefix(CONTROL_PREFIX.as_bytes())?).ok()
    }
}

/// The WebSocket message that carries `message` to a client: MSRP as binary (RFC 7977 allows
/// either frame type; binary carries any chunk body), anything else as text when it is UTF-8 (SIP is
/// text, RFC 7118) and as binary otherwise. The one framing rule of every message the servers send,
/// over a connection's own reply or through a publish.
pub fn framed(message: Bytes) -> WsEvent {
    if !message.starts_with(b"MSRP ") && std::str::from_utf8(&message).is_ok() {
        WsEvent::Text(message)
    } else {
        WsEvent::Binary(message)
    }
}

/// A message for the client in a reply, prefixed for a gateway with the GRIP extension on and
/// framed by [`framed`].
pub fn message_event(message: &[u8]) -> WsEvent {
    let mut content = Vec::with_capacity(MESSAGE_PREFIX.len() + message.len());
    content.extend_from_slice(MESSAGE_PREFIX.as_bytes());
    content.extend_from_slice(message);
    match framed(Bytes::copy_from_slice(message)) {
        WsEvent::Text(_) => WsEvent::Text(Bytes::from(content)),
        _ => WsEvent::Binary(Bytes::from(content)),
    }
}

/// The message an event from the backend carries for the client, without its prefix, if it is one.
pub fn message_of(event: &WsEvent) -> Option<Bytes> {
    let (WsEvent::Text(content) | WsEvent::Binary(content)) = event else {
        return None;
    };
    content
        .starts_with(MESSAGE_PREFIX.as_bytes())
        .then(|| content.slice(MESSAGE_PREFIX.len()..))
}

/// The channel of one connection, for messages to it from a request that is not its own.
pub fn connection_channel(connection: &str) -> String {
    format!("conn:{connection}")
}

/// The largest publish request body a gateway accepts, in bytes (Pushpin's default).
pub const PUBLISH_LIMIT: usize = 1_000_000;

/// One item of a publish request (`POST /publish/`, format `ws-message`): an event for every
/// connection subscribed to `channel`. The event is a [`WsEvent::Text`] (`content`), a
/// [`WsEvent::Binary`] (`content-bin`, base64) or a [`WsEvent::Close`] (`action: close`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    /// The channel.
    pub channel: String,
    /// What its subscribers get.
    pub event: WsEvent,
}

impl Publish {
    /// A message for the connections on `channel`, framed by [`framed`].
    pub fn message(channel: String, message: Bytes) -> Self {
        Self {
            channel,
            event: framed(message),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        let format = match &self.event {
            WsEvent::Text(text) => match std::str::from_utf8(text) {
                Ok(text) => serde_json::json!({ "content": text }),
                Err(_) => serde_json::json!({ "content-bin": STANDARD.encode(text) }),
            },
            WsEvent::Close(close) => {
                let (code, reason) = close.clone().unwrap_or((1000, String::new()));
                serde_json::json!({ "action": "close", "code": code, "reason": reason })
            }
            WsEvent::Binary(data) | WsEvent::Ping(data) | WsEvent::Pong(data) => {
                serde_json::json!({ "content-bin": STANDARD.encode(data) })
            }
            WsEvent::Open | WsEvent::Disconnect => {
                serde_json::json!({ "action": "close", "code": 1000 })
            }
        };
        serde_json::json!({ "channel": self.channel, "formats": { "ws-message": format } })
    }
}

/// Publish request bodies for `items`, in order, each at most `limit` bytes unless a single item is
/// larger on its own (it then goes alone, and the gateway decides).
pub fn encode_publishes(items: &[Publish], limit: usize) -> Vec<String> {
    const OPEN: &str = "{\"items\":[";
    const CLOSE: &str = "]}";
    let mut bodies = Vec::new();
    let mut body = String::new();
    for item in items {
        let item = item.to_json().to_string();
        let grown = body.len() + 1 + item.len() + CLOSE.len();
        if !body.is_empty() && grown > limit {
            body.push_str(CLOSE);
            bodies.push(std::mem::take(&mut body));
        }
        body.push_str(if body.is_empty() { OPEN } else { "," });
        body.push_str(&item);
    }
    if !body.is_empty() {
        body.push_str(CLOSE);
        bodies.push(body);
    }
    bodies
}

/// Reads a publish request body as a gateway does. Items without a `ws-message` format are for
/// other transports and are left out; an item that is not a message or a close is an error that
/// names it.
pub fn decode_publishes(body: &[u8]) -> Result<Vec<Publish>, String> {
    #[derive(Deserialize)]
    struct Body {
        items: Vec<Item>,
    }
    #[derive(Deserialize)]
    struct Item {
        channel: String,
        #[serde(default)]
        formats: Formats,
    }
    #[derive(Default, Deserialize)]
    struct Formats {
        #[serde(rename = "ws-message")]
        ws_message: Option<Format>,
    }
    #[derive(Deserialize)]
    struct Format {
        content: Option<String>,
        #[serde(rename = "content-bin")]
        content_bin: Option<String>,
        action: Option<String>,
        code: Option<u16>,
        reason: Option<String>,
    }
    let body: Body = serde_json::from_slice(body).map_err(|error| error.to_string())?;
    let mut items = Vec::with_capacity(body.items.len());
    for (index, item) in body.items.into_iter().enumerate() {
        let Some(format) = item.formats.ws_message else {
            continue;
        };
        let event = match (format.action.as_deref(), format.content, format.content_bin) {
            (Some("close"), _, _) => WsEvent::Close(Some((
                format.code.unwrap_or(1000),
                format.reason.unwrap_or_default(),
            ))),
            (Some("send") | None, Some(text), None) => WsEvent::Text(Bytes::from(text)),
            (Some("send") | None, None, Some(base64)) => {
                let data = STANDARD
                    .decode(base64)
                    .map_err(|error| format!("item {index}: content-bin: {error}"))?;
                WsEvent::Binary(Bytes::from(data))
            }
            (Some(action), _, _) if action != "send" => {
                return Err(format!("item {index}: unknown action {action:?}"));
            }
            _ => {
                return Err(format!(
                    "item {index}: needs exactly one of content and content-bin"
                ));
            }
        };
        items.push(Publish {
            channel: item.channel,
            event,
        });
    }
    Ok(items)
}

/// The claims of a `Grip-Sig` token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GripClaims {
    /// Who signed it (Pushpin writes `pushpin`).
    pub iss: String,
    /// When it expires, in Unix seconds.
    pub exp: u64,
}

/// A `Grip-Sig` token (a JWT signed with HS256) for these claims.
pub fn sign_grip_sig(claims: &GripClaims, key: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"HS256"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let signing_input = format!("{header}.{payload}");
    let signature =
        URL_SAFE_NO_PAD.encode(hmac(key, signing_input.as_bytes()).finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// The keys a `Grip-Sig` may be signed with: the key shared with the gateway for HS256 (Pushpin,
/// the local host), and the public key of a gateway that signs with ES256 (ECDSA P-256 with
/// SHA-256: Fastly Fanout), where one is configured.
#[derive(Clone, Debug)]
pub struct GripSigKeys {
    hs256: Vec<u8>,
    es256: Option<p256::ecdsa::VerifyingKey>,
}

impl GripSigKeys {
    /// The HS256 key, and the ES256 public key as PEM (`-----BEGIN PUBLIC KEY-----`, SPKI) if any.
    pub fn new(hs256: Vec<u8>, es256_pem: Option<&str>) -> Result<Self, GripError> {
        use p256::pkcs8::DecodePublicKey;
        let es256 = es256_pem
            .map(|pem| {
                p256::ecdsa::VerifyingKey::from_public_key_pem(pem.trim())
                    .map_err(|error| GripError::BadPublicKey(error.to_string()))
            })
            .transpose()?;
        Ok(Self { hs256, es256 })
    }

    /// The HS256 key.
    pub fn hs256(&self) -> &[u8] {
        &self.hs256
    }
}

/// Checks a `Grip-Sig` token: a JWT signed with HS256 by the shared key, or with ES256 by the
/// configured public key, not expired at `now`. Any other algorithm (`none` included), and ES256
/// without a public key, is refused.
pub fn verify_grip_sig(
    token: &str,
    keys: &GripSigKeys,
    now: Timestamp,
) -> Result<GripClaims, GripError> {
    let malformed = |what| GripError::MalformedToken { what };
    let (signing_input, signature) = token
        .trim()
        .rsplit_once('.')
        .ok_or(malformed("no signature"))?;
    let (header, payload) = signing_input
        .split_once('.')
        .ok_or(malformed("no payload"))?;
    #[derive(Deserialize)]
    struct Header {
        alg: String,
    }
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| malformed("header encoding"))?;
    let header: Header = serde_json::from_slice(&header).map_err(|_| malformed("header JSON"))?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| malformed("signature encoding"))?;
    match (header.alg.as_str(), &keys.es256) {
        ("HS256", _) => hmac(&keys.hs256, signing_input.as_bytes())
            .verify_slice(&signature)
            .map_err(|_| GripError::BadSignature)?,
        ("ES256", Some(public)) => {
            use p256::ecdsa::signature::Verifier;
            // JWS writes an ES256 signature as r and s, 32 bytes each (RFC 7518 section 3.4).
            let signature = p256::ecdsa::Signature::from_slice(&signature)
                .map_err(|_| GripError::BadSignature)?;
            public
                .verify(signing_input.as_bytes(), &signature)
                .map_err(|_| GripError::BadSignature)?;
        }
        _ => return Err(GripError::BadSignature),
    }
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| malformed("payload encoding"))?;
    let claims: GripClaims = serde_json::from_slice(&payload).map_err(|_| malformed("claims"))?;
    if now.unix_secs() >= claims.exp {
        return Err(GripError::Expired {
            expired_at: claims.exp,
            now: now.unix_secs(),
        });
    }
    Ok(claims)
}

fn hmac(key: &[u8], message: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&Default::default()));
    mac.update(message);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &[u8]) -> Result<Vec<WsEvent>, GripError> {
        parse_events(&Bytes::copy_from_slice(body), &Limits::default())
    }

    #[test]
    fn events_round_trip() {
        let events = vec![
            WsEvent::Open,
            WsEvent::Text(Bytes::from_static(
                b"REGISTER sip:example.com SIP/2.0\r\n\r\n",
            )),
            WsEvent::Binary(Bytes::from_static(&[0, 159, 146, 150, 13, 10])),
            WsEvent::Ping(Bytes::new()),
            WsEvent::Pong(Bytes::from_static(b"x")),
            WsEvent::Close(Some((1000, "bye".into()))),
            WsEvent::Close(None),
            WsEvent::Disconnect,
        ];
        let mut body = Vec::new();
        encode_events(&events, &mut body);
        assert_eq!(parse(&body).unwrap(), events);
    }

    #[test]
    fn the_contracts_own_examples_parse() {
        // Shapes from the WebSocket-over-HTTP description: an OPEN alone, then a TEXT with a hex
        // length (0x0b = 11 bytes).
        assert_eq!(parse(b"OPEN\r\n").unwrap(), vec![WsEvent::Open]);
        assert_eq!(
            parse(b"TEXT b\r\nhello world\r\nTEXT 5\r\nagain\r\n").unwrap(),
            vec![
                WsEvent::Text(Bytes::from_static(b"hello world")),
                WsEvent::Text(Bytes::from_static(b"again"))
            ]
        );
        assert_eq!(parse(b"").unwrap(), vec![]);
        assert_eq!(
            parse(b"CLOSE 2\r\n\x03\xe8\r\n").unwrap(),
            vec![WsEvent::Close(Some((1000, String::new())))]
        );
    }

    #[test]
    fn bad_bodies_get_typed_errors() {
        let cases: [(&[u8], GripError); 9] = [
            (b"OPEN", GripError::Truncated { offset: 0 }),
            (b"TEXT 5\r\nabc", GripError::Truncated { offset: 0 }),
            (b"TEXT 5\r\nabcdeXX", GripError::MissingCrlf { offset: 0 }),
            (b"TEXT zz\r\nab\r\n", GripError::BadLength { offset: 0 }),
            (b"TEXT \r\n\r\n", GripError::BadLength { offset: 0 }),
            (b"TEXT -1\r\n\r\n", GripError::BadLength { offset: 0 }),
            (
                b"OPEN\r\nSHOUT\r\n",
                GripError::UnknownEvent {
                    kind: "SHOUT".into(),
                    offset: 6,
                },
            ),
            (b"CLOSE 1\r\nx\r\n", GripError::BadClose { offset: 0 }),
            (
                b"CLOSE 3\r\n\x03\xe8\xff\r\n",
                GripError::BadClose { offset: 0 },
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(
                parse(body),
                Err(expected),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let tight = Limits {
            max_events: 2,
            max_event_bytes: 4,
        };
        let body = Bytes::from_static(b"OPEN\r\nOPEN\r\nOPEN\r\n");
        assert_eq!(
            parse_events(&body, &tight),
            Err(GripError::TooManyEvents { limit: 2 })
        );
        let body = Bytes::from_static(b"TEXT 5\r\nabcde\r\n");
        assert_eq!(
            parse_events(&body, &tight),
            Err(GripError::EventTooLarge { size: 5, limit: 4 })
        );
        let huge = Bytes::from_static(b"TEXT ffffffffffffffff\r\n");
        assert!(
            parse_events(&huge, &Limits::default()).is_err(),
            "a huge length never panics"
        );
    }

    #[test]
    fn every_truncation_is_an_error_or_fewer_events() {
        let mut body = Vec::new();
        encode_events(
            &[
                WsEvent::Open,
                WsEvent::Text(Bytes::from_static(b"hi there")),
                WsEvent::Disconnect,
            ],
            &mut body,
        );
        for cut in 0..body.len() {
            if let Ok(events) = parse(&body[..cut]) {
                assert!(events.len() < 3, "cut at {cut}");
            }
        }
    }

    #[test]
    fn control_and_data_messages_carry_their_prefixes() {
        let subscribe = Control::Subscribe {
            channel: connection_channel("c1"),
        };
        let event = subscribe.event();
        assert_eq!(
            event,
            WsEvent::Text(Bytes::from_static(
                br#"c:{"type":"subscribe","channel":"conn:c1"}"#
            ))
        );
        assert_eq!(Control::from_event(&event), Some(subscribe));
        assert_eq!(Control::from_event(&message_event(b"hello")), None);
        assert_eq!(
            message_event(b"SIP/2.0 200 OK"),
            WsEvent::Text(Bytes::from_static(b"m:SIP/2.0 200 OK"))
        );
        let binary = message_event(&[0xff, 0x00]);
        assert_eq!(
            binary,
            WsEvent::Binary(Bytes::from_static(&[b'm', b':', 0xff, 0x00]))
        );
        assert_eq!(message_of(&binary), Some(Bytes::from_static(&[0xff, 0x00])));
        assert_eq!(message_of(&Control::Detach.event()), None);
        // MSRP goes binary whatever its body, so that a chunk never depends on its bytes.
        assert_eq!(
            message_event(b"MSRP a1 SEND\r\n-------a1$\r\n"),
            WsEvent::Binary(Bytes::from_static(b"m:MSRP a1 SEND\r\n-------a1$\r\n"))
        );
    }

    #[test]
    fn publish_bodies_carry_text_binary_and_close_and_read_back() {
        let items = vec![
            Publish::message(
                "conn:1".into(),
                Bytes::from_static(b"MESSAGE sip:bob@example.com SIP/2.0"),
            ),
            Publish::message("conn:7".into(), Bytes::from_static(&[0xff, 0x01])),
            Publish::message("conn:8".into(), Bytes::from_static(b"MSRP a SEND\r\n")),
            Publish {
                channel: "conn:9".into(),
                event: WsEvent::Close(Some((4000, "replaced".into()))),
            },
        ];
        let bodies = encode_publishes(&items, PUBLISH_LIMIT);
        assert_eq!(bodies.len(), 1);
        let json: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
        assert_eq!(json["items"][0]["channel"], "conn:1");
        assert_eq!(
            json["items"][0]["formats"]["ws-message"]["content"],
            "MESSAGE sip:bob@example.com SIP/2.0"
        );
        assert_eq!(
            json["items"][1]["formats"]["ws-message"]["content-bin"],
            "/wE="
        );
        assert_eq!(
            json["items"][2]["formats"]["ws-message"]["content-bin"],
            STANDARD.encode(b"MSRP a SEND\r\n")
        );
        assert_eq!(decode_publishes(bodies[0].as_bytes()), Ok(items));
        // Other transports' formats are skipped; what is not a message or a close is refused.
        let other = br#"{"items":[{"channel":"h","formats":{"http-stream":{"content":"x"}}}]}"#;
        assert_eq!(decode_publishes(other), Ok(Vec::new()));
        for bad in [
            &br#"{"items":[{"channel":"c","formats":{"ws-message":{}}}]}"#[..],
            br#"{"items":[{"channel":"c","formats":{"ws-message":{"content-bin":"!!"}}}]}"#,
            br#"{"items":[{"channel":"c","formats":{"ws-message":{"action":"explode"}}}]}"#,
            b"not json",
        ] {
            assert!(decode_publishes(bad).is_err());
        }
    }

    #[test]
    fn publishes_batch_under_the_gateway_limit() {
        let big = Bytes::from(vec![b'x'; 400_000]);
        let items: Vec<Publish> = (0..5)
            .map(|i| Publish::message(format!("conn:{i}"), big.clone()))
            .collect();
        let bodies = encode_publishes(&items, PUBLISH_LIMIT);
        assert_eq!(bodies.len(), 3, "two items fit in a body, not three");
        assert!(bodies.iter().all(|body| body.len() <= PUBLISH_LIMIT));
        let read: Vec<Publish> = bodies
            .iter()
            .flat_map(|body| decode_publishes(body.as_bytes()).unwrap())
            .collect();
        assert_eq!(read, items);
        assert!(encode_publishes(&[], PUBLISH_LIMIT).is_empty());
    }

    #[test]
    fn grip_sig_tokens_verify_only_when_genuine_and_current() {
        let key = b"changeme";
        let keys = GripSigKeys::new(key.to_vec(), None).unwrap();
        let other = GripSigKeys::new(b"another key".to_vec(), None).unwrap();
        let now = Timestamp::from_unix_secs(1_800_000_000);
        let claims = GripClaims {
            iss: "pushpin".into(),
            exp: now.unix_secs() + 60,
        };
        let token = sign_grip_sig(&claims, key);
        assert_eq!(verify_grip_sig(&token, &keys, now), Ok(claims.clone()));
        assert_eq!(
            verify_grip_sig(&token, &other, now),
            Err(GripError::BadSignature)
        );
        assert_eq!(
            verify_grip_sig(&token, &keys, now.plus_secs(60)),
            Err(GripError::Expired {
                expired_at: claims.exp,
                now: claims.exp
            })
        );
        // A payload swapped for a later expiry no longer matches the signature.
        let (head, rest) = token.split_once('.').unwrap();
        let signature = rest.rsplit_once('.').unwrap().1;
        let later = URL_SAFE_NO_PAD.encode(br#"{"iss":"pushpin","exp":9999999999}"#);
        assert_eq!(
            verify_grip_sig(&format!("{head}.{later}.{signature}"), &keys, now),
            Err(GripError::BadSignature)
        );
        // An unsigned token is refused whatever it claims.
        let none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        assert_eq!(
            verify_grip_sig(&format!("{none}.{later}."), &keys, now),
            Err(GripError::BadSignature)
        );
        for malformed in ["", "a.b", "!!.e30.e30", "e30.e30.!!"] {
            assert!(
                matches!(
                    verify_grip_sig(malformed, &keys, now),
                    Err(GripError::MalformedToken { .. })
                ),
                "{malformed}"
            );
        }
    }

    /// A token as Fanout signs it: ES256 (RFC 7518 section 3.4, r and s of 32 bytes each).
    fn es256_token(claims: &GripClaims, signer: &p256::ecdsa::SigningKey) -> String {
        use p256::ecdsa::signature::Signer;
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
        let signing_input = format!("{header}.{payload}");
        let signature: p256::ecdsa::Signature = signer.sign(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )
    }

    #[test]
    fn es256_tokens_verify_with_the_configured_public_key_only() {
        use p256::pkcs8::{EncodePublicKey, LineEnding};
        let fanout = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let pem = fanout
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        let keys = GripSigKeys::new(b"shared".to_vec(), Some(&pem)).unwrap();
        let now = Timestamp::from_unix_secs(1_800_000_000);
        let claims = GripClaims {
            iss: "fastly".into(),
            exp: now.unix_secs() + 60,
        };
        let token = es256_token(&claims, &fanout);
        assert_eq!(verify_grip_sig(&token, &keys, now), Ok(claims.clone()));
        // HS256 still verifies beside it.
        let hs256 = sign_grip_sig(&claims, b"shared");
        assert_eq!(verify_grip_sig(&hs256, &keys, now), Ok(claims.clone()));
        // Without the public key, or with another signer, ES256 is refused.
        let hs256_only = GripSigKeys::new(b"shared".to_vec(), None).unwrap();
        assert_eq!(
            verify_grip_sig(&token, &hs256_only, now),
            Err(GripError::BadSignature)
        );
        let impostor = p256::ecdsa::SigningKey::from_slice(&[9u8; 32]).unwrap();
        assert_eq!(
            verify_grip_sig(&es256_token(&claims, &impostor), &keys, now),
            Err(GripError::BadSignature)
        );
        // An HS256 token keyed with the public key's text (the algorithm confusion attack).
        let confused = sign_grip_sig(&claims, pem.as_bytes());
        assert_eq!(
            verify_grip_sig(&confused, &keys, now),
            Err(GripError::BadSignature)
        );
        assert!(matches!(
            GripSigKeys::new(Vec::new(), Some("-----BEGIN PUBLIC KEY-----\nnot a key\n")),
            Err(GripError::BadPublicKey(_))
        ));
    }
}

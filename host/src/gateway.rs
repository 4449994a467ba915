//! The built-in GRIP gateway: what Pushpin does for WebSocket-over-HTTP, for components that cannot
//! hold a socket.
//!
//! A WebSocket upgrade on any route becomes a series of `POST`s (`Content-Type:
//! application/websocket-events`) to the component owning the route, through the same request path as
//! any other HTTP request, so a component sees exactly what it would see behind Pushpin: `Connection-Id`
//! (random, stable for the socket's life), `Grip-Sig` (HS256 JWT, `iss: "pushpin"`, one minute of
//! life), `Sec-WebSocket-Extensions: grip`, the client's `Sec-WebSocket-Protocol` and the other headers
//! of the handshake.
//!
//! - The handshake is answered only after the component's reply to `OPEN`: the reply must be `200` and
//!   begin with `OPEN`, and its `Sec-WebSocket-Protocol` (if the client offered it) is the one
//!   negotiated. Any other reply refuses the upgrade with the component's status.
//! - One request is in flight per connection; client events arriving meanwhile wait and go together in
//!   the next request (up to [`BATCH_BYTES`] and 1024 events; reading from the client pauses beyond
//!   that).
//! - Reply events: `TEXT`/`BINARY` with the message prefix (`m:` unless the reply's
//!   `Sec-WebSocket-Extensions: grip; message-prefix="…"` says otherwise) go to the client without it,
//!   others are dropped; `TEXT` `c:{…}` control messages subscribe, unsubscribe or detach; `PING`,
//!   `PONG` and `CLOSE` go to the client as frames; `DISCONNECT` drops the socket. Without the `grip`
//!   extension in the `OPEN` reply, messages go through unchanged and there are no control messages.
//! - A client close frame becomes `CLOSE`, a lost socket `DISCONNECT`.
//! - Publishing (`POST /publish/` on the publish listener, Pushpin's JSON) delivers to every socket
//!   subscribed to an item's channel. Each socket's outgoing queue is bounded in bytes
//!   ([`QUEUE_BYTES`]): a publish that does not fit closes that socket with code 1008 and reason
//!   "outgoing queue full", so one stuck client neither grows memory nor holds up anyone else.
//! - With `--gateway-echo PREFIX`, sockets opened on paths under `PREFIX` reach no component: the
//!   gateway itself answers `OPEN` (choosing the client's first subprotocol) and echoes every message
//!   through the same batching and queues. This measures what the gateway costs alone, the floor
//!   beneath the echo component's (the benchmark prints both).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rcs_core::grip::{self, Control, GripClaims, WsEvent};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes, handshake::derive_accept_key};

use crate::runtime::{Application, HostBody, text_response};

/// Most bytes of client events waiting for the next request of one connection.
pub const BATCH_BYTES: usize = 1 << 20;

/// Most client events in one request: what a component reading with the core's default limits takes.
const BATCH_EVENTS: usize = 1024;

/// Most bytes of messages queued for one client.
pub const QUEUE_BYTES: usize = 8 << 20;

/// Largest reply body the gateway reads from a component: Pushpin's limit, so that what runs here
/// runs behind Pushpin.
const REPLY_BYTES: usize = grip::REPLY_LIMIT;

/// Largest WebSocket message accepted from a client.
const CLIENT_MESSAGE_BYTES: usize = 1 << 20;

/// How long `Grip-Sig` tokens live.
const GRIP_SIG_LIFETIME: Duration = Duration::from_secs(60);

/// How long a close frame may take to reach a client that stopped reading. Only the close frame and
/// at most one interrupted message are held meanwhile: the queue is freed first.
const CLOSE_GRACE: Duration = Duration::from_secs(30);

/// Close code for a client whose outgoing queue overflowed (policy violation).
const OVERFLOW_CODE: u16 = 1008;

/// Close code when the component fails mid-connection (internal error).
const BACKEND_ERROR_CODE: u16 = 1011;

/// The gateway: its subscriptions and how it reaches components.
pub struct Gateway {
    runtime: Arc<Application>,
    key: Vec<u8>,
    /// Paths under this prefix are echoed by the gateway itself.
    echo_prefix: Option<String>,
    channels: Mutex<HashMap<String, HashMap<u64, Arc<Outlet>>>>,
    next_serial: AtomicU64,
}

/// The sending side of one client socket: a queue bounded in bytes, drained by the socket's writer.
struct Outlet {
    queue: mpsc::UnboundedSender<(Message, OwnedSemaphorePermit)>,
    budget: Arc<Semaphore>,
    /// Set when the socket must close because its queue overflowed.
    overflowed: AtomicBool,
    overflow: Notify,
}

impl Outlet {
    fn permits(message: &Message) -> u32 {
        let size = message.len().clamp(1, QUEUE_BYTES);
        u32::try_from(size).unwrap_or(u32::MAX)
    }

    /// Queues a message for the connection's own reply, waiting for room.
    async fn push(&self, message: Message) -> bool {
        let Ok(permit) = Arc::clone(&self.budget)
            .acquire_many_owned(Self::permits(&message))
            .await
        else {
            return false;
        };
        self.queue.send((message, permit)).is_ok()
    }

    /// Queues a published message, or marks the socket for closing if it does not fit.
    fn offer(&self, message: Message) {
        if self.overflowed.load(Ordering::Relaxed) {
            return;
        }
        match Arc::clone(&self.budget).try_acquire_many_owned(Self::permits(&message)) {
            Ok(permit) => {
                let _ = self.queue.send((message, permit));
            }
            Err(_) => {
                self.overflowed.store(true, Ordering::Relaxed);
                // Stops waiting pushes too: the socket is going away.
                self.budget.close();
                self.overflow.notify_one();
            }
        }
    }
}

/// What a component's reply says about the socket's messages.
#[derive(Clone, Debug, PartialEq, Eq)]
struct GripMode {
    /// Whether control messages and the prefix apply at all.
    enabled: bool,
    prefix: Vec<u8>,
}

impl GripMode {
    /// Reads `Sec-WebSocket-Extensions` of the reply to `OPEN`.
    fn from_headers(headers: &HeaderMap) -> Self {
        for value in headers.get_all("sec-websocket-extensions") {
            let Ok(value) = value.to_str() else { continue };
            for extension in value.split(',') {
                let mut params = extension.split(';').map(str::trim);
                if params.next() != Some("grip") {
                    continue;
                }
                let prefix = params
                    .filter_map(|param| param.strip_prefix("message-prefix="))
                    .map(|prefix| prefix.trim_matches('"').as_bytes().to_vec())
                    .next_back()
                    .unwrap_or_else(|| grip::MESSAGE_PREFIX.as_bytes().to_vec());
                return Self {
                    enabled: true,
                    prefix,
                };
            }
        }
        Self {
            enabled: false,
            prefix: Vec::new(),
        }
    }
}

/// What a connection sends with every request to its component.
struct Exchange {
    runtime: Arc<Application>,
    key: Vec<u8>,
    /// Answered by the gateway's own echo instead of a component.
    echo: bool,
    uri: Uri,
    connection_id: String,
    headers: HeaderMap,
    client: SocketAddr,
}

/// A reply from the component.
struct Reply {
    headers: HeaderMap,
    events: Vec<WsEvent>,
}

impl Exchange {
    /// Sends `events` and reads the reply; `Err` carries the status and a reason.
    async fn send(&self, events: &[WsEvent]) -> Result<Reply, (StatusCode, String)> {
        if self.echo {
            return Ok(self.echo(events));
        }
        let mut body = Vec::new();
        grip::encode_events(events, &mut body);
        let mut request = Request::new(
            http_body_util::Full::new(Bytes::from(body))
                .map_err(|never| match never {})
                .boxed_unsync(),
        );
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        let claims = GripClaims {
            iss: "pushpin".to_owned(),
            exp: unix_now() + GRIP_SIG_LIFETIME.as_secs(),
        };
        let token = grip::sign_grip_sig(&claims, &self.key);
        let headers = request.headers_mut();
        if let Ok(token) = HeaderValue::from_str(&token) {
            headers.insert("grip-sig", token);
        }
        if let Ok(id) = HeaderValue::from_str(&self.connection_id) {
            headers.insert("connection-id", id);
        }
        let response = self.runtime.dispatch(request, Some(self.client)).await;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, REPLY_BYTES)
            .collect()
            .await
            .map_err(|error| {
                (
                    StatusCode::BAD_GATEWAY,
                    format!("reading the reply: {error}"),
                )
            })?
            .to_bytes();
        if parts.status != StatusCode::OK {
            let reason = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            return Err((parts.status, reason));
        }
        let events = grip::parse_events(&body, &grip::Limits::default()).map_err(|error| {
            (
                StatusCode::BAD_GATEWAY,
                format!("bad reply events: {error}"),
            )
        })?;
        Ok(Reply {
            headers: parts.headers,
            events,
        })
    }
}

impl Exchange {
    /// The gateway's own echo: what a trivial component would answer, without one.
    fn echo(&self, events: &[WsEvent]) -> Reply {
        let mut headers = HeaderMap::new();
        if let Some(first) = self
            .headers
            .get(header::SEC_WEBSOCKET_PROTOCOL)
            .and_then(|offered| offered.to_str().ok())
            .and_then(|offered| offered.split(',').next())
            .and_then(|first| HeaderValue::from_str(first.trim()).ok())
        {
            headers.insert(header::SEC_WEBSOCKET_PROTOCOL, first);
        }
        let events = events
            .iter()
            .filter_map(|event| match event {
                WsEvent::Ping(data) => Some(WsEvent::Pong(data.clone())),
                WsEvent::Pong(_) | WsEvent::Disconnect => None,
                other => Some(other.clone()),
            })
            .collect();
        Reply { headers, events }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Whether a request asks for a WebSocket.
pub fn is_upgrade(request: &Request<Incoming>) -> bool {
    let has_token = |name: HeaderName, token: &str| {
        request.headers().get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|value| {
                value
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    request.method() == Method::GET
        && has_token(header::CONNECTION, "upgrade")
        && has_token(header::UPGRADE, "websocket")
}

/// Headers of the handshake that are not passed on to the component.
const HANDSHAKE_ONLY: [HeaderName; 9] = [
    header::CONNECTION,
    header::UPGRADE,
    header::SEC_WEBSOCKET_KEY,
    header::SEC_WEBSOCKET_VERSION,
    header::SEC_WEBSOCKET_EXTENSIONS,
    header::SEC_WEBSOCKET_PROTOCOL,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::CONTENT_TYPE,
];

impl Gateway {
    /// A gateway that signs `Grip-Sig` with `key`, and echoes sockets opened under `echo_prefix`
    /// itself.
    pub fn new(runtime: Arc<Application>, key: Vec<u8>, echo_prefix: Option<String>) -> Arc<Self> {
        Arc::new(Self {
            runtime,
            key,
            echo_prefix,
            channels: Mutex::new(HashMap::new()),
            next_serial: AtomicU64::new(0),
        })
    }

    /// Answers a WebSocket upgrade: asks the component with `OPEN`, then switches protocols and runs
    /// the connection, or refuses with the component's answer. `uri` is absolute.
    pub async fn upgrade(
        self: &Arc<Self>,
        mut request: Request<Incoming>,
        uri: Uri,
        client: SocketAddr,
    ) -> Response<HostBody> {
        let headers = request.headers();
        let key = match headers.get(header::SEC_WEBSOCKET_KEY) {
            Some(key)
                if headers
                    .get(header::SEC_WEBSOCKET_VERSION)
                    .map(|v| v.as_bytes())
                    == Some(b"13") =>
            {
                key.clone()
            }
            _ => {
                return text_response(
                    StatusCode::BAD_REQUEST,
                    "a WebSocket upgrade needs Sec-WebSocket-Key and Sec-WebSocket-Version: 13\n",
                );
            }
        };
        let echo = self
            .echo_prefix
            .as_deref()
            .is_some_and(|prefix| uri.path().starts_with(prefix));
        if !echo && self.runtime.route(uri.path()).is_none() {
            return text_response(
                StatusCode::NOT_FOUND,
                format!("no route for {}\n", uri.path()),
            );
        }
        let offered: Vec<String> = headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(|protocol| protocol.trim().to_owned())
            .filter(|protocol| !protocol.is_empty())
            .collect();
        let mut forwarded = HeaderMap::with_capacity(headers.len() + 4);
        for (name, value) in headers {
            if !HANDSHAKE_ONLY.contains(name) {
                forwarded.append(name.clone(), value.clone());
            }
        }
        forwarded.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(grip::CONTENT_TYPE),
        );
        forwarded.insert(header::ACCEPT, HeaderValue::from_static(grip::CONTENT_TYPE));
        forwarded.insert(
            header::SEC_WEBSOCKET_EXTENSIONS,
            HeaderValue::from_static("grip"),
        );
        if !offered.is_empty()
            && let Ok(value) = HeaderValue::from_str(&offered.join(", "))
        {
            forwarded.insert(header::SEC_WEBSOCKET_PROTOCOL, value);
        }
        let exchange = Exchange {
            runtime: Arc::clone(&self.runtime),
            key: self.key.clone(),
            echo,
            uri,
            connection_id: format!("{:032x}", rand::random::<u128>()),
            headers: forwarded,
            client,
        };
        let reply = match exchange.send(&[WsEvent::Open]).await {
            Ok(reply) => reply,
            Err((status, reason)) => {
                return text_response(
                    status,
                    format!("the component refused the WebSocket: {reason}\n"),
                );
            }
        };
        if reply.events.first() != Some(&WsEvent::Open) {
            return text_response(
                StatusCode::BAD_GATEWAY,
                "the component's reply to OPEN does not begin with OPEN\n",
            );
        }
        let mode = GripMode::from_headers(&reply.headers);
        let chosen = reply
            .headers
            .get(header::SEC_WEBSOCKET_PROTOCOL)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            .filter(|chosen| offered.iter().any(|offered| offered == chosen))
            .map(str::to_owned);
        let on_upgrade = hyper::upgrade::on(&mut request);
        let gateway = Arc::clone(self);
        let remaining = reply.events[1..].to_vec();
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let config = WebSocketConfig::default()
                        .max_message_size(Some(CLIENT_MESSAGE_BYTES))
                        .max_frame_size(Some(CLIENT_MESSAGE_BYTES));
                    let socket = WebSocketStream::from_raw_socket(
                        TokioIo::new(upgraded),
                        Role::Server,
                        Some(config),
                    )
                    .await;
                    gateway.run(socket, exchange, mode, remaining).await;
                }
                Err(error) => eprintln!("WebSocket upgrade failed: {error}"),
            }
        });
        let mut response = Response::new(
            http_body_util::Empty::new()
                .map_err(|never| match never {})
                .boxed_unsync(),
        );
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        if let Some(value) = chosen.and_then(|chosen| HeaderValue::from_str(&chosen).ok()) {
            headers.insert(header::SEC_WEBSOCKET_PROTOCOL, value);
        }
        response
    }

    /// Runs one connection to its end.
    async fn run(
        self: Arc<Self>,
        socket: WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>,
        exchange: Exchange,
        mode: GripMode,
        first_events: Vec<WsEvent>,
    ) {
        let (sink, mut stream) = socket.split();
        let (queue, queue_rx) = mpsc::unbounded_channel();
        let outlet = Arc::new(Outlet {
            queue,
            budget: Arc::new(Semaphore::new(QUEUE_BYTES)),
            overflowed: AtomicBool::new(false),
            overflow: Notify::new(),
        });
        let ended = Arc::new(Notify::new());
        let writer = tokio::spawn(write_loop(
            sink,
            queue_rx,
            Arc::clone(&outlet),
            Arc::clone(&ended),
        ));
        let serial = self.next_serial.fetch_add(1, Ordering::Relaxed);
        let mut connection = Connection {
            gateway: &self,
            serial,
            outlet: &outlet,
            mode,
            channels: HashSet::new(),
            detached: false,
            closed_by_backend: false,
            dropped: false,
        };
        connection.apply(first_events).await;

        let mut pending: Vec<WsEvent> = Vec::new();
        let mut pending_bytes = 0usize;
        let mut reading = !connection.dropped;
        let mut in_flight: Option<
            futures::future::BoxFuture<'_, Result<Reply, (StatusCode, String)>>,
        > = None;
        loop {
            if in_flight.is_none() && !pending.is_empty() {
                let batch = std::mem::take(&mut pending);
                pending_bytes = 0;
                if !connection.detached && !connection.closed_by_backend {
                    let exchange = &exchange;
                    in_flight = Some(Box::pin(async move { exchange.send(&batch).await }));
                }
            }
            if !reading && in_flight.is_none() && pending.is_empty() {
                break;
            }
            tokio::select! {
                frame = stream.next(), if reading && pending_bytes < BATCH_BYTES && pending.len() < BATCH_EVENTS => {
                    let event = match frame {
                        Some(Ok(Message::Text(text))) => WsEvent::Text(Bytes::from(text)),
                        Some(Ok(Message::Binary(data))) => WsEvent::Binary(data),
                        Some(Ok(Message::Ping(data))) => WsEvent::Ping(data),
                        Some(Ok(Message::Pong(data))) => WsEvent::Pong(data),
                        Some(Ok(Message::Close(frame))) => {
                            reading = false;
                            WsEvent::Close(frame.map(|f| (u16::from(f.code), f.reason.to_string())))
                        }
                        Some(Ok(Message::Frame(_))) => continue,
                        Some(Err(_)) | None => {
                            reading = false;
                            WsEvent::Disconnect
                        }
                    };
                    pending_bytes += event_size(&event);
                    pending.push(event);
                }
                reply = async { in_flight.as_mut().expect("guarded by the branch condition").await }, if in_flight.is_some() => {
                    in_flight = None;
                    match reply {
                        Ok(reply) => connection.apply(reply.events).await,
                        Err((status, reason)) => {
                            eprintln!("WebSocket {}: component answered {status}: {reason}", exchange.connection_id);
                            let close = close_message(BACKEND_ERROR_CODE, "backend error");
                            connection.outlet.push(close).await;
                            connection.closed_by_backend = true;
                        }
                    }
                    if connection.dropped {
                        break;
                    }
                }
                () = ended.notified() => {
                    // The writer gave up on the socket (overflow or a dead client): tell the component.
                    if reading {
                        reading = false;
                        pending.push(WsEvent::Disconnect);
                    }
                }
            }
        }
        self.unsubscribe_all(serial, &connection.channels);
        drop(connection);
        drop(outlet);
        let _ = writer.await;
    }

    fn subscribe(&self, channel: &str, serial: u64, outlet: &Arc<Outlet>) {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels
            .entry(channel.to_owned())
            .or_default()
            .insert(serial, Arc::clone(outlet));
    }

    fn unsubscribe(&self, channel: &str, serial: u64) {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(subscribers) = channels.get_mut(channel) {
            subscribers.remove(&serial);
            if subscribers.is_empty() {
                channels.remove(channel);
            }
        }
    }

    fn unsubscribe_all(&self, serial: u64, subscribed: &HashSet<String>) {
        for channel in subscribed {
            self.unsubscribe(channel, serial);
        }
    }

    /// Delivers one published message to every socket subscribed to `channel`.
    fn publish(&self, channel: &str, message: &Message) -> usize {
        let subscribers: Vec<Arc<Outlet>> = {
            let channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
            channels
                .get(channel)
                .map(|subscribers| subscribers.values().cloned().collect())
                .unwrap_or_default()
        };
        for outlet in &subscribers {
            outlet.offer(message.clone());
        }
        subscribers.len()
    }

    /// Serves the publish endpoint: `POST /publish/` with Pushpin's JSON.
    pub async fn handle_publish(&self, request: Request<Incoming>) -> Response<HostBody> {
        let path = request.uri().path();
        if path != "/publish/" && path != "/publish" {
            return text_response(
                StatusCode::NOT_FOUND,
                "the publish endpoint is POST /publish/\n",
            );
        }
        if request.method() != Method::POST {
            return text_response(StatusCode::METHOD_NOT_ALLOWED, "use POST\n");
        }
        let body = match Limited::new(request.into_body(), grip::PUBLISH_LIMIT)
            .collect()
            .await
        {
            Ok(body) => body.to_bytes(),
            Err(error) => {
                return text_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "publish body over {} bytes or unreadable: {error}\n",
                        grip::PUBLISH_LIMIT
                    ),
                );
            }
        };
        let items = match parse_publish(&body) {
            Ok(items) => items,
            Err(reason) => {
                return text_response(
                    StatusCode::BAD_REQUEST,
                    format!("bad publish body: {reason}\n"),
                );
            }
        };
        for (channel, message) in &items {
            self.publish(channel, message);
        }
        text_response(StatusCode::OK, "Published\n")
    }
}

/// The state of one connection while it runs.
struct Connection<'a> {
    gateway: &'a Arc<Gateway>,
    serial: u64,
    outlet: &'a Arc<Outlet>,
    mode: GripMode,
    channels: HashSet<String>,
    detached: bool,
    closed_by_backend: bool,
    /// The component asked to drop the socket (`DISCONNECT`).
    dropped: bool,
}

impl Connection<'_> {
    /// Carries out the events of a reply, in order.
    async fn apply(&mut self, events: Vec<WsEvent>) {
        for event in events {
            let message = match event {
                WsEvent::Open => continue,
                WsEvent::Text(content)
                    if self.mode.enabled
                        && content.starts_with(grip::CONTROL_PREFIX.as_bytes()) =>
                {
                    self.control(&WsEvent::Text(content));
                    continue;
                }
                WsEvent::Text(content) => match self.unprefixed(content).map(Utf8Bytes::try_from) {
                    Some(Ok(text)) => Message::Text(text),
                    Some(Err(_)) => {
                        eprintln!("dropping a TEXT event that is not UTF-8");
                        continue;
                    }
                    None => continue,
                },
                WsEvent::Binary(content) => match self.unprefixed(content) {
                    Some(data) => Message::Binary(data),
                    None => continue,
                },
                WsEvent::Ping(data) => Message::Ping(data),
                WsEvent::Pong(data) => Message::Pong(data),
                WsEvent::Close(frame) => {
                    self.closed_by_backend = true;
                    Message::Close(frame.map(|(code, reason)| CloseFrame {
                        code: CloseCode::from(code),
                        reason: reason.into(),
                    }))
                }
                WsEvent::Disconnect => {
                    self.dropped = true;
                    return;
                }
            };
            if !self.outlet.push(message).await {
                return;
            }
        }
    }

    /// A message's content without the prefix, or `None` to drop it (no prefix while GRIP is on).
    fn unprefixed(&self, content: Bytes) -> Option<Bytes> {
        if !self.mode.enabled {
            return Some(content);
        }
        content
            .starts_with(&self.mode.prefix)
            .then(|| content.slice(self.mode.prefix.len()..))
    }

    fn control(&mut self, event: &WsEvent) {
        match Control::from_event(event) {
            Some(Control::Subscribe { channel }) => {
                self.gateway.subscribe(&channel, self.serial, self.outlet);
                self.channels.insert(channel);
            }
            Some(Control::Unsubscribe { channel }) => {
                self.gateway.unsubscribe(&channel, self.serial);
                self.channels.remove(&channel);
            }
            Some(Control::Detach) => self.detached = true,
            None => eprintln!("ignoring an unsupported GRIP control message"),
        }
    }
}

fn event_size(event: &WsEvent) -> usize {
    let content = match event {
        WsEvent::Text(c) | WsEvent::Binary(c) | WsEvent::Ping(c) | WsEvent::Pong(c) => c.len(),
        WsEvent::Close(Some((_, reason))) => reason.len() + 2,
        WsEvent::Open | WsEvent::Close(None) | WsEvent::Disconnect => 0,
    };
    content + 16
}

fn close_message(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    }))
}

/// Writes queued messages to the client; on overflow sends a close frame and gives up.
async fn write_loop(
    mut sink: futures::stream::SplitSink<
        WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>,
        Message,
    >,
    mut queue: mpsc::UnboundedReceiver<(Message, OwnedSemaphorePermit)>,
    outlet: Arc<Outlet>,
    ended: Arc<Notify>,
) {
    loop {
        let next = tokio::select! {
            biased;
            () = outlet.overflow.notified() => None,
            next = queue.recv() => next,
        };
        let Some((message, _permit)) = next else {
            break;
        };
        let closing = matches!(message, Message::Close(_));
        let sent = tokio::select! {
            biased;
            () = outlet.overflow.notified() => {
                // Keep the notification for the check below.
                outlet.overflow.notify_one();
                Ok(())
            }
            sent = sink.send(message) => sent,
        };
        if sent.is_err() || closing {
            break;
        }
    }
    // Free what is left now, not when the connection task notices.
    drop(queue);
    let overflowed = outlet.overflowed.load(Ordering::Relaxed);
    drop(outlet);
    // Ends the close handshake: sends our close frame, or flushes the reply to the client's.
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        if overflowed {
            sink.send(close_message(OVERFLOW_CODE, "outgoing queue full"))
                .await?;
        }
        sink.close().await
    })
    .await;
    ended.notify_one();
}

/// Reads a publish body into (channel, message) pairs, with the core's publish codec.
fn parse_publish(body: &[u8]) -> Result<Vec<(String, Message)>, String> {
    Ok(grip::decode_publishes(body)?
        .into_iter()
        .map(|publish| {
            let message = match publish.event {
                // The codec reads `content` as a JSON string: always UTF-8.
                WsEvent::Text(text) => {
                    Message::Text(String::from_utf8_lossy(&text).as_ref().into())
                }
                WsEvent::Close(close) => {
                    let (code, reason) = close.unwrap_or((1000, String::new()));
                    close_message(code, &reason)
                }
                WsEvent::Binary(data) | WsEvent::Ping(data) | WsEvent::Pong(data) => {
                    Message::Binary(data)
                }
                WsEvent::Open | WsEvent::Disconnect => close_message(1000, ""),
            };
            (publish.channel, message)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_fit_what_components_accept() {
        let limits = grip::Limits::default();
        assert!(BATCH_EVENTS <= limits.max_events);
        assert!(CLIENT_MESSAGE_BYTES <= limits.max_event_bytes);
    }

    #[test]
    fn grip_mode_reads_the_extension_and_its_prefix() {
        let mode = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                "sec-websocket-extensions",
                HeaderValue::from_str(value).unwrap(),
            );
            GripMode::from_headers(&headers)
        };
        assert_eq!(
            mode("grip"),
            GripMode {
                enabled: true,
                prefix: b"m:".to_vec()
            }
        );
        assert_eq!(
            mode("grip; message-prefix=\"\""),
            GripMode {
                enabled: true,
                prefix: Vec::new()
            }
        );
        assert_eq!(
            mode("deflate, grip; message-prefix=\"x\""),
            GripMode {
                enabled: true,
                prefix: b"x".to_vec()
            }
        );
        assert!(!mode("permessage-deflate").enabled);
        assert!(!GripMode::from_headers(&HeaderMap::new()).enabled);
    }

    #[test]
    fn publish_bodies_parse_as_pushpin_reads_them() {
        let items = [
            grip::Publish::message("conn:2".into(), Bytes::from_static(b"hello")),
            grip::Publish::message("conn:1".into(), Bytes::from_static(&[0xff, 0])),
        ];
        let body = grip::encode_publishes(&items, grip::PUBLISH_LIMIT).remove(0);
        let items = parse_publish(body.as_bytes()).unwrap();
        assert_eq!(
            items[0],
            ("conn:2".to_owned(), Message::Text("hello".into()))
        );
        assert_eq!(
            items[1],
            (
                "conn:1".to_owned(),
                Message::Binary(Bytes::from_static(&[0xff, 0]))
            )
        );
        let close = br#"{"items":[{"channel":"c","formats":{"ws-message":{"action":"close","code":4000}}},{"channel":"h","formats":{"http-stream":{"content":"x"}}}]}"#;
        let items = parse_publish(close).unwrap();
        assert_eq!(items, vec![("c".to_owned(), close_message(4000, ""))]);
        for bad in [
            &br#"{"items":[{"channel":"c","formats":{"ws-message":{"action":"explode"}}}]}"#[..],
            br#"{"items":[{"formats":{}}]}"#,
            b"not json",
        ] {
            assert!(
                parse_publish(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}

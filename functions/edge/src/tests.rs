//! The handlers run natively over an in-memory runtime: a shared store, a small GRIP gateway that
//! applies `c:` control events and routes publishes to subscribed connections, and the two servers
//! wired to each other (the sender's peer requests go to the receiver's handler).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use futures::executor::block_on;
use http::{Method, Request, Response, StatusCode};
use rcs_core::first_value::ContentDigest;
use rcs_core::grip::{self, Control, GripClaims, WsEvent};
use rcs_core::ids::{Entropy, TokenSource};
use rcs_core::msrp::{self, ByteRange, Chunker, Frame, MsrpUri, WindowedSender};
use rcs_core::sdp::{
    self, AnswerParams, Connection, FileHash, FileSelector, FileTransferOffer, Operation,
    SessionDescription, Setup,
};
use rcs_core::sip::{
    self, Dialog, Method as SipMethod, NameAddr, RequestBuilder, SipMessage, SipUri,
};
use rcs_core::time::Timestamp;

use crate::config::EdgeConfig;
use crate::config::tests::defaults;
use crate::handler::{handle_grip, handle_peer, handle_tick};
use crate::runtime::{Runtime, RuntimeError};
use crate::{Protocol, Route, Side, route};

const START: u64 = 1_800_000_000_000;
const DOMAIN: &str = "localhost";

fn config(role: Side) -> EdgeConfig {
    let mut vars = defaults();
    let host = match role {
        Side::Sender => "sender-as.localhost",
        Side::Receiver => "receiver-as.localhost",
    };
    vars.insert("as_host", host.into());
    EdgeConfig::from_variables(|name| vars.get(name).cloned()).unwrap()
}

/// The platform both servers share: one store, one gateway, one clock.
struct Net {
    store: RefCell<BTreeMap<String, Bytes>>,
    /// Publish bodies POSTed, in order.
    published: RefCell<Vec<String>>,
    logs: RefCell<Vec<String>>,
    now: Cell<u64>,
    seed: Cell<u64>,
    peer_down: Cell<bool>,
    sender: EdgeConfig,
    receiver: EdgeConfig,
    /// The gateway: channel -> connections, connection -> messages delivered.
    subscriptions: RefCell<BTreeMap<String, BTreeSet<String>>>,
    inboxes: RefCell<BTreeMap<String, Vec<Bytes>>>,
}

impl Net {
    fn new() -> Self {
        Self {
            store: RefCell::default(),
            published: RefCell::default(),
            logs: RefCell::default(),
            now: Cell::new(START),
            seed: Cell::new(0),
            peer_down: Cell::new(false),
            sender: config(Side::Sender),
            receiver: config(Side::Receiver),
            subscriptions: RefCell::default(),
            inboxes: RefCell::default(),
        }
    }

    fn config(&self, role: Side) -> &EdgeConfig {
        match role {
            Side::Sender => &self.sender,
            Side::Receiver => &self.receiver,
        }
    }

    fn grip_request(
        &self,
        role: Side,
        protocol: Protocol,
        connection: &str,
        events: &[WsEvent],
    ) -> Request<Bytes> {
        let claims = GripClaims {
            iss: "pushpin".into(),
            exp: self.now.get() / 1000 + 60,
        };
        let mut body = Vec::new();
        grip::encode_events(events, &mut body);
        Request::post(format!("{}{}", role.path_prefix(), protocol.name()))
            .header("content-type", grip::CONTENT_TYPE)
            .header("connection-id", connection)
            .header(
                "grip-sig",
                grip::sign_grip_sig(&claims, b"local-development-grip-key"),
            )
            .header("sec-websocket-protocol", protocol.name())
            .body(Bytes::from(body))
            .unwrap()
    }

    /// One GRIP request, with the gateway's side applied: control events, messages to the
    /// connection's inbox, publishes to subscribed connections.
    fn post(
        &self,
        role: Side,
        protocol: Protocol,
        connection: &str,
        events: &[WsEvent],
    ) -> Response<Bytes> {
        let request = self.grip_request(role, protocol, connection, events);
        let response = block_on(handle_grip(
            self,
            self.config(role),
            role,
            protocol,
            request,
        ));
        if response.status() == StatusCode::OK {
            let events = grip::parse_events(response.body(), &grip::Limits::default()).unwrap();
            for event in &events {
                if let Some(control) = Control::from_event(event) {
                    let mut subscriptions = self.subscriptions.borrow_mut();
                    match control {
                        Control::Subscribe { channel } => {
                            subscriptions
                                .entry(channel)
                                .or_default()
                                .insert(connection.into());
                        }
                        Control::Unsubscribe { channel } => {
                            subscriptions.entry(channel).or_default().remove(connection);
                        }
                        Control::Detach => {}
                    }
                } else if let Some(message) = grip::message_of(event) {
                    self.deliver(connection, message);
                }
            }
        }
        self.route_publishes();
        response
    }

    fn deliver(&self, connection: &str, message: Bytes) {
        self.inboxes
            .borrow_mut()
            .entry(connection.into())
            .or_default()
            .push(message);
    }

    fn route_publishes(&self) {
        let bodies = std::mem::take(&mut *self.published.borrow_mut());
        for body in bodies {
            for publish in grip::decode_publishes(body.as_bytes()).unwrap() {
                let (WsEvent::Text(message) | WsEvent::Binary(message)) = publish.event else {
                    continue;
                };
                let targets: Vec<String> = self
                    .subscriptions
                    .borrow()
                    .get(&publish.channel)
                    .map(|set| set.iter().cloned().collect())
                    .unwrap_or_default();
                for connection in targets {
                    self.deliver(&connection, message.clone());
                }
            }
        }
    }

    fn take(&self, connection: &str) -> Vec<Bytes> {
        self.inboxes
            .borrow_mut()
            .remove(connection)
            .unwrap_or_default()
    }
}

impl Runtime for Net {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, RuntimeError> {
        Ok(self.store.borrow().get(key).cloned())
    }

    async fn set(&self, key: &str, value: Bytes) -> Result<(), RuntimeError> {
        if value.len() > rcs_core::store::VALUE_LIMIT {
            return Err(RuntimeError::Store(format!("{key} is too large")));
        }
        self.store.borrow_mut().insert(key.into(), value);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), RuntimeError> {
        self.store.borrow_mut().remove(key);
        Ok(())
    }

    async fn keys(&self, keep: &dyn Fn(&str) -> bool) -> Result<Vec<String>, RuntimeError> {
        Ok(self
            .store
            .borrow()
            .keys()
            .filter(|k| keep(k))
            .cloned()
            .collect())
    }

    async fn publish(&self, url: &str, body: String) -> Result<(), RuntimeError> {
        assert_eq!(url, "http://127.0.0.1:5561/publish/");
        assert!(body.len() <= grip::PUBLISH_LIMIT);
        self.published.borrow_mut().push(body);
        Ok(())
    }

    async fn peer_request(&self, url: &str, message: Bytes) -> Result<Bytes, RuntimeError> {
        if self.peer_down.get() {
            return Err(RuntimeError::Outbound {
                url: url.into(),
                reason: "connection refused".into(),
            });
        }
        let request = Request::post(url)
            .header("content-type", "message/sip")
            .body(message)
            .unwrap();
        // Boxed: the receiver's handler is generic over this very runtime.
        let answer: Pin<Box<dyn Future<Output = Response<Bytes>> + '_>> =
            Box::pin(handle_peer(self, &self.receiver, Side::Receiver, request));
        let response = answer.await;
        assert_eq!(response.status(), StatusCode::OK, "{:?}", response.body());
        assert_eq!(response.headers()["content-type"], "message/sip");
        Ok(response.into_body())
    }

    fn now(&self) -> Timestamp {
        self.now.set(self.now.get() + 1);
        Timestamp::from_unix_millis(self.now.get())
    }

    fn entropy(&self) -> Result<Entropy, RuntimeError> {
        self.seed.set(self.seed.get() + 1);
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&self.seed.get().to_be_bytes());
        Ok(Entropy(bytes))
    }

    fn log(&self, line: &str) {
        self.logs.borrow_mut().push(line.into());
    }
}

/// A user agent with a SIP and an MSRP connection to one server.
struct User {
    name: String,
    role: Side,
    sip: String,
    msrp: String,
    host: String,
    ids: TokenSource,
}

impl User {
    fn new(name: &str, role: Side, seed: u8) -> Self {
        Self {
            name: name.into(),
            role,
            sip: format!("{name}-sip"),
            msrp: format!("{name}-msrp"),
            host: format!("{name}.invalid"),
            ids: TokenSource::new(Entropy([seed; 32])),
        }
    }

    fn aor(&self) -> String {
        format!("sip:{}@{DOMAIN}", self.name)
    }

    fn uri(&self) -> SipUri {
        SipUri::parse(&self.aor()).unwrap()
    }

    fn msrp_uri(&self, session: &str) -> MsrpUri {
        format!("msrp://{}:2855/{session};ws", self.host)
            .parse()
            .unwrap()
    }

    fn register_request(&mut self) -> SipMessage {
        RequestBuilder::new(
            SipMethod::Register,
            SipUri::parse(&format!("sip:{DOMAIN}")).unwrap(),
            NameAddr::new(self.uri()),
            NameAddr::new(self.uri()),
        )
        .local_host(&self.host)
        .contact_user(&self.name)
        .expires(600)
        .build(&mut self.ids)
        .unwrap()
    }

    /// Opens the SIP connection and registers in the same request.
    fn register(&mut self, net: &Net) -> Response<Bytes> {
        let register = self.register_request();
        net.post(
            self.role,
            Protocol::Sip,
            &self.sip,
            &[WsEvent::Open, WsEvent::Text(register.to_bytes())],
        )
    }

    fn send_sip(&self, net: &Net, message: &SipMessage) {
        net.post(
            self.role,
            Protocol::Sip,
            &self.sip,
            &[WsEvent::Text(message.to_bytes())],
        );
    }

    fn send_msrp(&self, net: &Net, frames: Vec<Bytes>) {
        let events: Vec<WsEvent> = frames.into_iter().map(WsEvent::Binary).collect();
        net.post(self.role, Protocol::Msrp, &self.msrp, &events);
    }

    fn sip_inbox(&self, net: &Net) -> Vec<SipMessage> {
        net.take(&self.sip)
            .iter()
            .map(|m| sip::parse(m, &sip::Limits::default()).unwrap())
            .collect()
    }

    fn msrp_inbox(&self, net: &Net) -> Vec<Frame> {
        net.take(&self.msrp)
            .iter()
            .map(|m| msrp::parse_message(m, &msrp::Limits::default()).unwrap())
            .collect()
    }
}

fn encode(frame: &Frame) -> Bytes {
    let mut out = Vec::new();
    frame.encode(&mut out);
    Bytes::from(out)
}

fn file_bytes(len: usize) -> Bytes {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

fn text(message: &Bytes) -> String {
    String::from_utf8_lossy(message).into_owned()
}

#[test]
fn routes_take_their_methods_and_refuse_the_rest() {
    let post = Method::POST;
    assert_eq!(
        route(Side::Sender, &post, "/sender/sip"),
        Ok(Route::Grip(Protocol::Sip))
    );
    assert_eq!(
        route(Side::Sender, &post, "/sender/msrp"),
        Ok(Route::Grip(Protocol::Msrp))
    );
    assert_eq!(route(Side::Sender, &post, "/sender/tick"), Ok(Route::Tick));
    assert_eq!(
        route(Side::Sender, &Method::GET, "/sender/upload"),
        Ok(Route::Upload)
    );
    assert_eq!(
        route(Side::Receiver, &post, "/receiver/peer"),
        Ok(Route::Peer)
    );
    assert_eq!(
        route(Side::Receiver, &Method::HEAD, "/files/ab?exp=1"),
        Ok(Route::Files)
    );
    let refused = route(Side::Receiver, &Method::GET, "/receiver/sip").unwrap_err();
    assert_eq!(refused.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(refused.into_response().headers()["allow"], "POST");
    for (role, path) in [
        (Side::Sender, "/sender/peer"),
        (Side::Sender, "/files/ab"),
        (Side::Receiver, "/receiver/upload"),
        (Side::Receiver, "/receiver/sip/extra"),
    ] {
        let refused = route(role, &post, path).unwrap_err();
        assert_eq!(refused.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(refused.to_string().contains(path));
    }
}

#[test]
fn a_register_over_open_and_text_is_answered_with_open_its_channel_and_200() {
    let net = Net::new();
    let mut alice = User::new("alice", Side::Sender, 1);
    let register = alice.register_request();
    let request = net.grip_request(
        Side::Sender,
        Protocol::Sip,
        "c1",
        &[WsEvent::Open, WsEvent::Text(register.to_bytes())],
    );
    let response = block_on(handle_grip(
        &net,
        &net.sender,
        Side::Sender,
        Protocol::Sip,
        request,
    ));
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/websocket-events"
    );
    assert_eq!(response.headers()["sec-websocket-protocol"], "sip");
    assert_eq!(response.headers()["sec-websocket-extensions"], "grip");
    let events = grip::parse_events(response.body(), &grip::Limits::default()).unwrap();
    // No subscription to a user channel: what is sent to Alice goes to the connection her
    // registration is bound to, over its own channel.
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[0], WsEvent::Open);
    assert_eq!(
        events[1],
        WsEvent::Text(Bytes::from_static(
            br#"c:{"type":"subscribe","channel":"conn:c1"}"#
        ))
    );
    let WsEvent::Text(answer) = &events[2] else {
        panic!("SIP goes as text: {:?}", events[2]);
    };
    assert!(
        answer.starts_with(b"m:SIP/2.0 200 OK\r\n"),
        "{}",
        text(answer)
    );
    assert!(
        net.store
            .borrow()
            .contains_key("reg/sender/sip:alice@localhost")
    );
    assert!(net.published.borrow().is_empty());
}

#[test]
fn a_chat_is_relayed_as_a_publish_to_the_recipient() {
    let net = Net::new();
    let mut alice = User::new("alice", Side::Sender, 1);
    let mut bob = User::new("bob", Side::Receiver, 2);
    alice.register(&net);
    bob.register(&net);
    alice.sip_inbox(&net);
    bob.sip_inbox(&net);
    let message = RequestBuilder::new(
        SipMethod::Message,
        bob.uri(),
        NameAddr::new(alice.uri()),
        NameAddr::new(bob.uri()),
    )
    .local_host(&alice.host)
    .body("text/plain", Bytes::from_static(b"hello bob"))
    .build(&mut alice.ids)
    .unwrap();
    let request = net.grip_request(
        Side::Sender,
        Protocol::Sip,
        &alice.sip,
        &[WsEvent::Text(message.to_bytes())],
    );
    let response = block_on(handle_grip(
        &net,
        &net.sender,
        Side::Sender,
        Protocol::Sip,
        request,
    ));
    assert_eq!(response.status(), StatusCode::OK);
    let published = net.published.borrow().clone();
    assert_eq!(published.len(), 1, "one POST");
    let json: serde_json::Value = serde_json::from_str(&published[0]).unwrap();
    // To the connection Bob's registration is bound to.
    assert_eq!(json["items"][0]["channel"], format!("conn:{}", bob.sip));
    let relayed = json["items"][0]["formats"]["ws-message"]["content"]
        .as_str()
        .unwrap();
    assert!(relayed.starts_with("MESSAGE sip:bob@"), "{relayed}");
    assert!(relayed.ends_with("hello bob"));
    // Alice's 202 comes back in her own response, not as a publish.
    let events = grip::parse_events(response.body(), &grip::Limits::default()).unwrap();
    assert!(matches!(&events[..], [WsEvent::Text(m)] if m.starts_with(b"m:SIP/2.0 202 Accepted")));
}

#[test]
fn a_bad_or_missing_grip_sig_is_refused() {
    let net = Net::new();
    let good = net.grip_request(Side::Sender, Protocol::Sip, "c1", &[WsEvent::Open]);
    let mut wrong_key = good.clone();
    let claims = GripClaims {
        iss: "pushpin".into(),
        exp: START / 1000 + 60,
    };
    wrong_key.headers_mut().insert(
        "grip-sig",
        grip::sign_grip_sig(&claims, b"another key")
            .parse()
            .unwrap(),
    );
    let mut expired = good.clone();
    let old = GripClaims {
        iss: "pushpin".into(),
        exp: START / 1000 - 1,
    };
    expired.headers_mut().insert(
        "grip-sig",
        grip::sign_grip_sig(&old, b"local-development-grip-key")
            .parse()
            .unwrap(),
    );
    let mut missing = good.clone();
    missing.headers_mut().remove("grip-sig");
    for (request, why) in [
        (wrong_key, "does not verify"),
        (expired, "expired"),
        (missing, "missing"),
    ] {
        let response = block_on(handle_grip(
            &net,
            &net.sender,
            Side::Sender,
            Protocol::Sip,
            request,
        ));
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(
            text(response.body()).contains(why),
            "{}",
            text(response.body())
        );
    }
    assert!(net.store.borrow().is_empty());
    let response = block_on(handle_grip(
        &net,
        &net.sender,
        Side::Sender,
        Protocol::Sip,
        good,
    ));
    assert_eq!(response.status(), StatusCode::OK);
}

#[test]
fn malformed_sip_gets_a_400_and_the_connection_keeps_working() {
    let net = Net::new();
    let mut alice = User::new("alice", Side::Sender, 1);
    let broken = b"REGISTER sip:localhost SIP/2.0\r\nVia: SIP/2.0/WSS a.invalid;branch=z9hG4bK1\r\nFrom: <sip:alice@localhost>;tag=1\r\nTo: <sip:alice@localhost>\r\nCall-ID: x\r\nCSeq: one REGISTER\r\nContent-Length: 0\r\n\r\n";
    let register = alice.register_request();
    let response = net.post(
        Side::Sender,
        Protocol::Sip,
        &alice.sip,
        &[
            WsEvent::Open,
            WsEvent::Text(Bytes::from_static(broken)),
            WsEvent::Text(register.to_bytes()),
        ],
    );
    assert_eq!(response.status(), StatusCode::OK);
    // The 400 copies the broken CSeq as written, so it is read as text here.
    let answers: Vec<String> = net.take(&alice.sip).iter().map(text).collect();
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert!(answers[0].starts_with("SIP/2.0 400 "), "{}", answers[0]);
    assert!(answers[0].contains("\r\nWarning: 399 "), "{}", answers[0]);
    assert!(
        answers[1].starts_with("SIP/2.0 200 OK\r\n"),
        "the next message on the connection is served: {}",
        answers[1]
    );
}

#[test]
fn malformed_event_framing_is_an_http_400_with_a_reason() {
    let net = Net::new();
    let mut request = net.grip_request(Side::Sender, Protocol::Sip, "c1", &[]);
    *request.body_mut() = Bytes::from_static(b"TEXT 10\r\nshort\r\n");
    let response = block_on(handle_grip(
        &net,
        &net.sender,
        Side::Sender,
        Protocol::Sip,
        request,
    ));
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        text(response.body()).contains("malformed WebSocket events"),
        "{}",
        text(response.body())
    );
    let mut request = net.grip_request(Side::Sender, Protocol::Sip, "c1", &[WsEvent::Open]);
    request.headers_mut().remove("connection-id");
    let response = block_on(handle_grip(
        &net,
        &net.sender,
        Side::Sender,
        Protocol::Sip,
        request,
    ));
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(text(response.body()).contains("Connection-Id"));
}

#[test]
fn pings_are_ponged_and_closes_are_echoed_and_forget_the_connection() {
    let net = Net::new();
    let mut alice = User::new("alice", Side::Sender, 1);
    alice.register(&net);
    assert!(net.store.borrow().contains_key("conn/alice-sip"));
    let close = WsEvent::Close(Some((1000, "bye".into())));
    let request = net.grip_request(
        Side::Sender,
        Protocol::Sip,
        &alice.sip,
        &[WsEvent::Ping(Bytes::from_static(b"p")), close.clone()],
    );
    let response = block_on(handle_grip(
        &net,
        &net.sender,
        Side::Sender,
        Protocol::Sip,
        request,
    ));
    let events = grip::parse_events(response.body(), &grip::Limits::default()).unwrap();
    assert_eq!(events, vec![WsEvent::Pong(Bytes::from_static(b"p")), close]);
    assert!(!net.store.borrow().contains_key("conn/alice-sip"));
    assert!(
        response.headers().get("sec-websocket-protocol").is_none(),
        "only an OPEN answer carries it"
    );
}

#[test]
fn peer_requests_need_message_sip_and_a_request_to_answer() {
    let net = Net::new();
    let request = Request::post("/receiver/peer")
        .header("content-type", "text/plain")
        .body(Bytes::from_static(b"x"))
        .unwrap();
    let response = block_on(handle_peer(&net, &net.receiver, Side::Receiver, request));
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let peer = |body: &'static [u8]| {
        let request = Request::post("/receiver/peer")
            .header("content-type", "message/sip; charset=utf-8")
            .body(Bytes::from_static(body))
            .unwrap();
        block_on(handle_peer(&net, &net.receiver, Side::Receiver, request))
    };
    // Unparsable SIP is answered in SIP.
    let response = peer(b"not sip at all");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.body().starts_with(b"SIP/2.0 400 Bad Request\r\n"));
    // A SIP response is not a request: nothing to answer in SIP.
    let response = peer(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/WSS a.invalid;branch=z9hG4bK1\r\nFrom: <sip:a@localhost>;tag=1\r\nTo: <sip:b@localhost>;tag=2\r\nCall-ID: x\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(text(response.body()).contains("SIP request"));
}

#[test]
fn a_tick_needs_the_token_fires_due_timers_and_sweeps_expired_records() {
    let net = Net::new();
    let tick = |token: Option<&str>| {
        let mut request = Request::post("/receiver/tick");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        block_on(handle_tick(
            &net,
            &net.receiver,
            Side::Receiver,
            request.body(Bytes::new()).unwrap(),
        ))
    };
    for token in [None, Some("wrong")] {
        let response = tick(token);
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }
    {
        let mut store = net.store.borrow_mut();
        let now = START / 1000;
        store.insert(
            "conn/old".into(),
            Bytes::from(format!(
                r#"{{"role":{{"Sip":{{"aor":"sip:a@localhost"}}}},"expires":{}}}"#,
                now - 1
            )),
        );
        store.insert(
            "conn/live".into(),
            Bytes::from(format!(
                r#"{{"role":{{"Sip":{{"aor":"sip:b@localhost"}}}},"expires":{}}}"#,
                now + 100
            )),
        );
        store.insert("timer/msrp/gone".into(), Bytes::from(START.to_string()));
        store.insert(
            "timer/msrp/later".into(),
            Bytes::from((START + 60_000).to_string()),
        );
        store.insert("up/abc/0".into(), Bytes::from_static(b"chunk"));
    }
    let response = tick(Some("local-development-admin-token"));
    assert_eq!(response.status(), StatusCode::OK);
    let summary: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(summary["timers_fired"], 1);
    assert_eq!(summary["records_checked"], 2, "chunks are not read");
    assert_eq!(summary["keys_deleted"], 1);
    let store = net.store.borrow();
    let keys: Vec<&str> = store.keys().map(String::as_str).collect();
    assert_eq!(keys, ["conn/live", "timer/msrp/later", "up/abc/0"]);
}

/// What Alice does: INVITE with a file offer, ACK, then the file in MSRP chunks with a window.
fn send_file(net: &Net, alice: &mut User, to: &User, data: &Bytes) {
    let session = alice.ids.msrp_id();
    let offer = FileTransferOffer {
        username: alice.name.clone(),
        session_id: 1,
        session_version: 1,
        connection: Connection::ip4(&alice.host),
        port: 9,
        proto: sdp::PROTO_TLS.into(),
        path: vec![alice.msrp_uri(&session).to_string()],
        accept_types: vec!["application/octet-stream".into()],
        accept_wrapped_types: Vec::new(),
        max_size: None,
        setup: Setup::Active,
        operation: Operation::Push,
        file_selector: FileSelector {
            name: Some("report.bin".into()),
            content_type: Some("application/octet-stream".into()),
            size: Some(data.len() as u64),
            hashes: vec![FileHash {
                algorithm: "sha-256".into(),
                bytes: ContentDigest::of(data).as_bytes().to_vec(),
            }],
        },
        file_transfer_id: alice.ids.token(8),
        file_disposition: Some("attachment".into()),
        file_date: None,
        file_icon: None,
        file_range: None,
    }
    .build()
    .unwrap();
    let invite = RequestBuilder::new(
        SipMethod::Invite,
        to.uri(),
        NameAddr::new(alice.uri()),
        NameAddr::new(to.uri()),
    )
    .local_host(&alice.host)
    .contact_user(&alice.name)
    .body("application/sdp", Bytes::from(offer.to_bytes()))
    .build(&mut alice.ids)
    .unwrap();
    alice.send_sip(net, &invite);
    let answer = alice.sip_inbox(net).pop().expect("an answer to INVITE");
    assert_eq!(answer.status(), Some(200), "{}", text(&answer.to_bytes()));
    let dialog = Dialog::uac(&invite, &answer).unwrap();
    let ack = dialog.ack(&mut alice.ids).unwrap();
    alice.send_sip(net, &ack);
    let sdp = SessionDescription::parse(answer.body()).unwrap();
    let server_path: MsrpUri = sdp.msrp_media().unwrap().path().unwrap()[0]
        .parse()
        .unwrap();
    net.post(Side::Sender, Protocol::Msrp, &alice.msrp, &[WsEvent::Open]);
    let local = alice.msrp_uri(&session);
    let total = data.len() as u64;
    let message_id = alice.ids.msrp_id();
    let mut window = WindowedSender::new(&message_id, total, 64 * 1024, 4, 0);
    let chunker = Chunker::new(
        &message_id,
        "application/octet-stream",
        Some(total),
        64 * 1024,
        vec![server_path],
        vec![local],
    )
    .unwrap();
    for _ in 0..100 {
        let mut frames = Vec::new();
        while let Some(plan) =
            window.next_chunk(&mut alice.ids, Timestamp::from_unix_millis(net.now.get()))
        {
            let body = data.slice(plan.range.start as usize..plan.range.end as usize);
            frames.push(encode(&Frame::Request(
                chunker.request_for(&plan, body).unwrap(),
            )));
        }
        if !frames.is_empty() {
            alice.send_msrp(net, frames);
        }
        for frame in alice.msrp_inbox(net) {
            if let Frame::Response(response) = frame {
                let _ = window.on_response(&response.transaction_id, response.code);
            }
        }
        if window.is_finished() {
            break;
        }
    }
    assert!(window.is_finished(), "the upload completes");
}

/// What Bob does with the receiver AS's INVITE: answer, bind MSRP, take and acknowledge the chunks,
/// and report success. Returns the bytes received.
fn accept_push(net: &Net, bob: &mut User) -> Vec<u8> {
    let invite = bob
        .sip_inbox(net)
        .into_iter()
        .find(|m| m.is_request() && *m.method() == SipMethod::Invite)
        .expect("the receiver AS invites Bob");
    let offer = SessionDescription::parse(invite.body()).unwrap();
    let session = bob.ids.msrp_id();
    let params = AnswerParams {
        username: bob.name.clone(),
        session_id: 2,
        session_version: 1,
        connection: Connection::ip4(&bob.host),
        port: 9,
        path: vec![bob.msrp_uri(&session).to_string()],
        accept_types: Vec::new(),
        accept_wrapped_types: Vec::new(),
        max_size: None,
        setup: Some(Setup::Active),
    };
    let answer = sdp::answer(&offer, &params).unwrap();
    let tag = bob.ids.tag();
    let mut ok = sip::response(&invite, 200, "OK", Some(&tag)).unwrap();
    ok.push_header(
        "Contact",
        &format!("<sip:{}@{};transport=ws>", bob.name, bob.host),
    )
    .unwrap();
    ok.set_body(Some("application/sdp"), Bytes::from(answer.to_bytes()))
        .unwrap();
    bob.send_sip(net, &ok);
    assert!(
        bob.sip_inbox(net)
            .iter()
            .any(|m| *m.method() == SipMethod::Ack),
        "the server ACKs"
    );
    let media = offer.msrp_media().unwrap();
    let server_path: MsrpUri = media.path().unwrap()[0].parse().unwrap();
    let size = media.file_selector().unwrap().size.unwrap();
    let local = bob.msrp_uri(&session);
    let bind = msrp::Request::new(
        &bob.ids.msrp_id(),
        msrp::Method::Send,
        vec![server_path],
        vec![local.clone()],
    )
    .unwrap();
    net.post(
        Side::Receiver,
        Protocol::Msrp,
        &bob.msrp,
        &[
            WsEvent::Open,
            WsEvent::Binary(encode(&Frame::Request(bind))),
        ],
    );
    let mut data = vec![0u8; size as usize];
    let mut have = rcs_core::ranges::RangeSet::new();
    let mut last = None;
    for _ in 0..100 {
        let mut answers = Vec::new();
        for frame in bob.msrp_inbox(net) {
            let Frame::Request(request) = frame else {
                continue;
            };
            let Some(body) = &request.body else { continue };
            let at = request.body_offsets();
            data[at.start as usize..at.end as usize].copy_from_slice(body);
            have.insert(at).unwrap();
            answers.push(encode(&Frame::Response(
                request.response(200, None, &local).unwrap(),
            )));
            last = Some(request);
        }
        if have.is_complete(size) {
            break;
        }
        assert!(
            !answers.is_empty(),
            "delivery stalled at {} bytes",
            have.len()
        );
        bob.send_msrp(net, answers);
    }
    let last = last.expect("chunks arrived");
    let report = last
        .report(
            &bob.ids.msrp_id(),
            200,
            None,
            ByteRange::whole(size),
            &local,
        )
        .unwrap();
    bob.send_msrp(net, vec![encode(&Frame::Request(report))]);
    data
}

#[test]
fn a_file_goes_from_sender_to_receiver_byte_identical() {
    let net = Net::new();
    let mut alice = User::new("alice", Side::Sender, 1);
    let mut bob = User::new("bob", Side::Receiver, 2);
    alice.register(&net);
    bob.register(&net);
    alice.sip_inbox(&net);
    bob.sip_inbox(&net);
    let data = file_bytes(300_000);
    send_file(&net, &mut alice, &bob, &data);
    // The sender AS ends Alice's session with the receiver AS's answer.
    let bye = alice
        .sip_inbox(&net)
        .into_iter()
        .find(|m| m.is_request() && *m.method() == SipMethod::Bye)
        .expect("a BYE for Alice");
    assert!(
        bye.header("Reason").unwrap().contains("cause=202"),
        "{:?}",
        bye.header("Reason")
    );
    let received = accept_push(&net, &mut bob);
    assert_eq!(received, data.to_vec(), "byte-identical");
    let digest = ContentDigest::of(&data);
    assert!(
        net.store.borrow().contains_key(&digest.storage_key()),
        "the file is published"
    );
    assert!(net.logs.borrow().is_empty(), "{:?}", net.logs.borrow());
}

#[test]
fn an_unreachable_receiver_ends_the_upload_with_a_503_reason() {
    let net = Net::new();
    let mut alice = User::new("alice", Side::Sender, 1);
    let mut bob = User::new("bob", Side::Receiver, 2);
    alice.register(&net);
    bob.register(&net);
    alice.sip_inbox(&net);
    net.peer_down.set(true);
    send_file(&net, &mut alice, &bob, &file_bytes(70_000));
    let bye = alice
        .sip_inbox(&net)
        .into_iter()
        .find(|m| m.is_request() && *m.method() == SipMethod::Bye)
        .expect("a BYE for Alice");
    let reason = bye.header("Reason").unwrap();
    assert!(
        reason.contains("cause=503") && reason.contains("connection refused"),
        "{reason}"
    );
    assert!(
        net.logs
            .borrow()
            .iter()
            .any(|l| l.contains("peer request failed"))
    );
}

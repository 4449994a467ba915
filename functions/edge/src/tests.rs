//! The handlers run natively over an in-memory runtime: a shared store, the test kit's GRIP gateway
//! in front (control events, replies and publishes), and the two servers wired to each other (the
//! sender's peer requests go to the receiver's handler). Users are the kit's phones, running the
//! real client agent through the handlers.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use futures::executor::block_on;
use http::{Method, Request, Response, StatusCode};
use rcs_core::accounts::{Account, AccountChange};
use rcs_core::client::Event;
use rcs_core::digest::{Algorithm, Challenge};
use rcs_core::first_value::ContentDigest;
use rcs_core::grip::{self, GripClaims, WsEvent};
use rcs_core::ids::{Entropy, TokenSource};
use rcs_core::sip::{Method as SipMethod, NameAddr, RequestBuilder, SipMessage, SipUri};
use rcs_core::store::Record;
use rcs_core::store::keys;
use rcs_core::time::Timestamp;
use rcs_testkit::{Edge, Gateway, Phone, file_bytes, run};

use crate::config::EdgeConfig;
use crate::config::tests::defaults;
use crate::handler::{handle_grip, handle_peer, handle_tick};
use crate::platform::{Platform, PlatformError};
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
/// A request made by another client while one is under way.
type Meanwhile = Box<dyn for<'n> FnOnce(&'n Net) -> Pin<Box<dyn Future<Output = ()> + 'n>>>;

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
    /// The gateway in front of both servers.
    gateway: RefCell<Gateway>,
    /// Another request, made when the next compare-and-swap begins: between a request's reads
    /// and its writes.
    meanwhile: RefCell<Option<Meanwhile>>,
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
            gateway: RefCell::default(),
            meanwhile: RefCell::default(),
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

    /// The answer of the `side` server's GRIP handler to `request`.
    fn handle(&self, side: Side, protocol: Protocol, request: Request<Bytes>) -> Response<Bytes> {
        block_on(handle_grip(
            self,
            self.config(side),
            side,
            protocol,
            request,
        ))
    }

    /// One GRIP request (with `OPEN` first if the connection is new), and the gateway's side of
    /// its answer: control events, messages to the connection.
    fn post(
        &self,
        side: Side,
        protocol: Protocol,
        connection: &str,
        events: &[WsEvent],
    ) -> Response<Bytes> {
        let events = self
            .gateway
            .borrow_mut()
            .request_events(connection, events.to_vec());
        let request = self.grip_request(side, protocol, connection, &events);
        let response = self.handle(side, protocol, request);
        if response.status() == StatusCode::OK {
            let events = grip::parse_events(response.body(), &grip::Limits::default()).unwrap();
            self.gateway.borrow_mut().apply_reply(connection, &events);
        }
        response
    }

    fn take(&self, connection: &str) -> Vec<Bytes> {
        self.gateway.borrow_mut().take(connection)
    }
}

/// Phones reach the servers through the handlers, as through the gateway.
impl Edge for &Net {
    fn grip(&mut self, side: Side, connection: &str, protocol: Protocol, events: Vec<WsEvent>) {
        self.post(side, protocol, connection, &events);
    }

    fn take(&mut self, connection: &str) -> Vec<Bytes> {
        Net::take(self, connection)
    }

    fn disconnect(&mut self, side: Side, connection: &str) {
        self.gateway.borrow_mut().close(connection);
        let request = self.grip_request(side, Protocol::Sip, connection, &[WsEvent::Disconnect]);
        self.handle(side, Protocol::Sip, request);
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(self.now.get())
    }

    fn create_account(&mut self, account: Account) {
        self.store
            .borrow_mut()
            .insert(keys::account(&account.user), account.encode());
    }
}

impl Platform for Net {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, PlatformError> {
        Ok(self.store.borrow().get(key).cloned())
    }

    async fn set(&self, key: &str, value: Bytes) -> Result<(), PlatformError> {
        if value.len() > rcs_core::store::VALUE_LIMIT {
            return Err(PlatformError::Store(format!("{key} is too large")));
        }
        self.store.borrow_mut().insert(key.into(), value);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), PlatformError> {
        self.store.borrow_mut().remove(key);
        Ok(())
    }

    async fn set_many(&self, pairs: Vec<(String, Bytes)>) -> Result<(), PlatformError> {
        if let Some((key, _)) = pairs
            .iter()
            .find(|(_, value)| value.len() > rcs_core::store::VALUE_LIMIT)
        {
            return Err(PlatformError::Store(format!("{key} is too large")));
        }
        self.store.borrow_mut().extend(pairs);
        Ok(())
    }

    async fn delete_many(&self, keys: Vec<String>) -> Result<(), PlatformError> {
        let mut store = self.store.borrow_mut();
        for key in keys {
            store.remove(&key);
        }
        Ok(())
    }

    type Swap = (String, Option<Bytes>);

    async fn begin_swap(&self, key: &str) -> Result<(Self::Swap, Option<Bytes>), PlatformError> {
        let meanwhile = self.meanwhile.borrow_mut().take();
        if let Some(other) = meanwhile {
            other(self).await;
        }
        let current = self.store.borrow().get(key).cloned();
        Ok(((key.to_owned(), current.clone()), current))
    }

    async fn swap(&self, (key, read): Self::Swap, value: Bytes) -> Result<bool, PlatformError> {
        let mut store = self.store.borrow_mut();
        if store.get(&key) != read.as_ref() {
            return Ok(false);
        }
        store.insert(key, value);
        Ok(true)
    }

    async fn keys(&self, keep: &dyn Fn(&str) -> bool) -> Result<Vec<String>, PlatformError> {
        Ok(self
            .store
            .borrow()
            .keys()
            .filter(|k| keep(k))
            .cloned()
            .collect())
    }

    async fn publish(&self, url: &str, body: String) -> Result<(), PlatformError> {
        assert_eq!(url, "http://127.0.0.1:5561/publish/");
        assert!(body.len() <= grip::PUBLISH_LIMIT);
        self.gateway.borrow_mut().publish(&body);
        self.published.borrow_mut().push(body);
        Ok(())
    }

    async fn peer_request(&self, url: &str, message: Bytes) -> Result<Bytes, PlatformError> {
        if self.peer_down.get() {
            return Err(PlatformError::Outbound {
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

    fn entropy(&self) -> Result<Entropy, PlatformError> {
        self.seed.set(self.seed.get() + 1);
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&self.seed.get().to_be_bytes());
        Ok(Entropy(bytes))
    }

    fn log(&self, line: &str) {
        self.logs.borrow_mut().push(line.into());
    }
}

/// A REGISTER from `name` written by hand, for the tests that look at the exact answer.
fn register_request(name: &str, seed: u8) -> SipMessage {
    let uri = SipUri::parse(&format!("sip:{name}@{DOMAIN}")).unwrap();
    RequestBuilder::new(
        SipMethod::Register,
        SipUri::parse(&format!("sip:{DOMAIN}")).unwrap(),
        NameAddr::new(uri.clone()),
        NameAddr::new(uri),
    )
    .local_host(&format!("{name}.invalid"))
    .contact_user(name)
    .expires(600)
    .build(&mut TokenSource::new(Entropy([seed; 32])))
    .unwrap()
}

/// A phone of `name`, registered.
fn phone(net: &Net, name: &str, seed: u8) -> Phone {
    let mut phone = Phone::in_domain(DOMAIN, name, seed);
    phone.register(&mut &*net, None);
    phone
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
    let refused = route(Side::Receiver, &Method::GET, "/receiver/msrp").unwrap_err();
    assert_eq!(refused.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(refused.into_response().headers()["allow"], "POST");
    for (role, path) in [
        (Side::Sender, "/sender/peer"),
        (Side::Sender, "/files/ab"),
        (Side::Receiver, "/receiver/upload"),
        // A device's SIP goes to the sender AS only.
        (Side::Receiver, "/receiver/sip"),
        (Side::Receiver, "/receiver/sip/extra"),
    ] {
        let refused = route(role, &post, path).unwrap_err();
        assert_eq!(refused.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(refused.to_string().contains(path));
    }
}

#[test]
fn a_register_over_open_and_text_is_answered_with_open_its_channel_and_a_challenge() {
    let net = Net::new();
    let register = register_request("alice", 1);
    let request = net.grip_request(
        Side::Sender,
        Protocol::Sip,
        "c1",
        &[WsEvent::Open, WsEvent::Text(register.to_bytes())],
    );
    let response = net.handle(Side::Sender, Protocol::Sip, request);
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
    let answer = text(answer);
    assert!(
        answer.starts_with("m:SIP/2.0 401 Unauthorized\r\n"),
        "{answer}"
    );
    assert!(
        answer.contains("\r\nWWW-Authenticate: Digest realm=\"localhost\""),
        "{answer}"
    );
    assert!(
        net.store.borrow().is_empty(),
        "nothing is written per challenge"
    );
    assert!(net.published.borrow().is_empty());
}

#[test]
fn a_chat_is_relayed_as_a_publish_to_the_recipient() {
    let net = Net::new();
    let mut alice = phone(&net, "alice", 1);
    let mut bob = phone(&net, "bob", 2);
    alice.chat(&bob.aor(), "hello bob");
    alice.flush(&mut &net);
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
    run(&mut &net, &mut [&mut alice, &mut bob], |_| false);
    assert_eq!(bob.chats(), ["hello bob"]);
    // Alice's 202 came back in her own response, not as a publish.
    assert_eq!(net.published.borrow().len(), 1);
    assert!(
        alice
            .events
            .iter()
            .any(|e| matches!(e, Event::ChatSent { status: 202, .. })),
        "{:?}",
        alice.events
    );
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
        let response = net.handle(Side::Sender, Protocol::Sip, request);
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(
            text(response.body()).contains(why),
            "{}",
            text(response.body())
        );
    }
    assert!(net.store.borrow().is_empty());
    let response = net.handle(Side::Sender, Protocol::Sip, good);
    assert_eq!(response.status(), StatusCode::OK);
}

#[test]
fn malformed_sip_gets_a_400_and_the_connection_keeps_working() {
    let net = Net::new();
    let alice = "alice-sip";
    let broken = b"REGISTER sip:localhost SIP/2.0\r\nVia: SIP/2.0/WSS a.invalid;branch=z9hG4bK1\r\nFrom: <sip:alice@localhost>;tag=1\r\nTo: <sip:alice@localhost>\r\nCall-ID: x\r\nCSeq: one REGISTER\r\nContent-Length: 0\r\n\r\n";
    let register = register_request("alice", 1);
    let response = net.post(
        Side::Sender,
        Protocol::Sip,
        alice,
        &[
            WsEvent::Open,
            WsEvent::Text(Bytes::from_static(broken)),
            WsEvent::Text(register.to_bytes()),
        ],
    );
    assert_eq!(response.status(), StatusCode::OK);
    // The 400 copies the broken CSeq as written, so it is read as text here.
    let answers: Vec<String> = net.take(alice).iter().map(text).collect();
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert!(answers[0].starts_with("SIP/2.0 400 "), "{}", answers[0]);
    assert!(answers[0].contains("\r\nWarning: 399 "), "{}", answers[0]);
    assert!(
        answers[1].starts_with("SIP/2.0 401 Unauthorized\r\n"),
        "the next message on the connection is served: {}",
        answers[1]
    );
}

#[test]
fn malformed_event_framing_is_an_http_400_with_a_reason() {
    let net = Net::new();
    let mut request = net.grip_request(Side::Sender, Protocol::Sip, "c1", &[]);
    *request.body_mut() = Bytes::from_static(b"TEXT 10\r\nshort\r\n");
    let response = net.handle(Side::Sender, Protocol::Sip, request);
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        text(response.body()).contains("malformed WebSocket events"),
        "{}",
        text(response.body())
    );
    let mut request = net.grip_request(Side::Sender, Protocol::Sip, "c1", &[WsEvent::Open]);
    request.headers_mut().remove("connection-id");
    let response = net.handle(Side::Sender, Protocol::Sip, request);
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(text(response.body()).contains("Connection-Id"));
}

#[test]
fn pings_are_ponged_and_closes_are_echoed_and_forget_the_connection() {
    let net = Net::new();
    let alice = phone(&net, "alice", 1);
    assert!(net.store.borrow().contains_key("conn/alice-sip-0"));
    let close = WsEvent::Close(Some((1000, "bye".into())));
    let request = net.grip_request(
        Side::Sender,
        Protocol::Sip,
        &alice.sip,
        &[WsEvent::Ping(Bytes::from_static(b"p")), close.clone()],
    );
    let response = net.handle(Side::Sender, Protocol::Sip, request);
    let events = grip::parse_events(response.body(), &grip::Limits::default()).unwrap();
    assert_eq!(events, vec![WsEvent::Pong(Bytes::from_static(b"p")), close]);
    assert!(!net.store.borrow().contains_key("conn/alice-sip-0"));
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
        store.insert(
            "timer/receiver/msrp/gone".into(),
            Bytes::from(START.to_string()),
        );
        // Due, but the sender AS's: the receiver's tick leaves it to the sender's.
        store.insert("timer/sender/upload".into(), Bytes::from(START.to_string()));
        store.insert(
            "timer/receiver/msrp/later".into(),
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
    assert_eq!(
        keys,
        [
            "conn/live",
            "timer/receiver/msrp/later",
            "timer/sender/upload",
            "up/abc/0"
        ]
    );
}

#[test]
fn a_file_goes_from_sender_to_receiver_byte_identical() {
    let net = Net::new();
    let mut alice = phone(&net, "alice", 1);
    let mut bob = phone(&net, "bob", 2);
    let data = file_bytes(300_000, 9);
    alice.send_file(&bob.aor(), "photo.jpg", "image/jpeg", &data);
    run(&mut &net, &mut [&mut alice, &mut bob], |_| false);
    // The sender AS ends Alice's session with the receiver AS's answer.
    let reason = alice.bye_reason().expect("a BYE for Alice");
    assert_eq!(reason.cause, Some(202), "{reason:?}");
    assert_eq!(alice.report(), Some(200));
    assert!(bob.written == data[..], "byte-identical");
    assert!(bob.ended(), "the receiver AS hangs up after the REPORT");
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
    let mut alice = phone(&net, "alice", 1);
    let bob = phone(&net, "bob", 2);
    net.peer_down.set(true);
    alice.send_file(
        &bob.aor(),
        "photo.jpg",
        "image/jpeg",
        &file_bytes(70_000, 3),
    );
    run(&mut &net, &mut [&mut alice], |_| false);
    let reason = alice.bye_reason().expect("a BYE for Alice");
    assert!(
        reason.cause == Some(503)
            && reason
                .text
                .as_deref()
                .is_some_and(|text| text.contains("connection refused")),
        "{reason:?}"
    );
    assert!(
        net.logs
            .borrow()
            .iter()
            .any(|l| l.contains("peer request failed"))
    );
}

/// One request to the accounts route.
fn account_request(
    net: &Net,
    method: Method,
    path: &str,
    authorization: Option<&str>,
    body: Option<&AccountChange>,
) -> Response<Bytes> {
    block_on(account_request_async(
        net,
        method,
        path,
        authorization,
        body,
    ))
}

/// [`account_request`], to await.
async fn account_request_async(
    net: &Net,
    method: Method,
    path: &str,
    authorization: Option<&str>,
    body: Option<&AccountChange>,
) -> Response<Bytes> {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    let body = body.map_or_else(Bytes::new, |change| {
        Bytes::from(serde_json::to_vec(change).unwrap())
    });
    crate::accounts::handle_accounts(net, &net.sender, request.body(body).unwrap()).await
}

/// `user`'s digest answer to the 401 `refused`, for `method` on `path`, with the first challenge
/// that uses `algorithm`.
fn digest_answer(
    refused: &Response<Bytes>,
    algorithm: Algorithm,
    user: &str,
    password: &str,
    method: &str,
    path: &str,
) -> String {
    let challenge = refused
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|value| Challenge::parse(value.to_str().unwrap()).unwrap())
        .find(|challenge| challenge.algorithm == algorithm)
        .expect("a challenge of the algorithm");
    challenge
        .answer(user, password, method, path, "0a4f113b", 1)
        .to_string()
}

const ADMIN: &str = "Bearer local-development-admin-token";

#[test]
fn accounts_are_created_by_sign_up_or_the_admin_and_never_twice() {
    let net = Net::new();
    let info = account_request(&net, Method::GET, "/sender/accounts", None, None);
    assert_eq!(info.status(), StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(info.body()).unwrap(),
        serde_json::json!({"realm": DOMAIN, "sign_up": "open"})
    );
    let bob = AccountChange::new("bob", DOMAIN, "bob's password");
    let created = account_request(&net, Method::POST, "/sender/accounts", None, Some(&bob));
    assert_eq!(created.status(), StatusCode::CREATED);
    let stored = net.store.borrow()["account/bob"].clone();
    assert!(
        !String::from_utf8_lossy(&stored).contains("bob's password"),
        "only verifiers are stored"
    );
    let again = account_request(
        &net,
        Method::POST,
        "/sender/accounts",
        Some(ADMIN),
        Some(&bob),
    );
    assert_eq!(again.status(), StatusCode::CONFLICT);
    for (change, why) in [
        (
            AccountChange::new("Bob", DOMAIN, "pw"),
            "a user name is lowercase letters",
        ),
        (
            AccountChange::new("carol", "elsewhere.example", "pw"),
            "this deployment's is \"localhost\"",
        ),
    ] {
        let refused = account_request(&net, Method::POST, "/sender/accounts", None, Some(&change));
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        assert!(
            text(refused.body()).contains(why),
            "{}",
            text(refused.body())
        );
    }
    let mut closed = Net::new();
    closed.sender.sign_up = crate::config::SignUp::Closed;
    let carol = AccountChange::new("carol", DOMAIN, "pw");
    let refused = account_request(
        &closed,
        Method::POST,
        "/sender/accounts",
        None,
        Some(&carol),
    );
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(text(refused.body()).contains("sign-up is closed"));
    let wrong_token = account_request(
        &closed,
        Method::POST,
        "/sender/accounts",
        Some("Bearer guess"),
        Some(&carol),
    );
    assert_eq!(wrong_token.status(), StatusCode::FORBIDDEN);
    let by_admin = account_request(
        &closed,
        Method::POST,
        "/sender/accounts",
        Some(ADMIN),
        Some(&carol),
    );
    assert_eq!(by_admin.status(), StatusCode::CREATED);
}

#[test]
fn a_user_changes_their_password_by_digest_and_nobody_else_can() {
    let net = Net::new();
    let path = "/sender/accounts/bob";
    let bob = AccountChange::new("bob", DOMAIN, "old password");
    account_request(&net, Method::POST, "/sender/accounts", None, Some(&bob));
    let new = AccountChange::new("bob", DOMAIN, "new password");
    let challenged = account_request(&net, Method::PUT, path, None, Some(&new));
    assert_eq!(challenged.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenged
            .headers()
            .get_all("www-authenticate")
            .iter()
            .count(),
        3
    );
    let wrong = digest_answer(&challenged, Algorithm::Md5, "bob", "guess", "PUT", path);
    let refused = account_request(&net, Method::PUT, path, Some(&wrong), Some(&new));
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(text(refused.body()).contains("wrong user name or password"));
    let right = digest_answer(
        &challenged,
        Algorithm::Sha256,
        "bob",
        "old password",
        "PUT",
        path,
    );
    let changed = account_request(&net, Method::PUT, path, Some(&right), Some(&new));
    assert_eq!(
        changed.status(),
        StatusCode::NO_CONTENT,
        "{}",
        text(changed.body())
    );
    // The same Authorization again, even with another body, is refused: each answer is taken once.
    let other = AccountChange::new("bob", DOMAIN, "mallory's choice");
    let replayed = account_request(&net, Method::PUT, path, Some(&right), Some(&other));
    assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED);
    assert!(text(replayed.body()).contains("used already"));
    // The old password no longer works, and the old password's connections are signed out.
    let fresh = account_request(&net, Method::PUT, path, None, Some(&new));
    let old_again = digest_answer(&fresh, Algorithm::Md5, "bob", "old password", "PUT", path);
    let refused = account_request(&net, Method::PUT, path, Some(&old_again), Some(&new));
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(text(refused.body()).contains("wrong user name or password"));
    let stored: serde_json::Value =
        serde_json::from_slice(&net.store.borrow()["account/bob"]).unwrap();
    assert_eq!(stored["generation"], 1);
    // Alice's own password does not change Bob's account.
    let alice = AccountChange::new("alice", DOMAIN, "alice's password");
    account_request(&net, Method::POST, "/sender/accounts", None, Some(&alice));
    let fresh = account_request(&net, Method::PUT, path, None, Some(&new));
    let as_alice = digest_answer(
        &fresh,
        Algorithm::Md5,
        "alice",
        "alice's password",
        "PUT",
        path,
    );
    let refused = account_request(&net, Method::PUT, path, Some(&as_alice), Some(&new));
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    // A nonce issued for another route does not verify here.
    let forged = right.replace(
        &Challenge::parse(challenged.headers()["www-authenticate"].to_str().unwrap())
            .unwrap()
            .nonce,
        "5f5e100.00000000000000000000000000000000",
    );
    let refused = account_request(&net, Method::PUT, path, Some(&forged), Some(&new));
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(text(refused.body()).contains("not issued for this request"));
}

#[test]
fn guessing_a_password_over_http_is_throttled() {
    let net = Net::new();
    let path = "/sender/accounts/bob";
    let bob = AccountChange::new("bob", DOMAIN, "bob's password");
    account_request(&net, Method::POST, "/sender/accounts", None, Some(&bob));
    let challenged = account_request(&net, Method::DELETE, path, None, None);
    let mut last = None;
    for guess in 0..rcs_core::accounts::USER_THROTTLE.failures {
        let wrong = digest_answer(
            &challenged,
            Algorithm::Md5,
            "bob",
            &format!("guess {guess}"),
            "DELETE",
            path,
        );
        last = Some(account_request(
            &net,
            Method::DELETE,
            path,
            Some(&wrong),
            None,
        ));
    }
    let locked = last.unwrap();
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(locked.headers()["retry-after"], "30");
    let right = digest_answer(
        &challenged,
        Algorithm::Md5,
        "bob",
        "bob's password",
        "DELETE",
        path,
    );
    let refused = account_request(&net, Method::DELETE, path, Some(&right), None);
    assert_eq!(
        refused.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the right password waits too"
    );
    assert!(net.store.borrow().contains_key("account/bob"));
}

#[test]
fn guesses_over_http_at_the_same_moment_each_count() {
    let net = Net::new();
    let path = "/sender/accounts/bob";
    let bob = AccountChange::new("bob", DOMAIN, "bob's password");
    account_request(&net, Method::POST, "/sender/accounts", None, Some(&bob));
    // Each guess answers a challenge of its own, as two clients would.
    let guess = |n: u32| {
        let challenged = account_request(&net, Method::DELETE, path, None, None);
        digest_answer(
            &challenged,
            Algorithm::Md5,
            "bob",
            &format!("guess {n}"),
            "DELETE",
            path,
        )
    };
    let (first, second) = (guess(1), guess(2));
    // The second guess is made while the first has read the counter and not yet written it.
    *net.meanwhile.borrow_mut() = Some(Box::new(move |net: &Net| {
        Box::pin(async move {
            let refused =
                account_request_async(net, Method::DELETE, path, Some(&second), None).await;
            assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        })
    }));
    let refused = account_request(&net, Method::DELETE, path, Some(&first), None);
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let key = keys::user_throttle("bob");
    let stored = net.store.borrow()[&key].clone();
    let throttle = rcs_core::accounts::Throttle::decode(&key, &stored).unwrap();
    assert_eq!(throttle.failures, 2, "both guesses are counted");
}

#[test]
fn a_deleted_account_is_signed_out_everywhere() {
    let net = Net::new();
    let mut alice = phone(&net, "alice", 1);
    let bob = phone(&net, "bob", 2);
    let path = "/sender/accounts/bob";
    let challenged = account_request(&net, Method::DELETE, path, None, None);
    let authorization = digest_answer(
        &challenged,
        Algorithm::Sha256,
        "bob",
        &rcs_testkit::password_of("bob"),
        "DELETE",
        path,
    );
    let deleted = account_request(&net, Method::DELETE, path, Some(&authorization), None);
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let store = net.store.borrow();
    assert!(!store.contains_key("account/bob"));
    assert!(!store.contains_key(&keys::connection(&bob.sip)));
    assert!(!store.contains_key("reg/sip:bob@localhost"));
    drop(store);
    let chat = alice.chat(&bob.aor(), "still there?");
    run(&mut &net, &mut [&mut alice], |_| false);
    assert_eq!(alice.chat_status(chat), Some(404), "bob is unknown now");
    let gone = account_request(&net, Method::DELETE, path, Some(ADMIN), None);
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
}

//! The client library over real WebSockets on 127.0.0.1 against the core's two application servers,
//! run in-process by the test kit: every WebSocket message is one edge request of the core's driver
//! over the kit's in-memory store, and what its gateway delivers goes out over the sockets. It
//! checks the client's wire behaviour (subprotocols, text SIP, binary MSRP, one message per
//! WebSocket message), not the edge.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use rcs_client::{Client, Error, Options, sha256_of};
use rcs_core::accounts::AccountChange;
use rcs_core::client::{OfferKind, Password};
use rcs_core::first_value::Url;
use rcs_core::server_config::ServerConfig;
use rcs_core::service::{Delivery, Protocol, Side};
use rcs_core::time::Timestamp;
use rcs_testkit::{Net, password_of, server_config};
use tokio::net::TcpListener;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

/// A server named `host` for the client's defaults: domain `localhost`, no TLS, files up to 64 MiB.
fn config(host: &str) -> ServerConfig {
    let mut config = ServerConfig {
        domain: "localhost".into(),
        secure: false,
        public_base: Url::parse("http://127.0.0.1:3000/").unwrap(),
        ..server_config(host)
    };
    config.layout.max_file_size = 64 << 20;
    config
}

/// The test kit's servers and gateway, and the WebSockets they are reached over.
struct World {
    net: Net,
    sockets: BTreeMap<String, (bool, UnboundedSender<Message>)>,
    /// Close the next MSRP connection after it has sent this many messages.
    cut_msrp_after: Option<usize>,
}

impl Default for World {
    /// The servers with the accounts of alice and bob.
    fn default() -> Self {
        let mut net = Net::new(
            config("sender-as.localhost"),
            config("receiver-as.localhost"),
        );
        for user in ["alice", "bob"] {
            let account = AccountChange::new(user, "localhost", &password_of(user));
            net.create_account(account.into_account(net.now));
        }
        Self {
            net,
            sockets: BTreeMap::new(),
            cut_msrp_after: None,
        }
    }
}

impl World {
    /// One WebSocket message of `connection` as one edge request, at the wall clock's time (the
    /// client keeps real time); then what the gateway delivered goes out over the sockets.
    fn request(&mut self, side: Side, connection: &str, protocol: Protocol, message: Bytes) {
        self.net.now = wall_clock();
        self.net.send(side, connection, protocol, message);
        self.deliver();
    }

    fn disconnect(&mut self, side: Side, connection: &str) {
        self.sockets.remove(connection);
        self.net.now = wall_clock();
        self.net.disconnect(side, connection);
        self.deliver();
    }

    fn deliver(&mut self) {
        for (connection, (is_sip, socket)) in &self.sockets {
            for message in self.net.take(connection) {
                let frame = if *is_sip {
                    Message::text(String::from_utf8(message.to_vec()).unwrap())
                } else {
                    Message::Binary(message)
                };
                let _ = socket.send(frame);
            }
        }
    }
}

fn wall_clock() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    Timestamp::from_unix_millis(millis)
}

/// Serves WebSockets on 127.0.0.1 until the test ends; returns the base URL.
async fn serve() -> (String, Arc<Mutex<World>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let world = Arc::new(Mutex::new(World::default()));
    let shared = world.clone();
    tokio::spawn(async move {
        let mut next = 0u32;
        while let Ok((stream, _)) = listener.accept().await {
            next += 1;
            let id = format!("conn-{next}");
            let world = shared.clone();
            tokio::spawn(async move {
                let mut route = (String::new(), String::new());
                // The error type is tungstenite's, whatever its size.
                #[allow(clippy::result_large_err)]
                let callback = |request: &Request, mut response: Response| {
                    route.0 = request.uri().path().to_owned();
                    if let Some(protocol) = request.headers().get("Sec-WebSocket-Protocol") {
                        route.1 = protocol.to_str().unwrap_or("").to_owned();
                        response
                            .headers_mut()
                            .insert("Sec-WebSocket-Protocol", protocol.clone());
                    }
                    Ok(response)
                };
                let Ok(socket) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
                    return;
                };
                let (path, protocol) = route;
                let side = if path.starts_with("/sender/") {
                    Side::Sender
                } else {
                    Side::Receiver
                };
                let is_sip = path.ends_with("/sip");
                assert_eq!(protocol, if is_sip { "sip" } else { "msrp" });
                let (mut sink, mut stream) = socket.split();
                let mut seen = 0usize;
                let (tx, mut rx) = unbounded_channel();
                world
                    .lock()
                    .unwrap()
                    .sockets
                    .insert(id.clone(), (is_sip, tx));
                tokio::spawn(async move {
                    while let Some(message) = rx.recv().await {
                        if sink.send(message).await.is_err() {
                            break;
                        }
                    }
                });
                while let Some(Ok(message)) = stream.next().await {
                    let bytes = match message {
                        Message::Text(text) if is_sip => Bytes::from(text),
                        Message::Binary(bytes) if !is_sip => bytes,
                        Message::Close(_) => break,
                        Message::Ping(_) | Message::Pong(_) => continue,
                        other => panic!("{path} got the wrong frame type: {other:?}"),
                    };
                    let protocol = if is_sip {
                        Protocol::Sip
                    } else {
                        Protocol::Msrp
                    };
                    let mut world = world.lock().unwrap();
                    world.request(side, &id, protocol, bytes);
                    if !is_sip {
                        seen += 1;
                        if world.cut_msrp_after.is_some_and(|limit| seen >= limit) {
                            world.cut_msrp_after = None;
                            break;
                        }
                    }
                }
                world.lock().unwrap().disconnect(side, &id);
            });
        }
    });
    (format!("http://{addr}"), world)
}

/// The options of `user`, whose account the [`World`] holds.
fn options(user: &str) -> Options {
    Options {
        timeout: Duration::from_secs(10),
        password: Some(Password::new(password_of(user))),
        ..Options::default()
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rcs-loopback-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_file(path: &Path, len: usize, seed: u8) {
    let data: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    std::fs::write(path, data).unwrap();
}

async fn pair(server: &str, delivery: Delivery) -> (Client, Client) {
    let mut bob = Client::connect(server, "bob", options("bob"))
        .await
        .unwrap();
    bob.register(Some(delivery)).await.unwrap();
    let mut alice = Client::connect(server, "alice", options("alice"))
        .await
        .unwrap();
    alice.register(None).await.unwrap();
    (alice, bob)
}

#[tokio::test]
async fn a_pushed_file_arrives_intact_on_disk() {
    let (server, _world) = serve().await;
    let (mut alice, mut bob) = pair(&server, Delivery::Push).await;
    let dir = temp_dir("push");
    let source = dir.join("holiday photo.jpg");
    write_file(&source, (3 << 20) + 777, 1);
    let out = dir.join("in");
    std::fs::create_dir_all(&out).unwrap();
    let (sent, received) = tokio::join!(alice.send_file("bob", &source), bob.receive_next(&out));
    let (sent, received) = (sent.unwrap(), received.unwrap());
    assert!(sent.delivered(), "{sent:?}");
    assert_eq!(sent.resumed_from, 0);
    assert_eq!(received.kind, OfferKind::Push);
    assert_eq!(received.path, out.join("holiday photo.jpg"));
    assert_eq!(
        std::fs::read(&received.path).unwrap(),
        std::fs::read(&source).unwrap()
    );
    assert_eq!(received.sha256, sha256_of(&source).unwrap().1);
    assert_eq!(received.from, "sip:alice@localhost");
    alice.close().await.unwrap();
    bob.close().await.unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_pulled_file_is_asked_for_and_arrives() {
    let (server, _world) = serve().await;
    let (mut alice, mut bob) = pair(&server, Delivery::Pull).await;
    let dir = temp_dir("pull");
    let source = dir.join("notes.txt");
    write_file(&source, 300_000, 2);
    let sent = alice.send_file("sip:bob@localhost", &source).await.unwrap();
    assert!(sent.delivered(), "{sent:?}");
    let received = bob.receive_next(&dir).await.unwrap();
    assert_eq!(received.kind, OfferKind::Pull);
    assert!(
        received
            .url
            .is_some_and(|u| u.contains(&hex::encode(received.sha256)))
    );
    assert_eq!(
        received.path,
        dir.join("notes (1).txt"),
        "the name was taken"
    );
    assert_eq!(
        std::fs::read(&received.path).unwrap(),
        std::fs::read(&source).unwrap()
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn chats_arrive_and_refusals_carry_the_servers_reason() {
    let (server, _world) = serve().await;
    let (mut alice, mut bob) = pair(&server, Delivery::Push).await;
    assert_eq!(alice.chat("bob", "hello bob").await.unwrap(), 202);
    let chat = bob.next_chat().await.unwrap();
    assert_eq!(
        (chat.from.as_str(), &chat.body[..]),
        ("sip:alice@localhost", &b"hello bob"[..])
    );
    match alice.chat("carol", "anyone?").await {
        Err(Error::Refused {
            request: "MESSAGE",
            status: 404,
            reason,
        }) => assert_eq!(reason, "unknown user"),
        other => panic!("{other:?}"),
    }
    let dir = temp_dir("refused");
    let source = dir.join("a.bin");
    write_file(&source, 10, 3);
    match alice.send_file("carol", &source).await {
        Err(Error::Refused { status: 404, .. }) => {}
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn an_upload_cut_off_resumes_where_the_store_stands() {
    let (server, world) = serve().await;
    let (mut alice, mut bob) = pair(&server, Delivery::Push).await;
    let dir = temp_dir("resume");
    let source = dir.join("big.bin");
    write_file(&source, 2 << 20, 4);
    // The edge drops Alice's MSRP connection after 12 chunks.
    world.lock().unwrap().cut_msrp_after = Some(12);
    match alice.send_file("bob", &source).await {
        Err(Error::Closed { channel: "msrp" }) => {}
        other => panic!("{other:?}"),
    }
    let out = dir.join("in");
    std::fs::create_dir_all(&out).unwrap();
    let (sent, received) = tokio::join!(alice.send_file("bob", &source), bob.receive_next(&out));
    let (sent, received) = (sent.unwrap(), received.unwrap());
    assert!(sent.delivered(), "{sent:?}");
    assert!(sent.resumed_from > 0, "{sent:?}");
    assert_eq!(
        std::fs::read(received.path).unwrap(),
        std::fs::read(&source).unwrap()
    );
    std::fs::remove_dir_all(dir).unwrap();
}

//! WebSocket clients through the built-in GRIP gateway to the echo component: handshake and
//! subprotocol, echo of text and binary, order under load, publishing, and a slow client's overflow.

mod common;

use std::net::SocketAddr;

use bytes::Bytes;
use common::{Host, request, write_app};
use futures::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, http::HeaderValue};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn connect(addr: SocketAddr, path: &str, protocols: &str) -> (Socket, Option<String>) {
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    if !protocols.is_empty() {
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(protocols).unwrap(),
        );
    }
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("WebSocket handshake");
    let protocol = response
        .headers()
        .get("sec-websocket-protocol")
        .map(|value| value.to_str().unwrap().to_owned());
    (socket, protocol)
}

/// The next text or binary message, skipping pings and pongs.
async fn next_message(socket: &mut Socket) -> Message {
    loop {
        match socket.next().await.expect("socket open").expect("a frame") {
            Message::Ping(_) | Message::Pong(_) => continue,
            message => return message,
        }
    }
}

async fn subscribe(socket: &mut Socket, channel: &str) {
    socket
        .send(Message::text(format!("subscribe:{channel}")))
        .await
        .unwrap();
    assert_eq!(
        next_message(socket).await,
        Message::text(format!("subscribed:{channel}"))
    );
}

async fn publish(host: &Host, items: &[(&str, &[u8])]) {
    let items: Vec<_> = items
        .iter()
        .map(|(channel, message)| {
            rcs_core::grip::Publish::message(
                (*channel).to_owned(),
                bytes::Bytes::copy_from_slice(message),
            )
        })
        .collect();
    let body = rcs_core::grip::encode_publishes(&items, rcs_core::grip::PUBLISH_LIMIT).remove(0);
    let reply = request(
        host.publish,
        "POST",
        "/publish/",
        &[("content-type", "application/json")],
        body,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), "Published\n");
}

fn start() -> (tempfile::TempDir, Host) {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(&write_app(dir.path()), &dir.path().join("state"), &[], &[]);
    (dir, host)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_subprotocol_comes_from_the_components_open_reply() {
    let (_dir, host) = start();
    let (_socket, protocol) = connect(host.addr, "/echo/sip", "sip").await;
    assert_eq!(protocol.as_deref(), Some("sip"));
    let (_socket, protocol) = connect(host.addr, "/echo/msrp", "msrp, sip").await;
    assert_eq!(protocol.as_deref(), Some("msrp"));
    let (_socket, protocol) = connect(host.addr, "/echo/none", "").await;
    assert_eq!(protocol, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_upgrades_get_http_answers() {
    let (_dir, host) = start();
    let missing = format!("ws://{}/nowhere", host.addr)
        .into_client_request()
        .unwrap();
    let error = tokio_tungstenite::connect_async(missing).await.unwrap_err();
    assert!(error.to_string().contains("404"), "{error}");
    let no_key = request(
        host.addr,
        "GET",
        "/echo/ws",
        &[("connection", "upgrade"), ("upgrade", "websocket")],
        "",
    )
    .await;
    assert_eq!(no_key.status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn text_and_binary_messages_echo_and_close_is_answered() {
    let (_dir, host) = start();
    let (mut socket, _) = connect(host.addr, "/echo/ws", "sip").await;
    socket
        .send(Message::text("REGISTER sip:alice@localhost SIP/2.0"))
        .await
        .unwrap();
    assert_eq!(
        next_message(&mut socket).await,
        Message::text("REGISTER sip:alice@localhost SIP/2.0")
    );
    let binary = Bytes::from_static(&[0, 1, 2, 0xff, b'\r', b'\n']);
    socket.send(Message::Binary(binary.clone())).await.unwrap();
    assert_eq!(next_message(&mut socket).await, Message::Binary(binary));
    socket.close(None).await.unwrap();
    match next_message(&mut socket).await {
        Message::Close(_) => {}
        other => panic!("expected a close, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_sent_faster_than_requests_arrive_in_order() {
    let (_dir, host) = start();
    let (socket, _) = connect(host.addr, "/echo/ws", "msrp").await;
    let (mut sink, mut stream) = socket.split();
    const COUNT: usize = 2000;
    let sender = tokio::spawn(async move {
        for n in 0..COUNT {
            let message = if n % 2 == 0 {
                Message::text(format!("message {n}"))
            } else {
                Message::Binary(Bytes::from(format!("binary {n}").into_bytes()))
            };
            sink.send(message).await.unwrap();
        }
        sink
    });
    for n in 0..COUNT {
        let message = loop {
            match stream.next().await.unwrap().unwrap() {
                Message::Ping(_) | Message::Pong(_) => continue,
                message => break message,
            }
        };
        let expected = if n % 2 == 0 {
            Message::text(format!("message {n}"))
        } else {
            Message::Binary(Bytes::from(format!("binary {n}").into_bytes()))
        };
        assert_eq!(message, expected);
    }
    let mut sink = sender.await.unwrap();
    sink.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn publishing_reaches_subscribed_sockets_only() {
    let (_dir, host) = start();
    let (mut bob, _) = connect(host.addr, "/echo/sip", "sip").await;
    let (mut carol, _) = connect(host.addr, "/other/sip", "sip").await;
    subscribe(&mut bob, "user:bob").await;
    subscribe(&mut bob, "news").await;
    subscribe(&mut carol, "news").await;

    publish(
        &host,
        &[("user:bob", b"MESSAGE for bob"), ("news", &[0xff, 0x00])],
    )
    .await;
    assert_eq!(
        next_message(&mut bob).await,
        Message::text("MESSAGE for bob")
    );
    let binary = Message::Binary(Bytes::from_static(&[0xff, 0x00]));
    assert_eq!(next_message(&mut bob).await, binary);
    assert_eq!(next_message(&mut carol).await, binary);

    // After unsubscribing, bob's next message is the later one on a channel he still has.
    bob.send(Message::text("unsubscribe:user:bob"))
        .await
        .unwrap();
    assert_eq!(
        next_message(&mut bob).await,
        Message::text("unsubscribed:user:bob")
    );
    publish(&host, &[("user:bob", b"lost"), ("news", b"still here")]).await;
    assert_eq!(next_message(&mut bob).await, Message::text("still here"));
    assert_eq!(next_message(&mut carol).await, Message::text("still here"));

    // A close published to a channel closes its sockets.
    let close = br#"{"items":[{"channel":"news","formats":{"ws-message":{"action":"close","code":4001}}}]}"#;
    let reply = request(host.publish, "POST", "/publish/", &[], &close[..]).await;
    assert_eq!(reply.status, 200);
    match next_message(&mut carol).await {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::from(4001)),
        other => panic!("expected a close, got {other:?}"),
    }

    let bad = request(host.publish, "POST", "/publish/", &[], "{\"items\": 1}").await;
    assert_eq!(bad.status, 400);
    assert!(bad.text().starts_with("bad publish body"), "{}", bad.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_stops_reading_is_closed_and_others_carry_on() {
    let (_dir, host) = start();
    let (mut slow, _) = connect(host.addr, "/echo/ws", "msrp").await;
    let (mut healthy, _) = connect(host.addr, "/echo/ws", "msrp").await;
    subscribe(&mut slow, "flood").await;
    subscribe(&mut healthy, "calm").await;

    // Far more than the socket buffers and the 8 MiB queue hold while `slow` reads nothing.
    let chunk = vec![b'x'; 512 * 1024];
    for _ in 0..96 {
        publish(&host, &[("flood", &chunk)]).await;
    }
    healthy.send(Message::text("still served")).await.unwrap();
    assert_eq!(
        next_message(&mut healthy).await,
        Message::text("still served")
    );
    publish(&host, &[("calm", b"calm message")]).await;
    assert_eq!(
        next_message(&mut healthy).await,
        Message::text("calm message")
    );

    // The slow client finds some of the flood, then the close that ended it.
    let mut received = 0;
    let code = loop {
        match slow.next().await {
            Some(Ok(Message::Text(_))) => received += 1,
            Some(Ok(Message::Close(frame))) => break frame.map(|f| (f.code, f.reason.to_string())),
            Some(Ok(_)) => {}
            other => panic!("expected messages then a close, got {other:?}"),
        }
    };
    assert!(
        received < 96,
        "the whole flood arrived, so nothing overflowed"
    );
    assert_eq!(
        code,
        Some((CloseCode::from(1008), "outgoing queue full".to_owned()))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_alone_echoes_under_its_echo_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(
        &write_app(dir.path()),
        &dir.path().join("state"),
        &["--gateway-echo", "/gateway-echo/"],
        &[],
    );
    let (mut socket, protocol) = connect(host.addr, "/gateway-echo/floor", "msrp, sip").await;
    assert_eq!(protocol.as_deref(), Some("msrp"), "the first offered");
    let payload = Bytes::from(vec![7u8; 64 * 1024]);
    for _ in 0..16 {
        socket.send(Message::Binary(payload.clone())).await.unwrap();
    }
    socket.send(Message::text("last")).await.unwrap();
    for _ in 0..16 {
        assert_eq!(
            next_message(&mut socket).await,
            Message::Binary(payload.clone())
        );
    }
    assert_eq!(next_message(&mut socket).await, Message::text("last"));
    socket.close(None).await.unwrap();

    // Other paths still need a route.
    let reply = request(host.addr, "GET", "/elsewhere", &[], "").await;
    assert_eq!(reply.status, 404);
}

//! The client user agent (`rcs_core::client`) against both application servers in virtual time:
//! registration and its refresh, chat, push and pull deliveries, resuming uploads and deliveries
//! after dropped connections or in another agent, refusals and bad input.

use bytes::Bytes;
use rcs_core::client::{
    Event, IncomingCheckpoint, OfferKind, OutgoingFile, Output, TransferEvent, TransferId,
    websocket_base,
};
use rcs_core::first_value::ContentDigest;
use rcs_core::service::{Delivery, Side};
use rcs_core::sip::{self, Reason};
use rcs_core::store::{KeyValue, keys};
use rcs_testkit::{Net, Phone, alice_and_bob, file_bytes, run};

fn send(alice: &mut Phone, bob: &Phone, data: &Bytes) -> TransferId {
    alice.send_file(&bob.aor(), "report final.pdf", "application/pdf", data)
}

/// Alice sends `data` to Bob until Bob has written past its first MiB.
fn send_part_way(net: &mut Net, alice: &mut Phone, bob: &mut Phone, data: &Bytes) {
    send(alice, bob, data);
    run(net, &mut [alice, bob], |agents| {
        agents[1]
            .transfer_events()
            .iter()
            .any(|e| matches!(e, TransferEvent::Write { offset, .. } if *offset >= 1 << 20))
    });
}

fn delivered(alice: &Phone, bob: &Phone, data: &Bytes) {
    assert_eq!(alice.report(), Some(200), "{:?}", alice.events);
    assert_eq!(alice.bye_reason().and_then(|r| r.cause), Some(202));
    assert!(
        bob.written == data[..],
        "byte-identical: {:?}",
        bob.transfer_events()
            .iter()
            .filter(|e| !matches!(e, TransferEvent::Write { .. }))
            .collect::<Vec<_>>()
    );
    assert!(
        bob.transfer_events()
            .iter()
            .any(|e| matches!(e, TransferEvent::Verified))
    );
    assert!(bob.ended(), "the receiver AS hangs up after the REPORT");
    assert!(!alice.ua.has_transfers() && !bob.ua.has_transfers());
}

#[test]
fn push_delivers_a_file_with_an_unaligned_size() {
    let mut net = Net::default();
    let (mut alice, mut bob) = alice_and_bob(&mut net, Delivery::Push);
    let data = file_bytes((1 << 20) + 12_345, 3);
    send(&mut alice, &bob, &data);
    run(&mut net, &mut [&mut alice, &mut bob], |_| false);
    delivered(&alice, &bob, &data);
    assert!(
        alice
            .transfer_events()
            .contains(&&TransferEvent::Accepted { resume_from: 0 })
    );
    let offer = bob.transfer_events().into_iter().find_map(|e| match e {
        TransferEvent::Offered(file) => Some(file.clone()),
        _ => None,
    });
    let offer = offer.unwrap();
    assert_eq!(offer.kind, OfferKind::Push);
    assert_eq!(offer.name.as_deref(), Some("report final.pdf"));
    assert_eq!(offer.sha256, Some(ContentDigest::of(&data).0));
    assert_eq!(offer.from, alice.aor());
}

#[test]
fn an_empty_file_arrives() {
    let mut net = Net::default();
    let (mut alice, mut bob) = alice_and_bob(&mut net, Delivery::Push);
    let data = Bytes::new();
    send(&mut alice, &bob, &data);
    run(&mut net, &mut [&mut alice, &mut bob], |_| false);
    delivered(&alice, &bob, &data);
}

#[test]
fn pull_asks_for_the_file_and_can_start_further_in() {
    let mut net = Net::default();
    let (mut alice, mut bob) = alice_and_bob(&mut net, Delivery::Pull);
    let data = file_bytes(700_000, 4);
    bob.accept_from = None;
    send(&mut alice, &bob, &data);
    run(&mut net, &mut [&mut alice, &mut bob], |_| false);
    let id = bob.offered_id();
    let offer = bob.transfer_events().into_iter().find_map(|e| match e {
        TransferEvent::Offered(file) => Some(file.clone()),
        _ => None,
    });
    let offer = offer.unwrap();
    assert_eq!(offer.kind, OfferKind::Pull);
    assert!(
        offer
            .url
            .is_some_and(|url| url.contains(&ContentDigest::of(&data).to_hex()))
    );
    // Bob has the first 300,000 bytes already (from an earlier attempt over HTTP, say).
    bob.written[..300_000].copy_from_slice(&data[..300_000]);
    bob.ua.accept(id, 300_000).unwrap();
    run(&mut net, &mut [&mut alice, &mut bob], |_| false);
    delivered(&alice, &bob, &data);
    let first_write = bob.transfer_events().into_iter().find_map(|e| match e {
        TransferEvent::Write { offset, .. } => Some(*offset),
        _ => None,
    });
    assert_eq!(
        first_write,
        Some(300_000),
        "nothing before the resume point is sent"
    );
}

#[test]
fn chat_goes_both_ways_through_the_servers() {
    let mut net = Net::default();
    let (mut alice, mut bob) = alice_and_bob(&mut net, Delivery::Push);
    let chat = alice
        .ua
        .chat("bob", "text/plain", Bytes::from_static(b"lunch?"))
        .unwrap();
    run(&mut net, &mut [&mut alice, &mut bob], |_| false);
    assert!(
        alice
            .events
            .contains(&Event::ChatSent { chat, status: 202 })
    );
    assert!(bob.events.iter().any(|e| matches!(
        e,
        Event::ChatReceived { from, body, .. } if *from == alice.aor() && &body[..] == b"lunch?"
    )));
}

#[test]
fn refusals_carry_the_servers_status_and_reason() {
    let mut net = Net::default();
    let (mut alice, mut bob) = alice_and_bob(&mut net, Delivery::Push);
    let data = file_bytes(10, 5);
    alice.source = data.clone();
    let file = OutgoingFile {
        name: "a.bin".into(),
        content_type: "application/octet-stream".into(),
        size: 10,
        sha256: ContentDigest::of(&data).0,
    };
    alice.ua.send_file("nobody", file.clone()).unwrap();
    let chat = alice.ua.chat("nobody", "text/plain", Bytes::new()).unwrap();
    run(&mut net, &mut [&mut alice, &mut bob], |_| false);
    let refusal = alice.failure().expect("the INVITE is refused");
    assert_eq!(
        (refusal.status, refusal.reason.as_str()),
        (404, "unknown user")
    );
    assert!(alice.events.iter().any(|e| matches!(
        e,
        Event::ChatFailed { chat: c, refusal } if *c == chat && refusal.status == 404
    )));
    // Bob goes offline: 480.
    net.disconnect(Side::Sender, &bob.sip.clone());
    alice.events.clear();
    alice.ua.send_file(&bob.aor(), file).unwrap();
    run(&mut net, &mut [&mut alice], |_| false);
    assert_eq!(alice.failure().map(|r| r.status), Some(480));
    assert!(!alice.ua.has_transfers());
}

#[test]
fn a_second_offer_of_an_interrupted_upload_resumes_it() {
    let mut net = Net::default();
    let (mut alice, mut bob) = alice_and_bob(&mut net, Delivery::Push);
    let data = file_bytes(2 << 20, 6);
    send(&mut alice, &bob, &data);
    run(&mut net, &mut [&mut alice], |agents| {
        agents[0].transfer_events().iter().any(
            |e| matches!(e, TransferEvent::Progress { acknowledged } if *acknowledged >= 1 << 20),
        )
    });
    // The client process dies: its connections drop; a new one offers the same file.
    net.disconnect(Side::Sender, &alice.msrp_out.clone());
    net.disconnect(Side::Sender, &alice.sip.clone());
    let mut again = Phone::new("alice", 9);
    again.sip = "alice-sip-1".into();
    again.msrp_out = "alice-msrp-out-1".into();
    again.register(&mut net, None);
    send(&mut again, &bob, &data);
    run(&mut net, &mut [&mut again, &mut bob], |_| false);
    let resumed = again.transfer_events().into_iter().find_map(|e| match e {
        TransferEvent::Accepted { resume_from } => Some(*resume_from),
        _ => None,
    });
    assert!(resumed.is_some_and(|r| r >= 1 << 20), "{resumed:?}");
    delivered(&again, &bob, &data);
}

#[test]
fn a_delivery_goes_on_over_a_new_msrp_connection() {
    let mut net = Net::default();
    let (mut alice, mut bob) = alice_and_bob(&mut net, Delivery::Push);
    let data = file_bytes(3 << 20, 7);
    send_part_way(&mut net, &mut alice, &mut bob, &data);
    bob.reconnect_msrp(&mut net);
    bob.ua.msrp_connected();
    run(&mut net, &mut [&mut alice, &mut bob], |_| false);
    delivered(&alice, &bob, &data);
}

#[test]
fn a_checkpoint_carries_a_delivery_to_another_agent() {
    let mut net = Net::default();
    let (mut alice, mut bob) = alice_and_bob(&mut net, Delivery::Push);
    let data = file_bytes(4 << 20, 8);
    send_part_way(&mut net, &mut alice, &mut bob, &data);
    // Whatever the agent has said so far is written before the checkpoint is taken.
    bob.flush(&mut net);
    let id = bob.offered_id();
    let checkpoint = bob.ua.checkpoint(id).unwrap_or_else(|| {
        panic!(
            "{:?}",
            bob.transfer_events()
                .iter()
                .filter(|e| !matches!(e, TransferEvent::Write { .. }))
                .collect::<Vec<_>>()
        )
    });
    assert!(checkpoint.written >= 1 << 20);
    // Through JSON, as a client would keep it on disk.
    let json = serde_json::to_string(&checkpoint).unwrap();
    let checkpoint: IncomingCheckpoint = serde_json::from_str(&json).unwrap();
    net.disconnect(Side::Receiver, &bob.msrp_in.clone());
    net.disconnect(Side::Sender, &bob.sip.clone());
    let mut later = Phone::new("bob", 10);
    later.sip = "bob-sip-1".into();
    later.msrp_in = "bob-msrp-in-1".into();
    later.register(&mut net, Some(Delivery::Push));
    later.written = bob.written.clone();
    later.ua.restore(checkpoint).unwrap();
    run(&mut net, &mut [&mut alice, &mut later], |_| false);
    delivered(&alice, &later, &data);
}

#[test]
fn a_digest_mismatch_sends_a_failure_report_and_the_session_ends() {
    let mut net = Net::default();
    let (mut alice, mut bob) = alice_and_bob(&mut net, Delivery::Push);
    bob.wrong_digest = true;
    let data = file_bytes(100_000, 9);
    send(&mut alice, &bob, &data);
    run(&mut net, &mut [&mut alice, &mut bob], |_| false);
    assert!(
        bob.transfer_events()
            .iter()
            .any(|e| matches!(e, TransferEvent::DigestMismatch { .. }))
    );
    assert!(
        bob.ended(),
        "the server ends the session after a failure REPORT"
    );
    assert!(!bob.ua.has_transfers());
}

#[test]
fn a_declined_push_ends_nothing_but_the_offer() {
    let mut net = Net::default();
    let (mut alice, mut bob) = alice_and_bob(&mut net, Delivery::Push);
    bob.accept_from = None;
    let data = file_bytes(1000, 10);
    send(&mut alice, &bob, &data);
    run(&mut net, &mut [&mut alice, &mut bob], |_| false);
    let id = bob.offered_id();
    bob.ua.decline(id).unwrap();
    run(&mut net, &mut [&mut alice, &mut bob], |_| false);
    assert!(!bob.ua.has_transfers());
    assert!(bob.ua.accept(id, 0).is_err(), "a declined offer is gone");
    assert_eq!(alice.report(), Some(200), "the upload itself succeeded");
}

#[test]
fn the_registration_is_refreshed_before_it_lapses() {
    let mut net = Net::default();
    let mut bob = Phone::new("bob", 2);
    bob.register(&mut net, Some(Delivery::Pull));
    let due = bob.ua.poll_timeout().expect("a refresh is scheduled");
    assert!(due > net.now && due <= net.now.plus_secs(600));
    bob.events.clear();
    bob.ua.handle_timeout(due).unwrap();
    run(&mut net, &mut [&mut bob], |_| false);
    assert!(
        bob.events
            .iter()
            .any(|e| matches!(e, Event::Registered { .. }))
    );
    bob.ua.unregister().unwrap();
    run(&mut net, &mut [&mut bob], |_| false);
    assert!(bob.events.contains(&Event::Unregistered));
    assert_eq!(bob.ua.poll_timeout(), None);
}

#[test]
fn bad_input_is_answered_or_dropped_and_the_agent_goes_on() {
    let mut net = Net::default();
    let (mut alice, mut bob) = alice_and_bob(&mut net, Delivery::Push);
    bob.ua.handle_sip(b"\x00\xffnot sip at all", net.now);
    bob.ua
        .handle_msrp(Side::Receiver, Bytes::from_static(b"MSRP garbage"), net.now);
    let stray = "MSRP a1b2c3d4 SEND\r\nTo-Path: msrps://x.invalid:2855/nosuch;ws\r\n\
                 From-Path: msrps://as.example.com/s1;ws\r\nMessage-ID: m1m1m1m1\r\nByte-Range: 1-2/2\r\n\
                 Content-Type: text/plain\r\n\r\nhi\r\n-------a1b2c3d4$\r\n";
    bob.ua
        .handle_msrp(Side::Receiver, Bytes::from(stray), net.now);
    let answer = std::iter::from_fn(|| bob.ua.poll_output()).collect::<Vec<_>>();
    assert!(matches!(
        answer.as_slice(),
        [Output::Transmit { message, .. }] if message.starts_with(b"MSRP a1b2c3d4 481")
    ));
    assert!(
        bob.ua
            .provide_bytes(TransferId(99), 0, Bytes::new(), net.now)
            .is_err()
    );
    let data = file_bytes(5000, 11);
    send(&mut alice, &bob, &data);
    run(&mut net, &mut [&mut alice, &mut bob], |_| false);
    delivered(&alice, &bob, &data);
}

#[test]
fn server_urls_become_websocket_bases() {
    let cases = [
        ("http://127.0.0.1:3000", Some("ws://127.0.0.1:3000")),
        ("http://127.0.0.1:3000/", Some("ws://127.0.0.1:3000")),
        ("HTTPS://edge.example.com", Some("wss://edge.example.com")),
        ("ws://[::1]:3000", Some("ws://[::1]:3000")),
        ("wss://edge.example.com", Some("wss://edge.example.com")),
        ("ftp://x", None),
        ("127.0.0.1:3000", None),
        ("http://", None),
        ("http://host/path", None),
    ];
    for (server, expected) in cases {
        assert_eq!(websocket_base(server).as_deref(), expected, "{server}");
    }
}

#[test]
fn a_record_in_another_format_is_a_reported_failure_not_an_absent_record() {
    let mut net = Net::default();
    let (mut alice, mut bob) = alice_and_bob(&mut net, Delivery::Push);
    // The record of Alice's connection as an older build would have written it: no format version.
    let key = keys::connection(&alice.sip);
    let stored = net.store.get(&key).unwrap().expect("alice is signed in");
    let mut old: serde_json::Value = serde_json::from_slice(&stored).unwrap();
    old.as_object_mut().unwrap().remove("version");
    net.store
        .set(&key, Bytes::from(serde_json::to_vec(&old).unwrap()))
        .unwrap();
    let chat = alice
        .ua
        .chat(&bob.aor(), "text/plain", Bytes::from_static(b"hi"))
        .unwrap();
    run(&mut net, &mut [&mut alice, &mut bob], |_| false);
    // Not "you are not signed in" (401): the server says which record it cannot read.
    let refusal = alice
        .events
        .iter()
        .find_map(|e| match e {
            Event::ChatFailed { chat: c, refusal } if *c == chat => Some(refusal),
            _ => None,
        })
        .expect("the chat is refused");
    assert_eq!(refusal.status, 500, "{refusal:?}");
    assert!(
        refusal.reason.contains(&key) && refusal.reason.contains("format version None, not 2"),
        "{refusal:?}"
    );
    assert_eq!(net.faults.len(), 1, "{:?}", net.faults);
    assert!(bob.chats().is_empty());
    // Nothing was written over the record: it is there for the operator to look at.
    assert_eq!(
        net.store.get(&key).unwrap().unwrap(),
        serde_json::to_vec(&old).unwrap()
    );
}

#[test]
fn a_pushed_offer_cancelled_before_it_is_answered_ends_with_the_reason() {
    let mut net = Net::default();
    let (mut alice, mut bob) = alice_and_bob(&mut net, Delivery::Push);
    bob.accept_from = None;
    let data = file_bytes(10_000, 3);
    alice.send_file(&bob.aor(), "a.bin", "application/octet-stream", &data);
    run(&mut net, &mut [&mut alice, &mut bob], |_| false);
    assert!(matches!(
        bob.transfer_events().as_slice(),
        [TransferEvent::Offered(_)]
    ));
    // The INVITE the receiver AS sent, as its session record keeps it; the CANCEL another device's
    // answer makes it send (RFC 3326).
    let key = net
        .store
        .keys_with_prefix("msrp/")
        .next()
        .expect("a delivery session")
        .to_owned();
    let record: serde_json::Value =
        serde_json::from_slice(&net.store.get(&key).unwrap().unwrap()).unwrap();
    assert!(record["stage"]["AwaitingInviteAnswer"].is_object());
    let invite = record["invite"].as_str().expect("the INVITE sent");
    let invite = sip::parse(invite.as_bytes(), &sip::Limits::default()).unwrap();
    let mut cancel = sip::cancel_for(&invite).unwrap();
    cancel
        .push_header(
            "Reason",
            &Reason::sip(200, "Call completed elsewhere").to_string(),
        )
        .unwrap();
    bob.ua.handle_sip(&cancel.to_bytes(), net.now);
    let answers: Vec<String> = std::iter::from_fn(|| bob.ua.poll_output())
        .filter_map(|output| match output {
            Output::Transmit { message, .. } => {
                Some(String::from_utf8_lossy(&message).into_owned())
            }
            Output::Event(event) => {
                bob.events.push(event);
                None
            }
        })
        .collect();
    assert!(answers[0].starts_with("SIP/2.0 200 ") && answers[0].contains("CANCEL"));
    assert!(answers[1].starts_with("SIP/2.0 487 ") && answers[1].contains("INVITE"));
    let reason = bob
        .transfer_events()
        .into_iter()
        .find_map(|event| match event {
            TransferEvent::Ended { reason } => reason.clone(),
            _ => None,
        })
        .expect("the offer ends with the CANCEL's reason");
    assert_eq!(reason.text.as_deref(), Some("Call completed elsewhere"));
    // The same CANCEL again finds nothing pending.
    bob.ua.handle_sip(&cancel.to_bytes(), net.now);
    let again = match bob.ua.poll_output() {
        Some(Output::Transmit { message, .. }) => String::from_utf8_lossy(&message).into_owned(),
        other => panic!("{other:?}"),
    };
    assert!(again.starts_with("SIP/2.0 481 "), "{again}");
}

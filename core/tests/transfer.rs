//! Alice, the sender AS, the receiver AS and Bob in virtual time: files pushed and pulled through the
//! shared store, with only a first value crossing between the servers; files uploaded over HTTP and
//! announced in an FT-HTTP MESSAGE; chat; and the faults and bad input each party must survive.

#[allow(
    dead_code,
    reason = "the cut-through tests use the rest of the shared harness"
)]
mod harness;

use bytes::Bytes;
use harness::{FileReceiver, FileSender, Net, User, file_bytes};
use rcs_core::client::{ChatId, OfferKind, TransferEvent};
use rcs_core::first_value::{self, ContentDigest, SigningKey, Url};
use rcs_core::ft_http::{self, FileInfoDocument};
use rcs_core::http_files::AnswerBody;
use rcs_core::http_files::upload::{self, Action, Route, UploadHead};
use rcs_core::server::common;
use rcs_core::server_config::MSRP_HEADER_ROOM;
use rcs_core::service::{Delivery, Side};
use rcs_core::sip::{self, Method};
use rcs_core::store::{KeyValue, Manifest, Record, StoreOp, apply};
use rcs_testkit::{Phone, alice_and_bob, run};

const TEN_MIB: usize = 10 << 20;

/// Alice on the sender AS and Bob on the receiver AS as raw users, registered.
fn raw_alice_and_bob(net: &mut Net, bob_delivery: &str) -> (User, User) {
    let mut alice = User::new("alice", Side::Sender, 1);
    let mut bob = User::new("bob", Side::Receiver, 2);
    assert_eq!(alice.register(net, None).status(), Some(200));
    assert_eq!(bob.register(net, Some(bob_delivery)).status(), Some(200));
    (alice, bob)
}

fn manifest(net: &mut Net, data: &[u8]) -> Manifest {
    let key = ContentDigest::of(data).storage_key();
    let value = net
        .store
        .get(&key)
        .unwrap()
        .expect("the manifest is published");
    Manifest::decode(&key, &value).unwrap()
}

#[test]
fn push_delivers_ten_mib_byte_identical_with_a_constant_server_hop() {
    let mut net = Net::default();
    let (mut alice, mut bob) = alice_and_bob(&mut net, Delivery::Push);
    let data = file_bytes(TEN_MIB, 7);
    alice.send_file(&bob.aor(), "holiday photo.jpg", "image/jpeg", &data);
    run(&mut net, &mut [&mut alice, &mut bob], |_| false);
    assert_eq!(alice.failure(), None, "the sender AS takes the upload");
    assert_eq!(
        alice.report(),
        Some(200),
        "the sender AS reports the stored file"
    );
    assert!(bob.written == data[..], "byte-identical");
    assert!(
        bob.transfer_events()
            .iter()
            .any(|e| matches!(e, TransferEvent::Verified)),
        "the digest the offer announced matches"
    );
    assert_eq!(
        bob.offers().first().and_then(|offer| offer.name.as_deref()),
        Some("holiday photo.jpg")
    );
    assert!(
        bob.ended(),
        "the receiver AS ends the session after the REPORT"
    );
    let reason = alice.bye_reason();
    assert_eq!(
        reason.as_ref().and_then(|r| r.cause),
        Some(202),
        "{reason:?}"
    );
    assert_eq!(net.peer_messages.len(), 2, "one MESSAGE and its answer");
    assert!(
        net.peer_bytes < 2048,
        "AS-to-AS traffic is {} bytes",
        net.peer_bytes
    );
    let message = sip::parse(&net.peer_messages[0], &sip::Limits::default()).unwrap();
    let info = FileInfoDocument::parse(message.body().as_ref()).unwrap();
    assert!(
        info.file
            .url
            .as_str()
            .contains(&ContentDigest::of(&data).to_hex()),
        "the URL names the file's storage path"
    );
    assert_eq!(info.file.size, TEN_MIB as u64);
    assert!(
        net.largest_value <= 64 * 1024 + 1024,
        "no stored value holds more than a chunk"
    );
    // Session records are gone; the file and its manifest stay for the fallback link.
    assert_eq!(net.store.keys_with_prefix("msrp/").count(), 0);
    assert_eq!(manifest(&mut net, &data).size, TEN_MIB as u64);
}

#[test]
fn a_batch_of_acknowledgements_gets_one_refill_of_the_window() {
    let mut net = Net::default();
    let (mut alice, mut bob) = raw_alice_and_bob(&mut net, "push");
    let data = file_bytes(1 << 20, 11);
    FileSender::new(&data).send(&mut net, &mut alice, &bob.aor);
    net.window_writes = 0;
    let receiver = FileReceiver {
        batch: 4,
        ..FileReceiver::default()
    };
    let received = receiver.accept_push(&mut net, &mut bob);
    assert!(received.data == data[..], "byte-identical");
    // 16 chunks acknowledged four at a time: the bind writes the window, then each batch but the
    // last (which finishes the delivery and deletes it) writes it once.
    let chunks = data.len() / (64 * 1024);
    assert_eq!(net.window_writes, 1 + chunks / receiver.batch - 1);
}

#[test]
fn no_reply_carries_more_than_a_gateway_takes() {
    let chunk_room = 64 * 1024 + MSRP_HEADER_ROOM;
    let mut receiver = rcs_testkit::server_config("receiver-as.example.com");
    receiver.window = 16;
    receiver.max_reply_bytes = 3 * chunk_room;
    let mut net = Net::new(
        rcs_testkit::server_config("sender-as.example.com"),
        receiver,
    );
    let (mut alice, mut bob) = alice_and_bob(&mut net, Delivery::Push);
    let data = file_bytes(2 << 20, 12);
    alice.send_file(&bob.aor(), "big.bin", "application/octet-stream", &data);
    run(&mut net, &mut [&mut alice], |_| false);
    assert_eq!(alice.report(), Some(200), "stored before Bob answers");
    net.gateway.largest_burst = 0;
    run(&mut net, &mut [&mut alice, &mut bob], |_| false);
    assert!(bob.written == data[..], "byte-identical");
    assert!(
        net.gateway.largest_burst <= 3 * chunk_room,
        "one request sent {} bytes to one connection",
        net.gateway.largest_burst
    );
    assert!(
        net.gateway.largest_burst > 2 * chunk_room,
        "the reply is filled"
    );
}

#[test]
fn pull_delivers_on_the_recipients_download_request() {
    let mut net = Net::default();
    let (mut alice, mut bob) = alice_and_bob(&mut net, Delivery::Pull);
    let data = file_bytes(TEN_MIB, 8);
    alice.send_file(&bob.aor(), "report.pdf", "application/pdf", &data);
    run(&mut net, &mut [&mut alice, &mut bob], |_| false);
    assert_eq!(alice.report(), Some(200));
    assert!(bob.written == data[..], "byte-identical");
    let offer = bob.offers().first().cloned().cloned().expect("an offer");
    assert_eq!(
        offer.kind,
        OfferKind::Pull,
        "the offer carried the file-info"
    );
    assert_eq!(offer.sha256, Some(ContentDigest::of(&data).0));
    assert!(
        net.peer_bytes < 2048,
        "AS-to-AS traffic is {} bytes",
        net.peer_bytes
    );
    assert_eq!(
        net.store.keys_with_prefix("offer/").count(),
        0,
        "the offer is consumed"
    );
}

#[test]
fn a_pull_offer_past_its_links_expiry_is_gone_and_one_never_made_is_not_found() {
    let mut net = Net::default();
    let (mut alice, mut bob) = raw_alice_and_bob(&mut net, "pull");
    let data = file_bytes(100_000, 21);
    FileSender::new(&data).send(&mut net, &mut alice, &bob.aor);
    let offers = bob.answer_requests(&mut net);
    let message = offers
        .iter()
        .find(|m| *m.method() == Method::Message)
        .expect("the server offers the file");
    let info = FileInfoDocument::parse(message.body().as_ref()).unwrap();
    let sender = message.from().uri().clone();
    let lifetime = rcs_testkit::server_config("receiver-as.example.com").url_lifetime_secs;
    net.now = net.now.plus_secs(lifetime + 1);
    let late = harness::download_request(&mut net, &mut bob, &info, sender.clone(), 0);
    let answer = String::from_utf8_lossy(&late.answer.to_bytes()).into_owned();
    assert_eq!(late.answer.status(), Some(410), "{answer}");
    assert!(answer.contains("the offer has expired"), "{answer}");
    // A file that was never offered to Bob stays "not found".
    let mut other = info.clone();
    other.file.digest = Some(ContentDigest::of(b"never offered"));
    let unknown = harness::download_request(&mut net, &mut bob, &other, sender, 0);
    assert_eq!(unknown.answer.status(), Some(404));
}

#[test]
fn the_server_hop_stays_constant_whatever_the_file_size() {
    let mut sizes = Vec::new();
    for size in [1usize, 1024, 1 << 20, 4 << 20] {
        let mut net = Net::default();
        let (mut alice, mut bob) = alice_and_bob(&mut net, Delivery::Push);
        let data = file_bytes(size, size as u64);
        alice.send_file(&bob.aor(), "a.bin", "application/octet-stream", &data);
        run(&mut net, &mut [&mut alice, &mut bob], |_| false);
        assert!(bob.written == data[..]);
        sizes.push(net.peer_bytes);
    }
    let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
    assert!(
        max - min <= 16,
        "AS-to-AS bytes vary with the file size: {sizes:?}"
    );
}

#[test]
fn an_empty_file_and_unaligned_chunks_arrive_intact() {
    let mut net = Net::default();
    let (mut alice, mut bob) = raw_alice_and_bob(&mut net, "push");
    let empty = Bytes::new();
    let upload = FileSender::new(&empty).send(&mut net, &mut alice, &bob.aor);
    assert_eq!(
        upload.report,
        Some(200),
        "an empty file is stored and reported too"
    );
    let received = FileReceiver::default().accept_push(&mut net, &mut bob);
    assert!(received.data.is_empty());
    assert_eq!(received.digest, Some(ContentDigest::of(b"")));
    let odd = file_bytes(1_000_003, 3);
    let mut sender = FileSender::new(&odd);
    sender.chunk_size = 10_007; // never lines up with the 64 KiB store chunks
    sender.window = 3;
    let upload = sender.send(&mut net, &mut alice, &bob.aor);
    assert_eq!(upload.report, Some(200));
    let received = FileReceiver::default().accept_push(&mut net, &mut bob);
    assert!(received.data == odd[..]);
}

#[test]
fn identical_files_are_stored_once() {
    let mut net = Net::default();
    let (mut alice, mut bob) = alice_and_bob(&mut net, Delivery::Push);
    let data = file_bytes(300_000, 9);
    for _ in 0..2 {
        bob.written.clear();
        alice.send_file(&bob.aor(), "a.bin", "application/octet-stream", &data);
        run(&mut net, &mut [&mut alice, &mut bob], |_| false);
        assert!(bob.written == data[..]);
    }
    assert_eq!(net.store.keys_with_prefix("file/").count(), 1);
    let chunk_keys = net.store.keys_with_prefix("up/").count();
    assert_eq!(
        chunk_keys, 5,
        "one copy of the chunks and no upload state left"
    );
}

#[test]
fn chat_messages_arrive_in_order() {
    let mut net = Net::default();
    let (mut alice, mut bob) = alice_and_bob(&mut net, Delivery::Push);
    let chats: Vec<ChatId> = (0..20)
        .map(|i| alice.chat(&bob.aor(), &format!("message {i}")))
        .collect();
    run(&mut net, &mut [&mut alice, &mut bob], |_| false);
    for chat in chats {
        assert_eq!(alice.chat_status(chat), Some(202));
    }
    let expected: Vec<String> = (0..20).map(|i| format!("message {i}")).collect();
    assert_eq!(bob.chats(), expected);
    // One SIP connection carries chats both ways: Bob's reply reaches Alice on hers.
    let reply = bob.chat(&alice.aor(), "got them");
    run(&mut net, &mut [&mut alice, &mut bob], |_| false);
    assert_eq!(bob.chat_status(reply), Some(202));
    assert_eq!(alice.chats_from(), vec![(bob.aor(), "got them".to_owned())]);
}

#[test]
fn one_device_sends_and_receives_at_once_over_its_one_sip_connection() {
    let mut net = Net::default();
    let (mut alice, mut bob) = alice_and_bob(&mut net, Delivery::Push);
    let to_bob = file_bytes(200_000, 21);
    let to_alice = file_bytes(300_000, 22);
    alice.send_file(
        &bob.aor(),
        "to bob.bin",
        "application/octet-stream",
        &to_bob,
    );
    bob.send_file(
        &alice.aor(),
        "to alice.bin",
        "application/octet-stream",
        &to_alice,
    );
    run(&mut net, &mut [&mut alice, &mut bob], |_| false);
    assert_eq!(alice.report(), Some(200));
    assert_eq!(bob.report(), Some(200));
    assert!(bob.written == to_bob[..] && alice.written == to_alice[..]);
    // A chat reaches the recipient once.
    let hello = alice.chat(&bob.aor(), "hello");
    run(&mut net, &mut [&mut alice, &mut bob], |_| false);
    assert_eq!(alice.chat_status(hello), Some(202));
    assert_eq!(bob.chats(), ["hello"]);
    assert_eq!(
        net.store.keys_with_prefix("reg/").count(),
        2,
        "one registration per user, shared by both servers"
    );
}

#[test]
fn unknown_offline_and_unregistered_users_get_clear_answers() {
    let mut net = Net::default();
    let (mut alice, mut bob) = alice_and_bob(&mut net, Delivery::Push);
    let data = file_bytes(1000, 1);
    let carol = "sip:carol@example.com";
    let unknown = alice.send_file(carol, "a.bin", "application/octet-stream", &data);
    let chat = alice.chat(carol, "hi");
    run(&mut net, &mut [&mut alice], |_| false);
    assert_eq!(alice.failure_of(unknown).map(|r| r.status), Some(404));
    assert_eq!(alice.chat_status(chat), Some(404));
    net.disconnect(Side::Sender, &bob.sip.clone());
    let offline = alice.send_file(&bob.aor(), "a.bin", "application/octet-stream", &data);
    let chat = alice.chat(&bob.aor(), "hi");
    run(&mut net, &mut [&mut alice], |_| false);
    let refusal = alice.failure_of(offline).expect("refused");
    assert_eq!(refusal.status, 480);
    assert!(refusal.reason.contains("offline"), "{refusal:?}");
    assert_eq!(alice.chat_status(chat), Some(480));
    // A user who never signed in on this connection may not send: the server asks who it is.
    let mut mallory = User::new("mallory", Side::Sender, 9);
    let forged = FileSender::new(&data).send(&mut net, &mut mallory, &alice.aor());
    assert_eq!(forged.answer.status(), Some(401));
    bob.reconnect();
    bob.register(&mut net, Some(Delivery::Push));
    let online = alice.send_file(&bob.aor(), "a.bin", "application/octet-stream", &data);
    run(&mut net, &mut [&mut alice, &mut bob], |_| false);
    assert_eq!(alice.failure_of(online), None);
    assert_eq!(alice.report(), Some(200));
    assert!(bob.written == data[..]);
}

#[test]
fn a_file_over_the_maximum_is_refused_and_nothing_is_stored() {
    let mut sender = rcs_testkit::server_config("sender-as.example.com");
    sender.layout.max_file_size = 999;
    let mut net = Net::new(
        sender,
        rcs_testkit::server_config("receiver-as.example.com"),
    );
    let (mut alice, bob) = alice_and_bob(&mut net, Delivery::Push);
    let data = file_bytes(1000, 2);
    let upload = alice.send_file(&bob.aor(), "a.bin", "application/octet-stream", &data);
    run(&mut net, &mut [&mut alice], |_| false);
    let refusal = alice.failure_of(upload).expect("refused");
    assert_eq!(refusal.status, 413);
    assert!(
        refusal.reason.contains("exceeds the maximum"),
        "{refusal:?}"
    );
    assert_eq!(net.store.keys_with_prefix("up/").count(), 0);
    assert_eq!(net.store.keys_with_prefix("file/").count(), 0);
}

#[test]
fn the_sender_disconnects_mid_upload_and_resumes() {
    let mut net = Net::default();
    let (mut alice, mut bob) = raw_alice_and_bob(&mut net, "push");
    let data = file_bytes(3 << 20, 11);
    let mut first = FileSender::new(&data);
    first.stop_after = Some(1 << 20);
    let interrupted = first.send(&mut net, &mut alice, &bob.aor);
    assert_eq!(interrupted.report, None);
    assert_eq!(
        net.store.keys_with_prefix("file/").count(),
        0,
        "nothing visible half-written"
    );
    // Alice offers the same file again: the answer says where the store left off.
    let resumed = FileSender::new(&data).send(&mut net, &mut alice, &bob.aor);
    assert!(
        resumed.resumed_from >= 1 << 20,
        "resumed from {}",
        resumed.resumed_from
    );
    assert_eq!(resumed.report, Some(200));
    let received = FileReceiver::default().accept_push(&mut net, &mut bob);
    assert!(received.data == data[..]);
}

#[test]
fn the_recipient_disconnects_mid_delivery_and_resumes_from_the_last_acknowledged_byte() {
    let mut net = Net::default();
    let (mut alice, mut bob) = raw_alice_and_bob(&mut net, "push");
    let data = file_bytes(4 << 20, 12);
    FileSender::new(&data).send(&mut net, &mut alice, &bob.aor);
    let cut = FileReceiver {
        stop_after: Some(1 << 20),
        ..FileReceiver::default()
    }
    .accept_push(&mut net, &mut bob);
    assert!(cut.interrupted && cut.acknowledged > 0 && cut.acknowledged < 4 << 20);
    assert_eq!(
        net.store
            .keys_with_prefix("msrp/")
            .filter(|key| !key.contains("/window/"))
            .count(),
        1,
        "the delivery waits for the recipient"
    );
    // Bob's client opens a new MSRP connection and binds it to the same session: the server goes on
    // from the last byte Bob acknowledged, and only the rest crosses the network.
    bob.reconnect();
    let before = net.requests;
    let rest = FileReceiver::default().resume(&mut net, &mut bob, cut);
    assert!(rest.data == data[..], "byte-identical after the resume");
    assert!(
        net.requests - before < 70,
        "{} requests: the resume did not start over",
        net.requests - before
    );
}

#[test]
fn a_silent_recipient_times_out_and_the_delivery_resumes_when_it_binds_again() {
    let mut net = Net::default();
    let (mut alice, mut bob) = raw_alice_and_bob(&mut net, "push");
    let data = file_bytes(2 << 20, 13);
    FileSender::new(&data).send(&mut net, &mut alice, &bob.aor);
    let cut = FileReceiver {
        silent_after: Some(512 << 10),
        ..FileReceiver::default()
    }
    .accept_push(&mut net, &mut bob);
    let delivery_key = net
        .store
        .keys_with_prefix("msrp/")
        .find(|key| !key.contains("/window/"))
        .unwrap()
        .to_owned();
    let windows = format!("{delivery_key}/window/");
    let in_flight = |net: &Net| net.store.keys_with_prefix(&windows).count();
    assert_eq!(in_flight(&net), 1, "chunks are in flight");
    assert_eq!(
        net.fire_due_timers(),
        0,
        "nothing is due before the transaction timeout"
    );
    net.now = net.now.plus_secs(31);
    assert!(net.fire_due_timers() > 0);
    assert_eq!(in_flight(&net), 0, "the timeout paused the delivery");
    let record = net.store.get(&delivery_key).unwrap().unwrap();
    let session = serde_json::from_slice::<serde_json::Value>(&record).unwrap();
    assert!(session["connection"].is_null(), "{session}");
    bob.reconnect();
    let rest = FileReceiver::default().resume(&mut net, &mut bob, cut);
    assert!(rest.data == data[..]);
}

#[test]
fn a_timer_and_a_late_answer_at_once_lose_neither_update() {
    let mut net = Net::default();
    let (mut alice, mut bob) = raw_alice_and_bob(&mut net, "push");
    let data = file_bytes(2 << 20, 14);
    FileSender::new(&data).send(&mut net, &mut alice, &bob.aor);
    let mut cut = FileReceiver {
        silent_after: Some(512 << 10),
        ..FileReceiver::default()
    }
    .accept_push(&mut net, &mut bob);
    let late = std::mem::take(&mut cut.held_back);
    assert!(!late.is_empty(), "Bob holds acknowledgements back");
    // The transactions time out, and Bob's acknowledgements arrive while the delivery's timer is
    // being handled: the timer read the window before they came, and writes it after.
    net.now = net.now.plus_secs(31);
    let fired = net.fire_due_timers_while(|net| bob.send_msrp(net, late));
    assert!(fired > 0);
    // The late answer's update stands: the delivery goes on over the same connection, without
    // Bob binding it again, and the timer, handled again after it, found nothing timed out.
    let rest = FileReceiver::default().carry_on(&mut net, &mut bob, cut);
    assert!(rest.data == data[..], "byte-identical");
}

#[test]
fn the_host_restarts_mid_transfer_and_completed_files_stay_intact() {
    let mut net = Net::default();
    let (mut alice, mut bob) = raw_alice_and_bob(&mut net, "pull");
    let done = file_bytes(500_000, 20);
    FileSender::new(&done).send(&mut net, &mut alice, &bob.aor);
    let partial = file_bytes(2 << 20, 21);
    let mut sender = FileSender::new(&partial);
    sender.stop_after = Some(700_000);
    sender.send(&mut net, &mut alice, &bob.aor);
    // Bob is offered each file as its upload starts (cut-through) and keeps the offers.
    let offers: Vec<_> = bob
        .answer_requests(&mut net)
        .into_iter()
        .filter(|m| *m.method() == Method::Message)
        .collect();
    let partial_offer = offers.last().expect("the partial file is offered at once");
    let partial_info = FileInfoDocument::parse(partial_offer.body().as_ref()).unwrap();
    let sender_uri = partial_offer.from().uri().clone();
    net.restart();
    // After the restart: the completed file is whole, the partial one is invisible and resumable.
    let stored = manifest(&mut net, &done);
    assert_eq!(stored.size, 500_000);
    let key = ContentDigest::of(&partial).storage_key();
    assert!(net.store.get(&key).unwrap().is_none());
    alice.reconnect();
    bob.reconnect();
    assert_eq!(alice.register(&mut net, None).status(), Some(200));
    assert_eq!(bob.register(&mut net, Some("pull")).status(), Some(200));
    let resumed = FileSender::new(&partial).send(&mut net, &mut alice, &bob.aor);
    assert!(
        resumed.resumed_from >= 655_360,
        "resumed from {}",
        resumed.resumed_from
    );
    let received =
        FileReceiver::default().download(&mut net, &mut bob, &partial_info, sender_uri, 0);
    assert!(received.data == partial[..]);
}

#[test]
fn forged_expired_and_foreign_first_values_are_refused() {
    let mut net = Net::default();
    let (mut alice, bob) = raw_alice_and_bob(&mut net, "push");
    let data = file_bytes(2000, 30);
    FileSender::new(&data).send(&mut net, &mut alice, &bob.aor);
    let genuine = String::from_utf8(net.peer_messages[0].to_vec()).unwrap();
    let digest = ContentDigest::of(&data).to_hex();
    let other = ContentDigest::of(b"another file").to_hex();
    let forged_digest = genuine.replace(&digest, &other);
    let foreign = genuine.replace(
        "https://files.example.com/ft/",
        "https://filez.example.com/ft/",
    );
    let exp_start = genuine.find("exp=").unwrap() + 4;
    let exp_end = exp_start + genuine[exp_start..].find('&').unwrap();
    let later = (genuine[exp_start..exp_end].parse::<u64>().unwrap() + 1).to_string();
    let forged_expiry = format!("{}{}{}", &genuine[..exp_start], later, &genuine[exp_end..]);
    // A peer that holds the key (the servers share it) but sends a bad first value: sealed, so the
    // first value itself is what gets refused.
    let key = net.sender.signing_keys[0].clone();
    let reseal = |text: &str| {
        let mut message = sip::parse(text.as_bytes(), &sip::Limits::default()).unwrap();
        common::seal_peer_request(&mut message, &key).unwrap();
        message.to_bytes()
    };
    for (forgery, why) in [
        (forged_digest, "digest"),
        (foreign, "origin"),
        (forged_expiry, "expiry"),
    ] {
        let answer = net.peer(reseal(&forgery)).expect("an answer");
        let answer = sip::parse(&answer, &sip::Limits::default()).unwrap();
        assert_eq!(answer.status(), Some(403), "forged {why}");
        let warning = answer.header("Warning").unwrap_or_default();
        assert!(
            warning.contains("first value refused"),
            "forged {why}: {warning}"
        );
    }
    // Without the seal, nothing is taken: not a changed recipient, not a changed sender.
    for (from, to) in [
        ("sip:bob@example.com", "sip:mallory@example.com"),
        ("sip:alice@example.com", "sip:carol@example.com"),
    ] {
        let tampered = genuine
            .replace("sip:alice@example.com", from)
            .replace("sip:bob@example.com", to);
        let answer = net.peer(tampered.into()).expect("an answer");
        let answer = sip::parse(&answer, &sip::Limits::default()).unwrap();
        assert_eq!(answer.status(), Some(403));
        assert!(
            answer
                .header("Warning")
                .is_some_and(|w| w.contains("not sealed"))
        );
    }
    // The genuine value, once expired, is refused too.
    net.now = net.now.plus_secs(net.sender.url_lifetime_secs + 1);
    let answer = net.peer(genuine.into()).expect("an answer");
    let answer = sip::parse(&answer, &sip::Limits::default()).unwrap();
    assert_eq!(answer.status(), Some(403));
    assert!(
        answer
            .header("Warning")
            .is_some_and(|w| w.contains("expired")),
        "{:?}",
        answer.header("Warning")
    );
}

#[test]
fn malformed_sip_and_msrp_get_400_with_a_reason_and_the_connection_keeps_working() {
    let mut net = Net::default();
    let (mut alice, bob) = raw_alice_and_bob(&mut net, "push");
    // Content-Length contradicts the body.
    alice.send_raw_sip(
        &mut net,
        b"MESSAGE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/WSS a.invalid;branch=z9hG4bKx1\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: c1\r\nCSeq: 1 MESSAGE\r\nContent-Length: 99\r\n\r\nhello",
    );
    let answer = alice.sip_inbox(&mut net).pop().expect("an answer");
    assert_eq!(answer.status(), Some(400));
    assert!(answer.header("Warning").is_some());
    // Garbage gets no answer but breaks nothing.
    alice.send_raw_sip(&mut net, &[0xff, 0xfe, 0x00, b'\r', b'\n']);
    assert!(alice.sip_inbox(&mut net).is_empty());
    // A bad SDP body.
    let to = sip::SipUri::parse(&bob.aor).unwrap();
    let invite = sip::RequestBuilder::new(
        Method::Invite,
        to.clone(),
        sip::NameAddr::new(alice.uri()),
        sip::NameAddr::new(to),
    )
    .local_host(&alice.host)
    .body(
        "application/sdp",
        Bytes::from_static(b"v=0\r\nthis is not sdp\r\n"),
    )
    .build(&mut alice.ids)
    .unwrap();
    alice.send_sip(&mut net, &invite);
    let answer = alice.sip_inbox(&mut net).pop().unwrap();
    assert_eq!(answer.status(), Some(400));
    // Malformed MSRP: a Byte-Range that contradicts itself.
    let bad = b"MSRP tx001 SEND\r\nTo-Path: msrps://sender-as.example.com/abc;ws\r\nFrom-Path: msrps://a.invalid:2855/x;ws\r\nMessage-ID: msg001\r\nByte-Range: 5-1/10\r\nContent-Type: text/plain\r\n\r\nhello\r\n-------tx001$\r\n";
    alice.send_msrp(&mut net, vec![Bytes::from_static(bad)]);
    let frames = alice.msrp_inbox(&mut net);
    match frames.first() {
        Some(rcs_core::msrp::Frame::Response(response)) => assert_eq!(response.code, 400),
        other => panic!("expected a 400, got {other:?}"),
    }
    // A SEND to a session that does not exist.
    let stray = b"MSRP tx002 SEND\r\nTo-Path: msrps://sender-as.example.com/nosuch;ws\r\nFrom-Path: msrps://a.invalid:2855/x;ws\r\nMessage-ID: msg002\r\nByte-Range: 1-5/5\r\nContent-Type: text/plain\r\n\r\nhello\r\n-------tx002$\r\n";
    alice.send_msrp(&mut net, vec![Bytes::from_static(stray)]);
    let frames = alice.msrp_inbox(&mut net);
    assert!(
        matches!(frames.first(), Some(rcs_core::msrp::Frame::Response(r)) if r.code == 481),
        "{frames:?}"
    );
    // After all that, the same connections still work.
    assert_eq!(
        alice.chat(&mut net, &bob.aor, "still here").status(),
        Some(202)
    );
}

#[test]
fn a_user_cannot_send_in_someone_elses_name() {
    let mut net = Net::default();
    let (_alice, bob) = raw_alice_and_bob(&mut net, "push");
    let mut mallory = User::new("mallory", Side::Sender, 9);
    assert_eq!(mallory.register(&mut net, None).status(), Some(200));
    // Mallory's own connection, claiming to be Alice.
    let mut posing = User::new("alice", Side::Sender, 10);
    posing.sip = mallory.sip.clone();
    posing.msrp = mallory.msrp.clone();
    let data = file_bytes(1000, 4);
    let upload = FileSender::new(&data).send(&mut net, &mut posing, &bob.aor);
    assert_eq!(upload.answer.status(), Some(403));
    assert_eq!(
        posing.chat(&mut net, &bob.aor, "it's me, alice").status(),
        Some(403)
    );
}

#[test]
fn registering_again_from_a_new_connection_moves_the_user_there() {
    let mut net = Net::default();
    let (mut alice, mut bob) = alice_and_bob(&mut net, Delivery::Push);
    let old = bob.sip.clone();
    bob.reconnect();
    bob.register(&mut net, Some(Delivery::Push));
    let chat = alice.chat(&bob.aor(), "where are you?");
    run(&mut net, &mut [&mut alice, &mut bob], |_| false);
    assert_eq!(alice.chat_status(chat), Some(202));
    assert!(
        net.take(&old).is_empty(),
        "the old connection no longer gets Bob's messages"
    );
    assert_eq!(bob.chats().len(), 1);
}

#[test]
fn an_old_connection_closing_late_does_not_stop_a_resumed_delivery() {
    let mut net = Net::default();
    let (mut alice, mut bob) = raw_alice_and_bob(&mut net, "push");
    let data = file_bytes(3 << 20, 14);
    FileSender::new(&data).send(&mut net, &mut alice, &bob.aor);
    // Bob's first MSRP connection goes quiet; his client binds a new one before the gateway
    // notices the old one is dead.
    let cut = FileReceiver {
        silent_after: Some(1 << 20),
        ..FileReceiver::default()
    }
    .accept_push(&mut net, &mut bob);
    let old = bob.msrp.clone();
    bob.reconnect();
    let resumer = FileReceiver {
        close_after_bind: Some(old),
        ..FileReceiver::default()
    };
    let rest = resumer.resume(&mut net, &mut bob, cut);
    assert!(rest.data == data[..]);
}

#[test]
fn a_declined_push_is_acknowledged_and_forgotten() {
    let mut net = Net::default();
    let (mut alice, mut bob) = raw_alice_and_bob(&mut net, "push");
    let data = file_bytes(10_000, 15);
    FileSender::new(&data).send(&mut net, &mut alice, &bob.aor);
    let invite = bob
        .sip_inbox(&mut net)
        .into_iter()
        .find(|m| *m.method() == Method::Invite)
        .unwrap();
    let tag = bob.ids.tag();
    let busy = sip::response(&invite, 486, "Busy Here", Some(&tag)).unwrap();
    bob.send_sip(&mut net, &busy);
    let acks = bob.sip_inbox(&mut net);
    assert_eq!(acks.len(), 1);
    assert_eq!(*acks[0].method(), Method::Ack);
    assert_eq!(
        acks[0].via().branch(),
        invite.via().branch(),
        "the ACK is in the INVITE's transaction"
    );
    assert_eq!(acks[0].to().tag(), Some(tag.as_str()));
    assert_eq!(net.store.keys_with_prefix("msrp/").count(), 0);
    // The file is still there for the link.
    assert!(
        net.store
            .get(&ContentDigest::of(&data).storage_key())
            .unwrap()
            .is_some()
    );
}

#[test]
fn a_chunk_far_beyond_the_stored_bytes_is_refused() {
    let mut net = Net::default();
    let (mut alice, bob) = raw_alice_and_bob(&mut net, "push");
    let data = file_bytes(4 << 20, 16);
    let mut sender = FileSender::new(&data);
    sender.start_at = Some(2 << 20);
    let upload = sender.send(&mut net, &mut alice, &bob.aor);
    assert_eq!(upload.report, Some(400), "a failure REPORT says why");
    assert_eq!(net.store.keys_with_prefix("file/").count(), 0);
}

#[test]
fn abandoned_sessions_offers_and_connections_are_swept() {
    let mut net = Net::default();
    let (mut alice, mut bob) = raw_alice_and_bob(&mut net, "pull");
    let data = file_bytes(2 << 20, 17);
    let mut sender = FileSender::new(&data);
    sender.stop_after = Some(600_000);
    // An abandoned upload session, whose file was offered to Bob as it started (cut-through).
    sender.send(&mut net, &mut alice, &bob.aor);
    let other = file_bytes(300_000, 18);
    FileSender::new(&other).send(&mut net, &mut alice, &bob.aor); // a pull offer nobody takes
    let _ = bob.answer_requests(&mut net);
    let sweep = |net: &mut Net, now: rcs_core::time::Timestamp| {
        let keys: Vec<String> = net.store.keys_with_prefix("").map(str::to_owned).collect();
        for key in keys {
            let Some(value) = net.store.get(&key).unwrap() else {
                continue;
            };
            for op in common::sweep(&key, &value, now) {
                rcs_core::store::apply(&mut net.store, op).unwrap();
            }
        }
    };
    let count = |net: &Net, prefix: &str| net.store.keys_with_prefix(prefix).count();
    assert!(count(&net, "msrp/") >= 2 && count(&net, "offer/") == 2 && count(&net, "conn/") >= 2);
    let now = net.now;
    sweep(&mut net, now);
    assert!(
        count(&net, "msrp/") >= 2,
        "nothing is swept while it is live"
    );
    let later = now.plus_secs(
        net.receiver
            .url_lifetime_secs
            .max(common::SESSION_IDLE_SECS)
            + 1,
    );
    sweep(&mut net, later);
    assert_eq!(count(&net, "msrp/"), 0);
    assert_eq!(count(&net, "offer/"), 0);
    assert_eq!(count(&net, "conn/msrp"), 0, "MSRP connection records go");
    assert_eq!(
        count(&net, "file/"),
        1,
        "the complete file stays for its own lifetime"
    );
}

// ---------------------------------------------------------------------------------------------
// A client without MSRP sends a file through the patent's path: it uploads over HTTP (the FT-HTTP
// upload of `http_files`), then sends the sender AS a SIP MESSAGE with the file-info it got back.
// The sender AS hands the receiver AS the first value exactly as after an MSRP upload.

const BOUNDARY: &str = "rcs-ft-boundary";

/// Uploads `data` through the FT-HTTP upload into the shared store; returns the file-info answer.
fn upload_over_http(net: &mut Net, tid: &str, data: &[u8]) -> String {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"tid\"\r\n\r\n{tid}\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"File\"; filename=\"notes.txt\"\r\nContent-Type: text/plain\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    let head = UploadHead {
        method: "POST",
        query: None,
        content_type: Some(&content_type),
        content_length: Some(body.len() as u64),
        content_range: None,
    };
    let Route::Upload(mut request) = upload::route(&head, "alice", &net.sender, net.now) else {
        panic!("an upload")
    };
    let mut frames = body.chunks(16 * 1024);
    loop {
        while let Some(action) = request.poll() {
            match action {
                Action::Store(StoreOp::Get { key }) => {
                    let value = net.store.get(&key).unwrap();
                    request.on_value(&key, value);
                }
                Action::Store(op) => {
                    apply(&mut net.store, op).unwrap();
                }
                Action::Answer(answer) => {
                    assert_eq!(answer.status, 200);
                    let AnswerBody::Full(xml) = answer.body else {
                        panic!("a file-info")
                    };
                    return xml;
                }
            }
        }
        match frames.next() {
            Some(frame) => request.push_body(Bytes::copy_from_slice(frame)),
            None => request.end_body(),
        }
    }
}

/// Alice's MESSAGE to `to` carrying `file_info`, sent by her agent as any chat is.
fn send_file_info(alice: &mut Phone, to: &str, file_info: &str) -> ChatId {
    alice
        .ua
        .chat(
            to,
            ft_http::CONTENT_TYPE,
            Bytes::copy_from_slice(file_info.as_bytes()),
        )
        .expect("a MESSAGE")
}

/// Alice uploads `data` over HTTP and announces it to Bob, who receives with `delivery`; the phones
/// run until quiet. Asserts that the sender AS took the announcement and that Bob holds the file,
/// byte-identical; returns Bob's phone.
fn uploaded_and_announced(net: &mut Net, delivery: Delivery, data: &Bytes) -> Phone {
    let (mut alice, mut bob) = alice_and_bob(net, delivery);
    let info = upload_over_http(net, "t-announced", data);
    let announce = send_file_info(&mut alice, &bob.aor(), &info);
    run(net, &mut [&mut alice, &mut bob], |_| false);
    assert_eq!(
        alice.chat_status(announce),
        Some(202),
        "{:?}",
        alice.chat_refusal(announce)
    );
    assert!(bob.written == data[..], "byte-identical");
    bob
}

#[test]
fn a_file_uploaded_over_http_is_pushed_to_bob_byte_identical() {
    let mut net = Net::default();
    let data = file_bytes(300_000, 11);
    let bob = uploaded_and_announced(&mut net, Delivery::Push, &data);
    assert!(
        bob.transfer_events()
            .iter()
            .any(|e| matches!(e, TransferEvent::Verified)),
        "the digest the offer announced matches"
    );
    assert_eq!(bob.offers()[0].sha256, Some(ContentDigest::of(&data).0));
    assert_eq!(bob.offers()[0].name.as_deref(), Some("notes.txt"));
    // Only the first value crossed between the servers: one sealed MESSAGE and its answer.
    assert_eq!(net.peer_messages.len(), 2);
    assert!(net.peer_bytes < 2048, "{}", net.peer_bytes);
}

#[test]
fn a_file_uploaded_over_http_is_pulled_by_bob_byte_identical() {
    let mut net = Net::default();
    let data = file_bytes(200_000, 12);
    let bob = uploaded_and_announced(&mut net, Delivery::Pull, &data);
    let offered = bob.offers()[0];
    assert_eq!(offered.kind, OfferKind::Pull, "a pull offer");
    assert_eq!(offered.sha256, Some(ContentDigest::of(&data).0));
}

#[test]
fn urls_not_signed_here_files_not_stored_and_offline_users_are_refused() {
    let mut net = Net::default();
    let (mut alice, bob) = alice_and_bob(&mut net, Delivery::Push);
    let data = file_bytes(1000, 13);
    let info = upload_over_http(&mut net, "t-bad", &data);
    let document = FileInfoDocument::parse(&info).unwrap();
    let digest = ContentDigest::of(&data);
    let other_key = SigningKey::new(vec![7u8; 32]).unwrap();
    let exp = net.now.unix_secs() + 600;
    let with_url = |url: &str| {
        info.replace(
            &document.file.url.as_str().replace('&', "&amp;"),
            &url.replace('&', "&amp;"),
        )
    };
    let forged = first_value::sign(&net.sender.public_base, digest, exp, &other_key);
    let foreign = first_value::sign(
        &Url::parse("https://elsewhere.example.org/ft/").unwrap(),
        digest,
        exp,
        &net.sender.signing_keys[0],
    );
    let unknown = first_value::sign(
        &net.sender.public_base,
        ContentDigest::of(b"never stored"),
        exp,
        &net.sender.signing_keys[0],
    );
    let cases = [
        (with_url(forged.as_str()), 403, "signature"),
        (with_url(foreign.as_str()), 403, "origin"),
        (with_url(unknown.as_str()), 404, "no such file"),
        (
            "<file>not a file-info</file>".to_owned(),
            400,
            "bad file-info",
        ),
    ];
    for (body, status, why) in cases {
        let announce = send_file_info(&mut alice, &bob.aor(), &body);
        run(&mut net, &mut [&mut alice], |_| false);
        let refusal = alice.chat_refusal(announce).expect("refused");
        assert_eq!(refusal.status, status, "{why}: {refusal:?}");
        assert!(refusal.reason.contains(why), "{why}: {refusal:?}");
    }
    assert!(
        net.peer_messages.is_empty(),
        "nothing went to the receiver AS"
    );
    // An unknown recipient, then an offline one.
    let announce = send_file_info(&mut alice, "sip:carol@example.com", &info);
    run(&mut net, &mut [&mut alice], |_| false);
    assert_eq!(alice.chat_status(announce), Some(404));
    net.disconnect(Side::Sender, &bob.sip.clone());
    let announce = send_file_info(&mut alice, &bob.aor(), &info);
    run(&mut net, &mut [&mut alice], |_| false);
    assert_eq!(alice.chat_status(announce), Some(480));
}

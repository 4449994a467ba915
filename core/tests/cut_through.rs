//! Cut-through delivery in virtual time: the receiver AS has the first value as soon as Alice's
//! upload starts, and Bob receives the chunks as they are stored, woken by the sender AS's progress
//! notices. The end of the file goes out only once the whole file hashes to its digest; an upload
//! that ends without the file (a wrong digest, Alice aborting, Alice never coming back) ends Bob's
//! transfer with the reason, and nothing stored for anyone else is touched. Alice's client stops a
//! file midway with a `#` chunk.

#[allow(
    dead_code,
    reason = "the transfer tests use the rest of the shared harness"
)]
mod harness;

use harness::{FileReceiver, FileSender, Net, User, file_bytes};
use rcs_core::client::TransferEvent;
use rcs_core::first_value::ContentDigest;
use rcs_core::service::{Delivery, Side};
use rcs_core::store::{KeyValue, Manifest, Record, UploadState};
use rcs_testkit::{Phone, alice_and_bob, run};

/// How many chunks a phone has written of the file it receives.
fn chunks_written(phone: &Phone) -> usize {
    phone
        .transfer_events()
        .iter()
        .filter(|event| matches!(event, TransferEvent::Write { .. }))
        .count()
}

fn is_stored(net: &mut Net, data: &[u8]) -> bool {
    let key = ContentDigest::of(data).storage_key();
    net.store.get(&key).unwrap().is_some()
}

fn verified(phone: &Phone) -> bool {
    phone
        .transfer_events()
        .iter()
        .any(|event| matches!(event, TransferEvent::Verified))
}

/// Whether the server told the phone its file will never be complete: the message aborted (a `#`
/// chunk) or the session ended with `Reason` cause 410, whichever the phone took first.
fn aborted(phone: &Phone) -> bool {
    phone.transfer_events().iter().any(|event| match event {
        TransferEvent::Aborted => true,
        TransferEvent::Ended { reason } => {
            reason.as_ref().and_then(|r| r.cause) == Some(rcs_core::service::FILE_GONE_CAUSE)
        }
        _ => false,
    })
}

/// The text of the `Reason` of the BYE that ended a phone's transfer.
fn bye_text(phone: &Phone) -> String {
    phone
        .bye_reason()
        .and_then(|reason| reason.text)
        .unwrap_or_default()
}

/// The keys under `up/` but the states of uploads that have ended (kept until the sweep).
fn live_upload_keys(net: &mut Net) -> Vec<String> {
    let keys: Vec<String> = net
        .store
        .keys_with_prefix("up/")
        .map(str::to_owned)
        .collect();
    keys.into_iter()
        .filter(|key| {
            let value = net.store.get(key).unwrap().unwrap();
            UploadState::decode(key, &value).map_or(true, |state| state.is_live())
        })
        .collect()
}

/// Raw Alice (who can announce a wrong digest, abort or vanish) and Bob's phone, registered.
fn raw_alice_and_phone_bob(net: &mut Net, delivery: Delivery) -> (User, Phone) {
    let mut alice = User::new("alice", Side::Sender, 1);
    assert_eq!(alice.register(net, None).status(), Some(200));
    let mut bob = Phone::new("bob", 2);
    bob.register(net, Some(delivery));
    (alice, bob)
}

fn cut_through(delivery: Delivery) {
    let mut net = Net::default();
    let (mut alice, mut bob) = alice_and_bob(&mut net, delivery);
    let data = file_bytes(4 << 20, 40);
    alice.send_file(&bob.aor(), "film.mp4", "video/mp4", &data);
    run(&mut net, &mut [&mut alice, &mut bob], |phones| {
        chunks_written(phones[1]) >= 8
    });
    assert_eq!(alice.report(), None, "Alice is still uploading");
    assert!(!is_stored(&mut net, &data), "the file is not published yet");
    run(&mut net, &mut [&mut alice, &mut bob], |_| false);
    assert!(bob.written == data[..], "byte-identical");
    assert!(verified(&bob), "the announced digest matches");
    assert_eq!(alice.report(), Some(200), "the sender AS stored the file");
    let cause = alice.bye_reason().and_then(|reason| reason.cause);
    assert_eq!(cause, Some(202), "the receiver AS took the first value");
    assert_eq!(net.peer_messages.len(), 2, "one first value and its answer");
    // Whenever Bob caught up with the stored bytes, the sender AS woke his delivery as more
    // arrived: a few notices at most, none carrying the file.
    assert!(
        net.progress_hops <= data.len() / (8 * 64 * 1024) + 2,
        "{} notices",
        net.progress_hops
    );
    assert!(net.progress_hop_bytes <= net.progress_hops * 2048);
    assert!(
        is_stored(&mut net, &data),
        "the file stays for the HTTP link"
    );
    assert_eq!(net.store.keys_with_prefix("msrp/").count(), 0);
}

#[test]
fn bob_receives_a_pushed_file_while_alice_is_still_uploading_it() {
    cut_through(Delivery::Push);
}

#[test]
fn bob_pulls_a_file_while_alice_is_still_uploading_it() {
    cut_through(Delivery::Pull);
}

#[test]
fn a_file_that_does_not_hash_to_its_digest_ends_bobs_transfer_and_leaves_the_stored_file() {
    let mut net = Net::default();
    let (mut alice, mut bob) = raw_alice_and_phone_bob(&mut net, Delivery::Push);
    // A stored file whose digest Alice then claims for other bytes.
    let genuine = file_bytes(300_000, 41);
    let mut carol = User::new("carol", Side::Sender, 3);
    assert_eq!(carol.register(&mut net, None).status(), Some(200));
    let mut dave = User::new("dave", Side::Receiver, 4);
    assert_eq!(dave.register(&mut net, Some("pull")).status(), Some(200));
    FileSender::new(&genuine).send(&mut net, &mut carol, &dave.aor);
    let stored = Manifest::decode(
        &ContentDigest::of(&genuine).storage_key(),
        &net.store
            .get(&ContentDigest::of(&genuine).storage_key())
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    // Alice announces a digest her bytes do not hash to.
    let data = file_bytes(1 << 20, 42);
    let claimed = ContentDigest::of(b"bytes nobody sends");
    let mut first = FileSender::new(&data);
    first.announce = Some(claimed);
    first.stop_after = Some(512 * 1024);
    first.send(&mut net, &mut alice, &bob.aor());
    run(&mut net, &mut [&mut bob], |_| false);
    assert!(chunks_written(&bob) >= 4, "Bob had the start of the file");
    let mut rest = FileSender::new(&data);
    rest.announce = Some(claimed);
    alice.reconnect();
    assert_eq!(alice.register(&mut net, None).status(), Some(200));
    let upload = rest.send(&mut net, &mut alice, &bob.aor());
    assert_eq!(
        upload.report,
        Some(400),
        "Alice is told the digest is wrong"
    );
    run(&mut net, &mut [&mut bob], |_| false);
    assert!(aborted(&bob), "the message is aborted, so Bob drops it");
    assert!(!verified(&bob));
    assert!(bye_text(&bob).contains("announced"), "{}", bye_text(&bob));
    assert!(
        bob.written[data.len() - 1000..] != data[data.len() - 1000..],
        "the end of the file never went out"
    );
    assert!(!is_stored(&mut net, &data));
    let deliveries = net.store.keys_with_prefix("msrp/r").count();
    assert_eq!(deliveries, 1, "Bob's delivery is over; Dave's offer waits");
    // Nothing of the failed upload is left but its state, marked ended; the other file is whole.
    let chunks = live_upload_keys(&mut net);
    assert!(
        chunks
            .iter()
            .all(|key| key.starts_with(&format!("up/{}/", stored.chunks))),
        "{chunks:?}"
    );
    assert_eq!(chunks.len() as u64, stored.chunk_count());
}

#[test]
fn a_file_whose_digest_is_stored_already_is_not_delivered_before_its_bytes_prove_it() {
    let mut net = Net::default();
    let (mut alice, mut bob) = raw_alice_and_phone_bob(&mut net, Delivery::Push);
    let secret = file_bytes(300_000, 43);
    let mut carol = User::new("carol", Side::Sender, 3);
    assert_eq!(carol.register(&mut net, None).status(), Some(200));
    let mut dave = User::new("dave", Side::Receiver, 4);
    assert_eq!(dave.register(&mut net, Some("pull")).status(), Some(200));
    FileSender::new(&secret).send(&mut net, &mut carol, &dave.aor);
    // Alice knows the digest and size of Carol's file, not its bytes.
    let guess = file_bytes(300_000, 44);
    let mut sender = FileSender::new(&guess);
    sender.announce = Some(ContentDigest::of(&secret));
    sender.stop_after = Some(128 * 1024);
    sender.send(&mut net, &mut alice, &bob.aor());
    run(&mut net, &mut [&mut bob], |_| false);
    assert!(
        bob.offers().is_empty(),
        "nothing is offered before the upload completes"
    );
    assert_eq!(chunks_written(&bob), 0);
}

/// Alice stops sending midway in her client (`stop_sending`): her message ends with a `#` chunk,
/// her session ends with cause 487, Bob's with the reason, and nothing of the upload stays.
fn alice_stops_sending_midway(delivery: Delivery) {
    let mut net = Net::default();
    let (mut alice, mut bob) = alice_and_bob(&mut net, delivery);
    let data = file_bytes(4 << 20, 46);
    let id = alice.send_file(&bob.aor(), "film.mp4", "video/mp4", &data);
    run(&mut net, &mut [&mut alice, &mut bob], |phones| {
        chunks_written(phones[1]) >= 8
    });
    assert!(alice.ua.stop_sending(id).unwrap(), "it is not too late");
    run(&mut net, &mut [&mut alice, &mut bob], |_| false);
    let alice_reason = alice.bye_reason();
    assert_eq!(alice_reason.as_ref().and_then(|r| r.cause), Some(487));
    assert!(bye_text(&alice).contains("aborted"), "{alice_reason:?}");
    assert_eq!(alice.report(), None, "no success REPORT for a stopped file");
    assert!(aborted(&bob), "the message is aborted, so Bob drops it");
    assert!(bye_text(&bob).contains("aborted"), "{}", bye_text(&bob));
    assert!(!verified(&bob));
    assert!(!alice.ua.has_transfers() && !bob.ua.has_transfers());
    assert!(!is_stored(&mut net, &data));
    assert_eq!(live_upload_keys(&mut net), Vec::<String>::new());
    assert_eq!(net.store.keys_with_prefix("msrp/").count(), 0);
}

#[test]
fn alice_stopping_a_push_midway_ends_bobs_transfer_with_the_reason() {
    alice_stops_sending_midway(Delivery::Push);
}

#[test]
fn alice_stopping_a_pull_midway_ends_bobs_transfer_with_the_reason() {
    alice_stops_sending_midway(Delivery::Pull);
}

#[test]
fn alice_stopping_before_her_offer_is_answered_sends_nothing() {
    let mut net = Net::default();
    let (mut alice, mut bob) = alice_and_bob(&mut net, Delivery::Push);
    let data = file_bytes(1 << 20, 47);
    let id = alice.send_file(&bob.aor(), "film.mp4", "video/mp4", &data);
    assert!(alice.ua.stop_sending(id).unwrap());
    run(&mut net, &mut [&mut alice, &mut bob], |_| false);
    assert_eq!(alice.bye_reason().and_then(|r| r.cause), Some(487));
    let asked: Vec<_> = alice
        .transfer_events()
        .into_iter()
        .filter(|event| matches!(event, TransferEvent::NeedBytes { .. }))
        .collect();
    assert!(asked.is_empty(), "no bytes were asked for: {asked:?}");
    assert_eq!(chunks_written(&bob), 0);
    assert!(!alice.ua.has_transfers() && !bob.ua.has_transfers());
    assert_eq!(live_upload_keys(&mut net), Vec::<String>::new());
}

#[test]
fn stopping_a_file_whose_bytes_are_all_sent_is_too_late() {
    let mut net = Net::default();
    let (mut alice, mut bob) = alice_and_bob(&mut net, Delivery::Push);
    let data = file_bytes(1 << 20, 48);
    let id = alice.send_file(&bob.aor(), "film.mp4", "video/mp4", &data);
    let size = data.len() as u64;
    // Until Alice has sent her last chunk, before she reads its answer.
    let last_sent = |alice: &Phone| {
        alice
            .transfer_events()
            .iter()
            .any(|event| matches!(event, TransferEvent::NeedBytes { range } if range.end == size))
    };
    loop {
        alice.flush(&mut net);
        if last_sent(&alice) {
            break;
        }
        let moved = alice.receive(&mut net) | bob.flush(&mut net) | bob.receive(&mut net);
        assert!(moved, "the upload stalled");
    }
    assert!(alice.report().is_none(), "the upload is not over yet");
    assert!(!alice.ua.stop_sending(id).unwrap(), "every byte is sent");
    run(&mut net, &mut [&mut alice, &mut bob], |_| false);
    assert!(bob.written == data[..] && verified(&bob));
    assert_eq!(alice.report(), Some(200));
}

#[test]
fn alice_aborting_ends_bobs_transfer_with_the_reason() {
    let mut net = Net::default();
    let (mut alice, mut bob) = raw_alice_and_phone_bob(&mut net, Delivery::Push);
    let data = file_bytes(1 << 20, 45);
    let mut first = FileSender::new(&data);
    first.stop_after = Some(512 * 1024);
    first.send(&mut net, &mut alice, &bob.aor());
    run(&mut net, &mut [&mut bob], |_| false);
    assert!(chunks_written(&bob) >= 4, "Bob had the start of the file");
    alice.reconnect();
    assert_eq!(alice.register(&mut net, None).status(), Some(200));
    let mut rest = FileSender::new(&data);
    rest.abort_after = Some(0);
    let upload = rest.send(&mut net, &mut alice, &bob.aor());
    assert!(
        upload
            .bye_reason
            .as_deref()
            .is_some_and(|reason| reason.contains("aborted")),
        "{:?}",
        upload.bye_reason
    );
    run(&mut net, &mut [&mut bob], |_| false);
    assert!(aborted(&bob), "the message is aborted, so Bob drops it");
    assert!(bye_text(&bob).contains("aborted"), "{}", bye_text(&bob));
    assert!(!verified(&bob));
    assert_eq!(
        live_upload_keys(&mut net),
        Vec::<String>::new(),
        "the upload is discarded"
    );
    assert_eq!(net.store.keys_with_prefix("msrp/r").count(), 0);
}

#[test]
fn alice_resuming_lets_bobs_delivery_go_on() {
    // Alice drops mid-upload while Bob receives, then resumes: Bob gets the whole file over the
    // same delivery.
    let mut net = Net::default();
    let (mut alice, mut bob) = raw_alice_and_phone_bob(&mut net, Delivery::Push);
    let data = file_bytes(2 << 20, 46);
    let mut first = FileSender::new(&data);
    first.stop_after = Some(700_000);
    first.send(&mut net, &mut alice, &bob.aor());
    run(&mut net, &mut [&mut bob], |_| false);
    let before = chunks_written(&bob);
    assert!(before >= 8, "Bob received while Alice was sending");
    alice.reconnect();
    assert_eq!(alice.register(&mut net, None).status(), Some(200));
    let resumed = FileSender::new(&data).send(&mut net, &mut alice, &bob.aor());
    assert!(resumed.resumed_from > 0);
    assert_eq!(resumed.report, Some(200));
    run(&mut net, &mut [&mut bob], |_| false);
    assert!(bob.written == data[..], "byte-identical");
    assert!(verified(&bob));
    assert_eq!(
        bob.offers().len(),
        1,
        "the resumed upload is not offered again"
    );
}

#[test]
fn alice_vanishing_ends_bobs_transfer_once_her_upload_is_given_up() {
    let mut sender = rcs_testkit::server_config("sender-as.example.com");
    sender.layout.upload_lifetime_secs = 600;
    let mut net = Net::new(
        sender,
        rcs_testkit::server_config("receiver-as.example.com"),
    );
    let (mut alice, mut bob) = raw_alice_and_phone_bob(&mut net, Delivery::Push);
    let data = file_bytes(1 << 20, 47);
    let mut gone = FileSender::new(&data);
    gone.stop_after = Some(300_000);
    gone.send(&mut net, &mut alice, &bob.aor());
    run(&mut net, &mut [&mut bob], |_| false);
    assert!(chunks_written(&bob) >= 4, "Bob had the start of the file");
    net.now = net.now.plus_secs(300);
    net.fire_due_timers();
    run(&mut net, &mut [&mut bob], |_| false);
    assert!(bob.bye_reason().is_none(), "Alice may still come back");
    net.now = net.now.plus_secs(302);
    // Bob's phone keeps its registration up meanwhile.
    bob.register(&mut net, Some(Delivery::Push));
    assert!(net.fire_due_timers() > 0, "the delivery's timer fires");
    run(&mut net, &mut [&mut bob], |_| false);
    let reason = bye_text(&bob);
    assert!(reason.contains("stopped sending"), "{reason}");
    assert_eq!(net.store.keys_with_prefix("msrp/r").count(), 0);
}

#[test]
fn bob_reconnecting_while_alice_uploads_resumes_where_he_was() {
    let mut net = Net::default();
    let (mut alice, mut bob) = raw_alice_and_phone_bob(&mut net, Delivery::Pull);
    let data = file_bytes(2 << 20, 48);
    let mut first = FileSender::new(&data);
    first.stop_after = Some(1 << 20);
    first.send(&mut net, &mut alice, &bob.aor());
    run(&mut net, &mut [&mut bob], |phones| {
        chunks_written(phones[0]) >= 4
    });
    bob.reconnect_msrp(&mut net);
    bob.ua.msrp_connected();
    run(&mut net, &mut [&mut bob], |_| false);
    alice.reconnect();
    assert_eq!(alice.register(&mut net, None).status(), Some(200));
    FileSender::new(&data).send(&mut net, &mut alice, &bob.aor());
    run(&mut net, &mut [&mut bob], |_| false);
    assert!(bob.written == data[..], "byte-identical");
    assert!(verified(&bob));
}

#[test]
fn a_raw_pull_of_a_file_still_arriving_takes_what_is_stored_then_the_rest() {
    let mut net = Net::default();
    let mut alice = User::new("alice", Side::Sender, 1);
    assert_eq!(alice.register(&mut net, None).status(), Some(200));
    let mut bob = User::new("bob", Side::Receiver, 2);
    assert_eq!(bob.register(&mut net, Some("pull")).status(), Some(200));
    let data = file_bytes(1 << 20, 49);
    // The offer comes as the upload starts; Alice finishes before Bob asks.
    FileSender::new(&data).send(&mut net, &mut alice, &bob.aor);
    let received = FileReceiver::default().pull(&mut net, &mut bob);
    assert!(received.data == data[..]);
}

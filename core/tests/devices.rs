//! Several devices of one user registered at once (RFC 5626 `+sip.instance`): a push is forked to
//! every device and the first to accept gets the file while the others are cancelled with the
//! reason (RFC 3326); pull offers and chats reach every device; a device that disconnects takes
//! only its own binding away, and the same device registering again replaces its own binding.

use bytes::Bytes;
use rcs_core::client::{Event, TransferEvent};
use rcs_core::server::common::Registration;
use rcs_core::service::{Delivery, Side};
use rcs_core::store::{KeyValue, Record, keys};
use rcs_testkit::{Net, Phone, run};

fn file_bytes(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect::<Vec<u8>>()
        .into()
}

/// Alice, and Bob on his laptop and his phone, all registered (Bob's devices with `delivery`).
fn alice_and_bobs_devices(net: &mut Net, delivery: Delivery) -> (Phone, Phone, Phone) {
    let mut alice = Phone::new("alice", 1);
    let mut laptop = Phone::device("bob", "laptop", 2);
    let mut phone = Phone::device("bob", "phone", 3);
    alice.register(net, None);
    laptop.register(net, Some(delivery));
    phone.register(net, Some(delivery));
    (alice, laptop, phone)
}

fn registration(net: &mut Net, aor: &str) -> Registration {
    let key = keys::registration(aor);
    let value = net.store.get(&key).unwrap().unwrap();
    Registration::decode(&key, &value).unwrap()
}

fn ended_reason(phone: &Phone) -> Option<(Option<u16>, Option<String>)> {
    phone.transfer_events().into_iter().find_map(|e| match e {
        TransferEvent::Ended { reason } => {
            let reason = reason.as_ref()?;
            Some((reason.cause, reason.text.clone()))
        }
        _ => None,
    })
}

fn verified(phone: &Phone) -> bool {
    phone
        .transfer_events()
        .iter()
        .any(|e| matches!(e, TransferEvent::Verified))
}

#[test]
fn both_devices_are_registered_under_one_record_with_their_instances() {
    let mut net = Net::default();
    let (_alice, laptop, phone) = alice_and_bobs_devices(&mut net, Delivery::Push);
    let registered = registration(&mut net, &laptop.aor());
    assert_eq!(registered.devices.len(), 2);
    assert_eq!(registered.devices[0].connection, laptop.sip);
    assert_eq!(registered.devices[1].connection, phone.sip);
    assert!(registered.devices.iter().all(|d| {
        d.instance
            .as_deref()
            .is_some_and(|i| i.starts_with("<urn:uuid:"))
    }));
    assert_ne!(
        registered.devices[0].instance,
        registered.devices[1].instance
    );
    // The servers share it: there is no registration per server any more.
    assert_eq!(net.store.keys_with_prefix("reg/").count(), 2);
}

#[test]
fn a_push_reaches_both_devices_the_first_to_accept_gets_it_and_the_other_is_cancelled() {
    let mut net = Net::default();
    let (mut alice, mut laptop, mut phone) = alice_and_bobs_devices(&mut net, Delivery::Push);
    // The phone rings and is not answered; the laptop accepts.
    phone.accept_from = None;
    let data = file_bytes(300_000, 5);
    alice.send_file(&laptop.aor(), "a.bin", "application/octet-stream", &data);
    run(&mut net, &mut [&mut alice, &mut laptop, &mut phone], |_| {
        false
    });
    assert!(laptop.written == data[..], "byte-identical on the laptop");
    assert!(verified(&laptop));
    assert_eq!(
        phone.offers().len(),
        1,
        "the phone was offered the file too"
    );
    assert_eq!(
        ended_reason(&phone),
        Some((Some(200), Some("Call completed elsewhere".to_owned()))),
        "{:?}",
        phone.transfer_events()
    );
    assert!(!verified(&phone) && !phone.ua.has_transfers());
    assert_eq!(alice.report(), Some(200));
    assert_eq!(alice.bye_reason().and_then(|r| r.cause), Some(202));
    // Only the first value crossed between the servers for the file; the laptop's answer went to
    // the receiver AS as one device hop.
    assert_eq!(net.peer_messages.len(), 2);
    assert!(net.device_hops >= 1);
}

#[test]
fn a_device_that_accepts_after_another_is_told_it_was_answered_elsewhere() {
    let mut net = Net::default();
    let (mut alice, mut laptop, mut phone) = alice_and_bobs_devices(&mut net, Delivery::Push);
    let data = file_bytes(200_000, 6);
    alice.send_file(&laptop.aor(), "a.bin", "application/octet-stream", &data);
    run(&mut net, &mut [&mut alice, &mut laptop, &mut phone], |_| {
        false
    });
    // Both accepted at once; the laptop's answer came first.
    assert!(laptop.written == data[..] && verified(&laptop));
    assert!(!verified(&phone));
    assert_eq!(
        ended_reason(&phone),
        Some((Some(200), Some("Call completed elsewhere".to_owned()))),
        "{:?}",
        phone.transfer_events()
    );
    assert!(!phone.ua.has_transfers());
    assert_eq!(alice.bye_reason().and_then(|r| r.cause), Some(202));
}

#[test]
fn a_pull_offer_reaches_both_devices_and_the_one_that_asks_gets_the_file() {
    let mut net = Net::default();
    let (mut alice, mut laptop, mut phone) = alice_and_bobs_devices(&mut net, Delivery::Pull);
    phone.accept_from = None;
    let data = file_bytes(250_000, 7);
    alice.send_file(&laptop.aor(), "a.bin", "application/octet-stream", &data);
    run(&mut net, &mut [&mut alice, &mut laptop, &mut phone], |_| {
        false
    });
    assert_eq!(phone.offers().len(), 1);
    assert_eq!(laptop.offers().len(), 1);
    assert!(laptop.written == data[..] && verified(&laptop));
    // The download request crossed as a device hop.
    assert!(net.device_hops >= 1);
}

#[test]
fn a_chat_reaches_every_device() {
    let mut net = Net::default();
    let (mut alice, mut laptop, mut phone) = alice_and_bobs_devices(&mut net, Delivery::Push);
    let chat = alice.chat(&laptop.aor(), "hello both");
    run(&mut net, &mut [&mut alice, &mut laptop, &mut phone], |_| {
        false
    });
    assert_eq!(alice.chat_status(chat), Some(202));
    assert_eq!(laptop.chats(), ["hello both"]);
    assert_eq!(phone.chats(), ["hello both"]);
    // And either device answers over its one SIP connection.
    let back = phone.chat(&alice.aor(), "from the phone");
    run(&mut net, &mut [&mut alice, &mut laptop, &mut phone], |_| {
        false
    });
    assert_eq!(phone.chat_status(back), Some(202));
    assert_eq!(alice.chats(), ["from the phone"]);
}

#[test]
fn a_device_that_disconnects_removes_its_own_binding_only() {
    let mut net = Net::default();
    let (mut alice, mut laptop, mut phone) = alice_and_bobs_devices(&mut net, Delivery::Push);
    net.disconnect(Side::Sender, &laptop.sip.clone());
    let registered = registration(&mut net, &phone.aor());
    assert_eq!(registered.devices.len(), 1);
    assert_eq!(registered.devices[0].connection, phone.sip);
    let chat = alice.chat(&phone.aor(), "still there?");
    run(&mut net, &mut [&mut alice, &mut phone], |_| false);
    assert_eq!(alice.chat_status(chat), Some(202));
    assert_eq!(phone.chats(), ["still there?"]);
    assert!(laptop.chats().is_empty());
    // With both gone, Bob is offline.
    net.disconnect(Side::Sender, &phone.sip.clone());
    let chat = alice.chat(&phone.aor(), "anyone?");
    run(&mut net, &mut [&mut alice], |_| false);
    assert_eq!(alice.chat_status(chat), Some(480));
    laptop.flush(&mut net);
}

#[test]
fn the_same_device_registering_from_a_new_connection_replaces_its_own_binding() {
    let mut net = Net::default();
    let (mut alice, mut laptop, mut phone) = alice_and_bobs_devices(&mut net, Delivery::Push);
    let old = laptop.sip.clone();
    // The laptop's connection is replaced (the old one stays open); its instance is the same.
    laptop.reconnect();
    laptop.ua.register(Some(Delivery::Push)).unwrap();
    run(&mut net, &mut [&mut laptop], |_| false);
    assert!(
        laptop
            .events
            .iter()
            .filter(|e| matches!(e, Event::Registered { .. }))
            .count()
            >= 2
    );
    let registered = registration(&mut net, &laptop.aor());
    assert_eq!(registered.devices.len(), 2, "still two devices");
    assert!(
        registered
            .devices
            .iter()
            .any(|d| d.connection == laptop.sip)
    );
    assert!(registered.devices.iter().all(|d| d.connection != old));
    let chat = alice.chat(&laptop.aor(), "where are you?");
    run(&mut net, &mut [&mut alice, &mut laptop, &mut phone], |_| {
        false
    });
    assert_eq!(alice.chat_status(chat), Some(202));
    assert_eq!(laptop.chats(), ["where are you?"]);
    assert_eq!(phone.chats(), ["where are you?"]);
    assert!(
        net.take(&old).is_empty(),
        "the old connection gets nothing more"
    );
}

#[test]
fn the_receiver_as_takes_no_chats_of_its_own() {
    let mut net = Net::default();
    let (_alice, mut laptop, _phone) = alice_and_bobs_devices(&mut net, Delivery::Push);
    // A chat handed to the receiver AS as if over the laptop's connection (the sender AS never
    // hands one over: it relays chats itself) is refused with what is allowed.
    laptop
        .ua
        .chat(
            "sip:alice@example.com",
            "text/plain",
            Bytes::from_static(b"hi"),
        )
        .unwrap();
    let Some(rcs_core::client::Output::Transmit { message, .. }) = laptop.ua.poll_output() else {
        panic!("a MESSAGE to send");
    };
    let sip = laptop.sip.clone();
    net.send(
        Side::Receiver,
        &sip,
        rcs_core::service::Protocol::Sip,
        message,
    );
    let answers = net.take(&sip);
    let answer = String::from_utf8_lossy(&answers[0]);
    assert!(answer.starts_with("SIP/2.0 405 "), "{answer}");
    assert!(answer.contains("Allow: INVITE, ACK, BYE"), "{answer}");
    assert!(
        answer.contains("chats are taken by the sender AS"),
        "{answer}"
    );
}

/// A device hop as the sender AS writes it, for `connection`, around `inner`, unsealed.
fn hop_for(connection: &str, inner: &str) -> String {
    format!(
        "MESSAGE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/TLS sender.invalid;branch=z9hG4bKhop1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=h0123\r\nTo: <sip:bob@example.com>\r\n\
         Call-ID: hop1\r\nCSeq: 1 MESSAGE\r\nRcs-Ft-Device: {connection}\r\n\
         Content-Type: message/sip\r\nContent-Length: {}\r\n\r\n{inner}",
        inner.len()
    )
}

#[test]
fn a_device_hop_the_sender_as_did_not_seal_is_refused() {
    let mut net = Net::default();
    let (_alice, laptop, _phone) = alice_and_bobs_devices(&mut net, Delivery::Push);
    let inner = "BYE sip:as.invalid SIP/2.0\r\nVia: SIP/2.0/WSS bob.invalid;branch=z9hG4bKb1\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=b1\r\n\
                 To: <sip:alice@example.com>;tag=r0000\r\nCall-ID: x1\r\nCSeq: 2 BYE\r\n\
                 Content-Length: 0\r\n\r\n";
    // Anyone who can reach /receiver/peer: no seal.
    let unsealed = hop_for(&laptop.sip, inner);
    let answer = net.peer(Bytes::from(unsealed.clone())).expect("an answer");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("SIP/2.0 403 "), "{answer}");
    // Sealed for one connection, then pointed at another.
    let mut sealed = rcs_core::sip::parse(unsealed.as_bytes(), &Default::default()).unwrap();
    let key = net.receiver.signing_keys[0].clone();
    rcs_core::server::common::seal_peer_request(&mut sealed, &key).unwrap();
    sealed
        .set_header(
            rcs_core::server::common::DEVICE_HEADER,
            "someone-elses-connection",
        )
        .unwrap();
    let answer = net.peer(sealed.to_bytes()).expect("an answer");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("SIP/2.0 403 "), "{answer}");
    // Nothing reached the laptop either way.
    assert!(net.take(&laptop.sip).is_empty());
    // Sealed as the sender AS seals it, the hop is taken, and the answer goes to the laptop.
    let mut sealed = rcs_core::sip::parse(unsealed.as_bytes(), &Default::default()).unwrap();
    rcs_core::server::common::seal_peer_request(&mut sealed, &key).unwrap();
    let answer = net.peer(sealed.to_bytes()).expect("an answer");
    assert!(String::from_utf8_lossy(&answer).starts_with("SIP/2.0 200 "));
    let answered = net.take(&laptop.sip);
    let bye_answer = String::from_utf8_lossy(&answered[0]);
    assert!(bye_answer.starts_with("SIP/2.0 481 "), "{bye_answer}");
}

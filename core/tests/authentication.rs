//! Who is who, through both servers in virtual time: SIP digest authentication of a connection
//! (RFC 3261 section 22, RFC 8760), every refusal with its status and reason, the throttle on
//! guessing, and a connection acting for its own user only.

// The raw users of the transfer tests; this file uses a few of their tools only.
#[allow(dead_code)]
mod harness;

use bytes::Bytes;
use harness::{DOMAIN, FileSender, Net, User, file_bytes, password_of};
use rcs_core::accounts::{AccountChange, CONNECTION_THROTTLE, USER_THROTTLE};
use rcs_core::client::{Event, Password};
use rcs_core::digest::{Algorithm, Challenge, NONCE_LIFETIME_SECS};
use rcs_core::msrp::Frame;
use rcs_core::sdp::SessionDescription;
use rcs_core::service::{Delivery, Side};
use rcs_core::sip::{Method, NameAddr, RequestBuilder, SipMessage, SipUri, Warning};
use rcs_testkit::{Phone, alice_and_bob, run};

/// The reason a refusal's Warning gives.
fn warning(answer: &SipMessage) -> String {
    answer
        .header("Warning")
        .and_then(Warning::parse)
        .map(|warning| warning.text)
        .unwrap_or_default()
}

/// The challenges of a 401, in order.
fn challenges(answer: &SipMessage) -> Vec<Challenge> {
    answer
        .header_values("WWW-Authenticate")
        .map(|value| Challenge::parse(value).expect("a valid challenge"))
        .collect()
}

/// `user`'s credentials for `challenge` with `password`.
fn credentials(user: &mut User, challenge: &Challenge, password: &str) -> String {
    let cnonce = user.ids.token(8);
    challenge
        .answer(
            &user.name,
            password,
            "REGISTER",
            &format!("sip:{DOMAIN}"),
            &cnonce,
            1,
        )
        .to_string()
}

/// Bob's account, and his first REGISTER's challenge.
fn challenged_bob(net: &mut Net) -> (User, SipMessage) {
    let mut bob = User::new("bob", Side::Receiver, 2);
    bob.register(net, None);
    bob.reconnect();
    let answer = bob.register_with(net, None, None);
    (bob, answer)
}

#[test]
fn a_register_without_credentials_is_challenged_for_each_algorithm_md5_first() {
    let mut net = Net::default();
    let (_, answer) = challenged_bob(&mut net);
    assert_eq!(answer.status(), Some(401));
    let offered = challenges(&answer);
    assert_eq!(
        offered.iter().map(|c| c.algorithm).collect::<Vec<_>>(),
        Algorithm::OFFERED,
        "MD5 first, for clients that take the first challenge"
    );
    for challenge in &offered {
        assert_eq!(challenge.realm, DOMAIN);
        assert!(challenge.qop_auth && !challenge.stale);
        assert_eq!(challenge.nonce, offered[0].nonce);
    }
    assert!(warning(&answer).contains("sign in"), "{}", warning(&answer));
}

#[test]
fn each_algorithm_signs_in() {
    let mut net = Net::default();
    let (mut bob, _) = challenged_bob(&mut net);
    for algorithm in Algorithm::OFFERED {
        bob.reconnect();
        let answer = bob.register_with(&mut net, None, None);
        let challenge = challenges(&answer)
            .into_iter()
            .find(|c| c.algorithm == algorithm)
            .expect("offered");
        let authorization = credentials(&mut bob, &challenge, &password_of("bob"));
        assert!(authorization.contains(&format!("algorithm={algorithm}")));
        let granted = bob.register_with(&mut net, None, Some(&authorization));
        assert_eq!(
            granted.status(),
            Some(200),
            "{algorithm}: {}",
            warning(&granted)
        );
    }
}

#[test]
fn a_wrong_password_no_password_and_an_unknown_user_are_refused_and_nothing_is_registered() {
    let mut net = Net::default();
    let (mut bob, answer) = challenged_bob(&mut net);
    let challenge = challenges(&answer).remove(0);
    let wrong = credentials(&mut bob, &challenge, "guess");
    let refused = bob.register_with(&mut net, None, Some(&wrong));
    assert_eq!(refused.status(), Some(401));
    assert_eq!(warning(&refused), "wrong user name or password");
    assert!(!challenges(&refused).is_empty(), "a fresh challenge");
    let mut carol = User::new("carol", Side::Receiver, 3);
    let answer = carol.register_with(&mut net, None, None);
    let challenge = challenges(&answer).remove(0);
    let unknown = credentials(&mut carol, &challenge, "anything");
    let refused = carol.register_with(&mut net, None, Some(&unknown));
    assert_eq!(refused.status(), Some(403));
    assert_eq!(warning(&refused), "there is no account carol");
    // Bob's first connection signed in; the refused ones registered nothing.
    let registered = net
        .store
        .keys_with_prefix("reg/")
        .map(str::to_owned)
        .collect::<Vec<_>>();
    assert_eq!(registered, ["reg/sip:bob@example.com"]);
}

#[test]
fn credentials_replayed_on_another_connection_are_refused() {
    let mut net = Net::default();
    let (mut bob, answer) = challenged_bob(&mut net);
    let challenge = challenges(&answer).remove(0);
    let authorization = credentials(&mut bob, &challenge, &password_of("bob"));
    assert_eq!(
        bob.register_with(&mut net, None, Some(&authorization))
            .status(),
        Some(200)
    );
    // Mallory captured the Authorization and sends it from her own connection.
    let mut mallory = User::new("bob", Side::Receiver, 66);
    mallory.sip = "mallory-sip".into();
    let replayed = mallory.register_with(&mut net, None, Some(&authorization));
    assert_eq!(replayed.status(), Some(401));
    assert_eq!(
        warning(&replayed),
        "the nonce was not issued for this connection"
    );
}

#[test]
fn an_expired_nonce_is_answered_stale_and_the_client_signs_in_without_asking_again() {
    let mut net = Net::default();
    let (mut bob, answer) = challenged_bob(&mut net);
    let challenge = challenges(&answer).remove(0);
    net.now = net.now.plus_secs(NONCE_LIFETIME_SECS + 1);
    let late = credentials(&mut bob, &challenge, &password_of("bob"));
    let stale = bob.register_with(&mut net, None, Some(&late));
    assert_eq!(stale.status(), Some(401));
    assert!(challenges(&stale).iter().all(|c| c.stale));
    // stale=true says the password was right: a wrong one with an old nonce is just wrong.
    let wrong_and_late = credentials(&mut bob, &challenge, "guess");
    let refused = bob.register_with(&mut net, None, Some(&wrong_and_late));
    assert_eq!(warning(&refused), "wrong user name or password");
    assert!(challenges(&refused).iter().all(|c| !c.stale));
    // The real client agent answers a stale challenge with the same password once more: its
    // answer to the first challenge arrives after the nonce expired.
    let mut phone = Phone::new("bob", 8);
    phone.sip = "bob-laptop-sip".into();
    phone.ua.register(Some(Delivery::Push)).unwrap();
    phone.flush(&mut net);
    net.now = net.now.plus_secs(NONCE_LIFETIME_SECS + 1);
    run(&mut net, &mut [&mut phone], |_| false);
    assert!(
        matches!(phone.events.as_slice(), [Event::Registered { .. }]),
        "{:?}",
        phone.events
    );
}

#[test]
fn a_connection_acts_for_the_user_it_proved_only() {
    let mut net = Net::default();
    let (mut alice, bob) = alice_and_bob(&mut net, Delivery::Push);
    // A REGISTER for bob on alice's signed-in connection.
    let mut posing = User::new("bob", Side::Sender, 40);
    posing.sip = alice.sip.clone();
    let answer = posing.register_with(&mut net, None, None);
    assert_eq!(answer.status(), Some(403));
    assert_eq!(
        warning(&answer),
        "this connection is authenticated as sip:alice@example.com"
    );
    // A MESSAGE and an INVITE from bob on alice's connection.
    assert_eq!(
        posing.chat(&mut net, &alice.aor(), "it's me, bob").status(),
        Some(403)
    );
    let data = file_bytes(1000, 3);
    let upload = FileSender::new(&data).send(&mut net, &mut posing, &alice.aor());
    assert_eq!(upload.answer.status(), Some(403));
    // Alice's own traffic still flows.
    let chat = alice.chat(&bob.aor(), "hi");
    let mut bob = bob;
    run(&mut net, &mut [&mut alice, &mut bob], |_| false);
    assert_eq!(alice.chat_status(chat), Some(202));
}

#[test]
fn a_connection_that_has_not_signed_in_gets_nothing_but_the_challenge() {
    let mut net = Net::default();
    let (alice, mut bob) = alice_and_bob(&mut net, Delivery::Push);
    let mut stranger = User::new("alice", Side::Sender, 50);
    stranger.sip = "stranger-sip".into();
    let answer = stranger.chat(&mut net, &bob.aor(), "hello from nobody");
    assert_eq!(answer.status(), Some(401));
    assert!(!challenges(&answer).is_empty());
    run(&mut net, &mut [&mut bob], |_| false);
    assert!(bob.chats().is_empty());
    assert_eq!(alice.chats(), Vec::<String>::new());
}

#[test]
fn guessing_is_throttled_and_the_real_user_gets_in_once_the_lockout_passes() {
    let mut net = Net::default();
    let (mut bob, answer) = challenged_bob(&mut net);
    let mut challenge = challenges(&answer).remove(0);
    for guess in 1..USER_THROTTLE.failures {
        let wrong = credentials(&mut bob, &challenge, &format!("guess {guess}"));
        let refused = bob.register_with(&mut net, None, Some(&wrong));
        assert_eq!(refused.status(), Some(401), "guess {guess}");
        challenge = challenges(&refused).remove(0);
    }
    let wrong = credentials(&mut bob, &challenge, "last guess");
    let locked = bob.register_with(&mut net, None, Some(&wrong));
    assert_eq!(locked.status(), Some(403));
    assert_eq!(
        locked.header("Retry-After"),
        Some(USER_THROTTLE.lockout_secs.to_string().as_str())
    );
    assert!(warning(&locked).contains("too many failed sign-ins"));
    // While locked, even the right password is refused, from any connection.
    let mut real = Phone::new("bob", 9);
    real.sip = "bob-laptop-sip".into();
    real.ua.register(Some(Delivery::Push)).unwrap();
    run(&mut net, &mut [&mut real], |_| false);
    let refusal = real
        .events
        .iter()
        .find_map(|e| match e {
            Event::RegistrationFailed(refusal) => Some(refusal.clone()),
            _ => None,
        })
        .expect("refused while locked");
    assert_eq!(refusal.status, 403);
    assert!(refusal.reason.contains("too many failed sign-ins"));
    // Once the lockout has passed, the real user gets in.
    net.now = net.now.plus_secs(USER_THROTTLE.lockout_secs);
    real.register(&mut net, Some(Delivery::Push));
}

#[test]
fn a_connection_that_keeps_guessing_user_names_is_locked() {
    let mut net = Net::default();
    let mut guesser = User::new("nobody", Side::Sender, 70);
    let mut last = None;
    for n in 0..CONNECTION_THROTTLE.failures {
        guesser.name = format!("guess{n}");
        guesser.aor = format!("sip:guess{n}@{DOMAIN}");
        let answer = guesser.register_with(&mut net, None, None);
        let challenge = challenges(&answer).remove(0);
        let authorization = credentials(&mut guesser, &challenge, "pw");
        last = Some(guesser.register_with(&mut net, None, Some(&authorization)));
    }
    let locked = last.expect("an answer");
    assert_eq!(locked.status(), Some(403));
    assert_eq!(
        locked.header("Retry-After"),
        Some(CONNECTION_THROTTLE.lockout_secs.to_string().as_str())
    );
}

#[test]
fn a_client_without_the_password_is_told_so() {
    let mut net = Net::default();
    let mut bob = Phone::new("bob", 2);
    bob.register(&mut net, None);
    let mut wrong = Phone::new("bob", 3);
    wrong.sip = "bob-laptop-sip".into();
    wrong.ua.set_password(Password::new("not bob's"));
    wrong.ua.register(None).unwrap();
    run(&mut net, &mut [&mut wrong], |_| false);
    let refusal = wrong
        .events
        .iter()
        .find_map(|e| match e {
            Event::RegistrationFailed(refusal) => Some(refusal.clone()),
            _ => None,
        })
        .expect("refused");
    assert_eq!(refusal.status, 401);
    assert_eq!(refusal.reason, "wrong user name or password");
}

#[test]
fn msrp_into_someone_elses_session_is_refused_and_stores_nothing() {
    let mut net = Net::default();
    let mut alice = User::new("alice", Side::Sender, 1);
    alice.register(&mut net, None);
    let mut bob = User::new("bob", Side::Receiver, 2);
    bob.register(&mut net, Some("push"));
    // Alice offers a file; the sender AS answers with its MSRP path, which Alice has not bound yet.
    let data = file_bytes(300_000, 5);
    let offer = FileSender::new(&data).offer(&mut alice, "alices-session");
    let invite = RequestBuilder::new(
        Method::Invite,
        SipUri::parse(&bob.aor).unwrap(),
        NameAddr::new(alice.uri()),
        NameAddr::new(SipUri::parse(&bob.aor).unwrap()),
    )
    .local_host(&alice.host)
    .contact_user(&alice.name)
    .body("application/sdp", Bytes::from(offer.to_bytes()))
    .build(&mut alice.ids)
    .unwrap();
    alice.send_sip(&mut net, &invite);
    let answer = alice.sip_inbox(&mut net).pop().expect("an answer");
    assert_eq!(answer.status(), Some(200));
    let sdp = SessionDescription::parse(answer.body()).unwrap();
    let alices_session = sdp.msrp_media().unwrap().path().unwrap()[0].clone();
    // Mallory, signed in on her own connections, writes into Alice's upload.
    let mut mallory = User::new("mallory", Side::Sender, 9);
    mallory.register(&mut net, None);
    let from = mallory.msrp_uri("m1");
    let forged = format!(
        "MSRP m1tx SEND\r\nTo-Path: {alices_session}\r\nFrom-Path: {from}\r\n\
         Message-ID: mallory-msg-1\r\nByte-Range: 1-10/300000\r\n\
         Content-Type: application/octet-stream\r\n\r\nmallory!!!\r\n-------m1tx$\r\n"
    );
    mallory.send_msrp(&mut net, vec![Bytes::from(forged)]);
    let answers = mallory.msrp_inbox(&mut net);
    assert!(
        matches!(answers.first(), Some(Frame::Response(r)) if r.code == 403),
        "{answers:?}"
    );
    let chunks = net
        .store
        .keys_with_prefix("up/")
        .filter(|key| key.matches('/').count() > 1)
        .count();
    assert_eq!(chunks, 0, "nothing of Mallory's bytes is stored");
}

#[test]
fn a_new_password_signs_out_every_connection_signed_in_with_the_old_one() {
    let mut net = Net::default();
    let (_alice, bob) = alice_and_bob(&mut net, Delivery::Push);
    // Mallory learnt Bob's password and signed in on a connection of her own.
    let mut mallory = User::new("bob", Side::Sender, 77);
    mallory.sip = "mallory-sip".into();
    assert_eq!(mallory.register(&mut net, None).status(), Some(200));
    assert_eq!(
        mallory.chat(&mut net, &bob.aor(), "as bob").status(),
        Some(202)
    );
    // Bob sets a new password: the account's generation moves on.
    let mut account = AccountChange::new("bob", DOMAIN, "bob's new password").into_account(net.now);
    account.generation = 1;
    net.create_account(account);
    let answer = mallory.chat(&mut net, &bob.aor(), "still bob?");
    assert_eq!(
        answer.status(),
        Some(401),
        "signed out: {}",
        warning(&answer)
    );
    let again = mallory.register_with(&mut net, None, None);
    assert_eq!(again.status(), Some(401), "and must prove the new password");
}

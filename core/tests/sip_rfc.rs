//! The SIP examples of RFC 7118 section 8, RFC 3261 section 24 and RFC 3428 section 4 (files under
//! `tests/data/sip/`): each parses to the expected typed values, writes back with only the documented
//! changes, and parses again to an equal message. The RFC 7118 call flow is replayed through the
//! builders and dialogs.

use std::path::PathBuf;

use bytes::Bytes;
use rcs_core::ids::{BRANCH_MAGIC_COOKIE, Entropy, TokenSource};
use rcs_core::sip::{
    self, Dialog, DialogEvent, DialogRole, DialogState, Limits, Method, NameAddr, SipMessage,
    Transport, reason_phrase, response,
};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/sip")
}

fn load(name: &str) -> Vec<u8> {
    std::fs::read(data_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn parse(name: &str) -> SipMessage {
    sip::parse(&load(name), &Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn uris(list: &[NameAddr]) -> Vec<String> {
    list.iter().map(|n| n.uri().to_string()).collect()
}

/// What the writer is documented to produce from `input`: folded lines joined with one space, `": "`
/// between name and value, Content-Length dropped from its place and written last from the body.
fn normalized(input: &[u8]) -> Vec<u8> {
    let split = input
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = std::str::from_utf8(&input[..split]).expect("utf-8");
    let body = &input[split + 4..];
    let mut lines: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            let last = lines.last_mut().expect("continuation");
            last.push(' ');
            last.push_str(line.trim_start());
        } else {
            lines.push(line.to_owned());
        }
    }
    let mut out = lines.remove(0);
    out.push_str("\r\n");
    for line in lines {
        let (name, value) = line.split_once(':').expect("colon");
        let name = name.trim_end();
        if name.eq_ignore_ascii_case("Content-Length") || name == "l" {
            continue;
        }
        out.push_str(&format!("{name}: {}\r\n", value.trim()));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    [out.as_bytes(), body].concat()
}

#[test]
fn every_example_round_trips_with_only_the_documented_changes() {
    let mut names: Vec<String> = std::fs::read_dir(data_dir())
        .expect("data dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sip"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 12, "{names:?}");
    for name in names {
        let input = load(&name);
        let message = parse(&name);
        let written = message.to_bytes();
        assert_eq!(
            String::from_utf8_lossy(&written),
            String::from_utf8_lossy(&normalized(&input)),
            "{name}"
        );
        let again = sip::parse(&written, &Limits::default()).expect("re-parse");
        assert_eq!(again, message, "{name}");
        let zero_copy = sip::parse_bytes(Bytes::from(input), &Limits::default()).expect("bytes");
        assert_eq!(zero_copy, message, "{name}");
    }
}

#[test]
fn rfc7118_register_and_its_200() {
    let register = parse("rfc7118_8.1_f3_register.sip");
    assert_eq!(*register.method(), Method::Register);
    assert_eq!(
        register.request_uri().map(ToString::to_string).as_deref(),
        Some("sip:proxy.example.com")
    );
    let via = register.via();
    assert_eq!(*via.transport(), Transport::Wss);
    assert!(via.host().is_invalid_domain());
    assert_eq!(via.host().to_string(), "df7jal23ls0d.invalid");
    assert_eq!(via.branch(), Some("z9hG4bKasudf"));
    assert_eq!(register.from().tag(), Some("65bnmj.34asd"));
    assert_eq!(register.to().tag(), None);
    assert_eq!(register.call_id(), "aiuy7k9njasd");
    assert_eq!(
        (register.cseq().seq, &register.cseq().method),
        (1, &Method::Register)
    );
    assert_eq!(register.max_forwards(), Some(70));
    assert_eq!(register.header("supported"), Some("path, outbound, gruu"));
    let contact = register.contact().expect("contact");
    assert_eq!(contact.uri().transport(), Some("ws"));
    assert!(contact.uri().host().is_invalid_domain());
    assert_eq!(contact.param("reg-id").and_then(|p| p.value()), Some("1"));
    assert_eq!(
        contact
            .param("+sip.instance")
            .and_then(|p| p.unquoted_value())
            .as_deref(),
        Some("<urn:uuid:f81-7dec-14a06cf1>")
    );
    assert!(register.body().is_empty());

    let ok = parse("rfc7118_8.1_f4_200_ok.sip");
    assert_eq!((ok.status(), ok.reason()), (Some(200), Some("OK")));
    assert_eq!(*ok.method(), Method::Register);
    assert_eq!(ok.to().tag(), Some("12isjljn8"));
    let contact = ok.contact().expect("contact");
    assert_eq!(contact.expires(), Some(3600));
    assert_eq!(
        contact
            .param("pub-gruu")
            .and_then(|p| p.unquoted_value())
            .as_deref(),
        Some("sip:alice@example.com;gr=urn:uuid:f81-7dec-14a06cf1")
    );
    assert_eq!(
        contact
            .param("temp-gruu")
            .and_then(|p| p.unquoted_value())
            .as_deref(),
        Some("sip:87ash54=3dd.98a@example.com;gr")
    );

    // The registrar's answer built from the request carries the same transaction and dialog fields.
    let mut built = response(
        &register,
        200,
        reason_phrase(200).unwrap_or("OK"),
        Some("12isjljn8"),
    )
    .expect("200");
    built
        .push_header("Supported", "outbound, gruu")
        .expect("supported");
    built
        .push_header("Contact", ok.header("Contact").expect("contact"))
        .expect("contact");
    assert_eq!(
        (built.vias(), built.from(), built.to()),
        (ok.vias(), ok.from(), ok.to())
    );
    assert_eq!((built.call_id(), built.cseq()), (ok.call_id(), ok.cseq()));
    assert_eq!(built.contacts(), ok.contacts());
}

#[test]
fn rfc7118_invite_flow_through_the_dialog() {
    let invite = parse("rfc7118_8.2_f1_invite.sip");
    assert_eq!(*invite.via().transport(), Transport::Wss);
    assert!(invite.via().host().is_invalid_domain());
    assert_eq!(
        uris(invite.routes()),
        ["sip:proxy.example.com:443;transport=ws;lr"]
    );
    let contact = invite.contact().expect("contact").uri();
    assert_eq!(
        contact.param("gr").and_then(|p| p.value()),
        Some("urn:uuid:f81-7dec-14a06cf1")
    );
    assert!(contact.param("ob").is_some());
    assert!(invite.has_content_type("application/sdp"));

    // F2: the proxy's 100 Trying is exactly what `response` builds from F1.
    let trying = parse("rfc7118_8.2_f2_100_trying.sip");
    let built = response(&invite, 100, "Trying", None).expect("100");
    assert_eq!(built, trying);

    // F3 at Bob: two Vias, the Record-Route list folded over two lines.
    let at_bob = parse("rfc7118_8.2_f3_invite_to_bob.sip");
    assert_eq!(at_bob.vias().len(), 2);
    assert_eq!(*at_bob.vias()[1].transport(), Transport::Wss);
    assert_eq!(at_bob.max_forwards(), Some(69));
    assert_eq!(
        uris(at_bob.record_routes()),
        [
            "sip:proxy.example.com;transport=udp;lr",
            "sip:h7kjh12s@proxy.example.com:443;transport=ws;lr"
        ]
    );

    // F4: Bob's 200 and the dialog Bob keeps.
    let bob_ok = parse("rfc7118_8.2_f4_200_ok.sip");
    assert_eq!(bob_ok.via().received(), Some("192.0.2.10"));
    let bob = Dialog::uas(&at_bob, &bob_ok).expect("uas");
    assert_eq!(
        (bob.role(), bob.state()),
        (DialogRole::Uas, DialogState::Confirmed)
    );
    assert_eq!(bob.remote_target(), contact);
    assert_eq!(uris(bob.route_set()), uris(at_bob.record_routes()));
    assert_eq!(
        (bob.local_tag(), bob.remote_tag()),
        ("bmqkjhsd", "asdyka899")
    );

    // F5 at Alice, then F6: the ACK Alice's dialog builds is the RFC's, but for the random branch.
    let alice_ok = parse("rfc7118_8.2_f5_200_ok.sip");
    let alice = Dialog::uac(&invite, &alice_ok).expect("uac");
    assert_eq!(alice.state(), DialogState::Confirmed);
    let ack = alice
        .ack(&mut TokenSource::new(Entropy([7; 32])))
        .expect("ack");
    let rfc_ack = parse("rfc7118_8.2_f6_ack.sip");
    assert_eq!(ack.request_uri(), rfc_ack.request_uri());
    assert_eq!(uris(ack.routes()), uris(rfc_ack.routes()));
    assert_eq!(
        uris(rfc_ack.routes()),
        [
            "sip:h7kjh12s@proxy.example.com:443;transport=ws;lr",
            "sip:proxy.example.com;transport=udp;lr"
        ]
    );
    assert_eq!((ack.from(), ack.to()), (rfc_ack.from(), rfc_ack.to()));
    assert_eq!(
        (ack.call_id(), ack.cseq()),
        (rfc_ack.call_id(), rfc_ack.cseq())
    );
    assert_eq!(ack.max_forwards(), rfc_ack.max_forwards());
    assert_eq!(ack.via().transport(), rfc_ack.via().transport());
    assert_eq!(ack.via().host(), rfc_ack.via().host());
    assert!(
        ack.via()
            .branch()
            .is_some_and(|b| b.starts_with(BRANCH_MAGIC_COOKIE))
    );
    assert_ne!(
        ack.via().branch(),
        invite.via().branch(),
        "an ACK for a 2xx is a new transaction"
    );

    // The proxy relays that ACK to Bob (top Route consumed, its own Via on top): Bob's dialog takes it.
    let mut relayed = rfc_ack.clone();
    relayed.remove_header("Route").expect("route");
    let mut bob = bob;
    assert_eq!(bob.on_request(&relayed), Ok(DialogEvent::Ack));
}

#[test]
fn rfc3261_and_rfc3428_examples() {
    let register = parse("rfc3261_24.1_register.sip");
    assert_eq!(*register.via().transport(), Transport::Udp);
    assert_eq!(register.via().sent_by(), "bobspc.biloxi.com:5060");
    assert_eq!(register.to().display_name(), Some("Bob"));
    assert_eq!(register.expires(), Some(7200));
    assert_eq!(register.cseq().seq, 1826);
    assert_eq!(register.call_id(), "843817637684230@998sdasdh09");

    let ok = parse("rfc3261_24.1_register_200_ok.sip");
    assert_eq!(ok.via().received(), Some("192.0.2.4"));
    let built = response(&register, 200, "OK", Some("2493k59kd")).expect("200");
    assert_eq!(
        (built.from(), built.to(), built.cseq()),
        (ok.from(), ok.to(), ok.cseq())
    );

    let bye = parse("rfc3261_24.2_f13_bye.sip");
    assert_eq!(*bye.method(), Method::Bye);
    assert_eq!(
        (bye.from().tag(), bye.to().tag()),
        (Some("a6c85cf"), Some("1928301774"))
    );
    assert_eq!(bye.cseq().seq, 231);

    let message = parse("rfc3428_4_message.sip");
    assert_eq!(*message.method(), Method::Message);
    assert_eq!(*message.via().transport(), Transport::Tcp);
    assert!(message.has_content_type("text/plain"));
    assert_eq!(message.body().as_ref(), b"Watson, come here.");
    assert_eq!(message.content_length(), 18);
    assert!(message.contact().is_none());
}

#[test]
fn rfc_examples_spoiled_give_typed_errors() {
    let message = load("rfc3428_4_message.sip");
    let head = message.len() - 18;
    // Cut anywhere in the headers: truncated. Cut in the body: Content-Length contradicts it.
    assert_eq!(
        sip::parse(&message[..head - 3], &Limits::default()),
        Err(sip::SipError::Truncated { len: head - 3 })
    );
    assert_eq!(
        sip::parse(&message[..head + 6], &Limits::default()),
        Err(sip::SipError::ContentLengthMismatch {
            declared: 18,
            actual: 6
        })
    );
    let limits = Limits {
        max_message_bytes: 100,
        ..Limits::default()
    };
    assert_eq!(
        sip::parse(&message, &limits),
        Err(sip::SipError::MessageTooLarge {
            size: message.len(),
            limit: 100
        })
    );
    let without_cseq = String::from_utf8(load("rfc3261_24.2_f13_bye.sip"))
        .expect("utf-8")
        .replace("CSeq: 231 BYE\r\n", "");
    assert_eq!(
        sip::parse(without_cseq.as_bytes(), &Limits::default()),
        Err(sip::SipError::MissingHeader { header: "CSeq" })
    );
    let mut latin1 = load("rfc3261_24.2_f13_bye.sip");
    let at = latin1.windows(3).position(|w| w == b"Bob").expect("Bob");
    latin1[at + 1] = 0xf6; // "Böb" in Latin-1
    assert_eq!(
        sip::parse(&latin1, &Limits::default()),
        Err(sip::SipError::NotUtf8 { offset: at + 1 })
    );
}

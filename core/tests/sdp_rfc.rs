//! The SDP examples of RFC 5547 section 9, RFC 4975 section 11.1 and RFC 7977 section 8, copied
//! into `tests/data/sdp/` (see the README there): each is parsed, checked for a few typed values,
//! and written back byte for byte.

use std::path::PathBuf;

use rcs_core::sdp::{
    AnswerParams, Attribute, Connection, Direction, OfferRejection, SdpError, SessionDescription,
    answer,
};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/sdp")
}

fn load(name: &str) -> Vec<u8> {
    let bytes = std::fs::read(data_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        bytes.windows(2).filter(|w| w == b"\r\n").count()
            == bytes.iter().filter(|&&b| b == b'\n').count(),
        "{name}: every line must end with CRLF"
    );
    bytes
}

/// Parses a complete body and checks that it is written back byte for byte.
fn parse_complete(name: &str) -> SessionDescription {
    let bytes = load(name);
    let sdp = SessionDescription::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(sdp.to_bytes(), bytes, "{name}: round trip");
    assert_eq!(
        SessionDescription::parse(&sdp.to_bytes()).as_ref(),
        Ok(&sdp),
        "{name}: reparse"
    );
    sdp
}

/// The session part put in front of RFC 7977's fragments, which show only the `c=`, `m=` and `a=`
/// lines "that could be included" in an SDP body.
const FRAGMENT_HEAD: &str = "v=0\r\no=- 0 0 IN IP4 example.invalid\r\ns=-\r\n";

/// Parses an RFC 7977 fragment: alone it is not a body; behind a session part it round-trips.
fn parse_fragment(name: &str) -> SessionDescription {
    let bytes = load(name);
    assert_eq!(
        SessionDescription::parse(&bytes),
        Err(SdpError::MissingLine {
            line: 1,
            expected: 'v'
        }),
        "{name}: a fragment is not a body"
    );
    let mut body = FRAGMENT_HEAD.as_bytes().to_vec();
    body.extend_from_slice(&bytes);
    let sdp = SessionDescription::parse(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(sdp.to_bytes(), body, "{name}: round trip");
    sdp
}

const FILES: &[&str] = &[
    "rfc4975-11.1-answer.sdp",
    "rfc4975-11.1-offer.sdp",
    "rfc5547-9.1-push-answer.sdp",
    "rfc5547-9.1-push-offer.sdp",
    "rfc5547-9.2-pull-answer.sdp",
    "rfc5547-9.2-pull-offer.sdp",
    "rfc5547-9.2-second-push-answer.sdp",
    "rfc5547-9.2-second-push-offer.sdp",
    "rfc5547-9.3-capability.sdp",
    "rfc7977-8.2.1-answer.sdp",
    "rfc7977-8.2.1-offer.sdp",
    "rfc7977-8.3.1-answer.sdp",
    "rfc7977-8.3.1-offer.sdp",
    "rfc7977-8.4.1-answer.sdp",
    "rfc7977-8.4.1-offer.sdp",
];

#[test]
fn every_example_file_round_trips() {
    let mut on_disk: Vec<String> = std::fs::read_dir(data_dir())
        .expect("data dir")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".sdp"))
        .collect();
    on_disk.sort();
    assert_eq!(on_disk, FILES, "every example file is listed here");
    for name in FILES {
        if name.starts_with("rfc7977") {
            parse_fragment(name);
        } else {
            parse_complete(name);
        }
    }
}

const SHA1_PICTURE: [u8; 20] = [
    0x72, 0x24, 0x5F, 0xE8, 0x65, 0x3D, 0xDA, 0xF3, 0x71, 0x36, 0x2F, 0x86, 0xD4, 0x71, 0x91, 0x3E,
    0xE4, 0xA2, 0xCE, 0x2E,
];

#[test]
fn rfc5547_push_offer_and_answer() {
    let offer = parse_complete("rfc5547-9.1-push-offer.sdp");
    assert_eq!(offer.session_name, "");
    let media = offer.msrp_media().expect("m=message");
    assert_eq!((media.port, media.proto.as_str()), (7654, "TCP/MSRP"));
    assert_eq!(media.direction(), Direction::SendOnly);
    let selector = media.file_selector().expect("file-selector");
    assert_eq!(selector.name.as_deref(), Some("My cool picture.jpg"));
    assert_eq!(selector.content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(selector.size, Some(4092));
    assert_eq!(
        selector.hash("sha-1").map(|h| h.bytes.as_slice()),
        Some(&SHA1_PICTURE[..])
    );
    assert_eq!(
        media.file_transfer_id(),
        Some("Q6LMoGymJdh0IKIgD6wD0jkcfgva4xvE")
    );
    assert_eq!(media.file_disposition(), Some("render"));
    assert_eq!(
        media.file_date().and_then(|d| d.creation.as_deref()),
        Some("Mon, 15 May 2006 15:01:31 +0300")
    );
    assert_eq!(media.file_icon(), Some("cid:id2@alicepc.example.com"));
    assert_eq!(
        media.path(),
        Some(&["msrp://alicepc.example.com:7654/jshA7we;tcp".to_owned()][..])
    );
    assert_eq!(
        media
            .other_lines
            .first()
            .map(|l| (l.kind, l.value.as_str())),
        Some(('i', "This is my latest picture"))
    );

    let answer_sdp = parse_complete("rfc5547-9.1-push-answer.sdp");
    let answered = answer_sdp.msrp_media().expect("m=message");
    assert_eq!(answered.direction(), Direction::RecvOnly);
    assert_eq!(answered.file_selector(), Some(selector));
    assert_eq!(answered.file_transfer_id(), media.file_transfer_id());
}

#[test]
fn rfc5547_pull_offer_and_answer() {
    let offer = parse_complete("rfc5547-9.2-pull-offer.sdp");
    let media = offer.msrp_media().expect("m=message");
    assert_eq!(media.direction(), Direction::RecvOnly);
    let selector = media.file_selector().expect("file-selector");
    assert_eq!((selector.name.as_ref(), selector.size), (None, None));
    assert_eq!(selector.hashes.len(), 1);
    assert_eq!(
        selector.hash("sha-1").map(|h| h.bytes.as_slice()),
        Some(&SHA1_PICTURE[..])
    );

    let answer_sdp = parse_complete("rfc5547-9.2-pull-answer.sdp");
    assert_eq!(answer_sdp.origin.session_version, 2_890_855_439);
    let answered = answer_sdp.msrp_media().expect("m=message");
    assert_eq!(answered.direction(), Direction::SendOnly);
    let answered_selector = answered.file_selector().expect("file-selector");
    assert_eq!(
        answered_selector.content_type.as_deref(),
        Some("image/jpeg")
    );
    assert_eq!(answered_selector.hashes, selector.hashes);
    assert_eq!(
        answered.file_transfer_id(),
        Some("aCQYuBRVoUPGVsFZkCK98vzcX2FXDIk2")
    );
}

#[test]
fn rfc5547_second_transfer_and_capability() {
    let offer = parse_complete("rfc5547-9.2-second-push-offer.sdp");
    let media = offer.msrp_media().expect("m=message");
    let selector = media.file_selector().expect("file-selector");
    assert_eq!(selector.name.as_deref(), Some("sunset.jpg"));
    assert_eq!(selector.size, Some(4096));
    assert_eq!(
        selector.hash("sha-1").and_then(|h| h.bytes.first()),
        Some(&0x58)
    );
    assert_eq!(
        media.file_transfer_id(),
        Some("ZVE8MfI9mhAdZ8GyiNMzNN5dpqgzQlCO")
    );
    assert_eq!(media.file_icon(), Some("cid:id3@alicepc.example.com"));
    parse_complete("rfc5547-9.2-second-push-answer.sdp");

    let capability = parse_complete("rfc5547-9.3-capability.sdp");
    let media = capability.msrp_media().expect("m=message");
    assert_eq!(media.port, 0);
    assert_eq!(media.max_size(), Some(20000));
    assert!(media.file_selector().is_some_and(|s| s.is_empty()));
    assert_eq!(
        media.attributes.last(),
        Some(&Attribute::FileSelector(Default::default()))
    );
    // A capability indication is not an offer to transfer anything.
    assert_eq!(
        answer(
            &capability,
            &bob(8888, "msrp://bobpc.example.com:8888/9di4ea;tcp")
        ),
        Err(SdpError::Rejected(OfferRejection::NoMsrpMedia))
    );
}

fn bob(port: u16, path: &str) -> AnswerParams {
    AnswerParams {
        username: "bob".into(),
        session_id: 2_890_844_656,
        session_version: 2_890_855_440,
        connection: Connection::ip4("bobpc.example.com"),
        port,
        path: vec![path.into()],
        accept_types: vec!["message/cpim".into()],
        accept_wrapped_types: vec!["*".into()],
        max_size: None,
        setup: None,
    }
}

#[test]
fn answering_the_rfc5547_offers() {
    // Answering Alice's second push offer as Bob reproduces Bob's answer of RFC 5547 figure 20, but
    // for the session name, which RFC 5547 leaves empty.
    let offer = parse_complete("rfc5547-9.2-second-push-offer.sdp");
    let mut built = answer(
        &offer,
        &bob(8888, "msrp://bobpc.example.com:8888/eh10dsk;tcp"),
    )
    .expect("answer");
    built.session_name.clear();
    assert_eq!(built.to_bytes(), load("rfc5547-9.2-second-push-answer.sdp"));

    // The pull offer is answered with sendonly and the same selector and transfer id.
    let pull = parse_complete("rfc5547-9.2-pull-offer.sdp");
    let mut params = bob(8888, "msrp://bobpc.example.com:8888/9di4ea;tcp");
    params.session_version = 2_890_855_439;
    let built = answer(&pull, &params).expect("answer");
    let media = built.msrp_media().expect("m=message");
    assert_eq!(media.direction(), Direction::SendOnly);
    assert_eq!(
        media.file_transfer_id(),
        Some("aCQYuBRVoUPGVsFZkCK98vzcX2FXDIk2")
    );
    assert_eq!(
        media.file_selector(),
        pull.msrp_media().and_then(|m| m.file_selector())
    );

    // RFC 4975's plain chat offer is not a file transfer.
    let chat = parse_complete("rfc4975-11.1-offer.sdp");
    assert_eq!(
        answer(&chat, &params),
        Err(SdpError::Rejected(OfferRejection::NoFileSelector))
    );
}

#[test]
fn rfc4975_basic_session() {
    let offer = parse_complete("rfc4975-11.1-offer.sdp");
    assert_eq!(offer.session_name, " -");
    assert_eq!(offer.origin.session_version, 2_890_844_559);
    let media = offer.msrp_media().expect("m=message");
    assert_eq!(media.accept_types(), Some(&["text/plain".to_owned()][..]));
    assert_eq!(media.direction(), Direction::SendRecv);
    assert_eq!(
        media.path(),
        Some(&["msrp://alicepc.example.com:7777/iau39soe2843z;tcp".to_owned()][..])
    );
    let answer_sdp = parse_complete("rfc4975-11.1-answer.sdp");
    assert_eq!(answer_sdp.msrp_media().map(|m| m.port), Some(8888));
}

#[test]
fn rfc7977_websocket_paths() {
    for name in [
        "rfc7977-8.2.1-offer.sdp",
        "rfc7977-8.3.1-offer.sdp",
        "rfc7977-8.4.1-offer.sdp",
    ] {
        let sdp = parse_fragment(name);
        assert_eq!(sdp.connection, Some(Connection::ip4("a.example.com")));
        let media = sdp.msrp_media().expect("m=message");
        assert!(media.is_msrp());
        assert_eq!(media.proto, "TCP/TLS/MSRP");
        assert_eq!(
            media.path(),
            Some(
                &[
                    "msrps://a.example.com:2855/jui787s2f;tcp".to_owned(),
                    "msrps://df7jal23ls0d.invalid:2855/98cjs;ws".to_owned()
                ][..]
            )
        );
        assert_eq!(media.accept_types().map(<[String]>::len), Some(3));
    }
    let carol = parse_fragment("rfc7977-8.3.1-answer.sdp");
    let path = carol.msrp_media().and_then(|m| m.path()).expect("path");
    assert!(path.last().is_some_and(|uri| uri.ends_with(";ws")));
    let bob = parse_fragment("rfc7977-8.4.1-answer.sdp");
    assert_eq!(
        bob.msrp_media().and_then(|m| m.path()).map(<[String]>::len),
        Some(2)
    );
    let direct = parse_fragment("rfc7977-8.2.1-answer.sdp");
    assert_eq!(
        direct
            .msrp_media()
            .and_then(|m| m.path())
            .map(<[String]>::len),
        Some(1)
    );
}

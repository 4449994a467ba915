//! The MSRP examples of RFC 4975 and RFC 7977 (files under `tests/data/msrp`, CRLF as on the wire;
//! see the README there): every frame parses, re-serializes byte for byte, and carries the typed
//! values its text says. Where the RFC's own Byte-Range numbers are wrong, strict parsing must say
//! exactly how.

use std::ops::Range;
use std::path::Path;

use bytes::Bytes;
use rcs_core::msrp::{
    BodyLengthCheck, ByteRange, Continuation, FailureReport, Frame, Limits, Method, MsrpError,
    MsrpUri, Request, Response, Status, parse, parse_message,
};

fn read(name: &str) -> Bytes {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/msrp")
        .join(name);
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn relaxed() -> Limits {
    Limits {
        body_length: BodyLengthCheck::Ignore,
        ..Limits::default()
    }
}

/// Parses a file as a stream of frames, returning each with its byte span.
fn frames(data: &Bytes, limits: &Limits) -> Vec<(Frame, Range<usize>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        match parse(&data.slice(at..), limits) {
            Ok(Status::Complete { frame, consumed }) => {
                out.push((frame, at..at + consumed));
                at += consumed;
            }
            other => panic!("at {at}: {other:?}"),
        }
    }
    out
}

fn request(frame: &Frame) -> &Request {
    match frame {
        Frame::Request(r) => r,
        other => panic!("not a request: {other:?}"),
    }
}

fn response(frame: &Frame) -> &Response {
    match frame {
        Frame::Response(r) => r,
        other => panic!("not a response: {other:?}"),
    }
}

fn uri(s: &str) -> MsrpUri {
    s.parse().unwrap()
}

fn encode(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::new();
    frame.encode(&mut out);
    assert_eq!(out.len(), frame.encoded_len());
    out
}

/// A frame (by index in its file) that strict parsing rejects with
/// `BodyLengthMismatch { declared, actual }`: `(index, declared, actual)`.
type Mismatch = (usize, u64, u64);

/// Files, and for each the frames whose Byte-Range the RFC miscounts.
const FILES: &[(&str, &[Mismatch])] = &[
    ("rfc4975-04-send-and-200.msrp", &[(0, 25, 23)]),
    (
        "rfc4975-11.1-basic-im-session.msrp",
        &[(0, 16, 14), (2, 21, 20)],
    ),
    ("rfc4975-11.2-xhtml.msrp", &[(0, 374, 384)]),
    ("rfc4975-11.4-cpim-chunks.msrp", &[(1, 11, 10)]),
    ("rfc4975-11.5-system-message.msrp", &[(0, 38, 37)]),
    ("rfc4975-11.6-positive-report.msrp", &[(0, 106, 121)]),
    ("rfc7977-8.1.1-websocket-authentication.msrp", &[]),
    ("rfc7977-8.1.2-msrp-authentication.msrp", &[]),
    ("rfc7977-8.2.2-send-websocket-client-to-client.msrp", &[]),
    ("rfc7977-8.2.3-send-client-to-websocket-client.msrp", &[]),
    ("rfc7977-8.3.2-two-websocket-clients.msrp", &[]),
    ("rfc7977-8.4.2-websocket-client-via-relays.msrp", &[]),
];

#[test]
fn every_example_round_trips_byte_for_byte() {
    for (name, mismatches) in FILES {
        let data = read(name);
        assert!(data.ends_with(b"$\r\n"), "{name}");
        let parsed = frames(&data, &relaxed());
        let mut rebuilt = Vec::new();
        for (i, (frame, span)) in parsed.iter().enumerate() {
            let bytes = encode(frame);
            assert_eq!(bytes, &data[span.clone()], "{name} frame {i}");
            rebuilt.extend_from_slice(&bytes);
            // Each frame is also a valid WebSocket message on its own (RFC 7977 section 5.1).
            let alone = data.slice(span.clone());
            assert_eq!(parse_message(&alone, &relaxed()).as_ref(), Ok(frame));
            // Strict parsing agrees, except where the RFC miscounts its ranges.
            let strict = parse_message(&alone, &Limits::default());
            match mismatches.iter().find(|(at, ..)| *at == i) {
                None => assert_eq!(strict.as_ref(), Ok(frame), "{name} frame {i}"),
                Some(&(_, declared, actual)) => {
                    let range = request(frame).headers.byte_range().unwrap();
                    assert_eq!(
                        strict,
                        Err(MsrpError::BodyLengthMismatch {
                            range,
                            declared,
                            actual
                        }),
                        "{name} frame {i}"
                    );
                }
            }
        }
        assert_eq!(rebuilt, data, "{name}");
    }
}

#[test]
fn rfc4975_section_4_exchange() {
    let data = read("rfc4975-04-send-and-200.msrp");
    let parsed = frames(&data, &relaxed());
    assert_eq!(parsed.len(), 2);
    let send = request(&parsed[0].0);
    assert_eq!(send.transaction_id, "a786hjs2");
    assert_eq!(send.method, Method::Send);
    assert_eq!(
        send.headers.to_path(),
        &[uri("msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp")]
    );
    assert_eq!(send.message_id(), Some("87652491"));
    assert_eq!(send.headers.byte_range(), Some(ByteRange::whole(25)));
    assert_eq!(send.headers.content_type(), Some("text/plain"));
    assert_eq!(send.body.as_deref(), Some(&b"Hey Bob, are you there?"[..]));
    assert_eq!(send.continuation, Continuation::Complete);
    // Bob's answer, built from Alice's request, is the RFC's 200 OK byte for byte.
    let bob = uri("msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp");
    let ok = send.response(200, Some("OK"), &bob).unwrap();
    assert_eq!(encode(&Frame::Response(ok)), &data[parsed[1].1.clone()]);
    // The body is a slice of the file's buffer.
    let body = send.body.as_ref().unwrap();
    let inside = data.as_ptr_range();
    assert!(inside.contains(&body.as_ptr()));
}

#[test]
fn rfc4975_section_5_1_snippet_has_no_paths() {
    // Figure 3 shows only the chunking headers; as a frame it lacks the mandatory paths.
    let data = read("rfc4975-05.1-chunk-snippet.msrp");
    assert_eq!(parse(&data, &relaxed()), Err(MsrpError::MissingToPath));
    let second = data.slice(data.len() - 113..);
    assert!(second.starts_with(b"MSRP dkei38ia SEND"));
    assert_eq!(parse(&second, &relaxed()), Err(MsrpError::MissingToPath));
}

#[test]
fn rfc4975_section_11_1_basic_session() {
    let data = read("rfc4975-11.1-basic-im-session.msrp");
    let parsed = frames(&data, &relaxed());
    let alice = uri("msrp://alicepc.example.com:7777/iau39soe2843z;tcp");
    let bob = uri("msrp://bob.example.com:8888/9di4eae923wzd;tcp");
    let first = request(&parsed[0].0);
    assert_eq!(first.headers.from_path(), std::slice::from_ref(&alice));
    assert_eq!(first.body.as_deref(), Some(&b"Hi, I'm Alice!"[..]));
    let answer = first.response(200, Some("OK"), &bob).unwrap();
    assert_eq!(&answer, response(&parsed[1].0));
    let second = request(&parsed[2].0);
    assert_eq!(second.body.as_deref(), Some(&b"Hi, Alice!  I'm Bob!"[..]));
    let answer = second.response(200, Some("OK"), &alice).unwrap();
    assert_eq!(encode(&Frame::Response(answer)), &data[parsed[3].1.clone()]);
}

#[test]
fn rfc4975_section_11_4_cpim_chunks() {
    let data = read("rfc4975-11.4-cpim-chunks.msrp");
    let parsed = frames(&data, &relaxed());
    let first = request(&parsed[0].0);
    assert_eq!(first.continuation, Continuation::More);
    assert_eq!(first.headers.content_type(), Some("message/cpim"));
    let body = first.body.as_deref().unwrap();
    assert!(body.starts_with(b"To: Bob <sip:bob@example.com>\r\n"));
    assert!(body.ends_with(b"Content-Type: text/plain\r\n\r\nABCD"));
    assert_eq!(first.body_offsets(), 0..137);
    let second = request(&parsed[1].0);
    assert_eq!(second.message_id(), first.message_id());
    assert_eq!(second.body_offsets(), 137..147);
    assert_eq!(
        second.headers.byte_range().unwrap().to_string(),
        "138-148/148"
    );
}

#[test]
fn rfc4975_section_11_5_and_11_6_reports() {
    let data = read("rfc4975-11.5-system-message.msrp");
    let parsed = frames(&data, &relaxed());
    let system = request(&parsed[0].0);
    assert_eq!(system.failure_report(), FailureReport::No);
    assert!(!system.wants_success_report());
    // Failure-Report: no forbids any response.
    assert_eq!(system.response(200, None, &uri("msrp://a/b;tcp")), None);

    let data = read("rfc4975-11.6-positive-report.msrp");
    let parsed = frames(&data, &relaxed());
    let send = request(&parsed[0].0);
    assert!(send.wants_success_report());
    assert_eq!(send.failure_report(), FailureReport::No);
    let report = request(&parsed[1].0);
    assert_eq!(report.method, Method::Report);
    let status = report.headers.status().unwrap();
    assert_eq!(
        (status.namespace, status.code, status.comment.as_deref()),
        (0, 200, Some("OK"))
    );
    assert_eq!(report.response(200, None, &uri("msrp://a/b;tcp")), None);
    // Bob's success report, built from Alice's SEND, is the RFC's REPORT byte for byte.
    let bob = uri("msrp://bob.example.com:8888/9di4eae923wzd;tcp");
    let built = send
        .report("dkei38sd", 200, Some("OK"), ByteRange::whole(106), &bob)
        .unwrap();
    assert_eq!(encode(&Frame::Request(built)), &data[parsed[1].1.clone()]);
}

#[test]
fn rfc7977_authentication() {
    let data = read("rfc7977-8.1.1-websocket-authentication.msrp");
    let parsed = frames(&data, &Limits::default());
    let auth = request(&parsed[0].0);
    assert_eq!(auth.method, Method::Auth);
    let relay = &auth.headers.to_path()[0];
    assert_eq!(relay.userinfo.as_deref(), Some("alice"));
    assert_eq!(
        (relay.host.as_str(), relay.port),
        ("a.example.com", Some(443))
    );
    assert_eq!(relay.session_id, None);
    assert_eq!(relay.transport, "ws");
    let client = &auth.headers.from_path()[0];
    assert!(client.secure && client.host.ends_with(".invalid"));
    assert_eq!(client.session_id.as_deref(), Some("98cjs"));
    // The relay's answer: the full From-Path back (not a SEND), its own URI, then its extensions.
    let ok = response(&parsed[1].0);
    assert_eq!(
        ok.headers.get("Use-Path"),
        Some("msrps://a.example.com:2855/jui787s2f;tcp")
    );
    assert_eq!(ok.headers.get("Expires"), Some("900"));
    let mut built = auth.response(200, Some("OK"), relay).unwrap();
    built
        .headers
        .push("Use-Path", "msrps://a.example.com:2855/jui787s2f;tcp")
        .unwrap();
    built.headers.push("Expires", "900").unwrap();
    assert_eq!(&built, ok);

    let data = read("rfc7977-8.1.2-msrp-authentication.msrp");
    let parsed = frames(&data, &Limits::default());
    let challenge = response(&parsed[1].0);
    assert_eq!(
        (challenge.code, challenge.comment.as_deref()),
        (401, Some("Unauthorized"))
    );
    assert_eq!(
        challenge.headers.get("WWW-Authenticate"),
        Some(
            "Digest realm=\"example.com\", nonce=\"UvtfpVL7XnnJ63EE244fXDthfLihlMHOY4+dd4A=\", qop=\"auth\""
        )
    );
    let retry = request(&parsed[2].0);
    assert!(
        retry
            .headers
            .get("authorization")
            .unwrap()
            .ends_with("nc=00000001")
    );
}

#[test]
fn rfc7977_sends_through_the_websocket_server() {
    let data = read("rfc7977-8.2.2-send-websocket-client-to-client.msrp");
    let parsed = frames(&data, &Limits::default());
    let f1 = request(&parsed[0].0);
    let to: Vec<String> = f1
        .headers
        .to_path()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        to,
        [
            "msrps://a.example.com:2855/jui787s2f;tcp",
            "msrps://bob.example.com:49154/foo;tcp"
        ]
    );
    assert_eq!(f1.headers.from_path()[0].transport, "ws");
    assert_eq!(f1.headers.success_report(), Some(false));
    assert_eq!(
        f1.headers.byte_range(),
        Some(ByteRange {
            start: 1,
            end: None,
            total: None
        })
    );
    assert_eq!(
        f1.body.as_deref(),
        Some(&b"Hi Bob, I'm about to send you file.mpeg"[..])
    );
    // The server's 200 goes to the previous hop only: the first From-Path URI.
    let server = uri("msrps://a.example.com:2855/jui787s2f;tcp");
    let f2 = f1.response(200, Some("OK"), &server).unwrap();
    assert_eq!(encode(&Frame::Response(f2)), &data[parsed[1].1.clone()]);
    // F3 keeps its double space after "From-Path:" and still yields two URIs.
    let f3 = request(&parsed[2].0);
    assert!(
        f3.headers
            .iter()
            .any(|h| h.name == "From-Path" && h.value.starts_with(' '))
    );
    assert_eq!(f3.headers.from_path().len(), 2);
    assert!(f3.headers.from_path()[1].same_endpoint(&f1.headers.from_path()[0]));

    let data = read("rfc7977-8.4.2-websocket-client-via-relays.msrp");
    let parsed = frames(&data, &Limits::default());
    let last_hop = request(&parsed[4].0);
    let back: Vec<_> = last_hop
        .headers
        .from_path()
        .iter()
        .map(|u| u.port)
        .collect();
    assert_eq!(back, [Some(2855), Some(2855), None]);
    assert_eq!(last_hop.headers.from_path()[2].host, "df7jal23ls0d.invalid");
}

//! Random frames encoded into one stream, cut at random points and fed to the parser in growing
//! buffers, come back equal and in order; no prefix is ever an error.

use bytes::Bytes;
use proptest::prelude::*;
use rcs_core::msrp::{
    ByteRange, Continuation, FailureReport, Frame, Limits, Method, MsrpUri, Request, Response,
    Status, parse,
};

fn ident() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9.+%=-]{3,31}"
}

fn msrp_uri() -> impl Strategy<Value = MsrpUri> {
    (
        any::<bool>(),
        prop_oneof![
            "[a-z][a-z0-9-]{0,10}(\\.[a-z]{2,5}){0,2}",
            "[a-z0-9]{12}\\.invalid",
            "(25[0-5]|1[0-9]{2}|[1-9]?[0-9])(\\.(25[0-5]|1[0-9]{2}|[1-9]?[0-9])){3}",
            Just("[2001:db8::1]".to_owned()),
        ],
        proptest::option::of(any::<u16>()),
        proptest::option::of("[a-zA-Z0-9+=_~.-][a-zA-Z0-9+=/_~.-]{0,15}"),
        prop_oneof![
            Just("tcp".to_owned()),
            Just("ws".to_owned()),
            "[a-z0-9]{1,5}"
        ],
    )
        .prop_map(|(secure, host, port, session, transport)| {
            MsrpUri::new(secure, &host, port, session.as_deref(), &transport).unwrap()
        })
}

fn path() -> impl Strategy<Value = Vec<MsrpUri>> {
    proptest::collection::vec(msrp_uri(), 1..4)
}

/// Unknown headers: a name that is no known MSRP header, a printable UTF-8 value.
fn extra_headers() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec(
        ("X-[A-Za-z0-9-]{1,12}", "[ -~\t\u{a0}-\u{2fff}]{0,40}"),
        0..4,
    )
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        // Bodies full of near-misses of an end-line.
        proptest::collection::vec(
            prop_oneof![
                Just(b"\r\n-------".to_vec()),
                Just(b"\r\n".to_vec()),
                Just(b"-".to_vec()),
                Just(b"$+#".to_vec()),
                "[a-z0-9]{1,6}".prop_map(String::into_bytes),
            ],
            0..30
        )
        .prop_map(|parts| parts.concat()),
    ]
}

fn continuation() -> impl Strategy<Value = Continuation> {
    prop_oneof![
        Just(Continuation::Complete),
        Just(Continuation::More),
        Just(Continuation::Aborted)
    ]
}

#[derive(Debug, Clone)]
struct RequestSpec {
    tid: String,
    method: Method,
    to: Vec<MsrpUri>,
    from: Vec<MsrpUri>,
    message_id: Option<String>,
    reports: (Option<bool>, Option<FailureReport>),
    range: Option<(u64, bool, Option<u64>)>,
    extra: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    continuation: Continuation,
}

fn request() -> impl Strategy<Value = Request> {
    let method = prop_oneof![
        4 => Just(Method::Send),
        1 => Just(Method::Report),
        1 => Just(Method::Auth),
        1 => "[A-Z]{1,10}".prop_map(|m| Method::from_token(&m).unwrap()),
    ];
    let reports = (
        proptest::option::of(any::<bool>()),
        proptest::option::of(prop_oneof![
            Just(FailureReport::Yes),
            Just(FailureReport::No),
            Just(FailureReport::Partial)
        ]),
    );
    (
        ident(),
        method,
        path(),
        path(),
        proptest::option::of(ident()),
        reports,
        proptest::option::of((
            1u64..1_000_000,
            any::<bool>(),
            proptest::option::of(0u64..1000),
        )),
        extra_headers(),
        proptest::option::of(body()),
        continuation(),
    )
        .prop_map(
            |(tid, method, to, from, message_id, reports, range, extra, body, continuation)| {
                RequestSpec {
                    tid,
                    method,
                    to,
                    from,
                    message_id,
                    reports,
                    range,
                    extra,
                    body,
                    continuation,
                }
            },
        )
        .prop_map(build_request)
        .prop_filter("the body must not contain the end-line", |r| {
            !r.end_line_in_body()
        })
}

fn build_request(spec: RequestSpec) -> Request {
    let mut req = Request::new(&spec.tid, spec.method, spec.to, spec.from).unwrap();
    if let Some(id) = &spec.message_id {
        req.headers.set_message_id(id).unwrap();
    }
    if let Some((start, end_known, extra_total)) = spec.range {
        // A range consistent with the body, so strict parsing accepts it.
        let len = spec.body.as_ref().map_or(0, |b| b.len() as u64);
        let end = start + len - 1;
        req.headers.set_byte_range(ByteRange {
            start,
            end: end_known.then_some(end),
            total: extra_total.map(|t| end + t),
        });
    }
    if let Some(yes) = spec.reports.0 {
        req.headers.set_success_report(yes);
    }
    if let Some(value) = spec.reports.1 {
        req.headers.set_failure_report(value);
    }
    for (name, value) in &spec.extra {
        req.headers.push(name, value).unwrap();
    }
    req.continuation = spec.continuation;
    match spec.body {
        Some(body) => req
            .with_body("application/octet-stream", Bytes::from(body))
            .unwrap(),
        None => req,
    }
}

fn response() -> impl Strategy<Value = Response> {
    (
        ident(),
        0u16..1000,
        proptest::option::of("[ -~\u{a0}-\u{2fff}]{0,30}"),
        path(),
        path(),
        extra_headers(),
    )
        .prop_map(|(tid, code, comment, to, from, extra)| {
            let mut resp = Response::new(&tid, code, comment.as_deref(), to, from).unwrap();
            for (name, value) in &extra {
                resp.headers.push(name, value).unwrap();
            }
            resp
        })
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        3 => request().prop_map(Frame::Request),
        1 => response().prop_map(Frame::Response),
    ]
}

/// Feeds `stream` cut at `cuts` to the parser the way a reader would: append, parse until
/// `Partial`, drop what was consumed.
fn feed(stream: &[u8], cuts: &[usize], limits: &Limits) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut bounds: Vec<usize> = cuts.iter().map(|&c| c % (stream.len() + 1)).collect();
    bounds.push(stream.len());
    bounds.sort_unstable();
    let mut from = 0;
    for to in bounds {
        pending.extend_from_slice(&stream[from..to]);
        from = to;
        loop {
            let buf = Bytes::copy_from_slice(&pending);
            match parse(&buf, limits) {
                Ok(Status::Complete { frame, consumed }) => {
                    frames.push(frame);
                    pending.drain(..consumed);
                }
                Ok(Status::Partial) => break,
                Err(e) => panic!("error on a prefix of a valid stream: {e:?}"),
            }
        }
    }
    assert!(pending.is_empty(), "{} bytes left over", pending.len());
    frames
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn split_stream_gives_the_frames_back(
        frames in proptest::collection::vec(frame(), 1..6),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut stream = Vec::new();
        for f in &frames {
            let before = stream.len();
            f.encode(&mut stream);
            prop_assert_eq!(stream.len() - before, f.encoded_len());
        }
        let limits = Limits::default();
        let parsed = feed(&stream, &cuts, &limits);
        prop_assert_eq!(&parsed, &frames);
        // Byte by byte, too: every prefix is Partial until its frame is complete.
        if stream.len() < 2048 {
            let every: Vec<usize> = (0..stream.len()).collect();
            prop_assert_eq!(&feed(&stream, &every, &limits), &frames);
        }
    }

    #[test]
    fn parsing_arbitrary_bytes_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&Bytes::from(data), &Limits::default());
    }
}

//! Unit tests of the body parser and writer.

use super::*;

const HEAD: &str = "v=0\r\no=alice 2890844526 2890844526 IN IP4 alicepc.example.com\r\ns=\r\n";

/// A push offer in the style of RFC 5547 section 9.1, with every line type this module types.
const OFFER: &str = "v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 alicepc.example.com\r\n\
s=\r\n\
c=IN IP4 alicepc.example.com\r\n\
t=0 0\r\n\
m=message 7654 TCP/MSRP *\r\n\
i=This is my latest picture\r\n\
a=sendonly\r\n\
a=accept-types:message/cpim\r\n\
a=accept-wrapped-types:*\r\n\
a=path:msrp://alicepc.example.com:7654/jshA7we;tcp\r\n\
a=file-selector:name:\"My cool picture.jpg\" type:image/jpeg size:4092 hash:sha-1:72:24:5F:E8:65:3D:DA:F3:71:36:2F:86:D4:71:91:3E:E4:A2:CE:2E\r\n\
a=file-transfer-id:Q6LMoGymJdh0IKIgD6wD0jkcfgva4xvE\r\n\
a=file-disposition:render\r\n\
a=file-date:creation:\"Mon, 15 May 2006 15:01:31 +0300\"\r\n\
a=file-icon:cid:id2@alicepc.example.com\r\n";

fn parse(text: &str) -> Result<SessionDescription, SdpError> {
    SessionDescription::parse(text.as_bytes())
}

fn roundtrip(text: &str) {
    let sdp = parse(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"));
    assert_eq!(sdp.to_string(), text, "byte-identical round trip");
    assert_eq!(parse(&sdp.to_string()).as_ref(), Ok(&sdp));
}

#[test]
fn typed_fields_of_a_file_transfer_offer() {
    let sdp = parse(OFFER).expect("parses");
    assert_eq!(sdp.version, 0);
    assert_eq!(sdp.origin.username, "alice");
    assert_eq!(sdp.origin.session_id, 2_890_844_526);
    assert_eq!(sdp.origin.address, "alicepc.example.com");
    assert_eq!(sdp.session_name, "");
    assert_eq!(sdp.connection, Some(Connection::ip4("alicepc.example.com")));
    assert_eq!(sdp.times, vec![Timing { start: 0, stop: 0 }]);
    let media = sdp.msrp_media().expect("message media");
    assert!(media.is_msrp());
    assert_eq!((media.port, media.proto.as_str()), (7654, "TCP/MSRP"));
    assert_eq!(media.formats, vec!["*"]);
    assert_eq!(media.direction(), Direction::SendOnly);
    assert_eq!(sdp.direction_of(media), Direction::SendOnly);
    assert_eq!(media.accept_types(), Some(&["message/cpim".to_owned()][..]));
    assert_eq!(media.accept_wrapped_types(), Some(&["*".to_owned()][..]));
    assert_eq!(
        media.path(),
        Some(&["msrp://alicepc.example.com:7654/jshA7we;tcp".to_owned()][..])
    );
    let selector = media.file_selector().expect("file selector");
    assert_eq!(selector.name.as_deref(), Some("My cool picture.jpg"));
    assert_eq!(selector.size, Some(4092));
    assert_eq!(selector.hash("sha-1").map(|h| h.bytes.len()), Some(20));
    // The transfer id, disposition, date and icon of this RFC 5547 example are checked in
    // tests/sdp_rfc.rs.
    assert_eq!(media.file_range(), None);
    assert_eq!(media.setup(), None);
    assert_eq!(media.max_size(), None);
    assert_eq!(
        media.other_lines,
        vec![OtherLine {
            kind: 'i',
            value: "This is my latest picture".into()
        }]
    );
    roundtrip(OFFER);
}

#[test]
fn everything_else_is_kept_in_place() {
    let bodies = [
        // Every session-level line type of RFC 4566 section 5, in order, plus unknown letters.
        "v=0\r\no=- 1 2 IN IP6 ::1\r\ns=A session\r\ni=info\r\nu=http://example.com/x\r\n\
         e=j@example.com\r\np=+1 617 555 6011\r\nc=IN IP4 224.2.17.12/127\r\nb=CT:128\r\n\
         t=2873397496 2873404696\r\nr=604800 3600 0 90000\r\nt=0 0\r\nz=2882844526 -1h\r\n\
         k=prompt\r\na=recvonly\r\na=tool:x y\r\nx=unknown letter\r\nm=audio 49170/2 RTP/AVP 0 8\r\n\
         i=media info\r\nc=IN IP4 224.2.17.12/127\r\nb=AS:64\r\nk=clear:abc\r\na=rtpmap:0 PCMU/8000\r\n\
         y=another\r\nm=message 9 TCP/WSS/MSRP *\r\na=setup:active\r\n",
        // Typed lines out of the canonical order.
        "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\na=sendrecv\r\nt=0 0\r\nc=IN IP4 h\r\ni=late info\r\n\
         m=message 1 TCP/MSRP *\r\na=path:msrp://h:1/a;tcp\r\nc=IN IP4 h\r\ni=late\r\nb=AS:1\r\n",
        // Odd spacing and spelling that is still valid: kept as written.
        "v=0\r\no=- 007 01 IN IP4 h\r\ns= -\r\nt=00 0\r\nb=AS:010\r\nm=message 0007 TCP/MSRP *\r\n\
         a=accept-types:text/plain   text/html\r\na=max-size:00020000\r\n\
         a=file-selector:size:10   hash:sha-1:ab:cd name:\"a%2fb.txt\"\r\n\
         a=file-date:read:\"x\"  creation:\"y\"\r\n",
        // No t= line at all, and an empty media section at the end.
        "v=0\r\no=- 1 1 IN IP4 h\r\ns=\r\nm=message 1 TCP/MSRP *\r\n",
        // No media.
        "v=0\r\no=- 1 1 IN IP4 h\r\ns=x\r\nt=0 0\r\n",
    ];
    for body in bodies {
        roundtrip(body);
    }
}

#[test]
fn lenient_line_endings() {
    let lf = OFFER.replace("\r\n", "\n");
    assert_eq!(parse(&lf).map(|s| s.to_string()).as_deref(), Ok(OFFER));
    let no_final = OFFER.trim_end_matches("\r\n");
    assert_eq!(parse(no_final).map(|s| s.to_string()).as_deref(), Ok(OFFER));
    let trailing = format!("{OFFER}\r\n\r\n");
    assert_eq!(
        parse(&trailing).map(|s| s.to_string()).as_deref(),
        Ok(OFFER)
    );
    let mixed = OFFER.replacen("\r\n", "\n", 3);
    assert_eq!(parse(&mixed).map(|s| s.to_string()).as_deref(), Ok(OFFER));
}

#[test]
fn canonical_form_of_odd_input() {
    let odd = "v=0\r\no=- 007 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=message 9 TCP/MSRP *\r\n\
               a=file-selector:size:10 name:\"x\" hash:sha-1:ab:cd\r\na=accept-types:a/b  c/d\r\n";
    let mut sdp = parse(odd).expect("parses");
    sdp.formatting = Formatting::default();
    for media in &mut sdp.media {
        media.formatting = Formatting::default();
    }
    assert_eq!(
        sdp.to_string(),
        "v=0\r\no=- 7 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=message 9 TCP/MSRP *\r\n\
         a=file-selector:name:\"x\" size:10 hash:sha-1:AB:CD\r\na=accept-types:a/b c/d\r\n"
    );
}

#[test]
fn edits_after_parsing_keep_the_rest_in_place() {
    let body = format!(
        "{HEAD}t=0 0\r\nm=message 9 TCP/MSRP *\r\nx=odd\r\na=accept-types:a/b  c/d\r\na=sendonly\r\n"
    );
    let mut sdp = parse(&body).expect("parses");
    let media = sdp.media.first_mut().expect("media");
    media.set_direction(Direction::RecvOnly);
    media.attributes.push(Attribute::MaxSize(5));
    media.other_lines.insert(
        0,
        OtherLine {
            kind: 'i',
            value: "title".into(),
        },
    );
    sdp.connection = Some(Connection::ip4("h"));
    // The untouched accept-types keeps its spelling; the new attribute follows the last recorded
    // one; the session c= (a kind the session never had) and the media i= (one more Other line)
    // take their places.
    assert_eq!(
        sdp.to_string(),
        format!(
            "{HEAD}c=IN IP4 h\r\nt=0 0\r\nm=message 9 TCP/MSRP *\r\ni=title\r\nx=odd\r\n\
             a=accept-types:a/b  c/d\r\na=recvonly\r\na=max-size:5\r\n"
        )
    );
    let media = sdp.media.first_mut().expect("media");
    media
        .attributes
        .retain(|a| !matches!(a, Attribute::AcceptTypes(_)));
    media.other_lines.clear();
    assert_eq!(
        sdp.to_string(),
        format!(
            "{HEAD}c=IN IP4 h\r\nt=0 0\r\nm=message 9 TCP/MSRP *\r\na=recvonly\r\na=max-size:5\r\n"
        )
    );
}

#[test]
fn direction_defaults_and_session_level() {
    let sdp = parse(&format!(
        "{HEAD}a=recvonly\r\nm=message 9 TCP/MSRP *\r\nm=message 9 TCP/MSRP *\r\na=inactive\r\n"
    ))
    .expect("parses");
    let first = sdp.media.first().expect("media");
    let second = sdp.media.get(1).expect("media");
    assert_eq!(first.direction(), Direction::SendRecv);
    assert_eq!(sdp.direction_of(first), Direction::RecvOnly);
    assert_eq!(sdp.direction_of(second), Direction::Inactive);
    // Repeating the same direction is not a contradiction.
    assert!(
        parse(&format!(
            "{HEAD}m=message 9 TCP/MSRP *\r\na=sendonly\r\na=sendonly\r\n"
        ))
        .is_ok()
    );
}

#[test]
fn msrp_media_is_the_first_message_section() {
    let sdp = parse(&format!(
        "{HEAD}m=audio 1 RTP/AVP 0\r\nm=message 2 TCP/TLS/MSRP *\r\nm=message 3 TCP/MSRP *\r\n"
    ))
    .expect("parses");
    assert_eq!(sdp.msrp_media().map(|m| m.port), Some(2));
    let protos = [
        "TCP/MSRP",
        "TCP/TLS/MSRP",
        "TCP/WS/MSRP",
        "TCP/WSS/MSRP",
        "tcp/msrp",
    ];
    for proto in protos {
        assert!(
            MediaDescription::new("message", 9, proto, &["*"]).is_msrp(),
            "{proto}"
        );
    }
    assert!(!MediaDescription::new("message", 9, "TCP/MSRPX", &["*"]).is_msrp());
    assert!(!MediaDescription::new("audio", 9, "TCP/MSRP", &["*"]).is_msrp());
    assert!(!MediaDescription::new("message", 9, "SRP", &["*"]).is_msrp());
}

fn line_error(line: usize, reason: LineError) -> SdpError {
    SdpError::BadLine { line, reason }
}

fn field_error(line: usize, field: Field, reason: FieldError) -> SdpError {
    SdpError::BadField {
        line,
        field,
        reason,
    }
}

fn attribute_error(line: usize, name: &str, reason: AttributeError) -> SdpError {
    SdpError::BadAttribute {
        line,
        name: name.into(),
        reason,
    }
}

#[test]
fn bad_input_gets_the_specific_error() {
    let media = "m=message 9 TCP/MSRP *\r\n";
    let cases: Vec<(String, SdpError)> = vec![
        (
            String::new(),
            SdpError::MissingLine {
                line: 1,
                expected: 'v',
            },
        ),
        (
            "o=- 1 1 IN IP4 h\r\ns=\r\n".into(),
            SdpError::MissingLine {
                line: 1,
                expected: 'v',
            },
        ),
        (
            "v=0\r\ns=\r\n".into(),
            SdpError::MissingLine {
                line: 2,
                expected: 'o',
            },
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 h\r\n".into(),
            SdpError::MissingLine {
                line: 3,
                expected: 's',
            },
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 h\r\nt=0 0\r\n".into(),
            SdpError::MissingLine {
                line: 3,
                expected: 's',
            },
        ),
        (
            "v=1\r\n".into(),
            field_error(1, Field::Version, FieldError::Unsupported),
        ),
        (
            "v=zero\r\n".into(),
            field_error(1, Field::Version, FieldError::NotANumber),
        ),
        (
            "v=0\r\no=- 1 IN IP4 h\r\ns=\r\n".into(),
            field_error(
                2,
                Field::Origin,
                FieldError::FieldCount {
                    found: 5,
                    expected: 6,
                },
            ),
        ),
        (
            "v=0\r\no=-  1 1 IN IP4 h\r\ns=\r\n".into(),
            field_error(2, Field::Origin, FieldError::Empty),
        ),
        (
            "v=0\r\no=- x 1 IN IP4 h\r\ns=\r\n".into(),
            field_error(2, Field::SessionId, FieldError::NotANumber),
        ),
        (
            "v=0\r\no=- 1 99999999999999999999999 IN IP4 h\r\ns=\r\n".into(),
            field_error(2, Field::SessionVersion, FieldError::OutOfRange),
        ),
        (
            format!("{HEAD}v=0\r\n"),
            SdpError::UnexpectedLine { line: 4, kind: 'v' },
        ),
        (
            format!("{HEAD}{media}t=0 0\r\n"),
            SdpError::UnexpectedLine { line: 5, kind: 't' },
        ),
        (
            format!("{HEAD}{media}o=- 1 1 IN IP4 h\r\n"),
            SdpError::UnexpectedLine { line: 5, kind: 'o' },
        ),
        (
            format!("{HEAD}c=IN IP4 a\r\nc=IN IP4 b\r\n"),
            SdpError::DuplicateLine { line: 5, kind: 'c' },
        ),
        (
            format!("{HEAD}{media}c=IN IP4 a\r\nc=IN IP4 b\r\n"),
            SdpError::DuplicateLine { line: 6, kind: 'c' },
        ),
        (
            format!("{HEAD}c=IN IP4\r\n"),
            field_error(
                4,
                Field::Connection,
                FieldError::FieldCount {
                    found: 2,
                    expected: 3,
                },
            ),
        ),
        (
            format!("{HEAD}t=0\r\n"),
            field_error(
                4,
                Field::Timing,
                FieldError::FieldCount {
                    found: 1,
                    expected: 2,
                },
            ),
        ),
        (
            format!("{HEAD}t=now 0\r\n"),
            field_error(4, Field::StartTime, FieldError::NotANumber),
        ),
        (
            format!("{HEAD}b=AS\r\n"),
            field_error(
                4,
                Field::Bandwidth,
                FieldError::FieldCount {
                    found: 1,
                    expected: 2,
                },
            ),
        ),
        (
            format!("{HEAD}b=AS:lots\r\n"),
            field_error(4, Field::BandwidthValue, FieldError::NotANumber),
        ),
        // Bad m= lines and ports.
        (
            format!("{HEAD}m=message 9 TCP/MSRP\r\n"),
            field_error(
                4,
                Field::Media,
                FieldError::FieldCount {
                    found: 3,
                    expected: 4,
                },
            ),
        ),
        (
            format!("{HEAD}m=message\r\n"),
            field_error(
                4,
                Field::Media,
                FieldError::FieldCount {
                    found: 1,
                    expected: 4,
                },
            ),
        ),
        (
            format!("{HEAD}m=message  9 TCP/MSRP *\r\n"),
            field_error(4, Field::Media, FieldError::Empty),
        ),
        (
            format!("{HEAD}m=message 9 TCP/MSRP * \r\n"),
            field_error(4, Field::Media, FieldError::Empty),
        ),
        (
            format!("{HEAD}m=message nine TCP/MSRP *\r\n"),
            field_error(4, Field::Port, FieldError::NotANumber),
        ),
        (
            format!("{HEAD}m=message 65536 TCP/MSRP *\r\n"),
            field_error(4, Field::Port, FieldError::OutOfRange),
        ),
        (
            format!("{HEAD}m=message -1 TCP/MSRP *\r\n"),
            field_error(4, Field::Port, FieldError::NotANumber),
        ),
        (
            format!("{HEAD}m=message 9/x TCP/MSRP *\r\n"),
            field_error(4, Field::PortCount, FieldError::NotANumber),
        ),
        // Line syntax.
        (
            format!("{HEAD}\r\nt=0 0\r\n"),
            line_error(4, LineError::Empty),
        ),
        (
            format!("{HEAD}t 0 0\r\n"),
            line_error(4, LineError::NoEquals),
        ),
        (
            format!("{HEAD}1=0 0\r\n"),
            line_error(4, LineError::BadType),
        ),
        (format!("{HEAD}=x\r\n"), line_error(4, LineError::BadType)),
        (
            format!("{HEAD}a=x\0y\r\n"),
            line_error(4, LineError::ControlCharacter { offset: 3 }),
        ),
        (
            format!("{HEAD}a=x\ry\r\n"),
            line_error(4, LineError::ControlCharacter { offset: 3 }),
        ),
        // Attributes.
        (
            format!("{HEAD}{media}a=path\r\n"),
            attribute_error(5, "path", AttributeError::MissingValue),
        ),
        (
            format!("{HEAD}{media}a=max-size:big\r\n"),
            attribute_error(5, "max-size", AttributeError::NotANumber),
        ),
        (
            format!("{HEAD}{media}a=setup:both\r\n"),
            attribute_error(5, "setup", AttributeError::UnknownValue),
        ),
        (
            format!("{HEAD}{media}a=:x\r\n"),
            attribute_error(5, "", AttributeError::EmptyName),
        ),
        // Bad file selectors.
        (
            format!("{HEAD}{media}a=file-selector:name:\"open.jpg size:1\r\n"),
            attribute_error(
                5,
                "file-selector",
                AttributeError::FileSelector(FileSelectorError::UnterminatedQuote { offset: 5 }),
            ),
        ),
        (
            format!("{HEAD}{media}a=file-selector:hash:sha-1:72:2G\r\n"),
            attribute_error(
                5,
                "file-selector",
                AttributeError::FileSelector(FileSelectorError::BadHashHex { offset: 14 }),
            ),
        ),
        (
            format!("{HEAD}{media}a=file-selector:size:4kB\r\n"),
            attribute_error(
                5,
                "file-selector",
                AttributeError::FileSelector(FileSelectorError::SizeNotANumber { offset: 5 }),
            ),
        ),
        (
            format!("{HEAD}{media}a=file-selector:\r\n"),
            attribute_error(
                5,
                "file-selector",
                AttributeError::FileSelector(FileSelectorError::Empty),
            ),
        ),
        // Contradictions.
        (
            format!("{HEAD}{media}a=sendonly\r\na=path:msrp://h/x;tcp\r\na=recvonly\r\n"),
            SdpError::ContradictoryDirection {
                line: 7,
                first: Direction::SendOnly,
                second: Direction::RecvOnly,
            },
        ),
        (
            format!("{HEAD}a=inactive\r\na=sendrecv\r\n"),
            SdpError::ContradictoryDirection {
                line: 5,
                first: Direction::Inactive,
                second: Direction::SendRecv,
            },
        ),
        (
            format!("{HEAD}{media}a=file-transfer-id:a\r\na=file-transfer-id:b\r\n"),
            SdpError::ConflictingAttribute {
                line: 6,
                name: "file-transfer-id".into(),
            },
        ),
        (
            format!("{HEAD}{media}a=file-selector:size:1\r\na=file-selector:size:2\r\n"),
            SdpError::ConflictingAttribute {
                line: 6,
                name: "file-selector".into(),
            },
        ),
    ];
    for (input, expected) in &cases {
        assert_eq!(parse(input).as_ref(), Err(expected), "input {input:?}");
    }
}

#[test]
fn non_utf8_and_limits() {
    let mut body = OFFER.as_bytes().to_vec();
    // An invalid byte in the name of the file selector, on line 12.
    let pos = body
        .windows(4)
        .position(|w| w == b"cool")
        .expect("the offer names a cool picture");
    if let Some(b) = body.get_mut(pos) {
        *b = 0xFF;
    }
    assert_eq!(
        SessionDescription::parse(&body),
        Err(SdpError::NotUtf8 { line: 12 })
    );
    assert_eq!(
        SessionDescription::parse(&[0xC3]),
        Err(SdpError::NotUtf8 { line: 1 })
    );

    let limits = Limits {
        max_bytes: 100,
        max_lines: 4,
    };
    assert_eq!(
        SessionDescription::parse_with(OFFER.as_bytes(), &limits),
        Err(SdpError::TooLarge {
            size: OFFER.len(),
            limit: 100
        })
    );
    let five_lines = format!("{HEAD}t=0 0\r\nm=message 9 TCP/MSRP *\r\n");
    assert_eq!(
        SessionDescription::parse_with(five_lines.as_bytes(), &limits),
        Err(SdpError::TooManyLines { limit: 4 })
    );
    let oversize = format!("{HEAD}{}", "a=x:yyyyyyyy\r\n".repeat(3000));
    assert_eq!(
        parse(&oversize),
        Err(SdpError::TooLarge {
            size: oversize.len(),
            limit: DEFAULT_MAX_BYTES
        })
    );
    let many = format!("{HEAD}{}", "a=x\r\n".repeat(DEFAULT_MAX_LINES));
    assert_eq!(
        parse(&many),
        Err(SdpError::TooManyLines {
            limit: DEFAULT_MAX_LINES
        })
    );
}

#[test]
fn every_truncation_is_an_error_or_a_shorter_body() {
    // Cut the offer at every byte: whatever parses must be a prefix that round-trips; no cut panics.
    for end in 0..=OFFER.len() {
        let Some(prefix) = OFFER.get(..end) else {
            continue;
        };
        match parse(prefix) {
            Ok(sdp) => {
                let text = sdp.to_string();
                assert!(
                    text.starts_with(prefix.trim_end_matches(['\r', '\n'])),
                    "prefix {prefix:?} wrote {text:?}"
                );
                assert_eq!(parse(&text).as_ref(), Ok(&sdp));
            }
            Err(error) => {
                // Cuts inside the first three lines name the missing line or field.
                if end < HEAD.len() - 2 {
                    assert!(
                        matches!(
                            error,
                            SdpError::MissingLine { .. }
                                | SdpError::BadField { .. }
                                | SdpError::BadLine { .. }
                        ),
                        "prefix {prefix:?}: {error}"
                    );
                }
            }
        }
    }
}

#[test]
fn serde_keeps_the_formatting() {
    let odd = format!(
        "{HEAD}{}",
        "m=message 9 TCP/MSRP *\r\na=accept-types:a/b   c/d\r\nq=?\r\n"
    );
    let sdp = parse(&odd).expect("parses");
    let json = serde_json::to_string(&sdp).expect("serializes");
    let back: SessionDescription = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back.to_string(), odd);
}

#[test]
fn canonical_names_never_carry_control_characters() {
    // A name decoded to control characters must be encoded again, or the canonical line would be
    // rejected by the parser.
    let body = format!("{HEAD}m=message 9 TCP/MSRP *\r\na=file-selector:name:\"%01%09x%7f\"\r\n");
    let mut sdp = parse(&body).expect("parses");
    assert_eq!(
        sdp.msrp_media()
            .and_then(|m| m.file_selector())
            .and_then(|s| s.name.as_deref()),
        Some("\u{1}\tx\u{7f}")
    );
    for media in &mut sdp.media {
        media.formatting = Formatting::default();
    }
    let canonical = sdp.to_string();
    assert!(canonical.contains("name:\"%01%09x%7F\""), "{canonical}");
    assert_eq!(parse(&canonical), Ok(sdp));
}

#[test]
fn hand_built_fields_cannot_inject_lines() {
    let evil = "x\r\na=evil\nb=1\rc";
    let mut sdp = SessionDescription::new(Origin::new(
        evil,
        1,
        1,
        &Connection::ip4("host.example.com"),
    ));
    sdp.session_name = evil.into();
    sdp.connection = Some(Connection::ip4(evil));
    sdp.other_lines.push(OtherLine {
        kind: 'i',
        value: evil.into(),
    });
    sdp.attributes.push(Attribute::Other {
        name: "x-note".into(),
        value: Some(evil.into()),
    });
    let mut media = MediaDescription::new("message", 9, evil, &["*"]);
    media.attributes.push(Attribute::FileSelector(FileSelector {
        content_type: Some(format!("a/b{evil}")),
        ..FileSelector::default()
    }));
    media
        .attributes
        .push(Attribute::AcceptTypes(vec![evil.into()]));
    media.attributes.push(Attribute::FileDate(FileDate {
        read: Some(evil.into()),
        ..FileDate::default()
    }));
    media.other_lines.push(OtherLine {
        kind: 'k',
        value: evil.into(),
    });
    sdp.media.push(media);
    let text = sdp.to_string();
    let lines: Vec<&str> = text.split("\r\n").collect();
    // v o s i c t a m k a a a, then the empty string after the last CRLF.
    assert_eq!(lines.len(), 13, "{text:?}");
    assert!(
        !text.replace("\r\n", "").contains(['\r', '\n']),
        "no CR or LF but the line endings: {text:?}"
    );
    assert!(lines.iter().all(|l| !l.starts_with("a=evil")), "{text:?}");
    assert_eq!(lines[2], "s=x\u{fffd}\u{fffd}a=evil\u{fffd}b=1\u{fffd}c");
    // A tab is kept: the parser takes it.
    sdp.session_name = "a\tb".into();
    assert!(sdp.to_string().contains("\r\ns=a\tb\r\n"));
}

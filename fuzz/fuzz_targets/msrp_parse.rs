//! MSRP parser: never panics; whatever parses re-serializes (to `encoded_len` bytes) and parses
//! back to an equal frame; URIs round-trip through `Display`.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rcs_core::msrp::{BodyLengthCheck, Limits, MsrpUri, Status, parse, parse_message};

fuzz_target!(|data: &[u8]| {
    let buf = Bytes::copy_from_slice(data);
    let small = Limits {
        max_header_bytes: 512,
        max_body_bytes: 1024,
        body_length: BodyLengthCheck::Ignore,
    };
    for limits in [Limits::default(), small] {
        if let Ok(Status::Complete { frame, consumed }) = parse(&buf, &limits) {
            assert!(consumed <= data.len());
            let mut out = Vec::new();
            frame.encode(&mut out);
            assert_eq!(out.len(), frame.encoded_len());
            // Re-serializing writes ": " after every header name, which may add a byte per line.
            let roomy = Limits {
                max_header_bytes: limits.max_header_bytes * 2,
                ..limits
            };
            let again = parse_message(&Bytes::from(out), &roomy).expect("re-parse");
            assert_eq!(again, frame);
        }
        let _ = parse_message(&buf, &limits);
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(uri) = text.parse::<MsrpUri>()
    {
        assert_eq!(uri.to_string().parse::<MsrpUri>().as_ref(), Ok(&uri));
    }
});

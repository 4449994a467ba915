//! SIP over WebSocket: parsing never panics, and whatever parses is written back and parses to an
//! equal message. URIs and name-addrs found in the input go through the same round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rcs_core::sip::{self, Limits, NameAddr, SipUri};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(message) = sip::parse(data, &limits) {
        let written = message.to_bytes();
        // Writing can add `Content-Length` and one space per header: allow for it on the way back.
        let roomy = Limits {
            max_message_bytes: usize::MAX,
            ..limits
        };
        let again = sip::parse(&written, &roomy).expect("a written message parses");
        assert_eq!(again, message);
        let sliced = sip::parse_bytes(bytes::Bytes::copy_from_slice(data), &limits)
            .expect("parse_bytes agrees with parse");
        assert_eq!(sliced, message);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(uri) = SipUri::parse(text) {
            assert_eq!(SipUri::parse(&uri.to_string()).as_ref(), Ok(&uri));
        }
        if let Ok(na) = NameAddr::parse(text) {
            assert_eq!(NameAddr::parse(&na.to_string()).as_ref(), Ok(&na));
        }
    }
});

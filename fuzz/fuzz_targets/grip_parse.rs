//! GRIP event bodies: never panics; whatever parses is written back and parses to the same events.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rcs_core::grip::{Limits, encode_events, parse_events};

fuzz_target!(|data: &[u8]| {
    let Ok(events) = parse_events(&Bytes::copy_from_slice(data), &Limits::default()) else {
        return;
    };
    let mut body = Vec::new();
    encode_events(&events, &mut body);
    let again = parse_events(&Bytes::from(body), &Limits::default()).expect("written events parse");
    assert_eq!(again, events);
});

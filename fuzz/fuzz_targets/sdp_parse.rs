//! SDP parser: never panics; whatever parses is written back, parses to an equal value and is
//! written back identically; its canonical form parses too and is stable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rcs_core::sdp::{Formatting, SessionDescription};

fuzz_target!(|data: &[u8]| {
    let Ok(sdp) = SessionDescription::parse(data) else {
        return;
    };
    let text = sdp.to_string();
    let again = SessionDescription::parse(text.as_bytes()).expect("written body parses");
    assert_eq!(again, sdp);
    assert_eq!(again.to_string(), text);

    // Forget the recorded layout: the canonical form must also be a valid, stable body.
    let mut canonical = sdp.clone();
    canonical.formatting = Formatting::default();
    for media in &mut canonical.media {
        media.formatting = Formatting::default();
    }
    let canonical_text = canonical.to_string();
    let reparsed = SessionDescription::parse(canonical_text.as_bytes()).expect("canonical body parses");
    assert_eq!(reparsed.attributes, sdp.attributes);
    assert_eq!(reparsed.media.len(), sdp.media.len());
    for (a, b) in reparsed.media.iter().zip(&sdp.media) {
        assert_eq!(a.attributes, b.attributes);
    }
    assert_eq!(reparsed.to_string(), canonical_text);
});

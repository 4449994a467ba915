//! FT-HTTP file-info parsing: never panics, and whatever parses writes back to XML that parses to
//! an equal document and writes back to the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rcs_core::ft_http::{FileInfoDocument, MAX_DOCUMENT_BYTES};

fuzz_target!(|data: &[u8]| {
    let Ok(document) = FileInfoDocument::parse(data) else {
        return;
    };
    let xml = document.to_xml();
    // Escaping can make the written form longer than the read limit; such a document is still
    // checked for writing without panicking, but cannot be read back.
    if xml.len() > MAX_DOCUMENT_BYTES {
        return;
    }
    let again = FileInfoDocument::parse(&xml)
        .unwrap_or_else(|e| panic!("written document does not parse: {e}\n{xml}"));
    assert_eq!(again, document, "{xml}");
    assert_eq!(again.to_xml(), xml);
});

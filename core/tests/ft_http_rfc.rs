//! The FT-HTTP file-info examples under `tests/data/ft_http/`: each parses to the expected typed
//! values, serializes, and parses back to an equal value.

use std::path::PathBuf;

use rcs_core::first_value::{self, ContentDigest, SigningKey};
use rcs_core::ft_http::{
    AUDIO_MESSAGE_NAMESPACE, FileDisposition, FileInfoDocument, NAMESPACE, XmlNode,
};
use rcs_core::time::{Timestamp, UtcDateTime};
use url::Url;

fn load(name: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "data", "ft_http", name]
        .iter()
        .collect();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Parses, serializes, re-parses: the value must survive, and the second serialization must be
/// byte-identical to the first.
fn parse_and_round_trip(name: &str) -> FileInfoDocument {
    let text = load(name);
    let parsed = FileInfoDocument::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let xml = parsed.to_xml();
    let again =
        FileInfoDocument::parse(&xml).unwrap_or_else(|e| panic!("{name} re-parse: {e}\n{xml}"));
    assert_eq!(again, parsed, "{name}\n{xml}");
    assert_eq!(again.to_xml(), xml, "{name}");
    parsed
}

fn unix(year: i64, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Option<u64> {
    UtcDateTime::new(year, month, day, hour, minute, second).to_unix_secs()
}

#[test]
fn file_and_thumbnail() {
    let doc = parse_and_round_trip("file_and_thumbnail.xml");
    let until = unix(2017, 4, 25, 12, 17, 7);
    let thumb = doc.thumbnail.as_ref().expect("has a thumbnail");
    assert_eq!(thumb.size, 7427);
    assert_eq!(thumb.name, None);
    assert_eq!(thumb.content_type, "image/jpeg");
    assert_eq!(
        thumb.url.as_str(),
        "https://ftcontentserver.rcs.mnc123.mcc456.pub.3gppnetwork.org/ftsf58cdb29d1-a3d3-427c-a8a4-a496759fbf6b"
    );
    assert_eq!(thumb.until, until);
    let file = &doc.file;
    assert_eq!(file.size, 183_524);
    assert_eq!(file.name.as_deref(), Some("DSC_379395051.JPG"));
    assert_eq!(file.content_type, "image/jpeg");
    assert_eq!(file.disposition, Some(FileDisposition::Attachment));
    assert_eq!(file.until, until);
    assert_eq!(file.playing_length, None);
    assert_eq!(file.digest, None);
    assert!(file.extensions.is_empty() && doc.extensions.is_empty());
    assert!(doc.to_xml().contains("until=\"2017-04-25T12:17:07Z\""));
}

#[test]
fn audio_message() {
    let doc = parse_and_round_trip("audio_message.xml");
    let file = &doc.file;
    assert_eq!(file.size, 3206);
    assert_eq!(file.disposition, Some(FileDisposition::Render));
    assert_eq!(file.content_type, "audio/amr");
    assert_eq!(file.playing_length, Some(2000));
    // 19:25:18 at +08:00 is 11:25:18 UTC, and is written back in UTC.
    assert_eq!(file.until, unix(2020, 10, 9, 11, 25, 18));
    let xml = doc.to_xml();
    assert!(xml.contains("until=\"2020-10-09T11:25:18Z\""), "{xml}");
    assert!(xml.contains(AUDIO_MESSAGE_NAMESPACE));
    assert!(doc.thumbnail.is_none());
}

#[test]
fn up_extensions_are_kept() {
    let doc = parse_and_round_trip("up_extensions.xml");
    let thumb = doc.thumbnail.as_ref().expect("has a thumbnail");
    assert_eq!(thumb.url.parsed().port(), Some(10099));
    // The second <data> (localurl, no url) is kept as an extension.
    assert_eq!(thumb.extensions.len(), 1);
    assert_eq!(thumb.extensions[0].name, "data");
    assert_eq!(thumb.extensions[0].namespace.as_deref(), Some(NAMESPACE));
    assert_eq!(thumb.extensions[0].attributes[0].name, "localurl");
    let file = &doc.file;
    assert_eq!(
        file.name.as_deref(),
        Some("car & <bike> \"ünïcødé\" 文件.png")
    );
    assert_eq!(file.url.parsed().query(), Some("a=1&b=2"));
    // Fractional seconds are dropped.
    assert_eq!(file.until, unix(2021, 1, 21, 14, 9, 31));
    let branded = &file.extensions[0];
    assert_eq!(branded.name, "branded-url");
    assert_eq!(
        branded.namespace.as_deref(),
        Some("urn:gsma:params:xml:ns:rcs:rcs:up:fthttpext")
    );
    assert_eq!(
        branded.children,
        vec![XmlNode::Text(
            "https://brand.example.net/s/01181409311101410110100018TE".into()
        )]
    );
    let xml = doc.to_xml();
    assert!(
        xml.contains("car &amp; &lt;bike&gt; \"ünïcødé\" 文件.png"),
        "{xml}"
    );
    assert!(xml.contains("?a=1&amp;b=2"), "{xml}");
}

#[test]
fn first_value_document_verifies() {
    let doc = parse_and_round_trip("first_value.xml");
    let file = &doc.file;
    let digest = ContentDigest::of(b"hello, world\n");
    assert_eq!(file.digest, Some(digest));
    assert_eq!(file.size, 13);
    assert_eq!(file.until, Some(1_900_000_000));
    let key = SigningKey::from_variable("example-signing-key-for-tests-only-0123456789")
        .expect("long enough");
    let base = Url::parse("https://edge.example.com/ft/").expect("valid");
    let verified = first_value::verify(
        file.url.as_str(),
        &base,
        std::slice::from_ref(&key),
        Timestamp::from_unix_secs(1_900_000_000),
    )
    .expect("the signature computed elsewhere verifies");
    assert_eq!(verified.digest, digest);
    assert_eq!(Some(verified.expires_unix_secs), file.until);
    // And the module signs the same URL itself.
    assert_eq!(
        &first_value::sign(&base, digest, 1_900_000_000, &key),
        file.url.parsed()
    );
    assert!(file.url.is_canonical());
}

#[test]
fn data_url_is_verified_as_the_peer_wrote_it() {
    let key = SigningKey::from_variable("example-signing-key-for-tests-only-0123456789")
        .expect("long enough");
    let base = Url::parse("https://edge.example.com/ft/").expect("valid");
    let now = Timestamp::from_unix_secs(1_900_000_000);
    // The same signed URL, spelled with an upper-case host, the default port and a dot segment:
    // the url crate reads all of them as the canonical URL, but only that spelling was signed.
    for spelling in [
        "https://EDGE.example.com/ft/files/",
        "https://edge.example.com:443/ft/files/",
        "https://edge.example.com/ft/x/../files/",
    ] {
        let text = load("first_value.xml").replace("https://edge.example.com/ft/files/", spelling);
        let doc = FileInfoDocument::parse(&text).expect("parses");
        let url = &doc.file.url;
        assert!(url.as_str().starts_with(spelling), "{}", url.as_str());
        assert!(!url.is_canonical(), "{spelling}");
        assert_eq!(
            url.parsed().as_str(),
            first_value::sign(
                &base,
                ContentDigest::of(b"hello, world\n"),
                1_900_000_000,
                &key
            )
            .as_str()
        );
        assert!(
            matches!(
                first_value::verify(url.as_str(), &base, std::slice::from_ref(&key), now),
                Err(first_value::FirstValueError::NotCanonical { .. })
            ),
            "{spelling}"
        );
        // Written back as received.
        assert!(doc.to_xml().contains(spelling), "{spelling}");
        let again = FileInfoDocument::parse(&doc.to_xml()).expect("re-parses");
        assert_eq!(again, doc);
    }
}

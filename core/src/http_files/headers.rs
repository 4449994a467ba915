//! Header values of the download: `Content-Disposition` with a file name that cannot break the header
//! (RFC 6266 with RFC 8187's `filename*`), HTTP dates (RFC 9110 section 5.6.7), and entity-tag
//! matching for `If-None-Match` and `If-Range` (RFC 9110 section 8.8.3.2).

use crate::time::UtcDateTime;

/// The longest file name put in a `Content-Disposition`, in characters; longer names are cut.
pub const MAX_FILENAME_CHARS: usize = 255;

/// `attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded>` for an untrusted
/// file name, or plain `attachment` without one.
///
/// The fallback keeps printable ASCII except `"` and `\`; every other character, and `/`, becomes
/// `_`. The `filename*` value percent-encodes everything but RFC 8187's `attr-char`, after control
/// characters and path separators became `_`. Neither can carry CR, LF or a quote, so the header
/// cannot be split or its parameters ended early.
pub fn content_disposition(name: Option<&str>) -> String {
    let Some(name) = name.filter(|n| !n.trim().is_empty()) else {
        return "attachment".to_owned();
    };
    let cleaned: String = name
        .chars()
        .take(MAX_FILENAME_CHARS)
        .map(|c| {
            if c.is_control() || c == '/' || c == '\\' {
                '_'
            } else {
                c
            }
        })
        .collect();
    let fallback: String = cleaned
        .chars()
        .map(|c| {
            if (c.is_ascii_graphic() && c != '"') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(cleaned.len() * 3);
    for byte in cleaned.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) for Unix seconds.
pub fn http_date(unix_secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = UtcDateTime::from_unix_secs(unix_secs);
    // 1970-01-01 was a Thursday.
    let weekday = DAYS[((unix_secs / 86_400) % 7) as usize];
    let month = MONTHS[usize::from(t.month.clamp(1, 12) - 1)];
    format!(
        "{weekday}, {:02} {month} {:04} {:02}:{:02}:{:02} GMT",
        t.day, t.year, t.hour, t.minute, t.second
    )
}

/// The strong entity tag of a file: its SHA-256 in hex, quoted.
pub fn etag(hex: &str) -> String {
    format!("\"{hex}\"")
}

/// Whether an `If-None-Match` value matches `etag` (weak comparison; `*` matches any file).
pub fn if_none_match(header: &str, etag: &str) -> bool {
    let header = header.trim();
    header == "*"
        || header
            .split(',')
            .map(|tag| tag.trim())
            .any(|tag| tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// Whether an `If-Range` value lets the range be served: only the file's own strong entity tag does.
/// A date is never taken as a match, so such a request gets the whole file, which is always correct.
pub fn if_range(header: &str, etag: &str) -> bool {
    header.trim() == etag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_cannot_be_broken_by_the_name() {
        let cases: &[(Option<&str>, &str)] = &[
            (None, "attachment"),
            (Some(""), "attachment"),
            (
                Some("report.pdf"),
                "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf",
            ),
            (
                Some("holiday photo.jpg"),
                "attachment; filename=\"holiday photo.jpg\"; filename*=UTF-8''holiday%20photo.jpg",
            ),
            (
                Some("a\"b\\c.txt"),
                "attachment; filename=\"a_b_c.txt\"; filename*=UTF-8''a%22b_c.txt",
            ),
            (
                Some("x\r\nSet-Cookie: a=b"),
                "attachment; filename=\"x__Set-Cookie: a=b\"; filename*=UTF-8''x__Set-Cookie%3A%20a%3Db",
            ),
            (
                Some("../../etc/passwd"),
                "attachment; filename=\".._.._etc_passwd\"; filename*=UTF-8''.._.._etc_passwd",
            ),
            (
                Some("Grüße €.txt"),
                "attachment; filename=\"Gr__e _.txt\"; filename*=UTF-8''Gr%C3%BC%C3%9Fe%20%E2%82%AC.txt",
            ),
            (
                Some("a;b=c'd.txt"),
                "attachment; filename=\"a;b=c'd.txt\"; filename*=UTF-8''a%3Bb%3Dc%27d.txt",
            ),
        ];
        for (name, expected) in cases {
            let value = content_disposition(*name);
            assert_eq!(&value, expected, "{name:?}");
            assert!(!value.contains(['\r', '\n', '\0']));
        }
        let long = "x".repeat(1000);
        assert!(content_disposition(Some(&long)).len() < 2 * MAX_FILENAME_CHARS + 64);
    }

    #[test]
    fn http_dates_are_imf_fixdates() {
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(1_709_251_199), "Thu, 29 Feb 2024 23:59:59 GMT");
    }

    #[test]
    fn entity_tags_match_as_rfc_9110_says() {
        let tag = etag("ab12");
        assert_eq!(tag, "\"ab12\"");
        assert!(if_none_match("\"ab12\"", &tag));
        assert!(if_none_match("W/\"ab12\"", &tag));
        assert!(if_none_match("\"x\", \"ab12\"", &tag));
        assert!(if_none_match(" * ", &tag));
        assert!(!if_none_match("\"ab13\"", &tag));
        assert!(!if_none_match("ab12", &tag));
        assert!(if_range("\"ab12\"", &tag));
        assert!(!if_range("W/\"ab12\"", &tag));
        assert!(!if_range("Sun, 06 Nov 1994 08:49:37 GMT", &tag));
    }
}

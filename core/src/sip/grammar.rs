//! Character classes and a byte cursor for the RFC 3261 grammar (section 25.1), shared by the URI and
//! header-value parsers. Everything here works on `&str` that is already known to be UTF-8; slicing goes
//! through `str::get`, so no input can make it panic.

use crate::lex::{self, Decimal};

/// Where a value failed to parse: byte offset in the value and what the parser expected there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fail {
    pub at: usize,
    pub expected: &'static str,
    /// Set when the value is a URI whose scheme is not `sip` or `sips` (answered with 416, not 400).
    pub unsupported_scheme: bool,
}

impl Fail {
    pub fn new(at: usize, expected: &'static str) -> Self {
        Self {
            at,
            expected,
            unsupported_scheme: false,
        }
    }
}

/// RFC 3261 `token` characters. Narrower than [`lex::is_token_char`] (RFC 2045/4566/4975), as RFC
/// 3261 defines it: methods, header names and parameters follow this one; media types (Content-Type)
/// follow the shared media-type rules instead, so a type valid in SDP or MSRP is valid here too.
pub(crate) fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// RFC 3261 `unreserved`: alphanumerics and `mark`.
pub(crate) fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b)
}

/// RFC 3261 `word` characters (Call-ID).
pub(crate) fn is_word(b: u8) -> bool {
    is_token(b) || b"()<>:\\\"/[]?{}".contains(&b)
}

/// Space or horizontal tab (folding has already been undone when these run).
pub(crate) fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// A header name: a non-empty token.
pub(crate) fn is_token_str(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token)
}

/// A cursor over a string that never panics: positions only ever land on ASCII bytes or the end.
pub(crate) struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(s: &'a str) -> Self {
        Self { s, pos: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    pub fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or("")
    }

    pub fn fail(&self, expected: &'static str) -> Fail {
        Fail::new(self.pos, expected)
    }

    /// Moves forward `n` bytes (callers only pass lengths of ASCII runs or of found ASCII delimiters).
    pub fn advance(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.s.len());
    }

    pub fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
    }

    pub fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// `SWS b SWS`, the separators of the grammar (SEMI, EQUAL, SLASH, COMMA...).
    pub fn eat_sep(&mut self, b: u8) -> bool {
        let start = self.pos;
        self.skip_ws();
        if self.eat(b) {
            self.skip_ws();
            true
        } else {
            self.pos = start;
            false
        }
    }

    /// The longest run of ASCII bytes accepted by `f` (possibly empty).
    pub fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii() && f(b)) {
            self.pos += 1;
        }
        self.s.get(start..self.pos).unwrap_or("")
    }

    /// A non-empty token.
    pub fn token(&mut self, expected: &'static str) -> Result<&'a str, Fail> {
        let t = self.take_while(is_token);
        if t.is_empty() {
            Err(self.fail(expected))
        } else {
            Ok(t)
        }
    }

    /// A quoted-string, returned with its quotes and escapes as written.
    pub fn quoted(&mut self) -> Result<&'a str, Fail> {
        let start = self.pos;
        if self.peek() != Some(b'"') {
            return Err(self.fail("'\"'"));
        }
        let end = lex::scan_quoted(self.s.as_bytes(), start)
            .map_err(|e| Fail::new(e.offset, e.expected.as_str()))?;
        self.pos = end;
        Ok(self.s.get(start..end).unwrap_or(""))
    }
}

/// The text of a quoted-string without its quotes, with `\x` escapes resolved.
pub(crate) fn unquote(raw: &str) -> String {
    let inner = raw
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(raw);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` as a quoted-string, escaping `"` and `\`.
pub(crate) fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Splits a header value at the commas that separate list elements: not inside a quoted-string and not
/// inside `<...>`. Empty elements are skipped (RFC 7118 section 8.2 itself ends a Route list with a
/// comma). Returns `None` when the list has more than `limit` elements.
pub(crate) fn split_list(value: &str, limit: usize) -> Option<Vec<(usize, &str)>> {
    let mut items = Vec::new();
    let mut push = |start: usize, end: usize| -> bool {
        let item = value.get(start..end).unwrap_or("");
        let lead = item.len() - item.trim_start().len();
        let item = item.trim();
        if item.is_empty() {
            return true;
        }
        if items.len() == limit {
            return false;
        }
        items.push((start + lead, item));
        true
    };
    let (mut start, mut in_quotes, mut in_angle, mut escaped) = (0, false, false, false);
    for (i, &b) in value.as_bytes().iter().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' if in_quotes => escaped = true,
            b'"' if !in_angle => in_quotes = !in_quotes,
            b'<' if !in_quotes => in_angle = true,
            b'>' if !in_quotes => in_angle = false,
            b',' if !in_quotes && !in_angle => {
                if !push(start, i) {
                    return None;
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    if !push(start, value.len()) {
        return None;
    }
    Some(items)
}

/// SIP's numbers (CSeq, Content-Length, Expires, Max-Forwards, ports, status codes): at most 19
/// digits, which no SIP value needs more of. Stricter than the SDP and MSRP rule on purpose: a
/// 20-digit run is refused before its value is looked at, whatever the header.
const SIP_DECIMAL: Decimal = Decimal {
    max_digits: 19,
    leading_zeros: true,
};

/// Parses 1*DIGIT into a u64, refusing more than 19 digits (so it never overflows).
pub(crate) fn digits(s: &str) -> Option<u64> {
    SIP_DECIMAL.parse(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_splitting_respects_quotes_and_angles() {
        let cases: &[(&str, &[&str])] = &[
            ("a, b", &["a", "b"]),
            (
                "\"x, y\" <sip:a@b>, <sip:c@d;p=\",\">",
                &["\"x, y\" <sip:a@b>", "<sip:c@d;p=\",\">"],
            ),
            ("<sip:a@b>,\r <sip:c@d>,", &["<sip:a@b>", "<sip:c@d>"]),
            (" , ,", &[]),
            ("\"unterminated, x", &["\"unterminated, x"]),
            ("\"a\\\"b, c\" <sip:x@y>", &["\"a\\\"b, c\" <sip:x@y>"]),
        ];
        for (input, want) in cases {
            let got: Vec<&str> = split_list(input, 10)
                .unwrap_or_default()
                .into_iter()
                .map(|(_, s)| s)
                .collect();
            assert_eq!(&got, want, "{input:?}");
        }
        assert_eq!(split_list("a,b,c", 2), None);
        assert_eq!(split_list("  a, b", 5).map(|v| v[1].0), Some(5));
    }

    #[test]
    fn quoted_strings() {
        for (input, raw, text) in [
            ("\"Alice\" <", "\"Alice\"", "Alice"),
            ("\"a\\\"b\\\\\"", "\"a\\\"b\\\\\"", "a\"b\\"),
            ("\"\"", "\"\"", ""),
            ("\"Zoë\"", "\"Zoë\"", "Zoë"),
        ] {
            let mut c = Cursor::new(input);
            assert_eq!(c.quoted(), Ok(raw), "{input:?}");
            assert_eq!(unquote(raw), text);
            assert_eq!(unquote(&quote(text)), text);
        }
        for bad in [
            "\"open",
            "\"ends with escape\\",
            "x",
            "\"\\é\"",
            "\"a\r\nb\"",
            "\"\\\n\"",
            "\"\u{7f}\"",
        ] {
            assert!(Cursor::new(bad).quoted().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn digit_runs() {
        assert_eq!(digits("0"), Some(0));
        assert_eq!(digits("4294967296"), Some(4_294_967_296));
        assert_eq!(digits(""), None);
        assert_eq!(digits("12a"), None);
        assert_eq!(digits("99999999999999999999"), None);
        assert_eq!(digits("+1"), None);
    }
}

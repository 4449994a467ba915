//! Lexical rules shared by the text codecs ([`crate::msrp`], [`crate::sdp`], [`crate::sip`],
//! [`crate::ft_http`], [`crate::first_value`]): token characters, bounded decimal numbers, quoted
//! strings and media types.
//!
//! Each caller keeps the rules its own grammar has through parameters ([`Decimal`],
//! [`MediaTypeSyntax`]); what differs on purpose is said where the parameters are defined. Every
//! function here works on bytes or on `&str` already known to be UTF-8, indexes only through `get`,
//! and ends within its input: no input can make it panic or loop.

/// A token character of RFC 4566 (`token-char`), RFC 4975 (`token`) and RFC 2045 (printable ASCII
/// but SP and the tspecials `()<>@,;:\"/[]?=`): the three grammars define the same set.
///
/// SIP's token (RFC 3261 section 25.1) is narrower and stays in `sip::grammar`: SIP methods,
/// header names and URI parameters follow it; SIP media types follow this one.
pub(crate) fn is_token_char(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x27 | 0x2A..=0x2B | 0x2D..=0x2E | 0x30..=0x39 | 0x41..=0x5A | 0x5E..=0x7E)
}

/// A non-empty run of [`is_token_char`] characters.
pub(crate) fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(is_token_char)
}

/// RFC 3986 `unreserved`: `A-Z a-z 0-9 - . _ ~` (SIP's `unreserved` adds its marks and stays in
/// `sip::grammar`).
pub(crate) fn is_uri_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// The byte two hex digits (either case) stand for, as in a percent-encoding or a hash; `None`
/// unless `pair` is exactly two hex digits.
pub(crate) fn hex_byte(pair: &[u8]) -> Option<u8> {
    let mut byte = [0u8];
    hex::decode_to_slice(pair, &mut byte).ok()?;
    Some(byte[0])
}

/// What a decimal field accepts besides `1*DIGIT`; [`Decimal::parse`] reads one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Decimal {
    /// The most digits accepted, whatever their value (a bound on the work, or a rule of the
    /// format).
    pub(crate) max_digits: usize,
    /// Whether `0` may start a number of two or more digits.
    pub(crate) leading_zeros: bool,
}

/// Why [`Decimal::parse`] refused a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DecimalError {
    /// Empty, or a byte other than an ASCII digit (a sign, a space, a letter).
    NotDigits,
    /// A leading zero where the format has one spelling per number.
    LeadingZero,
    /// More digits than allowed, or a value past `u64::MAX`.
    TooLarge,
}

impl Decimal {
    /// Any number of digits, leading zeros included, while the value fits in 64 bits: SDP numbers
    /// (RFC 4566 writes no bound) and MSRP Byte-Range positions.
    pub(crate) const U64: Self = Self {
        max_digits: usize::MAX,
        leading_zeros: true,
    };

    /// Reads `text`, which must be all digits.
    pub(crate) fn parse(self, text: &str) -> Result<u64, DecimalError> {
        let bytes = text.as_bytes();
        if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(DecimalError::NotDigits);
        }
        if !self.leading_zeros && bytes.len() > 1 && bytes.first() == Some(&b'0') {
            return Err(DecimalError::LeadingZero);
        }
        if bytes.len() > self.max_digits {
            return Err(DecimalError::TooLarge);
        }
        bytes
            .iter()
            .try_fold(0u64, |value, &digit| {
                value.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
            })
            .ok_or(DecimalError::TooLarge)
    }
}

/// Where a media type is written, which decides its whitespace and parameter rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MediaTypeSyntax {
    /// Inside an SDP attribute (the RFC 5547 `type:` selector, RFC 4975 `accept-types`): no
    /// whitespace outside quotes, since a space ends the media type, and every parameter is
    /// `name=value` (RFC 2045).
    Sdp,
    /// A header value (SIP Content-Type, RFC 3261 section 20.15; MSRP Content-Type, RFC 4975
    /// section 9): SP and HTAB may surround `/`, `;` and `=` (SIP's `SWS`, read leniently for MSRP
    /// too); a parameter may be a bare name (RFC 4975 `gen-param`); an unquoted value may also be a
    /// host with `[`, `]` and `:` (RFC 4975 `pval = token / host / quoted-string`).
    Header,
}

/// What a scanner expected where the input went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expected {
    /// The media type (a token).
    MediaType,
    /// The `/` between type and subtype.
    Slash,
    /// The media subtype (a token).
    MediaSubtype,
    /// A parameter name after `;` (a token).
    ParameterName,
    /// `=` and a value after a parameter name.
    ParameterValue,
    /// The `"` closing a quoted string opened at the error's offset.
    ClosingQuote,
    /// An ASCII character other than CR and LF after a `\` in a quoted string.
    EscapedCharacter,
    /// Text in a quoted string: no control character other than HTAB.
    QuotedText,
}

impl Expected {
    /// A short phrase for error messages (SIP carries it in its errors).
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::MediaType => "media type",
            Self::Slash => "'/'",
            Self::MediaSubtype => "media subtype",
            Self::ParameterName => "parameter name",
            Self::ParameterValue => "parameter value",
            Self::ClosingQuote => "closing '\"'",
            Self::EscapedCharacter => "escaped character",
            Self::QuotedText => "text in quotes",
        }
    }
}

/// Where and why a scanner stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    /// Byte offset in the scanned input (for [`Expected::ClosingQuote`], of the opening quote).
    pub(crate) offset: usize,
    /// What was expected there.
    pub(crate) expected: Expected,
}

fn fail<T>(offset: usize, expected: Expected) -> Result<T, SyntaxError> {
    Err(SyntaxError { offset, expected })
}

/// Scans the quoted string (RFC 3261 and RFC 2045 `quoted-string`: `\` escapes any ASCII but CR
/// and LF; no control character but HTAB; UTF-8 allowed) whose opening quote is at `open`.
/// Returns the offset just past the closing quote.
pub(crate) fn scan_quoted(bytes: &[u8], open: usize) -> Result<usize, SyntaxError> {
    if bytes.get(open) != Some(&b'"') {
        return fail(open, Expected::ClosingQuote);
    }
    let mut at = open + 1;
    // Each pass moves `at` forward by at least one byte, so the loop ends within the input.
    loop {
        match bytes.get(at) {
            None => return fail(open, Expected::ClosingQuote),
            Some(b'"') => return Ok(at + 1),
            Some(b'\\') => {
                if bytes
                    .get(at + 1)
                    .is_none_or(|&b| !b.is_ascii() || b == b'\r' || b == b'\n')
                {
                    return fail(at, Expected::EscapedCharacter);
                }
                at += 2;
            }
            Some(&b) if (b < 0x20 && b != b'\t') || b == 0x7f => {
                return fail(at, Expected::QuotedText);
            }
            Some(_) => at += 1,
        }
    }
}

/// Scans `type "/" subtype *( ";" parameter )` from `from`, by the rules of `syntax`. Returns the
/// offset just past the media type; the caller decides what may follow (the end, a space, another
/// list entry). Tokens are [`is_token_char`] runs, so `*` (as in `image/*`) is a subtype.
pub(crate) fn scan_media_type(
    bytes: &[u8],
    from: usize,
    syntax: MediaTypeSyntax,
) -> Result<usize, SyntaxError> {
    let header = syntax == MediaTypeSyntax::Header;
    let skip_ws = |mut at: usize| {
        while header && matches!(bytes.get(at), Some(b' ' | b'\t')) {
            at += 1;
        }
        at
    };
    let run = |mut at: usize, accept: &dyn Fn(u8) -> bool| {
        while bytes.get(at).is_some_and(|&b| accept(b)) {
            at += 1;
        }
        at
    };
    let type_end = run(from, &is_token_char);
    if type_end == from {
        return fail(from, Expected::MediaType);
    }
    let slash = skip_ws(type_end);
    if bytes.get(slash) != Some(&b'/') {
        return fail(slash, Expected::Slash);
    }
    let subtype_start = skip_ws(slash + 1);
    let mut end = run(subtype_start, &is_token_char);
    if end == subtype_start {
        return fail(subtype_start, Expected::MediaSubtype);
    }
    let value_char = |b: u8| is_token_char(b) || (header && matches!(b, b'[' | b']' | b':'));
    // Each parameter consumes at least `;x`, so the loop ends within the input.
    loop {
        let semicolon = skip_ws(end);
        if bytes.get(semicolon) != Some(&b';') {
            return Ok(end);
        }
        let name_start = skip_ws(semicolon + 1);
        let name_end = run(name_start, &is_token_char);
        if name_end == name_start {
            return fail(name_start, Expected::ParameterName);
        }
        let equals = skip_ws(name_end);
        if bytes.get(equals) != Some(&b'=') {
            if header {
                end = name_end;
                continue;
            }
            return fail(name_end, Expected::ParameterValue);
        }
        let value_start = skip_ws(equals + 1);
        end = if bytes.get(value_start) == Some(&b'"') {
            scan_quoted(bytes, value_start)?
        } else {
            let value_end = run(value_start, &value_char);
            if value_end == value_start {
                return fail(value_start, Expected::ParameterValue);
            }
            value_end
        };
    }
}

/// Whether all of `text` is one media type written by the rules of `syntax`.
pub(crate) fn is_media_type(text: &str, syntax: MediaTypeSyntax) -> bool {
    scan_media_type(text.as_bytes(), 0, syntax).is_ok_and(|end| end == text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_chars_are_rfc_2045_printable_ascii_without_tspecials() {
        for b in 0..=u8::MAX {
            let rfc_2045 = b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b);
            assert_eq!(is_token_char(b), rfc_2045, "{b:#04x}");
        }
        assert!(is_token("vnd.gsma.rcs-ft-http+xml"));
        assert!(!is_token(""));
        assert!(!is_token("a b"));
    }

    #[test]
    fn hex_bytes() {
        assert_eq!(hex_byte(b"0a"), Some(0x0a));
        assert_eq!(hex_byte(b"FF"), Some(0xff));
        for bad in [&b""[..], b"f", b"fff", b"+f", b"g0", b" 1"] {
            assert_eq!(hex_byte(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn decimals_follow_their_rules() {
        let canonical = Decimal {
            max_digits: usize::MAX,
            leading_zeros: false,
        };
        let short = Decimal {
            max_digits: 3,
            leading_zeros: true,
        };
        let cases: &[(Decimal, &str, Result<u64, DecimalError>)] = &[
            (Decimal::U64, "0", Ok(0)),
            (Decimal::U64, "0042", Ok(42)),
            (Decimal::U64, "18446744073709551615", Ok(u64::MAX)),
            (
                Decimal::U64,
                "00000000000000000000018446744073709551615",
                Ok(u64::MAX),
            ),
            (
                Decimal::U64,
                "18446744073709551616",
                Err(DecimalError::TooLarge),
            ),
            (
                Decimal::U64,
                "99999999999999999999",
                Err(DecimalError::TooLarge),
            ),
            (Decimal::U64, "", Err(DecimalError::NotDigits)),
            (Decimal::U64, "+1", Err(DecimalError::NotDigits)),
            (Decimal::U64, "-1", Err(DecimalError::NotDigits)),
            (Decimal::U64, " 1", Err(DecimalError::NotDigits)),
            (Decimal::U64, "1a", Err(DecimalError::NotDigits)),
            (Decimal::U64, "١", Err(DecimalError::NotDigits)),
            (canonical, "0", Ok(0)),
            (canonical, "10", Ok(10)),
            (canonical, "01", Err(DecimalError::LeadingZero)),
            (canonical, "00", Err(DecimalError::LeadingZero)),
            (short, "999", Ok(999)),
            (short, "007", Ok(7)),
            (short, "1000", Err(DecimalError::TooLarge)),
            (short, "0001", Err(DecimalError::TooLarge)),
        ];
        for (rules, text, expected) in cases {
            assert_eq!(rules.parse(text), *expected, "{text:?} under {rules:?}");
        }
    }

    #[test]
    fn quoted_strings() {
        let ok: &[(&str, usize)] = &[
            ("\"\"", 2),
            ("\"a b\" rest", 5),
            ("\"a\\\"b\"", 6),
            ("\"tab\there\"", 10),
            ("\"zoë\"", 6),
        ];
        for (text, end) in ok {
            assert_eq!(scan_quoted(text.as_bytes(), 0), Ok(*end), "{text:?}");
        }
        let bad: &[(&str, SyntaxError)] = &[
            (
                "\"open",
                SyntaxError {
                    offset: 0,
                    expected: Expected::ClosingQuote,
                },
            ),
            (
                "\"ends\\",
                SyntaxError {
                    offset: 5,
                    expected: Expected::EscapedCharacter,
                },
            ),
            (
                "\"a\\\r\"",
                SyntaxError {
                    offset: 2,
                    expected: Expected::EscapedCharacter,
                },
            ),
            (
                "\"a\r\nb\"",
                SyntaxError {
                    offset: 2,
                    expected: Expected::QuotedText,
                },
            ),
            (
                "x",
                SyntaxError {
                    offset: 0,
                    expected: Expected::ClosingQuote,
                },
            ),
        ];
        for (text, error) in bad {
            assert_eq!(scan_quoted(text.as_bytes(), 0), Err(*error), "{text:?}");
        }
    }

    #[test]
    fn media_types_by_syntax() {
        use MediaTypeSyntax::{Header, Sdp};
        let ends: &[(&str, MediaTypeSyntax, usize)] = &[
            ("text/plain", Sdp, 10),
            ("image/*", Sdp, 7),
            ("text/plain;charset=\"UTF-8\" size:1", Sdp, 26),
            ("text/plain;x=\"a b\" image/*", Sdp, 18),
            ("text/plain ;a=b", Sdp, 10),
            ("application/vnd.gsma.rcs-ft-http+xml", Header, 36),
            ("text/plain ; charset = UTF-8 ", Header, 28),
            ("text / plain", Header, 12),
            ("multipart/mixed;boundary", Header, 24),
            ("message/external-body;site=[2001:db8::1]:80", Header, 43),
            ("a/b{|}~#$", Header, 9),
        ];
        for (text, syntax, end) in ends {
            assert_eq!(
                scan_media_type(text.as_bytes(), 0, *syntax),
                Ok(*end),
                "{text:?} as {syntax:?}"
            );
        }
        let errors: &[(&str, MediaTypeSyntax, usize, Expected)] = &[
            ("", Sdp, 0, Expected::MediaType),
            ("/plain", Header, 0, Expected::MediaType),
            ("sdp", Header, 3, Expected::Slash),
            ("text /plain", Sdp, 4, Expected::Slash),
            ("text/", Sdp, 5, Expected::MediaSubtype),
            ("text/plain;", Header, 11, Expected::ParameterName),
            ("text/plain;x", Sdp, 12, Expected::ParameterValue),
            ("text/plain;x=", Sdp, 13, Expected::ParameterValue),
            ("a/b;c=[v6]", Sdp, 6, Expected::ParameterValue),
            ("a/b;c=\"open", Sdp, 6, Expected::ClosingQuote),
            ("a/b;c=\"x\ny\"", Header, 8, Expected::QuotedText),
        ];
        for (text, syntax, offset, expected) in errors {
            assert_eq!(
                scan_media_type(text.as_bytes(), 0, *syntax),
                Err(SyntaxError {
                    offset: *offset,
                    expected: *expected
                }),
                "{text:?} as {syntax:?}"
            );
        }
        assert!(is_media_type("text/plain;charset=utf-8", Header));
        assert!(!is_media_type("text/plain x", Header));
        assert!(!is_media_type("text/plain\r\na=evil", Sdp));
    }
}

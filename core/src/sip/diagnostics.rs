//! The headers that say why: `Warning` on an error response (RFC 3261 section 20.43) and `Reason`
//! on a BYE (RFC 3326). Every answer and BYE the core writes with a reason is written through these
//! types, and every one it reads is read through them, so quoting is done one way.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::SipMessage;
use super::grammar::{Cursor, is_token, quote, unquote};

/// The warn-code for a warning that fits no other (RFC 3261 section 20.43: "miscellaneous").
pub const MISCELLANEOUS_WARNING: u16 = 399;

/// A `Warning` header value: `<code> <agent> "<text>"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// The three-digit warn-code.
    pub code: u16,
    /// Who adds the warning (a host name or a pseudonym).
    pub agent: String,
    /// The warning's text.
    pub text: String,
}

impl Warning {
    /// A warning with code 399 from `agent`: line breaks in `text` become spaces.
    pub fn miscellaneous(agent: &str, text: &str) -> Self {
        Self {
            code: MISCELLANEOUS_WARNING,
            agent: agent.to_owned(),
            text: text.replace(['\r', '\n'], " "),
        }
    }

    /// Reads a `Warning` value (the first, if the header lists several).
    pub fn parse(value: &str) -> Option<Self> {
        let mut cursor = Cursor::new(value.trim());
        let code = cursor.take_while(|b| b.is_ascii_digit());
        if code.len() != 3 || !cursor.eat(b' ') {
            return None;
        }
        let agent = cursor.take_while(|b| b != b' ');
        if agent.is_empty() || !cursor.eat(b' ') {
            return None;
        }
        let text = cursor.quoted().ok()?;
        Some(Self {
            code: code.parse().ok()?,
            agent: agent.to_owned(),
            text: unquote(text),
        })
    }

    /// The warning `response` carries, if it has one that reads.
    pub fn of(response: &SipMessage) -> Option<Self> {
        response.header("Warning").and_then(Self::parse)
    }

    /// Why `response` says what it says: its warning's text, or else its reason phrase.
    pub fn explanation(response: &SipMessage) -> String {
        Self::of(response)
            .map(|warning| warning.text)
            .or_else(|| response.reason().map(str::to_owned))
            .unwrap_or_default()
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03} {} {}", self.code, self.agent, quote(&self.text))
    }
}

/// A `Reason` header value (RFC 3326): `SIP ;cause=<code> ;text="<text>"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// The protocol the cause is a code of (`SIP` for the reasons the core writes).
    pub protocol: String,
    /// The `cause` parameter, if it is a number.
    pub cause: Option<u16>,
    /// The `text` parameter, unquoted.
    pub text: Option<String>,
}

impl Reason {
    /// A SIP reason: the transfer ended as a response with `cause` would say, for `text`.
    pub fn sip(cause: u16, text: &str) -> Self {
        Self {
            protocol: "SIP".to_owned(),
            cause: Some(cause),
            text: Some(text.replace(['\r', '\n'], " ")),
        }
    }

    /// Reads a `Reason` value; parameters it does not know are skipped.
    pub fn parse(value: &str) -> Option<Self> {
        let mut cursor = Cursor::new(value.trim());
        let protocol = cursor.take_while(is_token);
        if protocol.is_empty() {
            return None;
        }
        let mut reason = Self {
            protocol: protocol.to_owned(),
            cause: None,
            text: None,
        };
        while cursor.eat_sep(b';') {
            let name = cursor.take_while(is_token).to_ascii_lowercase();
            if !cursor.eat_sep(b'=') {
                continue;
            }
            let value = if cursor.peek() == Some(b'"') {
                unquote(cursor.quoted().ok()?)
            } else {
                cursor.take_while(is_token).to_owned()
            };
            match name.as_str() {
                "cause" => reason.cause = value.parse().ok(),
                "text" => reason.text = Some(value),
                _ => {}
            }
        }
        cursor.skip_ws();
        cursor.at_end().then_some(reason)
    }

    /// The reason `bye` carries, if it has one that reads.
    pub fn of(bye: &SipMessage) -> Option<Self> {
        bye.header("Reason").and_then(Self::parse)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.protocol)?;
        if let Some(cause) = self.cause {
            write!(f, " ;cause={cause}")?;
        }
        if let Some(text) = &self.text {
            write!(f, " ;text={}", quote(text))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_as_in_rfc_3261() {
        // RFC 3261 section 20.43's examples.
        for (value, code, agent, text) in [
            (
                "307 isi.edu \"Session parameter 'foo' not understood\"",
                307,
                "isi.edu",
                "Session parameter 'foo' not understood",
            ),
            (
                "301 isi.edu \"Incompatible network address type 'E.164'\"",
                301,
                "isi.edu",
                "Incompatible network address type 'E.164'",
            ),
        ] {
            let warning = Warning::parse(value).expect(value);
            assert_eq!(
                (warning.code, warning.agent.as_str(), warning.text.as_str()),
                (code, agent, text)
            );
            assert_eq!(warning.to_string(), value);
        }
        assert_eq!(Warning::parse("99 a \"b\""), None);
        assert_eq!(Warning::parse("399 a b"), None);
    }

    #[test]
    fn warning_text_is_quoted_and_read_back() {
        let warning = Warning::miscellaneous("rcs-ft", "a \"quoted\" \\ name\r\nand more");
        let written = warning.to_string();
        assert_eq!(
            written,
            "399 rcs-ft \"a \\\"quoted\\\" \\\\ name  and more\""
        );
        assert_eq!(Warning::parse(&written), Some(warning));
    }

    #[test]
    fn reasons_as_in_rfc_3326() {
        // RFC 3326 section 2's examples.
        let reason = Reason::parse("SIP ;cause=200 ;text=\"Call completed elsewhere\"").unwrap();
        assert_eq!(
            reason,
            Reason {
                protocol: "SIP".into(),
                cause: Some(200),
                text: Some("Call completed elsewhere".into())
            }
        );
        assert_eq!(
            reason.to_string(),
            "SIP ;cause=200 ;text=\"Call completed elsewhere\""
        );
        let q850 = Reason::parse("Q.850 ;cause=16 ;text=\"Terminated\"").unwrap();
        assert_eq!((q850.protocol.as_str(), q850.cause), ("Q.850", Some(16)));
        let reason = Reason::parse("SIP;cause=580;text=\"Precondition Failure\"").unwrap();
        assert_eq!(reason.cause, Some(580));
        let odd = Reason::parse("SIP ;x=1 ;cause=abc").unwrap();
        assert_eq!((odd.cause, odd.text), (None, None));
        let written = Reason::sip(404, "unknown \"user\"\r\n").to_string();
        assert_eq!(written, "SIP ;cause=404 ;text=\"unknown \\\"user\\\"  \"");
        assert_eq!(
            Reason::parse(&written).and_then(|r| r.text),
            Some("unknown \"user\"  ".into())
        );
    }
}

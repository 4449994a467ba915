//! Typed SIP header values: methods, Via, name-addr (From, To, Contact, Route, Record-Route), CSeq,
//! and the header-name table with the RFC 3261 compact forms.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::SipError;
use super::grammar::{self, Cursor, Fail, is_token, quote, unquote};
use super::uri::{Host, Param, SipUri, find_param};

/// A SIP request method. Method names are case-sensitive (RFC 3261 section 7.1): `invite` is
/// `Other("invite")`, not `Invite`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// REGISTER (RFC 3261 section 10).
    Register,
    /// INVITE.
    Invite,
    /// ACK.
    Ack,
    /// BYE.
    Bye,
    /// CANCEL.
    Cancel,
    /// MESSAGE (RFC 3428).
    Message,
    /// OPTIONS.
    Options,
    /// Any other extension method, as written (a token). Never holds one of the names above.
    Other(String),
}

impl Method {
    /// The method name as written on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Register => "REGISTER",
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Message => "MESSAGE",
            Method::Options => "OPTIONS",
            Method::Other(m) => m,
        }
    }

    /// The method for a token; `None` if `token` is not a non-empty RFC 3261 token.
    pub fn from_token(token: &str) -> Option<Method> {
        if !grammar::is_token_str(token) {
            return None;
        }
        Some(match token {
            "REGISTER" => Method::Register,
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "MESSAGE" => Method::Message,
            "OPTIONS" => Method::Options,
            other => Method::Other(other.to_owned()),
        })
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Method {
    type Err = SipError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Method::from_token(s).ok_or(SipError::InvalidInput {
            what: "method token",
        })
    }
}

impl Serialize for Method {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Method {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Method::from_token(&s).ok_or_else(|| serde::de::Error::custom("not a SIP method token"))
    }
}

/// The transport of a Via header (`SIP/2.0/<transport>`). Compared case-insensitively on parse.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// SCTP.
    Sctp,
    /// TLS over SCTP.
    TlsSctp,
    /// WebSocket (RFC 7118).
    Ws,
    /// Secure WebSocket (RFC 7118).
    Wss,
    /// Any other transport token, as written.
    Other(String),
}

impl Transport {
    /// The transport token as written in a Via (uppercase for the known ones).
    pub fn as_str(&self) -> &str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Sctp => "SCTP",
            Transport::TlsSctp => "TLS-SCTP",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
            Transport::Other(t) => t,
        }
    }

    fn from_token(token: &str) -> Transport {
        const KNOWN: [Transport; 7] = [
            Transport::Udp,
            Transport::Tcp,
            Transport::Tls,
            Transport::Sctp,
            Transport::TlsSctp,
            Transport::Ws,
            Transport::Wss,
        ];
        KNOWN
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(token))
            .unwrap_or_else(|| Transport::Other(token.to_owned()))
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Transport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Transport {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        if grammar::is_token_str(&s) {
            Ok(Transport::from_token(&s))
        } else {
            Err(serde::de::Error::custom("not a transport token"))
        }
    }
}

/// One Via header value: `SIP/2.0/<transport> <host>[:<port>]` and its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via {
    transport: Transport,
    host: Host,
    port: Option<u16>,
    params: Vec<Param>,
}

impl Via {
    /// The transport (`WS` or `WSS` for RFC 7118 clients).
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The sent-by host (a random `.invalid` domain for RFC 7118 clients).
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The sent-by port, if written.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// All parameters in order.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The first parameter called `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&Param> {
        find_param(&self.params, name)
    }

    /// The `branch` parameter (starts with `z9hG4bK` for RFC 3261 clients).
    pub fn branch(&self) -> Option<&str> {
        self.param("branch").and_then(Param::value)
    }

    /// The `received` parameter a server adds (RFC 3261 section 18.2.1).
    pub fn received(&self) -> Option<&str> {
        self.param("received").and_then(Param::value)
    }

    /// Whether an `rport` parameter is present, with or without a value (RFC 3581).
    pub fn has_rport(&self) -> bool {
        self.param("rport").is_some()
    }

    /// The `rport=<port>` value a server filled in, if any.
    pub fn rport(&self) -> Option<u16> {
        self.param("rport")
            .and_then(Param::value)
            .and_then(|v| v.parse().ok())
    }

    /// `sent-by` as written in a Via: `host` or `host:port`.
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.to_string(),
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Via, Fail> {
        let mut cur = Cursor::new(s);
        let name = cur.token("SIP")?;
        if !name.eq_ignore_ascii_case("SIP") {
            return Err(Fail::new(0, "SIP/2.0 protocol"));
        }
        if !cur.eat_sep(b'/') {
            return Err(cur.fail("'/'"));
        }
        let at = cur.pos();
        if cur.token("2.0")? != "2.0" {
            return Err(Fail::new(at, "SIP version 2.0"));
        }
        if !cur.eat_sep(b'/') {
            return Err(cur.fail("'/'"));
        }
        let transport = Transport::from_token(cur.token("transport")?);
        let before = cur.pos();
        cur.skip_ws();
        if cur.pos() == before {
            return Err(cur.fail("whitespace before sent-by"));
        }
        let host = Host::parse_at(&mut cur)?;
        let mut port = None;
        if cur.eat_sep(b':') {
            let at = cur.pos();
            let p = cur.take_while(|b| b.is_ascii_digit());
            port = Some(
                grammar::digits(p)
                    .and_then(|n| u16::try_from(n).ok())
                    .ok_or(Fail::new(at, "port (0-65535)"))?,
            );
        }
        let params = header_params(&mut cur)?;
        Ok(Via {
            transport,
            host,
            port,
            params,
        })
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.sent_by())?;
        for p in &self.params {
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// `; name [= value]` header parameters up to the end of the value. A value is a token, a host
/// (IPv6 addresses included, for `received`) or a quoted-string.
pub(crate) fn header_params(cur: &mut Cursor<'_>) -> Result<Vec<Param>, Fail> {
    let mut params = Vec::new();
    loop {
        cur.skip_ws();
        if cur.at_end() {
            return Ok(params);
        }
        if !cur.eat_sep(b';') {
            return Err(cur.fail("';' or end of value"));
        }
        let name = cur.token("parameter name")?;
        let value = if cur.eat_sep(b'=') {
            if cur.peek() == Some(b'"') {
                Some(cur.quoted()?)
            } else {
                let v = cur.take_while(|b| is_token(b) || b"[]:".contains(&b));
                if v.is_empty() {
                    return Err(cur.fail("parameter value"));
                }
                Some(v)
            }
        } else {
            None
        };
        params.push(Param::new_unchecked(name, value));
    }
}

/// A name-addr or addr-spec header value: From, To, Contact, Route, Record-Route (RFC 3261 section
/// 20). The parameters are the header's, not the URI's: `tag`, `expires`, `+sip.instance`...
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAddr {
    display_name: Option<String>,
    uri: SipUri,
    params: Vec<Param>,
}

impl NameAddr {
    /// A value with just a URI.
    pub fn new(uri: SipUri) -> Self {
        Self {
            display_name: None,
            uri,
            params: Vec::new(),
        }
    }

    /// Parses one header value such as `"Alice" <sip:alice@example.com>;tag=1928301774`.
    pub fn parse(s: &str) -> Result<NameAddr, SipError> {
        NameAddr::parse_value(s).map_err(|f| super::uri::fail_to_error(f, s))
    }

    /// This value with display name `name` (written as a quoted-string). Fails if `name` holds
    /// control characters other than tab, which a quoted-string cannot carry.
    pub fn with_display_name(mut self, name: &str) -> Result<Self, SipError> {
        if name
            .chars()
            .any(|c| (c.is_control() && c != '\t') || c == '\u{7f}')
        {
            return Err(SipError::InvalidInput {
                what: "display name (no control characters)",
            });
        }
        self.display_name = Some(name.to_owned());
        Ok(self)
    }

    /// The display name without quotes or escapes.
    pub fn display_name(&self) -> Option<&str> {
        self.display_name.as_deref()
    }

    /// The URI.
    pub fn uri(&self) -> &SipUri {
        &self.uri
    }

    /// Header parameters in order.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The first header parameter called `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&Param> {
        find_param(&self.params, name)
    }

    /// The `tag` parameter (From and To).
    pub fn tag(&self) -> Option<&str> {
        self.param("tag").and_then(Param::value)
    }

    /// The `expires` parameter (Contact in REGISTER), saturating at `u32::MAX`.
    pub fn expires(&self) -> Option<u32> {
        self.param("expires")
            .and_then(Param::value)
            .and_then(grammar::digits)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Sets (or replaces) header parameter `name`. The value must be a token or a quoted-string.
    pub fn set_param(&mut self, name: &str, value: Option<&str>) -> Result<(), SipError> {
        let bad = SipError::BadUri {
            column: 0,
            expected: "header parameter (token or quoted-string value)",
        };
        if !grammar::is_token_str(name) {
            return Err(bad);
        }
        if let Some(v) = value {
            let mut cur = Cursor::new(v);
            let ok = if v.starts_with('"') {
                cur.quoted().is_ok_and(|q| q.len() == v.len())
            } else {
                !v.is_empty() && v.bytes().all(|b| is_token(b) || b"[]:".contains(&b))
            };
            if !ok {
                return Err(bad);
            }
        }
        let param = Param::new_unchecked(name, value);
        match self
            .params
            .iter_mut()
            .find(|p| p.name().eq_ignore_ascii_case(name))
        {
            Some(existing) => *existing = param,
            None => self.params.push(param),
        }
        Ok(())
    }

    /// Removes every header parameter called `name`; returns whether one was there.
    pub fn remove_param(&mut self, name: &str) -> bool {
        let before = self.params.len();
        self.params.retain(|p| !p.name().eq_ignore_ascii_case(name));
        before != self.params.len()
    }

    pub(crate) fn parse_value(s: &str) -> Result<NameAddr, Fail> {
        let mut cur = Cursor::new(s);
        cur.skip_ws();
        let mut display_name = None;
        let bracketed = if cur.peek() == Some(b'"') {
            display_name = Some(unquote(cur.quoted()?));
            cur.skip_ws();
            if cur.peek() != Some(b'<') {
                return Err(cur.fail("'<' after display name"));
            }
            true
        } else {
            // `*(token LWS) <` is a name-addr; anything else is an addr-spec.
            let rest = cur.rest();
            let words = rest
                .bytes()
                .take_while(|&b| is_token(b) || grammar::is_ws(b))
                .count();
            if rest.as_bytes().get(words) == Some(&b'<') {
                let name = rest.get(..words).unwrap_or("").trim();
                if !name.is_empty() {
                    display_name = Some(name.split_whitespace().collect::<Vec<_>>().join(" "));
                }
                cur.advance(words);
                true
            } else {
                false
            }
        };
        let uri = if bracketed {
            cur.eat(b'<');
            let inner_start = cur.pos();
            let rest = cur.rest();
            let close = rest.find('>').ok_or(cur.fail("'>'"))?;
            let inner = without_ws_around_semicolons(rest.get(..close).unwrap_or(""));
            let uri = super::uri::parse_uri(&inner).map_err(|f| Fail {
                at: inner_start + f.at,
                ..f
            })?;
            cur.advance(close + 1);
            uri
        } else {
            SipUri::parse_addr_spec(&mut cur)?
        };
        let params = header_params(&mut cur)?;
        Ok(NameAddr {
            display_name,
            uri,
            params,
        })
    }
}

/// The URI between angle brackets with whitespace around `;` removed. RFC texts fold long headers
/// inside the brackets (RFC 7118 section 8.2 F1 and F3 break Contact before `;gr=`), which leaves
/// whitespace before a URI parameter once the fold is undone. The brackets make the URI's extent
/// unambiguous, so that whitespace is accepted there and dropped; anywhere else in a URI it is still an
/// error.
fn without_ws_around_semicolons(inner: &str) -> std::borrow::Cow<'_, str> {
    if !inner.bytes().any(grammar::is_ws) {
        return std::borrow::Cow::Borrowed(inner);
    }
    let bytes = inner.as_bytes();
    let mut out = String::with_capacity(inner.len());
    let mut i = 0;
    while i < bytes.len() {
        if grammar::is_ws(bytes[i]) {
            let run_end = i + bytes[i..]
                .iter()
                .take_while(|&&b| grammar::is_ws(b))
                .count();
            let next_is_semi = bytes.get(run_end) == Some(&b';');
            let prev_is_semi = i > 0 && bytes[i - 1] == b';';
            if !(next_is_semi || prev_is_semi) {
                out.push_str(&inner[i..run_end]);
            }
            i = run_end;
        } else {
            let char_len = inner[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&inner[i..i + char_len]);
            i += char_len;
        }
    }
    std::borrow::Cow::Owned(out)
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.display_name {
            write!(f, "{} ", quote(name))?;
        }
        write!(f, "<{}>", self.uri)?;
        for p in &self.params {
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl FromStr for NameAddr {
    type Err = SipError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NameAddr::parse(s)
    }
}

impl Serialize for NameAddr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NameAddr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        NameAddr::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The CSeq header: sequence number and method.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CSeq {
    /// The sequence number, below 2^31 (RFC 3261 section 8.1.1.5).
    pub seq: u32,
    /// The method of the request (ACK and CANCEL carry their own).
    pub method: Method,
}

/// The largest CSeq number RFC 3261 allows (2^31 - 1).
pub const MAX_CSEQ: u32 = 0x7fff_ffff;

/// The largest first CSeq a new request sequence draws (a builder's request, a UAS-side dialog's
/// first request): leaves room for 2^31 - 2^20 requests before [`MAX_CSEQ`].
pub(crate) const MAX_INITIAL_CSEQ: u32 = 1 << 20;

impl CSeq {
    pub(crate) fn parse(s: &str) -> Result<CSeq, Fail> {
        let mut cur = Cursor::new(s.trim());
        let digits = cur.take_while(|b| b.is_ascii_digit());
        let seq = grammar::digits(digits)
            .and_then(|n| u32::try_from(n).ok())
            .filter(|&n| n <= MAX_CSEQ)
            .ok_or(Fail::new(0, "sequence number below 2^31"))?;
        let before = cur.pos();
        cur.skip_ws();
        if cur.pos() == before {
            return Err(cur.fail("whitespace before method"));
        }
        let at = cur.pos();
        let method = Method::from_token(cur.token("method")?).ok_or(Fail::new(at, "method"))?;
        if !cur.at_end() {
            return Err(cur.fail("end of CSeq"));
        }
        Ok(CSeq { seq, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// Headers the parser types, each with its compact form (RFC 3261 section 7.3.3 and later RFCs).
const NAMES: &[(&str, Option<&str>)] = &[
    ("Via", Some("v")),
    ("From", Some("f")),
    ("To", Some("t")),
    ("Call-ID", Some("i")),
    ("CSeq", None),
    ("Contact", Some("m")),
    ("Content-Length", Some("l")),
    ("Content-Type", Some("c")),
    ("Content-Encoding", Some("e")),
    ("Subject", Some("s")),
    ("Supported", Some("k")),
    ("Max-Forwards", None),
    ("Expires", None),
    ("Route", None),
    ("Record-Route", None),
    ("Refer-To", Some("r")),
    ("Referred-By", Some("b")),
    ("Event", Some("o")),
    ("Allow-Events", Some("u")),
    ("Accept-Contact", Some("a")),
    ("Reject-Contact", Some("j")),
    ("Request-Disposition", Some("d")),
    ("Identity", Some("y")),
    ("Identity-Info", Some("n")),
    ("Session-Expires", Some("x")),
];

/// The canonical spelling of a header name known to this module (compact forms expanded), matched
/// case-insensitively.
pub(crate) fn canonical_name(name: &str) -> Option<&'static str> {
    NAMES.iter().find_map(|(long, short)| {
        (long.eq_ignore_ascii_case(name) || short.is_some_and(|s| s.eq_ignore_ascii_case(name)))
            .then_some(*long)
    })
}

/// Whether two header names denote the same header (case-insensitive, compact forms accepted).
pub(crate) fn same_header(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
        || matches!((canonical_name(a), canonical_name(b)), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_around_uri_parameters_inside_brackets_is_dropped() {
        let folded =
            NameAddr::parse("<sip:alice@example.com ;gr=urn:uuid:f81 ; ob>;expires=5").unwrap();
        assert_eq!(
            folded.to_string(),
            "<sip:alice@example.com;gr=urn:uuid:f81;ob>;expires=5"
        );
        assert_eq!(
            folded.uri().param("gr").and_then(|p| p.value()),
            Some("urn:uuid:f81")
        );
        // Whitespace anywhere else in the URI is still an error.
        assert!(NameAddr::parse("<sip:al ice@example.com>").is_err());
        assert!(NameAddr::parse("<sip:alice@exam ple.com>").is_err());
    }

    #[test]
    fn via_values() {
        // (input, transport, sent-by, branch, received, rport flag, rport value)
        type Row = (
            &'static str,
            &'static str,
            &'static str,
            Option<&'static str>,
            Option<&'static str>,
            bool,
            Option<u16>,
        );
        let rows: &[Row] = &[
            (
                "SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK56sdasks",
                "WSS",
                "df7jal23ls0d.invalid",
                Some("z9hG4bK56sdasks"),
                None,
                false,
                None,
            ),
            (
                "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKhjhjqw32c ;received=192.0.2.10",
                "UDP",
                "proxy.example.com",
                Some("z9hG4bKhjhjqw32c"),
                Some("192.0.2.10"),
                false,
                None,
            ),
            (
                "SIP / 2.0 / ws host.invalid:8080 ; rport ; branch=z9hG4bK1",
                "WS",
                "host.invalid:8080",
                Some("z9hG4bK1"),
                None,
                true,
                None,
            ),
            (
                "SIP/2.0/WS a.invalid;rport=51087;received=2001:db8::9;branch=z9hG4bKx",
                "WS",
                "a.invalid",
                Some("z9hG4bKx"),
                Some("2001:db8::9"),
                true,
                Some(51087),
            ),
            (
                "sip/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bK2;x=\"a;b\"",
                "TLS",
                "[2001:db8::1]:5061",
                Some("z9hG4bK2"),
                None,
                false,
                None,
            ),
            (
                "SIP/2.0/FOO 192.0.2.1",
                "FOO",
                "192.0.2.1",
                None,
                None,
                false,
                None,
            ),
            (
                "SIP/2.0/WS x.invalid;branch",
                "WS",
                "x.invalid",
                None,
                None,
                false,
                None,
            ),
        ];
        for (input, transport, sent_by, branch, received, has_rport, rport) in rows {
            let via = Via::parse(input).unwrap_or_else(|f| panic!("{input}: {f:?}"));
            assert_eq!(via.transport().as_str(), *transport, "{input}");
            assert_eq!(via.sent_by(), *sent_by, "{input}");
            assert_eq!(via.branch(), *branch, "{input}");
            assert_eq!(via.received(), *received, "{input}");
            assert_eq!(via.has_rport(), *has_rport, "{input}");
            assert_eq!(via.rport(), *rport, "{input}");
        }
    }

    #[test]
    fn bad_via_values_say_where() {
        let rows: &[(&str, usize)] = &[
            ("", 0),
            ("HTTP/2.0/WS x", 0),
            ("SIP/3.0/WS x", 4),
            ("SIP/2.0 x", 7),
            ("SIP/2.0/WS", 10),
            ("SIP/2.0/WSx.invalid", 19),
            ("SIP/2.0/WS x.invalid:70000", 21),
            ("SIP/2.0/WS x.invalid;branch=", 28),
            ("SIP/2.0/WS x.invalid junk", 21),
            ("SIP/2.0/WS x.invalid;a=\"open", 23),
        ];
        for (input, at) in rows {
            assert_eq!(Via::parse(input).map_err(|f| f.at), Err(*at), "{input}");
        }
    }

    #[test]
    fn name_addr_values() {
        // (input, display name, uri, tag, params count)
        type Row = (
            &'static str,
            Option<&'static str>,
            &'static str,
            Option<&'static str>,
            usize,
        );
        let rows: &[Row] = &[
            (
                "sip:alice@example.com;tag=asdyka899",
                None,
                "sip:alice@example.com",
                Some("asdyka899"),
                1,
            ),
            (
                "Bob <sip:bob@biloxi.com>;tag=a6c85cf",
                Some("Bob"),
                "sip:bob@biloxi.com",
                Some("a6c85cf"),
                1,
            ),
            (
                "\"Alice, \\\"A\\\"\" <sip:alice@atlanta.com>",
                Some("Alice, \"A\""),
                "sip:alice@atlanta.com",
                None,
                0,
            ),
            (
                "\"test\"<sip:101@192.168.0.187>;tag=EITeqoR93w72E9QfTpSU",
                Some("test"),
                "sip:101@192.168.0.187",
                Some("EITeqoR93w72E9QfTpSU"),
                1,
            ),
            (
                "<sip:alice@df7jal23ls0d.invalid;transport=ws>;reg-id=1;+sip.instance=\"<urn:uuid:f81-7dec-14a06cf1>\"",
                None,
                "sip:alice@df7jal23ls0d.invalid;transport=ws",
                None,
                2,
            ),
            (
                "Not  Private <sip:x@y.com>  ;  expires = 3600",
                Some("Not Private"),
                "sip:x@y.com",
                None,
                1,
            ),
            (
                "<sip:proxy.example.com;transport=udp;lr>",
                None,
                "sip:proxy.example.com;transport=udp;lr",
                None,
                0,
            ),
            (
                "<sips:bob@[::1]:5061>",
                None,
                "sips:bob@[::1]:5061",
                None,
                0,
            ),
        ];
        for (input, display, uri, tag, nparams) in rows {
            let na = NameAddr::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(na.display_name(), *display, "{input}");
            assert_eq!(na.uri().to_string(), *uri, "{input}");
            assert_eq!(na.tag(), *tag, "{input}");
            assert_eq!(na.params().len(), *nparams, "{input}");
            let again = NameAddr::parse(&na.to_string()).expect("re-parse");
            assert_eq!(again, na, "{input}");
        }
        let contact = NameAddr::parse(
            "<sip:a@b.invalid;transport=ws>;+sip.instance=\"<urn:uuid:1>\";expires=600",
        )
        .expect("contact");
        assert_eq!(contact.expires(), Some(600));
        assert_eq!(
            contact
                .param("+SIP.INSTANCE")
                .and_then(Param::unquoted_value)
                .as_deref(),
            Some("<urn:uuid:1>")
        );
        let big = NameAddr::parse("<sip:a@b>;expires=99999999999").expect("big");
        assert_eq!(big.expires(), Some(u32::MAX));
    }

    #[test]
    fn bad_name_addrs() {
        for input in [
            "",
            "<sip:a@b",
            "\"open <sip:a@b>",
            "\"x\" sip:a@b",
            "<sip:a@b>;",
            "<sip:a@b> junk",
            "<sip:a@b>;tag=",
            "sip:a@b, sip:c@d",
            "<tel:+1234>",
            "Alice <>",
        ] {
            assert!(NameAddr::parse_value(input).is_err(), "{input:?}");
        }
        assert!(NameAddr::parse_value("<tel:1>").is_err_and(|f| f.unsupported_scheme));
    }

    #[test]
    fn name_addr_editing() {
        let mut na = NameAddr::new(SipUri::parse("sip:bob@example.com").expect("uri"))
            .with_display_name("Bob \"B\"")
            .expect("display name");
        assert!(na.clone().with_display_name("x\r\nEvil: 1").is_err());
        na.set_param("tag", Some("abc")).expect("tag");
        na.set_param("+sip.instance", Some("\"<urn:uuid:x>\""))
            .expect("instance");
        assert_eq!(
            na.to_string(),
            "\"Bob \\\"B\\\"\" <sip:bob@example.com>;tag=abc;+sip.instance=\"<urn:uuid:x>\""
        );
        assert!(na.set_param("bad param", None).is_err());
        assert!(na.set_param("x", Some("a b")).is_err());
        assert!(na.set_param("x", Some("\"open")).is_err());
        assert!(na.remove_param("TAG"));
        assert_eq!(na.tag(), None);
        let json = serde_json::to_string(&na).expect("json");
        assert_eq!(serde_json::from_str::<NameAddr>(&json).expect("back"), na);
    }

    #[test]
    fn cseq_and_methods() {
        assert_eq!(
            CSeq::parse("314159 INVITE"),
            Ok(CSeq {
                seq: 314_159,
                method: Method::Invite
            })
        );
        assert_eq!(
            CSeq::parse("1  NOTIFY"),
            Ok(CSeq {
                seq: 1,
                method: Method::Other("NOTIFY".into())
            })
        );
        for (bad, at) in [
            ("INVITE", 0),
            ("2147483648 INVITE", 0),
            ("1INVITE", 1),
            ("1 ", 1),
            ("1 INVITE x", 8),
            ("1 IN/VITE", 4),
        ] {
            assert_eq!(CSeq::parse(bad).map_err(|f| f.at), Err(at), "{bad}");
        }
        assert_eq!(
            Method::from_token("invite"),
            Some(Method::Other("invite".into()))
        );
        assert_eq!(Method::from_token("IN VITE"), None);
        assert_eq!("MESSAGE".parse::<Method>().ok(), Some(Method::Message));
        assert_eq!(Transport::from_token("wss"), Transport::Wss);
        assert_eq!(
            serde_json::to_string(&Method::Bye).expect("json"),
            "\"BYE\""
        );
    }

    #[test]
    fn header_names() {
        for (a, b, same) in [
            ("v", "Via", true),
            ("VIA", "via", true),
            ("i", "call-id", true),
            ("m", "Contact", true),
            ("l", "Content-Length", true),
            ("c", "Content-Type", true),
            ("X-Custom", "x-custom", true),
            ("t", "f", false),
            ("Route", "Record-Route", false),
        ] {
            assert_eq!(same_header(a, b), same, "{a} {b}");
        }
        assert_eq!(canonical_name("k"), Some("Supported"));
        assert_eq!(canonical_name("X-Other"), None);
    }
}

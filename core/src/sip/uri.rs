//! SIP and SIPS URIs (RFC 3261 section 19.1) and the `;name=value` parameters shared by URIs and
//! header values.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::SipError;
use super::grammar::{Cursor, Fail, is_unreserved};

/// The scheme of a [`SipUri`]. Other schemes (`tel:`, `mailto:`...) are refused with
/// [`SipError::UnsupportedUriScheme`], which a UAS answers with 416.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `sip:`
    Sip,
    /// `sips:` (TLS on every hop).
    Sips,
}

impl Scheme {
    /// The scheme as written in a URI, lowercase, without the colon.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Sip => "sip",
            Scheme::Sips => "sips",
        }
    }
}

/// The host part of a URI or of a Via sent-by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// A domain name, as written (case is kept; compare with [`Host::eq_ignore_case`]).
    Domain(String),
    /// A literal IPv4 address.
    Ipv4(Ipv4Addr),
    /// A literal IPv6 address (written in brackets).
    Ipv6(Ipv6Addr),
}

impl Host {
    /// Whether this is a domain under the reserved `.invalid` top-level domain: the random host a SIP
    /// WebSocket client puts in its Via and Contact (RFC 7118 section 5.2).
    pub fn is_invalid_domain(&self) -> bool {
        match self {
            Host::Domain(d) => {
                let d = d.strip_suffix('.').unwrap_or(d);
                d.len() > ".invalid".len()
                    && d.get(d.len() - ".invalid".len()..)
                        .is_some_and(|tld| tld.eq_ignore_ascii_case(".invalid"))
            }
            _ => false,
        }
    }

    /// Equality as RFC 3261 compares hosts: domain names case-insensitively.
    pub fn eq_ignore_case(&self, other: &Host) -> bool {
        match (self, other) {
            (Host::Domain(a), Host::Domain(b)) => a.eq_ignore_ascii_case(b),
            _ => self == other,
        }
    }

    /// Parses a host: `[v6]`, a dotted IPv4 address or a domain name.
    pub(crate) fn parse_at(cur: &mut Cursor<'_>) -> Result<Host, Fail> {
        let start = cur.pos();
        if cur.eat(b'[') {
            let inner = cur.take_while(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
            let addr = Ipv6Addr::from_str(inner).map_err(|_| Fail::new(start, "IPv6 address"))?;
            if !cur.eat(b']') {
                return Err(cur.fail("']'"));
            }
            return Ok(Host::Ipv6(addr));
        }
        let name = cur.take_while(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if name.is_empty() || name.starts_with('.') || name.contains("..") {
            return Err(Fail::new(start, "host"));
        }
        if name.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && let Ok(v4) = Ipv4Addr::from_str(name)
        {
            return Ok(Host::Ipv4(v4));
        }
        Ok(Host::Domain(name.to_owned()))
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Ipv4(a) => write!(f, "{a}"),
            Host::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

/// One `;name` or `;name=value` parameter, as written (values keep their quotes and `%` escapes, so
/// unknown parameters survive a round trip unchanged).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Param {
    name: String,
    value: Option<String>,
}

impl Param {
    /// A parameter from parts that the caller vouches for; the message constructors validate the
    /// result by parsing it again.
    pub(crate) fn new_unchecked(name: &str, value: Option<&str>) -> Self {
        Self {
            name: name.to_owned(),
            value: value.map(str::to_owned),
        }
    }

    /// The name as written.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value as written (a quoted value keeps its quotes), or `None` for a flag like `;lr`.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// The value with surrounding quotes removed and `\` escapes resolved.
    pub fn unquoted_value(&self) -> Option<String> {
        self.value.as_deref().map(super::grammar::unquote)
    }
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, ";{}={}", self.name, v),
            None => write!(f, ";{}", self.name),
        }
    }
}

/// The first parameter called `name` (case-insensitive, as RFC 3261 compares parameter names).
pub(crate) fn find_param<'a>(params: &'a [Param], name: &str) -> Option<&'a Param> {
    params.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

/// A `sip:` or `sips:` URI: `scheme:[user[:password]@]host[:port][;params][?headers]`.
///
/// Fields are private so every value is valid; build one with [`SipUri::parse`] or [`SipUri::new`].
/// Equality is structural (what was written), not the RFC 3261 section 19.1.4 comparison.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SipUri {
    scheme: Scheme,
    user: Option<String>,
    password: Option<String>,
    host: Host,
    port: Option<u16>,
    params: Vec<Param>,
    headers: Option<String>,
}

impl SipUri {
    /// Parses a whole URI such as `sip:alice@example.com;transport=ws`.
    pub fn parse(s: &str) -> Result<SipUri, SipError> {
        parse_uri(s).map_err(|f| fail_to_error(f, s))
    }

    /// `scheme:user@host` (no user when `user` is `None`). Fails when `user` or `host` would not parse.
    pub fn new(scheme: Scheme, user: Option<&str>, host: &str) -> Result<SipUri, SipError> {
        let text = match user {
            Some(u) => format!("{}:{u}@{host}", scheme.as_str()),
            None => format!("{}:{host}", scheme.as_str()),
        };
        let bad = SipError::InvalidInput {
            what: "URI user or host",
        };
        let uri = SipUri::parse(&text).map_err(|_| bad.clone())?;
        // A user or host carrying `;`, `?`, `@` or `:` would have parsed as something else.
        if uri.user.as_deref() != user
            || uri.password.is_some()
            || uri.port.is_some()
            || !uri.params.is_empty()
            || uri.headers.is_some()
        {
            return Err(bad);
        }
        Ok(uri)
    }

    /// `sip:` or `sips:`.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The user part as written (`%` escapes kept).
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The password of `user:password@` (deprecated by RFC 3261, kept for round trips).
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The explicit port, if any (no default is assumed).
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// URI parameters in order.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The first URI parameter called `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&Param> {
        find_param(&self.params, name)
    }

    /// The `transport` parameter's value, e.g. `ws` (RFC 7118 section 5.3).
    pub fn transport(&self) -> Option<&str> {
        self.param("transport").and_then(Param::value)
    }

    /// The `?h=v&...` header part as written, without the `?`.
    pub fn headers(&self) -> Option<&str> {
        self.headers.as_deref()
    }

    /// This URI with port `port`.
    #[must_use]
    pub fn with_port(mut self, port: u16) -> SipUri {
        self.port = Some(port);
        self
    }

    /// Sets (or replaces) URI parameter `name`. Fails unless `name` and `value` are `paramchar` runs.
    pub fn set_param(&mut self, name: &str, value: Option<&str>) -> Result<(), SipError> {
        if !is_param_text(name) || !value.is_none_or(is_param_text) {
            return Err(SipError::BadUri {
                column: 0,
                expected: "URI parameter name and value (paramchar)",
            });
        }
        let param = Param::new_unchecked(name, value);
        match self
            .params
            .iter_mut()
            .find(|p| p.name.eq_ignore_ascii_case(name))
        {
            Some(existing) => *existing = param,
            None => self.params.push(param),
        }
        Ok(())
    }

    /// Removes every URI parameter called `name`; returns whether one was there.
    pub fn remove_param(&mut self, name: &str) -> bool {
        let before = self.params.len();
        self.params.retain(|p| !p.name.eq_ignore_ascii_case(name));
        before != self.params.len()
    }

    /// The URI without parameters and headers (`scheme:user@host:port`), e.g. an address of record.
    pub fn without_params(&self) -> SipUri {
        SipUri {
            params: Vec::new(),
            headers: None,
            ..self.clone()
        }
    }

    /// Parses an addr-spec written without angle brackets in a header: its parameters belong to the
    /// header, so the URI ends at the first `;` (or whitespace or comma).
    pub(crate) fn parse_addr_spec(cur: &mut Cursor<'_>) -> Result<SipUri, Fail> {
        let base = cur.pos();
        let rest = cur.rest();
        let end = rest.find([';', ' ', '\t', ',']).unwrap_or(rest.len());
        let uri = parse_uri(rest.get(..end).unwrap_or("")).map_err(|f| Fail {
            at: base + f.at,
            ..f
        })?;
        cur.advance(end);
        Ok(uri)
    }
}

/// The public error for a URI failure in `text` (a URI or a header value holding one).
pub(crate) fn fail_to_error(f: Fail, text: &str) -> SipError {
    if f.unsupported_scheme {
        SipError::UnsupportedUriScheme {
            scheme: scheme_at(text, f.at),
        }
    } else {
        SipError::BadUri {
            column: f.at,
            expected: f.expected,
        }
    }
}

/// The scheme of the URI starting at byte `at` of `text`.
pub(crate) fn scheme_at(text: &str, at: usize) -> String {
    text.get(at..)
        .unwrap_or("")
        .split(':')
        .next()
        .unwrap_or("")
        .to_owned()
}

/// Whether `s` is a non-empty run of `paramchar` (with valid `%HH` escapes).
fn is_param_text(s: &str) -> bool {
    let mut cur = Cursor::new(s);
    !s.is_empty() && take_escaped(&mut cur, is_paramchar).is_ok_and(|t| t.len() == s.len())
}

/// `paramchar` of RFC 3261 (without the `%` escape, which is checked separately).
fn is_paramchar(b: u8) -> bool {
    is_unreserved(b) || b"[]/:&+$".contains(&b)
}

/// Takes a run of characters accepted by `class`, allowing `%HH` escapes.
fn take_escaped<'a>(cur: &mut Cursor<'a>, class: fn(u8) -> bool) -> Result<&'a str, Fail> {
    let rest = cur.rest();
    let bytes = rest.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return Err(Fail::new(cur.pos() + i, "%HH escape"));
            }
            i += 3;
        } else if b.is_ascii() && class(b) {
            i += 1;
        } else {
            break;
        }
    }
    let taken = rest.get(..i).unwrap_or("");
    cur.advance(i);
    Ok(taken)
}

fn is_user_char(b: u8) -> bool {
    is_unreserved(b) || b"&=+$,;?/".contains(&b)
}

fn is_password_char(b: u8) -> bool {
    is_unreserved(b) || b"&=+$,".contains(&b)
}

fn is_hnv_char(b: u8) -> bool {
    is_unreserved(b) || b"[]/?:+$=&".contains(&b)
}

/// Parses exactly `s` as a SIP or SIPS URI.
pub(crate) fn parse_uri(s: &str) -> Result<SipUri, Fail> {
    let mut cur = Cursor::new(s);
    let scheme_text = cur.take_while(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if scheme_text.is_empty() || !cur.eat(b':') {
        return Err(Fail::new(0, "URI scheme"));
    }
    let scheme = if scheme_text.eq_ignore_ascii_case("sip") {
        Scheme::Sip
    } else if scheme_text.eq_ignore_ascii_case("sips") {
        Scheme::Sips
    } else {
        return Err(Fail {
            unsupported_scheme: true,
            ..Fail::new(0, "sip: or sips: URI")
        });
    };
    // '@' may appear nowhere but after the userinfo (it is in no other character class).
    let (mut user, mut password) = (None, None);
    if cur.rest().contains('@') {
        let u = take_escaped(&mut cur, is_user_char)?;
        if u.is_empty() {
            return Err(cur.fail("user"));
        }
        user = Some(u.to_owned());
        if cur.eat(b':') {
            password = Some(take_escaped(&mut cur, is_password_char)?.to_owned());
        }
        if !cur.eat(b'@') {
            return Err(cur.fail("'@'"));
        }
    }
    let host = Host::parse_at(&mut cur)?;
    let mut port = None;
    if cur.eat(b':') {
        let at = cur.pos();
        let p = cur.take_while(|b| b.is_ascii_digit());
        port = Some(
            super::grammar::digits(p)
                .and_then(|n| u16::try_from(n).ok())
                .ok_or(Fail::new(at, "port (0-65535)"))?,
        );
    }
    let mut params = Vec::new();
    while cur.eat(b';') {
        let name = take_escaped(&mut cur, is_paramchar)?;
        if name.is_empty() {
            return Err(cur.fail("URI parameter name"));
        }
        let value = if cur.eat(b'=') {
            let v = take_escaped(&mut cur, is_paramchar)?;
            if v.is_empty() {
                return Err(cur.fail("URI parameter value"));
            }
            Some(v)
        } else {
            None
        };
        params.push(Param::new_unchecked(name, value));
    }
    let mut headers = None;
    if cur.eat(b'?') {
        let h = take_escaped(&mut cur, is_hnv_char)?;
        if h.is_empty() {
            return Err(cur.fail("URI headers"));
        }
        headers = Some(h.to_owned());
    }
    if !cur.at_end() {
        return Err(cur.fail("end of URI"));
    }
    Ok(SipUri {
        scheme,
        user,
        password,
        host,
        port,
        params,
        headers,
    })
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme.as_str())?;
        if let Some(user) = &self.user {
            f.write_str(user)?;
            if let Some(password) = &self.password {
                write!(f, ":{password}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        for p in &self.params {
            write!(f, "{p}")?;
        }
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

impl FromStr for SipUri {
    type Err = SipError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SipUri::parse(s)
    }
}

impl Serialize for SipUri {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SipUri {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        SipUri::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_uri_shapes_of_rfc_3261_and_7118() {
        // (input, user, host, port, params, headers)
        type Row = (
            &'static str,
            Option<&'static str>,
            &'static str,
            Option<u16>,
            &'static [(&'static str, Option<&'static str>)],
            Option<&'static str>,
        );
        let rows: &[Row] = &[
            (
                "sip:alice@example.com",
                Some("alice"),
                "example.com",
                None,
                &[],
                None,
            ),
            (
                "sip:proxy.example.com:443;transport=ws;lr",
                None,
                "proxy.example.com",
                Some(443),
                &[("transport", Some("ws")), ("lr", None)],
                None,
            ),
            (
                "sip:alice@example.com;gr=urn:uuid:f81-7dec-14a06cf1;ob",
                Some("alice"),
                "example.com",
                None,
                &[("gr", Some("urn:uuid:f81-7dec-14a06cf1")), ("ob", None)],
                None,
            ),
            (
                "sips:[2001:db8::1]:5061",
                None,
                "[2001:db8::1]",
                Some(5061),
                &[],
                None,
            ),
            (
                "sip:bob@203.0.113.22:5060;transport=udp",
                Some("bob"),
                "203.0.113.22",
                Some(5060),
                &[("transport", Some("udp"))],
                None,
            ),
            (
                "sip:alice;day=tuesday@atlanta.com",
                Some("alice;day=tuesday"),
                "atlanta.com",
                None,
                &[],
                None,
            ),
            (
                "sip:a%40b@x.org?subject=project%20x&priority=urgent",
                Some("a%40b"),
                "x.org",
                None,
                &[],
                Some("subject=project%20x&priority=urgent"),
            ),
            (
                "SIP:carol@chicago.com",
                Some("carol"),
                "chicago.com",
                None,
                &[],
                None,
            ),
            (
                "sip:+1-212-555-1212:1234@gateway.com;user=phone",
                Some("+1-212-555-1212"),
                "gateway.com",
                None,
                &[("user", Some("phone"))],
                None,
            ),
        ];
        for (input, user, host, port, params, headers) in rows {
            let uri = SipUri::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(uri.user(), *user, "{input}");
            assert_eq!(uri.host().to_string(), *host, "{input}");
            assert_eq!(uri.port(), *port, "{input}");
            let got: Vec<(&str, Option<&str>)> =
                uri.params().iter().map(|p| (p.name(), p.value())).collect();
            assert_eq!(got.as_slice(), *params, "{input}");
            assert_eq!(uri.headers(), *headers, "{input}");
            let again = SipUri::parse(&uri.to_string()).expect("re-parse");
            assert_eq!(again, uri, "{input}");
        }
        assert_eq!(
            SipUri::parse("sip:+1-212-555-1212:1234@gateway.com")
                .expect("password form")
                .password(),
            Some("1234")
        );
    }

    #[test]
    fn refuses_bad_uris_with_the_column() {
        let rows: &[(&str, usize)] = &[
            ("sip:", 4),
            ("sip:alice@", 10),
            ("sip:@example.com", 4),
            ("sip:x.com:99999", 10),
            ("sip:x.com:", 10),
            ("sip:[::1", 8),
            ("sip:[zz]", 4),
            ("sip:x.com;", 10),
            ("sip:x.com;a=", 12),
            ("sip:x.com;a=\"q\"", 12),
            ("sip:x.com?", 10),
            ("sip:x.com junk", 9),
            ("sip:a%4@x.com", 5),
            ("alice@example.com", 0),
            ("sip:x..com", 4),
        ];
        for (input, column) in rows {
            match SipUri::parse(input) {
                Err(SipError::BadUri { column: c, .. }) => assert_eq!(c, *column, "{input}"),
                other => panic!("{input}: {other:?}"),
            }
        }
        assert!(matches!(
            SipUri::parse("tel:+1-201-555-0123"),
            Err(SipError::UnsupportedUriScheme { scheme }) if scheme == "tel"
        ));
    }

    #[test]
    fn hosts_and_builders() {
        let uri = SipUri::parse("sip:alice@df7jal23ls0d.invalid;transport=ws").expect("parse");
        assert!(uri.host().is_invalid_domain());
        assert_eq!(uri.transport(), Some("ws"));
        assert!(!Host::Domain("invalid".into()).is_invalid_domain());
        assert!(
            Host::Domain("Example.COM".into()).eq_ignore_case(&Host::Domain("example.com".into()))
        );
        let mut uri = SipUri::new(Scheme::Sip, Some("bob"), "example.org").expect("new");
        uri.set_param("transport", Some("ws")).expect("param");
        uri.set_param("TRANSPORT", Some("wss")).expect("replace");
        uri.set_param("ob", None).expect("flag");
        assert_eq!(uri.to_string(), "sip:bob@example.org;TRANSPORT=wss;ob");
        assert!(uri.remove_param("ob"));
        assert!(uri.set_param("bad name", None).is_err());
        assert!(SipUri::new(Scheme::Sip, Some("a@b"), "c").is_err());
        assert!(SipUri::new(Scheme::Sip, Some("a"), "c;lr").is_err());
        assert_eq!(
            uri.with_port(8443).without_params().to_string(),
            "sip:bob@example.org:8443"
        );
        let json = serde_json::to_string(&SipUri::parse("sip:a@b;lr").expect("p")).expect("json");
        assert_eq!(json, "\"sip:a@b;lr\"");
        assert_eq!(
            serde_json::from_str::<SipUri>(&json)
                .expect("back")
                .to_string(),
            "sip:a@b;lr"
        );
        assert!(serde_json::from_str::<SipUri>("\"tel:1\"").is_err());
    }
}

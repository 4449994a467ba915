//! MSRP URIs (RFC 4975 section 6 and 9, with the RFC 7977 `ws` transport) and their comparison.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::MsrpError;
use crate::lex::{Decimal, hex_byte, is_token, is_uri_unreserved};

/// What is wrong with an MSRP URI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UriErrorKind {
    /// The scheme is not `msrp://` or `msrps://`.
    Scheme,
    /// The userinfo part has a character RFC 3986 does not allow.
    Userinfo,
    /// The host is empty or has a character a host cannot have.
    Host,
    /// The port is empty, not a number, or above 65535.
    Port,
    /// The session-id is empty or has a character outside `unreserved / "+" / "=" / "/"`.
    SessionId,
    /// No `;transport` part.
    MissingTransport,
    /// The transport is empty or not alphanumeric.
    Transport,
    /// A URI parameter is not `token ["=" token]`.
    Param,
}

/// An MSRP URI: `msrp[s]://[userinfo@]host[:port][/session-id];transport[;param[=value]]*`.
///
/// `Display` writes the canonical form (lowercase scheme, every other part as parsed), so a URI
/// written in that form round-trips exactly; frames keep the exact header text anyway. Derived
/// equality is structural; use [`MsrpUri::same_endpoint`] for the RFC 4975 section 6.1 comparison.
/// Serde uses the string form.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MsrpUri {
    /// `msrps` (TLS) rather than `msrp`.
    pub secure: bool,
    /// The optional userinfo (RFC 4975 allows it to name an account; it is ignored in comparisons).
    pub userinfo: Option<String>,
    /// The host as written: a name (possibly a `.invalid` placeholder, RFC 7977), an IPv4 address,
    /// or an IPv6 literal including its brackets.
    pub host: String,
    /// The port, if written.
    pub port: Option<u16>,
    /// The session-id. RFC 4975 makes it optional: relay URIs (RFC 4976, and the AUTH examples of
    /// RFC 7977 section 8.1) have none.
    pub session_id: Option<String>,
    /// The transport, e.g. `tcp` or `ws` (RFC 7977 section 5.2.1), case as written.
    pub transport: String,
    /// Further `;name[=value]` parameters in order.
    pub params: Vec<(String, Option<String>)>,
}

impl MsrpUri {
    /// A URI with the given parts and no userinfo or parameters.
    ///
    /// Returns an error if a part would not survive a round trip through the grammar.
    pub fn new(
        secure: bool,
        host: &str,
        port: Option<u16>,
        session_id: Option<&str>,
        transport: &str,
    ) -> Result<Self, MsrpError> {
        let uri = Self {
            secure,
            userinfo: None,
            host: host.to_owned(),
            port,
            session_id: session_id.map(str::to_owned),
            transport: transport.to_owned(),
            params: Vec::new(),
        };
        uri.validate()?;
        Ok(uri)
    }

    /// Checks that every part fits the grammar, so that `to_string().parse()` gives `self` back.
    pub fn validate(&self) -> Result<(), MsrpError> {
        let err = |kind| Err(MsrpError::BadUri { kind, at: 0 });
        if let Some(userinfo) = &self.userinfo
            && !userinfo.bytes().all(is_userinfo_char)
        {
            return err(UriErrorKind::Userinfo);
        }
        if !is_host(&self.host) {
            return err(UriErrorKind::Host);
        }
        if let Some(id) = &self.session_id
            && (id.is_empty() || !id.bytes().all(is_session_char))
        {
            return err(UriErrorKind::SessionId);
        }
        if self.transport.is_empty() || !self.transport.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return err(UriErrorKind::Transport);
        }
        for (name, value) in &self.params {
            if !is_token(name) || value.as_deref().is_some_and(|v| !is_token(v)) {
                return err(UriErrorKind::Param);
            }
        }
        Ok(())
    }

    /// RFC 4975 section 6.1 equality: same scheme; same host (IP addresses by value, names
    /// case-insensitively after decoding percent-encoded unreserved characters); same port, where a
    /// written port never equals an absent one; same session-id, case-sensitively, where an absent
    /// one never equals a present one; same transport, case-insensitively. Userinfo and other
    /// parameters are ignored.
    pub fn same_endpoint(&self, other: &MsrpUri) -> bool {
        self.secure == other.secure
            && self.port == other.port
            && self.session_id == other.session_id
            && self.transport.eq_ignore_ascii_case(&other.transport)
            && same_host(&self.host, &other.host)
    }

    /// The scheme, `msrp` or `msrps`.
    pub fn scheme(&self) -> &'static str {
        if self.secure { "msrps" } else { "msrp" }
    }
}

fn same_host(a: &str, b: &str) -> bool {
    if let (Some(x), Some(y)) = (ip_of(a), ip_of(b)) {
        return x == y;
    }
    let (a, b) = (decode_unreserved(a), decode_unreserved(b));
    a.eq_ignore_ascii_case(&b)
}

fn ip_of(host: &str) -> Option<std::net::IpAddr> {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().ok().map(Into::into);
    }
    host.parse::<Ipv4Addr>().ok().map(Into::into)
}

// Percent-encoding normalization (RFC 3986 section 6.2.2.2): decode only unreserved characters.
fn decode_unreserved(host: &str) -> String {
    let bytes = host.as_bytes();
    let mut out = String::with_capacity(host.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(decoded) = bytes
                .get(i + 1..i + 3)
                .and_then(hex_byte)
                .filter(|d| is_uri_unreserved(*d))
        {
            out.push(char::from(decoded));
            i += 3;
            continue;
        }
        out.push(char::from(bytes[i]));
        i += 1;
    }
    out
}

fn is_sub_delim_not_semicolon(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'='
    )
}

fn is_userinfo_char(b: u8) -> bool {
    is_uri_unreserved(b) || is_sub_delim_not_semicolon(b) || matches!(b, b'%' | b':')
}

fn is_session_char(b: u8) -> bool {
    is_uri_unreserved(b) || matches!(b, b'+' | b'=' | b'/')
}

fn is_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[') {
        // IP-literal: an IPv6 address (or IPvFuture) in brackets; kept as text, checked loosely.
        return inner.strip_suffix(']').is_some_and(|a| {
            !a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.' | b'v' | b'V'))
        });
    }
    !host.is_empty()
        && host
            .bytes()
            .all(|b| is_uri_unreserved(b) || is_sub_delim_not_semicolon(b) || b == b'%')
}

impl FromStr for MsrpUri {
    type Err = MsrpError;

    fn from_str(s: &str) -> Result<Self, MsrpError> {
        let err = |kind, at| Err(MsrpError::BadUri { kind, at });
        let (secure, rest_at) = if starts_with_ignore_case(s, "msrps://") {
            (true, 8)
        } else if starts_with_ignore_case(s, "msrp://") {
            (false, 7)
        } else {
            return err(UriErrorKind::Scheme, 0);
        };
        let rest = &s[rest_at..];
        // The authority ends at the first '/' (session-id) or ';' (transport).
        let auth_len = rest.find(['/', ';']).unwrap_or(rest.len());
        let authority = &rest[..auth_len];
        let (userinfo, hostport, hostport_at) = match authority.find('@') {
            Some(at) => (
                Some(&authority[..at]),
                &authority[at + 1..],
                rest_at + at + 1,
            ),
            None => (None, authority, rest_at),
        };
        if let Some(u) = userinfo
            && !u.bytes().all(is_userinfo_char)
        {
            return err(UriErrorKind::Userinfo, rest_at);
        }
        // An IPv6 literal contains ':' so the port separator is the ':' after its ']'.
        let port_sep = if hostport.starts_with('[') {
            hostport
                .find(']')
                .map(|end| end + 1)
                .filter(|&end| end < hostport.len())
        } else {
            hostport.find(':')
        };
        let (host, port) = match port_sep {
            Some(sep) if hostport.as_bytes().get(sep) == Some(&b':') => {
                (&hostport[..sep], Some(&hostport[sep + 1..]))
            }
            Some(sep) => return err(UriErrorKind::Host, hostport_at + sep),
            None => (hostport, None),
        };
        if !is_host(host) {
            return err(UriErrorKind::Host, hostport_at);
        }
        let port = match port {
            Some(p) => {
                let at = hostport_at + host.len() + 1;
                match Decimal::U64
                    .parse(p)
                    .ok()
                    .and_then(|n| u16::try_from(n).ok())
                {
                    Some(port) => Some(port),
                    None => return err(UriErrorKind::Port, at),
                }
            }
            None => None,
        };
        let mut at = rest_at + auth_len;
        let mut tail = &rest[auth_len..];
        let session_id = match tail.strip_prefix('/') {
            Some(after) => {
                let len = after.find(';').unwrap_or(after.len());
                let id = &after[..len];
                if id.is_empty() || !id.bytes().all(is_session_char) {
                    return err(UriErrorKind::SessionId, at + 1);
                }
                at += 1 + len;
                tail = &after[len..];
                Some(id.to_owned())
            }
            None => None,
        };
        let Some(after) = tail.strip_prefix(';') else {
            return err(UriErrorKind::MissingTransport, at);
        };
        at += 1;
        let mut parts = after.split(';');
        let transport = parts.next().unwrap_or_default();
        if transport.is_empty() || !transport.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return err(UriErrorKind::Transport, at);
        }
        at += transport.len();
        let mut params = Vec::new();
        for part in parts {
            at += 1;
            let (name, value) = match part.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (part, None),
            };
            if !is_token(name) || value.is_some_and(|v| !is_token(v)) {
                return err(UriErrorKind::Param, at);
            }
            params.push((name.to_owned(), value.map(str::to_owned)));
            at += part.len();
        }
        Ok(Self {
            secure,
            userinfo: userinfo.map(str::to_owned),
            host: host.to_owned(),
            port,
            session_id,
            transport: transport.to_owned(),
            params,
        })
    }
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix.as_bytes()))
}

impl fmt::Display for MsrpUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme())?;
        if let Some(userinfo) = &self.userinfo {
            write!(f, "{userinfo}@")?;
        }
        f.write_str(&self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        if let Some(id) = &self.session_id {
            write!(f, "/{id}")?;
        }
        write!(f, ";{}", self.transport)?;
        for (name, value) in &self.params {
            match value {
                Some(v) => write!(f, ";{name}={v}")?,
                None => write!(f, ";{name}")?,
            }
        }
        Ok(())
    }
}

impl Serialize for MsrpUri {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MsrpUri {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> MsrpUri {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_and_round_trips_rfc_uris() {
        // RFC 4975 sections 4, 6 and 11; RFC 7977 section 8.
        let cases = [
            "msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp",
            "msrp://host.example.com:8493/asfd34;tcp",
            "msrps://df7jal23ls0d.invalid:2855/98cjs;ws",
            "msrps://df7jal23ls0d.invalid/98cjs;ws",
            "msrps://alice@a.example.com:443;ws",
            "msrp://192.0.2.1:2855/a+b=c/d;tcp",
            "msrp://[2001:db8::1]:2855/s;tcp;foo=bar;baz",
            "msrp://[::1]/s;tcp",
        ];
        for text in cases {
            let parsed = uri(text);
            assert_eq!(parsed.to_string(), text);
            assert_eq!(parsed.validate(), Ok(()), "{text}");
        }
        let ws = uri("msrps://df7jal23ls0d.invalid:2855/98cjs;ws");
        assert!(ws.secure);
        assert_eq!(ws.host, "df7jal23ls0d.invalid");
        assert_eq!(ws.port, Some(2855));
        assert_eq!(ws.session_id.as_deref(), Some("98cjs"));
        assert_eq!(ws.transport, "ws");
        let relay = uri("msrps://alice@a.example.com:443;ws");
        assert_eq!(relay.userinfo.as_deref(), Some("alice"));
        assert_eq!(relay.session_id, None);
        let v6 = uri("msrp://[2001:db8::1]:2855/s;tcp;foo=bar;baz");
        assert_eq!(v6.host, "[2001:db8::1]");
        assert_eq!(
            v6.params,
            vec![("foo".into(), Some("bar".into())), ("baz".into(), None)]
        );
        assert_eq!(
            uri("MSRP://h/s;tcp").to_string(),
            "msrp://h/s;tcp",
            "scheme is case-insensitive"
        );
    }

    #[test]
    fn rejects_bad_uris_with_the_specific_kind() {
        use UriErrorKind::*;
        let cases = [
            ("http://h/s;tcp", Scheme, 0),
            ("msrp:/h/s;tcp", Scheme, 0),
            ("msrp:///s;tcp", Host, 7),
            ("msrp://h:/s;tcp", Port, 9),
            ("msrp://h:70000/s;tcp", Port, 9),
            ("msrp://h:12a/s;tcp", Port, 9),
            ("msrp://h/;tcp", SessionId, 9),
            ("msrp://h/a%20b;tcp", SessionId, 9),
            ("msrp://h/s", MissingTransport, 10),
            ("msrp://h/s;", Transport, 11),
            ("msrp://h/s;t-cp", Transport, 11),
            ("msrp://h/s;tcp;=x", Param, 15),
            ("msrp://h/s;tcp;a=", Param, 15),
            ("msrp://a b/s;tcp", Host, 7),
            ("msrp://[::1/s;tcp", Host, 7),
            ("msrp://[::1]x/s;tcp", Host, 12),
            ("msrp://al ice@h/s;tcp", Userinfo, 7),
            ("", Scheme, 0),
        ];
        for (text, kind, at) in cases {
            assert_eq!(
                text.parse::<MsrpUri>(),
                Err(MsrpError::BadUri { kind, at }),
                "{text}"
            );
        }
    }

    #[test]
    fn same_endpoint_follows_rfc_4975_section_6_1() {
        let base = uri("msrp://Host.Example.com:2855/AbC;tcp");
        let equal = [
            "msrp://host.example.COM:2855/AbC;TCP",
            "msrp://user@host.example.com:2855/AbC;tcp",
            "msrp://host.example.com:2855/AbC;tcp;x=y",
            "MSRP://host.%65xample.com:2855/AbC;tcp",
        ];
        for other in equal {
            assert!(base.same_endpoint(&uri(other)), "{other}");
        }
        let different = [
            "msrps://host.example.com:2855/AbC;tcp",
            "msrp://host.example.com/AbC;tcp",
            "msrp://host.example.com:2856/AbC;tcp",
            "msrp://host.example.com:2855/abc;tcp",
            "msrp://host.example.com:2855;tcp",
            "msrp://host.example.com:2855/AbC;ws",
            "msrp://other.example.com:2855/AbC;tcp",
        ];
        for other in different {
            assert!(!base.same_endpoint(&uri(other)), "{other}");
        }
        assert!(
            uri("msrp://[2001:db8::1]/s;tcp").same_endpoint(&uri("msrp://[2001:DB8:0::1]/s;tcp"))
        );
        assert!(
            !uri("msrp://[2001:db8::1]/s;tcp").same_endpoint(&uri("msrp://[2001:db8::2]/s;tcp"))
        );
    }

    #[test]
    fn new_validates_and_serde_uses_the_string_form() {
        let made = MsrpUri::new(
            true,
            "df7jal23ls0d.invalid",
            Some(2855),
            Some("98cjs"),
            "ws",
        )
        .unwrap();
        assert_eq!(
            made.to_string(),
            "msrps://df7jal23ls0d.invalid:2855/98cjs;ws"
        );
        assert!(MsrpUri::new(false, "a;b", None, Some("s"), "tcp").is_err());
        assert!(MsrpUri::new(false, "h", None, Some(""), "tcp").is_err());
        assert!(MsrpUri::new(false, "h", None, Some("s"), "").is_err());
        let json = serde_json::to_string(&made).unwrap();
        assert_eq!(json, "\"msrps://df7jal23ls0d.invalid:2855/98cjs;ws\"");
        assert_eq!(serde_json::from_str::<MsrpUri>(&json).unwrap(), made);
        assert!(serde_json::from_str::<MsrpUri>("\"http://x\"").is_err());
    }
}

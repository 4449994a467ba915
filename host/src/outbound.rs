//! A component's `allowed_outbound_hosts`, read and enforced as Spin does: each entry is
//! `scheme://host[:port]`, where the scheme may be `*`, the host `*` or `*.suffix`, and the port a
//! number, a range `a-b` or `*`. Without a port the scheme's default port is meant (80 for `http`,
//! 443 for `https`), so a wildcard scheme needs an explicit port. Templates are rendered before.

/// Errors in an `allowed_outbound_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatternError {
    /// The entry is not `scheme://host[:port]`.
    #[error("allowed_outbound_hosts entry {pattern:?}: {reason}")]
    Invalid {
        pattern: String,
        reason: &'static str,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Scheme {
    Any,
    Named(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    Any,
    /// `*.example.com`, stored as `.example.com`.
    Suffix(String),
    Named(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ports {
    Any,
    Range(u16, u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    scheme: Scheme,
    host: Host,
    ports: Ports,
}

/// The hosts a component may send HTTP requests to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    patterns: Vec<Pattern>,
}

impl AllowedHosts {
    /// Reads rendered `allowed_outbound_hosts` entries.
    pub fn parse(entries: &[String]) -> Result<Self, PatternError> {
        let patterns = entries
            .iter()
            .map(|entry| Pattern::parse(entry))
            .collect::<Result<_, _>>()?;
        Ok(Self { patterns })
    }

    /// Whether a request to `scheme://host:port` is allowed.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        self.patterns.iter().any(|pattern| {
            let scheme_ok = match &pattern.scheme {
                Scheme::Any => true,
                Scheme::Named(name) => name.eq_ignore_ascii_case(scheme),
            };
            let host_ok = match &pattern.host {
                Host::Any => true,
                Host::Suffix(suffix) => {
                    host.len() > suffix.len() && host.ends_with(suffix.as_str())
                }
                Host::Named(name) => *name == host,
            };
            let port_ok = match pattern.ports {
                Ports::Any => true,
                Ports::Range(low, high) => (low..=high).contains(&port),
            };
            scheme_ok && host_ok && port_ok
        })
    }
}

/// The port a scheme uses when a URL names none.
pub fn default_port(scheme: &str) -> Option<u16> {
    match scheme.to_ascii_lowercase().as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl Pattern {
    fn parse(entry: &str) -> Result<Self, PatternError> {
        let invalid = |reason| PatternError::Invalid {
            pattern: entry.to_owned(),
            reason,
        };
        let (scheme, rest) = entry
            .split_once("://")
            .ok_or_else(|| invalid("no `scheme://`"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') {
            return Err(invalid("a path is not allowed"));
        }
        let scheme = match scheme {
            "*" => Scheme::Any,
            name if !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.') =>
            {
                Scheme::Named(name.to_ascii_lowercase())
            }
            _ => return Err(invalid("bad scheme")),
        };
        // An IPv6 literal keeps its colons inside brackets.
        let (host, port) = match rest.rfind(':') {
            Some(colon) if !rest[colon..].contains(']') => {
                (&rest[..colon], Some(&rest[colon + 1..]))
            }
            _ => (rest, None),
        };
        let host = match host {
            "" => return Err(invalid("no host")),
            "*" => Host::Any,
            _ if host.starts_with("*.") => Host::Suffix(host[1..].to_ascii_lowercase()),
            _ if host.contains('*') => {
                return Err(invalid("`*` must be the whole host or its first label"));
            }
            _ => Host::Named(host.to_ascii_lowercase()),
        };
        let ports = match port {
            Some("*") => Ports::Any,
            Some(port) => {
                let number = |text: &str| text.parse::<u16>().map_err(|_| invalid("bad port"));
                match port.split_once('-') {
                    Some((low, high)) => {
                        let (low, high) = (number(low)?, number(high)?);
                        if low > high {
                            return Err(invalid("port range is empty"));
                        }
                        Ports::Range(low, high)
                    }
                    None => {
                        let port = number(port)?;
                        Ports::Range(port, port)
                    }
                }
            }
            None => match &scheme {
                Scheme::Named(name) => {
                    let port =
                        default_port(name).ok_or_else(|| invalid("this scheme needs a port"))?;
                    Ports::Range(port, port)
                }
                Scheme::Any => return Err(invalid("a wildcard scheme needs a port")),
            },
        };
        Ok(Self {
            scheme,
            host,
            ports,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(entries: &[&str]) -> AllowedHosts {
        AllowedHosts::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn patterns_match_as_spin_reads_them() {
        let allowed = hosts(&[
            "http://127.0.0.1:5561",
            "http://receiver-as.spin.internal",
            "https://*.example.com",
            "*://api.test:8000-8010",
            "http://any.port:*",
        ]);
        let cases = [
            ("http", "127.0.0.1", 5561, true),
            ("http", "127.0.0.1", 80, false),
            ("https", "127.0.0.1", 5561, false),
            ("http", "receiver-as.spin.internal", 80, true),
            ("http", "sender-as.spin.internal", 80, false),
            ("https", "a.example.com", 443, true),
            ("https", "A.Example.COM", 443, true),
            ("https", "example.com", 443, false),
            ("http", "a.example.com", 80, false),
            ("http", "api.test", 8005, true),
            ("https", "api.test", 8011, false),
            ("http", "any.port", 1, true),
        ];
        for (scheme, host, port, expected) in cases {
            assert_eq!(
                allowed.allows(scheme, host, port),
                expected,
                "{scheme}://{host}:{port}"
            );
        }
        assert!(hosts(&["*://*:*"]).allows("https", "anything", 1));
        assert!(!AllowedHosts::default().allows("http", "localhost", 80));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            "localhost",
            "http://",
            "http://a/path",
            "*://host",
            "ftp://host",
            "http://a*b.com",
            "http://host:99999",
            "http://host:9-1",
        ] {
            assert!(AllowedHosts::parse(&[bad.to_owned()]).is_err(), "{bad}");
        }
        assert!(hosts(&["http://[::1]:8080"]).allows("http", "[::1]", 8080));
    }
}

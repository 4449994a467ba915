//! Configuration from Spin variables: the names of the edge contract, their parsing into the core's
//! [`ServerConfig`], and the settings only the edge needs (the gateway's keys and publish URL, the
//! peer URL, the admin token, sign-up).
//!
//! Parsing takes a plain lookup function, so it is tested without Spin; the Spin adapter reads every
//! variable once per request and hands the values over.

use rcs_core::first_value::{SigningKey, Url};
use rcs_core::grip;
use rcs_core::server_config::{ServerConfig, ServerConfigError};
use rcs_core::service::Delivery;
use rcs_core::store::LayoutConfig;

/// Every variable the AS components read, as named in `spin.toml`.
pub const VARIABLES: [&str; 18] = [
    "domain",
    "as_host",
    "secure",
    "public_base_url",
    "signing_secret",
    "grip_sig_key",
    "grip_sig_public_key",
    "grip_publish_url",
    "receiver_peer_url",
    "max_file_size",
    "file_lifetime_secs",
    "url_lifetime_secs",
    "store_chunk_size",
    "msrp_chunk_size",
    "window",
    "default_delivery",
    "admin_token",
    "sign_up",
];

/// Who may create an account (`sign_up`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignUp {
    /// Anyone, from the page or the CLI (`open`).
    Open,
    /// The administrator only, with the admin token (`closed`).
    Closed,
}

impl SignUp {
    /// `open` or `closed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }
}

/// The development defaults `spin.toml` prints for the secrets, by variable. Anyone can read them, so
/// the components serve with one of them only when `public_base_url` is a loopback address.
pub const DEVELOPMENT_SECRETS: [(&str, &str); 3] = [
    (
        "signing_secret",
        "local-development-signing-secret-change-me",
    ),
    ("grip_sig_key", "local-development-grip-key"),
    ("admin_token", "local-development-admin-token"),
];

/// The longest registration the servers grant, in seconds (no variable: clients refresh hourly).
pub const MAX_REGISTRATION_SECS: u32 = 3600;

/// A configuration the components cannot run with; answered as HTTP 500 with this text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EdgeConfigError {
    /// A variable has no value.
    #[error("variable {name} is not set")]
    Missing {
        /// The variable's name.
        name: &'static str,
    },
    /// A variable's value does not parse.
    #[error("variable {name} = {value:?} is invalid: {reason}")]
    Invalid {
        /// The variable's name.
        name: &'static str,
        /// The value as given (never a secret's).
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A secret still has its development default while the deployment is reachable from beyond
    /// this machine.
    #[error(
        "variable {name} still has the development default printed in spin.toml, and \
         public_base_url {base} is not a loopback address: set {name} to a random secret \
         (SPIN_VARIABLE_{upper} or a secrets provider) before serving"
    )]
    DevelopmentSecret {
        /// The variable's name.
        name: &'static str,
        /// Its name as an environment variable's suffix.
        upper: String,
        /// The public base URL.
        base: String,
    },
    /// The values parse but the servers refuse the combination.
    #[error("server configuration refused: {0}")]
    Server(#[from] ServerConfigError),
}

/// Everything a component needs: the core's configuration and the edge's own settings.
#[derive(Clone, Debug)]
pub struct EdgeConfig {
    /// What the application servers run with.
    pub server: ServerConfig,
    /// The keys the gateway may sign `Grip-Sig` with: HS256 (`grip_sig_key`), and ES256
    /// (`grip_sig_public_key`, PEM; empty for none).
    pub grip_sig_keys: grip::GripSigKeys,
    /// The gateway's publish endpoint.
    pub grip_publish_url: String,
    /// Where the sender AS POSTs SIP for the receiver AS (`<receiver_as_origin>/receiver/peer` in
    /// `spin.toml`).
    pub receiver_peer_url: String,
    /// The bearer token of `/…/tick` and of account administration.
    pub admin_token: String,
    /// Who may create accounts.
    pub sign_up: SignUp,
}

impl EdgeConfig {
    /// Parses the variables `lookup` returns (`None` for an unset variable).
    pub fn from_variables(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, EdgeConfigError> {
        let get = |name: &'static str| lookup(name).ok_or(EdgeConfigError::Missing { name });
        let invalid = |name: &'static str, value: &str, reason: &str| EdgeConfigError::Invalid {
            name,
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        let number = |name: &'static str| -> Result<u64, EdgeConfigError> {
            let value = get(name)?;
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| invalid(name, &value, "not a whole number"))
        };
        let small = |name: &'static str| -> Result<u32, EdgeConfigError> {
            let value = number(name)?;
            u32::try_from(value).map_err(|_| invalid(name, &value.to_string(), "too large"))
        };
        let secret = |name: &'static str| -> Result<String, EdgeConfigError> {
            let value = get(name)?;
            if value.is_empty() {
                // Secrets are never echoed, not even in an error.
                return Err(invalid(name, "", "must not be empty"));
            }
            Ok(value)
        };
        let http_url = |name: &'static str| -> Result<String, EdgeConfigError> {
            let value = get(name)?;
            match Url::parse(value.trim()) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
                    Ok(value.trim().to_owned())
                }
                Ok(_) => Err(invalid(name, &value, "not an http(s) URL with a host")),
                Err(e) => Err(invalid(name, &value, &e.to_string())),
            }
        };

        let secure = match get("secure")?.trim() {
            "true" => true,
            "false" => false,
            other => return Err(invalid("secure", other, "must be true or false")),
        };
        let base = http_url("public_base_url")?;
        let mut public_base =
            Url::parse(&base).map_err(|e| invalid("public_base_url", &base, &e.to_string()))?;
        if !public_base.path().ends_with('/') {
            // Download URLs are `<base>files/...`: a base without its slash would lose a segment.
            let path = format!("{}/", public_base.path());
            public_base.set_path(&path);
        }
        let signing_keys = secret("signing_secret")?
            .split(',')
            .map(|key| {
                SigningKey::new(key.as_bytes().to_vec()).map_err(|e| EdgeConfigError::Invalid {
                    name: "signing_secret",
                    value: String::new(),
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let default_delivery = match get("default_delivery")?.trim() {
            "push" => Delivery::Push,
            "pull" => Delivery::Pull,
            other => return Err(invalid("default_delivery", other, "must be push or pull")),
        };
        let sign_up = match get("sign_up")?.trim() {
            "open" => SignUp::Open,
            "closed" => SignUp::Closed,
            other => return Err(invalid("sign_up", other, "must be open or closed")),
        };
        if !is_loopback(&public_base) {
            for (name, default) in DEVELOPMENT_SECRETS {
                let value = get(name)?;
                if value.split(',').any(|part| part.trim() == default) {
                    return Err(EdgeConfigError::DevelopmentSecret {
                        name,
                        upper: name.to_ascii_uppercase(),
                        base: public_base.to_string(),
                    });
                }
            }
        }
        let window = number("window")?;
        let server = ServerConfig {
            domain: nonempty(get("domain")?, "domain")?,
            host: nonempty(get("as_host")?, "as_host")?,
            secure,
            public_base,
            signing_keys,
            layout: LayoutConfig {
                chunk_size: small("store_chunk_size")?,
                max_file_size: number("max_file_size")?,
                file_lifetime_secs: number("file_lifetime_secs")?,
                ..LayoutConfig::default()
            },
            url_lifetime_secs: number("url_lifetime_secs")?,
            msrp_chunk_size: small("msrp_chunk_size")?,
            window: usize::try_from(window)
                .map_err(|_| invalid("window", &window.to_string(), "too large"))?,
            max_reply_bytes: grip::REPLY_LIMIT,
            max_registration_secs: MAX_REGISTRATION_SECS,
            default_delivery,
        };
        server.validate()?;
        Ok(Self {
            server,
            grip_sig_keys: grip::GripSigKeys::new(
                secret("grip_sig_key")?.into_bytes(),
                Some(get("grip_sig_public_key")?)
                    .filter(|pem| !pem.trim().is_empty())
                    .as_deref(),
            )
            .map_err(|error| EdgeConfigError::Invalid {
                name: "grip_sig_public_key",
                value: String::new(),
                reason: error.to_string(),
            })?,
            grip_publish_url: http_url("grip_publish_url")?,
            receiver_peer_url: http_url("receiver_peer_url")?,
            admin_token: secret("admin_token")?,
            sign_up,
        })
    }
}

/// Whether `url` names this machine only: `localhost`, or an address in `127.0.0.0/8` or `::1`.
fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

fn nonempty(value: String, name: &'static str) -> Result<String, EdgeConfigError> {
    let value = value.trim().to_owned();
    if value.is_empty() {
        return Err(EdgeConfigError::Invalid {
            name,
            value,
            reason: "must not be empty".into(),
        });
    }
    Ok(value)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// The defaults of `spin.toml`, for the sender AS.
    pub(crate) fn defaults() -> BTreeMap<&'static str, String> {
        [
            ("domain", "localhost"),
            ("as_host", "sender-as.localhost"),
            ("secure", "false"),
            ("public_base_url", "http://127.0.0.1:3000/"),
            (
                "signing_secret",
                "local-development-signing-secret-change-me",
            ),
            ("grip_sig_key", "local-development-grip-key"),
            ("grip_sig_public_key", ""),
            ("grip_publish_url", "http://127.0.0.1:5561/publish/"),
            ("receiver_peer_url", "http://127.0.0.1:3000/receiver/peer"),
            ("max_file_size", "1073741824"),
            ("file_lifetime_secs", "604800"),
            ("url_lifetime_secs", "86400"),
            ("store_chunk_size", "262144"),
            ("msrp_chunk_size", "65536"),
            ("window", "8"),
            ("default_delivery", "push"),
            ("admin_token", "local-development-admin-token"),
            ("sign_up", "open"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_owned()))
        .collect()
    }

    fn parse(vars: &BTreeMap<&'static str, String>) -> Result<EdgeConfig, EdgeConfigError> {
        EdgeConfig::from_variables(|name| vars.get(name).cloned())
    }

    #[test]
    fn the_manifest_defaults_parse() {
        let config = parse(&defaults()).unwrap();
        assert_eq!(config.server.domain, "localhost");
        assert_eq!(config.server.layout.chunk_size, 262_144);
        assert_eq!(config.server.window, 8);
        assert_eq!(config.server.default_delivery, Delivery::Push);
        assert_eq!(config.grip_sig_keys.hs256(), b"local-development-grip-key");
        assert_eq!(config.admin_token, "local-development-admin-token");
        assert_eq!(config.server.public_base.as_str(), "http://127.0.0.1:3000/");
        assert_eq!(VARIABLES.len(), defaults().len());
        assert!(VARIABLES.iter().all(|name| defaults().contains_key(name)));
    }

    #[test]
    fn several_signing_keys_rotate_and_a_base_gets_its_slash() {
        let mut vars = defaults();
        vars.insert(
            "signing_secret",
            format!("{},{}", "a".repeat(32), "b".repeat(40)),
        );
        vars.insert("public_base_url", "https://files.example.com/ft".into());
        vars.insert("grip_sig_key", "a-production-grip-key".into());
        vars.insert("admin_token", "a-production-admin-token".into());
        vars.insert("default_delivery", "pull".into());
        let config = parse(&vars).unwrap();
        assert_eq!(config.server.signing_keys.len(), 2);
        assert_eq!(
            config.server.public_base.as_str(),
            "https://files.example.com/ft/"
        );
        assert_eq!(config.server.default_delivery, Delivery::Pull);
    }

    #[test]
    fn bad_values_are_named_with_a_reason() {
        type Case = (&'static str, &'static str, &'static str);
        let cases: [Case; 11] = [
            (
                "grip_sig_public_key",
                "not a key",
                "not a P-256 public key in PEM",
            ),
            ("sign_up", "maybe", "must be open or closed"),
            ("secure", "yes", "must be true or false"),
            ("window", "eight", "not a whole number"),
            ("store_chunk_size", "99999999999", "too large"),
            ("default_delivery", "later", "must be push or pull"),
            (
                "grip_publish_url",
                "ftp://x/",
                "not an http(s) URL with a host",
            ),
            (
                "receiver_peer_url",
                "not a url",
                "relative URL without a base",
            ),
            ("domain", " ", "must not be empty"),
            ("signing_secret", "short", "signing key has 5 bytes"),
            ("admin_token", "", "must not be empty"),
        ];
        for (name, value, reason) in cases {
            let mut vars = defaults();
            vars.insert(name, value.into());
            match parse(&vars) {
                Err(EdgeConfigError::Invalid {
                    name: got,
                    reason: why,
                    ..
                }) => {
                    assert_eq!(got, name);
                    assert!(why.contains(reason), "{name}: {why}");
                }
                other => panic!("{name}={value:?} gave {other:?}"),
            }
        }
        let mut vars = defaults();
        vars.remove("grip_sig_key");
        assert_eq!(
            parse(&vars).unwrap_err(),
            EdgeConfigError::Missing {
                name: "grip_sig_key"
            }
        );
        let mut vars = defaults();
        vars.insert("window", "0".into());
        assert!(matches!(parse(&vars), Err(EdgeConfigError::Server(_))));
        let message = parse(&vars).unwrap_err().to_string();
        assert!(message.contains("window"), "{message}");
    }

    #[test]
    fn development_secrets_serve_loopback_only_and_are_spin_tomls() {
        let manifest: toml::Value = toml::from_str(include_str!("../../../spin.toml")).unwrap();
        for (name, default) in DEVELOPMENT_SECRETS {
            assert_eq!(
                manifest["variables"][name]["default"].as_str(),
                Some(default),
                "{name}"
            );
        }
        for base in [
            "http://localhost:3000/",
            "http://127.0.0.2/",
            "http://[::1]:8080/",
        ] {
            let mut vars = defaults();
            vars.insert("public_base_url", base.into());
            assert!(parse(&vars).is_ok(), "{base}");
        }
        for (name, _) in DEVELOPMENT_SECRETS {
            let mut vars = defaults();
            vars.insert("public_base_url", "https://rcs.example.com/".into());
            for (other, _) in DEVELOPMENT_SECRETS.iter().filter(|(n, _)| *n != name) {
                vars.insert(other, "a".repeat(40));
            }
            let message = parse(&vars).unwrap_err().to_string();
            assert!(
                message.starts_with(&format!(
                    "variable {name} still has the development default"
                )) && message.contains("https://rcs.example.com/ is not a loopback address"),
                "{message}"
            );
            assert!(!message.contains("local-development"), "{message}");
        }
    }

    #[test]
    fn secrets_never_appear_in_errors() {
        let mut vars = defaults();
        vars.insert("signing_secret", "tiny-secret".into());
        let message = parse(&vars).unwrap_err().to_string();
        assert!(!message.contains("tiny-secret"), "{message}");
    }
}

//! What both application servers are configured with ([`ServerConfig`], Spin variables at the
//! edge), and the checks a configuration must pass before a server runs with it.

use crate::first_value::{SigningKey, Url};
use crate::msrp::MsrpUri;
use crate::service::Delivery;
use crate::sip::{Scheme, SipUri};
use crate::store::LayoutConfig;

/// Room for an MSRP chunk's start line, headers and end line (and its event's framing), in bytes:
/// what a chunk takes in a reply beyond its body.
pub const MSRP_HEADER_ROOM: usize = 1024;

/// What both application servers are configured with (Spin variables at the edge).
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The SIP domain whose users the servers serve (`sip:alice@<domain>`).
    pub domain: String,
    /// This server's host name, written in Via, Contact, SDP and its MSRP URIs.
    pub host: String,
    /// Whether clients reach the server over TLS (`wss`, `msrps`).
    pub secure: bool,
    /// The public base URL under which files are downloadable (`<base>/files/<digest>`).
    pub public_base: Url,
    /// Signing keys of first values: the first signs, every one verifies (key rotation).
    pub signing_keys: Vec<SigningKey>,
    /// How files are kept in the shared store.
    pub layout: LayoutConfig,
    /// How long a signed URL is valid, in seconds (never beyond the file's own lifetime).
    pub url_lifetime_secs: u64,
    /// Bytes per MSRP chunk the receiver AS sends.
    pub msrp_chunk_size: u32,
    /// MSRP chunks the receiver AS keeps in flight.
    pub window: usize,
    /// The most bytes of MSRP chunks the receiver AS sends in answer to one request: a gateway caps
    /// the size of a reply ([`crate::grip::REPLY_LIMIT`]). Free window slots beyond it are filled
    /// by the next request.
    pub max_reply_bytes: usize,
    /// The longest registration granted, in seconds.
    pub max_registration_secs: u32,
    /// How files reach users who did not say (`ft-delivery` Contact parameter).
    pub default_delivery: Delivery,
}

/// A configuration the servers cannot run with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServerConfigError {
    /// The host is not a valid SIP host name.
    #[error("{host:?} is not a valid host name")]
    BadHost { host: String },
    /// No key to sign first values with.
    #[error("at least one signing key is needed")]
    NoSigningKey,
    /// MSRP chunks or the store's chunks would be empty, or the window is zero.
    #[error("chunk sizes and the window must be positive")]
    ZeroSize,
    /// One MSRP chunk would not fit in a reply.
    #[error(
        "an MSRP chunk of {chunk_size} bytes does not fit in a reply of {max_reply_bytes} bytes"
    )]
    ReplyTooSmall {
        chunk_size: u32,
        max_reply_bytes: usize,
    },
    /// Stored chunks would not fit in one key-value entry.
    #[error("a stored chunk of {chunk_size} bytes exceeds the store's value limit")]
    ChunkTooLarge { chunk_size: u32 },
}

impl ServerConfig {
    /// This server's MSRP URI for a session: `msrp(s)://<host>/<session-id>;ws` (RFC 7977).
    pub fn msrp_uri(&self, session_id: &str) -> MsrpUri {
        MsrpUri {
            secure: self.secure,
            userinfo: None,
            host: self.host.clone(),
            port: None,
            session_id: Some(session_id.to_owned()),
            transport: "ws".into(),
            params: Vec::new(),
        }
    }

    /// Checks the configuration and returns the server's own SIP URI (`sip:<host>;transport=ws`).
    pub fn validate(&self) -> Result<SipUri, ServerConfigError> {
        if self.signing_keys.is_empty() {
            return Err(ServerConfigError::NoSigningKey);
        }
        if self.msrp_chunk_size == 0 || self.layout.chunk_size == 0 || self.window == 0 {
            return Err(ServerConfigError::ZeroSize);
        }
        if self.msrp_chunk_size as usize + MSRP_HEADER_ROOM > self.max_reply_bytes {
            return Err(ServerConfigError::ReplyTooSmall {
                chunk_size: self.msrp_chunk_size,
                max_reply_bytes: self.max_reply_bytes,
            });
        }
        if self.layout.chunk_size as usize > crate::store::VALUE_LIMIT {
            return Err(ServerConfigError::ChunkTooLarge {
                chunk_size: self.layout.chunk_size,
            });
        }
        let bad_host = || ServerConfigError::BadHost {
            host: self.host.clone(),
        };
        let mut uri = SipUri::new(Scheme::Sip, None, &self.host).map_err(|_| bad_host())?;
        uri.set_param("transport", Some("ws"))
            .map_err(|_| bad_host())?;
        Ok(uri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ServerConfig {
        ServerConfig {
            domain: "example.com".into(),
            host: "as.example.com".into(),
            secure: true,
            public_base: Url::parse("https://files.example.com/").unwrap(),
            signing_keys: vec![SigningKey::new(vec![7u8; 32]).unwrap()],
            layout: LayoutConfig::default(),
            url_lifetime_secs: 60,
            msrp_chunk_size: 1024,
            window: 4,
            max_reply_bytes: crate::grip::REPLY_LIMIT,
            max_registration_secs: 600,
            default_delivery: Delivery::Push,
        }
    }

    #[test]
    fn a_sound_configuration_yields_the_servers_contact() {
        assert_eq!(
            config().validate().unwrap().to_string(),
            "sip:as.example.com;transport=ws"
        );
    }

    #[test]
    fn unusable_configurations_are_refused() {
        type Spoil = fn(&mut ServerConfig);
        let cases: [(Spoil, ServerConfigError); 6] = [
            (|c| c.signing_keys.clear(), ServerConfigError::NoSigningKey),
            (
                |c| c.max_reply_bytes = 1500,
                ServerConfigError::ReplyTooSmall {
                    chunk_size: 1024,
                    max_reply_bytes: 1500,
                },
            ),
            (|c| c.window = 0, ServerConfigError::ZeroSize),
            (|c| c.msrp_chunk_size = 0, ServerConfigError::ZeroSize),
            (
                |c| c.layout.chunk_size = 2 << 20,
                ServerConfigError::ChunkTooLarge {
                    chunk_size: 2 << 20,
                },
            ),
            (
                |c| c.host = "bad host".into(),
                ServerConfigError::BadHost {
                    host: "bad host".into(),
                },
            ),
        ];
        for (spoil, expected) in cases {
            let mut spoiled = config();
            spoil(&mut spoiled);
            assert_eq!(spoiled.validate(), Err(expected));
        }
    }
}

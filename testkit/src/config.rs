//! The servers' configuration for tests, and the start of virtual time.

use rcs_core::first_value::{SigningKey, Url};
use rcs_core::server_config::ServerConfig;
use rcs_core::service::Delivery;
use rcs_core::store::LayoutConfig;
use rcs_core::time::Timestamp;

/// The SIP domain of the test servers.
pub const DOMAIN: &str = "example.com";

/// Where virtual time starts.
pub const START: Timestamp = Timestamp::from_unix_secs(1_800_000_000);

/// The key test servers sign first values with.
pub fn signing_key() -> SigningKey {
    SigningKey::new(vec![42u8; 32]).expect("a 32-byte key")
}

/// A server named `host` in [`DOMAIN`] over TLS: 64 KiB chunks in the store and over MSRP, 8 in
/// flight, files up to 256 MiB, hour-long URLs and registrations, push by default.
pub fn server_config(host: &str) -> ServerConfig {
    ServerConfig {
        domain: DOMAIN.into(),
        host: host.into(),
        secure: true,
        public_base: Url::parse("https://files.example.com/ft/").expect("a valid URL"),
        signing_keys: vec![signing_key()],
        layout: LayoutConfig {
            chunk_size: 64 * 1024,
            max_file_size: 256 << 20,
            ..LayoutConfig::default()
        },
        url_lifetime_secs: 3600,
        msrp_chunk_size: 64 * 1024,
        window: 8,
        max_reply_bytes: rcs_core::grip::REPLY_LIMIT,
        max_registration_secs: 3600,
        default_delivery: Delivery::Push,
    }
}

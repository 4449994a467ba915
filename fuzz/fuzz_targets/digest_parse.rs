//! Digest challenges, credentials and nonces: never panic; whatever parses writes back to a value
//! that parses to the same thing; credentials verify only against the verifier that made them; and
//! the only nonce that checks for a binding is one issued for it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rcs_core::digest::{Challenge, Credentials, NonceKey, Verifiers};
use rcs_core::first_value::SigningKey;
use rcs_core::time::Timestamp;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(challenge) = Challenge::parse(text) {
        assert_eq!(Challenge::parse(&challenge.to_string()), Ok(challenge.clone()));
        let answer = challenge.answer("u", "p", "REGISTER", "sip:example.com", "c", 1);
        let verifiers = Verifiers::derive("u", &challenge.realm, "p");
        assert!(answer.verifies(verifiers.ha1(challenge.algorithm), "REGISTER"));
        assert_eq!(Credentials::parse(&answer.to_string()), Ok(answer));
    }
    if let Ok(credentials) = Credentials::parse(text) {
        assert_eq!(
            Credentials::parse(&credentials.to_string()),
            Ok(credentials.clone())
        );
        let verifiers = Verifiers::derive(&credentials.username, &credentials.realm, "p");
        let made = credentials.verifies(verifiers.ha1(credentials.algorithm), "REGISTER");
        let remade = Challenge::new(
            &credentials.realm,
            &credentials.nonce,
            credentials.algorithm,
            false,
        )
        .answer(
            &credentials.username,
            "p",
            "REGISTER",
            &credentials.uri,
            &credentials.cnonce,
            credentials.nc,
        );
        assert_eq!(made, remade.response == credentials.response);
    }
    let Ok(key) = SigningKey::new(vec![9u8; 32]) else {
        return;
    };
    let nonces = NonceKey(&key);
    let now = Timestamp::from_unix_secs(1_800_000_000);
    if nonces.check(text, now, "conn").is_ok() {
        let mut parts = text.split('.');
        let issued = parts.next().unwrap_or_default();
        let salt = parts.next().unwrap_or_default();
        let at = u64::from_str_radix(issued, 16).unwrap_or_default();
        assert_eq!(nonces.issue(Timestamp::from_unix_secs(at), salt, "conn"), text);
    }
});

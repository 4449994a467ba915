//! First-value parsing and verification: never panics; a feature code parses only in its one
//! canonical spelling; and the only URLs (or paths and queries) that verify are exactly those
//! `sign` produces for the key, with `exp` and `sig` in either order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rcs_core::first_value::{
    ContentDigest, SigningKey, Url, VerifiedFileRef, sign, verify, verify_path_and_query,
};
use rcs_core::time::Timestamp;

const KEY: &str = "fuzzing-key-0123456789abcdef0123456789";
const BASE: &str = "https://edge.example.com/ft/";

/// The two spellings of the URL `sign` makes for `verified`: `?exp=..&sig=..` and `?sig=..&exp=..`,
/// each as (whole URL, query).
fn accepted(verified: &VerifiedFileRef, base: &Url, key: &SigningKey) -> [(String, String); 2] {
    let signed = sign(base, verified.digest, verified.expires_unix_secs, key).to_string();
    let (head, query) = signed.split_once('?').expect("signed URLs have a query");
    let (exp, sig) = query
        .split_once('&')
        .expect("signed URLs have two parameters");
    let swapped = format!("{sig}&{exp}");
    [
        (signed.clone(), query.to_owned()),
        (format!("{head}?{swapped}"), swapped),
    ]
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let (Ok(key), Ok(base)) = (SigningKey::from_variable(KEY), Url::parse(BASE)) else {
        return;
    };
    let keys = [key.clone()];
    let now = Timestamp::from_unix_secs(u64::from(mode) * 7_000_000);
    match mode % 4 {
        0 => {
            if let Ok(digest) = text.parse::<ContentDigest>() {
                assert_eq!(digest.to_string(), text);
                assert_eq!(digest.to_string().parse::<ContentDigest>(), Ok(digest));
            }
        }
        1 => {
            if let Ok(verified) = verify(text, &base, &keys, now) {
                let forms = accepted(&verified, &base, &key);
                assert!(forms.iter().any(|(url, _)| url == text), "{text}");
                assert!(now.unix_secs() <= verified.expires_unix_secs);
            }
        }
        2 => {
            let (path, query) = match text.split_once('?') {
                Some((path, query)) => (path, Some(query)),
                None => (text, None),
            };
            if let Ok(verified) = verify_path_and_query(path, query, &keys, now) {
                let forms = accepted(&verified, &base, &key);
                assert!(path.ends_with(&verified.digest.files_path()), "{path}");
                assert!(
                    forms.iter().any(|(_, q)| Some(q.as_str()) == query),
                    "{text}"
                );
            }
        }
        _ => {
            // Start from a genuine URL and let the input overwrite part of it: only the untouched
            // URL may verify.
            let digest = ContentDigest::of(rest);
            let exp = u64::from(mode) * 7_000_000 + 1;
            let genuine = sign(&base, digest, exp, &key).to_string();
            let mut bytes = genuine.clone().into_bytes();
            let at = usize::from(mode) % bytes.len().max(1);
            for (i, &b) in rest.iter().take(8).enumerate() {
                if let Some(slot) = bytes.get_mut(at + i) {
                    *slot = b;
                }
            }
            let Ok(forged) = String::from_utf8(bytes) else {
                return;
            };
            if let Ok(verified) = verify(&forged, &base, &keys, now) {
                assert_eq!(forged, genuine);
                assert_eq!(verified.digest, digest);
                assert_eq!(verified.expires_unix_secs, exp);
            }
        }
    }
});

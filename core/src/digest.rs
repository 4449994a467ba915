//! Digest access authentication, for SIP (RFC 3261 section 22, RFC 8760) and HTTP (RFC 7616): the
//! algorithms and their password verifiers, the `WWW-Authenticate` challenge and the `Authorization`
//! credentials (parsed and written), the response a client computes, and the stateless nonce the
//! servers issue and check.
//!
//! - [`Algorithm`]: `MD5`, `SHA-256` and `SHA-512-256`, each with `qop=auth` only (integrity of the
//!   body, `auth-int`, adds nothing over TLS and no client of ours asks for it).
//! - [`Verifiers`]: what an account stores instead of its password: `H(user:realm:password)` for
//!   each algorithm (RFC 7616 section 3.4.2, `A1`), so that any of them can be checked and the
//!   password itself is never kept.
//! - [`Challenge`] and [`Credentials`]: the header values, parsed by one bounded tokenizer of the
//!   `auth-param` grammar (RFC 7235 section 2.1, the same list as RFC 3261 section 25.1's
//!   `digest-cln`), and written back.
//! - [`NonceKey`]: nonces of the form `<issued, hex>.<HMAC>`, bound to what the server names (a
//!   connection): a server checks one without writing a record per challenge, a nonce for another
//!   binding does not verify, and one older than its lifetime is stale (`stale=true`).
//!
//! Nothing here reads a clock or a random source: times and client nonces are inputs.

use std::fmt;

use md5::Md5;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256, Sha512_256};
use subtle::ConstantTimeEq;

use crate::first_value::SigningKey;
use crate::lex;
use crate::time::Timestamp;

/// The longest header value the parsers take, in bytes.
pub const MAX_HEADER_BYTES: usize = 4096;

/// The most parameters a challenge or credentials carry.
const MAX_PARAMS: usize = 24;

/// How long a nonce is fresh, in seconds: a REGISTER answered later is answered `stale=true`.
pub const NONCE_LIFETIME_SECS: u64 = 300;

/// A digest algorithm (RFC 7616 section 3.3, RFC 8760 section 2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// `MD5`, what RFC 3261 clients and the widely used browser SIP libraries know.
    Md5,
    /// `SHA-256` (RFC 8760).
    Sha256,
    /// `SHA-512-256` (RFC 8760).
    Sha512_256,
}

impl Algorithm {
    /// Every algorithm, in the order a server offers them: MD5 first, because clients that know
    /// only MD5 answer the first challenge whatever it asks for; clients that know more pick the
    /// strongest offered ([`Challenge::strongest`]).
    pub const OFFERED: [Algorithm; 3] = [Algorithm::Md5, Algorithm::Sha256, Algorithm::Sha512_256];

    /// The algorithm's name in a header.
    pub fn name(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Sha256 => "SHA-256",
            Self::Sha512_256 => "SHA-512-256",
        }
    }

    /// The algorithm a header names (case-insensitive); `None` for one not supported, including
    /// the `-sess` variants.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::OFFERED
            .into_iter()
            .find(|algorithm| algorithm.name().eq_ignore_ascii_case(name))
    }

    /// How much an algorithm resists attack: the larger, the stronger.
    fn strength(self) -> u8 {
        match self {
            Self::Md5 => 0,
            Self::Sha256 => 1,
            Self::Sha512_256 => 2,
        }
    }

    /// `H(data)` as lowercase hex.
    pub fn hash_hex(self, data: &[u8]) -> String {
        match self {
            Self::Md5 => hex::encode(Md5::digest(data)),
            Self::Sha256 => hex::encode(Sha256::digest(data)),
            Self::Sha512_256 => hex::encode(Sha512_256::digest(data)),
        }
    }

    /// `H(user:realm:password)`, the verifier of a password (`A1` of RFC 7616 section 3.4.2).
    pub fn ha1(self, user: &str, realm: &str, password: &str) -> String {
        self.hash_hex(format!("{user}:{realm}:{password}").as_bytes())
    }

    /// The `response` for `qop=auth` (RFC 7616 section 3.4.1):
    /// `H(HA1:nonce:nc:cnonce:auth:H(method:uri))`.
    pub fn response(self, ha1: &str, answer: &ResponseInput<'_>) -> String {
        let ha2 = self.hash_hex(format!("{}:{}", answer.method, answer.uri).as_bytes());
        self.hash_hex(
            format!(
                "{ha1}:{}:{:08x}:{}:auth:{ha2}",
                answer.nonce, answer.nc, answer.cnonce
            )
            .as_bytes(),
        )
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a `qop=auth` response covers besides the verifier.
#[derive(Clone, Copy, Debug)]
pub struct ResponseInput<'a> {
    /// The request's method (`REGISTER`, `POST`).
    pub method: &'a str,
    /// The `uri` of the credentials (the Request-URI, or the HTTP request target).
    pub uri: &'a str,
    /// The server's nonce.
    pub nonce: &'a str,
    /// How many requests the client has sent with this nonce, from 1.
    pub nc: u32,
    /// The client's nonce.
    pub cnonce: &'a str,
}

/// What an account keeps instead of its password: the verifier of each [`Algorithm`] for one realm.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verifiers {
    /// The realm the verifiers were derived for (the SIP domain).
    pub realm: String,
    /// `MD5(user:realm:password)`, hex.
    pub md5: String,
    /// `SHA-256(user:realm:password)`, hex.
    pub sha256: String,
    /// `SHA-512-256(user:realm:password)`, hex.
    pub sha512_256: String,
}

impl Verifiers {
    /// The verifiers of `password` for `user` in `realm`.
    pub fn derive(user: &str, realm: &str, password: &str) -> Self {
        Self {
            realm: realm.to_owned(),
            md5: Algorithm::Md5.ha1(user, realm, password),
            sha256: Algorithm::Sha256.ha1(user, realm, password),
            sha512_256: Algorithm::Sha512_256.ha1(user, realm, password),
        }
    }

    /// The verifier for `algorithm`.
    pub fn ha1(&self, algorithm: Algorithm) -> &str {
        match algorithm {
            Algorithm::Md5 => &self.md5,
            Algorithm::Sha256 => &self.sha256,
            Algorithm::Sha512_256 => &self.sha512_256,
        }
    }

    /// Whether every verifier is a hash of the right length in lowercase hex (what a client sends
    /// when it creates an account or changes its password).
    pub fn is_well_formed(&self) -> bool {
        let hex_of = |text: &str, len: usize| {
            text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        hex_of(&self.md5, 32) && hex_of(&self.sha256, 64) && hex_of(&self.sha512_256, 64)
    }
}

impl fmt::Debug for Verifiers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Verifiers(realm {:?}, <hashes>)", self.realm)
    }
}

/// Why a challenge or credentials header does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// The value is longer than [`MAX_HEADER_BYTES`].
    #[error("the header is longer than {MAX_HEADER_BYTES} bytes")]
    TooLong,
    /// The scheme is not `Digest`.
    #[error("the scheme is not Digest")]
    NotDigest,
    /// The parameter list does not follow the grammar.
    #[error("malformed parameter list at byte {offset}")]
    Syntax {
        /// Where parsing stopped.
        offset: usize,
    },
    /// A parameter appears twice.
    #[error("parameter {0} appears twice")]
    Duplicate(String),
    /// More than the parser takes.
    #[error("more than {MAX_PARAMS} parameters")]
    TooManyParams,
    /// A parameter the scheme needs is missing.
    #[error("parameter {0} is missing")]
    Missing(&'static str),
    /// A parameter's value is not what the scheme allows.
    #[error("parameter {name} is invalid: {why}")]
    Invalid {
        /// The parameter.
        name: &'static str,
        /// What is wrong.
        why: &'static str,
    },
    /// The algorithm is not one of [`Algorithm::OFFERED`].
    #[error("algorithm {0} is not supported")]
    UnsupportedAlgorithm(String),
}

/// A `WWW-Authenticate: Digest ...` challenge (RFC 7616 section 3.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// The protection space: the SIP domain.
    pub realm: String,
    /// The server's nonce.
    pub nonce: String,
    /// The algorithm the answer must use.
    pub algorithm: Algorithm,
    /// Whether the previous answer failed only because its nonce had expired: the client answers
    /// again with the same password and the new nonce, without asking the user.
    pub stale: bool,
    /// Whether the server offers `qop=auth` (ours always do; RFC 2069 challenges without `qop` are
    /// parsed but not answered).
    pub qop_auth: bool,
    /// Data the client returns unchanged.
    pub opaque: Option<String>,
}

impl Challenge {
    /// A challenge of this server's: `qop="auth"`, no `opaque`.
    pub fn new(realm: &str, nonce: &str, algorithm: Algorithm, stale: bool) -> Self {
        Self {
            realm: realm.to_owned(),
            nonce: nonce.to_owned(),
            algorithm,
            stale,
            qop_auth: true,
            opaque: None,
        }
    }

    /// Parses the value of one `WWW-Authenticate` header.
    pub fn parse(value: &str) -> Result<Self, DigestError> {
        let params = parse_digest(value)?;
        let algorithm = params.algorithm()?;
        let qop_auth = params.get("qop").is_some_and(|qop| {
            qop.split(',')
                .any(|option| option.trim().eq_ignore_ascii_case("auth"))
        });
        Ok(Self {
            realm: params.required("realm")?.to_owned(),
            nonce: params.required("nonce")?.to_owned(),
            algorithm,
            stale: params
                .get("stale")
                .is_some_and(|stale| stale.eq_ignore_ascii_case("true")),
            qop_auth,
            opaque: params.get("opaque").map(str::to_owned),
        })
    }

    /// Of several challenges (one per header), the one with the strongest algorithm that offers
    /// `qop=auth`.
    pub fn strongest(challenges: impl IntoIterator<Item = Challenge>) -> Option<Challenge> {
        challenges
            .into_iter()
            .filter(|challenge| challenge.qop_auth)
            .max_by_key(|challenge| challenge.algorithm.strength())
    }

    /// The credentials answering this challenge for `user` with `password`.
    pub fn answer(
        &self,
        user: &str,
        password: &str,
        method: &str,
        uri: &str,
        cnonce: &str,
        nc: u32,
    ) -> Credentials {
        let ha1 = self.algorithm.ha1(user, &self.realm, password);
        let response = self.algorithm.response(
            &ha1,
            &ResponseInput {
                method,
                uri,
                nonce: &self.nonce,
                nc,
                cnonce,
            },
        );
        Credentials {
            username: user.to_owned(),
            realm: self.realm.clone(),
            nonce: self.nonce.clone(),
            uri: uri.to_owned(),
            response,
            algorithm: self.algorithm,
            cnonce: cnonce.to_owned(),
            nc,
            opaque: self.opaque.clone(),
        }
    }
}

impl fmt::Display for Challenge {
    /// The header value: `Digest realm="...", nonce="...", algorithm=..., qop="auth"[, stale=true]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Digest realm={}, nonce={}, algorithm={}",
            quoted(&self.realm),
            quoted(&self.nonce),
            self.algorithm
        )?;
        if self.qop_auth {
            f.write_str(", qop=\"auth\"")?;
        }
        if let Some(opaque) = &self.opaque {
            write!(f, ", opaque={}", quoted(opaque))?;
        }
        if self.stale {
            f.write_str(", stale=true")?;
        }
        Ok(())
    }
}

/// `Authorization: Digest ...` credentials with `qop=auth` (RFC 7616 section 3.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The user name (the user part of the address of record).
    pub username: String,
    /// The realm of the challenge answered.
    pub realm: String,
    /// The server's nonce.
    pub nonce: String,
    /// The request target the response covers.
    pub uri: String,
    /// The response, lowercase hex.
    pub response: String,
    /// The algorithm of the response.
    pub algorithm: Algorithm,
    /// The client's nonce.
    pub cnonce: String,
    /// The nonce count.
    pub nc: u32,
    /// The challenge's `opaque`, returned.
    pub opaque: Option<String>,
}

impl Credentials {
    /// Parses the value of an `Authorization` header. Credentials without `qop=auth` (RFC 2069),
    /// with `auth-int`, or with `userhash=true` are refused: the servers never ask for them.
    pub fn parse(value: &str) -> Result<Self, DigestError> {
        let params = parse_digest(value)?;
        let algorithm = params.algorithm()?;
        match params.get("qop") {
            Some(qop) if qop.eq_ignore_ascii_case("auth") => {}
            Some(_) => {
                return Err(DigestError::Invalid {
                    name: "qop",
                    why: "only auth is supported",
                });
            }
            None => return Err(DigestError::Missing("qop")),
        }
        if params
            .get("userhash")
            .is_some_and(|userhash| userhash.eq_ignore_ascii_case("true"))
        {
            return Err(DigestError::Invalid {
                name: "userhash",
                why: "user names are not hashed here",
            });
        }
        let nc_text = params.required("nc")?;
        let nc = (nc_text.len() == 8)
            .then(|| u32::from_str_radix(nc_text, 16).ok())
            .flatten()
            .filter(|&nc| nc > 0)
            .ok_or(DigestError::Invalid {
                name: "nc",
                why: "must be 8 hex digits, from 00000001",
            })?;
        let response = params.required("response")?.to_ascii_lowercase();
        if response.len() != 2 * algorithm_output_bytes(algorithm)
            || !response.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(DigestError::Invalid {
                name: "response",
                why: "not a hash of the algorithm",
            });
        }
        let cnonce = params.required("cnonce")?;
        if cnonce.is_empty() {
            return Err(DigestError::Invalid {
                name: "cnonce",
                why: "must not be empty",
            });
        }
        Ok(Self {
            username: params.required("username")?.to_owned(),
            realm: params.required("realm")?.to_owned(),
            nonce: params.required("nonce")?.to_owned(),
            uri: params.required("uri")?.to_owned(),
            response,
            algorithm,
            cnonce: cnonce.to_owned(),
            nc,
            opaque: params.get("opaque").map(str::to_owned),
        })
    }

    /// Whether the response is the one `ha1` gives for `method`, compared in constant time.
    pub fn verifies(&self, ha1: &str, method: &str) -> bool {
        let expected = self.algorithm.response(
            ha1,
            &ResponseInput {
                method,
                uri: &self.uri,
                nonce: &self.nonce,
                nc: self.nc,
                cnonce: &self.cnonce,
            },
        );
        bool::from(expected.as_bytes().ct_eq(self.response.as_bytes()))
    }
}

impl fmt::Display for Credentials {
    /// The header value, in the order of RFC 7616's examples.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Digest username={}, realm={}, uri={}, algorithm={}, nonce={}, nc={:08x}, cnonce={}, \
             qop=auth, response={}",
            quoted(&self.username),
            quoted(&self.realm),
            quoted(&self.uri),
            self.algorithm,
            quoted(&self.nonce),
            self.nc,
            quoted(&self.cnonce),
            quoted(&self.response),
        )?;
        if let Some(opaque) = &self.opaque {
            write!(f, ", opaque={}", quoted(opaque))?;
        }
        Ok(())
    }
}

fn algorithm_output_bytes(algorithm: Algorithm) -> usize {
    match algorithm {
        Algorithm::Md5 => 16,
        Algorithm::Sha256 | Algorithm::Sha512_256 => 32,
    }
}

/// `text` as a quoted string: `"` and `\` escaped.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The parameters of a `Digest` header value, names lowercased, values unquoted.
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn required(&self, name: &'static str) -> Result<&str, DigestError> {
        self.get(name).ok_or(DigestError::Missing(name))
    }

    /// The `algorithm` named, MD5 when none is (RFC 7616 section 3.3).
    fn algorithm(&self) -> Result<Algorithm, DigestError> {
        match self.get("algorithm") {
            None => Ok(Algorithm::Md5),
            Some(name) => Algorithm::from_name(name)
                .ok_or_else(|| DigestError::UnsupportedAlgorithm(name.to_owned())),
        }
    }
}

/// Linear white space as header values carry it once unfolded: SP and HTAB (and CR LF, for a
/// value that was not unfolded).
fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Splits `Digest *(auth-param / ",")` into its parameters (RFC 7235 section 2.1: empty list
/// elements are allowed; every value a token or a quoted string).
fn parse_digest(value: &str) -> Result<Params, DigestError> {
    if value.len() > MAX_HEADER_BYTES {
        return Err(DigestError::TooLong);
    }
    let bytes = value.as_bytes();
    let skip_lws = |mut at: usize| {
        while bytes.get(at).copied().is_some_and(is_lws) {
            at += 1;
        }
        at
    };
    let mut at = skip_lws(0);
    let scheme_end = at
        + bytes[at..]
            .iter()
            .take_while(|&&b| lex::is_token_char(b))
            .count();
    if !value[at..scheme_end].eq_ignore_ascii_case("Digest") {
        return Err(DigestError::NotDigest);
    }
    at = scheme_end;
    let mut params: Vec<(String, String)> = Vec::new();
    // After a parameter only a comma may come; the first one is set off from the scheme.
    let mut after_param = false;
    loop {
        at = skip_lws(at);
        match bytes.get(at) {
            None => break,
            Some(b',') => {
                at += 1;
                after_param = false;
                continue;
            }
            Some(_) if after_param || at == scheme_end => {
                return Err(DigestError::Syntax { offset: at });
            }
            Some(_) => {}
        }
        let name_start = at;
        while bytes.get(at).copied().is_some_and(lex::is_token_char) {
            at += 1;
        }
        if at == name_start {
            return Err(DigestError::Syntax { offset: at });
        }
        let name = value[name_start..at].to_ascii_lowercase();
        at = skip_lws(at);
        if bytes.get(at) != Some(&b'=') {
            return Err(DigestError::Syntax { offset: at });
        }
        at = skip_lws(at + 1);
        let parsed = if bytes.get(at) == Some(&b'"') {
            let end = lex::scan_quoted(bytes, at).map_err(|error| DigestError::Syntax {
                offset: error.offset,
            })?;
            let text = unquote(&value[at + 1..end - 1]);
            at = end;
            text
        } else {
            let start = at;
            while bytes.get(at).copied().is_some_and(lex::is_token_char) {
                at += 1;
            }
            if at == start {
                return Err(DigestError::Syntax { offset: at });
            }
            value[start..at].to_owned()
        };
        if params.iter().any(|(known, _)| *known == name) {
            return Err(DigestError::Duplicate(name));
        }
        if params.len() == MAX_PARAMS {
            return Err(DigestError::TooManyParams);
        }
        params.push((name, parsed));
        after_param = true;
    }
    Ok(Params(params))
}

/// The text of a quoted string's inside, its escapes undone.
fn unquote(inner: &str) -> String {
    let mut out = String::with_capacity(inner.len());
    let mut escaped = false;
    for c in inner.chars() {
        if escaped || c != '\\' {
            out.push(c);
            escaped = false;
        } else {
            escaped = true;
        }
    }
    out
}

/// Why a nonce was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NonceError {
    /// Not issued by this server for this binding (another connection's, altered, made up).
    #[error("the nonce was not issued here for this connection")]
    Foreign,
    /// Issued here, but more than [`NONCE_LIFETIME_SECS`] ago.
    #[error("the nonce has expired")]
    Stale,
}

/// The key nonces are issued and checked with: a nonce is `<issued unix seconds, hex>.<salt>.<tag>`,
/// where the salt (hex) makes two nonces of the same second differ and the tag is the first 128
/// bits of an HMAC-SHA256 over the issue time, the salt and the binding.
#[derive(Clone, Debug)]
pub struct NonceKey<'k>(pub &'k SigningKey);

/// The most hex digits a nonce's salt has.
const MAX_SALT: usize = 32;

impl NonceKey<'_> {
    fn tag(&self, issued: u64, salt: &str, binding: &str) -> String {
        let mut seal = self
            .0
            .seal(format!("digest-nonce\n{issued}\n{salt}\n{binding}").as_bytes());
        seal.truncate(32);
        seal
    }

    /// A nonce issued at `now` for `binding` (a connection id, or a request's scope), made unique
    /// by `salt` (random hex, at most 32 digits).
    pub fn issue(&self, now: Timestamp, salt: &str, binding: &str) -> String {
        let issued = now.unix_secs();
        format!("{issued:x}.{salt}.{}", self.tag(issued, salt, binding))
    }

    /// Checks that this key issued `nonce` for `binding`, no more than [`NONCE_LIFETIME_SECS`]
    /// before `now`; returns when it was issued.
    pub fn check(&self, nonce: &str, now: Timestamp, binding: &str) -> Result<u64, NonceError> {
        let (issued_hex, rest) = nonce.split_once('.').ok_or(NonceError::Foreign)?;
        let (salt, tag) = rest.split_once('.').ok_or(NonceError::Foreign)?;
        if salt.len() > MAX_SALT || !salt.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(NonceError::Foreign);
        }
        if issued_hex.is_empty() || issued_hex.len() > 16 {
            return Err(NonceError::Foreign);
        }
        let issued = u64::from_str_radix(issued_hex, 16).map_err(|_| NonceError::Foreign)?;
        // One spelling per nonce: no leading zeros, lowercase.
        if format!("{issued:x}") != issued_hex {
            return Err(NonceError::Foreign);
        }
        let expected = self.tag(issued, salt, binding);
        if !bool::from(expected.as_bytes().ct_eq(tag.as_bytes())) {
            return Err(NonceError::Foreign);
        }
        let now = now.unix_secs();
        if issued > now.saturating_add(NONCE_LIFETIME_SECS) {
            return Err(NonceError::Foreign);
        }
        if now.saturating_sub(issued) > NONCE_LIFETIME_SECS {
            return Err(NonceError::Stale);
        }
        Ok(issued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithms_are_named_as_the_rfcs_write_them() {
        for algorithm in Algorithm::OFFERED {
            assert_eq!(Algorithm::from_name(algorithm.name()), Some(algorithm));
            assert_eq!(
                Algorithm::from_name(&algorithm.name().to_ascii_lowercase()),
                Some(algorithm)
            );
        }
        assert_eq!(Algorithm::from_name("MD5-sess"), None);
    }

    #[test]
    fn a_challenge_survives_writing_and_parsing() {
        let mut challenge = Challenge::new("example.com", "5f.ab\"c", Algorithm::Sha256, true);
        challenge.opaque = Some("x\\y".into());
        assert_eq!(Challenge::parse(&challenge.to_string()), Ok(challenge));
    }

    #[test]
    fn credentials_survive_writing_and_parsing_and_verify() {
        let challenge = Challenge::new("example.com", "n", Algorithm::Sha512_256, false);
        let credentials = challenge.answer("bob", "pw", "REGISTER", "sip:example.com", "c", 7);
        let parsed = Credentials::parse(&credentials.to_string()).unwrap();
        assert_eq!(parsed, credentials);
        let verifiers = Verifiers::derive("bob", "example.com", "pw");
        assert!(parsed.verifies(verifiers.ha1(Algorithm::Sha512_256), "REGISTER"));
        assert!(!parsed.verifies(verifiers.ha1(Algorithm::Sha512_256), "INVITE"));
        assert!(verifiers.is_well_formed());
    }

    #[test]
    fn the_strongest_challenge_with_qop_auth_is_answered() {
        let challenges = Algorithm::OFFERED.map(|a| Challenge::new("r", "n", a, false));
        assert_eq!(
            Challenge::strongest(challenges).map(|c| c.algorithm),
            Some(Algorithm::Sha512_256)
        );
        let mut no_qop = Challenge::new("r", "n", Algorithm::Sha256, false);
        no_qop.qop_auth = false;
        let md5 = Challenge::new("r", "n", Algorithm::Md5, false);
        assert_eq!(
            Challenge::strongest([no_qop, md5.clone()]),
            Some(md5),
            "a challenge without qop=auth cannot be answered"
        );
    }

    #[test]
    fn malformed_headers_are_refused_with_what_is_wrong() {
        let cases: [(&str, DigestError); 8] = [
            ("Basic abc", DigestError::NotDigest),
            ("Digest", DigestError::Missing("realm")),
            ("Digest realm", DigestError::Syntax { offset: 12 }),
            ("Digest realm=\"r", DigestError::Syntax { offset: 13 }),
            ("Digest realm=r realm=s", DigestError::Syntax { offset: 15 }),
            ("Digestrealm=r", DigestError::NotDigest),
            (
                "Digest realm=r, realm=s",
                DigestError::Duplicate("realm".into()),
            ),
            (
                "Digest realm=r, nonce=n, algorithm=MD5-sess",
                DigestError::UnsupportedAlgorithm("MD5-sess".into()),
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(Challenge::parse(value), Err(expected), "{value}");
        }
        assert_eq!(
            Challenge::parse(&"Digest ".repeat(1000)),
            Err(DigestError::TooLong)
        );
        let credentials = Challenge::new("r", "n", Algorithm::Md5, false)
            .answer("u", "p", "REGISTER", "sip:r", "c", 1)
            .to_string();
        for (spoil, expected) in [
            (
                credentials.replace("nc=00000001", "nc=1"),
                DigestError::Invalid {
                    name: "nc",
                    why: "must be 8 hex digits, from 00000001",
                },
            ),
            (
                credentials.replace("qop=auth", "qop=auth-int"),
                DigestError::Invalid {
                    name: "qop",
                    why: "only auth is supported",
                },
            ),
            (
                credentials.replace(", qop=auth", ""),
                DigestError::Missing("qop"),
            ),
            (
                credentials.replace("algorithm=MD5", "algorithm=SHA-256"),
                DigestError::Invalid {
                    name: "response",
                    why: "not a hash of the algorithm",
                },
            ),
        ] {
            assert_eq!(Credentials::parse(&spoil), Err(expected), "{spoil}");
        }
    }

    #[test]
    fn nonces_verify_for_their_binding_and_go_stale() {
        let key = SigningKey::new(vec![3u8; 32]).unwrap();
        let nonces = NonceKey(&key);
        let now = Timestamp::from_unix_millis(1_800_000_000_000);
        let nonce = nonces.issue(now, "5a17", "conn-a");
        assert_ne!(
            nonce,
            nonces.issue(now, "5a18", "conn-a"),
            "the salt tells them apart"
        );
        assert_eq!(nonces.check(&nonce, now, "conn-a"), Ok(now.unix_secs()));
        assert_eq!(
            nonces.check(&nonce, now, "conn-b"),
            Err(NonceError::Foreign)
        );
        let later = now.plus_millis((NONCE_LIFETIME_SECS + 1) * 1000);
        assert_eq!(
            nonces.check(&nonce, later, "conn-a"),
            Err(NonceError::Stale)
        );
        let other_key = SigningKey::new(vec![4u8; 32]).unwrap();
        assert_eq!(
            NonceKey(&other_key).check(&nonce, now, "conn-a"),
            Err(NonceError::Foreign)
        );
        let padded = format!("0{nonce}");
        let unsalted = nonce.replacen(".5a17", "", 1);
        for forged in [
            "",
            ".",
            "zz.00",
            "1.",
            &nonce.replace('.', ""),
            &padded,
            &unsalted,
        ] {
            assert_eq!(
                nonces.check(forged, now, "conn-a"),
                Err(NonceError::Foreign)
            );
        }
    }
}

//! The worked examples of RFC 2617 section 3.5 and RFC 7616 section 3.9.1 (files under
//! `tests/data/digest/`): each challenge parses, the client's answer to it computes the RFC's
//! response, and the RFC's credentials verify against the verifiers of the RFC's password, for MD5
//! and SHA-256.

use std::path::PathBuf;

use rcs_core::digest::{Algorithm, Challenge, Credentials, Verifiers};

/// The value of the one header in a data file: the name and its colon stripped.
fn header_value(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/digest")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let (_, value) = text.split_once(':').expect("a header");
    value.trim().to_owned()
}

struct Example {
    challenge: &'static str,
    authorization: &'static str,
    password: &'static str,
    algorithm: Algorithm,
    response: &'static str,
}

const EXAMPLES: [Example; 3] = [
    Example {
        challenge: "rfc2617-3.5-challenge.txt",
        authorization: "rfc2617-3.5-authorization.txt",
        password: "Circle Of Life",
        algorithm: Algorithm::Md5,
        response: "6629fae49393a05397450978507c4ef1",
    },
    Example {
        challenge: "rfc7616-3.9.1-challenge-md5.txt",
        authorization: "rfc7616-3.9.1-authorization-md5.txt",
        password: "Circle of Life",
        algorithm: Algorithm::Md5,
        response: "8ca523f5e9506fed4657c9700eebdbec",
    },
    Example {
        challenge: "rfc7616-3.9.1-challenge-sha256.txt",
        authorization: "rfc7616-3.9.1-authorization-sha256.txt",
        password: "Circle of Life",
        algorithm: Algorithm::Sha256,
        response: "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
    },
];

#[test]
fn answers_to_the_rfc_challenges_are_the_rfc_responses() {
    for example in EXAMPLES {
        let challenge = Challenge::parse(&header_value(example.challenge))
            .unwrap_or_else(|e| panic!("{}: {e}", example.challenge));
        assert_eq!(
            challenge.algorithm, example.algorithm,
            "{}",
            example.challenge
        );
        assert!(challenge.qop_auth && !challenge.stale);
        let rfc = Credentials::parse(&header_value(example.authorization))
            .unwrap_or_else(|e| panic!("{}: {e}", example.authorization));
        let answer = challenge.answer(
            "Mufasa",
            example.password,
            "GET",
            "/dir/index.html",
            &rfc.cnonce,
            rfc.nc,
        );
        assert_eq!(answer.response, example.response, "{}", example.challenge);
        assert_eq!(answer, rfc, "the answer carries what the RFC's does");
        assert_eq!(
            Credentials::parse(&answer.to_string()).as_ref(),
            Ok(&rfc),
            "written and parsed again"
        );
    }
}

#[test]
fn the_rfc_credentials_verify_against_stored_verifiers_only_with_the_right_password() {
    for example in EXAMPLES {
        let rfc = Credentials::parse(&header_value(example.authorization)).unwrap();
        let right = Verifiers::derive("Mufasa", &rfc.realm, example.password);
        assert!(rfc.verifies(right.ha1(example.algorithm), "GET"));
        let wrong = Verifiers::derive("Mufasa", &rfc.realm, "circle of life");
        assert!(!rfc.verifies(wrong.ha1(example.algorithm), "GET"));
        assert!(!rfc.verifies(right.ha1(example.algorithm), "POST"));
    }
}

#[test]
fn of_the_rfc_7616_pair_a_client_picks_sha_256() {
    let offered = [
        "rfc7616-3.9.1-challenge-sha256.txt",
        "rfc7616-3.9.1-challenge-md5.txt",
    ]
    .map(|name| Challenge::parse(&header_value(name)).unwrap());
    assert_eq!(
        Challenge::strongest(offered).map(|c| c.algorithm),
        Some(Algorithm::Sha256)
    );
}

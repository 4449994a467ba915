//! The signed download, `GET`/`HEAD /files/<sha256-hex>?exp=<unix>&sig=<hex>`: which requests are
//! allowed ([`check`]) and what each is answered ([`plan`]), given the file's manifest.
//!
//! - The URL is verified with [`first_value::verify_path_and_query`] against the configured keys:
//!   a forged, altered, foreign or expired URL gets `403` with the reason; a path that names no file
//!   `404`; a request too long `414`; a method other than `GET` and `HEAD` `405` with `Allow`.
//! - No manifest: `404` (also for a file still being uploaded, until it is complete); a manifest
//!   past its lifetime: `410`.
//! - `200` (or `206` for one satisfiable range, `416` for an unsatisfiable one) with
//!   `Content-Type`, `Content-Length` (not on `HEAD`: WASI HTTP holds a body to it), `ETag: "<hex>"`,
//!   `Accept-Ranges: bytes`,
//!   `Content-Disposition` ([`headers::content_disposition`]), `Cache-Control: private,
//!   max-age=<seconds until the URL or the file expires>` and `Last-Modified` (when the file was
//!   stored). `If-None-Match` matching the tag gives `304`; `If-Range` other than the tag gives the
//!   whole file.

use super::headers;
use super::range::{self, RangeRequest};
use super::{Answer, AnswerBody};
use crate::first_value::{self, FirstValueError, SigningKey, VerifiedFileRef};
use crate::store::Manifest;
use crate::time::Timestamp;

/// The methods the download answers.
pub const ALLOW: &str = "GET, HEAD";

/// What a download request carries that matters here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DownloadRequest<'a> {
    /// The method, as sent.
    pub method: &'a str,
    /// The path (`/files/<hex>`, possibly behind a clean prefix).
    pub path: &'a str,
    /// The query, without `?`.
    pub query: Option<&'a str>,
    /// The `Range` header.
    pub range: Option<&'a str>,
    /// The `If-Range` header.
    pub if_range: Option<&'a str>,
    /// The `If-None-Match` header.
    pub if_none_match: Option<&'a str>,
}

impl DownloadRequest<'_> {
    fn is_head(&self) -> bool {
        self.method.eq_ignore_ascii_case("HEAD")
    }
}

/// Checks the method and the signed URL: the file to look up, or the answer that refuses it.
pub fn check(
    request: &DownloadRequest<'_>,
    keys: &[SigningKey],
    now: Timestamp,
) -> Result<VerifiedFileRef, Answer> {
    if !matches!(request.method, "GET" | "HEAD") {
        return Err(
            Answer::reason(405, format!("method {} is not allowed", request.method))
                .with_header("Allow", ALLOW.to_owned()),
        );
    }
    first_value::verify_path_and_query(request.path, request.query, keys, now).map_err(|error| {
        let status = match error {
            FirstValueError::BadPath { .. } => 404,
            FirstValueError::TooLong { .. } => 414,
            FirstValueError::NoTrustedKeys => 500,
            _ => 403,
        };
        Answer::reason(status, format!("file URL refused: {error}"))
    })
}

/// Why a verified URL finds no file: none is stored under its digest, or not yet. A first value
/// reaches the recipient as its upload starts (cut-through delivery), and the URL serves the file
/// once the upload is complete and the bytes hash to its digest, never a part of it before.
pub const NOT_STORED: &str = "no such file is stored; a file still being uploaded can be downloaded once its upload is complete";

/// The answer to a verified request, given the manifest stored under the file's key (`None` if
/// there is none).
pub fn plan(
    request: &DownloadRequest<'_>,
    verified: &VerifiedFileRef,
    manifest: Option<&Manifest>,
    now: Timestamp,
) -> Answer {
    let Some(manifest) = manifest.filter(|m| m.digest == verified.digest) else {
        return Answer::reason(404, NOT_STORED);
    };
    if manifest.is_expired(now) {
        return Answer::reason(410, "the file has expired and is no longer stored");
    }
    let hex = manifest.digest.to_hex();
    let etag = headers::etag(&hex);
    // Valid up to and including the `exp` second; the file goes at its `expires` second.
    let until = verified
        .expires_unix_secs
        .saturating_add(1)
        .min(manifest.expires);
    let max_age = until.saturating_sub(now.unix_secs());
    let mut head = vec![
        ("ETag", etag.clone()),
        ("Cache-Control", format!("private, max-age={max_age}")),
        ("Last-Modified", headers::http_date(manifest.created)),
        ("Accept-Ranges", "bytes".to_owned()),
    ];
    if request
        .if_none_match
        .is_some_and(|h| headers::if_none_match(h, &etag))
    {
        return Answer {
            status: 304,
            headers: head,
            body: AnswerBody::Empty,
        };
    }
    let size = manifest.size;
    let wanted = match request.range {
        Some(header) if request.if_range.is_none_or(|h| headers::if_range(h, &etag)) => {
            range::parse(header, size)
        }
        _ => RangeRequest::Whole,
    };
    let (status, bytes) = match wanted {
        RangeRequest::Whole => (200, 0..size),
        RangeRequest::Partial(bytes) => {
            head.push(("Content-Range", range::content_range(&bytes, size)));
            (206, bytes)
        }
        RangeRequest::Unsatisfiable => {
            let mut answer = Answer::reason(
                416,
                format!("no byte of the {size}-byte file is in that range"),
            );
            answer.headers.extend(head);
            answer
                .headers
                .push(("Content-Range", range::unsatisfied_range(size)));
            return answer;
        }
    };
    head.push(("Content-Type", manifest.content_type.clone()));
    // A HEAD answer has no body, and WASI HTTP holds a response's body to its Content-Length, so
    // the length is sent only with the bytes.
    if !request.is_head() {
        head.push(("Content-Length", (bytes.end - bytes.start).to_string()));
    }
    head.push((
        "Content-Disposition",
        headers::content_disposition(manifest.name.as_deref()),
    ));
    head.push(("X-Content-Type-Options", "nosniff".to_owned()));
    Answer {
        status,
        headers: head,
        body: if request.is_head() || bytes.is_empty() {
            AnswerBody::Empty
        } else {
            AnswerBody::File(bytes)
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::first_value::{ContentDigest, Url, sign};

    const NOW: Timestamp = Timestamp::from_unix_secs(1_800_000_000);
    const EXP: u64 = 1_800_000_600;

    fn key() -> SigningKey {
        SigningKey::new(vec![9u8; 32]).unwrap()
    }

    fn manifest() -> Manifest {
        Manifest {
            digest: ContentDigest::of(b"file"),
            size: 1000,
            name: Some("report \"final\".pdf".into()),
            content_type: "application/pdf".into(),
            chunk_size: 256,
            chunks: "c1".into(),
            created: 1_799_990_000,
            expires: 1_800_000_300,
        }
    }

    fn url() -> Url {
        sign(
            &Url::parse("http://127.0.0.1:3000/").unwrap(),
            ContentDigest::of(b"file"),
            EXP,
            &key(),
        )
    }

    fn answer(
        method: &str,
        range: Option<&str>,
        if_range: Option<&str>,
        inm: Option<&str>,
    ) -> Answer {
        let url = url();
        let request = DownloadRequest {
            method,
            path: url.path(),
            query: url.query(),
            range,
            if_range,
            if_none_match: inm,
        };
        match check(&request, &[key()], NOW) {
            Ok(verified) => plan(&request, &verified, Some(&manifest()), NOW),
            Err(answer) => answer,
        }
    }

    #[test]
    fn a_whole_file_answer_carries_every_header() {
        let a = answer("GET", None, None, None);
        assert_eq!(a.status, 200);
        assert_eq!(a.body, AnswerBody::File(0..1000));
        let hex = ContentDigest::of(b"file").to_hex();
        assert_eq!(a.header("ETag"), Some(format!("\"{hex}\"").as_str()));
        assert_eq!(a.header("Content-Length"), Some("1000"));
        assert_eq!(a.header("Content-Type"), Some("application/pdf"));
        assert_eq!(a.header("Accept-Ranges"), Some("bytes"));
        // The file expires before the URL: the cache lifetime follows the file.
        assert_eq!(a.header("Cache-Control"), Some("private, max-age=300"));
        assert_eq!(
            a.header("Last-Modified"),
            Some("Fri, 15 Jan 2027 05:13:20 GMT")
        );
        assert_eq!(
            a.header("Content-Disposition"),
            Some(
                "attachment; filename=\"report _final_.pdf\"; filename*=UTF-8''report%20%22final%22.pdf"
            )
        );
        let head = answer("HEAD", None, None, None);
        assert_eq!(head.status, 200);
        assert_eq!(head.body, AnswerBody::Empty);
        assert_eq!(head.header("Content-Length"), None);
        assert_eq!(head.header("ETag"), a.header("ETag"));
    }

    #[test]
    fn ranges_and_conditions() {
        let tag = headers::etag(&ContentDigest::of(b"file").to_hex());
        let a = answer("GET", Some("bytes=100-199"), None, None);
        assert_eq!(
            (a.status, a.body.clone()),
            (206, AnswerBody::File(100..200))
        );
        assert_eq!(a.header("Content-Range"), Some("bytes 100-199/1000"));
        assert_eq!(a.header("Content-Length"), Some("100"));
        let a = answer("GET", Some("bytes=-10"), Some(&tag), None);
        assert_eq!((a.status, a.body), (206, AnswerBody::File(990..1000)));
        let a = answer("GET", Some("bytes=-10"), Some("\"other\""), None);
        assert_eq!((a.status, a.body), (200, AnswerBody::File(0..1000)));
        let a = answer("GET", Some("bytes=0-1,4-5"), None, None);
        assert_eq!((a.status, a.body), (200, AnswerBody::File(0..1000)));
        let a = answer("GET", Some("bytes=1000-"), None, None);
        assert_eq!(a.status, 416);
        assert_eq!(a.header("Content-Range"), Some("bytes */1000"));
        let a = answer("GET", Some("bytes=5-"), None, Some(&tag));
        assert_eq!((a.status, a.body), (304, AnswerBody::Empty));
        let a = answer("HEAD", Some("bytes=5-"), None, None);
        assert_eq!((a.status, a.body), (206, AnswerBody::Empty));
    }

    #[test]
    fn refusals_say_why() {
        let a = answer("POST", None, None, None);
        assert_eq!((a.status, a.header("Allow")), (405, Some(ALLOW)));
        let url = url();
        let forged = url.query().unwrap().replace("exp=1", "exp=2");
        let cases = [
            (url.path().to_owned(), Some(forged), NOW, 403, "signature"),
            (
                url.path().to_owned(),
                url.query().map(str::to_owned),
                Timestamp::from_unix_secs(EXP + 1),
                403,
                "expired",
            ),
            (
                "/files/abc".to_owned(),
                url.query().map(str::to_owned),
                NOW,
                404,
                "not <prefix>/files",
            ),
            (url.path().to_owned(), None, NOW, 403, "no exp"),
        ];
        for (path, query, now, status, why) in cases {
            let request = DownloadRequest {
                method: "GET",
                path: &path,
                query: query.as_deref(),
                ..DownloadRequest::default()
            };
            let answer = check(&request, &[key()], now).expect_err("refused");
            assert_eq!(answer.status, status, "{why}");
            let AnswerBody::Full(text) = &answer.body else {
                panic!("a reason")
            };
            assert!(text.contains(why), "{text}");
        }
        let request = DownloadRequest {
            method: "GET",
            path: url.path(),
            query: url.query(),
            ..DownloadRequest::default()
        };
        let verified = check(&request, &[key()], NOW).unwrap();
        assert_eq!(plan(&request, &verified, None, NOW).status, 404);
        let gone = Timestamp::from_unix_secs(manifest().expires);
        assert_eq!(
            plan(&request, &verified, Some(&manifest()), gone).status,
            410
        );
    }
}

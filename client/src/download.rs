//! The HTTP fallback: `GET` a file's signed URL into a local file, resuming with `Range` from what
//! the local file already holds, and checking the bytes against the `ETag` (the SHA-256 hex the
//! receiver AS sends).

use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::ProgressBar;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, ETAG, RANGE};

use crate::Error;
use crate::file::OutputFile;
use crate::progress;

/// What a download did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Downloaded {
    /// Where the file is.
    pub path: PathBuf,
    /// Its size.
    pub size: u64,
    /// How many bytes were on disk already and not fetched again.
    pub resumed_from: u64,
    /// The SHA-256 of the whole file.
    pub sha256: [u8; 32],
}

/// How the server answered a request for the bytes from `from` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plan {
    /// `206`: the body starts at `from`.
    Append,
    /// `200`: the whole file; start again.
    Restart,
    /// `416` and the file is `total` bytes long: nothing is missing if `from == total`.
    Unsatisfiable { total: Option<u64> },
}

fn plan(status: StatusCode, content_range: Option<&str>, from: u64) -> Option<Plan> {
    match status {
        StatusCode::PARTIAL_CONTENT => {
            // `bytes <start>-<end>/<total>`: only a range starting where we stand can be appended.
            let start = content_range
                .and_then(|v| v.strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.trim().parse::<u64>().ok());
            (start == Some(from)).then_some(Plan::Append)
        }
        StatusCode::OK => Some(Plan::Restart),
        StatusCode::RANGE_NOT_SATISFIABLE => {
            let total = content_range
                .and_then(|v| v.strip_prefix("bytes */"))
                .and_then(|v| v.trim().parse::<u64>().ok());
            Some(Plan::Unsatisfiable { total })
        }
        _ => None,
    }
}

/// A SHA-256 hex digest in an `ETag` (`"<hex>"` or `W/"<hex>"`), if it is one.
fn etag_digest(etag: &str) -> Option<[u8; 32]> {
    let hex_text = etag.trim().trim_start_matches("W/").trim_matches('"');
    let bytes = hex::decode(hex_text).ok()?;
    <[u8; 32]>::try_from(bytes.as_slice()).ok()
}

/// Fetches `url` into `path`. If `path` holds bytes already, asks only for the rest (`Range`);
/// a server that sends the whole file instead gets it written from the start. When the `ETag` is a
/// SHA-256, the file must hash to it. `timeout` bounds the wait for each part of the answer.
pub async fn download(
    url: &str,
    path: &Path,
    timeout: Duration,
    show_progress: bool,
) -> Result<Downloaded, Error> {
    let client = reqwest::Client::builder()
        .connect_timeout(timeout)
        .read_timeout(timeout)
        .build()
        .map_err(Error::HttpClient)?;
    let have = std::fs::metadata(path).map_or(0, |m| m.len());
    let mut request = client.get(url);
    if have > 0 {
        request = request.header(RANGE, format!("bytes={have}-"));
    }
    let mut response = request.send().await.map_err(Error::HttpClient)?;
    let status = response.status();
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_range = header(CONTENT_RANGE);
    let expected = header(ETAG).as_deref().and_then(etag_digest);
    let Some(plan) = plan(status, content_range.as_deref(), have) else {
        let body = response.text().await.unwrap_or_default();
        return Err(Error::Http {
            status: status.as_u16(),
            body: body.trim().to_owned(),
        });
    };
    let (mut output, start) = match plan {
        Plan::Append => OutputFile::resume(path, have)?,
        Plan::Restart => (OutputFile::create(path)?, 0),
        Plan::Unsatisfiable { total } if total == Some(have) => OutputFile::resume(path, have)?,
        Plan::Unsatisfiable { .. } => {
            // What is on disk is longer than the file: it is something else. Start again.
            return Box::pin(download_fresh(url, path, timeout, show_progress)).await;
        }
    };
    let total = response.content_length().map(|len| start + len);
    let bar = progress::bar(show_progress, total, path);
    bar.set_position(start);
    let mut at = start;
    if !matches!(plan, Plan::Unsatisfiable { .. }) {
        while let Some(chunk) = response.chunk().await.map_err(Error::HttpClient)? {
            output.write_at(at, &chunk)?;
            at += chunk.len() as u64;
            bar.set_position(at);
        }
    }
    finish(output, at, start, expected, &bar)
}

fn finish(
    mut output: OutputFile,
    size: u64,
    resumed_from: u64,
    expected: Option<[u8; 32]>,
    bar: &ProgressBar,
) -> Result<Downloaded, Error> {
    let sha256 = output.finish(size)?;
    bar.finish_and_clear();
    if let Some(expected) = expected
        && expected != sha256
    {
        return Err(Error::DigestMismatch {
            expected: hex::encode(expected),
            actual: hex::encode(sha256),
        });
    }
    Ok(Downloaded {
        path: output.path().to_owned(),
        size,
        resumed_from,
        sha256,
    })
}

async fn download_fresh(
    url: &str,
    path: &Path,
    timeout: Duration,
    show_progress: bool,
) -> Result<Downloaded, Error> {
    std::fs::remove_file(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    download(url, path, timeout, show_progress).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_as_the_range_asked_for() {
        let cases = [
            (
                StatusCode::PARTIAL_CONTENT,
                Some("bytes 100-199/200"),
                100,
                Some(Plan::Append),
            ),
            // A range that starts elsewhere cannot be appended.
            (
                StatusCode::PARTIAL_CONTENT,
                Some("bytes 0-199/200"),
                100,
                None,
            ),
            (StatusCode::PARTIAL_CONTENT, None, 100, None),
            (StatusCode::OK, None, 100, Some(Plan::Restart)),
            (
                StatusCode::RANGE_NOT_SATISFIABLE,
                Some("bytes */200"),
                200,
                Some(Plan::Unsatisfiable { total: Some(200) }),
            ),
            (StatusCode::NOT_FOUND, None, 0, None),
            (StatusCode::FORBIDDEN, None, 0, None),
        ];
        for (status, range, from, expected) in cases {
            assert_eq!(plan(status, range, from), expected, "{status} {range:?}");
        }
    }

    #[test]
    fn etags_name_a_digest_only_when_they_hold_one() {
        let hex_digest = "ab".repeat(32);
        assert_eq!(etag_digest(&format!("\"{hex_digest}\"")), Some([0xab; 32]));
        assert_eq!(
            etag_digest(&format!("W/\"{hex_digest}\"")),
            Some([0xab; 32])
        );
        assert_eq!(etag_digest("\"v1\""), None);
        assert_eq!(etag_digest("\"abcd\""), None);
    }
}

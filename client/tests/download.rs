//! `download` against a tiny HTTP server on 127.0.0.1 that answers like the receiver AS's
//! `/files/...` route: `Range`, `206`/`416`, the SHA-256 as `ETag`, reasons in 4xx bodies.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcs_client::{Error, download};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves `body` at `/files/ok` and a 403 with a reason elsewhere; records each `Range` asked for.
async fn serve(body: Vec<u8>, etag: String) -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let seen = ranges.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).await.unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let path = head.split(' ').nth(1).unwrap_or("").to_owned();
            let range = head
                .lines()
                .find_map(|l| l.strip_prefix("range: ").or(l.strip_prefix("Range: ")))
                .map(str::to_owned);
            seen.lock().unwrap().push(range.clone());
            let total = body.len();
            let (status, extra, part): (&str, String, &[u8]) = if !path.starts_with("/files/ok") {
                (
                    "403 Forbidden",
                    String::new(),
                    b"the signature does not match",
                )
            } else if let Some(from) = range
                .as_deref()
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|r| r.parse::<usize>().ok())
            {
                if from >= total {
                    (
                        "416 Range Not Satisfiable",
                        format!("Content-Range: bytes */{total}\r\n"),
                        b"",
                    )
                } else {
                    (
                        "206 Partial Content",
                        format!("Content-Range: bytes {from}-{}/{total}\r\n", total - 1),
                        &body[from..],
                    )
                }
            } else {
                ("200 OK", String::new(), &body[..])
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nETag: {etag}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
                part.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.write_all(part).await;
            let _ = stream.shutdown().await;
        }
    });
    (format!("http://{addr}"), ranges)
}

fn temp_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rcs-download-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("file.bin")
}

fn body() -> Vec<u8> {
    (0..500_000u32).map(|i| (i % 253) as u8).collect()
}

fn etag(body: &[u8]) -> String {
    format!("\"{}\"", hex::encode(Sha256::digest(body)))
}

const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_partial_file_is_completed_with_a_range_request() {
    let body = body();
    let (base, ranges) = serve(body.clone(), etag(&body)).await;
    let path = temp_file("resume");
    std::fs::write(&path, &body[..123_456]).unwrap();
    let done = download(
        &format!("{base}/files/ok?exp=1&sig=00"),
        &path,
        TIMEOUT,
        false,
    )
    .await
    .unwrap();
    assert_eq!(done.resumed_from, 123_456);
    assert_eq!(done.size, body.len() as u64);
    assert_eq!(std::fs::read(&path).unwrap(), body);
    assert_eq!(done.sha256, <[u8; 32]>::from(Sha256::digest(&body)));
    assert_eq!(
        ranges.lock().unwrap().as_slice(),
        [Some("bytes=123456-".to_owned())]
    );
    // Again: nothing is missing (416 with the same total) and nothing is fetched.
    let again = download(&format!("{base}/files/ok"), &path, TIMEOUT, false)
        .await
        .unwrap();
    assert_eq!(
        (again.resumed_from, again.size),
        (body.len() as u64, body.len() as u64)
    );
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn a_fresh_download_asks_for_everything() {
    let body = body();
    let (base, ranges) = serve(body.clone(), etag(&body)).await;
    let path = temp_file("fresh");
    let done = download(&format!("{base}/files/ok"), &path, TIMEOUT, false)
        .await
        .unwrap();
    assert_eq!(done.resumed_from, 0);
    assert_eq!(std::fs::read(&path).unwrap(), body);
    assert_eq!(ranges.lock().unwrap().as_slice(), [None]);
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn a_refusal_reports_the_status_and_the_servers_reason() {
    let body = body();
    let (base, _) = serve(body.clone(), etag(&body)).await;
    let path = temp_file("refused");
    match download(&format!("{base}/files/forged"), &path, TIMEOUT, false).await {
        Err(Error::Http { status: 403, body }) => {
            assert_eq!(body, "the signature does not match");
        }
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn bytes_that_do_not_hash_to_the_etag_are_an_error() {
    let body = body();
    let (base, _) = serve(body.clone(), etag(b"something else")).await;
    let path = temp_file("mismatch");
    match download(&format!("{base}/files/ok"), &path, TIMEOUT, false).await {
        Err(Error::DigestMismatch { actual, .. }) => {
            assert_eq!(actual, hex::encode(Sha256::digest(&body)));
        }
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

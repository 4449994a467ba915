//! The FT-HTTP upload (GSMA RCC.07) to the sender AS's content server, `/sender/upload`: the file
//! goes in pieces of a size the caller picks, the first as an RCC.07 `multipart/form-data` `POST`
//! (`tid`, then `File` with its `Content-Range`), the rest as `PUT`s of the raw bytes with
//! `Content-Range` (what public RCS clients do), each signed in with HTTP Digest (RFC 7616). The
//! file is read one piece at a time, so no more than one piece is held.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::Path;

use reqwest::header::{AUTHORIZATION, CONTENT_RANGE, CONTENT_TYPE};
use reqwest::{Method, StatusCode};

use crate::account::strongest_challenge;
use crate::{DigestSigner, Error};
use rcs_core::digest::Challenge;

/// The multipart boundary of the first piece.
const BOUNDARY: &str = "rcs-ft-upload-boundary";

/// What the content server answered for the last piece: the RCC.07 file-info document (its
/// `data url` is the signed download URL).
#[derive(Clone, Debug)]
pub struct Uploaded {
    /// The file-info XML.
    pub file_info: String,
    /// How many requests carried the file.
    pub requests: u32,
}

/// Uploads `path` to `<base>/sender/upload` as the transfer `tid`, in pieces of `piece` bytes, as
/// `signer`'s user.
pub async fn upload_http(
    http: &reqwest::Client,
    base: &str,
    tid: &str,
    path: &Path,
    piece: u64,
    signer: &DigestSigner<'_>,
) -> Result<Uploaded, Error> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let upload = format!("{}/sender/upload", base.trim_end_matches('/'));
    let resume = format!("{upload}?tid={tid}");
    let name = path
        .file_name()
        .map_or("file".into(), |name| name.to_string_lossy());
    let piece = piece.max(1);
    let mut start = 0;
    let mut requests = 0;
    let mut nc = 0;
    loop {
        let end = (start + piece).min(size);
        let mut bytes = vec![0; usize::try_from(end - start).unwrap_or(usize::MAX)];
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        file.read_exact(&mut bytes).map_err(io)?;
        let range = match size {
            0 => "bytes */0".to_owned(),
            _ => format!("bytes {start}-{}/{size}", end - 1),
        };
        let (method, url, content_type, body) = if start == 0 {
            let mut body = format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"tid\"\r\n\r\n{tid}\r\n\
                 --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"File\"; filename=\"{name}\"\r\n\
                 Content-Type: application/octet-stream\r\nContent-Range: {range}\r\n\r\n"
            )
            .into_bytes();
            body.extend_from_slice(&bytes);
            body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
            let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
            (Method::POST, upload.as_str(), content_type, body)
        } else {
            let content_type = "application/octet-stream".to_owned();
            (Method::PUT, resume.as_str(), content_type, bytes)
        };
        // A fresh challenge for each piece, from a request without a body, so that no piece is
        // sent twice.
        let challenge = challenge(http, &resume).await?;
        nc += 1;
        let cnonce = format!("{}{nc}", signer.cnonce);
        let credentials = signer.answer(&challenge, &method, url, &cnonce)?;
        let mut request = http
            .request(method, url)
            .header(AUTHORIZATION, credentials)
            .header(CONTENT_TYPE, content_type)
            .body(body);
        if start > 0 {
            request = request.header(CONTENT_RANGE, range);
        }
        let response = request.send().await.map_err(Error::HttpClient)?;
        requests += 1;
        let status = response.status();
        let text = response.text().await.map_err(Error::HttpClient)?;
        match status {
            StatusCode::OK if end == size => {
                return Ok(Uploaded {
                    file_info: text,
                    requests,
                });
            }
            // A piece short of the end is taken with the resume info.
            StatusCode::ACCEPTED | StatusCode::OK if end < size => start = end,
            _ => {
                return Err(Error::Http {
                    status: status.as_u16(),
                    body: text.trim().to_owned(),
                });
            }
        }
    }
}

/// The strongest digest challenge the content server answers `url` with.
async fn challenge(http: &reqwest::Client, url: &str) -> Result<Challenge, Error> {
    let response = http
        .get(format!("{url}&get_upload_info"))
        .send()
        .await
        .map_err(Error::HttpClient)?;
    strongest_challenge(&response).ok_or(Error::Http {
        status: response.status().as_u16(),
        body: "the content server sent no digest challenge".to_owned(),
    })
}

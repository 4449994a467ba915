//! # rcs-http-files: the HTTP file paths of the edge, for Spin components
//!
//! Two handlers the Spin components call from their `#[http_service]`; every decision is made by
//! [`rcs_core::http_files`], and this crate only moves bytes between the request, Spin's default
//! key-value store and a streaming response:
//! - [`download`] (receiver AS, `GET`/`HEAD /files/<sha256-hex>?exp=<unix>&sig=<hex>`): the signed
//!   URL checked, the manifest read, then the file (or the asked range) streamed chunk by chunk:
//!   one chunk is read from the store when the previous one has been taken by the runtime, so the
//!   component never holds more than one chunk of a file;
//! - [`upload`] (sender AS, `/sender/upload`, for the user the edge signed the request in as): the
//!   RCC.07 FT-HTTP upload (`POST` multipart with
//!   `tid` and `File`, `PUT` of the rest with `Content-Range`) and its resume info (`GET
//!   ?tid=<tid>&get_upload_info`); the body is read frame by frame into the store, the writes of
//!   each frame in one `wasi:keyvalue` batch.
//!
//! Both return an [`http::Response`] with a [`FileBody`], which a `#[http_service]` function
//! returns as it is (it implements `spin_sdk::http::IntoResponse` through `http::Response`).

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt;
use rcs_core::http_files::download::{self, DownloadRequest};
use rcs_core::http_files::upload::{self, Action, UploadHead};
use rcs_core::http_files::{Answer, AnswerBody};
use rcs_core::server_config::ServerConfig;
use rcs_core::store::{Manifest, Record, StoreOp};
use rcs_core::time::Timestamp;
use spin_sdk::experimental::wasi::keyvalue as wasi_kv;
use spin_sdk::key_value::Store;

/// A response body failed after the head was sent: the store failed, or a chunk was missing.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BodyError(String);

type ChunkRead = Pin<Box<dyn Future<Output = Result<Option<Vec<u8>>, spin_sdk::key_value::Error>>>>;

/// The body of the file paths' responses: a small text held in full, or a file's bytes read from
/// the store one chunk at a time as the runtime asks for them.
pub struct FileBody(Inner);

enum Inner {
    Full(Option<Bytes>),
    File {
        store: Rc<Store>,
        manifest: Manifest,
        /// The next byte to send and the end of the range.
        at: u64,
        end: u64,
        reading: Option<(ChunkRead, std::ops::Range<usize>, u64)>,
    },
}

impl FileBody {
    fn full(text: String) -> Self {
        Self(Inner::Full((!text.is_empty()).then(|| Bytes::from(text))))
    }
}

impl http_body::Body for FileBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match &mut self.get_mut().0 {
            Inner::Full(text) => Poll::Ready(text.take().map(|t| Ok(Frame::data(t)))),
            Inner::File {
                store,
                manifest,
                at,
                end,
                reading,
            } => {
                if reading.is_none() {
                    let Some(read) = manifest.chunk_reads(*at..*end).next() else {
                        return Poll::Ready(None);
                    };
                    let store = Rc::clone(store);
                    let key = read.key.clone();
                    let len = (read.within.end - read.within.start) as u64;
                    *reading = Some((
                        Box::pin(async move { store.get(key).await }),
                        read.within,
                        len,
                    ));
                }
                let Some((future, within, len)) = reading else {
                    return Poll::Ready(None);
                };
                let value = match future.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(value) => value,
                };
                let (within, len) = (within.clone(), *len);
                *reading = None;
                let bytes = match value {
                    Ok(Some(value)) if value.len() >= within.end => {
                        Bytes::from(value).slice(within)
                    }
                    Ok(_) => {
                        let error = format!("chunk of {} at byte {at} is missing", manifest.digest);
                        *end = *at;
                        return Poll::Ready(Some(Err(BodyError(error))));
                    }
                    Err(error) => {
                        *end = *at;
                        return Poll::Ready(Some(Err(BodyError(format!("store: {error}")))));
                    }
                };
                *at += len;
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::Full(text) => text.is_none(),
            Inner::File { at, end, .. } => at >= end,
        }
    }
}

/// `GET`/`HEAD /files/<sha256-hex>?exp=<unix>&sig=<hex>`: the signed download from the default
/// key-value store, with `Range`, `If-Range` and `If-None-Match`.
pub async fn download(
    req: spin_sdk::http::Request,
    config: &ServerConfig,
    now: Timestamp,
) -> http::Response<FileBody> {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let request = DownloadRequest {
        method: req.method().as_str(),
        path: req.uri().path(),
        query: req.uri().query(),
        range: header(http::header::RANGE),
        if_range: header(http::header::IF_RANGE),
        if_none_match: header(http::header::IF_NONE_MATCH),
    };
    let verified = match download::check(&request, &config.signing_keys, now) {
        Ok(verified) => verified,
        Err(answer) => return respond(answer, None),
    };
    let store = match Store::open_default().await {
        Ok(store) => store,
        Err(error) => return respond(Answer::reason(503, format!("store: {error}")), None),
    };
    let key = verified.storage_key();
    let manifest = match store.get(&key).await {
        Ok(None) => None,
        Ok(Some(value)) => match Manifest::decode(&key, &value) {
            Ok(manifest) => Some(manifest),
            Err(error) => {
                eprintln!("download: {error}");
                return respond(Answer::reason(error.status(), error), None);
            }
        },
        Err(error) => return respond(Answer::reason(503, format!("store: {error}")), None),
    };
    let answer = download::plan(&request, &verified, manifest.as_ref(), now);
    let file = manifest.map(|m| (Rc::new(store), m));
    respond(answer, file)
}

/// `/sender/upload` for `owner` (the user the request signed in as): `POST` an RCC.07 multipart
/// upload, `PUT` the rest of one with `Content-Range`, `GET ?tid=<tid>&get_upload_info` for what
/// the server holds of the owner's upload.
pub async fn upload(
    req: spin_sdk::http::Request,
    owner: &str,
    config: &ServerConfig,
    now: Timestamp,
) -> http::Response<FileBody> {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let head = UploadHead {
        method: req.method().as_str(),
        query: req.uri().query(),
        content_type: header(http::header::CONTENT_TYPE),
        content_length: header(http::header::CONTENT_LENGTH).and_then(|v| v.trim().parse().ok()),
        content_range: header(http::header::CONTENT_RANGE),
    };
    let route = match upload::route(&head, owner, config, now) {
        upload::Route::Answer(answer) => return respond(answer, None),
        route => route,
    };
    let store = match Store::open_default().await {
        Ok(store) => store,
        Err(error) => return respond(Answer::reason(503, format!("store: {error}")), None),
    };
    let mut request = match route {
        upload::Route::Answer(answer) => return respond(answer, None),
        upload::Route::ResumeInfo { tid, key } => {
            return match store.get(&key).await {
                Ok(value) => respond(
                    upload::resume_info_answer(config, &tid, &key, value.as_deref()),
                    None,
                ),
                Err(error) => respond(Answer::reason(503, format!("store: {error}")), None),
            };
        }
        upload::Route::Upload(request) => request,
    };
    let mut body = req.into_body();
    let mut writes = Writes::default();
    loop {
        while let Some(action) = request.poll() {
            let result = match action {
                Action::Answer(answer) => {
                    if let Err(error) = writes.flush() {
                        return respond(Answer::reason(503, format!("store: {error}")), None);
                    }
                    return respond(answer, None);
                }
                Action::Store(StoreOp::Get { key }) => match writes.flush() {
                    Err(error) => Err(error),
                    Ok(()) => match store.get(&key).await {
                        Ok(value) => {
                            request.on_value(&key, value.map(Bytes::from));
                            Ok(())
                        }
                        Err(error) => Err(error.to_string()),
                    },
                },
                Action::Store(StoreOp::Set { key, value }) => {
                    writes.sets.push((key, value.into()));
                    Ok(())
                }
                Action::Store(StoreOp::Swap { key, .. }) => Err(format!(
                    "the upload asked to compare-and-swap {key}, which it does not read"
                )),
                Action::Store(StoreOp::Delete { key }) => match writes.flush() {
                    Err(error) => Err(error),
                    Ok(()) => store.delete(&key).await.map_err(|e| e.to_string()),
                },
            };
            if let Err(error) = result {
                // What was applied stays consistent: a chunk is written before the state that
                // claims it, so the upload can be resumed.
                return respond(Answer::reason(503, format!("store: {error}")), None);
            }
        }
        // The writes of what the body has brought so far go as one batch before more is read.
        if let Err(error) = writes.flush() {
            return respond(Answer::reason(503, format!("store: {error}")), None);
        }
        if !request.wants_body() {
            return respond(
                Answer::reason(500, "the upload ended without an answer"),
                None,
            );
        }
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    request.push_body(data);
                }
            }
            Some(Err(error)) => request.body_failed(&error.to_string()),
            None => request.end_body(),
        }
    }
}

/// The sets an upload has asked for since the last read, written together as one `set-many` of
/// `wasi:keyvalue` (all or none, in order: a chunk still lands before the state that claims it).
#[derive(Default)]
struct Writes {
    bucket: Option<wasi_kv::store::Bucket>,
    sets: Vec<(String, Vec<u8>)>,
}

impl Writes {
    fn flush(&mut self) -> Result<(), String> {
        if self.sets.is_empty() {
            return Ok(());
        }
        let bucket = match self.bucket.take() {
            Some(bucket) => bucket,
            None => wasi_kv::store::open("default").map_err(|e| format!("{e:?}"))?,
        };
        let result = wasi_kv::batch::set_many(&bucket, &self.sets).map_err(|e| format!("{e:?}"));
        self.bucket = Some(bucket);
        self.sets.clear();
        result
    }
}

/// The HTTP response for an answer; `file` is the store and manifest a file body is read from.
fn respond(answer: Answer, file: Option<(Rc<Store>, Manifest)>) -> http::Response<FileBody> {
    let body = match (answer.body, file) {
        (AnswerBody::File(range), Some((store, manifest))) => FileBody(Inner::File {
            store,
            manifest,
            at: range.start,
            end: range.end,
            reading: None,
        }),
        (AnswerBody::Full(text), _) => FileBody::full(text),
        _ => FileBody::full(String::new()),
    };
    let mut response = http::Response::new(body);
    *response.status_mut() = http::StatusCode::from_u16(answer.status)
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in answer.headers {
        // Values come from the core, which never writes CR or LF; one that still does not fit a
        // header is left out rather than failing the answer.
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

// The components return these responses from `#[http_service]` as they are.
const _: fn() = || {
    fn returnable<T: spin_sdk::http::IntoResponse>() {}
    returnable::<http::Response<FileBody>>();
};

//! The RCC.07 FT-HTTP upload, as a state machine over the request body and the store.
//!
//! - `POST /sender/upload` with `multipart/form-data`: a `tid` field (the client's transfer id), an
//!   optional `Thumbnail` part (read past, not stored) and a `File` part. The file goes into the
//!   chunked store through [`UploadWriter`], as the upload `ft-<owner>:<tid>` ([`upload_id`]), so
//!   a retry by the same user with the same `tid` continues it. Every request is the request of
//!   the user it authenticated as (HTTP Digest, checked before [`route`]). The `File` part may carry `Content-Range: bytes a-b/total`
//!   (the unit is optional, as some clients omit it) to send the rest of an interrupted upload.
//! - `PUT /sender/upload?tid=<tid>` with `Content-Range` and the raw bytes: the same, for clients
//!   that resume with a plain PUT to the `data url` of the resume info.
//! - `GET /sender/upload?tid=<tid>&get_upload_info`: the `file-resume-info` document
//!   ([`ResumeInfo`]) with the bytes received and the URL to send the rest to; `404` if the server
//!   holds nothing for the `tid`, after which a client starts over.
//!
//! The file's size is the `File` part's `Content-Range` total or `Content-Length` when sent; without
//! either (a browser's `FormData`), it is bounded by the request's `Content-Length` less what comes
//! before the data and the closing boundary, and fixed when the part ends. A size over
//! `max_file_size` is refused with `413` before anything is stored; a body that runs past its
//! declared size is cut off there and the upload discarded. On completion the digest has been
//! computed over the stored bytes and the manifest written (only then is the file visible), and the
//! answer is `200` with the FT-HTTP file-info document: the signed `data url`, `until` and the digest.
//! A well-formed request that leaves the upload incomplete (a `Content-Range` piece short of the end)
//! is answered `202` with the resume info.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use quick_xml::events::Event as XmlEvent;
use quick_xml::{Reader, XmlVersion};

use super::multipart::{Event, Limits, MultipartParser, PartHeaders};
use super::{Answer, AnswerBody};
use crate::first_value::FirstValue;
use crate::ft_http::{self, FileInfo, FileInfoDocument};
use crate::server_config::ServerConfig;
use crate::store::{
    FileDescription, Manifest, Record, StoreOp, UploadEvent, UploadState, UploadWriter,
    VALUE_LIMIT, keys,
};
use crate::time::Timestamp;

/// The multipart field that carries the transfer id.
pub const TID_FIELD: &str = "tid";
/// The multipart field that carries the file.
pub const FILE_FIELD: &str = "File";
/// The longest `tid` accepted (a UUID has 36 characters).
pub const MAX_TID_LEN: usize = 64;
/// The path of the upload, under the public base.
pub const UPLOAD_PATH: &str = "sender/upload";

/// The store id of `owner`'s upload of transfer `tid`: its state is `up/ft-<owner>:<tid>`. Neither
/// a user name nor a `tid` holds a `:`, so two users' uploads with the same `tid` never meet.
pub fn upload_id(owner: &str, tid: &str) -> String {
    format!("ft-{owner}:{tid}")
}

/// Whether `tid` is usable: 1 to [`MAX_TID_LEN`] characters of `A-Z a-z 0-9 - . _ ~`, so that it
/// needs no encoding in a URL and cannot reach outside its store key.
pub fn valid_tid(tid: &str) -> bool {
    (1..=MAX_TID_LEN).contains(&tid.len()) && tid.bytes().all(crate::lex::is_uri_unreserved)
}

/// The URL a client sends an upload, or its rest, to: `<public base>sender/upload?tid=<tid>`.
pub fn upload_url(config: &ServerConfig, tid: &str) -> String {
    let mut base = config.public_base.clone();
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    let mut url = base.join(UPLOAD_PATH).unwrap_or(base);
    url.set_query(Some(&format!("tid={tid}")));
    url.into()
}

/// The RCC.07 `file-resume-info` document: which bytes of an upload the server holds, and where to
/// send the rest.
///
/// ```xml
/// <?xml version="1.0" encoding="UTF-8"?>
/// <file-resume-info xmlns="urn:gsma:params:xml:ns:rcs:rcs:fthttp">
/// <file-range start="0" end="1023"/>
/// <data url="https://.../sender/upload?tid=..."/>
/// </file-resume-info>
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumeInfo {
    /// The first byte held (0).
    pub start: u64,
    /// The last byte held, inclusive.
    pub end: u64,
    /// Where to send the rest.
    pub url: String,
}

/// Why a `file-resume-info` document did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeInfoError {
    /// Not well-formed XML, or larger than [`ft_http::MAX_DOCUMENT_BYTES`].
    #[error("not a well-formed document: {0}")]
    Xml(String),
    /// The root is not `file-resume-info`, or `file-range` or `data` is missing or malformed.
    #[error("missing or malformed {0}")]
    Missing(&'static str),
}

impl ResumeInfo {
    /// The document, with every attribute value escaped.
    pub fn to_xml(&self) -> String {
        let mut url = String::with_capacity(self.url.len());
        for c in self.url.chars() {
            match c {
                '&' => url.push_str("&amp;"),
                '<' => url.push_str("&lt;"),
                '>' => url.push_str("&gt;"),
                '"' => url.push_str("&quot;"),
                c if c.is_control() => {}
                c => url.push(c),
            }
        }
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<file-resume-info xmlns=\"{}\">\n<file-range start=\"{}\" end=\"{}\"/>\n<data url=\"{url}\"/>\n</file-resume-info>\n",
            ft_http::NAMESPACE,
            self.start,
            self.end
        )
    }

    /// Reads a document (namespaces are not checked, as clients in the field do not).
    pub fn parse(xml: &[u8]) -> Result<Self, ResumeInfoError> {
        if xml.len() > ft_http::MAX_DOCUMENT_BYTES {
            return Err(ResumeInfoError::Xml("too large".into()));
        }
        let text = std::str::from_utf8(xml).map_err(|e| ResumeInfoError::Xml(e.to_string()))?;
        let mut reader = Reader::from_str(text);
        let mut root = false;
        let mut range = None;
        let mut url = None;
        loop {
            match reader.read_event() {
                Ok(XmlEvent::Start(e) | XmlEvent::Empty(e)) => {
                    let name = e.local_name();
                    let attr = |key: &str| -> Option<String> {
                        e.attributes()
                            .flatten()
                            .find(|a| a.key.local_name().as_ref() == key)
                            .and_then(|a| {
                                a.normalized_value(XmlVersion::Implicit1_0)
                                    .ok()
                                    .map(|v| v.into_owned())
                            })
                    };
                    match name.as_ref() {
                        "file-resume-info" => root = true,
                        "file-range" if root => {
                            let number = |key| attr(key).and_then(|v| v.parse::<u64>().ok());
                            range = Some((
                                number("start")
                                    .ok_or(ResumeInfoError::Missing("file-range start"))?,
                                number("end").ok_or(ResumeInfoError::Missing("file-range end"))?,
                            ));
                        }
                        "data" if root => url = attr("url"),
                        _ if !root => return Err(ResumeInfoError::Missing("file-resume-info")),
                        _ => {}
                    }
                }
                Ok(XmlEvent::Eof) => break,
                Ok(_) => {}
                Err(e) => return Err(ResumeInfoError::Xml(e.to_string())),
            }
        }
        let (start, end) = range.ok_or(ResumeInfoError::Missing("file-range"))?;
        let url = url.ok_or(ResumeInfoError::Missing("data url"))?;
        Ok(Self { start, end, url })
    }
}

/// What the request line and headers of an upload request say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UploadHead<'a> {
    /// The method.
    pub method: &'a str,
    /// The query, without `?`.
    pub query: Option<&'a str>,
    /// `Content-Type`.
    pub content_type: Option<&'a str>,
    /// `Content-Length`, if sent and valid.
    pub content_length: Option<u64>,
    /// `Content-Range` (a `PUT` of the rest of an upload).
    pub content_range: Option<&'a str>,
}

/// The methods the upload path answers.
pub const ALLOW: &str = "GET, POST, PUT";

/// What to do with an upload request.
#[derive(Debug)]
pub enum Route {
    /// Answer at once.
    Answer(Answer),
    /// A resume-info request: read this key and answer with [`resume_info_answer`].
    ResumeInfo {
        /// The transfer id.
        tid: String,
        /// The upload state's key.
        key: String,
    },
    /// An upload: feed the body to this machine.
    Upload(Box<UploadRequest>),
}

/// Decides what an upload request of `owner` (the user it authenticated as) is, from its head.
pub fn route(head: &UploadHead<'_>, owner: &str, config: &ServerConfig, now: Timestamp) -> Route {
    let params: Vec<(&str, &str)> = head
        .query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    let tid = params.iter().find(|(n, _)| *n == "tid").map(|(_, v)| *v);
    let bad_tid = |tid: &str| {
        Route::Answer(Answer::reason(
            400,
            format!("tid {tid:?} is not 1 to {MAX_TID_LEN} characters of A-Z a-z 0-9 - . _ ~"),
        ))
    };
    match head.method {
        "GET" => {
            let (Some(tid), true) = (tid, params.iter().any(|(n, _)| *n == "get_upload_info"))
            else {
                return Route::Answer(Answer::reason(400, "GET needs ?tid=<tid>&get_upload_info"));
            };
            if !valid_tid(tid) {
                return bad_tid(tid);
            }
            Route::ResumeInfo {
                tid: tid.to_owned(),
                key: keys::upload(&upload_id(owner, tid)),
            }
        }
        "POST" => {
            let Some(content_type) = head.content_type else {
                return Route::Answer(Answer::reason(
                    400,
                    "the upload must be multipart/form-data",
                ));
            };
            match MultipartParser::new(content_type, Limits::default()) {
                Ok(parser) => Route::Upload(Box::new(UploadRequest::new(
                    config,
                    owner,
                    now,
                    head.content_length,
                    Source::Multipart(parser),
                ))),
                Err(error) => Route::Answer(Answer::reason(400, error)),
            }
        }
        "PUT" => {
            let Some(tid) = tid else {
                return Route::Answer(Answer::reason(400, "PUT needs ?tid=<tid>"));
            };
            if !valid_tid(tid) {
                return bad_tid(tid);
            }
            let Some(range) = head.content_range.and_then(parse_content_range) else {
                return Route::Answer(Answer::reason(
                    400,
                    "PUT needs Content-Range: bytes <first>-<last>/<total>",
                ));
            };
            let mut request = UploadRequest::new(
                config,
                owner,
                now,
                head.content_length,
                Source::Raw { ended: false },
            );
            request.tid = Some(tid.to_owned());
            let headers = PartHeaders {
                name: FILE_FIELD.into(),
                content_type: head.content_type.map(str::to_owned),
                content_range: head.content_range.map(str::to_owned),
                content_length: Some(range.1 - range.0 + 1),
                ..PartHeaders::default()
            };
            request.start_file(&headers, 0);
            Route::Upload(Box::new(request))
        }
        other => Route::Answer(
            Answer::reason(405, format!("method {other} is not allowed"))
                .with_header("Allow", ALLOW.to_owned()),
        ),
    }
}

/// The answer to a resume-info request, given the value stored under its `key`.
pub fn resume_info_answer(
    config: &ServerConfig,
    tid: &str,
    key: &str,
    value: Option<&[u8]>,
) -> Answer {
    match value.map(|v| UploadState::decode(key, v)) {
        None => Answer::reason(404, format!("no upload in progress for tid {tid}")),
        Some(Err(error)) => Answer::reason(error.status(), error),
        Some(Ok(state)) if state.resume_offset() == 0 => {
            Answer::reason(404, format!("nothing received yet for tid {tid}"))
        }
        Some(Ok(state)) => resume_answer(200, config, tid, &state),
    }
}

fn resume_answer(status: u16, config: &ServerConfig, tid: &str, state: &UploadState) -> Answer {
    let info = ResumeInfo {
        start: 0,
        end: state.resume_offset().saturating_sub(1),
        url: upload_url(config, tid),
    };
    Answer::document(status, ft_http::CONTENT_TYPE, info.to_xml())
}

/// `bytes a-b/total` or `a-b/total`: first byte, last byte, total; `None` unless
/// `a <= b < total`.
pub fn parse_content_range(value: &str) -> Option<(u64, u64, u64)> {
    let value = value.trim();
    let value = match value.split_once(' ') {
        Some((unit, rest)) if unit.eq_ignore_ascii_case("bytes") => rest.trim(),
        Some(_) => return None,
        None => value,
    };
    let (range, total) = value.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let number = |t: &str| crate::lex::Decimal::U64.parse(t.trim()).ok();
    let (first, last, total) = (number(first)?, number(last)?, number(total)?);
    (first <= last && last < total).then_some((first, last, total))
}

/// Where the body comes from.
#[derive(Debug)]
enum Source {
    Multipart(MultipartParser),
    /// A `PUT`: the body is the file's bytes.
    Raw {
        ended: bool,
    },
}

/// The file part being received.
#[derive(Clone, Debug)]
struct Span {
    /// The file offset of the part's first byte.
    offset: u64,
    /// The file's size, or a bound on it when `exact` is false.
    size: u64,
    exact: bool,
    /// How many bytes the part says it has.
    expected: Option<u64>,
    name: Option<String>,
    content_type: String,
}

#[derive(Debug)]
enum Stage {
    /// Fields before the file; `in_tid` while inside the `tid` field.
    Fields {
        in_tid: bool,
    },
    /// Waiting for the upload state.
    Loading(Span),
    /// Receiving the file's bytes.
    Storing {
        writer: Box<UploadWriter>,
        span: Span,
        aligner: Aligner,
        received: u64,
    },
    /// The file part has ended; waiting for the writer's reads.
    Finishing(Box<UploadWriter>),
    Done,
}

/// What the caller does next for an [`UploadRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Apply this store operation; answer a `Get` with [`UploadRequest::on_value`] before anything
    /// else.
    Store(StoreOp),
    /// Send this answer; the request is over (the rest of the body need not be read).
    Answer(Answer),
}

/// One upload request: push the body with [`UploadRequest::push_body`] and
/// [`UploadRequest::end_body`], and after each call apply every [`Action`] from
/// [`UploadRequest::poll`] until it returns `None`.
#[derive(Debug)]
pub struct UploadRequest {
    config: ServerConfig,
    now: Timestamp,
    content_length: Option<u64>,
    source: Source,
    pending_raw: VecDeque<Event>,
    stage: Stage,
    /// The user the upload belongs to.
    owner: String,
    tid: Option<String>,
    tid_text: Vec<u8>,
    ops: VecDeque<StoreOp>,
    reads: usize,
    answer: Option<Answer>,
}

impl UploadRequest {
    fn new(
        config: &ServerConfig,
        owner: &str,
        now: Timestamp,
        content_length: Option<u64>,
        source: Source,
    ) -> Self {
        Self {
            config: config.clone(),
            owner: owner.to_owned(),
            now,
            content_length,
            source,
            pending_raw: VecDeque::new(),
            stage: Stage::Fields { in_tid: false },
            tid: None,
            tid_text: Vec::new(),
            ops: VecDeque::new(),
            reads: 0,
            answer: None,
        }
    }

    /// Feeds body bytes as they arrive.
    pub fn push_body(&mut self, bytes: Bytes) {
        match &mut self.source {
            Source::Multipart(parser) => parser.push(&bytes),
            Source::Raw { .. } => self.pending_raw.push_back(Event::Data(bytes)),
        }
        self.step();
    }

    /// Says the body has ended.
    pub fn end_body(&mut self) {
        match &mut self.source {
            Source::Multipart(parser) => parser.finish(),
            Source::Raw { ended } => {
                if !*ended {
                    *ended = true;
                    self.pending_raw.push_back(Event::PartEnd);
                    self.pending_raw.push_back(Event::End);
                }
            }
        }
        self.step();
    }

    /// Whether the request still wants body bytes (no answer yet).
    pub fn wants_body(&self) -> bool {
        self.answer.is_none() && !matches!(self.stage, Stage::Done)
    }

    /// The next thing to do.
    #[must_use]
    pub fn poll(&mut self) -> Option<Action> {
        if let Some(op) = self.ops.pop_front() {
            return Some(Action::Store(op));
        }
        if self.reads > 0 {
            return None;
        }
        self.answer.take().map(|answer| {
            self.stage = Stage::Done;
            Action::Answer(answer)
        })
    }

    /// Answers a [`StoreOp::Get`].
    pub fn on_value(&mut self, key: &str, value: Option<Bytes>) {
        self.reads = self.reads.saturating_sub(1);
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Loading(span) => self.loaded(span, key, value),
            Stage::Storing {
                mut writer,
                span,
                aligner,
                received,
            } => {
                let _ = writer.on_value(key, value);
                self.stage = Stage::Storing {
                    writer,
                    span,
                    aligner,
                    received,
                };
                self.collect_writer();
            }
            Stage::Finishing(mut writer) => {
                let _ = writer.on_value(key, value);
                self.stage = Stage::Finishing(writer);
                self.collect_writer();
                self.check_finished();
            }
            other => self.stage = other,
        }
        self.step();
    }

    /// Handles parsed events while nothing is awaited.
    fn step(&mut self) {
        while self.answer.is_none() && self.reads == 0 {
            if matches!(self.stage, Stage::Loading(_) | Stage::Done) {
                return;
            }
            let event = match &mut self.source {
                Source::Multipart(parser) => parser.poll(),
                Source::Raw { .. } => Ok(self.pending_raw.pop_front()),
            };
            let event = match event {
                Ok(Some(event)) => event,
                Ok(None) => return,
                Err(error) => {
                    self.refuse(400, format!("malformed multipart body: {error}"));
                    return;
                }
            };
            self.handle(event);
        }
    }

    fn handle(&mut self, event: Event) {
        match (&mut self.stage, event) {
            (Stage::Fields { in_tid }, Event::Part(headers)) => {
                *in_tid = headers.name == TID_FIELD;
                if headers.name == FILE_FIELD {
                    let position = match &self.source {
                        Source::Multipart(parser) => parser.position(),
                        Source::Raw { .. } => 0,
                    };
                    self.start_file(&headers, position);
                }
            }
            (Stage::Fields { in_tid: true }, Event::Data(bytes)) => {
                if self.tid_text.len() + bytes.len() > MAX_TID_LEN {
                    self.refuse(400, format!("tid longer than {MAX_TID_LEN} characters"));
                } else {
                    self.tid_text.extend_from_slice(&bytes);
                }
            }
            (Stage::Fields { in_tid: true }, Event::PartEnd) => {
                self.stage = Stage::Fields { in_tid: false };
                let tid = String::from_utf8_lossy(&self.tid_text).trim().to_owned();
                if valid_tid(&tid) {
                    self.tid = Some(tid);
                } else {
                    self.refuse(
                        400,
                        format!(
                            "tid {tid:?} is not 1 to {MAX_TID_LEN} characters of A-Z a-z 0-9 - . _ ~"
                        ),
                    );
                }
            }
            (Stage::Fields { .. }, Event::End) => self.refuse(400, "the form has no File part"),
            (Stage::Storing { .. }, Event::Data(bytes)) => self.store(bytes),
            (Stage::Storing { .. }, Event::PartEnd) => self.end_file(),
            // Anything after the file (and the thumbnail's bytes) is read past.
            _ => {}
        }
    }

    /// The `File` part begins, `position` bytes into the body: check its size, then load the upload.
    fn start_file(&mut self, headers: &PartHeaders, position: u64) {
        let Some(tid) = self.tid.clone() else {
            self.refuse(400, "the tid field must come before the File part");
            return;
        };
        let max = self.config.layout.max_file_size;
        let range = match headers.content_range.as_deref() {
            Some(value) => match parse_content_range(value) {
                Some(range) => Some(range),
                None => {
                    self.refuse(
                        400,
                        format!("Content-Range {value:?} is not <first>-<last>/<total>"),
                    );
                    return;
                }
            },
            None => None,
        };
        let closing = match &self.source {
            Source::Multipart(parser) => parser.closing_len(),
            Source::Raw { .. } => 0,
        };
        let bound = self
            .content_length
            .map(|length| length.saturating_sub(position).saturating_sub(closing));
        let (offset, size, exact, expected) = match (range, headers.content_length) {
            (Some((first, last, total)), _) => (first, total, true, Some(last - first + 1)),
            (None, Some(length)) => (0, length, true, Some(length)),
            (None, None) => (0, bound.unwrap_or(max), false, None),
        };
        if size > max {
            let what = if exact { "file" } else { "upload" };
            self.refuse(
                413,
                format!("{what} of {size} bytes exceeds the maximum of {max}"),
            );
            return;
        }
        if let (Some(expected), Some(bound)) = (expected, bound)
            && expected > bound
        {
            self.refuse(
                400,
                format!("the File part says {expected} bytes but the body holds at most {bound}"),
            );
            return;
        }
        let span = Span {
            offset,
            size,
            exact,
            expected,
            name: headers.filename.clone(),
            content_type: headers
                .content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".into()),
        };
        self.read(keys::upload(&upload_id(&self.owner, &tid)));
        self.stage = Stage::Loading(span);
    }

    /// The upload's state has been read: resume it or start it.
    fn loaded(&mut self, mut span: Span, key: &str, value: Option<Bytes>) {
        let tid = self.tid.clone().unwrap_or_default();
        let state = match value.map(|v| UploadState::decode(key, &v)) {
            Some(Ok(mut state)) => {
                let held = state.received.end();
                let size = if span.exact {
                    span.size
                } else {
                    span.size.min(state.file.size)
                };
                if size < held {
                    self.refuse(
                        400,
                        format!("the file is {size} bytes but {held} are stored already"),
                    );
                    return;
                }
                if span.offset > state.resume_offset() {
                    self.refuse(
                        400,
                        format!(
                            "the File part starts at byte {} but bytes from {} are missing: ask get_upload_info",
                            span.offset,
                            state.resume_offset()
                        ),
                    );
                    return;
                }
                state.file.size = size;
                span.size = size;
                state
            }
            Some(Err(error)) => {
                self.refuse(error.status(), error);
                return;
            }
            None if span.offset > 0 => {
                self.refuse(
                    404,
                    format!("no upload in progress for tid {tid} to continue"),
                );
                return;
            }
            None => {
                let file = FileDescription {
                    size: span.size,
                    name: span.name.clone(),
                    content_type: span.content_type.clone(),
                    sha256: None,
                };
                // A fresh chunk prefix per upload, so that no upload writes where a published
                // file's chunks are.
                let id = upload_id(&self.owner, &tid);
                let chunks = format!("{id}-{:x}", self.now.unix_millis());
                match UploadState::new(id, chunks, file, &self.config.layout, VALUE_LIMIT, self.now)
                {
                    Ok(state) => state,
                    Err(error) => {
                        self.refuse(error.status(), error);
                        return;
                    }
                }
            }
        };
        let writer = UploadWriter::new(state, self.config.layout, self.now);
        let aligner = Aligner::new(span.offset, u64::from(self.config.layout.chunk_size));
        self.stage = Stage::Storing {
            writer: Box::new(writer),
            span,
            aligner,
            received: 0,
        };
        self.collect_writer();
    }

    fn store(&mut self, bytes: Bytes) {
        let Stage::Storing {
            writer,
            span,
            aligner,
            received,
        } = &mut self.stage
        else {
            return;
        };
        *received += bytes.len() as u64;
        let end = span.offset.saturating_add(*received);
        let max = self.config.layout.max_file_size;
        let over = if end > max {
            Some((
                413,
                format!("the file runs past the maximum of {max} bytes"),
            ))
        } else if end > span.size || span.expected.is_some_and(|e| *received > e) {
            Some((
                400,
                format!(
                    "the File part runs past its declared end at byte {}",
                    span.size
                        .min(span.offset + span.expected.unwrap_or(u64::MAX))
                ),
            ))
        } else {
            None
        };
        if let Some((status, why)) = over {
            // Cut off: what was stored of this upload is discarded.
            self.ops.extend(writer.state().deletion_ops());
            self.refuse(status, format!("{why}; the upload is discarded"));
            return;
        }
        let mut failed = None;
        aligner.push(bytes, &mut |offset, piece| {
            if failed.is_none()
                && let Err(error) = writer.write(offset, piece)
            {
                failed = Some(error);
            }
        });
        if let Some(error) = failed {
            self.refuse(500, error);
            return;
        }
        self.collect_writer();
        // Save progress as chunks complete, so a request that dies leaves a resumable upload; not
        // while a chunk is being read back, as the state must never claim bytes not yet stored.
        if self.reads == 0
            && let Stage::Storing { writer, .. } = &mut self.stage
        {
            writer.finish_request();
            self.collect_writer();
        }
    }

    /// The `File` part has ended: store the rest and fix the size if it was only bounded.
    fn end_file(&mut self) {
        let Stage::Storing {
            mut writer,
            span,
            mut aligner,
            received,
        } = std::mem::replace(&mut self.stage, Stage::Done)
        else {
            return;
        };
        let mut failed = None;
        aligner.flush(&mut |offset, piece| {
            if failed.is_none()
                && let Err(error) = writer.write(offset, piece)
            {
                failed = Some(error);
            }
        });
        if let Some(error) = failed {
            self.refuse(500, error);
            return;
        }
        if let Some(expected) = span.expected
            && received < expected
        {
            self.stage = Stage::Finishing(writer);
            self.collect_writer();
            if self.reads == 0 {
                self.finish_writer();
            }
            self.refuse(
                400,
                format!("the File part has {received} bytes but says {expected}"),
            );
            return;
        }
        let end = span.offset + received;
        if !span.exact && writer.state().file.size != end {
            // Everything received is hashed already (in order), so a writer told the real size
            // completes at once.
            let event = drain_writer(&mut writer, &mut self.ops, &mut self.reads);
            self.on_writer_event(event);
            let mut state = writer.state().clone();
            state.file.size = end;
            writer = Box::new(UploadWriter::new(state, self.config.layout, self.now));
        }
        self.stage = Stage::Finishing(writer);
        self.collect_writer();
        self.check_finished();
    }

    /// Moves the writer's operations out, and acts on its events.
    fn collect_writer(&mut self) {
        let Self {
            stage, ops, reads, ..
        } = self;
        let event = match stage {
            Stage::Storing { writer, .. } | Stage::Finishing(writer) => {
                drain_writer(writer, ops, reads)
            }
            _ => None,
        };
        self.on_writer_event(event);
    }

    fn on_writer_event(&mut self, event: Option<UploadEvent>) {
        match event {
            Some(UploadEvent::Completed { manifest, .. }) => {
                self.answer = Some(file_info_answer(&self.config, &manifest, self.now));
            }
            Some(UploadEvent::Failed(error)) => {
                self.refuse(500, format!("the upload failed and is discarded: {error}"));
            }
            None => {}
        }
    }

    /// The body broke off (the client went away, or the runtime reported an error): what arrived
    /// is kept for a resume, and the request ends with `400`.
    pub fn body_failed(&mut self, reason: &str) {
        let Self {
            stage, ops, reads, ..
        } = self;
        if let Stage::Storing {
            writer, aligner, ..
        } = stage
        {
            let mut failed = false;
            aligner.flush(&mut |offset, piece| failed |= writer.write(offset, piece).is_err());
            let _ = drain_writer(writer, ops, reads);
            if *reads == 0 {
                writer.finish_request();
                let _ = drain_writer(writer, ops, reads);
            }
        }
        self.refuse(400, format!("the request body broke off: {reason}"));
    }

    /// Writes the upload's state if it is still in progress.
    fn finish_writer(&mut self) {
        if let Stage::Finishing(writer) = &mut self.stage {
            writer.finish_request();
            self.collect_writer();
        }
    }

    /// After the file part: once no read is awaited, either the writer completed (answered) or the
    /// upload is incomplete and its state is saved.
    fn check_finished(&mut self) {
        if self.reads > 0 || self.answer.is_some() {
            return;
        }
        self.finish_writer();
        if let Stage::Finishing(writer) = &self.stage {
            let state = writer.state().clone();
            let tid = self.tid.clone().unwrap_or_default();
            self.answer = Some(resume_answer(202, &self.config, &tid, &state));
        }
    }

    fn read(&mut self, key: String) {
        self.reads += 1;
        self.ops.push_back(StoreOp::Get { key });
    }

    fn refuse(&mut self, status: u16, reason: impl std::fmt::Display) {
        if self.answer.is_none() {
            self.answer = Some(Answer::reason(status, reason));
        }
    }
}

/// Moves a writer's operations into `ops`, counting its reads, and returns its event.
fn drain_writer(
    writer: &mut UploadWriter,
    ops: &mut VecDeque<StoreOp>,
    reads: &mut usize,
) -> Option<UploadEvent> {
    while let Some(op) = writer.poll_op() {
        if matches!(op, StoreOp::Get { .. }) {
            *reads += 1;
        }
        ops.push_back(op);
    }
    writer.poll_event()
}

/// The `200` answer to a completed upload: the FT-HTTP file-info with the first value.
pub fn file_info_answer(config: &ServerConfig, manifest: &Manifest, now: Timestamp) -> Answer {
    let Some(first_value) = first_value_for(config, manifest, now) else {
        return Answer::reason(500, "no signing key is configured");
    };
    let info = FileInfo::for_first_value(
        &first_value,
        manifest.size,
        manifest.name.clone(),
        manifest.content_type.clone(),
    );
    Answer {
        status: 200,
        headers: vec![
            ("Content-Type", ft_http::CONTENT_TYPE.to_owned()),
            ("Cache-Control", "no-store".to_owned()),
        ],
        body: AnswerBody::Full(FileInfoDocument::new(info).to_xml()),
    }
}

/// The first value of a stored file as this deployment issues it: signed with the first key, valid
/// for the configured URL lifetime but never beyond the file's own.
pub fn first_value_for(
    config: &ServerConfig,
    manifest: &Manifest,
    now: Timestamp,
) -> Option<FirstValue> {
    let key = config.signing_keys.first()?;
    let expires = manifest
        .expires
        .min(now.unix_secs().saturating_add(config.url_lifetime_secs));
    Some(FirstValue::issue(
        &config.public_base,
        manifest.digest,
        expires,
        key,
    ))
}

/// Gathers part data into pieces that line up with the store's chunks, so that each chunk is written
/// once, whole, without being read back. Holds at most one chunk.
#[derive(Debug)]
struct Aligner {
    /// The file offset of the first held byte (or of the next byte, when nothing is held).
    next: u64,
    held: BytesMut,
    chunk: u64,
}

impl Aligner {
    fn new(offset: u64, chunk: u64) -> Self {
        Self {
            next: offset,
            held: BytesMut::new(),
            chunk: chunk.max(1),
        }
    }

    fn push(&mut self, mut data: Bytes, out: &mut impl FnMut(u64, Bytes)) {
        while !data.is_empty() {
            let at = self.next + self.held.len() as u64;
            let need = ((at / self.chunk + 1) * self.chunk - at) as usize;
            if self.held.is_empty() && data.len() >= need {
                out(self.next, data.split_to(need));
                self.next += need as u64;
                continue;
            }
            let take = need.min(data.len());
            self.held.extend_from_slice(&data.split_to(take));
            if take == need {
                let piece = self.held.split().freeze();
                out(self.next, piece.clone());
                self.next += piece.len() as u64;
            }
        }
    }

    fn flush(&mut self, out: &mut impl FnMut(u64, Bytes)) {
        if !self.held.is_empty() {
            let piece = self.held.split().freeze();
            out(self.next, piece.clone());
            self.next += piece.len() as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::first_value::{ContentDigest, SigningKey, Url};
    use crate::service::Delivery;
    use crate::store::{KeyValue, LayoutConfig, MemoryStore, apply};

    const NOW: Timestamp = Timestamp::from_unix_secs(1_800_000_000);
    const OWNER: &str = "alice";
    const BOUNDARY: &str = "XyZ-b0undary";

    fn config() -> ServerConfig {
        ServerConfig {
            domain: "localhost".into(),
            host: "sender-as.localhost".into(),
            secure: false,
            public_base: Url::parse("http://127.0.0.1:3000/").unwrap(),
            signing_keys: vec![SigningKey::new(vec![3u8; 32]).unwrap()],
            layout: LayoutConfig {
                chunk_size: 1024,
                max_file_size: 64 * 1024,
                ..LayoutConfig::default()
            },
            url_lifetime_secs: 3600,
            msrp_chunk_size: 1024,
            window: 4,
            max_reply_bytes: crate::grip::REPLY_LIMIT,
            max_registration_secs: 3600,
            default_delivery: Delivery::Push,
        }
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + i / 7) as u8).collect()
    }

    fn form(tid: &str, file_headers: &str, file: &[u8]) -> Vec<u8> {
        let mut body = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"tid\"\r\n\r\n{tid}\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"Thumbnail\"; filename=\"t.jpg\"\r\nContent-Type: image/jpeg\r\n\r\nthumb\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"File\"; filename=\"photo.jpg\"\r\nContent-Type: image/jpeg\r\n{file_headers}\r\n"
        )
        .into_bytes();
        body.extend_from_slice(file);
        body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
        body
    }

    fn head<'a>(method: &'a str, query: Option<&'a str>, length: Option<u64>) -> UploadHead<'a> {
        UploadHead {
            method,
            query,
            content_type: Some("multipart/form-data; boundary=XyZ-b0undary"),
            content_length: length,
            content_range: None,
        }
    }

    /// Runs one request with the body cut into `piece`-byte frames, `stop_after` bytes at most.
    fn send(
        store: &mut MemoryStore,
        head: UploadHead<'_>,
        body: &[u8],
        piece: usize,
        stop_after: Option<usize>,
    ) -> Option<Answer> {
        let mut request = match route(&head, OWNER, &config(), NOW) {
            Route::Upload(request) => request,
            Route::Answer(answer) => return Some(answer),
            Route::ResumeInfo { .. } => panic!("not an upload"),
        };
        let limit = stop_after.unwrap_or(body.len());
        let mut sent = 0;
        let mut frames = body[..limit].chunks(piece.max(1));
        loop {
            while let Some(action) = request.poll() {
                match action {
                    Action::Store(StoreOp::Get { key }) => {
                        let value = store.get(&key).unwrap();
                        request.on_value(&key, value);
                    }
                    Action::Store(op) => {
                        apply(store, op).unwrap();
                    }
                    Action::Answer(answer) if stop_after.is_none() => return Some(answer),
                    Action::Answer(answer) => {
                        assert_eq!(answer.status, 400);
                        return None;
                    }
                }
            }
            match frames.next() {
                Some(frame) => {
                    sent += frame.len();
                    request.push_body(Bytes::copy_from_slice(frame));
                }
                // The connection broke.
                None if stop_after.is_some() && sent < body.len() + 1 => {
                    request.body_failed("connection reset");
                    sent = body.len() + 1;
                }
                None if stop_after.is_some() => return None,
                None if sent == body.len() => {
                    request.end_body();
                    sent += 1;
                }
                None => panic!("the request neither answered nor wanted more"),
            }
        }
    }

    fn resume_info(store: &mut MemoryStore, tid: &str) -> Answer {
        let query = format!("tid={tid}&get_upload_info");
        match route(&head("GET", Some(&query), None), OWNER, &config(), NOW) {
            Route::ResumeInfo { tid, key } => {
                let value = store.get(&key).unwrap();
                resume_info_answer(&config(), &tid, &key, value.as_deref())
            }
            other => panic!("{other:?}"),
        }
    }

    fn body_text(answer: &Answer) -> &str {
        match &answer.body {
            AnswerBody::Full(text) => text,
            other => panic!("{other:?}"),
        }
    }

    fn stored_file(store: &mut MemoryStore, digest: ContentDigest) -> Vec<u8> {
        let value = store.get(&digest.storage_key()).unwrap().expect("manifest");
        let manifest = Manifest::decode("m", &value).unwrap();
        let mut out = Vec::new();
        for read in manifest.chunk_reads(0..manifest.size) {
            out.extend_from_slice(&store.get(&read.key).unwrap().unwrap()[read.within]);
        }
        out
    }

    #[test]
    fn a_browser_form_is_stored_and_answered_with_the_signed_file_info() {
        let file = data(5000);
        let body = form("tid-1", "", &file);
        for piece in [1, 7, 1000, body.len()] {
            let mut store = MemoryStore::default();
            let answer = send(
                &mut store,
                head("POST", None, Some(body.len() as u64)),
                &body,
                piece,
                None,
            )
            .unwrap();
            assert_eq!(answer.status, 200, "{}", body_text(&answer));
            assert_eq!(answer.header("Content-Type"), Some(ft_http::CONTENT_TYPE));
            let info = FileInfoDocument::parse(body_text(&answer)).unwrap();
            let digest = ContentDigest::of(&file);
            assert_eq!(info.file.digest, Some(digest));
            assert_eq!(info.file.size, 5000);
            assert_eq!(info.file.name.as_deref(), Some("photo.jpg"));
            let verified = crate::first_value::verify(
                info.file.url.as_str(),
                &config().public_base,
                &config().signing_keys,
                NOW,
            )
            .unwrap();
            assert_eq!(verified.digest, digest);
            assert_eq!(info.file.until, Some(NOW.unix_secs() + 3600));
            assert_eq!(stored_file(&mut store, digest), file);
            assert_eq!(
                store.get(&format!("up/ft-{OWNER}:tid-1")).unwrap(),
                None,
                "the upload state is gone"
            );
        }
    }

    #[test]
    fn uploads_of_two_users_with_one_tid_are_two_uploads() {
        let key_of = |owner: &str| {
            let query = "tid=same&get_upload_info";
            match route(&head("GET", Some(query), None), owner, &config(), NOW) {
                Route::ResumeInfo { key, .. } => key,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(key_of("alice"), "up/ft-alice:same");
        assert_ne!(key_of("alice"), key_of("bob"));
    }

    #[test]
    fn a_body_without_length_and_an_empty_file_work() {
        let file = data(3000);
        let body = form("t2", "", &file);
        let mut store = MemoryStore::default();
        let answer = send(&mut store, head("POST", None, None), &body, 333, None).unwrap();
        assert_eq!(answer.status, 200, "{}", body_text(&answer));
        assert_eq!(stored_file(&mut store, ContentDigest::of(&file)), file);
        let body = form("t3", "", b"");
        let answer = send(
            &mut store,
            head("POST", None, Some(body.len() as u64)),
            &body,
            5,
            None,
        )
        .unwrap();
        assert_eq!(answer.status, 200, "{}", body_text(&answer));
        assert_eq!(
            FileInfoDocument::parse(body_text(&answer))
                .unwrap()
                .file
                .size,
            0
        );
    }

    #[test]
    fn an_interrupted_upload_resumes_from_the_resume_info() {
        let file = data(10_000);
        let mut store = MemoryStore::default();
        assert_eq!(resume_info(&mut store, "tr").status, 404);
        // The client declares the size, as RCC.07 clients do, and the connection breaks.
        let headers = "Content-Range: bytes 0-9999/10000\r\n";
        let body = form("tr", headers, &file);
        assert_eq!(
            send(
                &mut store,
                head("POST", None, Some(body.len() as u64)),
                &body,
                700,
                Some(body.len() - 4000)
            ),
            None
        );
        let answer = resume_info(&mut store, "tr");
        assert_eq!(answer.status, 200);
        let info = ResumeInfo::parse(body_text(&answer).as_bytes()).unwrap();
        assert_eq!(info.url, "http://127.0.0.1:3000/sender/upload?tid=tr");
        assert_eq!(info.start, 0);
        let next = info.end + 1;
        assert!(next > 0 && next < 10_000, "{next}");
        assert_eq!(
            store.get(&ContentDigest::of(&file).storage_key()).unwrap(),
            None,
            "not visible yet"
        );
        // The rest, as a multipart POST with a Content-Range on the File part.
        let headers = format!("Content-Range: bytes {next}-9999/10000\r\n");
        let body = form("tr", &headers, &file[next as usize..]);
        let answer = send(
            &mut store,
            head("POST", None, Some(body.len() as u64)),
            &body,
            512,
            None,
        )
        .unwrap();
        assert_eq!(answer.status, 200, "{}", body_text(&answer));
        assert_eq!(stored_file(&mut store, ContentDigest::of(&file)), file);
    }

    #[test]
    fn a_put_of_the_rest_completes_an_upload() {
        let file = data(4096 + 100);
        let mut store = MemoryStore::default();
        let body = form("tp", "", &file);
        assert_eq!(
            send(
                &mut store,
                head("POST", None, Some(body.len() as u64)),
                &body,
                1024,
                Some(body.len() - 2000)
            ),
            None
        );
        let info = ResumeInfo::parse(body_text(&resume_info(&mut store, "tp")).as_bytes()).unwrap();
        let next = info.end as usize + 1;
        let range = format!("bytes {next}-{}/{}", file.len() - 1, file.len());
        let put = UploadHead {
            method: "PUT",
            query: Some("tid=tp"),
            content_type: Some("image/jpeg"),
            content_length: Some((file.len() - next) as u64),
            content_range: Some(&range),
        };
        let answer = send(&mut store, put, &file[next..], 100, None).unwrap();
        assert_eq!(answer.status, 200, "{}", body_text(&answer));
        assert_eq!(stored_file(&mut store, ContentDigest::of(&file)), file);
        // A piece short of the end is kept and answered with where to go on.
        let range = "bytes 0-99/5000";
        let mut store = MemoryStore::default();
        let body = form("tq", &format!("Content-Range: {range}\r\n"), &file[..100]);
        let answer = send(
            &mut store,
            head("POST", None, Some(body.len() as u64)),
            &body,
            64,
            None,
        )
        .unwrap();
        assert_eq!(answer.status, 202, "{}", body_text(&answer));
        let info = ResumeInfo::parse(body_text(&answer).as_bytes()).unwrap();
        assert_eq!((info.start, info.end), (0, 99));
    }

    #[test]
    fn too_large_files_are_refused_before_anything_is_stored() {
        let file = data(70 * 1024);
        let body = form("big", "", &file);
        let mut store = MemoryStore::default();
        let answer = send(
            &mut store,
            head("POST", None, Some(body.len() as u64)),
            &body,
            4096,
            None,
        )
        .unwrap();
        assert_eq!(answer.status, 413);
        assert!(body_text(&answer).contains("exceeds the maximum"));
        assert_eq!(store.stored_bytes(), 0);
        let body = form("big", "Content-Length: 70000\r\n", b"");
        let answer = send(&mut store, head("POST", None, None), &body, 4096, None).unwrap();
        assert_eq!(answer.status, 413);
        // Without any length, the body is cut off at the maximum and the upload discarded.
        let body = form("big", "", &file);
        let answer = send(&mut store, head("POST", None, None), &body, 4096, None).unwrap();
        assert_eq!(answer.status, 413, "{}", body_text(&answer));
        assert_eq!(
            store.stored_bytes(),
            0,
            "{:?}",
            store.keys_with_prefix("").collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_part_longer_than_declared_is_cut_off_and_discarded() {
        let file = data(3000);
        let body = form("long", "Content-Length: 2000\r\n", &file);
        let mut store = MemoryStore::default();
        let answer = send(&mut store, head("POST", None, None), &body, 256, None).unwrap();
        assert_eq!(answer.status, 400, "{}", body_text(&answer));
        assert!(body_text(&answer).contains("declared end"));
        assert_eq!(store.stored_bytes(), 0);
    }

    #[test]
    fn malformed_requests_get_400_with_the_reason() {
        let mut store = MemoryStore::default();
        let cases: Vec<(UploadHead<'_>, Vec<u8>, &str)> = vec![
            (head("POST", None, None), b"garbage".to_vec(), "malformed multipart"),
            (head("POST", None, None), form("bad tid!", "", b"x"), "tid"),
            (head("POST", None, None), form("a", "Content-Range: bytes 5-1/10\r\n", b"x"), "Content-Range"),
            (head("POST", None, None), form("a", "", b"x")[..60].to_vec(), "malformed multipart"),
            (
                UploadHead { content_type: Some("text/plain"), ..head("POST", None, None) },
                Vec::new(),
                "multipart/form-data",
            ),
            (head("POST", None, None), format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"File\"\r\n\r\nx\r\n--{BOUNDARY}--").into_bytes(), "tid field must come before"),
            (head("POST", None, None), format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"tid\"\r\n\r\nabc\r\n--{BOUNDARY}--").into_bytes(), "no File part"),
            (head("GET", Some("tid=a"), None), Vec::new(), "get_upload_info"),
            (head("PUT", Some("tid=a"), None), Vec::new(), "Content-Range"),
        ];
        for (head, body, why) in cases {
            let answer = send(&mut store, head, &body, 13, None).unwrap();
            assert_eq!(answer.status, 400, "{why}: {}", body_text(&answer));
            assert!(
                body_text(&answer).contains(why),
                "{why}: {}",
                body_text(&answer)
            );
        }
        let answer = send(&mut store, head("DELETE", None, None), b"", 1, None).unwrap();
        assert_eq!((answer.status, answer.header("Allow")), (405, Some(ALLOW)));
        assert_eq!(store.stored_bytes(), 0);
    }

    #[test]
    fn resume_info_round_trips() {
        let info = ResumeInfo {
            start: 0,
            end: 1_048_575,
            url: "https://edge.example.com/sender/upload?tid=a&b=\"c\"".into(),
        };
        assert_eq!(ResumeInfo::parse(info.to_xml().as_bytes()), Ok(info));
        let plain = b"<file-resume-info><file-range start=\"0\" end=\"9\"/><data url=\"http://x/\"/></file-resume-info>";
        assert_eq!(ResumeInfo::parse(plain).unwrap().end, 9);
        for bad in [
            &b"<file-resume-info><data url=\"http://x/\"/></file-resume-info>"[..],
            b"<file-resume-info><file-range start=\"0\" end=\"x\"/><data url=\"u\"/></file-resume-info>",
            b"<file-resume-info><file-range start=\"0\" end=\"9\"/></file-resume-info>",
            b"<file><file-range start=\"0\" end=\"9\"/></file>",
            b"<file-resume-info><file-range",
        ] {
            assert!(ResumeInfo::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn content_ranges_of_uploads() {
        assert_eq!(parse_content_range("bytes 0-9/10"), Some((0, 9, 10)));
        assert_eq!(parse_content_range("0-9/10"), Some((0, 9, 10)));
        assert_eq!(parse_content_range(" BYTES 5-5/6 "), Some((5, 5, 6)));
        for bad in [
            "bytes 9-0/10",
            "bytes 0-10/10",
            "bytes */10",
            "items 0-1/2",
            "bytes 0-1",
            "bytes -1-2/3",
            "",
        ] {
            assert_eq!(parse_content_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn aligned_pieces_follow_chunk_boundaries() {
        let mut aligner = Aligner::new(100, 64);
        let mut pieces = Vec::new();
        let mut out = |offset, piece: Bytes| pieces.push((offset, piece.len()));
        aligner.push(Bytes::from(vec![0u8; 10]), &mut out);
        aligner.push(Bytes::from(vec![0u8; 200]), &mut out);
        aligner.flush(&mut out);
        assert_eq!(pieces, vec![(100, 28), (128, 64), (192, 64), (256, 54)]);
    }
}

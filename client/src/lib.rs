//! # rcs-client: the RCS file transfer client over WebSockets
//!
//! A [`Client`] is one device of a user: its one SIP WebSocket connection to the edge
//! (`ws://<server>/sender/sip`), which carries the whole service (chats both ways, offers and
//! pushes in, files out), and an MSRP WebSocket connection to each server a transfer is with,
//! opened when the first transfer with it starts (`/sender/msrp` for files sent,
//! `/receiver/msrp` for files received); subprotocols `sip` and `msrp`, SIP as text messages,
//! MSRP as binary messages, one SIP message or MSRP chunk per WebSocket message. Each client is a
//! device of its own (a `+sip.instance` of its own, RFC 5626), so one user may run several at
//! once: each gets the user's chats and offers. It drives the sans-IO user agent of
//! [`rcs_core::client`] and does the I/O the agent asks for: it sends what the agent transmits,
//! reads the chunks of a file being sent from disk, writes received chunks at their offsets
//! while the SHA-256 advances, and keeps at most a window of chunks in memory.
//!
//! A user signs in with the password of an account ([`Options::password`], answering the
//! servers' digest challenges); [`Accounts`] creates accounts and changes their passwords.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rcs_client::Error> {
//! use rcs_client::{Client, Options};
//! use rcs_core::client::Password;
//! use rcs_core::service::Delivery;
//!
//! let signed_in = |password: &str| Options {
//!     password: Some(Password::new(password)),
//!     ..Options::default()
//! };
//! let mut bob = Client::connect("http://127.0.0.1:3000", "bob", signed_in("bob's")).await?;
//! bob.register(Some(Delivery::Push)).await?;
//! let mut alice = Client::connect("http://127.0.0.1:3000", "alice", signed_in("alice's")).await?;
//! alice.register(None).await?;
//! let sent = alice.send_file("bob", "photo.jpg".as_ref()).await?;
//! let received = bob.receive_next("downloads".as_ref()).await?;
//! assert_eq!(received.size, sent.bytes);
//! # Ok(()) }
//! ```
//!
//! Each operation waits for its answer; nothing runs in the background, so messages that arrive
//! between operations (chats, offers) are handled and queued by the next one. No global state:
//! every client is independent, and dropping one closes its WebSockets.

mod account;
mod download;
mod file;
mod progress;
mod upload;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use indicatif::ProgressBar;
use rcs_core::client::{
    Config, Event, IncomingFile, Link, OfferKind, OutgoingFile, Output, Password, TransferEvent,
    TransferId, UserAgent, websocket_base,
};
use rcs_core::ids::Entropy;
use rcs_core::service::{Delivery, FILE_GONE_CAUSE, Side};
use rcs_core::sip::Reason;
use rcs_core::time::Timestamp;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use account::{Accounts, AccountsInfo, Authority, DigestSigner, signed_request};
pub use download::{Downloaded, download};
pub use file::{OutputFile, SourceFile, content_type_for, safe_name, sha256_of};
pub use upload::{Uploaded, upload_http};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How a client behaves.
#[derive(Clone, Debug)]
pub struct Options {
    /// The SIP domain (`sip:<user>@<domain>`).
    pub domain: String,
    /// Bytes per MSRP chunk sent.
    pub chunk_size: u64,
    /// MSRP chunks in flight.
    pub window: usize,
    /// How long an operation waits with nothing arriving before it fails with [`Error::Timeout`].
    pub timeout: Duration,
    /// How long a finished upload waits for the REPORT that may trail the server's BYE.
    pub report_grace: Duration,
    /// The registration lifetime asked for, in seconds (refreshed while operations run).
    pub register_expires: u32,
    /// How many times a lost MSRP connection is opened again during a delivery.
    pub reconnect_attempts: u32,
    /// Draw progress bars on stderr (only when it is a terminal).
    pub progress: bool,
    /// The account's password, which answers the servers' digest challenges (it is never sent).
    pub password: Option<Password>,
    /// This device's `+sip.instance` (`urn:uuid:…`, RFC 5626): a client given the instance of an
    /// earlier one is the same device, and its registration replaces that one's. `None`: a new
    /// device, for this client's lifetime.
    pub instance: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            domain: "localhost".into(),
            chunk_size: 64 * 1024,
            window: 8,
            timeout: Duration::from_secs(30),
            report_grace: Duration::from_secs(2),
            register_expires: 600,
            reconnect_attempts: 3,
            progress: false,
            password: None,
            instance: None,
        }
    }
}

/// Everything that can go wrong, with what the server answered where it answered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server URL is not `http(s)://host[:port]` or `ws(s)://...`.
    #[error("bad server URL {url:?}")]
    BadServer {
        /// The URL given.
        url: String,
    },
    /// The WebSocket upgrade was refused with an HTTP status.
    #[error("{url}: the server refused the WebSocket with HTTP {status}: {body}")]
    Upgrade {
        /// The WebSocket URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The response body.
        body: String,
    },
    /// A WebSocket could not be opened or failed (the cause is the error's source).
    #[error("WebSocket {url}")]
    WebSocket {
        /// The WebSocket URL.
        url: String,
        /// What failed.
        source: tungstenite::Error,
    },
    /// The server closed a connection.
    #[error("the server closed the {channel} connection")]
    Closed {
        /// `sip` or `msrp`.
        channel: &'static str,
    },
    /// The server refused a SIP request.
    #[error("{request} refused: SIP {status} {reason}")]
    Refused {
        /// What was refused: `REGISTER`, `INVITE`, `MESSAGE`, `transfer`.
        request: &'static str,
        /// The SIP status (or the MSRP status when the refusal came over MSRP).
        status: u16,
        /// The reason the server gave.
        reason: String,
    },
    /// Another device of the user took the file first (RFC 3326 `Reason` cause 200: "Call
    /// completed elsewhere"); this device gets nothing.
    #[error("{name} was received on another device")]
    AnsweredElsewhere {
        /// The file's name, as the sender gave it.
        name: String,
    },
    /// The server aborted the file before its end: its sender stopped sending it, or its bytes
    /// did not hash to the digest the sender announced. Nothing of it is kept.
    #[error("the file was aborted: {reason}")]
    Aborted {
        /// The server's reason (its BYE's `Reason`).
        reason: String,
    },
    /// The received file does not hash to the announced digest.
    #[error("the file hashes to {actual}, not the announced {expected}")]
    DigestMismatch {
        /// The announced SHA-256, hex.
        expected: String,
        /// What the bytes hash to, hex.
        actual: String,
    },
    /// Nothing arrived for the configured timeout.
    #[error("no answer for {after:?} while waiting for {waiting_for}")]
    Timeout {
        /// What the operation waited for.
        waiting_for: &'static str,
        /// How long.
        after: Duration,
    },
    /// An HTTP answer that is not the file.
    #[error("HTTP {status}: {body}")]
    Http {
        /// The status.
        status: u16,
        /// The body (the server's reason).
        body: String,
    },
    /// The HTTP request failed (the cause is the error's source).
    #[error("HTTP request failed")]
    HttpClient(#[source] reqwest::Error),
    /// A local file could not be read or written (the cause is the error's source).
    #[error("file {path}")]
    Io {
        /// Which file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The user agent refused a command (a bad address, say).
    #[error(transparent)]
    Agent(#[from] rcs_core::client::ClientError),
    /// The system has no randomness to draw identifiers from.
    #[error("no randomness: {0}")]
    Entropy(String),
}

/// How an upload went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendOutcome {
    /// The file size.
    pub bytes: u64,
    /// Where the upload started (`a=file-range` of the answer): bytes stored by an earlier attempt.
    pub resumed_from: u64,
    /// The status of the sender AS's REPORT (200: stored and verified), if one came.
    pub report: Option<u16>,
    /// The Reason of the sender AS's BYE: the receiver AS's answer to the first value.
    pub bye_reason: Option<Reason>,
}

impl SendOutcome {
    /// Whether the file was stored (REPORT 200) and the receiver AS took it (`cause` 2xx).
    pub fn delivered(&self) -> bool {
        self.report == Some(200)
            && self
                .bye_reason
                .as_ref()
                .and_then(|r| r.cause)
                .is_some_and(|c| (200..300).contains(&c))
    }
}

/// A file received and verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedFile {
    /// Where it was saved.
    pub path: PathBuf,
    /// Its size.
    pub size: u64,
    /// Its SHA-256 (checked against the announced one).
    pub sha256: [u8; 32],
    /// The name the sender gave, if any.
    pub name: Option<String>,
    /// Who sent it.
    pub from: String,
    /// Pushed or pulled.
    pub kind: OfferKind,
    /// Bytes that were on disk already from an earlier attempt (pull).
    pub resumed_from: u64,
    /// The HTTP fallback URL (pull offers carry it).
    pub url: Option<String>,
}

/// A chat message received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatMessage {
    /// The sender's URI.
    pub from: String,
    /// Its media type.
    pub content_type: String,
    /// Its body.
    pub body: Bytes,
}

/// A file being sent.
struct Upload {
    id: TransferId,
    source: SourceFile,
    bar: ProgressBar,
    /// Resolves when the user stops sending; taken once it has.
    stop: Option<StopSignal>,
}

/// What tells an upload to stop ([`Client::send_file_until`]).
type StopSignal = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// A file being received.
struct Delivering {
    id: TransferId,
    output: OutputFile,
    size: u64,
    bar: ProgressBar,
}

/// One device's connections to the edge, and the agent that speaks over them.
pub struct Client {
    /// `ws(s)://host[:port]`, where the routes are.
    base: String,
    sip_url: String,
    options: Options,
    ua: UserAgent,
    sip: Option<Socket>,
    /// The MSRP connection to the sender AS (files sent), once a transfer needed it.
    msrp_out: Option<Socket>,
    /// The MSRP connection to the receiver AS (files received), once a transfer needed it.
    msrp_in: Option<Socket>,
    /// Transfer and registration events for the operation running.
    events: VecDeque<Event>,
    chats: VecDeque<ChatMessage>,
    offers: VecDeque<(TransferId, IncomingFile)>,
    /// Offers the server withdrew before this device answered them, with its reason.
    withdrawn: VecDeque<(IncomingFile, Option<Reason>)>,
    upload: Option<Upload>,
    delivering: Option<Delivering>,
    progress: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("sip", &self.sip_url)
            .field("ua", &self.ua)
            .finish_non_exhaustive()
    }
}

fn now() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Timestamp::from_unix_millis(millis)
}

/// `http://host:port` (or `ws://`) to `ws://host:port`; `https`/`wss` to `wss`.
async fn open(url: &str, protocol: &'static str) -> Result<Socket, Error> {
    let mut request = url
        .into_client_request()
        .map_err(|source| Error::WebSocket {
            url: url.to_owned(),
            source,
        })?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(protocol));
    match tokio_tungstenite::connect_async_with_config(request, None, true).await {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => Err(Error::Upgrade {
            url: url.to_owned(),
            status: response.status().as_u16(),
            body: response
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).trim().to_owned())
                .unwrap_or_default(),
        }),
        Err(source) => Err(Error::WebSocket {
            url: url.to_owned(),
            source,
        }),
    }
}

/// What one wait brought.
enum Arrival {
    Sip(Option<Result<Message, tungstenite::Error>>),
    Msrp(Side, Option<Result<Message, tungstenite::Error>>),
    /// The user stopped the upload.
    Stop,
    Timer,
    Idle,
}

/// Resolves when the upload's user stops it, or never.
async fn stop_signal(upload: Option<&mut Upload>) {
    match upload.and_then(|upload| upload.stop.as_mut()) {
        Some(stop) => stop.await,
        None => std::future::pending().await,
    }
}

/// The next message of a socket, or never when there is none.
async fn next_message(socket: Option<&mut Socket>) -> Option<Result<Message, tungstenite::Error>> {
    match socket {
        Some(socket) => socket.next().await,
        None => std::future::pending().await,
    }
}

/// The MSRP route of `server`: `/sender/msrp` or `/receiver/msrp`.
fn msrp_url(base: &str, server: Side) -> String {
    format!("{base}/{}/msrp", server.as_str())
}

impl Client {
    /// Opens the SIP WebSocket of one device of `user` at `server` (`http://127.0.0.1:3000`).
    pub async fn connect(server: &str, user: &str, options: Options) -> Result<Self, Error> {
        let base = websocket_base(server).ok_or_else(|| Error::BadServer {
            url: server.to_owned(),
        })?;
        let sip_url = format!("{base}/sender/sip");
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| Error::Entropy(e.to_string()))?;
        let mut config = Config::new(user, &options.domain);
        config.secure = base.starts_with("wss:");
        config.chunk_size = options.chunk_size.max(1);
        config.window = options.window.max(1);
        config.register_expires = options.register_expires;
        config.instance = options.instance.clone();
        let mut ua = UserAgent::new(config, Entropy(seed))?;
        if let Some(password) = options.password.clone() {
            ua.set_password(password);
        }
        let sip = open(&sip_url, "sip").await?;
        Ok(Self {
            base,
            sip_url,
            options,
            ua,
            sip: Some(sip),
            msrp_out: None,
            msrp_in: None,
            events: VecDeque::new(),
            chats: VecDeque::new(),
            offers: VecDeque::new(),
            withdrawn: VecDeque::new(),
            upload: None,
            delivering: None,
            progress: tokio::sync::watch::Sender::new(0),
        })
    }

    /// The user's address of record.
    pub fn aor(&self) -> String {
        self.ua.aor().to_string()
    }

    /// Watches the transfer in progress: the bytes the server acknowledged (sending) or the bytes
    /// written to disk (receiving), for a display or for a caller that stops a transfer part way.
    pub fn watch_progress(&self) -> tokio::sync::watch::Receiver<u64> {
        self.progress.subscribe()
    }

    /// The options in force.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// How long the next operations wait with nothing arriving before they fail with
    /// [`Error::Timeout`].
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.options.timeout = timeout;
    }

    /// Registers with the server; `delivery` picks push or pull (`None`: the server's default).
    /// Returns the lifetime granted, in seconds.
    pub async fn register(&mut self, delivery: Option<Delivery>) -> Result<u32, Error> {
        self.ua.register(delivery)?;
        loop {
            match self.next_event("the answer to REGISTER").await? {
                Event::Registered { expires } => return Ok(expires),
                Event::RegistrationFailed(refusal) => {
                    return Err(Error::Refused {
                        request: "REGISTER",
                        status: refusal.status,
                        reason: refusal.reason,
                    });
                }
                _ => {}
            }
        }
    }

    /// Sends a text chat message to `to` (`bob`, `bob@domain` or `sip:bob@domain`); returns the
    /// status the server accepted it with (202).
    pub async fn chat(&mut self, to: &str, text: &str) -> Result<u16, Error> {
        let chat = self.ua.chat(
            to,
            "text/plain;charset=UTF-8",
            Bytes::copy_from_slice(text.as_bytes()),
        )?;
        loop {
            match self.next_event("the answer to MESSAGE").await? {
                Event::ChatSent { chat: c, status } if c == chat => return Ok(status),
                Event::ChatFailed { chat: c, refusal } if c == chat => {
                    return Err(Error::Refused {
                        request: "MESSAGE",
                        status: refusal.status,
                        reason: refusal.reason,
                    });
                }
                _ => {}
            }
        }
    }

    /// The next chat message that arrives (or arrived during an earlier operation).
    pub async fn next_chat(&mut self) -> Result<ChatMessage, Error> {
        loop {
            if let Some(chat) = self.chats.pop_front() {
                return Ok(chat);
            }
            self.step("a chat message").await?;
        }
    }

    /// Sends the file at `path` to `to`. Offering a file the server holds part of resumes the
    /// upload ([`SendOutcome::resumed_from`]); after a lost connection, connect again and call this
    /// again. Returns once the server's BYE says how the receiver AS took the file.
    pub async fn send_file(&mut self, to: &str, path: &Path) -> Result<SendOutcome, Error> {
        self.send_file_until(to, path, std::future::pending()).await
    }

    /// [`Client::send_file`], stopped midway once `stop` resolves (the user cancels): the file's
    /// message ends with a `#` chunk, the sender AS discards what it stored and tells whoever is
    /// receiving it, and the outcome's [`SendOutcome::bye_reason`] says so (cause 487). When every
    /// byte is already sent, stopping is too late and the transfer ends as it would have.
    pub async fn send_file_until(
        &mut self,
        to: &str,
        path: &Path,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<SendOutcome, Error> {
        let (size, sha256) = sha256_of(path)?;
        let name = safe_name(path.file_name().and_then(|n| n.to_str()), "file");
        let file = OutgoingFile {
            name,
            content_type: content_type_for(path).to_owned(),
            size,
            sha256,
        };
        let source = SourceFile::open(path)?;
        let id = self.ua.send_file(to, file)?;
        let bar = progress::bar(self.options.progress, Some(size), path);
        self.upload = Some(Upload {
            id,
            source,
            bar,
            stop: Some(Box::pin(stop)),
        });
        let result = self.run_upload(id, size).await;
        if let Some(upload) = self.upload.take() {
            upload.bar.finish_and_clear();
        }
        result
    }

    async fn run_upload(&mut self, id: TransferId, size: u64) -> Result<SendOutcome, Error> {
        let mut outcome = SendOutcome {
            bytes: size,
            resumed_from: 0,
            report: None,
            bye_reason: None,
        };
        loop {
            let Event::Transfer { id: of, event } = self.next_event("the upload").await? else {
                continue;
            };
            if of != id {
                continue;
            }
            match event {
                TransferEvent::Accepted { resume_from } => {
                    outcome.resumed_from = resume_from;
                    if let Some(upload) = &self.upload {
                        upload.bar.set_position(resume_from);
                    }
                    self.progress.send_replace(resume_from);
                }
                TransferEvent::Progress { acknowledged } => {
                    if let Some(upload) = &self.upload {
                        upload.bar.set_position(acknowledged);
                    }
                    self.progress.send_replace(acknowledged);
                }
                TransferEvent::Report { status, .. } => outcome.report = Some(status),
                TransferEvent::Failed(refusal) => {
                    return Err(Error::Refused {
                        request: "transfer",
                        status: refusal.status,
                        reason: refusal.reason,
                    });
                }
                TransferEvent::Ended { reason } => {
                    outcome.bye_reason = reason;
                    break;
                }
                _ => {}
            }
        }
        // The REPORT comes over MSRP and may trail the BYE.
        if outcome.report.is_none() {
            let deadline = Instant::now() + self.options.report_grace;
            while outcome.report.is_none() && Instant::now() < deadline {
                match self.step_until(deadline, "the REPORT").await {
                    Ok(()) => {}
                    Err(Error::Timeout { .. }) => break,
                    Err(error) => return Err(error),
                }
                while let Some(event) = self.events.pop_front() {
                    if let Event::Transfer {
                        id: of,
                        event: TransferEvent::Report { status, .. },
                    } = event
                        && of == id
                    {
                        outcome.report = Some(status);
                    }
                }
            }
        }
        Ok(outcome)
    }

    /// Waits for the next file offer without taking it, and returns what is offered; the offer stays
    /// queued for [`Client::receive_next`] (or the next call of this). A user interface shows it
    /// before the user accepts; a watcher tells that no offer came ([`Error::Timeout`]).
    pub async fn next_offer(&mut self) -> Result<IncomingFile, Error> {
        loop {
            if let Some((_, offer)) = self.offers.front() {
                return Ok(offer.clone());
            }
            self.step("a file offer").await?;
        }
    }

    /// The next offer the server withdrew before this device answered it (another device of the
    /// user took the file, or the sender gave up), with the server's reason.
    pub async fn next_withdrawn(&mut self) -> Result<(IncomingFile, Option<Reason>), Error> {
        loop {
            if let Some(withdrawn) = self.withdrawn.pop_front() {
                return Ok(withdrawn);
            }
            self.step("a withdrawn offer").await?;
        }
    }

    /// Takes the next file offered (pushed or pulled), saves it in `out_dir` under the name the
    /// sender gave (made safe, numbered if taken) and checks its digest. A pull that failed before
    /// leaves a `.part` file, from which the next pull of the same file goes on.
    pub async fn receive_next(&mut self, out_dir: &Path) -> Result<ReceivedFile, Error> {
        let (id, offer) = loop {
            if let Some(offer) = self.offers.pop_front() {
                break offer;
            }
            self.step("a file offer").await?;
        };
        let name = safe_name(offer.name.as_deref(), "received-file");
        let digest_tag = offer
            .sha256
            .map_or_else(|| format!("{}", id.0), |d| hex::encode(&d[..8]));
        let part = out_dir.join(format!(".{name}.{digest_tag}.part"));
        let (output, resumed_from) = match offer.kind {
            OfferKind::Pull => match OutputFile::resume(&part, offer.size)? {
                // As long as the whole file: it cannot be told complete without a check, so the
                // whole file is asked for again.
                (_, kept) if kept >= offer.size => (OutputFile::create(&part)?, 0),
                resumed => resumed,
            },
            OfferKind::Push => (OutputFile::create(&part)?, 0),
        };
        self.ua.accept(id, resumed_from)?;
        let bar = progress::bar(self.options.progress, Some(offer.size), Path::new(&name));
        bar.set_position(resumed_from);
        self.progress.send_replace(resumed_from);
        self.delivering = Some(Delivering {
            id,
            output,
            size: offer.size,
            bar,
        });
        let result = self.run_delivery(id, &name).await;
        if let Err(Error::AnsweredElsewhere { .. } | Error::Aborted { .. }) = &result {
            // Another device has the file, or it will never be whole: nothing of it stays here.
            let _ = std::fs::remove_file(&part);
        }
        if let Some(delivering) = self.delivering.take() {
            if result.is_ok() {
                delivering.bar.finish_and_clear();
            } else {
                delivering.bar.abandon();
            }
        }
        let sha256 = result?;
        let path = file::free_path(out_dir, &name);
        std::fs::rename(&part, &path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        Ok(ReceivedFile {
            path,
            size: offer.size,
            sha256,
            name: offer.name,
            from: offer.from,
            kind: offer.kind,
            resumed_from,
            url: offer.url,
        })
    }

    async fn run_delivery(&mut self, id: TransferId, name: &str) -> Result<[u8; 32], Error> {
        let mut verified = None;
        let mut aborted = false;
        let aborted_without_reason = || Error::Aborted {
            reason: "the server aborted the file".into(),
        };
        loop {
            let event = if verified.is_some() || aborted {
                // Verified or aborted: the server's BYE ends the session; do not wait long for it.
                let deadline = Instant::now() + self.options.report_grace;
                match self.step_until(deadline, "the BYE").await {
                    Ok(()) => {}
                    Err(Error::Timeout { .. }) if aborted => return Err(aborted_without_reason()),
                    Err(Error::Timeout { .. }) => {
                        return verified.ok_or(Error::Closed { channel: "sip" });
                    }
                    Err(error) => return Err(error),
                }
                match self.events.pop_front() {
                    Some(event) => event,
                    None => continue,
                }
            } else {
                self.next_event("the file").await?
            };
            let Event::Transfer { id: of, event } = event else {
                continue;
            };
            if of != id {
                continue;
            }
            match event {
                TransferEvent::Verified => verified = self.digest_of_delivery(),
                TransferEvent::Aborted => aborted = true,
                // The file will never be complete: the message was aborted, or the session ended
                // with `Reason` cause 410 (Gone) before the `#` chunk came.
                TransferEvent::Ended { reason }
                    if aborted
                        || reason.as_ref().and_then(|r| r.cause) == Some(FILE_GONE_CAUSE) =>
                {
                    return Err(reason.map_or_else(aborted_without_reason, |reason| {
                        Error::Aborted {
                            reason: reason.text.unwrap_or_default(),
                        }
                    }));
                }
                TransferEvent::DigestMismatch { expected, actual } => {
                    return Err(Error::DigestMismatch {
                        expected: hex::encode(expected),
                        actual: hex::encode(actual),
                    });
                }
                TransferEvent::Failed(refusal) => {
                    return Err(Error::Refused {
                        request: "transfer",
                        status: refusal.status,
                        reason: refusal.reason,
                    });
                }
                TransferEvent::Ended { reason }
                    if verified.is_none() && answered_elsewhere(reason.as_ref()) =>
                {
                    return Err(Error::AnsweredElsewhere {
                        name: name.to_owned(),
                    });
                }
                TransferEvent::Ended { .. } => {
                    return verified.ok_or(Error::Refused {
                        request: "transfer",
                        status: 487,
                        reason: "the server ended the session before the file was complete".into(),
                    });
                }
                _ => {}
            }
        }
    }

    fn digest_of_delivery(&mut self) -> Option<[u8; 32]> {
        let delivering = self.delivering.as_mut()?;
        delivering.output.finish(delivering.size).ok()
    }

    /// Closes both WebSockets with a close handshake, after removing the registration.
    pub async fn close(mut self) -> Result<(), Error> {
        if self.ua.unregister().is_ok() {
            // Best effort: the registration also ends when the SIP connection closes.
            let deadline = Instant::now() + self.options.report_grace;
            let _ = self.flush().await;
            while Instant::now() < deadline {
                if self
                    .step_until(deadline, "the answer to REGISTER")
                    .await
                    .is_err()
                {
                    break;
                }
                if self.events.iter().any(|e| matches!(e, Event::Unregistered)) {
                    break;
                }
            }
        }
        let sockets = [self.sip.take(), self.msrp_out.take(), self.msrp_in.take()];
        for socket in sockets.into_iter().flatten() {
            let mut socket = socket;
            let _ = socket.close(None).await;
        }
        Ok(())
    }

    /// The next event for the running operation, waiting at most the timeout between arrivals.
    async fn next_event(&mut self, waiting_for: &'static str) -> Result<Event, Error> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Ok(event);
            }
            self.step(waiting_for).await?;
        }
    }

    async fn step(&mut self, waiting_for: &'static str) -> Result<(), Error> {
        let deadline = Instant::now() + self.options.timeout;
        self.step_until(deadline, waiting_for).await
    }

    /// Sends what the agent has to send, then waits for one arrival (or the agent's timer, or
    /// `deadline`) and feeds it to the agent.
    async fn step_until(
        &mut self,
        deadline: Instant,
        waiting_for: &'static str,
    ) -> Result<(), Error> {
        self.flush().await?;
        let timer = self.ua.poll_timeout().map(|at| {
            let wait = at.unix_millis().saturating_sub(now().unix_millis());
            Instant::now() + Duration::from_millis(wait)
        });
        let arrival = {
            let Some(sip) = self.sip.as_mut() else {
                return Err(Error::Closed { channel: "sip" });
            };
            tokio::select! {
                message = sip.next() => Arrival::Sip(message),
                message = next_message(self.msrp_out.as_mut()) => Arrival::Msrp(Side::Sender, message),
                message = next_message(self.msrp_in.as_mut()) => Arrival::Msrp(Side::Receiver, message),
                () = stop_signal(self.upload.as_mut()) => Arrival::Stop,
                () = tokio::time::sleep_until(timer.unwrap_or(deadline)), if timer.is_some_and(|t| t < deadline) => Arrival::Timer,
                () = tokio::time::sleep_until(deadline) => Arrival::Idle,
            }
        };
        match arrival {
            Arrival::Sip(Some(Ok(message))) => match message {
                Message::Text(text) => self.ua.handle_sip(text.as_bytes(), now()),
                Message::Binary(bytes) => self.ua.handle_sip(&bytes, now()),
                Message::Close(_) => return Err(Error::Closed { channel: "sip" }),
                _ => {}
            },
            Arrival::Sip(Some(Err(source))) => {
                return Err(Error::WebSocket {
                    url: self.sip_url.clone(),
                    source,
                });
            }
            Arrival::Sip(None) => return Err(Error::Closed { channel: "sip" }),
            Arrival::Msrp(server, Some(Ok(message))) => match message {
                Message::Binary(bytes) => self.ua.handle_msrp(server, bytes, now()),
                Message::Text(text) => self.ua.handle_msrp(server, Bytes::from(text), now()),
                Message::Close(_) => self.msrp_lost(server).await?,
                _ => {}
            },
            Arrival::Msrp(server, Some(Err(_)) | None) => self.msrp_lost(server).await?,
            Arrival::Stop => {
                if let Some(upload) = self.upload.as_mut() {
                    upload.stop = None;
                    self.ua.stop_sending(upload.id)?;
                }
            }
            Arrival::Timer => self.ua.handle_timeout(now())?,
            Arrival::Idle => {
                return Err(Error::Timeout {
                    waiting_for,
                    after: self.options.timeout,
                });
            }
        }
        self.flush().await
    }

    /// The MSRP connection to `server`, opened if there is none yet.
    async fn msrp_to(&mut self, server: Side) -> Result<&mut Socket, Error> {
        let slot = match server {
            Side::Sender => &mut self.msrp_out,
            Side::Receiver => &mut self.msrp_in,
        };
        if slot.is_none() {
            *slot = Some(open(&msrp_url(&self.base, server), "msrp").await?);
        }
        slot.as_mut().ok_or(Error::Closed { channel: "msrp" })
    }

    /// The MSRP connection to `server` is gone. To the receiver AS: open it again and bind it to
    /// the deliveries in progress, which the receiver AS resumes from the last acknowledged byte.
    /// To the sender AS: an upload in progress fails with [`Error::Closed`] (its chunks in flight
    /// are lost, and offering the file again resumes it from what the sender AS stored); the next
    /// upload opens a new connection.
    async fn msrp_lost(&mut self, server: Side) -> Result<(), Error> {
        if server == Side::Sender {
            self.msrp_out = None;
            if self.upload.is_some() {
                return Err(Error::Closed { channel: "msrp" });
            }
            return Ok(());
        }
        self.msrp_in = None;
        let mut last = Error::Closed { channel: "msrp" };
        for attempt in 0..self.options.reconnect_attempts {
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            match self.msrp_to(Side::Receiver).await {
                Ok(_) => {
                    self.ua.msrp_connected();
                    return Ok(());
                }
                Err(error) => last = error,
            }
        }
        Err(last)
    }

    /// Carries out every output of the agent, in order.
    async fn flush(&mut self) -> Result<(), Error> {
        // The MSRP connections fed and not yet flushed.
        let mut msrp_pending: Vec<Side> = Vec::new();
        while let Some(output) = self.ua.poll_output() {
            match output {
                Output::Transmit {
                    link: Link::Sip,
                    message,
                } => {
                    let message = match String::from_utf8(message.to_vec()) {
                        Ok(text) => Message::text(text),
                        Err(_) => Message::Binary(message),
                    };
                    let sip = self.sip.as_mut().ok_or(Error::Closed { channel: "sip" })?;
                    sip.send(message).await.map_err(|source| Error::WebSocket {
                        url: self.sip_url.clone(),
                        source,
                    })?;
                }
                Output::Transmit {
                    link: Link::Msrp(server),
                    message,
                } => {
                    let msrp = self.msrp_to(server).await?;
                    // Fed now, flushed once the agent has nothing more to say.
                    if msrp.feed(Message::Binary(message)).await.is_err() {
                        // Lost: a new connection to the receiver AS binds, and it sends again
                        // what was not acknowledged.
                        msrp_pending.retain(|pending| *pending != server);
                        self.msrp_lost(server).await?;
                    } else if !msrp_pending.contains(&server) {
                        msrp_pending.push(server);
                    }
                }
                Output::Event(event) => self.on_event(event)?,
            }
        }
        for server in msrp_pending {
            let socket = match server {
                Side::Sender => self.msrp_out.as_mut(),
                Side::Receiver => self.msrp_in.as_mut(),
            };
            if let Some(msrp) = socket
                && msrp.flush().await.is_err()
            {
                self.msrp_lost(server).await?;
            }
        }
        Ok(())
    }

    /// Does the file I/O an event asks for; queues what the operations wait for.
    fn on_event(&mut self, event: Event) -> Result<(), Error> {
        match event {
            Event::ChatReceived {
                from,
                content_type,
                body,
            } => self.chats.push_back(ChatMessage {
                from,
                content_type,
                body,
            }),
            Event::Transfer {
                id,
                event: TransferEvent::Offered(file),
            } => self.offers.push_back((id, file)),
            Event::Transfer {
                id,
                event: TransferEvent::Ended { reason },
            } if self.offers.iter().any(|(offered, _)| *offered == id) => {
                if let Some(at) = self.offers.iter().position(|(offered, _)| *offered == id)
                    && let Some((_, file)) = self.offers.remove(at)
                {
                    self.withdrawn.push_back((file, reason));
                }
            }
            Event::Transfer {
                id,
                event: TransferEvent::NeedBytes { range },
            } => {
                let upload = self.upload.as_mut().filter(|u| u.id == id);
                if let Some(upload) = upload {
                    let data = upload.source.read(range.start, range.end)?;
                    self.ua.provide_bytes(id, range.start, data, now())?;
                }
            }
            Event::Transfer {
                id,
                event: TransferEvent::Write { offset, data },
            } => {
                if let Some(delivering) = self.delivering.as_mut().filter(|d| d.id == id) {
                    delivering.output.write_at(offset, &data)?;
                    delivering.bar.inc(data.len() as u64);
                    self.progress
                        .send_modify(|written| *written += data.len() as u64);
                }
            }
            Event::Transfer {
                id,
                event: TransferEvent::Received { size },
            } => {
                if let Some(delivering) = self.delivering.as_mut().filter(|d| d.id == id) {
                    let sha256 = delivering.output.finish(size)?;
                    self.ua.digest_computed(id, sha256)?;
                }
            }
            other => self.events.push_back(other),
        }
        Ok(())
    }
}

/// Whether a session ended because another device of the user answered (RFC 3326: cause 200).
fn answered_elsewhere(reason: Option<&Reason>) -> bool {
    reason.is_some_and(|r| r.protocol.eq_ignore_ascii_case("SIP") && r.cause == Some(200))
}

impl Drop for Client {
    /// Closes the WebSockets with a close handshake when a runtime is there to run it; otherwise
    /// the sockets are just dropped (the server sees the connections end either way).
    fn drop(&mut self) {
        let sockets: Vec<Socket> = [self.sip.take(), self.msrp_out.take(), self.msrp_in.take()]
            .into_iter()
            .flatten()
            .collect();
        if sockets.is_empty() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                for mut socket in sockets {
                    let _ = socket.close(None).await;
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_counts_as_delivered_only_with_both_answers() {
        let mut outcome = SendOutcome {
            bytes: 1,
            resumed_from: 0,
            report: Some(200),
            bye_reason: Some(Reason::sip(202, "Accepted")),
        };
        assert!(outcome.delivered());
        outcome.bye_reason = Some(Reason::sip(404, "unknown user"));
        assert!(!outcome.delivered());
        outcome.bye_reason = None;
        assert!(!outcome.delivered());
    }

    #[tokio::test]
    async fn a_refused_upgrade_reports_the_http_status_and_body() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buffer = vec![0u8; 4096];
            let _ = stream.read(&mut buffer).await.unwrap();
            let body = "missing Grip-Sig";
            let response = format!(
                "HTTP/1.1 403 Forbidden\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(response.as_bytes()).await.unwrap();
        });
        let error = Client::connect(&format!("http://{addr}"), "alice", Options::default())
            .await
            .unwrap_err();
        server.await.unwrap();
        match error {
            Error::Upgrade { status, body, url } => {
                assert_eq!(status, 403);
                assert_eq!(body, "missing Grip-Sig");
                assert!(url.ends_with("/sender/sip"), "{url}");
            }
            other => panic!("{other:?}"),
        }
    }
}

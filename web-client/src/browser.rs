//! The page side: the device's three WebSockets (its one SIP connection, to the sender AS, and an
//! MSRP connection to each server), timers, the clock and randomness, files as Blobs, and the
//! JavaScript API ([`RcsClient`]).
//!
//! All state lives in one `Inner` behind `Rc<RefCell<_>>`. Every entry point (a command, a socket
//! event, a timer, the end of a file read, an answer of the digest worker) borrows it, drives the
//! agent, and collects the events for the page; the events are handed to the page's callback only
//! after the borrow ends, so the callback may call back into the client.
//!
//! Files are hashed by the page's digest worker ([`crate::digest_worker`]), never on the main
//! thread: each Blob part of a received file is posted to it as it is made, and a file to send is
//! posted whole (as a Blob, which the worker reads).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};

use bytes::Bytes;
use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use rcs_core::accounts::AccountChange;
use rcs_core::client::{
    Config, Event, IncomingFile, Link, OfferKind, OutgoingFile, Output, Password, Refusal,
    TransferEvent, TransferId, UserAgent, websocket_base,
};
use rcs_core::ids::Entropy;
use rcs_core::service::{Delivery, Protocol, Side};
use rcs_core::time::Timestamp;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, spawn_local};
use web_sys::{
    BinaryType, Blob, BlobPropertyBag, CloseEvent, File, MessageEvent, Url, WebSocket, Worker,
};

use crate::page_event::{ChannelState, Direction, PageEvent, Value};
use crate::parts::{assembly, contiguous_prefix};
use crate::progress::{Progress, ProgressMeter};

/// Bytes queued on the MSRP socket above which the next chunk waits.
const HIGH_WATER: u32 = 1 << 20;
/// How long to wait before reopening a lost socket, in milliseconds.
const RECONNECT_MS: i32 = 1000;
/// Bytes of a received file gathered before they become one Blob part.
const PART_BYTES: usize = 1 << 20;
/// How often a waiting chunk looks at `bufferedAmount` again, in milliseconds.
const DRAIN_POLL_MS: i32 = 10;

/// The browser client of one user. Events reach `on_event` as objects with a `type`: the
/// [`PageEvent`]s, by [`PageEvent::name`].
#[wasm_bindgen]
pub struct RcsClient {
    inner: Rc<RefCell<Inner>>,
}

#[wasm_bindgen]
impl RcsClient {
    /// A client for `user` at the edge `server` (`http://host:port`), signing in with `password`
    /// (held by the agent only, to answer the server's digest challenges), as the device
    /// `instance` (its `+sip.instance`, a `urn:uuid:…` the page keeps for the tab, so a reload is
    /// the same device and another tab another one), receiving by `delivery` (`push` or `pull`),
    /// hashing files in `digest_worker` (a module worker running `digest-worker.js`). Nothing is
    /// opened until [`RcsClient::start`].
    #[wasm_bindgen(constructor)]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        server: &str,
        user: &str,
        password: &str,
        domain: &str,
        instance: &str,
        delivery: &str,
        on_event: Function,
        digest_worker: Worker,
    ) -> Result<RcsClient, JsValue> {
        let ws_base = websocket_base(server)
            .ok_or_else(|| error(&format!("{server:?} is not an http(s) URL")))?;
        let delivery = match delivery {
            "push" => Delivery::Push,
            "pull" => Delivery::Pull,
            other => {
                return Err(error(&format!(
                    "delivery must be push or pull, not {other:?}"
                )));
            }
        };
        if !instance.starts_with("urn:") {
            return Err(error(&format!(
                "the instance must be a URN, not {instance:?}"
            )));
        }
        let mut config = Config::new(user, domain);
        // Over wss the agent writes WSS in Via and msrps in its paths (RFC 7118, RFC 4975).
        config.secure = ws_base.starts_with("wss:");
        config.instance = Some(instance.to_owned());
        let mut ua = UserAgent::new(config, entropy()?).map_err(|e| error(&e.to_string()))?;
        ua.set_password(Password::new(password));
        let agent = Agent {
            ua,
            sip: None,
            msrp_out: None,
            msrp_in: None,
            timer: None,
            queued: Vec::new(),
        };
        let inner = Rc::new_cyclic(|me: &Weak<RefCell<Inner>>| {
            let weak = me.clone();
            let on_digest = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                if let Some(inner) = weak.upgrade() {
                    with(&inner, |inner| inner.digest_answered(&event.data()));
                }
            });
            digest_worker.set_onmessage(Some(on_digest.as_ref().unchecked_ref()));
            RefCell::new(Inner {
                me: me.clone(),
                ws_base,
                delivery,
                auto_accept: delivery == Delivery::Push,
                closed: false,
                agent,
                local_ids: BTreeMap::new(),
                next_local: 1,
                sending: BTreeMap::new(),
                receiving: BTreeMap::new(),
                digest_worker,
                _on_digest: on_digest,
                awaiting_digest: BTreeMap::new(),
                events: Vec::new(),
                on_event,
            })
        });
        Ok(Self { inner })
    }

    /// Opens the connections and registers the device.
    pub fn start(&self) {
        with(&self.inner, |inner| {
            for link in LINKS {
                inner.open(link);
            }
        });
    }

    /// Sends a chat message; returns its id (as in `chat-sent` / `chat-failed`).
    pub fn chat(&self, to: &str, text: &str) -> Result<f64, JsValue> {
        with(&self.inner, |inner| {
            let id = inner
                .agent
                .ua
                .chat(to, "text/plain;charset=utf-8", Bytes::from(text.to_owned()))
                .map_err(|e| error(&e.to_string()))?;
            inner.drive();
            Ok(id.0 as f64)
        })
    }

    /// Sends a file: it is hashed first (an `outgoing` event carries the id at once), then offered.
    #[wasm_bindgen(js_name = sendFile)]
    pub fn send_file(&self, to: &str, file: File) -> f64 {
        let local = with(&self.inner, |inner| {
            let local = inner.next_local();
            inner.emit(PageEvent::Outgoing {
                id: local,
                to: to.to_owned(),
                name: file.name(),
                size: file.size() as u64,
            });
            local
        });
        with(&self.inner, |inner| {
            if inner.post_digest("file", local, &[("file", file.clone().into())], None) {
                inner.awaiting_digest.insert(
                    local,
                    AwaitingDigest::Offer {
                        to: to.to_owned(),
                        file,
                    },
                );
            }
        });
        local as f64
    }

    /// Stops sending a file (`outgoing` event): one still being hashed is dropped; one being
    /// uploaded ends with a `#` chunk, the server discards it and tells the recipient, and its
    /// `ended` event follows (cause 487). Returns false when it is too late: every byte is sent.
    pub fn cancel(&self, id: f64) -> Result<bool, JsValue> {
        with(&self.inner, |inner| {
            let local = id as u64;
            if let Some(AwaitingDigest::Offer { .. }) = inner.awaiting_digest.get(&local) {
                inner.awaiting_digest.remove(&local);
                inner.emit(PageEvent::Ended {
                    id: local,
                    cause: 487,
                    reason: "the file was aborted".into(),
                });
                return Ok(true);
            }
            let transfer = inner.transfer_of(local)?;
            let stopped = inner
                .agent
                .ua
                .stop_sending(transfer)
                .map_err(|e| error(&e.to_string()))?;
            inner.drive();
            Ok(stopped)
        })
    }

    /// Accepts an offered file (`offer` event).
    pub fn accept(&self, id: f64) -> Result<(), JsValue> {
        with(&self.inner, |inner| inner.accept(id as u64))
    }

    /// Declines an offered file.
    pub fn decline(&self, id: f64) -> Result<(), JsValue> {
        with(&self.inner, |inner| {
            let transfer = inner.transfer_of(id as u64)?;
            inner
                .agent
                .ua
                .decline(transfer)
                .map_err(|e| error(&e.to_string()))?;
            inner.forget_received(id as u64);
            inner.drive();
            Ok(())
        })
    }

    /// Whether pushed files are accepted without asking.
    #[wasm_bindgen(js_name = setAutoAccept)]
    pub fn set_auto_accept(&self, on: bool) {
        with(&self.inner, |inner| inner.auto_accept = on);
    }

    /// Closes every connection; the client stays closed.
    pub fn close(&self) {
        with(&self.inner, |inner| {
            inner.closed = true;
            let agent = &mut inner.agent;
            let sockets = [
                agent.sip.take(),
                agent.msrp_out.take(),
                agent.msrp_in.take(),
            ];
            for socket in sockets.into_iter().flatten() {
                let _ = socket.ws.close();
            }
        });
    }
}

/// The body of a sign-up (`POST /sender/accounts`) for `user` with `password` in `realm` (what
/// `GET /sender/accounts` names): the password's verifiers as JSON, never the password.
#[wasm_bindgen(js_name = accountRequest)]
pub fn account_request(user: &str, realm: &str, password: &str) -> Result<String, JsValue> {
    serde_json::to_string(&AccountChange::new(user, realm, password))
        .map_err(|e| error(&e.to_string()))
}

/// Runs `work` on the client's state, then hands the events it produced to the page.
fn with<R>(inner: &Rc<RefCell<Inner>>, work: impl FnOnce(&mut Inner) -> R) -> R {
    let (result, events, callback) = {
        let mut state = inner.borrow_mut();
        let result = work(&mut state);
        (
            result,
            std::mem::take(&mut state.events),
            state.on_event.clone(),
        )
    };
    for event in events {
        let _ = callback.call1(&JsValue::NULL, &event);
    }
    result
}

struct Socket {
    ws: WebSocket,
    open: bool,
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Drop for Socket {
    /// The socket's handlers go with it: a socket closed by the page (signing out) still fires
    /// its close event, which must find no handler rather than a dropped one.
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
    }
}

/// The device's connections: its one SIP connection, and an MSRP connection to each server.
const LINKS: [Link; 3] = [
    Link::Sip,
    Link::Msrp(Side::Sender),
    Link::Msrp(Side::Receiver),
];

struct Agent {
    ua: UserAgent,
    sip: Option<Socket>,
    /// To the sender AS: files sent.
    msrp_out: Option<Socket>,
    /// To the receiver AS: files received.
    msrp_in: Option<Socket>,
    /// The pending `setTimeout` for the agent's next deadline: its handle and the deadline.
    timer: Option<(i32, Timestamp)>,
    /// Messages for a connection that is not open yet.
    queued: Vec<(Link, Bytes)>,
}

impl Agent {
    fn socket(&self, link: Link) -> Option<&Socket> {
        match link {
            Link::Sip => self.sip.as_ref(),
            Link::Msrp(Side::Sender) => self.msrp_out.as_ref(),
            Link::Msrp(Side::Receiver) => self.msrp_in.as_ref(),
        }
    }

    fn socket_mut(&mut self, link: Link) -> &mut Option<Socket> {
        match link {
            Link::Sip => &mut self.sip,
            Link::Msrp(Side::Sender) => &mut self.msrp_out,
            Link::Msrp(Side::Receiver) => &mut self.msrp_in,
        }
    }
}

struct Sending {
    file: File,
    meter: ProgressMeter,
}

struct Receiving {
    offer: IncomingFile,
    /// What arrived: offset, length and the bytes as a Blob.
    parts: Vec<(u64, u64, Blob)>,
    /// Bytes that continue each other, gathered into one Blob part once [`PART_BYTES`] are in.
    pending: Vec<u8>,
    pending_at: u64,
    meter: ProgressMeter,
    written: u64,
    /// Parts made but not yet posted to the digest worker: offset and bytes.
    unhashed: Vec<(u64, Uint8Array)>,
}

impl Receiving {
    fn new(offer: IncomingFile) -> Self {
        let size = offer.size;
        Self {
            offer,
            parts: Vec::new(),
            pending: Vec::new(),
            pending_at: 0,
            meter: ProgressMeter::new(size),
            written: 0,
            unhashed: Vec::new(),
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if offset != self.pending_at + self.pending.len() as u64 {
            self.flush();
            self.pending_at = offset;
        }
        self.pending.extend_from_slice(data);
        if self.pending.len() >= PART_BYTES {
            self.flush();
        }
        self.written = self.written.max(offset + data.len() as u64);
    }

    /// Turns the gathered bytes into a Blob part, and keeps their copy for the digest worker.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let part = Uint8Array::from(&self.pending[..]);
        // The Blob copies the bytes, so `part` can then be handed to the worker.
        if let Ok(blob) = Blob::new_with_u8_array_sequence(&Array::of1(&part)) {
            self.parts
                .push((self.pending_at, self.pending.len() as u64, blob));
        }
        self.unhashed.push((self.pending_at, part));
        self.pending_at += self.pending.len() as u64;
        self.pending.clear();
    }
}

/// What an answer of the digest worker is for.
enum AwaitingDigest {
    /// A file to send, offered once hashed.
    Offer { to: String, file: File },
    /// A received file, checked against its offer.
    Verify { transfer: TransferId },
}

struct Inner {
    me: Weak<RefCell<Inner>>,
    ws_base: String,
    delivery: Delivery,
    auto_accept: bool,
    closed: bool,
    agent: Agent,
    /// The page's id of each of the agent's transfers.
    local_ids: BTreeMap<TransferId, u64>,
    next_local: u64,
    sending: BTreeMap<u64, Sending>,
    receiving: BTreeMap<u64, Receiving>,
    digest_worker: Worker,
    _on_digest: Closure<dyn FnMut(MessageEvent)>,
    /// Requests to the digest worker, by the page's transfer id.
    awaiting_digest: BTreeMap<u64, AwaitingDigest>,
    events: Vec<Object>,
    on_event: Function,
}

impl Inner {
    fn next_local(&mut self) -> u64 {
        let id = self.next_local;
        self.next_local += 1;
        id
    }

    fn transfer_of(&self, local: u64) -> Result<TransferId, JsValue> {
        self.local_ids
            .iter()
            .find(|(_, id)| **id == local)
            .map(|(transfer, _)| *transfer)
            .ok_or_else(|| error(&format!("no transfer {local}")))
    }

    fn local_of(&mut self, transfer: TransferId) -> u64 {
        if let Some(&local) = self.local_ids.get(&transfer) {
            return local;
        }
        let local = self.next_local();
        self.local_ids.insert(transfer, local);
        local
    }

    fn open(&mut self, link: Link) {
        if self.closed {
            return;
        }
        let url = match link {
            Link::Sip => format!("{}/sender/sip", self.ws_base),
            Link::Msrp(server) => format!("{}/{}/msrp", self.ws_base, server.as_str()),
        };
        let ws = match WebSocket::new_with_str(&url, protocol_of(link).name()) {
            Ok(ws) => ws,
            Err(reason) => {
                self.emit_connection(link, ChannelState::Lost, Some(&js_text(&reason)));
                self.reopen_later(link);
                return;
            }
        };
        ws.set_binary_type(BinaryType::Arraybuffer);
        let weak = self.me.clone();
        let on_open = Closure::<dyn FnMut()>::new(move || {
            if let Some(inner) = weak.upgrade() {
                with(&inner, |inner| inner.opened(link));
            }
        });
        let weak = self.me.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            if let Some(inner) = weak.upgrade() {
                with(&inner, |inner| inner.received(link, &event.data()));
            }
        });
        let weak = self.me.clone();
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
            if let Some(inner) = weak.upgrade() {
                with(&inner, |inner| inner.lost(link, &event.reason()));
            }
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        let socket = Socket {
            ws,
            open: false,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        };
        *self.agent.socket_mut(link) = Some(socket);
    }

    fn opened(&mut self, link: Link) {
        let delivery = self.delivery;
        let agent = &mut self.agent;
        if let Some(socket) = agent.socket_mut(link).as_mut() {
            socket.open = true;
        }
        let result = match link {
            // Registering again on a new connection moves the device's binding there.
            Link::Sip => agent.ua.register(Some(delivery)),
            Link::Msrp(Side::Receiver) => {
                agent.ua.msrp_connected();
                Ok(())
            }
            Link::Msrp(Side::Sender) => Ok(()),
        };
        if let Err(reason) = result {
            self.emit_connection(link, ChannelState::Failed, Some(&reason.to_string()));
        }
        self.emit_connection(link, ChannelState::Open, None);
        self.flush_queued(link);
        self.drive();
    }

    fn received(&mut self, link: Link, data: &JsValue) {
        let now = now();
        let bytes = if let Some(text) = data.as_string() {
            Bytes::from(text)
        } else {
            Bytes::from(Uint8Array::new(data).to_vec())
        };
        match link {
            Link::Sip => self.agent.ua.handle_sip(&bytes, now),
            Link::Msrp(server) => self.agent.ua.handle_msrp(server, bytes, now),
        }
        self.drive();
    }

    fn lost(&mut self, link: Link, reason: &str) {
        *self.agent.socket_mut(link) = None;
        if self.closed {
            return;
        }
        let reason = (!reason.is_empty()).then_some(reason);
        self.emit_connection(link, ChannelState::Lost, reason);
        self.reopen_later(link);
    }

    fn reopen_later(&mut self, link: Link) {
        let weak = self.me.clone();
        set_timeout(RECONNECT_MS, move || {
            if let Some(inner) = weak.upgrade() {
                with(&inner, |inner| {
                    inner.emit_connection(link, ChannelState::Reconnecting, None);
                    inner.open(link);
                });
            }
        });
    }

    /// Applies everything the agent has to do, in order, and sets its next timer.
    fn drive(&mut self) {
        while let Some(output) = self.agent.ua.poll_output() {
            match output {
                Output::Transmit { link, message } => self.transmit(link, message),
                Output::Event(event) => self.on_agent_event(event),
            }
        }
        self.set_agent_timer();
    }

    /// Sends a message now, or once its connection is open.
    fn transmit(&mut self, link: Link, message: Bytes) {
        let agent = &mut self.agent;
        let sent = agent
            .socket(link)
            .filter(|socket| socket.open)
            .is_some_and(|socket| send(&socket.ws, link, &message));
        if !sent {
            agent.queued.push((link, message));
        }
    }

    /// Sends what waited for `link` to open.
    fn flush_queued(&mut self, link: Link) {
        let agent = &mut self.agent;
        let (ready, waiting) = std::mem::take(&mut agent.queued)
            .into_iter()
            .partition(|(queued_for, _)| *queued_for == link);
        agent.queued = waiting;
        let ready: Vec<(Link, Bytes)> = ready;
        for (link, message) in ready {
            self.transmit(link, message);
        }
    }

    /// Keeps one `setTimeout` on the agent's next deadline; moved only when the deadline moves
    /// (this runs after every message).
    fn set_agent_timer(&mut self) {
        let agent = &mut self.agent;
        let next = agent.ua.poll_timeout();
        if agent.timer.map(|(_, at)| at) == next {
            return;
        }
        if let Some((handle, _)) = agent.timer.take()
            && let Some(window) = web_sys::window()
        {
            window.clear_timeout_with_handle(handle);
        }
        let Some(at) = next else {
            return;
        };
        let delay = at.unix_millis().saturating_sub(now().unix_millis());
        let weak = self.me.clone();
        let handle = set_timeout(i32::try_from(delay).unwrap_or(i32::MAX), move || {
            if let Some(inner) = weak.upgrade() {
                with(&inner, |inner| {
                    let agent = &mut inner.agent;
                    agent.timer = None;
                    if let Err(reason) = agent.ua.handle_timeout(now()) {
                        inner.emit(PageEvent::Error {
                            reason: reason.to_string(),
                        });
                    }
                    inner.drive();
                });
            }
        });
        self.agent.timer = handle.map(|handle| (handle, at));
    }

    fn on_agent_event(&mut self, event: Event) {
        match event {
            Event::Registered { expires } => self.emit(PageEvent::Registered { expires }),
            Event::Unregistered => self.emit(PageEvent::Unregistered),
            Event::RegistrationFailed(refusal) => self.emit(PageEvent::RegistrationFailed {
                status: refusal.status,
                reason: refusal.reason,
            }),
            Event::ChatSent { chat, status } => {
                self.emit(PageEvent::ChatSent { id: chat.0, status })
            }
            Event::ChatFailed { chat, refusal } => self.emit(PageEvent::ChatFailed {
                id: chat.0,
                status: refusal.status,
                reason: refusal.reason,
            }),
            Event::ChatReceived {
                from,
                content_type,
                body,
            } => self.emit(PageEvent::Chat {
                from,
                content_type,
                text: String::from_utf8_lossy(&body).into_owned(),
            }),
            Event::Transfer { id, event } => {
                let local = self.local_of(id);
                self.on_transfer_event(id, local, event);
            }
            _ => {}
        }
    }

    fn on_transfer_event(&mut self, id: TransferId, local: u64, event: TransferEvent) {
        match event {
            TransferEvent::Offered(offer) => self.offered(local, offer),
            TransferEvent::Accepted { resume_from } => {
                self.emit(PageEvent::Accepted {
                    id: local,
                    resume_from,
                });
            }
            TransferEvent::NeedBytes { range } => self.read_chunk(id, local, range),
            TransferEvent::Progress { acknowledged } => {
                if let Some(progress) = self
                    .sending
                    .get_mut(&local)
                    .and_then(|sending| sending.meter.report(now().unix_millis(), acknowledged))
                {
                    self.emit_progress(local, Direction::Out, progress);
                }
            }
            TransferEvent::Uploaded => self.emit(PageEvent::Uploaded { id: local }),
            TransferEvent::Report { status, comment } => self.emit(PageEvent::Report {
                id: local,
                status,
                comment: comment.unwrap_or_default(),
            }),
            TransferEvent::Write { offset, data } => self.write(local, offset, &data),
            TransferEvent::Received { size } => self.verify(id, local, size),
            TransferEvent::Verified => self.deliver(local),
            TransferEvent::DigestMismatch { .. } => {
                self.forget_received(local);
                self.emit_failed(local, 0, "the file that arrived differs from the one sent");
            }
            // The file will never be complete (its upload ended without it): nothing is kept;
            // the BYE that follows says why.
            TransferEvent::Aborted => self.forget_received(local),
            TransferEvent::Failed(Refusal { status, reason }) => {
                self.sending.remove(&local);
                self.forget_received(local);
                self.emit_failed(local, status, &reason);
            }
            TransferEvent::Ended { reason } => {
                self.sending.remove(&local);
                if reason.as_ref().and_then(|r| r.cause) == Some(rcs_core::service::FILE_GONE_CAUSE)
                {
                    self.forget_received(local);
                }
                let (cause, text) = reason
                    .map(|reason| (reason.cause.unwrap_or(0), reason.text.unwrap_or_default()))
                    .unwrap_or_default();
                self.emit(PageEvent::Ended {
                    id: local,
                    cause,
                    reason: text,
                });
            }
            _ => {}
        }
    }

    fn offer_file(&mut self, local: u64, to: &str, file: File, sha256: [u8; 32]) {
        let content_type = match file.type_() {
            kind if kind.is_empty() => "application/octet-stream".to_owned(),
            kind => kind,
        };
        let size = file.size() as u64;
        let outgoing = OutgoingFile {
            name: file.name(),
            content_type,
            size,
            sha256,
        };
        match self.agent.ua.send_file(to, outgoing) {
            Ok(transfer) => {
                self.local_ids.insert(transfer, local);
                self.sending.insert(
                    local,
                    Sending {
                        file,
                        meter: ProgressMeter::new(size),
                    },
                );
                self.drive();
            }
            Err(reason) => self.emit_failed(local, 0, &reason.to_string()),
        }
    }

    /// Reads the bytes the agent asked for, waits while the socket is full, and hands them over.
    fn read_chunk(&mut self, id: TransferId, local: u64, range: std::ops::Range<u64>) {
        let Some(sending) = self.sending.get(&local) else {
            return;
        };
        let file: Blob = sending.file.clone().into();
        let weak = self.me.clone();
        spawn_local(async move {
            let bytes = read_slice(&file, range.start, range.end).await;
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let buffered = inner
                    .borrow()
                    .agent
                    .msrp_out
                    .as_ref()
                    .map_or(0, |socket| socket.ws.buffered_amount());
                if buffered <= HIGH_WATER {
                    break;
                }
                drop(inner);
                sleep(DRAIN_POLL_MS).await;
            }
            let Some(inner) = weak.upgrade() else { return };
            with(&inner, |inner| match bytes {
                Ok(bytes) => {
                    let result =
                        inner
                            .agent
                            .ua
                            .provide_bytes(id, range.start, Bytes::from(bytes), now());
                    if let Err(reason) = result {
                        inner.emit_failed(local, 0, &reason.to_string());
                    }
                    inner.drive();
                }
                Err(reason) => inner.emit_failed(local, 0, &js_text(&reason)),
            });
        });
    }

    fn offered(&mut self, local: u64, offer: IncomingFile) {
        let kind = match offer.kind {
            OfferKind::Push => "push",
            OfferKind::Pull => "pull",
        };
        self.emit(PageEvent::Offer {
            id: local,
            kind,
            from: offer.from.clone(),
            name: offer.name.clone().unwrap_or_default(),
            content_type: offer.content_type.clone(),
            size: offer.size,
            url: offer.url.clone(),
        });
        let push = offer.kind == OfferKind::Push;
        self.receiving.insert(local, Receiving::new(offer));
        if push && self.auto_accept {
            let _ = self.accept(local);
        }
    }

    fn accept(&mut self, local: u64) -> Result<(), JsValue> {
        let transfer = self.transfer_of(local)?;
        // A transfer accepted again (after a lost connection) resumes after what arrived in order.
        let resume_from = self.receiving.get_mut(&local).map_or(0, |receiving| {
            receiving.flush();
            contiguous_prefix(&spans(&receiving.parts))
        });
        self.post_parts(local);
        self.agent
            .ua
            .accept(transfer, resume_from)
            .map_err(|e| error(&e.to_string()))?;
        self.drive();
        Ok(())
    }

    fn write(&mut self, local: u64, offset: u64, data: &[u8]) {
        let Some(receiving) = self.receiving.get_mut(&local) else {
            return;
        };
        receiving.write(offset, data);
        let progress = receiving
            .meter
            .report(now().unix_millis(), receiving.written);
        self.post_parts(local);
        if let Some(progress) = progress {
            self.emit_progress(local, Direction::In, progress);
        }
    }

    /// Hands the parts made since the last call to the digest worker (the bytes move, no copy).
    fn post_parts(&mut self, local: u64) {
        let Some(receiving) = self.receiving.get_mut(&local) else {
            return;
        };
        for (offset, bytes) in std::mem::take(&mut receiving.unhashed) {
            let buffer = bytes.buffer();
            let fields = [
                ("offset", (offset as f64).into()),
                ("bytes", buffer.clone().into()),
            ];
            if !self.post_digest("part", local, &fields, Some(&buffer)) {
                self.forget_received(local);
                return;
            }
        }
    }

    /// The file is complete: the worker answers with its digest (read back from the assembled
    /// file if its parts did not come in order).
    fn verify(&mut self, id: TransferId, local: u64, size: u64) {
        let Some(receiving) = self.receiving.get_mut(&local) else {
            return;
        };
        receiving.flush();
        let file = assemble(&receiving.parts, &receiving.offer.content_type);
        self.post_parts(local);
        match file {
            Ok(file) => {
                let fields = [("size", (size as f64).into()), ("file", file.into())];
                if self.post_digest("finish", local, &fields, None) {
                    self.awaiting_digest
                        .insert(local, AwaitingDigest::Verify { transfer: id });
                } else {
                    self.forget_received(local);
                }
            }
            Err(reason) => self.emit_failed(local, 0, &js_text(&reason)),
        }
    }

    /// A received file that will not complete: its parts and its hasher go.
    fn forget_received(&mut self, local: u64) {
        if self.receiving.remove(&local).is_some() {
            // A worker that cannot take this holds no hasher for it either.
            let _ = self
                .digest_worker
                .post_message(&digest_request("forget", local, &[]));
        }
        self.awaiting_digest.remove(&local);
    }

    /// Posts `{ kind, id, ...fields }` to the digest worker, moving `transfer` into it. When the
    /// worker cannot take it, the transfer fails and this says `false`.
    fn post_digest(
        &mut self,
        kind: &str,
        local: u64,
        fields: &[(&str, JsValue)],
        transfer: Option<&js_sys::ArrayBuffer>,
    ) -> bool {
        let message = digest_request(kind, local, fields);
        let posted = match transfer {
            Some(buffer) => self
                .digest_worker
                .post_message_with_transfer(&message, &Array::of1(buffer)),
            None => self.digest_worker.post_message(&message),
        };
        if let Err(reason) = &posted {
            let reason = js_text(reason);
            self.emit_failed(local, 0, &format!("cannot hash the file: {reason}"));
        }
        posted.is_ok()
    }

    /// An answer of the digest worker: `{ id, sha256 }` or `{ id, error }`.
    fn digest_answered(&mut self, answer: &JsValue) {
        let field = |name: &str| Reflect::get(answer, &name.into()).unwrap_or(JsValue::UNDEFINED);
        let Some(local) = field("id").as_f64().map(|id| id as u64) else {
            return;
        };
        let Some(waiting) = self.awaiting_digest.remove(&local) else {
            return;
        };
        let sha256 = field("sha256")
            .as_string()
            .and_then(|text| hex::decode(text).ok())
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok());
        let Some(sha256) = sha256 else {
            let reason = field("error")
                .as_string()
                .unwrap_or_else(|| "the digest worker gave no digest".into());
            self.forget_received(local);
            self.emit_failed(local, 0, &format!("cannot hash the file: {reason}"));
            return;
        };
        match waiting {
            AwaitingDigest::Offer { to, file } => self.offer_file(local, &to, file, sha256),
            AwaitingDigest::Verify { transfer } => {
                if let Err(reason) = self.agent.ua.digest_computed(transfer, sha256) {
                    self.emit_failed(local, 0, &reason.to_string());
                }
                self.drive();
            }
        }
    }

    fn deliver(&mut self, local: u64) {
        let Some(mut receiving) = self.receiving.remove(&local) else {
            return;
        };
        receiving.flush();
        let offer = &receiving.offer;
        match assemble(&receiving.parts, &offer.content_type)
            .and_then(|blob| Url::create_object_url_with_blob(&blob))
        {
            Ok(url) => self.emit(PageEvent::Received {
                id: local,
                from: offer.from.clone(),
                name: offer.name.clone().unwrap_or_default(),
                content_type: offer.content_type.clone(),
                size: offer.size,
                sha256: hex::encode(offer.sha256.unwrap_or_default()),
                object_url: url,
            }),
            Err(reason) => self.emit_failed(local, 0, &js_text(&reason)),
        }
    }

    fn emit(&mut self, event: PageEvent) {
        let object = Object::new();
        let _ = Reflect::set(&object, &"type".into(), &event.name().into());
        for (name, value) in event.fields() {
            let value = match value {
                Value::Text(text) => JsValue::from(text),
                Value::Number(number) => JsValue::from(number),
                Value::Null => JsValue::NULL,
            };
            let _ = Reflect::set(&object, &name.into(), &value);
        }
        self.events.push(object);
    }

    fn emit_failed(&mut self, local: u64, status: u16, reason: &str) {
        self.emit(PageEvent::Failed {
            id: local,
            status,
            reason: reason.to_owned(),
        });
    }

    fn emit_progress(&mut self, local: u64, direction: Direction, progress: Progress) {
        self.emit(PageEvent::Progress {
            id: local,
            direction,
            done: progress.done,
            size: progress.size,
            bytes_per_sec: progress.bytes_per_sec,
            secs_left: progress.secs_left,
        });
    }

    /// A connection's state, named by the server it goes to and its protocol.
    fn emit_connection(&mut self, link: Link, state: ChannelState, reason: Option<&str>) {
        let side = match link {
            Link::Sip => Side::Sender,
            Link::Msrp(server) => server,
        };
        self.emit(PageEvent::Connection {
            side,
            channel: protocol_of(link),
            state,
            reason: reason.map(str::to_owned),
        });
    }
}

/// A request to the digest worker: `{ kind, id, ...fields }`.
fn digest_request(kind: &str, local: u64, fields: &[(&str, JsValue)]) -> Object {
    let message = Object::new();
    let _ = Reflect::set(&message, &"kind".into(), &kind.into());
    let _ = Reflect::set(&message, &"id".into(), &(local as f64).into());
    for (name, value) in fields {
        let _ = Reflect::set(&message, &(*name).into(), value);
    }
    message
}

/// The protocol a connection speaks.
fn protocol_of(link: Link) -> Protocol {
    match link {
        Link::Sip => Protocol::Sip,
        Link::Msrp(_) => Protocol::Msrp,
    }
}

/// Sends one message: SIP as text, MSRP as binary (RFC 7118, RFC 7977).
fn send(ws: &WebSocket, link: Link, message: &[u8]) -> bool {
    match link {
        Link::Sip => ws.send_with_str(&String::from_utf8_lossy(message)),
        Link::Msrp(_) => ws.send_with_u8_array(message),
    }
    .is_ok()
}

/// One Blob of the file from its parts, in order, each byte once.
fn assemble(parts: &[(u64, u64, Blob)], content_type: &str) -> Result<Blob, JsValue> {
    let pieces = Array::new();
    for (index, skip) in assembly(&spans(parts)) {
        let blob = &parts[index].2;
        if skip == 0 {
            pieces.push(blob);
        } else {
            let rest: Blob = blob.slice_with_f64(skip as f64)?;
            pieces.push(&rest);
        }
    }
    let options = BlobPropertyBag::new();
    options.set_type(content_type);
    Blob::new_with_blob_sequence_and_options(&pieces, &options)
}

fn spans(parts: &[(u64, u64, Blob)]) -> Vec<(u64, u64)> {
    parts.iter().map(|(at, len, _)| (*at, *len)).collect()
}

async fn read_slice(blob: &Blob, start: u64, end: u64) -> Result<Vec<u8>, JsValue> {
    let slice = blob.slice_with_f64_and_f64(start as f64, end as f64)?;
    let buffer = JsFuture::from(slice.array_buffer()).await?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

fn now() -> Timestamp {
    Timestamp::from_unix_millis(js_sys::Date::now() as u64)
}

fn entropy() -> Result<Entropy, JsValue> {
    let crypto = web_sys::window()
        .ok_or_else(|| error("no window"))?
        .crypto()?;
    let mut bytes = [0u8; 32];
    crypto.get_random_values_with_u8_array(&mut bytes)?;
    Ok(Entropy(bytes))
}

fn set_timeout(ms: i32, callback: impl FnOnce() + 'static) -> Option<i32> {
    let callback = Closure::once_into_js(callback);
    web_sys::window()?
        .set_timeout_with_callback_and_timeout_and_arguments_0(callback.unchecked_ref(), ms)
        .ok()
}

async fn sleep(ms: i32) {
    let promise = Promise::new(&mut |resolve, _| {
        set_timeout(ms, move || {
            let _ = resolve.call0(&JsValue::NULL);
        });
    });
    let _ = JsFuture::from(promise).await;
}

fn error(text: &str) -> JsValue {
    js_sys::Error::new(text).into()
}

fn js_text(value: &JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|error| String::from(error.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}

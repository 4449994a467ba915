//! Users and both application servers driven in virtual time over an in-memory shared store.
//!
//! Every call to [`Net::request`] is one request of an edge function: a fresh engine (nothing
//! survives in memory between requests, exactly as on the edge), its inputs, and every output applied:
//! store operations to the [`MemoryStore`], messages to the connections a small in-memory gateway
//! has subscribed, and requests to the other server run inline as the outbound HTTP call they are. The
//! users are clients written on the core's public API only.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use rcs_core::first_value::{ContentDigest, SigningKey, Url};
use rcs_core::ft_http::{self, FileInfoDocument};
use rcs_core::ids::{Entropy, TokenSource};
use rcs_core::msrp::{self, ByteRange, Chunker, Frame, MsrpUri, Request, WindowedSender};
use rcs_core::sdp::{
    self, AnswerParams, Attribute, Connection, FileHash, FileSelector, FileTransferOffer,
    Operation, SessionDescription, Setup,
};
use rcs_core::server::engine::Logic;
use rcs_core::server::receiver::ReceiverLogic;
use rcs_core::server::sender::SenderLogic;
use rcs_core::server::{Delivery, Engine, Input, Output, ServerConfig};
use rcs_core::sip::{self, Dialog, Method, NameAddr, RequestBuilder, SipMessage, SipUri};
use rcs_core::store::{KeyValue, LayoutConfig, MemoryStore, StoreOp, apply};
use rcs_core::time::Timestamp;

pub const DOMAIN: &str = "example.com";
pub const START: Timestamp = Timestamp::from_unix_secs(1_800_000_000);

/// Which application server a request goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    Sender,
    Receiver,
}

pub fn config(host: &str) -> ServerConfig {
    ServerConfig {
        domain: DOMAIN.into(),
        host: host.into(),
        secure: true,
        public_base: Url::parse("https://files.example.com/ft/").unwrap(),
        signing_keys: vec![SigningKey::new(vec![42u8; 32]).unwrap()],
        layout: LayoutConfig {
            chunk_size: 64 * 1024,
            max_file_size: 256 << 20,
            ..LayoutConfig::default()
        },
        url_lifetime_secs: 3600,
        msrp_chunk_size: 64 * 1024,
        window: 8,
        max_reply_bytes: rcs_core::grip::REPLY_LIMIT,
        max_registration_secs: 3600,
        default_delivery: Delivery::Push,
    }
}

/// The shared store, both servers and every connection's inbox.
pub struct Net {
    pub store: MemoryStore,
    pub sender: ServerConfig,
    pub receiver: ServerConfig,
    pub now: Timestamp,
    seed: u64,
    inboxes: BTreeMap<String, VecDeque<Bytes>>,
    /// Bytes that crossed between the two servers, both ways.
    pub peer_bytes: usize,
    /// The SIP messages that crossed between the two servers.
    pub peer_messages: Vec<Bytes>,
    pub timers: Vec<(Timestamp, Server, String)>,
    /// Edge requests made so far.
    pub requests: usize,
    /// The largest value the store was asked to hold.
    pub largest_value: usize,
    /// Writes of a delivery's window record (`msrp/<session>/window/<connection>`).
    pub window_writes: usize,
    /// The most bytes one request sent to one connection (what a gateway reply would carry).
    pub largest_burst: usize,
    burst: BTreeMap<String, usize>,
}

impl Default for Net {
    fn default() -> Self {
        Self::new(
            config("sender-as.example.com"),
            config("receiver-as.example.com"),
        )
    }
}

impl Net {
    pub fn new(sender: ServerConfig, receiver: ServerConfig) -> Self {
        Self {
            store: MemoryStore::default(),
            sender,
            receiver,
            now: START,
            seed: 0,
            inboxes: BTreeMap::new(),
            peer_bytes: 0,
            peer_messages: Vec::new(),
            timers: Vec::new(),
            requests: 0,
            window_writes: 0,
            largest_burst: 0,
            burst: BTreeMap::new(),
            largest_value: 0,
        }
    }

    pub fn entropy(&mut self) -> Entropy {
        self.seed += 1;
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&self.seed.to_be_bytes());
        Entropy(bytes)
    }

    /// One edge request to `server` with these inputs; returns the answers to peer requests.
    pub fn request(&mut self, server: Server, inputs: Vec<Input>) -> Vec<Bytes> {
        self.now = self.now.plus_millis(1);
        self.requests += 1;
        self.burst.clear();
        match server {
            Server::Sender => {
                let logic = SenderLogic::new(self.sender.clone()).expect("valid configuration");
                self.run(server, Engine::new(logic), inputs)
            }
            Server::Receiver => {
                let logic = ReceiverLogic::new(self.receiver.clone()).expect("valid configuration");
                self.run(server, Engine::new(logic), inputs)
            }
        }
    }

    fn run<L: Logic>(
        &mut self,
        server: Server,
        mut engine: Engine<L>,
        inputs: Vec<Input>,
    ) -> Vec<Bytes> {
        let mut answers = Vec::new();
        for input in inputs {
            let entropy = self.entropy();
            engine.handle(input, self.now, entropy);
            self.drain(server, &mut engine, &mut answers);
        }
        assert!(engine.is_idle(), "every input handled");
        answers
    }

    fn drain<L: Logic>(
        &mut self,
        server: Server,
        engine: &mut Engine<L>,
        answers: &mut Vec<Bytes>,
    ) {
        while let Some(output) = engine.poll_output() {
            match output {
                Output::Store(StoreOp::Get { key }) => {
                    let value = self.store.get(&key).expect("memory store");
                    engine.store_value(&key, value);
                }
                Output::Store(op) => {
                    if let StoreOp::Set { key, value } = &op {
                        self.largest_value = self.largest_value.max(value.len());
                        self.window_writes += usize::from(key.contains("/window/"));
                    }
                    apply(&mut self.store, op).expect("memory store");
                }
                Output::Send {
                    connection,
                    message,
                } => self.deliver(connection, message),
                Output::PeerRequest { message } => {
                    self.peer_bytes += message.len();
                    self.peer_messages.push(message.clone());
                    let other = if server == Server::Sender {
                        Server::Receiver
                    } else {
                        Server::Sender
                    };
                    for answer in self.request(other, vec![Input::PeerRequest { message }]) {
                        self.peer_bytes += answer.len();
                        self.peer_messages.push(answer.clone());
                        let entropy = self.entropy();
                        engine.handle(Input::PeerResponse { message: answer }, self.now, entropy);
                    }
                }
                Output::PeerResponse { message } => answers.push(message),
                Output::Timer { at, key } => self.timers.push((at, server, key)),
            }
        }
    }

    fn deliver(&mut self, connection: String, message: Bytes) {
        let burst = self.burst.entry(connection.clone()).or_default();
        *burst += message.len();
        self.largest_burst = self.largest_burst.max(*burst);
        self.inboxes
            .entry(connection)
            .or_default()
            .push_back(message);
    }

    /// Everything delivered to a connection since the last call.
    pub fn take(&mut self, connection: &str) -> Vec<Bytes> {
        self.inboxes
            .remove(connection)
            .map(Vec::from)
            .unwrap_or_default()
    }

    /// The connection drops: the gateway forgets it and tells the server.
    pub fn disconnect(&mut self, server: Server, connection: &str) {
        self.inboxes.remove(connection);
        self.request(
            server,
            vec![Input::Closed {
                connection: connection.to_owned(),
            }],
        );
    }

    /// Fires every timer that is due at the current virtual time.
    pub fn fire_due_timers(&mut self) -> usize {
        let now = self.now;
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.timers)
            .into_iter()
            .partition(|t| t.0 <= now);
        self.timers = later;
        for (_, server, key) in &due {
            self.request(*server, vec![Input::Timer { key: key.clone() }]);
        }
        due.len()
    }

    /// The server stops mid-transfer and comes back: only what is in the store survives, which is
    /// always the case here, since no engine outlives its request. Connections drop with it.
    pub fn restart(&mut self) {
        self.inboxes.clear();
    }
}

/// A user agent: a SIP connection and an MSRP connection to one server.
pub struct User {
    pub name: String,
    pub aor: String,
    pub server: Server,
    pub sip: String,
    pub msrp: String,
    pub host: String,
    pub ids: TokenSource,
    connections: u32,
}

impl User {
    pub fn new(name: &str, server: Server, seed: u8) -> Self {
        let mut ids = TokenSource::new(Entropy([seed; 32]));
        let host = format!("{}.invalid", ids.token(6));
        Self {
            name: name.into(),
            aor: format!("sip:{name}@{DOMAIN}"),
            server,
            sip: format!("{name}-sip-0"),
            msrp: format!("{name}-msrp-0"),
            host,
            ids,
            connections: 0,
        }
    }

    pub fn uri(&self) -> SipUri {
        SipUri::parse(&self.aor).unwrap()
    }

    /// Opens fresh connections (after a drop).
    pub fn reconnect(&mut self) {
        self.connections += 1;
        self.sip = format!("{}-sip-{}", self.name, self.connections);
        self.msrp = format!("{}-msrp-{}", self.name, self.connections);
    }

    pub fn msrp_uri(&self, session: &str) -> MsrpUri {
        format!("msrps://{}:2855/{session};ws", self.host)
            .parse()
            .unwrap()
    }

    pub fn send_sip(&self, net: &mut Net, message: &SipMessage) -> Vec<Bytes> {
        net.request(
            self.server,
            vec![Input::Sip {
                connection: self.sip.clone(),
                message: message.to_bytes(),
            }],
        )
    }

    pub fn send_raw_sip(&self, net: &mut Net, message: &[u8]) {
        let message = Bytes::copy_from_slice(message);
        net.request(
            self.server,
            vec![Input::Sip {
                connection: self.sip.clone(),
                message,
            }],
        );
    }

    /// The frames reach the server together, as a gateway request carries them.
    pub fn send_msrp(&self, net: &mut Net, frames: Vec<Bytes>) {
        let input = Input::Msrp {
            connection: self.msrp.clone(),
            messages: frames,
        };
        net.request(self.server, vec![input]);
    }

    pub fn sip_inbox(&self, net: &mut Net) -> Vec<SipMessage> {
        net.take(&self.sip)
            .iter()
            .map(|m| sip::parse(m, &sip::Limits::default()).expect("valid SIP from the server"))
            .collect()
    }

    pub fn msrp_inbox(&self, net: &mut Net) -> Vec<Frame> {
        net.take(&self.msrp)
            .iter()
            .map(|m| {
                msrp::parse_message(m, &msrp::Limits::default())
                    .expect("valid MSRP from the server")
            })
            .collect()
    }

    /// REGISTER; returns the final response.
    pub fn register(&mut self, net: &mut Net, delivery: Option<&str>) -> SipMessage {
        let mut builder = RequestBuilder::new(
            Method::Register,
            SipUri::parse(&format!("sip:{DOMAIN}")).unwrap(),
            NameAddr::new(self.uri()),
            NameAddr::new(self.uri()),
        )
        .local_host(&self.host)
        .contact_user(&self.name)
        .expires(600);
        if let Some(mode) = delivery {
            builder = builder.contact_param("ft-delivery", Some(mode));
        }
        let register = builder.build(&mut self.ids).unwrap();
        self.send_sip(net, &register);
        self.sip_inbox(net).pop().expect("an answer to REGISTER")
    }

    /// Sends a chat MESSAGE; returns the final response.
    pub fn chat(&mut self, net: &mut Net, to: &str, text: &str) -> SipMessage {
        let to = SipUri::parse(to).unwrap();
        let message = RequestBuilder::new(
            Method::Message,
            to.clone(),
            NameAddr::new(self.uri()),
            NameAddr::new(to),
        )
        .local_host(&self.host)
        .body("text/plain", Bytes::copy_from_slice(text.as_bytes()))
        .build(&mut self.ids)
        .unwrap();
        self.send_sip(net, &message);
        self.sip_inbox(net).pop().expect("an answer to MESSAGE")
    }

    /// Answers every SIP request in the inbox with 200 (BYEs, MESSAGEs), returning the requests.
    pub fn answer_requests(&mut self, net: &mut Net) -> Vec<SipMessage> {
        let requests: Vec<SipMessage> = self
            .sip_inbox(net)
            .into_iter()
            .filter(SipMessage::is_request)
            .collect();
        for request in &requests {
            if *request.method() != Method::Ack {
                let tag = request
                    .to()
                    .tag()
                    .map_or_else(|| self.ids.tag(), str::to_owned);
                let response = sip::response(request, 200, "OK", Some(&tag)).unwrap();
                self.send_sip(net, &response);
            }
        }
        requests
    }
}

/// A file a test sends.
pub fn file_bytes(len: usize, seed: u64) -> Bytes {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

/// How a sender's transfer went.
#[derive(Debug)]
pub struct Upload {
    /// The final answer to the INVITE.
    pub answer: SipMessage,
    /// The first byte the server asked for (`a=file-range`), 0-based.
    pub resumed_from: u64,
    /// The status of the success or failure REPORT, if one came.
    pub report: Option<u16>,
    /// The Reason header of the server's BYE.
    pub bye_reason: Option<String>,
}

/// What a sender does: offer, answer, ACK, then the file in MSRP chunks with a window in flight.
pub struct FileSender<'a> {
    pub data: &'a Bytes,
    pub name: &'a str,
    pub content_type: &'a str,
    pub chunk_size: u64,
    pub window: usize,
    /// SENDs per edge request (the gateway batches several WebSocket events into one).
    pub batch: usize,
    /// Stop (drop the MSRP connection) once this many bytes are acknowledged.
    pub stop_after: Option<u64>,
    /// Announce this size instead of the real one.
    pub announced_size: Option<u64>,
    /// Start sending at this byte instead of where the server asks.
    pub start_at: Option<u64>,
}

impl<'a> FileSender<'a> {
    pub fn new(data: &'a Bytes) -> Self {
        Self {
            data,
            name: "holiday photo.jpg",
            content_type: "image/jpeg",
            chunk_size: 64 * 1024,
            window: 8,
            batch: 4,
            stop_after: None,
            announced_size: None,
            start_at: None,
        }
    }

    pub fn offer(&self, user: &mut User, session: &str) -> SessionDescription {
        FileTransferOffer {
            username: user.name.clone(),
            session_id: 1,
            session_version: 1,
            connection: Connection::ip4(&user.host),
            port: 9,
            proto: sdp::PROTO_TLS.into(),
            path: vec![user.msrp_uri(session).to_string()],
            accept_types: vec![self.content_type.into()],
            accept_wrapped_types: Vec::new(),
            max_size: None,
            setup: Setup::Active,
            operation: Operation::Push,
            file_selector: FileSelector {
                name: Some(self.name.into()),
                content_type: Some(self.content_type.into()),
                size: Some(self.announced_size.unwrap_or(self.data.len() as u64)),
                hashes: vec![FileHash {
                    algorithm: "sha-256".into(),
                    bytes: ContentDigest::of(self.data).as_bytes().to_vec(),
                }],
            },
            file_transfer_id: user.ids.token(8),
            file_disposition: Some("attachment".into()),
            file_date: None,
            file_icon: None,
            file_range: None,
        }
        .build()
        .unwrap()
    }

    /// Runs the whole upload to `to`; stops early if the INVITE is refused.
    pub fn send(&self, net: &mut Net, user: &mut User, to: &str) -> Upload {
        let session = user.ids.msrp_id();
        let offer = self.offer(user, &session);
        let to_uri = SipUri::parse(to).unwrap();
        let invite = RequestBuilder::new(
            Method::Invite,
            to_uri.clone(),
            NameAddr::new(user.uri()),
            NameAddr::new(to_uri),
        )
        .local_host(&user.host)
        .contact_user(&user.name)
        .body("application/sdp", Bytes::from(offer.to_bytes()))
        .build(&mut user.ids)
        .unwrap();
        user.send_sip(net, &invite);
        let answer = user.sip_inbox(net).pop().expect("an answer to INVITE");
        let mut upload = Upload {
            answer: answer.clone(),
            resumed_from: 0,
            report: None,
            bye_reason: None,
        };
        if answer.status() != Some(200) {
            return upload;
        }
        let dialog = Dialog::uac(&invite, &answer).unwrap();
        let ack = dialog.ack(&mut user.ids).unwrap();
        user.send_sip(net, &ack);
        let sdp = SessionDescription::parse(answer.body()).unwrap();
        let media = sdp.msrp_media().unwrap();
        let server_path: MsrpUri = media.path().unwrap()[0].parse().unwrap();
        upload.resumed_from = media.file_range().map_or(0, |range| range.start - 1);
        let local = user.msrp_uri(&session);
        let total = self.data.len() as u64;
        let message_id = user.ids.msrp_id();
        let mut window = WindowedSender::new(
            &message_id,
            total,
            self.chunk_size,
            self.window,
            self.start_at.unwrap_or(upload.resumed_from),
        );
        let chunker = Chunker::new(
            &message_id,
            self.content_type,
            Some(total),
            self.chunk_size,
            vec![server_path],
            vec![local],
        )
        .unwrap()
        .with_header("Success-Report", "yes")
        .unwrap();
        let mut idle_rounds = 0;
        loop {
            let mut plans = Vec::new();
            while let Some(plan) = window.next_chunk(&mut user.ids, net.now) {
                plans.push(plan);
            }
            for batch in plans.chunks(self.batch.max(1)) {
                let frames = batch
                    .iter()
                    .map(|plan| {
                        let body = self
                            .data
                            .slice(plan.range.start as usize..plan.range.end as usize);
                        let request = chunker.request_for(plan, body).unwrap();
                        let mut out = Vec::new();
                        Frame::Request(request).encode(&mut out);
                        Bytes::from(out)
                    })
                    .collect();
                user.send_msrp(net, frames);
            }
            for frame in user.msrp_inbox(net) {
                match frame {
                    Frame::Response(response) => {
                        let _ = window.on_response(&response.transaction_id, response.code);
                    }
                    Frame::Request(report) if report.method == msrp::Method::Report => {
                        upload.report = report.headers.status().map(|status| status.code);
                    }
                    Frame::Request(_) => {}
                }
            }
            if self
                .stop_after
                .is_some_and(|limit| window.acknowledged() >= limit)
            {
                net.disconnect(user.server, &user.msrp.clone());
                return upload;
            }
            if window.is_finished() || window.aborted().is_some() {
                break;
            }
            idle_rounds = if plans.is_empty() { idle_rounds + 1 } else { 0 };
            assert!(
                idle_rounds < 3,
                "upload stalled at {} bytes",
                window.acknowledged()
            );
        }
        for bye in user.answer_requests(net) {
            if *bye.method() == Method::Bye {
                upload.bye_reason = bye.header("Reason").map(str::to_owned);
            }
        }
        upload
    }
}

/// What a recipient got.
#[derive(Debug, Default)]
pub struct Received {
    pub data: Vec<u8>,
    pub name: Option<String>,
    pub digest: Option<ContentDigest>,
    /// Whether the connection was dropped on purpose before the end.
    pub interrupted: bool,
    /// The contiguous bytes acknowledged to the server.
    pub acknowledged: u64,
    /// The file-info a pull offer carried.
    pub file_info: Option<FileInfoDocument>,
    pub bye_received: bool,
    /// The client's MSRP session, the server's path and the file, to bind again after a drop.
    pub session: String,
    pub server_path: Option<MsrpUri>,
    pub selector: Option<FileSelector>,
}

/// What a recipient does once the server has invited it (push) or offered it a file (pull).
pub struct FileReceiver {
    pub batch: usize,
    /// Drop the MSRP connection after this many bytes.
    pub stop_after: Option<u64>,
    /// Stop answering (the connection stays open but nothing comes back) after this many bytes.
    pub silent_after: Option<u64>,
    /// A connection the gateway reports closed right after the new one binds.
    pub close_after_bind: Option<String>,
}

impl Default for FileReceiver {
    fn default() -> Self {
        Self {
            batch: 4,
            stop_after: None,
            silent_after: None,
            close_after_bind: None,
        }
    }
}

impl FileReceiver {
    /// Push: answers the server's INVITE, binds MSRP, receives.
    pub fn accept_push(&self, net: &mut Net, user: &mut User) -> Received {
        let invite = user
            .sip_inbox(net)
            .into_iter()
            .find(|m| *m.method() == Method::Invite && m.is_request())
            .expect("the server invites the recipient");
        let offer = SessionDescription::parse(invite.body()).unwrap();
        let session = user.ids.msrp_id();
        let params = AnswerParams {
            username: user.name.clone(),
            session_id: 2,
            session_version: 1,
            connection: Connection::ip4(&user.host),
            port: 9,
            path: vec![user.msrp_uri(&session).to_string()],
            accept_types: Vec::new(),
            accept_wrapped_types: Vec::new(),
            max_size: None,
            setup: Some(Setup::Active),
        };
        let answer = sdp::answer(&offer, &params).unwrap();
        let tag = user.ids.tag();
        let mut ok = sip::response(&invite, 200, "OK", Some(&tag)).unwrap();
        ok.push_header(
            "Contact",
            &format!("<sip:{}@{};transport=ws>", user.name, user.host),
        )
        .unwrap();
        ok.set_body(Some("application/sdp"), Bytes::from(answer.to_bytes()))
            .unwrap();
        user.send_sip(net, &ok);
        let acks = user.sip_inbox(net);
        assert!(
            acks.iter().any(|m| *m.method() == Method::Ack),
            "the server ACKs"
        );
        let media = offer.msrp_media().unwrap();
        let server_path: MsrpUri = media.path().unwrap()[0].parse().unwrap();
        let selector = media.file_selector().unwrap().clone();
        self.receive(net, user, &session, server_path, &selector, Vec::new(), 0)
    }

    /// Binds a new connection to the session of an interrupted delivery and takes the rest.
    pub fn resume(&self, net: &mut Net, user: &mut User, cut: Received) -> Received {
        let server_path = cut.server_path.clone().expect("the server's path");
        let selector = cut.selector.clone().expect("the file");
        self.receive(
            net,
            user,
            &cut.session,
            server_path,
            &selector,
            cut.data,
            cut.acknowledged,
        )
    }

    /// Pull: reads the server's MESSAGE, then asks for the file with an `a=recvonly` INVITE.
    pub fn pull(&self, net: &mut Net, user: &mut User) -> Received {
        let offers = user.answer_requests(net);
        let message = offers
            .iter()
            .find(|m| *m.method() == Method::Message)
            .expect("the server offers the file");
        assert!(message.has_content_type(ft_http::CONTENT_TYPE));
        let info = FileInfoDocument::parse(message.body().as_ref()).unwrap();
        let sender = message.from().uri().clone();
        self.download(net, user, &info, sender, 0)
    }

    /// The download request of claim 12 for the file `info` describes, from byte `from`.
    pub fn download(
        &self,
        net: &mut Net,
        user: &mut User,
        info: &FileInfoDocument,
        sender: SipUri,
        from: u64,
    ) -> Received {
        let request = download_request(net, user, info, sender, from);
        let answer = request.answer;
        assert_eq!(
            answer.status(),
            Some(200),
            "download request refused: {}",
            String::from_utf8_lossy(&answer.to_bytes())
        );
        let dialog = Dialog::uac(&request.invite, &answer).unwrap();
        let ack = dialog.ack(&mut user.ids).unwrap();
        user.send_sip(net, &ack);
        let sdp = SessionDescription::parse(answer.body()).unwrap();
        let server_path: MsrpUri = sdp.msrp_media().unwrap().path().unwrap()[0]
            .parse()
            .unwrap();
        let mut received = self.receive(
            net,
            user,
            &request.session,
            server_path,
            &request.selector,
            Vec::new(),
            from,
        );
        received.file_info = Some(info.clone());
        received
    }

    /// Binds the MSRP connection and takes chunks until the file is complete, answering each 200
    /// and the whole with a success REPORT after checking the digest. `data` holds what an earlier
    /// connection received; its first `from` bytes were acknowledged.
    #[allow(clippy::too_many_arguments)]
    pub fn receive(
        &self,
        net: &mut Net,
        user: &mut User,
        session: &str,
        server_path: MsrpUri,
        selector: &FileSelector,
        mut data: Vec<u8>,
        from: u64,
    ) -> Received {
        let local = user.msrp_uri(session);
        let size = selector.size.expect("the selector has the size");
        data.resize(size as usize, 0);
        let mut have = rcs_core::ranges::RangeSet::new();
        have.insert(0..from).unwrap();
        let mut acknowledged = from;
        let bind = Request::new(
            &user.ids.msrp_id(),
            msrp::Method::Send,
            vec![server_path.clone()],
            vec![local.clone()],
        )
        .unwrap();
        user.send_msrp(net, vec![encode(&Frame::Request(bind))]);
        if let Some(old) = &self.close_after_bind {
            net.disconnect(user.server, old);
        }
        let mut last_send = None;
        let mut idle_rounds = 0;
        while !(have.is_complete(size) && last_send.is_some()) {
            let frames = user.msrp_inbox(net);
            if frames.is_empty() {
                idle_rounds += 1;
                assert!(
                    idle_rounds < 3,
                    "delivery stalled at {} of {size} bytes",
                    have.len()
                );
            }
            let mut answers = Vec::new();
            for frame in frames {
                let Frame::Request(request) = frame else {
                    continue;
                };
                assert_eq!(request.method, msrp::Method::Send);
                let Some(body) = &request.body else { continue };
                let offsets = request.body_offsets();
                data[offsets.start as usize..offsets.end as usize].copy_from_slice(body);
                have.insert(offsets.clone()).unwrap();
                if let Some(response) = request.response(200, None, &local) {
                    answers.push(encode(&Frame::Response(response)));
                }
                last_send = Some(request);
            }
            let reached =
                |limit: Option<u64>| limit.is_some_and(|limit| have.contiguous_prefix() >= limit);
            if reached(self.stop_after) || reached(self.silent_after) {
                if reached(self.stop_after) {
                    net.disconnect(user.server, &user.msrp.clone());
                }
                return Received {
                    data,
                    interrupted: true,
                    acknowledged,
                    session: session.to_owned(),
                    server_path: Some(server_path),
                    selector: Some(selector.clone()),
                    ..Received::default()
                };
            }
            for batch in answers.chunks(self.batch.max(1)) {
                user.send_msrp(net, batch.to_vec());
            }
            acknowledged = have.contiguous_prefix();
        }
        let digest = ContentDigest::of(&data);
        let announced = selector.hash("sha-256").map(|hash| hash.bytes.clone());
        assert_eq!(
            announced.as_deref(),
            Some(&digest.as_bytes()[..]),
            "the delivered file hashes to the announced digest"
        );
        let last = last_send.expect("at least one chunk");
        let report = last
            .report(
                &user.ids.msrp_id(),
                200,
                None,
                ByteRange::whole(size),
                &local,
            )
            .unwrap();
        user.send_msrp(net, vec![encode(&Frame::Request(report))]);
        let requests = user.answer_requests(net);
        Received {
            data,
            name: selector.name.clone(),
            digest: Some(digest),
            acknowledged: size,
            bye_received: requests.iter().any(|m| *m.method() == Method::Bye),
            session: session.to_owned(),
            server_path: Some(server_path),
            selector: Some(selector.clone()),
            ..Received::default()
        }
    }
}

pub fn encode(frame: &Frame) -> Bytes {
    let mut out = Vec::new();
    frame.encode(&mut out);
    Bytes::from(out)
}

/// The first body of a message as text.
pub fn text(message: &SipMessage) -> String {
    String::from_utf8_lossy(message.body()).into_owned()
}

/// A download request sent and the server's answer to it.
pub struct DownloadRequest {
    pub invite: SipMessage,
    pub answer: SipMessage,
    /// The user's MSRP session id in the request's path.
    pub session: String,
    pub selector: FileSelector,
}

/// Sends the download request of claim 12 for the file `info` describes, from byte `from`, and
/// takes the server's answer.
pub fn download_request(
    net: &mut Net,
    user: &mut User,
    info: &FileInfoDocument,
    sender: SipUri,
    from: u64,
) -> DownloadRequest {
    let digest = info.file.digest.expect("the file-info names the digest");
    let session = user.ids.msrp_id();
    let selector = FileSelector {
        name: info.file.name.clone(),
        content_type: Some(info.file.content_type.clone()),
        size: Some(info.file.size),
        hashes: vec![FileHash {
            algorithm: "sha-256".into(),
            bytes: digest.as_bytes().to_vec(),
        }],
    };
    let mut request = FileTransferOffer {
        username: user.name.clone(),
        session_id: 3,
        session_version: 1,
        connection: Connection::ip4(&user.host),
        port: 9,
        proto: sdp::PROTO_TLS.into(),
        path: vec![user.msrp_uri(&session).to_string()],
        accept_types: vec![info.file.content_type.clone()],
        accept_wrapped_types: Vec::new(),
        max_size: None,
        setup: Setup::Active,
        operation: Operation::Pull,
        file_selector: selector.clone(),
        file_transfer_id: user.ids.token(8),
        file_disposition: None,
        file_date: None,
        file_icon: None,
        file_range: None,
    }
    .build()
    .unwrap();
    if from > 0 {
        request
            .msrp_media_mut()
            .unwrap()
            .attributes
            .push(Attribute::FileRange(sdp::FileRange {
                start: from + 1,
                stop: Some(info.file.size),
            }));
    }
    let invite = RequestBuilder::new(
        Method::Invite,
        sender.clone(),
        NameAddr::new(user.uri()),
        NameAddr::new(sender),
    )
    .local_host(&user.host)
    .contact_user(&user.name)
    .body("application/sdp", Bytes::from(request.to_bytes()))
    .build(&mut user.ids)
    .unwrap();
    user.send_sip(net, &invite);
    let answer = user
        .sip_inbox(net)
        .pop()
        .expect("an answer to the download request");
    DownloadRequest {
        invite,
        answer,
        session,
        selector,
    }
}

//! Raw users for the transfer tests, on the test kit's servers and gateway ([`Net`]): each writes its
//! SIP and MSRP by hand on the core's public API, so that a test can send what a well-behaved client
//! never would (malformed messages, a cut mid-chunk, a forged offer).

use bytes::Bytes;
use rcs_core::accounts::AccountChange;
use rcs_core::digest::Challenge;
use rcs_core::first_value::ContentDigest;
use rcs_core::ft_http::{self, FileInfoDocument};
use rcs_core::grip::WsEvent;
use rcs_core::ids::{Entropy, TokenSource};
use rcs_core::msrp::{self, ByteRange, Chunker, Frame, MsrpUri, Request, WindowedSender};
use rcs_core::sdp::{
    self, AnswerParams, Attribute, Connection, FileHash, FileSelector, FileTransferOffer,
    Operation, SessionDescription, Setup,
};
use rcs_core::service::Protocol;
use rcs_core::service::Side;
use rcs_core::sip::{self, Dialog, Method, NameAddr, RequestBuilder, SipMessage, SipUri};

pub use rcs_testkit::{DOMAIN, Net, file_bytes, password_of};

/// A user agent: a SIP connection and an MSRP connection to one server.
pub struct User {
    pub name: String,
    pub aor: String,
    pub server: Side,
    pub sip: String,
    pub msrp: String,
    pub host: String,
    pub ids: TokenSource,
    connections: u32,
}

impl User {
    pub fn new(name: &str, server: Side, seed: u8) -> Self {
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

    pub fn send_sip(&self, net: &mut Net, message: &SipMessage) {
        net.send(self.server, &self.sip, Protocol::Sip, message.to_bytes());
    }

    pub fn send_raw_sip(&self, net: &mut Net, message: &[u8]) {
        let message = Bytes::copy_from_slice(message);
        net.send(self.server, &self.sip, Protocol::Sip, message);
    }

    /// The frames reach the server together, as a gateway request carries them.
    pub fn send_msrp(&self, net: &mut Net, frames: Vec<Bytes>) {
        let events = frames.into_iter().map(WsEvent::Binary).collect();
        net.grip(self.server, &self.msrp, Protocol::Msrp, events);
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

    /// REGISTER, answering the digest challenge as the widely used browser SIP libraries do (the
    /// first `WWW-Authenticate`, MD5) with [`password_of`] the user, whose account is created
    /// first; returns the final response.
    pub fn register(&mut self, net: &mut Net, delivery: Option<&str>) -> SipMessage {
        let account = AccountChange::new(&self.name, DOMAIN, &password_of(&self.name));
        net.create_account(account.into_account(net.now));
        let challenged = self.register_with(net, delivery, None);
        if challenged.status() != Some(401) {
            return challenged;
        }
        let first = challenged
            .header_values("WWW-Authenticate")
            .next()
            .expect("a challenge");
        let challenge = Challenge::parse(first).expect("a valid challenge");
        let cnonce = self.ids.token(8);
        let credentials = challenge.answer(
            &self.name,
            &password_of(&self.name),
            "REGISTER",
            &format!("sip:{DOMAIN}"),
            &cnonce,
            1,
        );
        self.register_with(net, delivery, Some(&credentials.to_string()))
    }

    /// One REGISTER with `authorization` (if any); returns its answer.
    pub fn register_with(
        &mut self,
        net: &mut Net,
        delivery: Option<&str>,
        authorization: Option<&str>,
    ) -> SipMessage {
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
        if let Some(authorization) = authorization {
            builder = builder.header("Authorization", authorization);
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

/// The name of the file a [`FileSender`] offers.
const SENT_NAME: &str = "holiday photo.jpg";
/// The type of the file a [`FileSender`] offers.
const SENT_TYPE: &str = "image/jpeg";
/// SENDs per edge request (the gateway batches several WebSocket events into one).
const SENDS_PER_REQUEST: usize = 4;

/// What a sender does: offer, answer, ACK, then the file in MSRP chunks with a window in flight.
pub struct FileSender<'a> {
    pub data: &'a Bytes,
    pub chunk_size: u64,
    pub window: usize,
    /// Stop (drop the MSRP connection) once this many bytes are acknowledged.
    pub stop_after: Option<u64>,
    /// Start sending at this byte instead of where the server asks.
    pub start_at: Option<u64>,
    /// Announce this digest instead of the file's own.
    pub announce: Option<ContentDigest>,
    /// Abort the file (a `#` chunk) once this many bytes are acknowledged, and stop.
    pub abort_after: Option<u64>,
}

impl<'a> FileSender<'a> {
    pub fn new(data: &'a Bytes) -> Self {
        Self {
            data,
            chunk_size: 64 * 1024,
            window: 8,
            stop_after: None,
            start_at: None,
            announce: None,
            abort_after: None,
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
            accept_types: vec![SENT_TYPE.into()],
            accept_wrapped_types: Vec::new(),
            max_size: None,
            setup: Setup::Active,
            operation: Operation::Push,
            file_selector: FileSelector {
                name: Some(SENT_NAME.into()),
                content_type: Some(SENT_TYPE.into()),
                size: Some(self.data.len() as u64),
                hashes: vec![FileHash {
                    algorithm: "sha-256".into(),
                    bytes: self
                        .announce
                        .unwrap_or_else(|| ContentDigest::of(self.data))
                        .as_bytes()
                        .to_vec(),
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
            SENT_TYPE,
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
            if self
                .abort_after
                .is_some_and(|limit| window.acknowledged() >= limit)
            {
                let abort = chunker
                    .abort(&user.ids.msrp_id(), window.acknowledged())
                    .unwrap();
                user.send_msrp(net, vec![encode(&Frame::Request(abort))]);
                for bye in user.answer_requests(net) {
                    if *bye.method() == Method::Bye {
                        upload.bye_reason = bye.header("Reason").map(str::to_owned);
                    }
                }
                return upload;
            }
            let mut plans = Vec::new();
            while let Some(plan) = window.next_chunk(&mut user.ids, net.now) {
                plans.push(plan);
            }
            for batch in plans.chunks(SENDS_PER_REQUEST) {
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
    pub digest: Option<ContentDigest>,
    /// Whether the connection was dropped on purpose before the end.
    pub interrupted: bool,
    /// The contiguous bytes acknowledged to the server.
    pub acknowledged: u64,
    /// The file-info a pull offer carried.
    pub file_info: Option<FileInfoDocument>,
    /// The client's MSRP session, the server's path and the file, to bind again after a drop.
    pub session: String,
    pub server_path: Option<MsrpUri>,
    pub selector: Option<FileSelector>,
    /// The acknowledgements a silent recipient held back, to send late, and the contiguous bytes
    /// it received (those included).
    pub held_back: Vec<Bytes>,
    pub received: u64,
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
        data: Vec<u8>,
        from: u64,
    ) -> Received {
        let local = user.msrp_uri(session);
        let bind = Request::new(
            &user.ids.msrp_id(),
            msrp::Method::Send,
            vec![server_path.clone()],
            vec![local],
        )
        .unwrap();
        user.send_msrp(net, vec![encode(&Frame::Request(bind))]);
        if let Some(old) = &self.close_after_bind {
            net.disconnect(user.server, old);
        }
        self.take_chunks(net, user, session, server_path, selector, data, from)
    }

    /// Goes on taking chunks over the connection that was receiving `cut`, without binding it
    /// again: the server must carry on by itself.
    pub fn carry_on(&self, net: &mut Net, user: &mut User, cut: Received) -> Received {
        let server_path = cut.server_path.clone().expect("the server's path");
        let selector = cut.selector.clone().expect("the file");
        self.take_chunks(
            net,
            user,
            &cut.session,
            server_path,
            &selector,
            cut.data,
            cut.received,
        )
    }

    /// Takes chunks until the file is complete (see [`FileReceiver::receive`]).
    #[allow(clippy::too_many_arguments)]
    fn take_chunks(
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
                    held_back: answers,
                    received: have.contiguous_prefix(),
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
        // The receiver AS hangs up after the REPORT: the BYE is answered.
        user.answer_requests(net);
        Received {
            data,
            digest: Some(digest),
            acknowledged: size,
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

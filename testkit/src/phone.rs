//! A user's phone (one device): the real client [`UserAgent`] with its one SIP connection, to the
//! sender AS, and an MSRP connection to each server, through an [`Edge`], and what its application
//! holds: the file it sends, or the bytes written so far of the file it receives. A test moves
//! messages with [`run`] until nothing moves any more.

use bytes::Bytes;
use rcs_core::accounts::{Account, AccountChange};
use rcs_core::client::{
    ChatId, Config, Event, IncomingFile, Link, OutgoingFile, Output, Password, Refusal,
    TransferEvent, TransferId, UserAgent,
};
use rcs_core::first_value::ContentDigest;
use rcs_core::grip::WsEvent;
use rcs_core::ids::Entropy;
use rcs_core::service::{Delivery, Protocol, Side};
use rcs_core::sip::Reason;
use rcs_core::time::Timestamp;

use crate::config::DOMAIN;

/// What phones talk to: one GRIP request per call, and what the gateway delivered.
pub trait Edge {
    /// One GRIP request of `connection` to the `side` server; the gateway carries out the reply.
    fn grip(&mut self, side: Side, connection: &str, protocol: Protocol, events: Vec<WsEvent>);
    /// Everything delivered to `connection` since the last call.
    fn take(&mut self, connection: &str) -> Vec<Bytes>;
    /// `connection` drops; the `side` server is told.
    fn disconnect(&mut self, side: Side, connection: &str);
    /// The time now.
    fn now(&self) -> Timestamp;
    /// Creates (or replaces) an account, as the deployment's administrator does.
    fn create_account(&mut self, account: Account);
}

/// The password of `user`'s account in tests.
pub fn password_of(user: &str) -> String {
    format!("{user}'s password")
}

impl Edge for crate::Net {
    fn grip(&mut self, side: Side, connection: &str, protocol: Protocol, events: Vec<WsEvent>) {
        crate::Net::grip(self, side, connection, protocol, events);
    }

    fn take(&mut self, connection: &str) -> Vec<Bytes> {
        crate::Net::take(self, connection)
    }

    fn disconnect(&mut self, side: Side, connection: &str) {
        crate::Net::disconnect(self, side, connection);
    }

    fn now(&self) -> Timestamp {
        self.now
    }

    fn create_account(&mut self, account: Account) {
        crate::Net::create_account(self, account);
    }
}

/// Alice's phone and Bob's, both registered, Bob with `bob_delivery`: the two users most tests
/// need.
pub fn alice_and_bob(edge: &mut impl Edge, bob_delivery: Delivery) -> (Phone, Phone) {
    let mut alice = Phone::new("alice", 1);
    let mut bob = Phone::new("bob", 2);
    alice.register(edge, None);
    bob.register(edge, Some(bob_delivery));
    (alice, bob)
}

/// One user's agent, connections and file; see the module doc.
pub struct Phone {
    /// The agent.
    pub ua: UserAgent,
    /// What the phone's connection ids start with (`bob`, or `bob-laptop` for one of bob's
    /// devices).
    label: String,
    /// The SIP connection's id (to the sender AS).
    pub sip: String,
    /// The id of the MSRP connection to the sender AS (files sent).
    pub msrp_out: String,
    /// The id of the MSRP connection to the receiver AS (files received).
    pub msrp_in: String,
    connections: u32,
    /// Everything the agent reported, in order.
    pub events: Vec<Event>,
    /// The file being sent.
    pub source: Bytes,
    /// What was written of the file being received.
    pub written: Vec<u8>,
    /// Accept offers, asking for the bytes from here (pull); `None` leaves them unanswered.
    pub accept_from: Option<u64>,
    /// Report a wrong digest of what was received.
    pub wrong_digest: bool,
}

impl Phone {
    /// `name`'s phone in [`DOMAIN`] (over TLS), its randomness (and so its `+sip.instance`)
    /// drawn from `seed`.
    pub fn new(name: &str, seed: u8) -> Self {
        Self::in_domain(DOMAIN, name, seed)
    }

    /// `name`'s phone in `domain`.
    pub fn in_domain(domain: &str, name: &str, seed: u8) -> Self {
        Self::build(domain, name, name, seed)
    }

    /// One of `name`'s devices (`device`: `laptop`, `phone`), with connection ids of its own.
    pub fn device(name: &str, device: &str, seed: u8) -> Self {
        Self::build(DOMAIN, name, &format!("{name}-{device}"), seed)
    }

    fn build(domain: &str, name: &str, label: &str, seed: u8) -> Self {
        let mut config = Config::new(name, domain);
        config.secure = true;
        let mut ua = UserAgent::new(config, Entropy([seed; 32])).expect("a valid user name");
        ua.set_password(Password::new(password_of(name)));
        Self {
            ua,
            label: label.to_owned(),
            sip: format!("{label}-sip-0"),
            msrp_out: format!("{label}-msrp-out-0"),
            msrp_in: format!("{label}-msrp-in-0"),
            connections: 0,
            events: Vec::new(),
            source: Bytes::new(),
            written: Vec::new(),
            accept_from: Some(0),
            wrong_digest: false,
        }
    }

    /// The user's address of record.
    pub fn aor(&self) -> String {
        self.ua.aor().to_string()
    }

    /// Creates the user's account with [`password_of`] the user (if the test has not already),
    /// registers with `delivery` (`None`: the server's default), answering the digest challenge,
    /// and asserts it was granted.
    ///
    /// # Panics
    /// If the server does not grant the registration.
    pub fn register(&mut self, edge: &mut impl Edge, delivery: Option<Delivery>) {
        let config = self.ua.config();
        let account = AccountChange::new(&config.user, &config.domain, &password_of(&config.user));
        edge.create_account(account.into_account(edge.now()));
        self.ua.register(delivery).expect("a REGISTER");
        run(edge, &mut [self], |_| false);
        assert!(
            self.events
                .iter()
                .any(|e| matches!(e, Event::Registered { .. })),
            "{:?}",
            self.events
        );
    }

    /// Offers `data` to `to` as `name`, with `content_type`; the transfer runs as phones run.
    pub fn send_file(
        &mut self,
        to: &str,
        name: &str,
        content_type: &str,
        data: &Bytes,
    ) -> TransferId {
        self.source = data.clone();
        let file = OutgoingFile {
            name: name.into(),
            content_type: content_type.into(),
            size: data.len() as u64,
            sha256: ContentDigest::of(data).0,
        };
        self.ua.send_file(to, file).expect("an offer")
    }

    /// Sends a text chat to `to`; [`Phone::chat_status`] tells how it was answered once the phones
    /// ran.
    pub fn chat(&mut self, to: &str, text: &str) -> ChatId {
        self.ua
            .chat(
                to,
                "text/plain;charset=UTF-8",
                Bytes::copy_from_slice(text.as_bytes()),
            )
            .expect("a chat")
    }

    /// The status of the answer to `chat`, accepted or refused; `None` while unanswered.
    pub fn chat_status(&self, chat: ChatId) -> Option<u16> {
        let accepted = self.events.iter().find_map(|event| match event {
            Event::ChatSent { chat: id, status } if *id == chat => Some(*status),
            _ => None,
        });
        accepted.or_else(|| self.chat_refusal(chat).map(|refusal| refusal.status))
    }

    /// Why `chat` was refused, if it was.
    pub fn chat_refusal(&self, chat: ChatId) -> Option<&Refusal> {
        self.events.iter().find_map(|event| match event {
            Event::ChatFailed { chat: id, refusal } if *id == chat => Some(refusal),
            _ => None,
        })
    }

    /// The MSRP connection to the receiver AS drops and a new one opens; the agent binds its
    /// deliveries to it.
    pub fn reconnect_msrp(&mut self, edge: &mut impl Edge) {
        edge.disconnect(Side::Receiver, &self.msrp_in.clone());
        self.connections += 1;
        self.msrp_in = format!("{}-msrp-in-{}", self.label, self.connections);
    }

    /// Opens fresh connections (the old ones are left as they are).
    pub fn reconnect(&mut self) {
        self.connections += 1;
        let label = &self.label;
        self.sip = format!("{label}-sip-{}", self.connections);
        self.msrp_out = format!("{label}-msrp-out-{}", self.connections);
        self.msrp_in = format!("{label}-msrp-in-{}", self.connections);
    }

    /// Every transfer event, in order.
    pub fn transfer_events(&self) -> Vec<&TransferEvent> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Transfer { event, .. } => Some(event),
                _ => None,
            })
            .collect()
    }

    /// The first failure of a transfer.
    pub fn failure(&self) -> Option<&Refusal> {
        self.transfer_events().into_iter().find_map(|e| match e {
            TransferEvent::Failed(refusal) => Some(refusal),
            _ => None,
        })
    }

    /// How `transfer` failed, if it did.
    pub fn failure_of(&self, transfer: TransferId) -> Option<&Refusal> {
        self.events.iter().find_map(|event| match event {
            Event::Transfer {
                id,
                event: TransferEvent::Failed(refusal),
            } if *id == transfer => Some(refusal),
            _ => None,
        })
    }

    /// The Reason of the BYE that ended a transfer.
    pub fn bye_reason(&self) -> Option<Reason> {
        self.transfer_events().into_iter().find_map(|e| match e {
            TransferEvent::Ended { reason } => reason.clone(),
            _ => None,
        })
    }

    /// The status of the REPORT about a whole sent file.
    pub fn report(&self) -> Option<u16> {
        self.transfer_events().into_iter().find_map(|e| match e {
            TransferEvent::Report { status, .. } => Some(*status),
            _ => None,
        })
    }

    /// Whether a transfer ended with the server's BYE.
    pub fn ended(&self) -> bool {
        self.transfer_events()
            .iter()
            .any(|e| matches!(e, TransferEvent::Ended { .. }))
    }

    /// The files offered, in order.
    pub fn offers(&self) -> Vec<&IncomingFile> {
        self.transfer_events()
            .into_iter()
            .filter_map(|e| match e {
                TransferEvent::Offered(file) => Some(file),
                _ => None,
            })
            .collect()
    }

    /// The id of the first offer.
    ///
    /// # Panics
    /// If no offer arrived.
    pub fn offered_id(&self) -> TransferId {
        self.events
            .iter()
            .find_map(|e| match e {
                Event::Transfer {
                    id,
                    event: TransferEvent::Offered(_),
                } => Some(*id),
                _ => None,
            })
            .expect("an offer arrived")
    }

    /// The chats that arrived, as text, in order.
    pub fn chats(&self) -> Vec<String> {
        self.chats_from()
            .into_iter()
            .map(|(_, text)| text)
            .collect()
    }

    /// The chats that arrived, each with its sender's URI, in order.
    pub fn chats_from(&self) -> Vec<(String, String)> {
        self.events
            .iter()
            .filter_map(|event| match event {
                Event::ChatReceived { from, body, .. } => {
                    Some((from.clone(), String::from_utf8_lossy(body).into_owned()))
                }
                _ => None,
            })
            .collect()
    }

    /// Carries out every output in order; whether there was any.
    pub fn flush(&mut self, edge: &mut impl Edge) -> bool {
        let mut any = false;
        // What waits for one MSRP connection, and which.
        let mut msrp: (Side, Vec<WsEvent>) = (Side::Sender, Vec::new());
        while let Some(output) = self.ua.poll_output() {
            any = true;
            match output {
                Output::Transmit {
                    link: Link::Sip,
                    message,
                } => {
                    self.send_msrp(edge, &mut msrp);
                    edge.grip(
                        Side::Sender,
                        &self.sip,
                        Protocol::Sip,
                        vec![WsEvent::Text(message)],
                    );
                }
                Output::Transmit {
                    link: Link::Msrp(server),
                    message,
                } => {
                    if msrp.0 != server {
                        self.send_msrp(edge, &mut msrp);
                        msrp.0 = server;
                    }
                    msrp.1.push(WsEvent::Binary(message));
                }
                Output::Event(event) => {
                    self.apply(&event, edge.now());
                    self.events.push(event);
                }
            }
        }
        self.send_msrp(edge, &mut msrp);
        any
    }

    /// The id of the MSRP connection to `server`.
    pub fn msrp_to(&self, server: Side) -> &str {
        match server {
            Side::Sender => &self.msrp_out,
            Side::Receiver => &self.msrp_in,
        }
    }

    /// A gateway batches the WebSocket messages of one connection into one edge request.
    fn send_msrp(&self, edge: &mut impl Edge, (server, batch): &mut (Side, Vec<WsEvent>)) {
        if !batch.is_empty() {
            let connection = self.msrp_to(*server).to_owned();
            edge.grip(*server, &connection, Protocol::Msrp, std::mem::take(batch));
        }
    }

    fn apply(&mut self, event: &Event, now: Timestamp) {
        let Event::Transfer { id, event } = event else {
            return;
        };
        match event {
            TransferEvent::NeedBytes { range } => {
                let data = self.source.slice(range.start as usize..range.end as usize);
                self.ua
                    .provide_bytes(*id, range.start, data, now)
                    .expect("the bytes asked for");
            }
            TransferEvent::Offered(file) => {
                self.written = vec![0; file.size as usize];
                if let Some(from) = self.accept_from {
                    self.ua.accept(*id, from).expect("an offer to accept");
                }
            }
            TransferEvent::Write { offset, data } => {
                let at = *offset as usize;
                self.written[at..at + data.len()].copy_from_slice(data);
            }
            TransferEvent::Received { .. } => {
                let mut digest = ContentDigest::of(&self.written).0;
                if self.wrong_digest {
                    digest[0] ^= 1;
                }
                self.ua
                    .digest_computed(*id, digest)
                    .expect("a transfer waiting for its digest");
            }
            _ => {}
        }
    }

    /// Feeds everything the server sent; whether there was any.
    pub fn receive(&mut self, edge: &mut impl Edge) -> bool {
        let sip = edge.take(&self.sip);
        let mut any = !sip.is_empty();
        for message in sip {
            self.ua.handle_sip(&message, edge.now());
        }
        for server in [Side::Sender, Side::Receiver] {
            let msrp = edge.take(self.msrp_to(server));
            any |= !msrp.is_empty();
            for message in msrp {
                self.ua.handle_msrp(server, message, edge.now());
            }
        }
        any
    }
}

/// Moves messages both ways until nothing moves or `stop` holds.
///
/// # Panics
/// If the phones never go quiet.
pub fn run(edge: &mut impl Edge, phones: &mut [&mut Phone], stop: impl Fn(&[&mut Phone]) -> bool) {
    for _ in 0..100_000 {
        let mut any = false;
        for phone in phones.iter_mut() {
            any |= phone.flush(edge);
            any |= phone.receive(edge);
        }
        if !any || stop(phones) {
            return;
        }
    }
    panic!("the phones never went quiet");
}

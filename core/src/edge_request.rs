//! One edge request, driven once: how an application server's request runs, from the gateway's
//! events (or the other server's SIP request, or due timers) to the reply, without doing any I/O.
//!
//! An edge function lives for one HTTP request. [`EdgeRequest`] takes what that request carries and
//! a fresh [`Engine`], and hands back [`Action`]s for the caller to carry out, in order:
//!
//! 1. [`Action::Read`]: read these keys (concurrently, if the platform can) and answer with
//!    [`EdgeRequest::answer_reads`];
//! 2. [`Action::Write`]: apply the writes of one input, in order, and answer with
//!    [`EdgeRequest::answer_writes`]. A run of sets can go as one batch (`set-many`), a run of
//!    deletes as another; a [`StoreOp::Swap`] is a compare-and-swap, and one that finds another
//!    value makes the driver take back what the input sent and handle it again from what the
//!    store now holds (a few times at most, then the input fails with
//!    [`StoreError::Contended`]). Writes come before any publish and before a peer request that
//!    follows them;
//! 3. [`Action::PeerRequest`]: POST this SIP request to the receiver AS (`message/sip`) and answer
//!    with [`EdgeRequest::answer_peer`] (a failure becomes a `503` for the same transaction, so the
//!    sender AS ends its user's session with a reason);
//! 4. [`Action::Publish`]: POST this body to the gateway's publish endpoint (a lost publish is
//!    logged, not fatal: the store already holds the new state);
//! 5. [`Action::Done`]: the [`Reply`]: the events for this request's connection, or the answer to a
//!    peer request.
//!
//! The driver owns everything between: the events become inputs in order (consecutive MSRP
//! messages as one input, so a run of acknowledgements refills the window once), `OPEN` is
//! accepted and subscribes the connection to its own channel, a `PING` is answered with a `PONG`,
//! a `CLOSE` is echoed and closes the connection for the server, a message for this request's
//! connection goes into the reply and one for any other connection is published to that
//! connection's channel ([`grip::connection_channel`]), in publish bodies the gateway accepts,
//! and a timer is a store write under [`keys::timer`]. A message for a user is always addressed to
//! the one connection the user's registration is bound to, so a connection the user has replaced
//! gets nothing more, on every gateway, with no subscription to change on another connection.
//!
//! The Spin components, the test kit and the benchmarks all run requests through this driver; they
//! only differ in how they carry out the actions.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::grip::{self, Control, PUBLISH_LIMIT, Publish, WsEvent};
use crate::ids::Entropy;
use crate::server::engine::Logic;
use crate::server::{Engine, Input, Output};
use crate::service::Protocol;
use crate::sip;
use crate::store::{StoreError, StoreOp, keys};
use crate::time::Timestamp;

/// Something for the caller to carry out; see the module doc for the order and the answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read these keys; answer with [`EdgeRequest::answer_reads`], values in the same order.
    Read(Vec<String>),
    /// Apply these writes ([`StoreOp::Set`], [`StoreOp::Delete`], [`StoreOp::Swap`]) in order;
    /// answer with [`EdgeRequest::answer_writes`].
    Write(Vec<StoreOp>),
    /// POST this SIP request to the receiver AS; answer with [`EdgeRequest::answer_peer`].
    PeerRequest(Bytes),
    /// POST this JSON body to the gateway's publish endpoint.
    Publish(String),
    /// The request is done.
    Done(Reply),
}

/// What the request answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    /// The events for the gateway connection of a GRIP request, in order.
    pub events: Vec<WsEvent>,
    /// Whether the request opened its connection (the reply then names the subprotocol and turns
    /// the GRIP extension on).
    pub opened: bool,
    /// The server's answer to a peer request ([`EdgeRequest::peer`]); `None` if the request was
    /// not one a server answers.
    pub peer_answer: Option<Bytes>,
    /// What the server found wrong with the store while it served the request (a record it could
    /// not read), for the operator's log.
    pub faults: Vec<String>,
}

impl Reply {
    /// The events as a GRIP response body (`application/websocket-events`).
    pub fn body(&self) -> Vec<u8> {
        let mut body = Vec::new();
        grip::encode_events(&self.events, &mut body);
        body
    }
}

/// One step of a request: an input for the engine, or an event for the reply that the gateway's
/// own events call for (in order with the engine's messages).
#[derive(Debug)]
enum Step {
    Input(Input),
    Reply(WsEvent),
}

/// How the writes of an [`Action::Write`] went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Written {
    /// All were applied.
    All,
    /// The [`StoreOp::Swap`] of `key` found another value: it and the writes after it were not
    /// applied.
    Conflict {
        /// The key another request wrote first.
        key: String,
    },
}

/// How many times an input is handled before a conflict makes it fail.
const MAX_ATTEMPTS: u32 = 8;

/// What the driver waits for before it can go on.
#[derive(Debug)]
enum Waiting {
    Nothing,
    Reads(Vec<String>),
    Writes(Vec<StoreOp>),
    Peer(Bytes),
}

/// The input being handled, and what the reply held before it, so that a write conflict can take
/// back what it sent and handle it again.
#[derive(Debug)]
struct Attempt {
    input: Input,
    entropy: Entropy,
    attempts: u32,
    events: usize,
    publishes: usize,
    faults: usize,
    peer_answer: Option<Bytes>,
}

/// One edge request of an application server; see the module doc.
pub struct EdgeRequest<L> {
    engine: Engine<L>,
    /// The gateway connection of a GRIP request.
    connection: Option<String>,
    steps: VecDeque<Step>,
    now: Timestamp,
    seed: Entropy,
    drawn: u64,
    waiting: Waiting,
    /// Reads the engine asked for, answered together once its outputs so far are carried out.
    reads: Vec<String>,
    /// The writes of the input being handled, not yet given to the caller: those before its
    /// first peer request.
    writes: Vec<StoreOp>,
    /// The input's peer requests, in order, each with the writes that came after it: a peer
    /// request goes once the writes before it are applied, and the writes after it follow its
    /// answer.
    peer_requests: VecDeque<(Bytes, Vec<StoreOp>)>,
    /// The answers to the input's peer requests, handled as inputs of their own once the input's
    /// writes are all applied.
    peer_answers: VecDeque<Input>,
    attempt: Option<Attempt>,
    publishes: Vec<Publish>,
    bodies: Option<VecDeque<String>>,
    reply: Reply,
}

impl<L: Logic> EdgeRequest<L> {
    fn new(logic: L, connection: Option<String>, now: Timestamp, seed: Entropy) -> Self {
        Self {
            engine: Engine::new(logic),
            connection,
            steps: VecDeque::new(),
            now,
            seed,
            drawn: 0,
            waiting: Waiting::Nothing,
            reads: Vec::new(),
            writes: Vec::new(),
            peer_requests: VecDeque::new(),
            peer_answers: VecDeque::new(),
            attempt: None,
            publishes: Vec::new(),
            bodies: None,
            reply: Reply::default(),
        }
    }

    /// A GRIP WebSocket-over-HTTP request for `connection` (its `Connection-Id`), speaking
    /// `protocol`, with the events of its body, at `now`, with `seed` for every input's randomness.
    pub fn grip(
        logic: L,
        connection: &str,
        protocol: Protocol,
        events: Vec<WsEvent>,
        now: Timestamp,
        seed: Entropy,
    ) -> Self {
        let mut request = Self::new(logic, Some(connection.to_owned()), now, seed);
        let mut msrp = Vec::new();
        let closed = || Input::Closed {
            connection: connection.to_owned(),
        };
        for event in events {
            let steps = match event {
                // RFC 7118 and RFC 7977 allow either frame type for their messages.
                WsEvent::Text(message) | WsEvent::Binary(message) if protocol == Protocol::Msrp => {
                    msrp.push(message);
                    continue;
                }
                WsEvent::Pong(_) => continue,
                WsEvent::Text(message) | WsEvent::Binary(message) => {
                    vec![Step::Input(Input::Sip {
                        connection: connection.to_owned(),
                        message,
                    })]
                }
                WsEvent::Open => {
                    request.reply.opened = true;
                    let subscribe = Control::Subscribe {
                        channel: grip::connection_channel(connection),
                    };
                    vec![Step::Reply(WsEvent::Open), Step::Reply(subscribe.event())]
                }
                WsEvent::Ping(content) => vec![Step::Reply(WsEvent::Pong(content))],
                // Completes the close handshake with the same status.
                WsEvent::Close(status) => {
                    vec![Step::Reply(WsEvent::Close(status)), Step::Input(closed())]
                }
                WsEvent::Disconnect => vec![Step::Input(closed())],
            };
            request.push_msrp(connection, &mut msrp);
            request.steps.extend(steps);
        }
        request.push_msrp(connection, &mut msrp);
        request
    }

    /// A SIP request from the other application server (`POST /receiver/peer`); the reply's
    /// [`Reply::peer_answer`] is the server's answer.
    pub fn peer(logic: L, message: Bytes, now: Timestamp, seed: Entropy) -> Self {
        let mut request = Self::new(logic, None, now, seed);
        request
            .steps
            .push_back(Step::Input(Input::PeerRequest { message }));
        request
    }

    /// Timers of this server that are due, by name, in order. Their keys ([`keys::timer`]) must be
    /// deleted before the request runs, so that a timer the server sets again survives.
    pub fn timers(logic: L, names: Vec<String>, now: Timestamp, seed: Entropy) -> Self {
        let mut request = Self::new(logic, None, now, seed);
        request.steps.extend(
            names
                .into_iter()
                .map(|key| Step::Input(Input::Timer { key })),
        );
        request
    }

    fn push_msrp(&mut self, connection: &str, messages: &mut Vec<Bytes>) {
        if !messages.is_empty() {
            self.steps.push_back(Step::Input(Input::Msrp {
                connection: connection.to_owned(),
                messages: std::mem::take(messages),
            }));
        }
    }

    /// The logic, for its configuration.
    pub fn logic(&self) -> &L {
        self.engine.logic()
    }

    /// The next thing to carry out. While a read, a write or a peer request is unanswered, it is
    /// asked for again.
    pub fn next_action(&mut self) -> Action {
        match &self.waiting {
            Waiting::Nothing => {}
            Waiting::Reads(keys) => return Action::Read(keys.clone()),
            Waiting::Writes(writes) => return Action::Write(writes.clone()),
            Waiting::Peer(message) => return Action::PeerRequest(message.clone()),
        }
        if let Some(bodies) = &mut self.bodies {
            return match bodies.pop_front() {
                Some(body) => Action::Publish(body),
                None => Action::Done(std::mem::take(&mut self.reply)),
            };
        }
        loop {
            while let Some(output) = self.engine.poll_output() {
                self.route(output);
            }
            if !self.reads.is_empty() {
                let keys = std::mem::take(&mut self.reads);
                self.waiting = Waiting::Reads(keys.clone());
                return Action::Read(keys);
            }
            // The input is handled: its writes go out before anything else happens, each peer
            // request after the writes before it.
            if !self.writes.is_empty() {
                let writes = std::mem::take(&mut self.writes);
                self.waiting = Waiting::Writes(writes.clone());
                return Action::Write(writes);
            }
            if let Some((message, after)) = self.peer_requests.pop_front() {
                self.writes = after;
                self.waiting = Waiting::Peer(message.clone());
                return Action::PeerRequest(message);
            }
            // Then the answers, each an input of its own.
            if let Some(answer) = self.peer_answers.pop_front() {
                let entropy = self.entropy();
                self.start(answer, entropy, 1);
                continue;
            }
            self.attempt = None;
            match self.steps.pop_front() {
                Some(Step::Input(input)) => {
                    let entropy = self.entropy();
                    self.start(input, entropy, 1);
                }
                Some(Step::Reply(event)) => self.reply.events.push(event),
                None => break,
            }
        }
        let publishes = std::mem::take(&mut self.publishes);
        self.bodies = Some(grip::encode_publishes(&publishes, PUBLISH_LIMIT).into());
        self.next_action()
    }

    /// Hands the engine an input, remembering what the reply held before it.
    fn start(&mut self, input: Input, entropy: Entropy, attempts: u32) {
        self.attempt = Some(Attempt {
            input: input.clone(),
            entropy,
            attempts,
            events: self.reply.events.len(),
            publishes: self.publishes.len(),
            faults: self.reply.faults.len(),
            peer_answer: self.reply.peer_answer.clone(),
        });
        self.engine.handle(input, self.now, entropy);
    }

    /// The values of the keys of the last [`Action::Read`], in its order.
    pub fn answer_reads(&mut self, values: Vec<Option<Bytes>>) {
        let Waiting::Reads(keys) = std::mem::replace(&mut self.waiting, Waiting::Nothing) else {
            return;
        };
        for (key, value) in keys.iter().zip(values) {
            self.engine.store_value(key, value);
        }
    }

    /// How the writes of the last [`Action::Write`] went. After a conflict, what the input sent is
    /// taken back and it is handled again from what the store holds now.
    pub fn answer_writes(&mut self, written: Written) {
        let Waiting::Writes(_) = std::mem::replace(&mut self.waiting, Waiting::Nothing) else {
            return;
        };
        let Written::Conflict { key } = written else {
            return;
        };
        let attempt = self.attempt.take().expect("writes come from an input");
        // A peer request already made is made again by the next attempt (after the writes before
        // it, as always); handlers make theirs after their own writes, so that this is rare.
        self.writes.clear();
        self.peer_requests.clear();
        self.peer_answers.clear();
        self.reply.events.truncate(attempt.events);
        self.publishes.truncate(attempt.publishes);
        self.reply.faults.truncate(attempt.faults);
        self.reply.peer_answer = attempt.peer_answer;
        // What the engine drew before the conflict is no longer what the store holds.
        while self.engine.poll_output().is_some() {}
        self.engine.forget_reads();
        if attempt.attempts >= MAX_ATTEMPTS {
            let error = StoreError::Contended {
                key,
                attempts: attempt.attempts,
            };
            self.engine
                .fail(&attempt.input, self.now, attempt.entropy, &error);
            return;
        }
        self.start(attempt.input, attempt.entropy, attempt.attempts + 1);
    }

    /// The receiver AS's answer to the last [`Action::PeerRequest`], or why there is none.
    pub fn answer_peer(&mut self, answer: Result<Bytes, String>) {
        let Waiting::Peer(request) = std::mem::replace(&mut self.waiting, Waiting::Nothing) else {
            return;
        };
        let message = answer.unwrap_or_else(|reason| unavailable(&request, &reason));
        self.peer_answers.push_back(Input::PeerResponse { message });
    }

    /// Carries one output out, or keeps it for the action it becomes.
    fn route(&mut self, output: Output) {
        match output {
            // The engine yields every read an attempt missed at once, after the writes of the
            // inputs before it: they are answered together.
            Output::Store(StoreOp::Get { key }) => self.reads.push(key),
            Output::Store(write) => self.write(write),
            Output::Timer { at, key } => self.write(StoreOp::Set {
                key: keys::timer(self.engine.logic().side(), &key),
                value: Bytes::from(at.unix_millis().to_string()),
            }),
            Output::Send {
                connection,
                message,
            } => {
                if self.connection.as_deref() == Some(connection.as_str()) {
                    self.reply.events.push(grip::message_event(&message));
                } else {
                    self.publishes.push(Publish::message(
                        grip::connection_channel(&connection),
                        message,
                    ));
                }
            }
            Output::PeerRequest { message } => self.peer_requests.push_back((message, Vec::new())),
            Output::PeerResponse { message } => self.reply.peer_answer = Some(message),
            Output::Fault(fault) => self.reply.faults.push(fault),
        }
    }

    /// Keeps a write of the input, after its last peer request so far if it made one.
    fn write(&mut self, write: StoreOp) {
        match self.peer_requests.back_mut() {
            Some((_, after)) => after.push(write),
            None => self.writes.push(write),
        }
    }

    fn entropy(&mut self) -> Entropy {
        self.drawn += 1;
        self.seed.derive(self.drawn)
    }
}

/// Whether a timer stored with due time `value` (Unix milliseconds) is due at `now`; `None` if the
/// value is not a time.
pub fn timer_due(value: &[u8], now: Timestamp) -> Option<bool> {
    let millis: u64 = std::str::from_utf8(value).ok()?.trim().parse().ok()?;
    Some(millis <= now.unix_millis())
}

/// A `503` answer to a SIP request, with the reason in a Warning; an empty answer if the request
/// does not parse (the engine then ignores it).
fn unavailable(request: &[u8], reason: &str) -> Bytes {
    let Ok(request) = sip::parse(request, &sip::Limits::default()) else {
        return Bytes::new();
    };
    let Ok(mut response) = sip::response(&request, 503, "Service Unavailable", None) else {
        return Bytes::new();
    };
    // A warning that does not fit is dropped rather than losing the answer.
    let warning = sip::Warning::miscellaneous(crate::service::WARNING_AGENT, reason);
    let _ = response.push_header("Warning", &warning.to_string());
    response.to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::engine::{Interrupt, Tx};

    /// Echoes each SIP message back to its connection, forwards it to the connection its text
    /// names after `to:`, counts it in the store, and asks the peer for `peer` messages.
    struct Echo;

    impl Logic for Echo {
        fn side(&self) -> crate::service::Side {
            crate::service::Side::Receiver
        }

        fn fail(&self, _: &mut Tx<'_>, _: &Input, _: &crate::store::StoreError) {}

        fn handle(&self, tx: &mut Tx<'_>, input: &Input) -> Result<(), Interrupt> {
            match input {
                Input::Sip {
                    connection,
                    message,
                } => {
                    let count = tx.get("count")?.map_or(0, |v| v.len());
                    tx.set("count", Bytes::from(vec![b'x'; count + 1]));
                    tx.emit(Output::Send {
                        connection: connection.clone(),
                        message: message.clone(),
                    });
                    let text = String::from_utf8_lossy(message);
                    if let Some(other) = text.strip_prefix("to:") {
                        tx.emit(Output::Send {
                            connection: other.to_owned(),
                            message: message.clone(),
                        });
                    }
                    if text == "peer" {
                        tx.emit(Output::PeerRequest {
                            message: message.clone(),
                        });
                    }
                    if text == "peer, then write" {
                        tx.emit(Output::PeerRequest {
                            message: message.clone(),
                        });
                        tx.set("session", Bytes::from_static(b"asked"));
                    }
                    if text == "later" {
                        tx.emit(Output::Timer {
                            at: Timestamp::from_unix_millis(9),
                            key: "t1".into(),
                        });
                    }
                }
                Input::Msrp { messages, .. } => {
                    tx.set("batch", Bytes::from(messages.len().to_string()));
                }
                Input::Closed { connection } => tx.delete(&format!("conn/{connection}")),
                Input::PeerResponse { message } => {
                    tx.set("peer", message.clone());
                    if tx.get("session")?.is_some() {
                        tx.set("session", Bytes::from_static(b"answered"));
                    }
                }
                _ => {}
            }
            Ok(())
        }
    }

    const NOW: Timestamp = Timestamp::from_unix_millis(5);

    type Map = std::collections::BTreeMap<String, Bytes>;

    /// Another request's change to the store.
    type Meddle = Box<dyn FnOnce(&mut Map)>;

    /// Applies writes in order over a plain map, as a platform does, up to a conflicting swap.
    fn write_all(store: &mut Map, writes: &[StoreOp]) -> Written {
        for write in writes {
            match write.clone() {
                StoreOp::Set { key, value } => {
                    store.insert(key, value);
                }
                StoreOp::Delete { key } => {
                    store.remove(&key);
                }
                StoreOp::Swap {
                    key,
                    expected,
                    value,
                } => {
                    if store.get(&key) != expected.as_ref() {
                        return Written::Conflict { key };
                    }
                    match value {
                        Some(value) => store.insert(key, value),
                        None => store.remove(&key),
                    };
                }
                StoreOp::Get { .. } => panic!("a read among writes"),
            }
        }
        Written::All
    }

    /// Carries out every action over a plain map, answering peer requests with `peer`.
    fn run(
        request: EdgeRequest<Echo>,
        store: &mut Map,
        peer: Result<Bytes, String>,
    ) -> (Vec<Action>, Reply) {
        run_meddled(request, store, peer, None)
    }

    /// Like [`run`], with another request changing the store just before the first writes.
    fn run_meddled(
        mut request: EdgeRequest<Echo>,
        store: &mut Map,
        peer: Result<Bytes, String>,
        mut meddle: Option<Meddle>,
    ) -> (Vec<Action>, Reply) {
        let mut actions = Vec::new();
        loop {
            let action = request.next_action();
            match &action {
                Action::Read(keys) => {
                    let values = keys.iter().map(|k| store.get(k).cloned()).collect();
                    request.answer_reads(values);
                }
                Action::Write(writes) => {
                    if let Some(meddle) = meddle.take() {
                        meddle(store);
                    }
                    request.answer_writes(write_all(store, writes));
                }
                Action::PeerRequest(_) => request.answer_peer(peer.clone()),
                Action::Publish(_) => {}
                Action::Done(reply) => return (actions, reply.clone()),
            }
            actions.push(action);
        }
    }

    fn text(s: &'static str) -> WsEvent {
        WsEvent::Text(Bytes::from_static(s.as_bytes()))
    }

    #[test]
    fn writes_after_a_peer_request_land_before_its_answer_is_handled() {
        let mut store = Map::new();
        let request = EdgeRequest::grip(
            Echo,
            "c1",
            Protocol::Sip,
            vec![text("peer, then write")],
            NOW,
            Entropy([1; 32]),
        );
        let (actions, _) = run(request, &mut store, Ok(Bytes::from_static(b"200")));
        let steps: Vec<String> = actions
            .iter()
            .filter_map(|action| match action {
                Action::Write(writes) => Some(
                    writes
                        .iter()
                        .map(|w| w.key().to_owned())
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                Action::PeerRequest(_) => Some("peer request".into()),
                _ => None,
            })
            .collect();
        // The input's writes before its peer request, the request, the writes after it; then the
        // answer, an input of its own, which reads what the first wrote.
        assert_eq!(
            steps,
            ["count", "peer request", "session", "peer,session"],
            "{actions:?}"
        );
        assert_eq!(store["session"], Bytes::from_static(b"answered"));
    }

    #[test]
    fn events_become_inputs_and_the_reply_keeps_their_order() {
        let mut store = Default::default();
        let events = vec![
            WsEvent::Open,
            text("hello"),
            WsEvent::Ping(Bytes::from_static(b"p")),
            text("again"),
            WsEvent::Pong(Bytes::new()),
            WsEvent::Close(Some((1000, "bye".into()))),
        ];
        let request = EdgeRequest::grip(Echo, "c1", Protocol::Sip, events, NOW, Entropy([1; 32]));
        let (actions, reply) = run(request, &mut store, Ok(Bytes::new()));
        assert!(reply.opened);
        assert_eq!(
            reply.events,
            vec![
                WsEvent::Open,
                text(r#"c:{"type":"subscribe","channel":"conn:c1"}"#),
                text("m:hello"),
                WsEvent::Pong(Bytes::from_static(b"p")),
                text("m:again"),
                WsEvent::Close(Some((1000, "bye".into()))),
            ]
        );
        assert_eq!(store["count"].len(), 2);
        assert!(actions.contains(&Action::Write(vec![StoreOp::Delete {
            key: "conn/c1".into()
        }])));
        assert!(!actions.iter().any(|a| matches!(a, Action::Publish(_))));
    }

    #[test]
    fn a_write_that_meets_another_requests_is_handled_again_and_loses_neither() {
        let mut store = Map::new();
        store.insert("count".into(), Bytes::from_static(b"x"));
        let events = vec![text("hello")];
        let request = EdgeRequest::grip(Echo, "c1", Protocol::Sip, events, NOW, Entropy([1; 32]));
        // Another request counts one more between this one's read and its write.
        let meddle: Meddle = Box::new(|store: &mut Map| {
            store.insert("count".into(), Bytes::from_static(b"xx"));
        });
        let (actions, reply) = run_meddled(request, &mut store, Ok(Bytes::new()), Some(meddle));
        assert_eq!(store["count"], "xxx", "both counts are kept");
        assert_eq!(
            reply.events,
            vec![text("m:hello")],
            "what the first attempt sent was taken back"
        );
        let swaps: Vec<_> = actions
            .iter()
            .filter_map(|action| match action {
                Action::Write(writes) => Some(writes.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            swaps,
            vec![
                vec![StoreOp::Swap {
                    key: "count".into(),
                    expected: Some(Bytes::from_static(b"x")),
                    value: Some(Bytes::from_static(b"xx")),
                }],
                vec![StoreOp::Swap {
                    key: "count".into(),
                    expected: Some(Bytes::from_static(b"xx")),
                    value: Some(Bytes::from_static(b"xxx")),
                }],
            ]
        );
    }

    #[test]
    fn an_input_that_keeps_conflicting_fails_with_the_reason() {
        let mut store = Map::new();
        let events = vec![text("hello")];
        let mut request =
            EdgeRequest::grip(Echo, "c1", Protocol::Sip, events, NOW, Entropy([1; 32]));
        let mut conflicts = 0;
        let reply = loop {
            match request.next_action() {
                Action::Read(keys) => {
                    let values = keys.iter().map(|k| store.get(k).cloned()).collect();
                    request.answer_reads(values);
                }
                Action::Write(writes) => {
                    assert!(matches!(writes[0], StoreOp::Swap { .. }));
                    conflicts += 1;
                    store.insert("count".into(), Bytes::from(vec![b'y'; conflicts]));
                    request.answer_writes(Written::Conflict {
                        key: "count".into(),
                    });
                }
                Action::Done(reply) => break reply,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(conflicts, MAX_ATTEMPTS as usize);
        assert_eq!(
            reply.faults,
            vec![format!(
                "count kept changing under the request ({MAX_ATTEMPTS} attempts)"
            )]
        );
        assert!(reply.events.is_empty(), "nothing of the attempts was sent");
    }

    #[test]
    fn consecutive_msrp_messages_are_one_input() {
        let mut store = Default::default();
        let events = vec![
            WsEvent::Binary(Bytes::from_static(b"MSRP a 200 OK\r\n")),
            WsEvent::Text(Bytes::from_static(b"MSRP b 200 OK\r\n")),
            WsEvent::Binary(Bytes::from_static(b"MSRP c 200 OK\r\n")),
        ];
        let request = EdgeRequest::grip(Echo, "m1", Protocol::Msrp, events, NOW, Entropy([1; 32]));
        run(request, &mut store, Ok(Bytes::new()));
        assert_eq!(store["batch"], "3");
    }

    #[test]
    fn messages_for_other_connections_are_published_after_every_write() {
        let mut store = Default::default();
        let events = vec![text("to:c2"), text("later")];
        let request = EdgeRequest::grip(Echo, "c1", Protocol::Sip, events, NOW, Entropy([1; 32]));
        let (actions, reply) = run(request, &mut store, Ok(Bytes::new()));
        assert_eq!(reply.events, vec![text("m:to:c2"), text("m:later")]);
        let Some(Action::Publish(body)) = actions.last() else {
            panic!("the publish comes last: {actions:?}");
        };
        assert_eq!(
            grip::decode_publishes(body.as_bytes()),
            Ok(vec![Publish::message(
                "conn:c2".into(),
                Bytes::from_static(b"to:c2")
            )])
        );
        assert_eq!(store["timer/receiver/t1"], "9");
        assert_eq!(timer_due(b"9", NOW), Some(false));
        assert_eq!(timer_due(b"5", NOW), Some(true));
        assert_eq!(timer_due(b"soon", NOW), None);
    }

    #[test]
    fn a_failed_peer_request_becomes_a_503_for_the_same_transaction() {
        let request = b"MESSAGE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/WSS a.invalid;branch=z9hG4bKx\r\nFrom: <sip:a@example.com>;tag=s1\r\nTo: <sip:bob@example.com>\r\nCall-ID: c1\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
        let answer = sip::parse(
            &unavailable(request, "connection refused"),
            &sip::Limits::default(),
        )
        .unwrap();
        assert_eq!(answer.status(), Some(503));
        assert_eq!(answer.from().tag(), Some("s1"));
        assert!(
            answer
                .header("Warning")
                .unwrap()
                .contains("connection refused")
        );
        assert!(unavailable(b"garbage", "x").is_empty());

        let mut store = Default::default();
        let events = vec![text("peer")];
        let request = EdgeRequest::grip(Echo, "c1", Protocol::Sip, events, NOW, Entropy([1; 32]));
        let (actions, _) = run(request, &mut store, Err("connection refused".into()));
        assert!(actions.contains(&Action::PeerRequest(Bytes::from_static(b"peer"))));
        // "peer" is no SIP request, so its 503 is empty.
        assert_eq!(store["peer"], "");
        let answered = EdgeRequest::peer(Echo, Bytes::from_static(b"x"), NOW, Entropy([1; 32]));
        assert_eq!(
            run(answered, &mut store, Ok(Bytes::new())).1.peer_answer,
            None
        );
    }

    #[test]
    fn every_input_draws_its_own_randomness() {
        let seed = Entropy([3; 32]);
        assert_ne!(seed.derive(1), seed.derive(2));
        assert_eq!(seed.derive(1), Entropy([3; 32]).derive(1));
    }
}

//! Both application servers and the shared store in memory, in virtual time, behind the
//! [`Gateway`]: every call is one edge request, run by the core's driver
//! ([`rcs_core::edge_request`]) exactly as the Spin components run it, with its actions carried out
//! here (store operations on a [`MemoryStore`], peer requests to the receiver AS inline, publishes
//! to the gateway). Nothing survives between requests but the store, as on the edge.

use bytes::Bytes;
use rcs_core::accounts::Account;
use rcs_core::edge_request::{Action, EdgeRequest, Reply, Written, timer_due};
use rcs_core::grip::WsEvent;
use rcs_core::ids::Entropy;
use rcs_core::server::{ServerLogic, common};
use rcs_core::server_config::ServerConfig;
use rcs_core::service::{Protocol, Side};
use rcs_core::store::keys::{self, KeyKind};
use rcs_core::store::{KeyValue, KvError, MemoryStore, Record, StoreOp};
use rcs_core::time::Timestamp;

use crate::config::{START, server_config};
use crate::gateway::Gateway;

/// The store, both servers' configurations, the gateway, the clock and what was measured.
pub struct Net {
    /// The shared store.
    pub store: MemoryStore,
    /// The sender AS's configuration.
    pub sender: ServerConfig,
    /// The receiver AS's configuration.
    pub receiver: ServerConfig,
    /// Virtual time; every request moves it 1 ms on.
    pub now: Timestamp,
    seed: u64,
    /// The gateway in front of both servers.
    pub gateway: Gateway,
    /// When set, the receiver AS is unreachable for the sender AS, with this reason.
    pub peer_down: Option<String>,
    /// Bytes of first values that crossed between the two servers, both ways (device hops
    /// apart).
    pub peer_bytes: usize,
    /// The first values' SIP messages that crossed between the two servers, and their answers, in
    /// order.
    pub peer_messages: Vec<Bytes>,
    /// Device hops (a device's SIP for the receiver AS, handed over by the sender AS) and their
    /// answers: how many, and their bytes.
    pub device_hops: usize,
    /// Bytes of the device hops and their answers.
    pub device_hop_bytes: usize,
    /// Upload progress notices (the sender AS waking deliveries of a file still arriving) and
    /// their answers: how many, and their bytes.
    pub progress_hops: usize,
    /// Bytes of the progress notices and their answers.
    pub progress_hop_bytes: usize,
    /// Edge requests made so far.
    pub requests: usize,
    /// The store faults the servers reported, in order (an edge function logs them).
    pub faults: Vec<String>,
    /// The largest value the store was asked to hold.
    pub largest_value: usize,
    /// Writes of a delivery's window record (`msrp/<session>/window/<connection>`).
    pub window_writes: usize,
}

impl Default for Net {
    fn default() -> Self {
        Self::new(
            server_config("sender-as.example.com"),
            server_config("receiver-as.example.com"),
        )
    }
}

impl Net {
    /// The servers with these configurations, the store empty, the clock at [`START`].
    pub fn new(sender: ServerConfig, receiver: ServerConfig) -> Self {
        Self {
            store: MemoryStore::default(),
            sender,
            receiver,
            now: START,
            seed: 0,
            gateway: Gateway::default(),
            peer_down: None,
            peer_bytes: 0,
            peer_messages: Vec::new(),
            device_hops: 0,
            device_hop_bytes: 0,
            progress_hops: 0,
            progress_hop_bytes: 0,
            requests: 0,
            faults: Vec::new(),
            largest_value: 0,
            window_writes: 0,
        }
    }

    /// Creates (or replaces) an account in the store.
    pub fn create_account(&mut self, account: Account) {
        let key = keys::account(&account.user);
        self.store
            .set(&key, account.encode())
            .expect("an account fits the store");
    }

    /// The configuration of the `side` server.
    pub fn config(&self, side: Side) -> &ServerConfig {
        match side {
            Side::Sender => &self.sender,
            Side::Receiver => &self.receiver,
        }
    }

    fn logic(&self, side: Side) -> ServerLogic {
        ServerLogic::new(side, self.config(side).clone()).expect("a valid configuration")
    }

    fn seed(&mut self) -> Entropy {
        self.seed += 1;
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&self.seed.to_be_bytes());
        Entropy(bytes)
    }

    /// One GRIP request of `connection` (opened first if it is new) to the `side` server; the
    /// gateway carries out the reply, which is returned.
    pub fn grip(
        &mut self,
        side: Side,
        connection: &str,
        protocol: Protocol,
        events: Vec<WsEvent>,
    ) -> Reply {
        let events = self.gateway.request_events(connection, events);
        self.gateway.begin_request();
        let reply = self.edge_request(side, (connection, protocol), events);
        self.gateway.apply_reply(connection, &reply.events);
        reply
    }

    /// One message from `connection`, as its own request.
    pub fn send(&mut self, side: Side, connection: &str, protocol: Protocol, message: Bytes) {
        let event = match protocol {
            Protocol::Sip => WsEvent::Text(message),
            Protocol::Msrp => WsEvent::Binary(message),
        };
        self.grip(side, connection, protocol, vec![event]);
    }

    fn edge_request(
        &mut self,
        side: Side,
        (connection, protocol): (&str, Protocol),
        events: Vec<WsEvent>,
    ) -> Reply {
        self.now = self.now.plus_millis(1);
        let (logic, seed) = (self.logic(side), self.seed());
        let request = EdgeRequest::grip(logic, connection, protocol, events, self.now, seed);
        self.carry_out(request)
    }

    /// A SIP request from the sender AS to the receiver AS (`POST /receiver/peer`); its answer.
    pub fn peer(&mut self, message: Bytes) -> Option<Bytes> {
        self.now = self.now.plus_millis(1);
        let (logic, seed) = (self.logic(Side::Receiver), self.seed());
        let request = EdgeRequest::peer(logic, message, self.now, seed);
        self.carry_out(request).peer_answer
    }

    /// Applies one input's writes in order, as the edge's loop does, up to a conflicting swap.
    fn write(&mut self, writes: Vec<StoreOp>) -> Written {
        for write in writes {
            if let StoreOp::Set { key, value }
            | StoreOp::Swap {
                key,
                value: Some(value),
                ..
            } = &write
            {
                self.largest_value = self.largest_value.max(value.len());
                self.window_writes += usize::from(key.contains("/window/"));
            }
            match rcs_core::store::apply(&mut self.store, write) {
                Ok(_) => {}
                Err(KvError::Conflict { key }) => return Written::Conflict { key },
                Err(error) => panic!("the memory store: {error}"),
            }
        }
        Written::All
    }

    /// Carries out every action of one request, as the edge's loop does.
    fn carry_out(&mut self, request: EdgeRequest<ServerLogic>) -> Reply {
        self.carry_out_racing(request, None)
    }

    /// Carries out a request; `meanwhile`, if given, is another request made while this one is
    /// between its reads and its first writes, as when two requests for one record run at once.
    fn carry_out_racing(
        &mut self,
        mut request: EdgeRequest<ServerLogic>,
        mut meanwhile: Option<Meanwhile<'_>>,
    ) -> Reply {
        self.requests += 1;
        loop {
            let action = request.next_action();
            if matches!(action, Action::Write(_))
                && let Some(other) = meanwhile.take()
            {
                other(self);
            }
            match action {
                Action::Read(keys) => {
                    let values = keys
                        .iter()
                        .map(|key| self.store.get(key).expect("the memory store"))
                        .collect();
                    request.answer_reads(values);
                }
                Action::Write(writes) => {
                    let written = self.write(writes);
                    request.answer_writes(written);
                }
                Action::PeerRequest(message) => {
                    let hop = is_device_hop(&message);
                    let progress = is_progress_hop(&message);
                    let answer = match self.peer_down.clone() {
                        Some(reason) => Err(reason),
                        None => self
                            .peer(message.clone())
                            .ok_or_else(|| "no answer".to_owned()),
                    };
                    let answer_len = answer.as_ref().map_or(0, Bytes::len);
                    if progress {
                        self.progress_hops += 1;
                        self.progress_hop_bytes += message.len() + answer_len;
                    } else if hop {
                        self.device_hops += 1;
                        self.device_hop_bytes += message.len() + answer_len;
                    } else {
                        self.peer_bytes += message.len() + answer_len;
                        self.peer_messages.push(message);
                        if let Ok(answer) = &answer {
                            self.peer_messages.push(answer.clone());
                        }
                    }
                    request.answer_peer(answer);
                }
                Action::Publish(body) => self.gateway.publish(&body),
                Action::Done(reply) => {
                    self.faults.extend(reply.faults.iter().cloned());
                    return reply;
                }
            }
        }
    }

    /// `connection` drops: the gateway forgets it and tells the `side` server.
    pub fn disconnect(&mut self, side: Side, connection: &str) {
        self.gateway.close(connection);
        self.edge_request(side, (connection, Protocol::Sip), vec![WsEvent::Disconnect]);
    }

    /// Every connection drops at once (a gateway or server restart); only the store survives.
    pub fn restart(&mut self) {
        self.gateway.close_all();
    }

    /// Fires every timer due now, as `/…/tick` does on each server; how many fired.
    pub fn fire_due_timers(&mut self) -> usize {
        self.fire_due_timers_racing(None)
    }

    /// Like [`Net::fire_due_timers`], with `meanwhile` (another request, such as a late answer)
    /// made while the first timers' request has read its records and not yet written them.
    pub fn fire_due_timers_while(&mut self, meanwhile: impl FnOnce(&mut Self)) -> usize {
        self.fire_due_timers_racing(Some(Box::new(meanwhile)))
    }

    fn fire_due_timers_racing(&mut self, mut meanwhile: Option<Meanwhile<'_>>) -> usize {
        let keys: Vec<String> = self
            .store
            .keys_with_prefix("")
            .filter(|key| matches!(keys::classify(key), KeyKind::Timer(..)))
            .map(str::to_owned)
            .collect();
        let mut fired = 0;
        for side in [Side::Sender, Side::Receiver] {
            let mut due = Vec::new();
            for key in &keys {
                let KeyKind::Timer(timer_side, name) = keys::classify(key) else {
                    continue;
                };
                if timer_side != side {
                    continue;
                }
                let value = self.store.get(key).expect("the memory store");
                match value.map(|value| timer_due(&value, self.now)) {
                    Some(Some(false)) | None => continue,
                    // Due; one whose time does not parse is dropped unfired, as on the edge.
                    Some(Some(true)) => due.push(name.to_owned()),
                    Some(None) => {}
                }
                self.store.delete(key).expect("the memory store");
            }
            fired += due.len();
            if !due.is_empty() {
                let (logic, seed) = (self.logic(side), self.seed());
                let request = EdgeRequest::timers(logic, due, self.now, seed);
                self.carry_out_racing(request, meanwhile.take());
            }
        }
        fired
    }

    /// Everything the gateway delivered to `connection` since the last call.
    pub fn take(&mut self, connection: &str) -> Vec<Bytes> {
        self.gateway.take(connection)
    }
}

/// Another request, made while one is between its reads and its writes.
type Meanwhile<'a> = Box<dyn FnOnce(&mut Net) + 'a>;

/// Whether a request between the servers is a device hop (it names a device connection).
fn is_progress_hop(message: &Bytes) -> bool {
    rcs_core::sip::parse(message, &rcs_core::sip::Limits::default()).is_ok_and(|request| {
        common::open_progress_hop(&request, &[crate::config::signing_key()]).is_some()
    })
}

fn is_device_hop(message: &Bytes) -> bool {
    rcs_core::sip::parse(message, &rcs_core::sip::Limits::default())
        .is_ok_and(|request| request.header(common::DEVICE_HEADER).is_some())
}

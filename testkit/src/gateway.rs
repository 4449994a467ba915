//! An in-memory GRIP gateway: which connections are open, the channels each is subscribed to, and
//! what reached each connection, from its own request's reply or from a publish. It reads replies
//! and publish bodies with the core's codecs ([`grip`]), as the local host's gateway and Pushpin do.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use rcs_core::grip::{self, Control, WsEvent};

/// The gateway's state; see the module doc.
#[derive(Debug, Default)]
pub struct Gateway {
    open: BTreeSet<String>,
    subscriptions: BTreeMap<String, BTreeSet<String>>,
    inboxes: BTreeMap<String, VecDeque<Bytes>>,
    /// Bytes delivered to each connection since [`Gateway::begin_request`].
    burst: BTreeMap<String, usize>,
    /// The most bytes one request delivered to one connection (what a gateway reply would carry).
    pub largest_burst: usize,
}

impl Gateway {
    /// The events of a request for `connection`, with `OPEN` first if the connection is new (a
    /// gateway opens a connection with the backend on its first request).
    pub fn request_events(&mut self, connection: &str, events: Vec<WsEvent>) -> Vec<WsEvent> {
        if self.open.insert(connection.to_owned()) && events.first() != Some(&WsEvent::Open) {
            std::iter::once(WsEvent::Open).chain(events).collect()
        } else {
            events
        }
    }

    /// Starts counting what one request delivers.
    pub fn begin_request(&mut self) {
        self.burst.clear();
    }

    /// Carries out the reply to a request of `connection`: control messages, messages for the
    /// client, a close.
    pub fn apply_reply(&mut self, connection: &str, events: &[WsEvent]) {
        for event in events {
            if let Some(control) = Control::from_event(event) {
                match control {
                    Control::Subscribe { channel } => {
                        self.subscriptions
                            .entry(channel)
                            .or_default()
                            .insert(connection.to_owned());
                    }
                    Control::Unsubscribe { channel } => {
                        if let Some(set) = self.subscriptions.get_mut(&channel) {
                            set.remove(connection);
                        }
                    }
                    Control::Detach => {}
                }
            } else if let Some(message) = grip::message_of(event) {
                self.deliver(connection, message);
            } else if let WsEvent::Close(_) | WsEvent::Disconnect = event {
                self.close(connection);
            }
        }
    }

    /// Carries out a publish body: each message to every connection subscribed to its channel.
    ///
    /// # Panics
    /// If the body is not one the core's codec reads back: the servers only publish what it writes.
    pub fn publish(&mut self, body: &str) {
        let items =
            grip::decode_publishes(body.as_bytes()).expect("a publish body the codec wrote");
        for item in items {
            let targets: Vec<String> = self
                .subscriptions
                .get(&item.channel)
                .map(|set| set.iter().cloned().collect())
                .unwrap_or_default();
            for connection in targets {
                match &item.event {
                    WsEvent::Text(message) | WsEvent::Binary(message) => {
                        self.deliver(&connection, message.clone());
                    }
                    _ => self.close(&connection),
                }
            }
        }
    }

    fn deliver(&mut self, connection: &str, message: Bytes) {
        if !self.open.contains(connection) {
            return;
        }
        let burst = self.burst.entry(connection.to_owned()).or_default();
        *burst += message.len();
        self.largest_burst = self.largest_burst.max(*burst);
        self.inboxes
            .entry(connection.to_owned())
            .or_default()
            .push_back(message);
    }

    /// The connection is gone: its subscriptions and undelivered messages with it.
    pub fn close(&mut self, connection: &str) {
        self.open.remove(connection);
        for set in self.subscriptions.values_mut() {
            set.remove(connection);
        }
        self.inboxes.remove(connection);
    }

    /// Every connection is gone (the gateway restarted).
    pub fn close_all(&mut self) {
        *self = Self {
            largest_burst: self.largest_burst,
            ..Self::default()
        };
    }

    /// Whether `connection` is open.
    pub fn is_open(&self, connection: &str) -> bool {
        self.open.contains(connection)
    }

    /// Everything delivered to `connection` since the last call.
    pub fn take(&mut self, connection: &str) -> Vec<Bytes> {
        self.inboxes
            .remove(connection)
            .map(Vec::from)
            .unwrap_or_default()
    }
}

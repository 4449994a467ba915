//! The engine both application servers run on: inputs in order, each handled as a transaction over
//! the store records it reads, outputs out in order.
//!
//! An edge function lives for one request, so every record a handler needs (a registration, a
//! session, an upload, a chunk) is in the shared store, not in memory. The engine keeps the values it
//! has been given in a cache for the request. A handler reads through a [`Tx`]; when it asks for a key
//! that is not cached, the transaction is dropped (its writes and messages with it), the engine yields
//! a [`StoreOp::Get`] for every missing key, and once the caller has answered them all the same input
//! is handled again from the start, with the same time and randomness. Handlers are therefore plain
//! straight-line code, and nothing from a half-handled input ever leaves the engine.
//!
//! When an input completes, each key it wrote leaves once (its last write), and a write of a key
//! whose stored value the request knows becomes a [`StoreOp::Swap`] against that value, so the
//! caller can refuse it when another request changed the record meanwhile
//! ([`crate::edge_request`] then handles the input again).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;

use super::{Input, Output};
use crate::ids::{Entropy, TokenSource};
use crate::store::{Record, StoreError, StoreOp, compare_with_known};
use crate::time::Timestamp;

/// Why a handler stopped before its end. Its transaction is dropped either way: nothing it wrote
/// or sent leaves the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interrupt {
    /// It asked for a key the engine does not have yet: the input is handled again from the start
    /// once the value is read.
    Miss,
    /// A record it read does not decode (another format version, or corrupt): the input is
    /// answered as the server's failure ([`Logic::fail`]), and the fault is reported
    /// ([`Output::Fault`]).
    Unreadable(StoreError),
}

/// The application logic an [`Engine`] runs.
pub trait Logic {
    /// Handles one input. Returning an [`Interrupt`] (from [`Tx::get`] or [`Tx::record`]) drops the
    /// transaction; after a miss the input is handled again once the missing values are in.
    fn handle(&self, tx: &mut Tx<'_>, input: &Input) -> Result<(), Interrupt>;

    /// Answers an input whose handling read a record it cannot decode: a request gets a server
    /// error naming the record. It reads nothing (a read it tries finds nothing cached).
    fn fail(&self, tx: &mut Tx<'_>, input: &Input, error: &StoreError);

    /// Which server the logic is (its timers and routes are its own).
    fn side(&self) -> crate::service::Side;
}

/// One input's view of the store and its pending effects.
pub struct Tx<'a> {
    cache: &'a BTreeMap<String, Option<Bytes>>,
    /// The round of reads each key's value came in (see [`Tx::get_after`]).
    rounds: &'a BTreeMap<String, u64>,
    written: BTreeMap<String, Option<Bytes>>,
    effects: Vec<Output>,
    missing: BTreeSet<String>,
    evict: Vec<String>,
    /// The time of the input.
    pub now: Timestamp,
    ids: TokenSource,
}

/// The record a value read under `key` holds; one that does not decode interrupts the handling.
fn decode_record<T: Record>(key: &str, value: Option<Bytes>) -> Result<Option<T>, Interrupt> {
    value
        .map(|value| T::decode(key, &value).map_err(Interrupt::Unreadable))
        .transpose()
}

impl Tx<'_> {
    /// The value under `key` as this transaction sees it, or [`Interrupt::Miss`] if it must be read
    /// first.
    pub fn get(&mut self, key: &str) -> Result<Option<Bytes>, Interrupt> {
        if let Some(value) = self.written.get(key) {
            return Ok(value.clone());
        }
        match self.cache.get(key) {
            Some(value) => Ok(value.clone()),
            None => {
                self.missing.insert(key.to_owned());
                Err(Interrupt::Miss)
            }
        }
    }

    /// Like [`Tx::get`], for a value read after the value of `after` was: one read before it or
    /// with it is read again. Reads that go together are not one snapshot, and another request may
    /// write two keys in order meanwhile: a reader that finds the second written reads the first
    /// this way to see it too (a delivery that finds its upload ended reads the manifest the
    /// upload wrote before).
    pub fn get_after(&mut self, key: &str, after: &str) -> Result<Option<Bytes>, Interrupt> {
        let after_round = self.rounds.get(after).copied().unwrap_or(0);
        let read_after = self
            .rounds
            .get(key)
            .is_some_and(|round| *round > after_round);
        if self.written.contains_key(key) || read_after {
            return self.get(key);
        }
        self.missing.insert(key.to_owned());
        Err(Interrupt::Miss)
    }

    /// [`Tx::get_after`] for a record.
    pub fn record_after<T: Record>(
        &mut self,
        key: &str,
        after: &str,
    ) -> Result<Option<T>, Interrupt> {
        let value = self.get_after(key, after)?;
        decode_record(key, value)
    }

    /// Like [`Tx::get`] for a value needed once (a file chunk): it leaves the cache when the
    /// transaction commits, so a request never holds more chunks than it is sending.
    pub fn get_once(&mut self, key: &str) -> Result<Option<Bytes>, Interrupt> {
        let value = self.get(key)?;
        self.evict.push(key.to_owned());
        Ok(value)
    }

    /// Asks for several keys at once, so that their reads go out together; [`Interrupt::Miss`] if any is
    /// missing.
    pub fn prefetch<'k>(
        &mut self,
        keys: impl IntoIterator<Item = &'k str>,
    ) -> Result<(), Interrupt> {
        let mut missed = false;
        for key in keys {
            missed |= self.get(key).is_err();
        }
        if missed { Err(Interrupt::Miss) } else { Ok(()) }
    }

    /// The record under `key`, `None` when there is none; one that does not decode interrupts the
    /// handling ([`Interrupt::Unreadable`]).
    pub fn record<T: Record>(&mut self, key: &str) -> Result<Option<T>, Interrupt> {
        let value = self.get(key)?;
        decode_record(key, value)
    }

    /// Writes `value` under `key` (emitted when the transaction commits).
    pub fn set(&mut self, key: &str, value: Bytes) {
        self.written.insert(key.to_owned(), Some(value.clone()));
        self.effects.push(Output::Store(StoreOp::Set {
            key: key.to_owned(),
            value,
        }));
    }

    /// Writes a record under `key`.
    pub fn set_record<T: Record>(&mut self, key: &str, record: &T) {
        self.set(key, record.encode());
    }

    /// Deletes `key`.
    pub fn delete(&mut self, key: &str) {
        self.written.insert(key.to_owned(), None);
        self.effects.push(Output::Store(StoreOp::Delete {
            key: key.to_owned(),
        }));
    }

    /// Applies a store operation yielded by a lower layer (a `Get` is answered from this transaction).
    pub fn apply(&mut self, op: StoreOp) -> Result<Option<Bytes>, Interrupt> {
        match op {
            StoreOp::Get { key } => self.get(&key),
            StoreOp::Set { key, value } => {
                self.set(&key, value);
                Ok(None)
            }
            StoreOp::Delete { key } => {
                self.delete(&key);
                Ok(None)
            }
            StoreOp::Swap { key, value, .. } => {
                match value {
                    Some(value) => self.set(&key, value),
                    None => self.delete(&key),
                }
                Ok(None)
            }
        }
    }

    /// A source of random tokens for one part of the handling. Every call gives an independent
    /// stream; a retried input draws the same tokens again, in the same order.
    pub fn ids(&mut self) -> TokenSource {
        self.ids.fork()
    }

    /// Emits an output (a message, a subscription, a timer), in order with the store writes.
    pub fn emit(&mut self, output: Output) {
        self.effects.push(output);
    }
}

/// Runs a [`Logic`] over inputs, store values and outputs. See the module doc for the protocol:
/// call [`Engine::handle`] with each input, apply every [`Output`] from [`Engine::poll_output`] in
/// order, answer every `Output::Store(StoreOp::Get)` with [`Engine::store_value`], until
/// [`Engine::poll_output`] returns `None`.
pub struct Engine<L> {
    logic: L,
    cache: BTreeMap<String, Option<Bytes>>,
    /// The round of reads each cached value came in, counting from 1.
    rounds: BTreeMap<String, u64>,
    round: u64,
    queue: VecDeque<(Input, Timestamp, Entropy)>,
    pending_reads: BTreeSet<String>,
    outputs: VecDeque<Output>,
}

impl<L: Logic> Engine<L> {
    /// An engine for one request of an edge function (or one test step).
    pub fn new(logic: L) -> Self {
        Self {
            logic,
            cache: BTreeMap::new(),
            rounds: BTreeMap::new(),
            round: 0,
            queue: VecDeque::new(),
            pending_reads: BTreeSet::new(),
            outputs: VecDeque::new(),
        }
    }

    /// The logic, for its configuration.
    pub fn logic(&self) -> &L {
        &self.logic
    }

    /// Queues an input that happened at `now`, with fresh randomness. Inputs are handled in order.
    pub fn handle(&mut self, input: Input, now: Timestamp, entropy: Entropy) {
        self.queue.push_back((input, now, entropy));
        self.run();
    }

    /// Answers a `Get` the engine yielded.
    pub fn store_value(&mut self, key: &str, value: Option<Bytes>) {
        if self.pending_reads.remove(key) {
            self.cache.insert(key.to_owned(), value);
            self.rounds.insert(key.to_owned(), self.round);
        }
        if self.pending_reads.is_empty() {
            self.run();
        }
    }

    /// The next output.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Whether every queued input has been handled.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty()
    }

    /// Forgets every value read so far, so that the next input reads afresh what it needs: after
    /// a write of the request met another request's ([`StoreOp::Swap`]).
    pub fn forget_reads(&mut self) {
        self.cache.clear();
        self.rounds.clear();
    }

    /// Answers `input` as the server's failure for `error` ([`Logic::fail`]), reporting it as a
    /// fault, without handling it.
    pub fn fail(&mut self, input: &Input, now: Timestamp, entropy: Entropy, error: &StoreError) {
        let mut tx = Tx {
            cache: &BTreeMap::new(),
            rounds: &BTreeMap::new(),
            written: BTreeMap::new(),
            effects: vec![Output::Fault(error.to_string())],
            missing: BTreeSet::new(),
            evict: Vec::new(),
            now,
            ids: TokenSource::new(entropy),
        };
        self.logic.fail(&mut tx, input, error);
        self.outputs.extend(tx.effects);
    }

    fn run(&mut self) {
        while self.pending_reads.is_empty() {
            let Some((input, now, entropy)) = self.queue.front() else {
                return;
            };
            let mut tx = Tx {
                cache: &self.cache,
                rounds: &self.rounds,
                written: BTreeMap::new(),
                effects: Vec::new(),
                missing: BTreeSet::new(),
                evict: Vec::new(),
                now: *now,
                ids: TokenSource::new(*entropy),
            };
            let outcome = self.logic.handle(&mut tx, input);
            let Tx {
                written,
                effects,
                missing,
                evict,
                ..
            } = tx;
            match outcome {
                Ok(()) => {
                    let effects = guard_writes(&self.cache, effects);
                    self.cache.extend(written);
                    for key in evict {
                        self.cache.remove(&key);
                    }
                    self.outputs.extend(effects);
                    self.queue.pop_front();
                }
                Err(Interrupt::Unreadable(error)) => {
                    let (input, now, entropy) = self.queue.pop_front().expect("the input handled");
                    self.fail(&input, now, entropy, &error);
                }
                Err(Interrupt::Miss) => {
                    self.round += 1;
                    for key in missing {
                        if self.pending_reads.insert(key.clone()) {
                            self.outputs.push_back(Output::Store(StoreOp::Get { key }));
                        }
                    }
                    if self.pending_reads.is_empty() {
                        // A handler missed without a missing key: a logic error. Drop the input
                        // rather than spin.
                        self.queue.pop_front();
                    }
                }
            }
        }
    }
}

/// The effects of a completed input as they leave the engine: each key's last write only, in its
/// place (a key set twice by one input is written once), but never moved across a peer request
/// (what the other server reads when it gets the request is written before it). A write or delete
/// of a key whose stored value the request knows (it read it, an earlier input of the request
/// wrote it, or this input wrote it before a peer request) becomes a [`StoreOp::Swap`] against
/// that value; one that would leave the key as it is (the same value written back, an absent key
/// deleted) is left out.
fn guard_writes(cache: &BTreeMap<String, Option<Bytes>>, effects: Vec<Output>) -> Vec<Output> {
    // The stretch of effects between peer requests each effect is in.
    let mut stretch = 0;
    let mut last_write = BTreeMap::new();
    for (index, effect) in effects.iter().enumerate() {
        match effect {
            Output::PeerRequest { .. } => stretch += 1,
            Output::Store(StoreOp::Set { key, .. } | StoreOp::Delete { key }) => {
                last_write.insert((stretch, key.clone()), index);
            }
            _ => {}
        }
    }
    let mut known: BTreeMap<String, Option<Bytes>> = BTreeMap::new();
    let mut stretch = 0;
    let mut guarded = Vec::with_capacity(effects.len());
    for (index, effect) in effects.into_iter().enumerate() {
        match effect {
            Output::Store(op @ (StoreOp::Set { .. } | StoreOp::Delete { .. })) => {
                let key = op.key().to_owned();
                if last_write.get(&(stretch, key.clone())) != Some(&index) {
                    continue;
                }
                let written = match &op {
                    StoreOp::Set { value, .. } => Some(value.clone()),
                    _ => None,
                };
                let before = known.get(&key).or_else(|| cache.get(&key));
                if let Some(op) = compare_with_known(op, before) {
                    guarded.push(Output::Store(op));
                }
                known.insert(key, written);
            }
            effect => {
                if matches!(effect, Output::PeerRequest { .. }) {
                    stretch += 1;
                }
                guarded.push(effect);
            }
        }
    }
    guarded
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Copies `src/<name>`'s value, then the value it names, into `dst/<name>`, and says so.
    struct Follow;

    impl Logic for Follow {
        fn side(&self) -> crate::service::Side {
            crate::service::Side::Receiver
        }

        fn fail(&self, _: &mut Tx<'_>, _: &Input, _: &StoreError) {}

        fn handle(&self, tx: &mut Tx<'_>, input: &Input) -> Result<(), Interrupt> {
            let Input::Timer { key: name } = input else {
                return Ok(());
            };
            tx.set(&format!("seen/{name}"), Bytes::from_static(b"1"));
            let Some(pointer) = tx.get(&format!("src/{name}"))? else {
                return Ok(());
            };
            let target = String::from_utf8_lossy(&pointer).into_owned();
            let value = tx.get_once(&target)?.unwrap_or_default();
            tx.set(&format!("dst/{name}"), value.clone());
            tx.emit(Output::Send {
                connection: name.clone(),
                message: value,
            });
            Ok(())
        }
    }

    fn timer(name: &str) -> Input {
        Input::Timer { key: name.into() }
    }

    fn outputs(engine: &mut Engine<Follow>) -> Vec<Output> {
        std::iter::from_fn(|| engine.poll_output()).collect()
    }

    fn get(key: &str) -> Output {
        Output::Store(StoreOp::Get { key: key.into() })
    }

    fn set(key: &str, value: &'static [u8]) -> Output {
        Output::Store(StoreOp::Set {
            key: key.into(),
            value: Bytes::from_static(value),
        })
    }

    const NOW: Timestamp = Timestamp::from_unix_secs(1);

    #[test]
    fn reads_are_asked_for_and_the_input_is_retried_until_it_completes() {
        let mut engine = Engine::new(Follow);
        engine.handle(timer("a"), NOW, Entropy([0; 32]));
        // The write before the first miss is not emitted: the transaction was dropped.
        assert_eq!(outputs(&mut engine), vec![get("src/a")]);
        assert!(!engine.is_idle());
        engine.store_value("src/a", Some(Bytes::from_static(b"blob/7")));
        assert_eq!(outputs(&mut engine), vec![get("blob/7")]);
        engine.store_value("blob/7", Some(Bytes::from_static(b"data")));
        assert_eq!(
            outputs(&mut engine),
            vec![
                set("seen/a", b"1"),
                set("dst/a", b"data"),
                Output::Send {
                    connection: "a".into(),
                    message: Bytes::from_static(b"data")
                },
            ]
        );
        assert!(engine.is_idle());
    }

    /// Reads `x` as any input does, or, for a timer named `fresh`, after `y`, and sends what it
    /// saw.
    struct Peek;

    impl Logic for Peek {
        fn side(&self) -> crate::service::Side {
            crate::service::Side::Receiver
        }

        fn fail(&self, _: &mut Tx<'_>, _: &Input, _: &StoreError) {}

        fn handle(&self, tx: &mut Tx<'_>, input: &Input) -> Result<(), Interrupt> {
            let Input::Timer { key: name } = input else {
                return Ok(());
            };
            let seen = if name == "fresh" {
                tx.get("y")?;
                // Twice: the second finds the value this input read.
                tx.get_after("x", "y")?;
                tx.get_after("x", "y")?
            } else {
                tx.prefetch(["x", "y"])?;
                tx.get("x")?
            };
            tx.emit(Output::Send {
                connection: name.clone(),
                message: seen.unwrap_or_default(),
            });
            Ok(())
        }
    }

    #[test]
    fn a_read_after_another_key_reads_again_a_value_read_with_it_or_before() {
        let mut engine = Engine::new(Peek);
        let sent = |engine: &mut Engine<Peek>| -> Vec<Output> {
            std::iter::from_fn(|| engine.poll_output()).collect()
        };
        let saw = |value: &'static [u8]| Output::Send {
            connection: "fresh".into(),
            message: Bytes::from_static(value),
        };
        // `x` and `y` read together: not one snapshot.
        engine.handle(timer("plain"), NOW, Entropy([0; 32]));
        assert_eq!(sent(&mut engine), vec![get("x"), get("y")]);
        engine.store_value("x", Some(Bytes::from_static(b"old")));
        engine.store_value("y", Some(Bytes::from_static(b"1")));
        assert_eq!(sent(&mut engine).len(), 1, "sent what it read");
        // `x` after `y`: read again, once, though cached.
        engine.handle(timer("fresh"), NOW, Entropy([0; 32]));
        assert_eq!(sent(&mut engine), vec![get("x")]);
        engine.store_value("x", Some(Bytes::from_static(b"new")));
        assert_eq!(sent(&mut engine), vec![saw(b"new")]);
        // Read after `y` already: the cached value does.
        engine.handle(timer("fresh"), NOW, Entropy([0; 32]));
        assert_eq!(sent(&mut engine), vec![saw(b"new")]);
    }

    #[test]
    fn later_inputs_wait_behind_an_earlier_one_and_see_its_writes() {
        let mut engine = Engine::new(Follow);
        engine.handle(timer("a"), NOW, Entropy([0; 32]));
        engine.handle(timer("b"), NOW, Entropy([1; 32]));
        assert_eq!(
            outputs(&mut engine),
            vec![get("src/a")],
            "b is not handled before a"
        );
        engine.store_value("src/a", None);
        // a completes (no pointer); b runs next and needs its own key.
        assert_eq!(
            outputs(&mut engine),
            vec![set("seen/a", b"1"), get("src/b")]
        );
        // A value nobody asked for is ignored.
        engine.store_value("src/zzz", Some(Bytes::from_static(b"x")));
        engine.store_value("src/b", Some(Bytes::from_static(b"seen/a")));
        // b reads a key a wrote in this request: answered from the cache, no store read.
        assert_eq!(
            outputs(&mut engine),
            vec![
                set("seen/b", b"1"),
                set("dst/b", b"1"),
                Output::Send {
                    connection: "b".into(),
                    message: Bytes::from_static(b"1")
                },
            ]
        );
    }

    #[test]
    fn writes_of_known_records_are_compared_and_each_key_is_written_once() {
        let mut cache = BTreeMap::new();
        cache.insert("read".to_owned(), Some(Bytes::from_static(b"old")));
        cache.insert("same".to_owned(), Some(Bytes::from_static(b"v")));
        cache.insert("absent".to_owned(), None);
        cache.insert("gone".to_owned(), Some(Bytes::from_static(b"g")));
        let send = Output::Send {
            connection: "c".into(),
            message: Bytes::new(),
        };
        let delete = |key: &str| Output::Store(StoreOp::Delete { key: key.into() });
        let effects = vec![
            set("blind", b"1"),
            set("read", b"first"),
            send.clone(),
            set("read", b"new"),
            set("same", b"v"),
            set("absent", b"made"),
            delete("gone"),
            delete("never-read"),
            delete("absent-too"),
        ];
        let swap = |key: &str, expected: Option<&'static [u8]>, value: Option<&'static [u8]>| {
            Output::Store(StoreOp::Swap {
                key: key.into(),
                expected: expected.map(Bytes::from_static),
                value: value.map(Bytes::from_static),
            })
        };
        cache.insert("absent-too".to_owned(), None);
        assert_eq!(
            guard_writes(&cache, effects),
            vec![
                set("blind", b"1"),
                send,
                swap("read", Some(b"old"), Some(b"new")),
                swap("absent", None, Some(b"made")),
                swap("gone", Some(b"g"), None),
                delete("never-read"),
            ]
        );
    }

    #[test]
    fn a_write_is_never_moved_across_a_peer_request() {
        let mut cache = BTreeMap::new();
        cache.insert("state".to_owned(), Some(Bytes::from_static(b"s0")));
        let set = |key: &str, value: &'static [u8]| {
            Output::Store(StoreOp::Set {
                key: key.into(),
                value: Bytes::from_static(value),
            })
        };
        let peer = Output::PeerRequest {
            message: Bytes::from_static(b"wake"),
        };
        let swap = |expected: &'static [u8], value: &'static [u8]| {
            Output::Store(StoreOp::Swap {
                key: "state".into(),
                expected: Some(Bytes::from_static(expected)),
                value: Some(Bytes::from_static(value)),
            })
        };
        let effects = vec![
            set("state", b"s1"),
            set("state", b"s2"),
            peer.clone(),
            set("state", b"s3"),
        ];
        // What the peer reads is written before it asks; the later write swaps against it.
        assert_eq!(
            guard_writes(&cache, effects),
            vec![swap(b"s0", b"s2"), peer, swap(b"s2", b"s3")]
        );
    }

    #[test]
    fn values_read_once_leave_the_cache() {
        let mut engine = Engine::new(Follow);
        engine.handle(timer("a"), NOW, Entropy([0; 32]));
        engine.store_value("src/a", Some(Bytes::from_static(b"blob/1")));
        engine.store_value("blob/1", Some(Bytes::from_static(b"chunk")));
        let _ = outputs(&mut engine);
        // The same chunk needed again is read again rather than held for the whole request.
        engine.handle(timer("a"), NOW, Entropy([0; 32]));
        assert_eq!(outputs(&mut engine), vec![get("blob/1")]);
    }
}

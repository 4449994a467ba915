//! The edge benchmark: serves `spin.toml` (plus the echo component) on one or more runtimes and
//! stores, and prints one table with a column per configuration, every figure measured in the same
//! run on the same machine:
//!
//! - two floors with the file transfer's message size (64 KiB, 15 in flight, about the delivery
//!   window): WebSocket messages echoed by the local host's gateway alone, with no component, and
//!   echoed by a trivial component behind the gateway (the platform's own cost);
//! - one plain HTTP request to a component, without and with one key-value read and write (what
//!   one key-value call costs on that runtime and store);
//! - key-value calls per 64 KiB chunk stored (MSRP upload) and delivered (pull), as `redis-server`
//!   counts them (`INFO commandstats`) in a 16 MiB transfer: on a SQLite configuration this runs on a
//!   Redis of its own, since the components make the same calls whatever the store;
//! - upload throughput of a large file over MSRP (new, and already stored) and over FT-HTTP, and
//!   delivery throughput (push, pull, HTTP fallback); the time from the sender's first byte to
//!   the recipient's last, push and pull, beside the upload alone and store-and-forward;
//! - chat latency, p50 and p99;
//! - signing in: a REGISTER answered with a digest challenge and then granted, p50 and p99, beside
//!   a refresh on a signed-in connection;
//! - the bytes that cross between the two application servers per transfer, against file size, as
//!   a relay on the peer hop counts them (HTTP headers included);
//! - the runtime's peak resident memory, after a small transfer and after the large ones.
//!
//! ```text
//! cargo run --release -p rcs-e2e --bin edge-bench -- [--size-mib 256]
//!     [--runtime local,local+pushpin,spin] [--store sqlite,redis] [--json]
//! ```
//! With `--json` the table is followed by one JSON object of the numbers scripts read
//! (`component_floor_mib_s`, `upload_msrp_mib_s`, `upload_http_mib_s`, `delivery_push_mib_s`,
//! `upload_alone_s`, `cut_through_push_s`, `cut_through_pull_s`, `store_and_forward_s`,
//! `peak_rss_mib`, …) of the first configuration, and of each in `configurations`.
//! `local` is the local host with its built-in gateway, `local+pushpin` the same behind Pushpin,
//! `spin` real Spin 4.0.2 behind Pushpin (`SPIN_BIN`, or `spin` on `PATH`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use futures_util::{SinkExt, StreamExt};
use rcs_client::Client;
use rcs_core::service::Delivery;
use rcs_e2e::{GATEWAY_ECHO, Host, HostBinary, HostOptions, Redis, Relay, free_port, make_file};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const MIB: u64 = 1024 * 1024;
const MESSAGE: usize = 64 * 1024;
/// Messages in flight: the default MSRP window (`window` in spin.toml, 16) less one, because the
/// echo component answers a batch of messages in one reply and Pushpin fails a connection whose
/// reply is over 1,000,000 bytes (`grip::REPLY_LIMIT`): 15 messages of 64 KiB fit, 16 do not.
const IN_FLIGHT: usize = 15;
/// The store chunk of `spin.toml` (`store_chunk_size`), the unit of the key-value figures.
const STORE_CHUNK: u64 = 64 * 1024;
/// The file whose key-value calls are counted.
const COUNTED_FILE: u64 = 16 * MIB;
/// Sequential requests per plain-HTTP figure.
const HTTP_REQUESTS: usize = 300;

/// One configuration: a runtime (and its gateway) and a store.
#[derive(Clone)]
struct Config {
    runtime: HostBinary,
    behind_pushpin: bool,
    on_redis: bool,
}

impl Config {
    fn name(&self) -> String {
        let gateway = if self.behind_pushpin {
            "Pushpin"
        } else {
            "built-in gateway"
        };
        let store = if self.on_redis { "Redis" } else { "SQLite" };
        format!("{}, {gateway}, {store}", self.runtime.name())
    }

    fn options(&self, redis: Option<&Redis>) -> HostOptions {
        let base = match redis {
            Some(redis) => HostOptions::redis(redis.url()),
            None => HostOptions::sqlite(),
        };
        HostOptions {
            behind_pushpin: self.behind_pushpin,
            with_echo: true,
            ..base.on(self.runtime.clone())
        }
    }
}

/// The figures of one configuration, by measure, in the order measured, and the numbers scripts
/// read (`--json`).
#[derive(Default)]
struct Figures {
    rows: Vec<(String, String)>,
    numbers: Vec<(&'static str, f64)>,
}

impl Figures {
    fn add(&mut self, measure: impl Into<String>, figure: impl Into<String>) {
        self.rows.push((measure.into(), figure.into()));
    }

    fn number(&mut self, key: &'static str, value: f64) {
        self.numbers.push((key, value));
    }

    /// The numbers as one JSON object, with the configuration's name.
    fn json(&self, name: &str) -> serde_json::Map<String, serde_json::Value> {
        let mut object = serde_json::Map::new();
        object.insert("configuration".into(), name.into());
        for (key, value) in &self.numbers {
            let rounded = (value * 1000.0).round() / 1000.0;
            object.insert((*key).into(), rounded.into());
        }
        object
    }
}

fn mib_per_sec(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / MIB as f64 / elapsed.as_secs_f64()
}

/// Sends `count` binary messages of [`MESSAGE`] bytes over a WebSocket to `url` with `in_flight`
/// outstanding, and waits for every echo; returns MiB/s one way.
async fn echo_throughput(
    url: &str,
    protocol: Option<&str>,
    count: usize,
    in_flight: usize,
) -> Result<f64> {
    let mut request = url.into_client_request()?;
    if let Some(protocol) = protocol {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", protocol.parse()?);
    }
    let (socket, _) = tokio_tungstenite::connect_async(request).await?;
    let (mut write, mut read) = socket.split();
    let payload = vec![0x5au8; MESSAGE];
    let started = Instant::now();
    let mut sent = 0;
    let mut echoed = 0;
    while sent < in_flight.min(count) {
        write.send(Message::binary(payload.clone())).await?;
        sent += 1;
    }
    while echoed < count {
        let message = tokio::time::timeout(Duration::from_secs(30), read.next())
            .await
            .context("echo stalled")?
            .context("echo socket closed")??;
        if let Message::Binary(bytes) = message {
            ensure!(bytes.len() == MESSAGE, "echo of {} bytes", bytes.len());
            echoed += 1;
            if sent < count {
                write.send(Message::binary(payload.clone())).await?;
                sent += 1;
            }
        }
    }
    let elapsed = started.elapsed();
    let _ = write.send(Message::Close(None)).await;
    Ok(mib_per_sec((count * MESSAGE) as u64, elapsed))
}

/// The mean time of [`HTTP_REQUESTS`] sequential `method` requests to `url`, in milliseconds.
async fn mean_request_ms(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
) -> Result<f64> {
    let started = Instant::now();
    for _ in 0..HTTP_REQUESTS {
        let response = client.request(method.clone(), url).send().await?;
        ensure!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        response.bytes().await?;
    }
    Ok(started.elapsed().as_secs_f64() * 1000.0 / HTTP_REQUESTS as f64)
}

async fn connect(base: &str, name: &str, delivery: Delivery) -> Result<Client> {
    rcs_e2e::registered(base, name, Some(delivery), Duration::from_secs(300)).await
}

/// Alice uploads the file at `path` to `to` while nobody receives it; how long until her upload
/// ended.
async fn timed_upload(alice: &mut Client, to: &str, path: &Path) -> Result<Duration> {
    let started = Instant::now();
    let sent = alice.send_file(to, path).await?;
    ensure!(sent.delivered(), "not accepted: {sent:?}");
    Ok(started.elapsed())
}

/// The recipient takes the file offered (stored by then) into `out`; how long it took.
async fn timed_delivery(recipient: &mut Client, out: &Path) -> Result<Duration> {
    let started = Instant::now();
    let received = recipient.receive_next(out).await?;
    let took = started.elapsed();
    std::fs::remove_file(&received.path)?;
    Ok(took)
}

/// Alice sends the file at `path` while the recipient receives it; how long until her upload
/// ended, and until the recipient had the last byte, both from her first.
async fn timed_transfer(
    alice: &mut Client,
    bob: &mut Client,
    to: &str,
    path: &Path,
    out: &Path,
) -> Result<(Duration, Duration)> {
    let started = Instant::now();
    let send = async {
        let outcome = alice.send_file(to, path).await;
        (outcome, started.elapsed())
    };
    let receive = async {
        let received = bob.receive_next(out).await;
        (received, started.elapsed())
    };
    let ((sent, upload), (received, done)) = tokio::join!(send, receive);
    ensure!(sent?.delivered(), "not delivered");
    let received = received?;
    std::fs::remove_file(&received.path)?;
    Ok((upload, done))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// The calls of `after` beyond `before`, all commands together and by command.
fn calls_between(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> (u64, String) {
    let mut total = 0;
    let mut parts = Vec::new();
    for (name, count) in after {
        let delta = count - before.get(name).copied().unwrap_or(0);
        if delta > 0 {
            total += delta;
            parts.push(format!("{name} {delta}"));
        }
    }
    (total, parts.join(", "))
}

/// Key-value calls per stored and per delivered chunk, counted by `redis` while `base` moves a
/// [`COUNTED_FILE`] from one user to another by pull: the upload first, then the delivery (the
/// recipient's client reads the offer only when asked to receive).
async fn key_value_calls(
    base: &str,
    redis: &Redis,
    dir: &Path,
    figures: &mut Figures,
) -> Result<()> {
    let mut sender = connect(base, "kv-alice", Delivery::Push).await?;
    let mut recipient = connect(base, "kv-carol", Delivery::Pull).await?;
    let path = dir.join("counted.bin");
    make_file(&path, COUNTED_FILE, 99)?;
    let chunks = COUNTED_FILE / STORE_CHUNK;
    let before = redis.command_calls()?;
    ensure!(sender.send_file("kv-carol", &path).await?.delivered());
    let uploaded = redis.command_calls()?;
    let received = recipient.receive_next(dir).await?;
    let delivered = redis.command_calls()?;
    std::fs::remove_file(&received.path)?;
    let (upload_total, upload_parts) = calls_between(&before, &uploaded);
    let (delivery_total, delivery_parts) = calls_between(&uploaded, &delivered);
    figures.add(
        "key-value calls per 64 KiB chunk stored (MSRP upload, 16 MiB; all calls of the upload)",
        format!(
            "{:.2} ({upload_parts})",
            upload_total as f64 / chunks as f64
        ),
    );
    figures.add(
        "key-value calls per 64 KiB chunk delivered (pull, 16 MiB)",
        format!(
            "{:.2} ({delivery_parts})",
            delivery_total as f64 / chunks as f64
        ),
    );
    Ok(())
}

/// Every figure of one configuration.
async fn measure(config: &Config, size_mib: u64) -> Result<Figures> {
    let size = size_mib * MIB;
    let redis = if config.on_redis {
        Some(Redis::start()?)
    } else {
        None
    };
    // The peer hop goes through a relay that counts its bytes; the relay needs the runtime's port
    // before the runtime starts, and the runtime the relay's address.
    let port = free_port();
    let relay = Relay::start(([127, 0, 0, 1], port).into()).await?;
    let options = HostOptions {
        port: Some(port),
        ..config.options(redis.as_ref())
    }
    .variable("receiver_as_origin", relay.base_url());
    let host = Host::start(options)?;
    let result = measure_on(config, &host, redis.as_ref(), &relay, size_mib, size).await;
    result.with_context(|| format!("{}; the logs:\n{}", config.name(), host.logs()))
}

async fn measure_on(
    config: &Config,
    host: &Host,
    redis: Option<&Redis>,
    relay: &Relay,
    size_mib: u64,
    size: u64,
) -> Result<Figures> {
    let base = host.base_url();
    let ws_base = base.replacen("http://", "ws://", 1);
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out)?;
    let mut figures = Figures::default();

    // Floors.
    let echo_count = if config.behind_pushpin { 1024 } else { 4096 };
    let gateway_floor = if *host.runtime() == HostBinary::Local && !config.behind_pushpin {
        let url = format!("{ws_base}{GATEWAY_ECHO}ws");
        let floor = echo_throughput(&url, Some("msrp"), echo_count, IN_FLIGHT).await?;
        format!("{floor:.1} MiB/s")
    } else {
        "n/a (Pushpin has no echo)".to_owned()
    };
    figures.add(
        "floor: the gateway alone echoing, no component (64 KiB messages, 15 in flight)",
        gateway_floor,
    );
    // Behind Pushpin, a backend that answers several 64 KiB messages at once stalls the socket
    // (seen with Pushpin 1.36), so that floor keeps one message in flight.
    let floor_in_flight = if config.behind_pushpin { 1 } else { IN_FLIGHT };
    let component_floor = echo_throughput(
        &format!("{ws_base}/echo/ws"),
        Some("msrp"),
        echo_count,
        floor_in_flight,
    )
    .await?;
    figures.add(
        "floor: gateway + runtime + trivial echo component, same messages (behind Pushpin: 1 in flight)",
        format!("{component_floor:.1} MiB/s"),
    );
    figures.number("component_floor_mib_s", component_floor);

    // One request, without and with key-value calls, straight to the runtime.
    let http = reqwest::Client::new();
    let plain = mean_request_ms(
        &http,
        reqwest::Method::GET,
        &format!("http://{}/echo/plain", host.http),
    )
    .await?;
    let counter = mean_request_ms(
        &http,
        reqwest::Method::POST,
        &format!("http://{}/echo/counter/bench", host.http),
    )
    .await?;
    let wasi_counter = mean_request_ms(
        &http,
        reqwest::Method::POST,
        &format!("http://{}/echo/wasi-kv/counter/bench", host.http),
    )
    .await?;
    figures.add(
        "one HTTP request to a component: no key-value call / one get + one set, spin:key-value / the same, wasi:keyvalue (mean of 300)",
        format!(
            "{plain:.2} ms / {counter:.2} ms (a call: {:.2} ms) / {wasi_counter:.2} ms (a call: {:.2} ms)",
            (counter - plain).max(0.0) / 2.0,
            (wasi_counter - plain).max(0.0) / 2.0
        ),
    );

    // Key-value calls per chunk, counted by redis-server.
    match redis {
        Some(redis) => key_value_calls(&base, redis, dir.path(), &mut figures).await?,
        None => {
            let counting = Redis::start()?;
            let counted = Host::start(config.options(Some(&counting)))?;
            key_value_calls(&counted.base_url(), &counting, dir.path(), &mut figures)
                .await
                .with_context(|| format!("counting on Redis; the logs:\n{}", counted.logs()))?;
        }
    }

    let mut alice = connect(&base, "alice", Delivery::Push).await?;
    let mut bob = connect(&base, "bob", Delivery::Push).await?;
    let mut carol = connect(&base, "carol", Delivery::Pull).await?;

    // A small transfer first: the memory it takes is the baseline.
    let small = dir.path().join("small.bin");
    make_file(&small, 16 * MIB, 1)?;
    timed_transfer(&mut alice, &mut bob, "bob", &small, &out).await?;
    let small_peak = host.peak_rss_kib().unwrap_or(0);

    // Store-and-forward: the big file uploaded while nobody receives it (Bob's phone rings), then
    // pushed from the store; another uploaded for Carol's pull, then pulled.
    let big = dir.path().join("big.bin");
    make_file(&big, size, 2)?;
    let before_big = relay.bytes_carried();
    let upload = timed_upload(&mut alice, "bob", &big).await?;
    let push = timed_delivery(&mut bob, &out).await?;
    let big_peer_bytes = relay.bytes_carried() - before_big;
    let other = dir.path().join("other.bin");
    make_file(&other, size, 3)?;
    timed_upload(&mut alice, "carol", &other).await?;
    let pull = timed_delivery(&mut carol, &out).await?;
    // Cut-through: new files, received while they upload; the time from Alice's first byte to
    // the recipient's last.
    make_file(&other, size, 4)?;
    let (_, cut_through_push) = timed_transfer(&mut alice, &mut bob, "bob", &other, &out).await?;
    make_file(&other, size, 5)?;
    let (_, cut_through_pull) =
        timed_transfer(&mut alice, &mut carol, "carol", &other, &out).await?;
    std::fs::remove_file(&other)?;
    // The first file again: stored already, so uploaded whole and announced once verified.
    let (upload_again, _) = timed_transfer(&mut alice, &mut carol, "carol", &big, &out).await?;
    let ratio = |figure: f64| figure / component_floor * 100.0;
    let upload_rate = mib_per_sec(size, upload);
    figures.add(
        format!("upload, {size_mib} MiB over MSRP (new, nobody receiving / already stored)"),
        format!(
            "{upload_rate:.1} MiB/s ({:.0}% of the component floor; {:.1} s) / {:.1} MiB/s",
            ratio(upload_rate),
            upload.as_secs_f64(),
            mib_per_sec(size, upload_again)
        ),
    );
    figures.number("upload_msrp_mib_s", upload_rate);
    figures.number("upload_alone_s", upload.as_secs_f64());
    figures.number("upload_stored_again_mib_s", mib_per_sec(size, upload_again));

    // The same file over FT-HTTP (RCC.07), in pieces of 8 MiB, each signed in with Digest.
    rcs_e2e::ensure_account(&base, "alice").await?;
    let password = rcs_core::client::Password::new(rcs_e2e::password_of("alice"));
    let signer = rcs_client::DigestSigner {
        user: "alice",
        password: &password,
        cnonce: "bench".to_owned(),
    };
    let started = Instant::now();
    rcs_client::upload_http(&http, &base, "bench-big", &big, 8 * MIB, &signer).await?;
    let http_upload_rate = mib_per_sec(size, started.elapsed());
    figures.add(
        format!("upload, {size_mib} MiB over FT-HTTP (8 MiB pieces, each signed in)"),
        format!(
            "{http_upload_rate:.1} MiB/s ({:.0}% of the component floor)",
            ratio(http_upload_rate)
        ),
    );
    figures.number("upload_http_mib_s", http_upload_rate);

    let push_rate = mib_per_sec(size, push);
    let pull_rate = mib_per_sec(size, pull);
    figures.add(
        format!("delivery, {size_mib} MiB, push (from the store, after the upload)"),
        format!(
            "{push_rate:.1} MiB/s ({:.0}% of the component floor; {:.1} s)",
            ratio(push_rate),
            push.as_secs_f64()
        ),
    );
    figures.number("delivery_push_mib_s", push_rate);
    figures.add(
        format!("delivery, {size_mib} MiB, pull (from the store, after the upload)"),
        format!(
            "{pull_rate:.1} MiB/s ({:.0}% of the component floor)",
            ratio(pull_rate)
        ),
    );
    figures.number("delivery_pull_mib_s", pull_rate);
    let push_end_to_end = cut_through_push.as_secs_f64();
    let pull_end_to_end = cut_through_pull.as_secs_f64();
    let store_and_forward = (upload + push).as_secs_f64();
    figures.add(
        format!(
            "{size_mib} MiB from Alice's first byte to the recipient's last, received while it \
             uploads (cut-through): push / pull, beside the upload alone and store-and-forward \
             (upload, then push)"
        ),
        format!(
            "push {push_end_to_end:.2} s ({:.2} x the upload alone) / pull {pull_end_to_end:.2} s \
             ({:.2} x); upload alone {:.2} s; store-and-forward {store_and_forward:.2} s",
            push_end_to_end / upload.as_secs_f64(),
            pull_end_to_end / upload.as_secs_f64(),
            upload.as_secs_f64(),
        ),
    );
    figures.number("cut_through_push_s", push_end_to_end);
    figures.number("cut_through_pull_s", pull_end_to_end);
    figures.number("store_and_forward_s", store_and_forward);
    // The HTTP fallback: the signed URL a pull offer carries, fetched by a plain HTTP client.
    let mut dave = connect(&base, "dave", Delivery::Pull).await?;
    let (sent, received) = tokio::join!(alice.send_file("dave", &big), dave.receive_next(&out));
    ensure!(sent?.delivered());
    let received = received?;
    std::fs::remove_file(&received.path)?;
    let url = received.url.context("the pull offer's URL")?;
    let fetched = dir.path().join("fetched.bin");
    let started = Instant::now();
    let got = rcs_client::download(&url, &fetched, Duration::from_secs(300), false).await?;
    let http_time = started.elapsed();
    ensure!(got.size == size);
    std::fs::remove_file(&fetched)?;
    let big_peak = host.peak_rss_kib().unwrap_or(0);
    let http_rate = mib_per_sec(size, http_time);
    figures.add(
        format!("delivery, {size_mib} MiB, HTTP fallback (GET)"),
        format!(
            "{http_rate:.1} MiB/s ({:.0}% of the component floor)",
            ratio(http_rate)
        ),
    );

    // Chat latency: Alice writes, Bob reads, one message at a time.
    let mut latencies = Vec::new();
    for n in 0..300 {
        let started = Instant::now();
        alice.chat("bob", &format!("ping {n}")).await?;
        bob.next_chat().await?;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    figures.add(
        "chat latency, sender's MESSAGE to the recipient's socket (p50 / p99, 300 messages)",
        format!(
            "{:.2} ms / {:.2} ms",
            percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
            percentile(&latencies, 0.99).as_secs_f64() * 1000.0
        ),
    );

    // Signing in: a REGISTER on a fresh connection, answered with a digest challenge, answered
    // again with credentials and granted (two round trips); beside it, a refresh on the signed-in
    // connection (one round trip, no challenge).
    rcs_e2e::ensure_account(&base, "erin").await?;
    let (mut sign_ins, mut refreshes) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        let options = rcs_e2e::signed_in("erin", Duration::from_secs(60));
        let mut erin = Client::connect(&base, "erin", options).await?;
        let started = Instant::now();
        erin.register(Some(Delivery::Push)).await?;
        sign_ins.push(started.elapsed());
        let started = Instant::now();
        erin.register(Some(Delivery::Push)).await?;
        refreshes.push(started.elapsed());
        erin.close().await?;
    }
    sign_ins.sort();
    refreshes.sort();
    let ms = |sorted: &[Duration], p| percentile(sorted, p).as_secs_f64() * 1000.0;
    figures.add(
        "REGISTER with digest on a new connection, challenge and answer (p50 / p99, 100); refresh",
        format!(
            "{:.2} ms / {:.2} ms; refresh {:.2} ms / {:.2} ms",
            ms(&sign_ins, 0.5),
            ms(&sign_ins, 0.99),
            ms(&refreshes, 0.5),
            ms(&refreshes, 0.99)
        ),
    );

    // AS-to-AS bytes against file size, one fresh transfer per size.
    let mut sizes = Vec::new();
    for (n, bytes) in [1024, MIB, 64 * MIB].into_iter().enumerate() {
        let path = dir.path().join(format!("sized-{n}.bin"));
        make_file(&path, bytes, 10 + n as u64)?;
        let before = relay.bytes_carried();
        timed_transfer(&mut alice, &mut bob, "bob", &path, &out).await?;
        sizes.push(format!(
            "{}: {} B",
            human(bytes),
            relay.bytes_carried() - before
        ));
        std::fs::remove_file(&path)?;
    }
    sizes.push(format!("{size_mib} MiB: {big_peer_bytes} B"));
    figures.add(
        "AS-to-AS bytes per transfer (HTTP requests + answers on the wire: the first value, and the recipient's 200 handed to the receiver AS)",
        sizes.join(", "),
    );
    figures.number("peak_rss_mib", big_peak as f64 / 1024.0);
    figures.add(
        format!(
            "runtime peak resident memory after a 16 MiB transfer / after the {size_mib} MiB ones"
        ),
        format!(
            "{:.1} MiB / {:.1} MiB",
            small_peak as f64 / 1024.0,
            big_peak as f64 / 1024.0
        ),
    );
    Ok(figures)
}

fn human(bytes: u64) -> String {
    if bytes >= MIB {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{} KiB", bytes / 1024)
    }
}

fn list(text: &str) -> Vec<String> {
    text.split(',').map(|item| item.trim().to_owned()).collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut size_mib = 256u64;
    let mut json = false;
    let mut runtimes = vec!["local".to_owned()];
    let mut stores = vec!["sqlite".to_owned()];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--size-mib" => size_mib = args.next().context("--size-mib N")?.parse()?,
            "--runtime" => runtimes = list(&args.next().context("--runtime LIST")?),
            "--store" => stores = list(&args.next().context("--store LIST")?),
            "--json" => json = true,
            other => bail!(
                "unknown argument {other}; use --size-mib N, --runtime local,local+pushpin,spin, \
                 --store sqlite,redis, --json"
            ),
        }
    }
    let mut configs = Vec::new();
    for runtime in &runtimes {
        let (runtime, behind_pushpin) = match runtime.as_str() {
            "local" => (HostBinary::Local, false),
            "local+pushpin" => (HostBinary::Local, true),
            "spin" => (HostBinary::real_spin().map_err(anyhow::Error::msg)?, true),
            other => bail!("unknown runtime {other:?}: local, local+pushpin or spin"),
        };
        for store in &stores {
            let on_redis = match store.as_str() {
                "sqlite" => false,
                "redis" => true,
                other => bail!("unknown store {other:?}: sqlite or redis"),
            };
            configs.push(Config {
                runtime: runtime.clone(),
                behind_pushpin,
                on_redis,
            });
        }
    }

    let mut columns = Vec::new();
    for config in &configs {
        eprintln!("measuring: {}", config.name());
        columns.push(measure(config, size_mib).await?);
    }

    println!("\nEdge benchmark, {size_mib} MiB file\n");
    let names: Vec<String> = configs.iter().map(Config::name).collect();
    println!("| measure | {} |", names.join(" | "));
    println!("|---|{}", "---|".repeat(names.len()));
    let measures: Vec<String> = columns[0].rows.iter().map(|(m, _)| m.clone()).collect();
    for (index, measure) in measures.iter().enumerate() {
        let figures: Vec<&str> = columns
            .iter()
            .map(|column| column.rows.get(index).map_or("", |(_, f)| f.as_str()))
            .collect();
        println!("| {measure} | {} |", figures.join(" | "));
    }
    if json {
        // The first configuration's numbers at the top, every configuration's in `configurations`.
        let mut object = columns[0].json(&names[0]);
        let all: Vec<serde_json::Value> = columns
            .iter()
            .zip(&names)
            .map(|(column, name)| serde_json::Value::Object(column.json(name)))
            .collect();
        object.insert("size_mib".into(), size_mib.into());
        object.insert("configurations".into(), all.into());
        println!("{}", serde_json::Value::Object(object));
    }
    Ok(())
}

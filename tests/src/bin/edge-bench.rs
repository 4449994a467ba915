//! The edge benchmark: starts the local host on `spin.toml` (plus the echo component) and prints one
//! table. All figures are measured in the same run on the same host:
//!
//! - two floors with the file transfer's message size (64 KiB, 16 in flight, as the delivery window): WebSocket messages
//!   echoed by the gateway alone, with no component, and echoed by a trivial component behind the
//!   gateway (the platform's own cost);
//! - upload and delivery throughput of a 256 MiB file (push, pull, HTTP fallback);
//! - chat latency, p50 and p99;
//! - the bytes that cross between the two application servers per transfer, against file size;
//! - the host's peak resident memory, after a small transfer and after the 256 MiB one.
//!
//! `cargo run --release -p rcs-e2e --bin edge-bench [-- --size-mib 256 --store redis]`

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use futures_util::{SinkExt, StreamExt};
use rcs_client::{Client, Role};
use rcs_core::server::Delivery;
use rcs_e2e::{GATEWAY_ECHO, Host, HostOptions, Redis, make_file, peer_traffic};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const MIB: u64 = 1024 * 1024;
const MESSAGE: usize = 64 * 1024;
/// Messages in flight: the default MSRP window (`window` in spin.toml).
const IN_FLIGHT: usize = 16;

struct Row {
    measure: String,
    figure: String,
}

fn row(measure: impl Into<String>, figure: impl Into<String>) -> Row {
    Row {
        measure: measure.into(),
        figure: figure.into(),
    }
}

fn mib_per_sec(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / MIB as f64 / elapsed.as_secs_f64()
}

/// Sends `count` binary messages of [`MESSAGE`] bytes over a WebSocket to `url` with
/// [`IN_FLIGHT`] outstanding, and waits for every echo; returns MiB/s one way.
async fn echo_throughput(url: &str, protocol: Option<&str>, count: usize) -> Result<f64> {
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
    while sent < IN_FLIGHT.min(count) {
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

async fn connect(base: &str, name: &str, role: Role, delivery: Delivery) -> Result<Client> {
    rcs_e2e::registered(base, name, role, Some(delivery), Duration::from_secs(120)).await
}

/// One transfer; returns (upload time, delivery time after the upload ended).
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
    Ok((upload, done.saturating_sub(upload)))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut size_mib = 256u64;
    let mut on_redis = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--size-mib" => size_mib = args.next().context("--size-mib N")?.parse()?,
            "--store" => on_redis = args.next().as_deref() == Some("redis"),
            other => {
                anyhow::bail!("unknown argument {other}; use --size-mib N, --store sqlite|redis")
            }
        }
    }
    let size = size_mib * MIB;
    let redis = if on_redis {
        Some(Redis::start()?)
    } else {
        None
    };
    let mut options = match &redis {
        Some(redis) => HostOptions::redis(redis.url()),
        None => HostOptions::sqlite(),
    };
    options.with_echo = true;
    let host = Host::start(options)?;
    let base = host.base_url();
    let ws_base = base.replacen("http://", "ws://", 1);
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out)?;
    let mut rows = Vec::new();

    // Floors.
    let echo_count = 4096;
    let gateway_floor = echo_throughput(
        &format!("{ws_base}{GATEWAY_ECHO}ws"),
        Some("msrp"),
        echo_count,
    )
    .await?;
    rows.push(row(
        "floor: the gateway alone echoing, no component (64 KiB messages, 16 in flight)",
        format!("{gateway_floor:.1} MiB/s"),
    ));
    let component_floor =
        echo_throughput(&format!("{ws_base}/echo/ws"), Some("msrp"), echo_count).await?;
    rows.push(row(
        "floor: gateway + host + trivial echo component, same messages",
        format!("{component_floor:.1} MiB/s"),
    ));

    let mut alice = connect(&base, "alice", Role::Sender, Delivery::Push).await?;
    let mut bob = connect(&base, "bob", Role::Receiver, Delivery::Push).await?;
    let mut carol = connect(&base, "carol", Role::Receiver, Delivery::Pull).await?;

    // A small transfer first: the memory it takes is the baseline.
    let small = dir.path().join("small.bin");
    make_file(&small, 16 * MIB, 1)?;
    timed_transfer(&mut alice, &mut bob, "bob", &small, &out).await?;
    let small_peak = host.peak_rss_kib().unwrap_or(0);

    // The big file, pushed, then pulled, then fetched over HTTP.
    let big = dir.path().join("big.bin");
    make_file(&big, size, 2)?;
    let (upload, push) = timed_transfer(&mut alice, &mut bob, "bob", &big, &out).await?;
    let (upload_again, pull) = timed_transfer(&mut alice, &mut carol, "carol", &big, &out).await?;
    let ratio = |figure: f64| figure / component_floor * 100.0;
    let upload_rate = mib_per_sec(size, upload);
    rows.push(row(
        format!("upload, {size_mib} MiB over MSRP (first / already stored)"),
        format!(
            "{upload_rate:.1} MiB/s ({:.0}% of the component floor) / {:.1} MiB/s",
            ratio(upload_rate),
            mib_per_sec(size, upload_again)
        ),
    ));
    let push_rate = mib_per_sec(size, push);
    let pull_rate = mib_per_sec(size, pull);
    rows.push(row(
        format!("delivery, {size_mib} MiB, push"),
        format!(
            "{push_rate:.1} MiB/s ({:.0}% of the component floor)",
            ratio(push_rate)
        ),
    ));
    rows.push(row(
        format!("delivery, {size_mib} MiB, pull"),
        format!(
            "{pull_rate:.1} MiB/s ({:.0}% of the component floor)",
            ratio(pull_rate)
        ),
    ));
    // The HTTP fallback: the signed URL a pull offer carries, fetched by a plain HTTP client.
    let mut dave = connect(&base, "dave", Role::Receiver, Delivery::Pull).await?;
    let (sent, received) = tokio::join!(alice.send_file("dave", &big), dave.receive_next(&out));
    ensure!(sent?.delivered());
    let received = received?;
    std::fs::remove_file(&received.path)?;
    let url = received.url.context("the pull offer's URL")?;
    let fetched = dir.path().join("fetched.bin");
    let started = Instant::now();
    let got = rcs_client::download(&url, &fetched, Duration::from_secs(60), false).await?;
    let http = started.elapsed();
    ensure!(got.size == size);
    std::fs::remove_file(&fetched)?;
    let big_peak = host.peak_rss_kib().unwrap_or(0);
    let http_rate = mib_per_sec(size, http);
    rows.push(row(
        format!("delivery, {size_mib} MiB, HTTP fallback (GET)"),
        format!(
            "{http_rate:.1} MiB/s ({:.0}% of the component floor)",
            ratio(http_rate)
        ),
    ));

    // Chat latency: Alice writes, Bob reads, one message at a time.
    let mut latencies = Vec::new();
    for n in 0..300 {
        let started = Instant::now();
        alice.chat("bob", &format!("ping {n}")).await?;
        bob.next_chat().await?;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    rows.push(row(
        "chat latency, sender's MESSAGE to the recipient's socket (p50 / p99, 300 messages)",
        format!(
            "{:.2} ms / {:.2} ms",
            percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
            percentile(&latencies, 0.99).as_secs_f64() * 1000.0
        ),
    ));

    // AS-to-AS bytes against file size, one fresh transfer per size.
    let mut sizes = Vec::new();
    for (n, bytes) in [1024, MIB, 64 * MIB].into_iter().enumerate() {
        let path = dir.path().join(format!("sized-{n}.bin"));
        make_file(&path, bytes, 10 + n as u64)?;
        let before = peer_traffic(&host.log).len();
        timed_transfer(&mut alice, &mut bob, "bob", &path, &out).await?;
        let traffic = peer_traffic(&host.log);
        let (request, answer) = traffic.get(before).copied().unwrap_or_default();
        sizes.push(format!("{}: {} B", human(bytes), request + answer));
        std::fs::remove_file(&path)?;
    }
    let first_big = peer_traffic(&host.log).get(1).copied().unwrap_or_default();
    sizes.push(format!("{size_mib} MiB: {} B", first_big.0 + first_big.1));
    rows.push(row(
        "AS-to-AS bytes per transfer (request + answer)",
        sizes.join(", "),
    ));
    rows.push(row(
        "host peak resident memory after a 16 MiB transfer / after the {size} ones",
        format!(
            "{:.1} MiB / {:.1} MiB",
            small_peak as f64 / 1024.0,
            big_peak as f64 / 1024.0
        ),
    ));

    let store = if on_redis { "Redis" } else { "SQLite" };
    println!("\nEdge benchmark: local host, store on {store}, {size_mib} MiB file\n");
    println!("| measure | figure |\n|---|---|");
    for row in rows {
        println!(
            "| {} | {} |",
            row.measure.replace("{size}", &format!("{size_mib} MiB")),
            row.figure
        );
    }
    Ok(())
}

fn human(bytes: u64) -> String {
    if bytes >= MIB {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{} KiB", bytes / 1024)
    }
}

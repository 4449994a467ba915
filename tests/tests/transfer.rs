//! Alice sends Bob files through the real edge: the Spin components of `spin.toml` run by the local
//! host (with its GRIP gateway) or by real Spin 4.0.2 behind Pushpin, and the shared store on SQLite
//! (the local store) or on a real `redis-server` (the network store of claim 2). The same scenarios
//! run on each. The real-Spin tests need `SPIN_BIN` or `spin` on `PATH`; without it they say they
//! were skipped.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use rcs_client::{Client, ReceivedFile, SendOutcome};
use rcs_core::service::Delivery;
use rcs_e2e::{
    Host, HostBinary, HostOptions, Redis, make_file, peer_traffic, sha256_file, spin_or_skip,
};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;

const TIMEOUT: Duration = Duration::from_secs(60);

/// A receiving user registered with the receiver AS.
async fn recipient(base: &str, name: &str, delivery: Delivery) -> Result<Client> {
    rcs_e2e::registered(base, name, Some(delivery), TIMEOUT).await
}

/// A sending user registered with the sender AS.
async fn sender(base: &str, name: &str) -> Result<Client> {
    rcs_e2e::registered(base, name, None, TIMEOUT).await
}

/// Alice sends the file at `path`; Bob takes the next offer into `out`. Both run at once.
async fn transfer(
    alice: &mut Client,
    bob: &mut Client,
    to: &str,
    path: &Path,
    out: &Path,
) -> Result<(SendOutcome, ReceivedFile)> {
    let (sent, received) = tokio::join!(alice.send_file(to, path), bob.receive_next(out));
    Ok((sent.context("sending")?, received.context("receiving")?))
}

/// Push, pull and the HTTP fallback of files of each size in `sizes`, a forged URL, and chat in
/// order.
async fn scenarios(host: &Host, sizes: &[u64]) -> Result<()> {
    let base = host.base_url();
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("bob");
    std::fs::create_dir_all(&out)?;
    let mut alice = sender(&base, "alice").await?;
    let mut bob = recipient(&base, "bob", Delivery::Push).await?;

    // Push: every size arrives byte-identical.
    for (&size, seed) in sizes.iter().zip(1..) {
        let path = dir.path().join(format!("push-{size}.bin"));
        let digest = make_file(&path, size, seed)?;
        let (sent, received) = transfer(&mut alice, &mut bob, "bob", &path, &out).await?;
        ensure!(
            sent.delivered(),
            "push of {size} bytes not delivered: {sent:?}"
        );
        ensure!(received.size == size && received.sha256 == digest);
        ensure!(sha256_file(&received.path)? == digest, "saved file differs");
        std::fs::remove_file(&received.path)?;
    }

    // Pull: Carol asks for each file once the receiver AS tells her of it (claim 12); the same
    // signed URL then serves any HTTP client (the fallback), which gets the whole file byte for
    // byte, and resumes a cut download with `Range`.
    let mut carol = recipient(&base, "carol", Delivery::Pull).await?;
    for (&size, seed) in sizes.iter().zip(100..) {
        let path = dir.path().join(format!("pull-{size}.bin"));
        let digest = make_file(&path, size, seed)?;
        let (sent, received) = transfer(&mut alice, &mut carol, "carol", &path, &out).await?;
        ensure!(
            sent.delivered(),
            "pull of {size} bytes not delivered: {sent:?}"
        );
        ensure!(received.size == size && received.sha256 == digest);
        ensure!(sha256_file(&received.path)? == digest, "saved file differs");
        std::fs::remove_file(&received.path)?;

        let url = received.url.context("a pull offer carries the URL")?;
        let fetched = dir.path().join(format!("fetched-{size}.bin"));
        let whole = rcs_client::download(&url, &fetched, TIMEOUT, false).await?;
        ensure!(
            whole.sha256 == digest && whole.size == size,
            "HTTP download differs"
        );
        let half = size / 2;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&fetched)?
            .set_len(half)?;
        let resumed = rcs_client::download(&url, &fetched, TIMEOUT, false).await?;
        ensure!(
            resumed.resumed_from == half,
            "the download of {size} bytes resumed from {}",
            resumed.resumed_from
        );
        ensure!(sha256_file(&fetched)? == digest, "resumed download differs");
        std::fs::remove_file(&fetched)?;

        // The same URL with its signature altered is refused.
        let forged = forge_signature(&url)?;
        let response = reqwest::get(&forged).await?;
        ensure!(
            response.status() == 403,
            "a forged URL was answered {}",
            response.status()
        );
    }

    // Only signalling crossed between the servers, never the file: per transfer the first value's
    // MESSAGE and the recipient's answer, the same size (but for digits) whatever the file's size.
    // The local host logs those bytes; Spin does not.
    if *host.runtime() == HostBinary::Local {
        first_values_only(host, 2 * sizes.len(), 2 * sizes.iter().sum::<u64>())?;
    }
    chat_in_order(&mut alice, &mut bob).await
}

/// The URL with the last hex digit of its `sig` changed.
fn forge_signature(url: &str) -> Result<String> {
    let at = url.find("sig=").context("a signed URL has sig=")? + "sig=".len();
    let end = url[at..].find('&').map_or(url.len(), |n| at + n);
    let last = url[..end].chars().last().context("an empty sig")?;
    let swapped = if last == '0' { '1' } else { '0' };
    Ok(format!("{}{swapped}{}", &url[..end - 1], &url[end..]))
}

/// The host's log shows only small peer exchanges: per transfer the first value and the
/// recipient's answer to the receiver AS (its 200 to a push, or its download request), which its
/// one SIP connection to the sender AS hands over, and the sender AS's progress notices that wake
/// a delivery of a file still arriving (cut-through), at most one per half MiB stored. None carries
/// any of the file: all of them together are a small fraction of its bytes.
fn first_values_only(host: &Host, transfers: usize, file_bytes: u64) -> Result<()> {
    let traffic = peer_traffic(&host.log);
    let notices = traffic.len().saturating_sub(2 * transfers);
    ensure!(
        traffic.len() >= 2 * transfers
            && notices as u64 <= file_bytes / (512 * KIB) + 2 * transfers as u64,
        "a first value and a device hop per transfer, and few notices: {traffic:?}"
    );
    let exchanges: Vec<u64> = traffic
        .iter()
        .map(|(request, answer)| request + answer)
        .collect();
    ensure!(
        exchanges.iter().all(|&bytes| bytes < 2048),
        "peer exchanges over 2 KiB: {traffic:?}"
    );
    let total: u64 = exchanges.iter().sum();
    ensure!(
        total < 4096 * transfers as u64 + file_bytes / 200,
        "{total} bytes crossed between the servers for {file_bytes} bytes of files"
    );
    Ok(())
}

/// Twenty chats from Alice reach Bob in the order sent.
async fn chat_in_order(alice: &mut Client, bob: &mut Client) -> Result<()> {
    for n in 0..20 {
        ensure!(alice.chat("bob", &format!("message {n}")).await? == 202);
    }
    for n in 0..20 {
        let chat = bob.next_chat().await?;
        ensure!(
            chat.body == format!("message {n}").as_bytes(),
            "chat {n} out of order"
        );
        ensure!(chat.from.contains("alice"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn files_and_chat_through_the_local_store() -> Result<()> {
    let host = Host::start(HostOptions::sqlite())?;
    scenarios(&host, &[KIB, 10 * MIB, 100 * MIB]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn files_and_chat_through_the_network_store() -> Result<()> {
    let redis = Redis::start()?;
    let host = Host::start(HostOptions::redis(redis.url()))?;
    scenarios(&host, &[KIB, 10 * MIB, 100 * MIB]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn files_and_chat_on_real_spin() -> Result<()> {
    let Some(spin) = spin_or_skip("files_and_chat_on_real_spin") else {
        return Ok(());
    };
    let host = Host::start(HostOptions::sqlite().on(spin))?;
    scenarios(&host, &[KIB, 10 * MIB])
        .await
        .with_context(|| format!("on real Spin; the logs:\n{}", host.logs()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_file_through_redis_on_real_spin() -> Result<()> {
    let Some(spin) = spin_or_skip("a_file_through_redis_on_real_spin") else {
        return Ok(());
    };
    let redis = Redis::start()?;
    let host = Host::start(HostOptions::redis(redis.url()).on(spin))?;
    let base = host.base_url();
    let dir = tempfile::tempdir()?;
    let mut alice = sender(&base, "alice").await?;
    let mut bob = recipient(&base, "bob", Delivery::Push).await?;
    let path = dir.path().join("via-redis.bin");
    let digest = make_file(&path, 4 * MIB, 7)?;
    let (sent, received) = transfer(&mut alice, &mut bob, "bob", &path, dir.path())
        .await
        .with_context(|| format!("on real Spin with Redis; the logs:\n{}", host.logs()))?;
    ensure!(sent.delivered(), "not delivered: {sent:?}");
    ensure!(received.sha256 == digest && sha256_file(&received.path)? == digest);
    Ok(())
}

/// 100 users send 100 other users 1 MiB each, all at once: each Bob receives while his Alice is
/// still uploading (cut-through), and every file arrives byte-identical. Everyone signs in first
/// (ten at a time, as users arrive), then the 100 transfers start together, and all 100 are in
/// progress at one instant.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_transfers_all_arrive() -> Result<()> {
    const TRANSFERS: usize = 100;
    let host = Host::start(HostOptions::sqlite())?;
    let base = host.base_url();
    let dir = tempfile::tempdir()?;
    let signing_in = std::sync::Arc::new(tokio::sync::Semaphore::new(10));
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(TRANSFERS));
    let mut tasks = Vec::new();
    for n in 0..TRANSFERS as u64 {
        let base = base.clone();
        let root = dir.path().to_owned();
        let signing_in = std::sync::Arc::clone(&signing_in);
        let start = std::sync::Arc::clone(&start);
        tasks.push(tokio::spawn(async move {
            let path = root.join(format!("file-{n}.bin"));
            let digest = make_file(&path, 2 * MIB, 100 + n)?;
            let out = root.join(format!("out-{n}"));
            std::fs::create_dir_all(&out)?;
            let signed_in = async {
                let _turn = signing_in.acquire().await?;
                let bob = recipient(&base, &format!("bob{n}"), Delivery::Push).await?;
                let alice = sender(&base, &format!("alice{n}")).await?;
                anyhow::Ok((alice, bob))
            }
            .await;
            // Every task reaches the barrier, signed in or not, so that none waits forever.
            start.wait().await;
            let (mut alice, mut bob) = signed_in?;
            let began = std::time::Instant::now();
            let to = format!("bob{n}");
            let (sent, received) = transfer(&mut alice, &mut bob, &to, &path, &out).await?;
            ensure!(sent.delivered(), "transfer {n}: {sent:?}");
            ensure!(received.sha256 == digest, "transfer {n} differs");
            anyhow::Ok((began, std::time::Instant::now()))
        }));
    }
    let mut failures = Vec::new();
    let mut spans = Vec::new();
    for (n, task) in tasks.into_iter().enumerate() {
        match task.await? {
            Ok(span) => spans.push(span),
            Err(error) => failures.push(format!("{n}: {error:#}")),
        }
    }
    ensure!(
        failures.is_empty(),
        "failed transfers:\n{}\nthe host's logs:\n{}",
        failures.join("\n"),
        host.logs()
    );
    let last_start = spans.iter().map(|(began, _)| *began).max();
    let first_end = spans.iter().map(|(_, ended)| *ended).min();
    ensure!(
        last_start < first_end,
        "the transfers did not all run at once: the last started after the first ended"
    );
    Ok(())
}

/// An FT-HTTP upload (RCC.07) in pieces, each signed in with HTTP Digest: the first a multipart
/// POST, the rest PUTs with Content-Range; the signed URL of the answer gives the same bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ft_http_upload_in_pieces_is_stored_whole() -> Result<()> {
    let host = Host::start(HostOptions::sqlite())?;
    let base = host.base_url();
    rcs_e2e::ensure_account(&base, "alice").await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("pieces.bin");
    let size = 3 * MIB + 12_345;
    let digest = make_file(&path, size, 31)?;
    let password = rcs_core::client::Password::new(rcs_e2e::password_of("alice"));
    let signer = rcs_client::DigestSigner {
        user: "alice",
        password: &password,
        cnonce: "pieces".to_owned(),
    };
    let http = reqwest::Client::new();
    let uploaded = rcs_client::upload_http(&http, &base, "in-pieces", &path, MIB, &signer)
        .await
        .with_context(|| format!("the logs:\n{}", host.logs()))?;
    ensure!(uploaded.requests == 4, "{} requests", uploaded.requests);
    let info = rcs_core::ft_http::FileInfoDocument::parse(&uploaded.file_info)?;
    ensure!(info.file.size == size);
    let fetched = dir.path().join("fetched.bin");
    let got = rcs_client::download(info.file.url.as_str(), &fetched, TIMEOUT, false).await?;
    ensure!(got.size == size && sha256_file(&fetched)? == digest);
    Ok(())
}

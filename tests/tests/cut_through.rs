//! Cut-through delivery through the real edge: Bob receives while Alice is still uploading, pushed
//! or pulled, on the local host, behind a real Pushpin and on real Spin 4.0.2 behind Pushpin. A file
//! whose bytes change while it uploads (so they no longer hash to the digest Alice announced) fails
//! Bob's transfer and leaves nothing on his disk; Alice stopping midway ends Bob's transfer with
//! her reason; Alice dropping and resuming, or Bob losing his connection, lets Bob's delivery go
//! on; the host killed mid-transfer leaves nothing half-visible and the transfer resumes.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use rcs_client::Client;
use rcs_core::service::Delivery;
use rcs_e2e::{Host, HostOptions, Relay, make_file, sha256_file, spin_or_skip};

const MIB: u64 = 1024 * 1024;

const TIMEOUT: Duration = Duration::from_secs(90);

async fn user(base: &str, name: &str, delivery: Option<Delivery>) -> Result<Client> {
    rcs_e2e::registered(base, name, delivery, TIMEOUT).await
}

/// Files in `dir` (a failed delivery leaves none, not even a part).
fn files_in(dir: &Path) -> Result<Vec<String>> {
    Ok(std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect())
}

/// Alice sends Bob (push) or Carol (pull) a file of `size` bytes; each has bytes of it before
/// Alice's upload completes. For the pull, the signed URL of the offer answers 404 with the reason
/// while the upload is in progress, and serves the whole file after.
async fn delivered_while_uploading(host: &Host, size: u64, tag: &str) -> Result<()> {
    let base = host.base_url();
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out)?;
    let mut alice = user(&base, &format!("alice-{tag}"), None).await?;
    // Each file is new: every seed of this file is used once.
    for (delivery, seed) in [(Delivery::Push, 61), (Delivery::Pull, 67)] {
        let name = format!("bob-{tag}-{seed}");
        let mut bob = user(&base, &name, Some(delivery)).await?;
        let path = dir.path().join(format!("film-{seed}.bin"));
        let digest = make_file(&path, size, seed)?;
        let uploaded = std::sync::atomic::AtomicBool::new(false);
        let sending = async {
            let sent = alice.send_file(&name, &path).await;
            uploaded.store(true, std::sync::atomic::Ordering::SeqCst);
            sent
        };
        let receiving = async {
            // The offer comes while Alice is still uploading (the core's tests show the bytes
            // flowing meanwhile, in virtual time; here the clock is real).
            let offer = bob.next_offer().await?;
            let offered_early = !uploaded.load(std::sync::atomic::Ordering::SeqCst);
            let mut early = None;
            if delivery == Delivery::Pull {
                let url = offer.url.context("a pull offer carries the URL")?;
                let response = reqwest::get(&url).await?;
                early = Some((response.status().as_u16(), response.text().await?, url));
            }
            anyhow::Ok((bob.receive_next(&out).await?, early, offered_early))
        };
        let (sent, received) = tokio::join!(sending, receiving);
        let sent = sent.with_context(|| format!("{delivery:?}: sending\n{}", host.logs()))?;
        let (received, early, offered_early) =
            received.with_context(|| format!("{delivery:?}: receiving\n{}", host.logs()))?;
        ensure!(sent.delivered(), "{delivery:?}: not delivered: {sent:?}");
        ensure!(received.sha256 == digest && sha256_file(&received.path)? == digest);
        ensure!(
            offered_early,
            "{delivery:?}: Bob was offered the file only after Alice's upload was complete"
        );
        if let Some((status, reason, url)) = early {
            ensure!(
                status == 404 && reason.contains("once its upload is complete"),
                "the URL of a file still uploading: {status} {reason}"
            );
            let fetched = dir.path().join("fetched.bin");
            let whole = rcs_client::download(&url, &fetched, TIMEOUT, false).await?;
            ensure!(
                whole.sha256 == digest,
                "the URL serves the file once stored"
            );
        }
        std::fs::remove_file(&received.path)?;
    }
    Ok(())
}

/// Alice's file changes on disk while it uploads, so its bytes no longer hash to the digest she
/// announced: her upload fails with the reason, Bob's transfer fails with it, and Bob keeps nothing.
async fn a_file_changed_while_uploading_is_not_delivered(host: &Host, size: u64) -> Result<()> {
    let base = host.base_url();
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out)?;
    let mut alice = user(&base, "alice-changed", None).await?;
    let mut bob = user(&base, "bob-changed", Some(Delivery::Push)).await?;
    let path = dir.path().join("changing.bin");
    make_file(&path, size, 63)?;
    let mut sending = alice.watch_progress();
    let change = {
        let path = path.clone();
        tokio::spawn(async move {
            // Once Alice has sent the start of the file (and read its digest), its end changes.
            let _ = sending.wait_for(|&acknowledged| acknowledged >= MIB).await;
            let tail = vec![0x5a; MIB as usize];
            use std::io::{Seek, Write};
            let mut file = std::fs::OpenOptions::new().write(true).open(&path)?;
            file.seek(std::io::SeekFrom::Start(size - MIB))?;
            file.write_all(&tail)?;
            anyhow::Ok(())
        })
    };
    let (sent, received) = tokio::join!(
        alice.send_file("bob-changed", &path),
        bob.receive_next(&out)
    );
    change.await??;
    let sent = sent.with_context(|| host.logs())?;
    ensure!(!sent.delivered(), "a changed file was delivered: {sent:?}");
    ensure!(sent.report == Some(400), "Alice is told: {sent:?}");
    match received {
        Err(rcs_client::Error::Aborted { reason }) => {
            ensure!(reason.contains("announced"), "Bob's reason: {reason}")
        }
        other => anyhow::bail!(
            "Bob's delivery of a changed file: {other:?}\n{}",
            host.logs()
        ),
    }
    let left = files_in(&out)?;
    ensure!(left.is_empty(), "Bob kept {left:?}");
    Ok(())
}

/// Alice's client drops midway while Bob receives; a new client of hers sends the file again,
/// which resumes the upload, and Bob's delivery goes on to the end.
async fn alice_drops_and_resumes_while_bob_receives(host: &Host, size: u64) -> Result<()> {
    let base = host.base_url();
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out)?;
    let mut bob = user(&base, "bob-resumed", Some(Delivery::Push)).await?;
    let path = dir.path().join("resumed.bin");
    let digest = make_file(&path, size, 64)?;
    let alice_side = async {
        let mut alice = user(&base, "alice-resumed", None).await?;
        let mut sending = alice.watch_progress();
        tokio::select! {
            sent = alice.send_file("bob-resumed", &path) => {
                anyhow::bail!("the upload was to be cut: {sent:?}")
            }
            _ = sending.wait_for(|&acknowledged| acknowledged >= size / 3) => {}
        }
        drop(alice);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut again = user(&base, "alice-resumed", None).await?;
        let sent = again.send_file("bob-resumed", &path).await?;
        ensure!(sent.resumed_from > 0, "the upload resumed: {sent:?}");
        anyhow::Ok(sent)
    };
    let (sent, received) = tokio::join!(alice_side, bob.receive_next(&out));
    let sent = sent.with_context(|| host.logs())?;
    ensure!(sent.delivered(), "not delivered: {sent:?}");
    let received = received.with_context(|| host.logs())?;
    ensure!(received.sha256 == digest && sha256_file(&received.path)? == digest);
    Ok(())
}

/// Alice stops sending midway (as Ctrl-C does in `rcs send`): her session ends with cause 487,
/// Bob's transfer fails with her reason, and neither his disk nor the store keeps anything of it.
async fn alice_stops_midway_while_bob_receives(host: &Host, size: u64) -> Result<()> {
    let base = host.base_url();
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out)?;
    let mut alice = user(&base, "alice-stops", None).await?;
    let mut bob = user(&base, "bob-stops", Some(Delivery::Push)).await?;
    let path = dir.path().join("stopped.bin");
    make_file(&path, size, 65)?;
    let mut sending = alice.watch_progress();
    let stop = async move {
        let _ = sending
            .wait_for(|&acknowledged| acknowledged >= size / 3)
            .await;
    };
    let mut receiving = bob.watch_progress();
    let (sent, received) = tokio::join!(
        alice.send_file_until("bob-stops", &path, stop),
        bob.receive_next(&out)
    );
    let sent = sent.with_context(|| host.logs())?;
    let cause = sent.bye_reason.as_ref().and_then(|reason| reason.cause);
    ensure!(cause == Some(487) && !sent.delivered(), "Alice: {sent:?}");
    match received {
        Err(rcs_client::Error::Aborted { reason }) => {
            ensure!(reason.contains("aborted"), "Bob's reason: {reason}")
        }
        other => anyhow::bail!(
            "Bob's delivery of a stopped file: {other:?}\n{}",
            host.logs()
        ),
    }
    let written = *receiving.borrow_and_update();
    ensure!(
        written > 0,
        "Bob received the start of the file before Alice stopped"
    );
    let left = files_in(&out)?;
    ensure!(left.is_empty(), "Bob kept {left:?}");
    Ok(())
}

/// Bob's MSRP connection is cut while Alice is still uploading; his client connects again, binds,
/// and the delivery goes on from his last acknowledged byte to the end.
async fn bob_loses_his_connection_while_alice_uploads(host: &Host, size: u64) -> Result<()> {
    let relay = Relay::start(host.client_addr()).await?;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out)?;
    let mut bob = user(&relay.base_url(), "bob-cut", Some(Delivery::Push)).await?;
    let mut alice = user(&host.base_url(), "alice-cut", None).await?;
    let path = dir.path().join("cut.bin");
    let digest = make_file(&path, size, 66)?;
    let uploaded = std::sync::atomic::AtomicBool::new(false);
    let mut written = bob.watch_progress();
    let sending = async {
        let sent = alice.send_file("bob-cut", &path).await;
        uploaded.store(true, std::sync::atomic::Ordering::SeqCst);
        sent
    };
    let cut = async {
        let _ = written.wait_for(|&written| written >= size / 4).await;
        let early = !uploaded.load(std::sync::atomic::Ordering::SeqCst);
        relay.cut("/msrp");
        early
    };
    let (sent, (received, cut_early)) =
        tokio::join!(sending, async { tokio::join!(bob.receive_next(&out), cut) });
    let sent = sent.with_context(|| host.logs())?;
    ensure!(sent.delivered(), "not delivered: {sent:?}");
    let received = received.with_context(|| host.logs())?;
    ensure!(received.sha256 == digest && sha256_file(&received.path)? == digest);
    ensure!(
        cut_early,
        "Bob's connection was cut only after Alice's upload ended"
    );
    Ok(())
}

async fn scenarios(host: &Host, size: u64, tag: &str) -> Result<()> {
    delivered_while_uploading(host, size, tag).await?;
    a_file_changed_while_uploading_is_not_delivered(host, size).await?;
    alice_stops_midway_while_bob_receives(host, size).await?;
    alice_drops_and_resumes_while_bob_receives(host, size).await?;
    bob_loses_his_connection_while_alice_uploads(host, size).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cut_through_on_the_local_host() -> Result<()> {
    let host = Host::start(HostOptions::sqlite())?;
    scenarios(&host, 64 * MIB, "local").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cut_through_behind_pushpin() -> Result<()> {
    let host = Host::start(HostOptions {
        behind_pushpin: true,
        ..HostOptions::sqlite()
    })?;
    scenarios(&host, 32 * MIB, "pushpin").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cut_through_on_real_spin() -> Result<()> {
    let Some(spin) = spin_or_skip("cut_through_on_real_spin") else {
        return Ok(());
    };
    let host = Host::start(HostOptions::sqlite().on(spin))?;
    scenarios(&host, 8 * MIB, "spin")
        .await
        .with_context(|| format!("on real Spin; the logs:\n{}", host.logs()))
}

/// The host is killed while Bob receives a file Alice is still uploading; once it is back,
/// nothing half-visible is stored, Alice sends again (resuming) and Bob gets the whole file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_host_killed_during_a_cut_through_transfer() -> Result<()> {
    let mut host = Host::start(HostOptions::sqlite())?;
    let base = host.base_url();
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out)?;
    let size = 64 * MIB;
    let path = dir.path().join("killed.bin");
    let digest = make_file(&path, size, 69)?;
    let mut alice = user(&base, "alice-killed", None).await?;
    // Bob's device, the same after the restart (as the page and a restarted agent are).
    let bob_device = || {
        let mut options = rcs_e2e::signed_in("bob-killed", TIMEOUT);
        options.instance = Some("urn:uuid:5f1b0f5e-8a53-4f7e-9d6c-2f0e9c3b7a11".into());
        options
    };
    rcs_e2e::ensure_account(&base, "bob-killed").await?;
    let mut bob = Client::connect(&base, "bob-killed", bob_device()).await?;
    bob.register(Some(Delivery::Push)).await?;
    let mut receiving = bob.watch_progress();
    tokio::select! {
        (sent, received) = async {
            tokio::join!(alice.send_file("bob-killed", &path), bob.receive_next(&out))
        } => anyhow::bail!("the transfer was to be cut: {sent:?} {received:?}"),
        _ = receiving.wait_for(|&written| written >= 4 * MIB) => {}
    }
    host.kill();
    drop((alice, bob));
    host.restart()?;
    let visible: Vec<String> = files_in(&out)?
        .into_iter()
        .filter(|name| !name.starts_with('.'))
        .collect();
    ensure!(visible.is_empty(), "half a file is visible: {visible:?}");
    let mut alice = user(&base, "alice-killed", None).await?;
    let mut bob = Client::connect(&base, "bob-killed", bob_device()).await?;
    bob.register(Some(Delivery::Push)).await?;
    let (sent, received) =
        tokio::join!(alice.send_file("bob-killed", &path), bob.receive_next(&out));
    let sent = sent.with_context(|| host.logs())?;
    ensure!(sent.resumed_from > 0, "the upload resumed: {sent:?}");
    ensure!(sent.delivered(), "not delivered: {sent:?}");
    let received = received.with_context(|| host.logs())?;
    ensure!(received.sha256 == digest && sha256_file(&received.path)? == digest);
    Ok(())
}

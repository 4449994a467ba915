//! The same components behind a real GRIP gateway: Debian's Pushpin holds the WebSockets and
//! forwards their events to the local host as plain HTTP, and the components publish through
//! Pushpin's own publish endpoint. Nothing of the host's built-in gateway is used.

use std::time::Duration;

use anyhow::{Result, ensure};
use rcs_core::service::Delivery;
use rcs_e2e::{Host, HostOptions, make_file, sha256_file};

const MIB: u64 = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn files_and_chat_through_pushpin() -> Result<()> {
    let host = Host::start(HostOptions {
        behind_pushpin: true,
        ..HostOptions::sqlite()
    })?;
    let base = host.base_url();
    let timeout = Duration::from_secs(60);
    let mut bob = rcs_e2e::registered(&base, "bob", Some(Delivery::Push), timeout).await?;
    let mut alice = rcs_e2e::registered(&base, "alice", None, timeout).await?;

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("through-pushpin.bin");
    let digest = make_file(&path, 10 * MIB, 21)?;
    let (sent, received) =
        tokio::join!(alice.send_file("bob", &path), bob.receive_next(dir.path()));
    let sent = sent?;
    ensure!(
        sent.delivered(),
        "not delivered through Pushpin: {sent:?}\n{}",
        host.logs()
    );
    let received = received?;
    ensure!(received.sha256 == digest && sha256_file(&received.path)? == digest);

    for n in 0..10 {
        ensure!(alice.chat("bob", &format!("via pushpin {n}")).await? == 202);
    }
    for n in 0..10 {
        let chat = bob.next_chat().await?;
        ensure!(chat.body == format!("via pushpin {n}").as_bytes());
    }
    // The built-in gateway saw no WebSocket: every event reached the host as an HTTP POST.
    ensure!(
        host.log
            .lines()
            .iter()
            .any(|l| l.starts_with("POST /sender/msrp 200"))
    );
    Ok(())
}

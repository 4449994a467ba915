//! Two devices of Bob signed in at once, through the real components: each is its own client with
//! its own `+sip.instance` and one SIP connection. Alice's push reaches both; the laptop accepts
//! and gets the file, byte-identical, and the phone, which did not answer, is told the file was
//! received elsewhere (CANCEL with `Reason: SIP;cause=200`); a chat reaches both, and either
//! device answers. On the local host, behind a real Pushpin, and on real Spin behind Pushpin.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use rcs_core::service::Delivery;
use rcs_e2e::{Host, HostOptions, make_file, sha256_file, spin_or_skip};

const TIMEOUT: Duration = Duration::from_secs(60);

async fn a_push_reaches_both_devices_and_the_first_to_accept_gets_it(host: &Host) -> Result<()> {
    let base = host.base_url();
    let mut laptop = rcs_e2e::registered(&base, "bob", Some(Delivery::Push), TIMEOUT).await?;
    let mut phone = rcs_e2e::registered(&base, "bob", Some(Delivery::Push), TIMEOUT).await?;
    let mut alice = rcs_e2e::registered(&base, "alice", None, TIMEOUT).await?;

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("for-bob.bin");
    let digest = make_file(&path, 3 << 20, 17)?;
    let laptop_dir = dir.path().join("laptop");
    std::fs::create_dir_all(&laptop_dir)?;
    let (sent, received, rang) = tokio::join!(
        alice.send_file("bob", &path),
        laptop.receive_next(&laptop_dir),
        phone.next_offer(),
    );
    let (sent, received) = (sent.context("sending")?, received.context("the laptop")?);
    let rang = rang.context("the phone rings")?;
    ensure!(sent.delivered(), "{sent:?}");
    ensure!(received.sha256 == digest && sha256_file(&received.path)? == digest);
    ensure!(
        rang.sha256 == Some(digest),
        "the phone was offered the same file"
    );
    let (withdrawn, reason) = phone.next_withdrawn().await.context("the phone is told")?;
    ensure!(withdrawn.sha256 == Some(digest));
    let reason = reason.context("a Reason")?;
    ensure!(
        reason.cause == Some(200) && reason.text.as_deref() == Some("Call completed elsewhere"),
        "{reason:?}"
    );
    ensure!(
        std::fs::read_dir(dir.path())?.count() == 2,
        "nothing else was written"
    );

    // A chat reaches both devices; the phone answers.
    let status = alice.chat("bob", "did you get it?").await?;
    ensure!(status == 202, "chat: {status}");
    for device in [&mut laptop, &mut phone] {
        let chat = device.next_chat().await?;
        ensure!(chat.body.as_ref() == b"did you get it?", "{chat:?}");
    }
    ensure!(phone.chat("alice", "yes, on my laptop").await? == 202);
    let reply = alice.next_chat().await?;
    ensure!(reply.body.as_ref() == b"yes, on my laptop", "{reply:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_devices_on_the_local_host() -> Result<()> {
    let host = Host::start(HostOptions::sqlite())?;
    a_push_reaches_both_devices_and_the_first_to_accept_gets_it(&host)
        .await
        .with_context(|| format!("the logs:\n{}", host.logs()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_devices_behind_pushpin() -> Result<()> {
    let host = Host::start(HostOptions {
        behind_pushpin: true,
        ..HostOptions::sqlite()
    })?;
    a_push_reaches_both_devices_and_the_first_to_accept_gets_it(&host)
        .await
        .with_context(|| format!("the logs:\n{}", host.logs()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_devices_on_real_spin() -> Result<()> {
    let Some(spin) = spin_or_skip("two_devices_on_real_spin") else {
        return Ok(());
    };
    let host = Host::start(HostOptions::sqlite().on(spin))?;
    a_push_reaches_both_devices_and_the_first_to_accept_gets_it(&host)
        .await
        .with_context(|| format!("on real Spin; the logs:\n{}", host.logs()))
}

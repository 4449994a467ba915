//! A device reconnects: a second connection registers as the same device (the same
//! `+sip.instance`, RFC 5626) while the first one stays open. From then on the device's traffic
//! (pushed files, pull offers, chats) goes to the second connection only, and the first gets
//! nothing more, on the local host's gateway, behind a real Pushpin, and on real Spin behind
//! Pushpin.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use rcs_client::{Client, Error as ClientError};
use rcs_core::service::Delivery;
use rcs_e2e::{Host, HostOptions, ensure_account, make_file, sha256_file, spin_or_skip};

const TIMEOUT: Duration = Duration::from_secs(60);

/// How long a replaced connection is watched for anything that should not reach it.
const WATCH: Duration = Duration::from_secs(3);

/// A client of `name` registered as the device `instance`.
async fn device(base: &str, name: &str, delivery: Delivery, instance: &str) -> Result<Client> {
    ensure_account(base, name).await?;
    let options = rcs_client::Options {
        instance: Some(instance.to_owned()),
        ..rcs_e2e::signed_in(name, TIMEOUT)
    };
    let mut client = Client::connect(base, name, options).await?;
    client.register(Some(delivery)).await?;
    Ok(client)
}

/// Nothing for the user reaches `replaced`: no file offer, no chat, while it is watched.
async fn gets_nothing(replaced: &mut Client, what: &str) -> Result<()> {
    replaced.set_timeout(WATCH);
    match replaced.next_offer().await {
        Err(ClientError::Timeout { .. }) => {}
        Ok(offer) => bail!("the replaced connection was offered {what}: {offer:?}"),
        Err(error) => bail!("the replaced connection failed: {error:#}"),
    }
    match replaced.next_chat().await {
        Err(ClientError::Timeout { .. }) => Ok(()),
        Ok(chat) => bail!("the replaced connection got a chat: {chat:?}"),
        Err(error) => bail!("the replaced connection failed: {error:#}"),
    }
}

/// Bob's and Carol's devices each register twice, from two connections; Alice sends each a file
/// (Bob by push, Carol by pull) and a chat. Only the second connections get them, and the files
/// arrive byte-identical.
async fn only_the_new_connection_is_served(host: &Host) -> Result<()> {
    let base = host.base_url();
    let dir = tempfile::tempdir()?;
    let mut alice = rcs_e2e::registered(&base, "alice", None, TIMEOUT).await?;
    for (name, delivery, seed) in [("bob", Delivery::Push, 1), ("carol", Delivery::Pull, 2)] {
        let instance = format!("urn:uuid:00000000-0000-4000-8000-00000000000{seed}");
        let mut first = device(&base, name, delivery, &instance).await?;
        let mut second = device(&base, name, delivery, &instance).await?;
        let path = dir.path().join(format!("for-{name}.bin"));
        let digest = make_file(&path, 300 * 1024, seed)?;
        let out = dir.path().join(name);
        std::fs::create_dir_all(&out)?;
        let (sent, received) =
            tokio::join!(alice.send_file(name, &path), second.receive_next(&out));
        let (sent, received) = (sent.context("sending")?, received.context("receiving")?);
        ensure!(sent.delivered(), "{delivery:?} to {name}: {sent:?}");
        ensure!(received.sha256 == digest && sha256_file(&received.path)? == digest);

        ensure!(alice.chat(name, &format!("hello {name}")).await? == 202);
        let chat = second.next_chat().await?;
        ensure!(chat.body == format!("hello {name}").as_bytes());

        gets_nothing(&mut first, &format!("{name}'s {delivery:?} file")).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replaced_connection_gets_nothing_on_the_local_host() -> Result<()> {
    let host = Host::start(HostOptions::sqlite())?;
    only_the_new_connection_is_served(&host)
        .await
        .with_context(|| format!("the logs:\n{}", host.logs()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replaced_connection_gets_nothing_behind_pushpin() -> Result<()> {
    let host = Host::start(HostOptions {
        behind_pushpin: true,
        ..HostOptions::sqlite()
    })?;
    only_the_new_connection_is_served(&host)
        .await
        .with_context(|| format!("the logs:\n{}", host.logs()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replaced_connection_gets_nothing_on_real_spin() -> Result<()> {
    let Some(spin) = spin_or_skip("a_replaced_connection_gets_nothing_on_real_spin") else {
        return Ok(());
    };
    let host = Host::start(HostOptions::sqlite().on(spin))?;
    only_the_new_connection_is_served(&host)
        .await
        .with_context(|| format!("on real Spin; the logs:\n{}", host.logs()))
}

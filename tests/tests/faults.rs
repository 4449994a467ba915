//! Faults and bad input against the real edge (the local host on SQLite): users who are offline or
//! unknown, connections lost mid-transfer on either side, forged URLs, files over the maximum,
//! malformed SIP, MSRP and XML, and the host killed during a transfer. Each gets a clear protocol
//! answer, and nothing stored is lost or visible half-written.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use futures_util::SinkExt;
use rcs_client::{Client, DigestSigner, Error, signed_request};
use rcs_core::client::Password;
use rcs_core::first_value::{self, ContentDigest, SigningKey, Url};
use rcs_core::service::Delivery;
use rcs_e2e::{
    Host, HostOptions, Relay, SIGNING_SECRET, make_file, next_text, raw_socket, sha256_file,
    sip_request,
};
use tokio_tungstenite::tungstenite::Message;

const MIB: u64 = 1024 * 1024;

async fn connect(base: &str, name: &str, delivery: Delivery) -> Result<Client> {
    rcs_e2e::registered(base, name, Some(delivery), Duration::from_secs(30)).await
}

fn refusal_status(error: &Error) -> Option<u16> {
    match error {
        Error::Refused { status, .. } | Error::Http { status, .. } => Some(*status),
        _ => None,
    }
}

/// Waits until `watch` reaches `at` bytes.
async fn reached(mut watch: tokio::sync::watch::Receiver<u64>, at: u64) {
    let _ = watch.wait_for(|done| *done >= at).await;
}

/// The signed URL of `digest` under the host's base, expiring at `exp`.
fn signed_url(host: &Host, digest: [u8; 32], exp: u64, secret: &str) -> Result<String> {
    let base = Url::parse(&format!("{}/", host.base_url()))?;
    let digest = ContentDigest::from_hex(&hex::encode(digest))?;
    let key = SigningKey::new(secret.as_bytes().to_vec())?;
    Ok(first_value::sign(&base, digest, exp, &key).to_string())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn http_status(url: &str) -> Result<(u16, String)> {
    let response = reqwest::get(url).await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await.unwrap_or_default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_and_offline_recipients_are_refused() -> Result<()> {
    let host = Host::start(HostOptions::sqlite())?;
    let base = host.base_url();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("f.bin");
    make_file(&path, 4096, 1)?;
    let mut alice = connect(&base, "alice", Delivery::Push).await?;

    let error = alice.send_file("nobody", &path).await.unwrap_err();
    ensure!(refusal_status(&error) == Some(404), "unknown user: {error}");
    let error = alice.chat("nobody", "hello").await.unwrap_err();
    ensure!(
        refusal_status(&error) == Some(404),
        "chat to unknown user: {error}"
    );

    // Bob registered once, then his connection went away: he is known but offline.
    let bob = connect(&base, "bob", Delivery::Push).await?;
    drop(bob);
    let mut last = None;
    for _ in 0..50 {
        match alice.send_file("bob", &path).await {
            Err(error) if refusal_status(&error) == Some(480) => return Ok(()),
            other => last = Some(format!("{other:?}")),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("an offline recipient was not refused with 480: {last:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recipient_who_loses_the_connection_resumes_where_it_stopped() -> Result<()> {
    let host = Host::start(HostOptions::sqlite())?;
    let relay = Relay::start(host.http).await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("big.bin");
    let size = 24 * MIB;
    let digest = make_file(&path, size, 7)?;
    let mut bob = connect(&relay.base_url(), "bob", Delivery::Push).await?;
    let mut alice = connect(&host.base_url(), "alice", Delivery::Push).await?;
    let written = bob.watch_progress();
    let cut = async {
        reached(written.clone(), 6 * MIB).await;
        relay.cut("/msrp");
    };
    let (sent, (received, ())) = tokio::join!(alice.send_file("bob", &path), async {
        tokio::join!(bob.receive_next(dir.path()), cut)
    });
    ensure!(sent?.delivered());
    let received = received?;
    ensure!(received.sha256 == digest && sha256_file(&received.path)? == digest);
    // Resumed from the last acknowledged byte: at most a window of chunks came twice.
    let total = *written.borrow();
    ensure!(
        total < size + 2 * MIB,
        "{total} bytes written for a {size}-byte file: the delivery started over"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sender_who_loses_the_connection_resumes_the_upload() -> Result<()> {
    let host = Host::start(HostOptions::sqlite())?;
    let relay = Relay::start(host.http).await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("big.bin");
    let digest = make_file(&path, 24 * MIB, 8)?;
    let mut bob = connect(&host.base_url(), "bob", Delivery::Push).await?;
    let mut alice = connect(&relay.base_url(), "alice", Delivery::Push).await?;
    let acknowledged = alice.watch_progress();
    let cut = async {
        reached(acknowledged, 6 * MIB).await;
        relay.cut("/msrp");
    };
    let (first, ()) = tokio::join!(alice.send_file("bob", &path), cut);
    ensure!(
        first.is_err(),
        "the upload survived a lost connection: {first:?}"
    );
    let (second, received) =
        tokio::join!(alice.send_file("bob", &path), bob.receive_next(dir.path()));
    let second = second?;
    ensure!(
        second.resumed_from >= 4 * MIB && second.resumed_from < 24 * MIB,
        "resumed from {}",
        second.resumed_from
    );
    ensure!(second.delivered());
    ensure!(received?.sha256 == digest);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forged_expired_and_foreign_urls_are_refused() -> Result<()> {
    let host = Host::start(HostOptions::sqlite())?;
    let base = host.base_url();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("f.bin");
    let digest = make_file(&path, 300_000, 9)?;
    let mut alice = connect(&base, "alice", Delivery::Push).await?;
    let mut carol = connect(&base, "carol", Delivery::Pull).await?;
    let (sent, received) = tokio::join!(
        alice.send_file("carol", &path),
        carol.receive_next(dir.path())
    );
    ensure!(sent?.delivered());
    let url = received?.url.context("the pull offer's URL")?;
    ensure!(http_status(&url).await?.0 == 200);

    let forged = format!("{}0", url.trim_end_matches(|c: char| c.is_ascii_hexdigit()));
    let expired = signed_url(&host, digest, unix_now() - 60, SIGNING_SECRET)?;
    let foreign = signed_url(
        &host,
        digest,
        unix_now() + 600,
        "some-other-deployment-key-0123456789abcdef",
    )?;
    for (what, url) in [
        ("forged", forged),
        ("expired", expired),
        ("foreign", foreign),
    ] {
        let (status, reason) = http_status(&url).await?;
        ensure!(status == 403, "{what} URL answered {status}");
        ensure!(
            !reason.trim().is_empty(),
            "{what} URL refused without a reason"
        );
    }
    // Well signed, but naming no stored file.
    let unknown = signed_url(&host, [7; 32], unix_now() + 600, SIGNING_SECRET)?;
    ensure!(http_status(&unknown).await?.0 == 404);
    Ok(())
}

/// The store's keys, read straight from the host's SQLite file.
fn stored_keys(host: &Host) -> Result<Vec<String>> {
    let db = rusqlite::Connection::open_with_flags(
        host.state_dir().join("sqlite_key_value.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let mut statement = db.prepare("SELECT key FROM spin_key_value")?;
    let keys = statement
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(keys)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_file_over_the_maximum_is_refused_and_nothing_is_stored() -> Result<()> {
    let host = Host::start(HostOptions::sqlite().variable("max_file_size", MIB.to_string()))?;
    let base = host.base_url();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("big.bin");
    make_file(&path, 2 * MIB, 10)?;
    let _bob = connect(&base, "bob", Delivery::Push).await?;
    let mut alice = connect(&base, "alice", Delivery::Push).await?;
    let error = alice.send_file("bob", &path).await.unwrap_err();
    ensure!(refusal_status(&error) == Some(413), "oversize: {error}");
    let keys = stored_keys(&host)?;
    ensure!(
        !keys
            .iter()
            .any(|k| k.starts_with("up/") || k.starts_with("file/")),
        "an oversize offer left {keys:?}"
    );

    // The FT-HTTP upload refuses it before storing too.
    let form = format!(
        "--b\r\nContent-Disposition: form-data; name=\"tid\"\r\n\r\nt-oversize\r\n\
         --b\r\nContent-Disposition: form-data; name=\"File\"; filename=\"big.bin\"\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        2 * MIB
    );
    let password = Password::new(rcs_e2e::password_of("alice"));
    let signer = DigestSigner {
        user: "alice",
        password: &password,
        cnonce: "oversize".into(),
    };
    let response = signed_request(
        &reqwest::Client::new(),
        reqwest::Method::POST,
        &format!("{base}/sender/upload"),
        Some(("multipart/form-data; boundary=b", form.into_bytes())),
        &signer,
    )
    .await?;
    ensure!(
        response.status().as_u16() == 413,
        "FT-HTTP oversize: {}",
        response.status()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_sip_msrp_and_xml_get_400_and_the_connection_stays() -> Result<()> {
    let host = Host::start(HostOptions::sqlite())?;
    let base = host.base_url();
    let _bob = connect(&base, "bob", Delivery::Push).await?;
    let mut sip = raw_socket(&base, "/sender/sip", "sip").await?;

    // A request with a broken header.
    let broken = sip_request(
        "mallory",
        "OPTIONS",
        "sip:localhost",
        "sip:localhost",
        1,
        "CSeq: banana\r\n",
        "",
    );
    sip.send(Message::text(broken)).await?;
    let answer = next_text(&mut sip).await?;
    ensure!(
        answer.starts_with("SIP/2.0 400"),
        "broken SIP answered {answer:?}"
    );
    ensure!(answer.contains("Warning:") || answer.lines().next().is_some_and(|l| l.len() > 16));

    // The same socket still works: it is asked to sign in, and signs in.
    rcs_e2e::ensure_account(&base, "mallory").await?;
    let contact = "Contact: <sip:mallory@mallory.invalid;transport=ws>\r\nExpires: 600\r\n";
    let register = sip_request(
        "mallory",
        "REGISTER",
        "sip:localhost",
        "sip:mallory@localhost",
        2,
        contact,
        "",
    );
    sip.send(Message::text(register)).await?;
    let answer = next_text(&mut sip).await?;
    ensure!(
        answer.starts_with("SIP/2.0 401"),
        "REGISTER after bad input: {answer:?}"
    );
    let authorization = rcs_e2e::answer_challenge(&answer, "mallory", "REGISTER", "sip:localhost")?;
    let register = sip_request(
        "mallory",
        "REGISTER",
        "sip:localhost",
        "sip:mallory@localhost",
        5,
        &format!("{contact}Authorization: {authorization}\r\n"),
        "",
    );
    sip.send(Message::text(register)).await?;
    let answer = next_text(&mut sip).await?;
    ensure!(
        answer.starts_with("SIP/2.0 200"),
        "REGISTER with credentials: {answer:?}"
    );

    // Malformed FT-HTTP XML in a MESSAGE.
    let message = sip_request(
        "mallory",
        "MESSAGE",
        "sip:bob@localhost",
        "sip:bob@localhost",
        3,
        "Content-Type: application/vnd.gsma.rcs-ft-http+xml\r\n",
        "<?xml version=\"1.0\"?><file><file-info type=\"file\"><data url=",
    );
    sip.send(Message::text(message)).await?;
    let answer = next_text(&mut sip).await?;
    ensure!(
        answer.starts_with("SIP/2.0 400"),
        "malformed XML answered {answer:?}"
    );

    // Garbage text is not SIP at all: with no Via to route an answer by, it is discarded (RFC 3261
    // section 16.3) and the socket keeps working: the next answer is the OPTIONS one.
    sip.send(Message::text("hello there\r\n\r\n")).await?;
    let options = sip_request(
        "mallory",
        "OPTIONS",
        "sip:localhost",
        "sip:localhost",
        4,
        "",
        "",
    );
    sip.send(Message::text(options)).await?;
    let answer = next_text(&mut sip).await?;
    ensure!(
        answer.starts_with("SIP/2.0 200") && answer.contains("CSeq: 4 OPTIONS"),
        "OPTIONS after garbage answered {answer:?}"
    );

    // MSRP: a SEND whose To-Path is not a URI gets an MSRP 400 on the same socket.
    let mut msrp = raw_socket(&base, "/sender/msrp", "msrp").await?;
    let bad = "MSRP tx01 SEND\r\nTo-Path: not-a-uri\r\nFrom-Path: msrp://mallory.invalid/s;ws\r\nMessage-ID: msg01\r\nByte-Range: 1-3/3\r\nContent-Type: text/plain\r\n\r\nabc\r\n-------tx01$\r\n";
    msrp.send(Message::binary(bad.as_bytes().to_vec())).await?;
    let answer = next_text(&mut msrp).await?;
    ensure!(
        answer.starts_with("MSRP tx01 400"),
        "malformed MSRP answered {answer:?}"
    );
    // An unknown session is refused (481), again on the same socket.
    let unknown = "MSRP tx02 SEND\r\nTo-Path: msrp://sender-as.localhost/nosuchsession;ws\r\nFrom-Path: msrp://mallory.invalid/s;ws\r\nMessage-ID: msg02\r\nByte-Range: 1-3/3\r\nContent-Type: text/plain\r\n\r\nabc\r\n-------tx02$\r\n";
    msrp.send(Message::binary(unknown.as_bytes().to_vec()))
        .await?;
    let answer = next_text(&mut msrp).await?;
    ensure!(
        answer.starts_with("MSRP tx02 481"),
        "unknown MSRP session answered {answer:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_killed_mid_transfer_keeps_finished_files_and_resumes_the_rest() -> Result<()> {
    let mut host = Host::start(HostOptions::sqlite())?;
    let base = host.base_url();
    let dir = tempfile::tempdir()?;

    // A finished file, fetched later through its URL.
    let done = dir.path().join("done.bin");
    let done_digest = make_file(&done, 3 * MIB, 11)?;
    let mut alice = connect(&base, "alice", Delivery::Push).await?;
    let mut carol = connect(&base, "carol", Delivery::Pull).await?;
    let (sent, received) = tokio::join!(
        alice.send_file("carol", &done),
        carol.receive_next(dir.path())
    );
    ensure!(sent?.delivered());
    let done_url = received?.url.context("a pull offer carries the URL")?;

    // The host dies while a second file is being uploaded.
    let big = dir.path().join("big.bin");
    let big_digest = make_file(&big, 32 * MIB, 12)?;
    let bob = connect(&base, "bob", Delivery::Push).await?;
    let acknowledged = alice.watch_progress();
    let big_path = big.clone();
    let upload = tokio::spawn(async move {
        let outcome = alice.send_file("bob", &big_path).await;
        (alice, outcome)
    });
    reached(acknowledged, 8 * MIB).await;
    host.kill();
    let (_, interrupted) = upload.await?;
    ensure!(
        interrupted.is_err(),
        "the upload survived the host: {interrupted:?}"
    );
    let _ = bob.close().await;
    drop(carol);
    host.restart()?;

    // The finished file is intact; the unfinished one is not visible.
    let fetched = dir.path().join("fetched.bin");
    let got = rcs_client::download(&done_url, &fetched, Duration::from_secs(30), false).await?;
    ensure!(got.sha256 == done_digest && sha256_file(&fetched)? == done_digest);
    let half = signed_url(&host, big_digest, unix_now() + 600, SIGNING_SECRET)?;
    ensure!(
        http_status(&half).await?.0 == 404,
        "a half-written file is visible"
    );

    // The upload resumes where the store left it, and the file arrives whole.
    let mut alice = connect(&base, "alice", Delivery::Push).await?;
    let mut bob = connect(&base, "bob", Delivery::Push).await?;
    let (sent, received) = tokio::join!(alice.send_file("bob", &big), bob.receive_next(dir.path()));
    let sent = sent?;
    ensure!(
        sent.resumed_from > 0,
        "the upload started over after the restart"
    );
    ensure!(sent.delivered());
    let received = received?;
    ensure!(received.sha256 == big_digest && sha256_file(&received.path)? == big_digest);
    Ok(())
}

//! Who is who, through the real components: while Bob is signed in, every way of acting as Bob
//! without his password is refused with its answer (a wrong password, none, credentials answering
//! another connection's challenge, a replayed `Authorization`, a REGISTER, MESSAGE or INVITE in
//! Bob's name on someone else's connection, an FT-HTTP upload without an account), and Alice's
//! file reaches Bob only, byte-identical. On
//! the local host, behind a real Pushpin, and on real Spin behind Pushpin. Guessing a password is
//! throttled, and the real user gets in once the lockout has passed.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use futures_util::SinkExt;
use rcs_client::{Client, DigestSigner, Error as ClientError, Options, signed_request};
use rcs_core::accounts::USER_THROTTLE;
use rcs_core::client::Password;
use rcs_core::service::Delivery;
use rcs_e2e::{
    Host, HostOptions, RawSocket, answer_challenge, ensure_account, make_file, next_text,
    raw_socket, sha256_file, sip_request, spin_or_skip,
};
use reqwest::Method;
use tokio_tungstenite::tungstenite::Message;

const TIMEOUT: Duration = Duration::from_secs(60);

/// `name`'s client on the receiver AS with `password` (none: no password at all).
async fn as_bob(base: &str, password: Option<&str>) -> Result<Client> {
    let options = Options {
        timeout: TIMEOUT,
        password: password.map(Password::new),
        ..Options::default()
    };
    Ok(Client::connect(base, "bob", options).await?)
}

/// The refusal of a REGISTER: its status and reason.
async fn refused_register(client: &mut Client) -> Result<(u16, String)> {
    match client.register(Some(Delivery::Push)).await {
        Err(ClientError::Refused { status, reason, .. }) => Ok((status, reason)),
        other => bail!("the REGISTER was not refused: {other:?}"),
    }
}

/// Sends `request` on `socket` and returns the answer.
async fn exchange(socket: &mut RawSocket, request: String) -> Result<String> {
    socket.send(Message::text(request)).await?;
    next_text(socket).await
}

/// The status line of a SIP answer.
fn status_line(answer: &str) -> &str {
    answer.lines().next().unwrap_or_default()
}

async fn only_bob_gets_bobs_file(host: &Host) -> Result<()> {
    let base = host.base_url();
    let mut bob = rcs_e2e::registered(&base, "bob", Some(Delivery::Push), TIMEOUT).await?;
    let mut alice = rcs_e2e::registered(&base, "alice", None, TIMEOUT).await?;

    let mut wrong = as_bob(&base, Some("not bob's password")).await?;
    let (status, reason) = refused_register(&mut wrong).await?;
    ensure!(
        status == 401 && reason == "wrong user name or password",
        "a wrong password: {status} {reason}"
    );
    let mut none = as_bob(&base, None).await?;
    let (status, reason) = refused_register(&mut none).await?;
    ensure!(
        status == 401 && reason.starts_with("sign in"),
        "no password: {status} {reason}"
    );

    // Carol signs in on a raw socket; her credentials are no good on any other.
    ensure_account(&base, "carol").await?;
    let contact = "Contact: <sip:carol@carol.invalid;transport=ws>\r\nExpires: 600\r\n";
    let register = |n: u32, authorization: Option<&str>| {
        let extra = match authorization {
            Some(value) => format!("{contact}Authorization: {value}\r\n"),
            None => contact.to_owned(),
        };
        sip_request(
            "carol",
            "REGISTER",
            "sip:localhost",
            "sip:carol@localhost",
            n,
            &extra,
            "",
        )
    };
    let mut carols = raw_socket(&base, "/sender/sip", "sip").await?;
    let mut other = raw_socket(&base, "/sender/sip", "sip").await?;
    let challenge = exchange(&mut carols, register(1, None)).await?;
    let authorization = answer_challenge(&challenge, "carol", "REGISTER", "sip:localhost")?;
    let answer = exchange(&mut other, register(2, Some(&authorization))).await?;
    ensure!(
        status_line(&answer).starts_with("SIP/2.0 401")
            && answer.contains("the nonce was not issued for this connection"),
        "an answer to another connection's challenge: {answer}"
    );
    let signed_in = register(3, Some(&authorization));
    let answer = exchange(&mut carols, signed_in.clone()).await?;
    ensure!(
        status_line(&answer).starts_with("SIP/2.0 200"),
        "carol signs in: {answer}"
    );
    let replayed = exchange(&mut other, signed_in).await?;
    ensure!(
        status_line(&replayed).starts_with("SIP/2.0 401"),
        "a replayed Authorization: {replayed}"
    );

    // On Carol's connection, nothing in Bob's name.
    let as_bob_there = sip_request(
        "bob",
        "REGISTER",
        "sip:localhost",
        "sip:bob@localhost",
        4,
        contact,
        "",
    );
    let answer = exchange(&mut carols, as_bob_there).await?;
    ensure!(
        status_line(&answer).starts_with("SIP/2.0 403")
            && answer.contains("this connection is authenticated as sip:carol@localhost"),
        "a REGISTER for bob on carol's connection: {answer}"
    );
    for (n, method, content_type, body) in [
        (5, "MESSAGE", "text/plain", "it's me, bob"),
        (6, "INVITE", "application/sdp", "v=0\r\n"),
    ] {
        let request = sip_request(
            "bob",
            method,
            "sip:alice@localhost",
            "sip:alice@localhost",
            n,
            &format!("Content-Type: {content_type}\r\n"),
            body,
        );
        let answer = exchange(&mut carols, request).await?;
        ensure!(
            status_line(&answer).starts_with("SIP/2.0 403"),
            "a {method} from bob on carol's connection: {answer}"
        );
    }

    // An FT-HTTP upload without an account is refused, and nothing of it is stored; Alice's,
    // signed in with HTTP Digest, is taken.
    let http = reqwest::Client::new();
    let upload = format!("{base}/sender/upload");
    let form = |tid: &str, data: &str| {
        format!(
            "--b\r\nContent-Disposition: form-data; name=\"tid\"\r\n\r\n{tid}\r\n\
             --b\r\nContent-Disposition: form-data; name=\"File\"; filename=\"a.txt\"\r\n\
             Content-Type: text/plain\r\n\r\n{data}\r\n--b--\r\n"
        )
        .into_bytes()
    };
    let multipart = "multipart/form-data; boundary=b";
    let anonymous = http
        .post(&upload)
        .header("Content-Type", multipart)
        .body(form("anonymous", "free hosting?"))
        .send()
        .await?;
    ensure!(
        anonymous.status().as_u16() == 401
            && anonymous
                .headers()
                .get_all("www-authenticate")
                .iter()
                .count()
                == 3,
        "an unauthenticated upload: {:?}",
        anonymous
    );
    let alices = Password::new(rcs_e2e::password_of("alice"));
    let signer = |cnonce: &str| DigestSigner {
        user: "alice",
        password: &alices,
        cnonce: cnonce.to_owned(),
    };
    let resume = format!("{upload}?tid=anonymous&get_upload_info");
    let held = signed_request(&http, Method::GET, &resume, None, &signer("c1")).await?;
    ensure!(
        held.status().as_u16() == 404,
        "the refused upload left something: {}",
        held.status()
    );
    let taken = signed_request(
        &http,
        Method::POST,
        &upload,
        Some((multipart, form("alices", "alice's own file"))),
        &signer("c2"),
    )
    .await?;
    let status = taken.status().as_u16();
    let body = taken.text().await?;
    ensure!(
        status == 200 && body.contains("<data url="),
        "alice's upload: {status} {body}"
    );

    // Alice's file reaches Bob, and only Bob.
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("for-bob.bin");
    let digest = make_file(&path, 200 * 1024, 9)?;
    let (sent, received) =
        tokio::join!(alice.send_file("bob", &path), bob.receive_next(dir.path()));
    let (sent, received) = (sent.context("sending")?, received.context("receiving")?);
    ensure!(sent.delivered(), "{sent:?}");
    ensure!(received.sha256 == digest && sha256_file(&received.path)? == digest);
    for impostor in [&mut wrong, &mut none] {
        impostor.set_timeout(Duration::from_secs(2));
        match impostor.next_offer().await {
            Err(ClientError::Timeout { .. }) => {}
            other => bail!("an impostor heard of bob's file: {other:?}"),
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_bob_gets_bobs_file_on_the_local_host() -> Result<()> {
    let host = Host::start(HostOptions::sqlite())?;
    only_bob_gets_bobs_file(&host)
        .await
        .with_context(|| format!("the logs:\n{}", host.logs()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_bob_gets_bobs_file_behind_pushpin() -> Result<()> {
    let host = Host::start(HostOptions {
        behind_pushpin: true,
        ..HostOptions::sqlite()
    })?;
    only_bob_gets_bobs_file(&host)
        .await
        .with_context(|| format!("the logs:\n{}", host.logs()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_bob_gets_bobs_file_on_real_spin() -> Result<()> {
    let Some(spin) = spin_or_skip("only_bob_gets_bobs_file_on_real_spin") else {
        return Ok(());
    };
    let host = Host::start(HostOptions::sqlite().on(spin))?;
    only_bob_gets_bobs_file(&host)
        .await
        .with_context(|| format!("on real Spin; the logs:\n{}", host.logs()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guessing_is_throttled_and_the_real_user_gets_in_after_the_lockout() -> Result<()> {
    let host = Host::start(HostOptions::sqlite())?;
    let base = host.base_url();
    ensure_account(&base, "bob").await?;
    let mut last = (0, String::new());
    for guess in 0..USER_THROTTLE.failures {
        let mut guessing = as_bob(&base, Some(&format!("guess {guess}"))).await?;
        last = refused_register(&mut guessing).await?;
    }
    ensure!(
        last.0 == 403 && last.1.starts_with("too many failed sign-ins"),
        "the last guess: {last:?}"
    );
    let mut real = as_bob(&base, Some(&rcs_e2e::password_of("bob"))).await?;
    let (status, reason) = refused_register(&mut real).await?;
    ensure!(
        status == 403,
        "the real user during the lockout: {status} {reason}"
    );
    tokio::time::sleep(Duration::from_secs(USER_THROTTLE.lockout_secs + 1)).await;
    let mut real = as_bob(&base, Some(&rcs_e2e::password_of("bob"))).await?;
    real.register(Some(Delivery::Push))
        .await
        .context("the real user after the lockout")?;
    Ok(())
}

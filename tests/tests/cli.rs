//! The command-line client as a person types it, against the local host: `rcs account create`,
//! signing in with `RCS_PASSWORD` or `--password`, a wrong password, `rcs account passwd` and
//! `rcs account delete`, and what `rcs` says when it has no password to give; and one user's two
//! `rcs` at once, which are two devices: `receive` gets the file, `listen` the chat.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use anyhow::{Context, Result, ensure};
use rcs_e2e::{Host, HostOptions, make_file, rcs_binary, sha256_file};

/// `rcs --server <base> --user <user> --timeout 20 --quiet`, with no password in the environment
/// and no terminal.
fn rcs_as(base: &str, user: &str) -> Command {
    let mut command = Command::new(rcs_binary());
    command
        .args([
            "--server",
            base,
            "--user",
            user,
            "--timeout",
            "20",
            "--quiet",
        ])
        .env_remove("RCS_PASSWORD")
        .env_remove("RCS_NEW_PASSWORD")
        .env_remove("RCS_ADMIN_TOKEN")
        .stdin(Stdio::null());
    command
}

/// Runs `rcs --server <base> --user zoe <args>` with `env` set and no terminal.
fn rcs(base: &str, args: &[&str], env: &[(&str, &str)]) -> Result<Output> {
    Ok(rcs_as(base, "zoe")
        .args(args)
        .envs(env.iter().copied())
        .output()?)
}

fn said(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn an_account_is_created_used_changed_and_deleted_from_the_command_line() -> Result<()> {
    let host = Host::start(HostOptions::sqlite())?;
    let base = host.base_url();

    let missing = rcs(&base, &["account", "create"], &[])?;
    ensure!(
        !missing.status.success()
            && said(&missing).contains("is needed: pass it as a flag or set RCS_PASSWORD"),
        "no password, no terminal: {}",
        said(&missing)
    );
    let created = rcs(
        &base,
        &["account", "create"],
        &[("RCS_PASSWORD", "first secret")],
    )?;
    ensure!(
        created.status.success() && said(&created).contains("created the account zoe"),
        "create: {}",
        said(&created)
    );
    let taken = rcs(&base, &["account", "create"], &[("RCS_PASSWORD", "x")])?;
    ensure!(
        !taken.status.success() && said(&taken).contains("exists already"),
        "create again: {}",
        said(&taken)
    );

    let signed_in = rcs(&base, &["register"], &[("RCS_PASSWORD", "first secret")])?;
    ensure!(
        signed_in.status.success() && said(&signed_in).contains("registered sip:zoe@localhost"),
        "register: {}",
        said(&signed_in)
    );
    let wrong = rcs(&base, &["--password", "guess", "register"], &[])?;
    ensure!(
        !wrong.status.success() && said(&wrong).contains("wrong user name or password"),
        "a wrong password: {}",
        said(&wrong)
    );

    let changed = rcs(
        &base,
        &["account", "passwd"],
        &[
            ("RCS_PASSWORD", "first secret"),
            ("RCS_NEW_PASSWORD", "second secret"),
        ],
    )?;
    ensure!(
        changed.status.success() && said(&changed).contains("changed the password of zoe"),
        "passwd: {}",
        said(&changed)
    );
    let old = rcs(&base, &["register"], &[("RCS_PASSWORD", "first secret")])?;
    ensure!(!old.status.success(), "the old password still works");
    let new = rcs(&base, &["register"], &[("RCS_PASSWORD", "second secret")])?;
    ensure!(new.status.success(), "the new password: {}", said(&new));

    let deleted = rcs(
        &base,
        &["account", "delete"],
        &[("RCS_PASSWORD", "second secret")],
    )?;
    ensure!(
        deleted.status.success() && said(&deleted).contains("deleted the account zoe"),
        "delete: {}",
        said(&deleted)
    );
    let gone = rcs(&base, &["register"], &[("RCS_PASSWORD", "second secret")])?;
    ensure!(
        !gone.status.success() && said(&gone).contains("there is no account zoe"),
        "after delete: {}",
        said(&gone)
    );
    Ok(())
}

#[test]
fn two_rcs_of_one_user_are_two_devices_each_served() -> Result<()> {
    let host = Host::start(HostOptions::sqlite())?;
    let base = host.base_url();
    let password = [("RCS_PASSWORD", "yuki's secret")];
    for user in ["yuki", "zoe"] {
        let created = rcs_as(&base, user)
            .args(["account", "create"])
            .envs(password)
            .output()?;
        ensure!(created.status.success(), "{}", said(&created));
    }
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("laptop");
    // Yuki's laptop waits for files, her phone for chats: two devices of one user at once.
    let mut devices = Vec::new();
    for (args, ready) in [
        (
            vec!["receive", "--out", out.to_str().context("a UTF-8 path")?],
            "waiting for files as sip:yuki@",
        ),
        (vec!["listen"], "listening as sip:yuki@"),
    ] {
        let mut child = rcs_as(&base, "yuki")
            .args(&args)
            .envs(password)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        // Each says when it is registered; the rest of what it says is kept.
        let mut stderr = BufReader::new(child.stderr.take().context("stderr")?);
        let mut line = String::new();
        stderr.read_line(&mut line)?;
        ensure!(line.starts_with(ready), "{args:?}: {line}");
        let rest = std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
            rest
        });
        devices.push((child, rest));
    }
    let (mut phone, phone_said) = devices.pop().context("the phone")?;
    let (laptop, laptop_said) = devices.pop().context("the laptop")?;

    // The file reaches the laptop, which accepts it; the phone, offered it too, takes nothing
    // (its offer is cancelled) and goes on listening.
    let path = dir.path().join("report.pdf");
    let digest = make_file(&path, 1 << 20, 23)?;
    let sent = rcs_as(&base, "zoe")
        .arg("send")
        .arg("yuki")
        .arg(&path)
        .envs(password)
        .output()?;
    ensure!(sent.status.success(), "send: {}", said(&sent));
    let done = laptop.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&done.stdout).into_owned();
    let stderr = laptop_said.join().unwrap_or_default();
    ensure!(done.status.success(), "the laptop: {stdout}{stderr}");
    ensure!(stdout.starts_with("received "), "{stdout}");
    ensure!(sha256_file(&out.join("report.pdf"))? == digest, "{stdout}");

    // A chat reaches the phone, still registered after the laptop has gone.
    let chat = rcs_as(&base, "zoe")
        .args(["chat", "yuki", "got my report?"])
        .envs(password)
        .output()?;
    ensure!(chat.status.success(), "chat: {}", said(&chat));
    let mut heard = String::new();
    BufReader::new(phone.stdout.take().context("stdout")?).read_line(&mut heard)?;
    phone.kill()?;
    phone.wait()?;
    let _ = phone_said.join();
    ensure!(
        heard.trim() == "sip:zoe@localhost: got my report?",
        "the phone heard {heard:?}"
    );
    Ok(())
}

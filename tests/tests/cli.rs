//! The command-line client as a person types it, against the local host: `rcs account create`,
//! signing in with `RCS_PASSWORD` or `--password`, a wrong password, `rcs account passwd` and
//! `rcs account delete`, and what `rcs` says when it has no password to give; and one user's two
//! `rcs receive` at once, which are two devices: one gets the file, the other says so.

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
fn two_rcs_receive_of_one_user_are_two_devices_and_one_gets_the_file() -> Result<()> {
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
    let mut receivers = Vec::new();
    for device in ["laptop", "desktop"] {
        let out = dir.path().join(device);
        let mut child = rcs_as(&base, "yuki")
            .args(["receive", "--out"])
            .arg(&out)
            .envs(password)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        // Each says when it is registered.
        let mut stderr = BufReader::new(child.stderr.take().context("stderr")?);
        let mut line = String::new();
        stderr.read_line(&mut line)?;
        ensure!(
            line.starts_with("waiting for files as sip:yuki@"),
            "{device}: {line}"
        );
        receivers.push((out, child));
    }
    let path = dir.path().join("report.pdf");
    let digest = make_file(&path, 1 << 20, 23)?;
    let sent = rcs_as(&base, "zoe")
        .arg("send")
        .arg("yuki")
        .arg(&path)
        .envs(password)
        .output()?;
    ensure!(sent.status.success(), "send: {}", said(&sent));
    let mut received = 0;
    let mut elsewhere = 0;
    for (out, child) in receivers {
        let done = child.wait_with_output()?;
        let stdout = String::from_utf8_lossy(&done.stdout).into_owned();
        ensure!(done.status.success(), "a receiver failed: {}", said(&done));
        if stdout.starts_with("received ") {
            received += 1;
            ensure!(sha256_file(&out.join("report.pdf"))? == digest, "{stdout}");
        } else {
            ensure!(
                stdout.trim() == "report.pdf was received on another device",
                "{stdout}"
            );
            elsewhere += 1;
            ensure!(
                std::fs::read_dir(&out)?.count() == 0,
                "nothing is left behind"
            );
        }
    }
    ensure!(
        (received, elsewhere) == (1, 1),
        "{received} received, {elsewhere} elsewhere"
    );
    Ok(())
}

//! The command-line client as a person types it, against the local host: `rcs account create`,
//! signing in with `RCS_PASSWORD` or `--password`, a wrong password, `rcs account passwd` and
//! `rcs account delete`, and what `rcs` says when it has no password to give.

use std::process::{Command, Output};

use anyhow::{Result, ensure};
use rcs_e2e::{Host, HostOptions, rcs_binary};

/// Runs `rcs --server <base> --user zoe <args>` with `env` set and no terminal.
fn rcs(base: &str, args: &[&str], env: &[(&str, &str)]) -> Result<Output> {
    let mut command = Command::new(rcs_binary());
    command
        .args([
            "--server",
            base,
            "--user",
            "zoe",
            "--timeout",
            "20",
            "--quiet",
        ])
        .args(args)
        .env_remove("RCS_PASSWORD")
        .env_remove("RCS_NEW_PASSWORD")
        .env_remove("RCS_ADMIN_TOKEN")
        .stdin(std::process::Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    Ok(command.output()?)
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

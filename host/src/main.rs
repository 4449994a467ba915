//! `rcs-edge`: the local edge host. It runs the same `.wasm` files `spin deploy` ships, so a machine
//! without Spin runs and tests the exact artifacts production runs, behind a built-in GRIP WebSocket
//! gateway that speaks what Pushpin and Fastly Fanout speak.
//!
//! ```text
//! rcs-edge up [--from spin.toml] [--listen 127.0.0.1:3000] [--publish-listen 127.0.0.1:5561]
//!             [--runtime-config-file runtime-config.toml] [--state-dir DIR]
//!             [--grip-sig-key KEY] [--env NAME=VALUE ...]
//!             [--compile-cache DIR | --no-compile-cache] [--gateway-echo PREFIX] [--quiet]
//! ```
//! Prints `Publish endpoint http://<publish-listen>/publish/` and then `Serving http://<listen>` on
//! stdout once both listeners accept connections (port 0 picks a free port; the lines say which), and
//! one line per request (method, path, status, milliseconds) on stderr unless `--quiet`. Outbound
//! requests of components are logged as `outbound <method> <url> request <n>B` and
//! `outbound <method> <url> <status> answer <n>B`, the bytes their bodies carried. Compiled components
//! are cached (the `compile_cache` module), so only the first start after a build compiles them.
//!
//! # What of Spin it supports
//! - Manifest v2: `[variables]` (`default`, `required`; `SPIN_VARIABLE_<NAME>` overrides; a required
//!   variable without a value refuses to start), `[[trigger.http]]` with `route` (exact, `/prefix/...`,
//!   `{ private = true }`) and a component id, `[component.<id>]` with `source` (a local path),
//!   `files` (folders only, as `"dir"` mounted at `/dir` or `{ source, destination }`; read-only WASI
//!   preopens, so a guest reads `destination/…` with `std::fs`), `key_value_stores`,
//!   `allowed_outbound_hosts`, `environment`, `[component.<id>.variables]` with `{{ name }}` templates
//!   of application variables; `build`, `description` and `[application]` are ignored.
//! - Components built with `spin-sdk` 6 (`wasi:http/handler@0.3.0-rc-2026-03-15`), with WASI 0.2 and
//!   0.3, `spin:key-value@3.0.0`, `spin:variables@3.0.0` and `wasi:keyvalue@0.2.0-draft2`
//!   (`store`, `batch`, `atomics`, with Spin 4.0.2's answers on each backend: `spin_api`).
//! - Request headers as Spin sets them: `spin-full-url`, `spin-path-info`, `spin-matched-route`,
//!   `spin-component-route`, `spin-raw-component-route`, `spin-base-path` (always `/`),
//!   `spin-client-addr` (absent on service-chained requests); the request URI is absolute
//!   (`http://<Host header><path>`).
//! - Key-value on SQLite (`<state-dir>/sqlite_key_value.db`, Spin's schema; the state folder defaults
//!   to `.spin` beside the manifest, as `spin up` does) or Redis via a runtime-config file
//!   (`[key_value_store.<label>] type = "redis" url = "…"` or `type = "spin" path = "…"`).
//! - Outbound HTTP limited to `allowed_outbound_hosts`, to the network. No service chaining
//!   (`http://<id>.spin.internal`) and no self requests: Spin 4.0.2 gives neither to
//!   `wasi:http@0.3` handlers (its pooled WASIp3 instances lack the interceptor and the origin), so a
//!   chained request fails with a DNS error here as it does there, and a relative URL is
//!   `HttpRequestUriInvalid`. Components reach each other at the application's own address.
//! - Key-value without a value size limit on writes, and reads over Spin's 128 MiB host buffer
//!   refused with Spin's error, as `spin up` does (hosted platforms limit values to about 1 MB).
//!
//! # What it does not support
//! Component sources by URL, `files` globs and single files, route parameters (`/:name`),
//! `sqlite_databases`, LLM, MySQL/PostgreSQL/Redis/MQTT outbound interfaces, component dependencies,
//! Redis triggers, variables providers other than the environment (no Vault, no `.env` file),
//! HTTPS listeners and HTTP/2 inbound.
//!
//! # Secrets
//! A variable declared `secret = true` with a default is never served with that well-known default:
//! unless `SPIN_VARIABLE_<NAME>` sets it, the host makes a random value once per state folder and
//! keeps it in `<state-dir>/secrets.toml` (the `secrets` module), as a secrets provider would.
//!
//! # The GRIP gateway
//! See the `gateway` module: WebSocket upgrades on any route, Pushpin's WebSocket-over-HTTP towards the
//! components, and a publish endpoint on `--publish-listen`. `Grip-Sig` is signed with
//! `--grip-sig-key`, or else the application variable `grip_sig_key`; with neither the host refuses to
//! start. Nothing in request handling depends on the gateway: behind a real Pushpin the components
//! receive the same `POST`s as ordinary HTTP requests.

mod compile_cache;
mod gateway;
mod kv;
mod listener;
mod manifest;
mod outbound;
mod routes;
mod runtime;
mod secrets;
mod spin_api;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use crate::gateway::Gateway;
use crate::kv::Stores;
use crate::listener::Service;
use crate::manifest::Manifest;
use crate::runtime::Application;

/// The local edge host for the project's Spin components.
#[derive(Parser)]
#[command(name = "rcs-edge", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the application of a Spin manifest.
    Up(UpArgs),
}

#[derive(clap::Args)]
struct UpArgs {
    /// The Spin manifest.
    #[arg(long, default_value = "spin.toml")]
    from: PathBuf,
    /// Where the application listens.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Where the gateway's publish endpoint listens.
    #[arg(long, default_value = "127.0.0.1:5561")]
    publish_listen: SocketAddr,
    /// A Spin runtime-config file (key-value stores).
    #[arg(long)]
    runtime_config_file: Option<PathBuf>,
    /// Where the default SQLite key-value file lives (default: `.spin` beside the manifest).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// The key `Grip-Sig` is signed with (default: the application variable `grip_sig_key`).
    #[arg(long)]
    grip_sig_key: Option<String>,
    /// An environment variable for every component.
    #[arg(long = "env", short = 'e', value_name = "NAME=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// Where compiled components are cached (default: `$XDG_CACHE_HOME/rcs-edge`, else
    /// `~/.cache/rcs-edge`).
    #[arg(long, conflicts_with = "no_compile_cache")]
    compile_cache: Option<PathBuf>,
    /// Compile every component at start, caching nothing.
    #[arg(long)]
    no_compile_cache: bool,
    /// Sockets opened on paths under this prefix are echoed by the gateway itself, with no
    /// component: a benchmark's floor.
    #[arg(long, value_name = "PREFIX")]
    gateway_echo: Option<String>,
    /// Do not log requests.
    #[arg(long, short)]
    quiet: bool,
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("expected NAME=VALUE, found {text:?}")),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Command::Up(args) = Cli::parse().command;
    up(args).await
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let state_dir = args.state_dir.clone().unwrap_or_else(|| {
        args.from
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join(".spin")
    });
    // Secret variables the environment does not set get this state folder's own values.
    let unset: Vec<String> = Manifest::secrets_with_defaults(&args.from)?
        .into_iter()
        .filter(|name| std::env::var(manifest::variable_env_name(name)).is_err())
        .collect();
    let (secrets, secrets_path) = secrets::kept(&state_dir, &unset)?;
    let own: std::collections::HashMap<String, String> = unset
        .iter()
        .filter_map(|name| {
            let value = secrets.get(name)?;
            Some((manifest::variable_env_name(name), value.clone()))
        })
        .collect();
    let manifest = Manifest::load(&args.from, |name| {
        std::env::var(name).ok().or_else(|| own.get(name).cloned())
    })?;
    if !unset.is_empty() {
        eprintln!(
            "{} of this state folder are kept in {}",
            unset.join(", "),
            secrets_path.display()
        );
    }
    let grip_sig_key = args
        .grip_sig_key
        .or_else(|| manifest.variables.get("grip_sig_key").cloned())
        .context("no Grip-Sig key: pass --grip-sig-key or define the variable grip_sig_key")?;
    let stores = Stores::open(&state_dir, args.runtime_config_file.as_deref()).await?;
    let compile_cache = if args.no_compile_cache {
        None
    } else {
        args.compile_cache.or_else(compile_cache::default_dir)
    };
    let runtime = Application::new(manifest, stores, args.env, compile_cache.as_deref())?;
    let gateway = Gateway::new(
        runtime.clone(),
        grip_sig_key.into_bytes(),
        args.gateway_echo,
    );

    let publish = TcpListener::bind(args.publish_listen)
        .await
        .with_context(|| format!("binding the publish endpoint to {}", args.publish_listen))?;
    let app = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let mut stdout = std::io::stdout();
    writeln!(
        stdout,
        "Publish endpoint http://{}/publish/",
        publish.local_addr()?
    )?;
    writeln!(stdout, "Serving http://{}", app.local_addr()?)?;
    stdout.flush()?;

    let log = !args.quiet;
    runtime::LOG_REQUESTS.store(log, std::sync::atomic::Ordering::Relaxed);
    tokio::select! {
        () = listener::serve(publish, Service::Publish(gateway.clone()), log) => {}
        () = listener::serve(app, Service::App { runtime, gateway }, log) => {}
        signal = tokio::signal::ctrl_c() => signal.context("waiting for Ctrl-C")?,
    }
    Ok(())
}

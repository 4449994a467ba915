//! Fixtures for the end-to-end tests and the benchmark: the real servers the system runs on, each
//! started on 127.0.0.1 by the test that needs it and stopped when it is dropped.
//!
//! - [`build`] builds the Spin components (wasm32-wasip2, release) and the local edge host once per
//!   test process, exactly as `scripts/build-components.sh` does;
//! - [`Host`] runs `spin.toml` as a child process on one of two [`HostBinary`]s: the local edge host
//!   (`rcs-edge up`, with its built-in gateway or behind a [`Pushpin`]) or real Spin (`spin up`, always
//!   behind a [`Pushpin`], since Spin has no inbound WebSockets), on SQLite (a fresh state folder) or on
//!   a [`Redis`];
//! - [`Redis`] runs `redis-server` (the network shared store of claim 2);
//! - [`Pushpin`] runs Debian's Pushpin self-contained (its own run and log folders, zurl included), with
//!   a route file pointing at the host.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use tokio_tungstenite::tungstenite::Message;

pub use rcs_testkit::password_of;

/// The gateway key the tests configure in the host, its components and Pushpin.
pub const GRIP_KEY: &str = "e2e-grip-signing-key";
/// The first-value signing secret the tests configure.
pub const SIGNING_SECRET: &str = "e2e-first-value-signing-secret-0123456789";
/// The token that guards the components' tick routes.
pub const ADMIN_TOKEN: &str = "e2e-admin-token";

/// Set this environment variable to see the hosts' stderr (request log, errors) as the tests run.
pub const ECHO_HOST_LOG: &str = "RCS_E2E_HOST_LOG";

/// Where a host started [`HostOptions::with_echo`] echoes WebSocket messages with no component.
pub const GATEWAY_ECHO: &str = "/gateway-echo/";

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the repository")
        .to_path_buf()
}

/// The cargo target folder this test binary was built into.
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        return if dir.is_absolute() {
            dir
        } else {
            repo_root().join(dir)
        };
    }
    repo_root().join("target")
}

/// Builds the components and the host once per process (a no-op when they are up to date).
pub fn build() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let script = repo_root().join("scripts/build-components.sh");
        let mut command = Command::new("bash");
        command
            .arg(&script)
            .current_dir(repo_root())
            .env("CARGO_TARGET_DIR", target_dir());
        // Cargo gives the test process the variables of the package under test; build scripts that
        // watch them (ring's watches CARGO_MANIFEST_DIR) would otherwise rebuild on every run.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if is_package_variable(&name) {
                command.env_remove(name.as_ref());
            }
        }
        let status = command.status().expect("run scripts/build-components.sh");
        assert!(status.success(), "building the components failed");
        target_dir().join("release/rcs-edge")
    })
}

/// Whether `name` is one of the variables Cargo sets for the package whose tests are running.
fn is_package_variable(name: &str) -> bool {
    name == "OUT_DIR"
        || name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_BIN_")
        || [
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_CRATE_NAME",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "CARGO_RUSTC_CURRENT_DIR",
        ]
        .contains(&name)
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

/// The `scheme://host[:port]` of a URL.
fn origin(url: &str) -> String {
    url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/")
}

/// Waits until something accepts connections on `addr`.
fn wait_for_port(addr: SocketAddr, child: &mut Child, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited with {status} before listening on {addr}");
        }
        if Instant::now() > deadline {
            bail!("{what} did not listen on {addr} within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until a request through Pushpin at `http` reaches the origin and comes back: Pushpin
/// listens before its services have connected to one another, and a request that comes in
/// between fails (`502`, or a WebSocket handshake cut short).
fn wait_for_proxying(http: SocketAddr) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answered =
            TcpStream::connect_timeout(&http, Duration::from_millis(500)).and_then(|mut stream| {
                use std::io::Write;
                stream.set_read_timeout(Some(Duration::from_secs(2)))?;
                stream
                    .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
                let mut status = String::new();
                BufReader::new(stream).read_line(&mut status)?;
                Ok(status)
            });
        // Any answer of the origin will do; Pushpin's own are 502 to 504.
        let from_origin = |status: String| {
            let code = status.split(' ').nth(1).unwrap_or("");
            status.starts_with("HTTP/1.") && !["502", "503", "504", ""].contains(&code)
        };
        if answered.is_ok_and(from_origin) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("Pushpin did not proxy a request to the origin within 30 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A `redis-server` on 127.0.0.1 that keeps nothing on disk.
pub struct Redis {
    child: Child,
    /// Its port.
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    /// Starts one on a free port.
    pub fn start() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let mut child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .context("start redis-server (apt-get install redis-server)")?;
        wait_for_port(([127, 0, 0, 1], port).into(), &mut child, "redis-server")?;
        Ok(Self {
            child,
            port,
            _dir: dir,
        })
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// How many times each data command has run since the server started (`INFO commandstats`),
    /// by lowercase name: what the runtimes' key-value calls became. Connection and server
    /// commands (`info`, `hello`, `client`, `select`, `ping`) are left out.
    pub fn command_calls(&self) -> Result<BTreeMap<String, u64>> {
        use std::io::Write as _;
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(b"INFO commandstats\r\n")?;
        let mut reader = BufReader::new(stream);
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let length: usize = header
            .trim_end()
            .strip_prefix('$')
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("INFO answered {header:?}"))?;
        let mut text = vec![0u8; length];
        reader.read_exact(&mut text)?;
        let mut calls = BTreeMap::new();
        for line in String::from_utf8_lossy(&text).lines() {
            let Some((name, stats)) = line
                .strip_prefix("cmdstat_")
                .and_then(|rest| rest.split_once(':'))
            else {
                continue;
            };
            if ["info", "hello", "client", "select", "ping"].contains(&name) {
                continue;
            }
            let count = stats
                .split(',')
                .find_map(|field| field.strip_prefix("calls="))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            calls.insert(name.to_owned(), count);
        }
        Ok(calls)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment variable that names the real Spin CLI the tests run on.
pub const SPIN_BIN: &str = "SPIN_BIN";

/// What serves `spin.toml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostBinary {
    /// The project's local edge host, `rcs-edge up`.
    Local,
    /// Real Spin: this `spin` binary, `spin up`.
    Spin(PathBuf),
}

impl HostBinary {
    /// Real Spin, from the [`SPIN_BIN`] environment variable or else `spin` on `PATH`; or the
    /// sentence a test prints when it is skipped for want of it.
    pub fn real_spin() -> std::result::Result<Self, String> {
        if let Some(bin) = std::env::var_os(SPIN_BIN).filter(|bin| !bin.is_empty()) {
            let bin = PathBuf::from(bin);
            let bin = if bin.is_absolute() {
                bin
            } else {
                repo_root().join(bin)
            };
            return if bin.is_file() {
                Ok(Self::Spin(bin))
            } else {
                Err(format!("{SPIN_BIN}={} is not a file", bin.display()))
            };
        }
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join("spin"))
            .find(|candidate| candidate.is_file())
            .map(Self::Spin)
            .ok_or_else(|| format!("no real Spin: set {SPIN_BIN} or put `spin` on PATH"))
    }

    /// A short name for tables and messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Local => "local host",
            Self::Spin(_) => "Spin 4.0.2",
        }
    }
}

/// Real Spin for a test, or `None` after printing why the test is skipped.
pub fn spin_or_skip(test: &str) -> Option<HostBinary> {
    match HostBinary::real_spin() {
        Ok(spin) => Some(spin),
        Err(why) => {
            eprintln!("skipped {test}: {why}");
            None
        }
    }
}

/// Where the host keeps its files.
#[derive(Clone, Debug)]
pub enum Store {
    /// SQLite in the host's state folder (the embedded default).
    Sqlite,
    /// Redis at this URL, through a runtime-config file.
    Redis(String),
}

/// Lines the host wrote to stderr, kept for assertions (request log) and failure messages.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().map(|lines| lines.clone()).unwrap_or_default()
    }

    fn push(&self, line: String) {
        if let Ok(mut lines) = self.0.lock() {
            lines.push(line);
        }
    }
}

/// How a [`Host`] is started.
#[derive(Clone, Debug)]
pub struct HostOptions {
    /// What serves the application.
    pub runtime: HostBinary,
    /// The shared store.
    pub store: Store,
    /// Spin variables set through `SPIN_VARIABLE_<NAME>`.
    pub variables: Vec<(String, String)>,
    /// Put a [`Pushpin`] in front, as production does (always so on real Spin).
    pub behind_pushpin: bool,
    /// Also serve the echo component at `/echo/...`, and the gateway's own echo at
    /// `/gateway-echo/...` (the benchmark's two floors; the second only on the local host's gateway).
    pub with_echo: bool,
    /// The runtime's HTTP port, when something must know it before the runtime starts.
    pub port: Option<u16>,
}

impl HostOptions {
    /// The local host on SQLite, the tests' keys, nothing else changed.
    pub fn sqlite() -> Self {
        Self {
            runtime: HostBinary::Local,
            store: Store::Sqlite,
            variables: Vec::new(),
            behind_pushpin: false,
            with_echo: false,
            port: None,
        }
    }

    /// The local host on Redis at `url`.
    pub fn redis(url: String) -> Self {
        Self {
            store: Store::Redis(url),
            ..Self::sqlite()
        }
    }

    /// Runs on `runtime` instead (real Spin puts a Pushpin in front).
    pub fn on(mut self, runtime: HostBinary) -> Self {
        self.behind_pushpin |= matches!(runtime, HostBinary::Spin(_));
        self.runtime = runtime;
        self
    }

    /// Sets a Spin variable.
    pub fn variable(mut self, name: &str, value: impl Into<String>) -> Self {
        self.variables.push((name.to_owned(), value.into()));
        self
    }
}

/// `spin.toml` served on 127.0.0.1 by a [`HostBinary`], with a [`Pushpin`] in front when asked.
pub struct Host {
    child: Option<Child>,
    options: HostOptions,
    /// The application's own HTTP address (the runtime's listener).
    pub http: SocketAddr,
    /// The built-in gateway's publish address (the local host without Pushpin).
    publish: SocketAddr,
    /// The client and publish ports of the Pushpin in front, if any.
    pushpin_ports: Option<(u16, u16)>,
    pushpin: Option<Pushpin>,
    state: tempfile::TempDir,
    /// What the runtime wrote to stdout and stderr.
    pub log: Log,
}

impl Host {
    /// Builds what is needed and starts the runtime (and Pushpin, when asked).
    /// The runtime starts first (on a free port, tried again on another should something take
    /// the port meanwhile), then Pushpin in front of it, on ports chosen beforehand because the
    /// runtime's variables name them.
    pub fn start(options: HostOptions) -> Result<Self> {
        let preset = options.port;
        let pushpin_ports = options.behind_pushpin.then(|| (free_port(), free_port()));
        let mut host = Self {
            child: None,
            options,
            http: ([127, 0, 0, 1], preset.unwrap_or_else(free_port)).into(),
            publish: ([127, 0, 0, 1], free_port()).into(),
            pushpin_ports,
            pushpin: None,
            state: tempfile::tempdir()?,
            log: Log::default(),
        };
        let mut attempts = 0;
        while let Err(error) = host.spawn() {
            attempts += 1;
            // The runtime has exited; let its last lines of stderr reach the log.
            std::thread::sleep(Duration::from_millis(200));
            let taken = host
                .log
                .lines()
                .iter()
                .any(|line| line.contains("already in use"));
            if !taken || preset.is_some() || attempts == 5 {
                return Err(error);
            }
            host.log = Log::default();
            host.http = ([127, 0, 0, 1], free_port()).into();
            host.publish = ([127, 0, 0, 1], free_port()).into();
        }
        if let Some((http, publish)) = host.pushpin_ports {
            host.pushpin = Some(Pushpin::start(host.http, http, publish)?);
        }
        Ok(host)
    }

    /// The address clients connect to: Pushpin's when it is in front, else the runtime's own.
    pub fn client_addr(&self) -> SocketAddr {
        match self.pushpin_ports {
            Some((http, _)) => ([127, 0, 0, 1], http).into(),
            None => self.http,
        }
    }

    /// The base URL clients use: Pushpin's when it is in front, else the runtime's own.
    pub fn base_url(&self) -> String {
        match self.pushpin_ports {
            Some((http, _)) => format!("http://127.0.0.1:{http}"),
            None => format!("http://{}", self.http),
        }
    }

    /// The runtime serving the application.
    pub fn runtime(&self) -> &HostBinary {
        &self.options.runtime
    }

    /// The runtime's log and, behind Pushpin, Pushpin's: for failure messages.
    pub fn logs(&self) -> String {
        let mut all = self.log.lines().join("\n");
        if let Some(pushpin) = &self.pushpin {
            all.push_str("\n--- pushpin ---\n");
            all.push_str(&pushpin.logs());
        }
        all
    }

    /// The folder the runtime keeps its SQLite store in.
    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// The runtime's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The publish endpoint the components push to.
    fn publish_url(&self) -> String {
        match self.pushpin_ports {
            Some((_, publish)) => format!("http://127.0.0.1:{publish}/publish/"),
            None => format!("http://{}/publish/", self.publish),
        }
    }

    fn spawn(&mut self) -> Result<()> {
        let local_host = build();
        let manifest = if self.options.with_echo {
            self.manifest_with_echo()?
        } else {
            repo_root().join("spin.toml")
        };
        let runtime_config = match &self.options.store {
            Store::Sqlite => None,
            Store::Redis(url) => {
                let config = self.state.path().join("runtime-config.toml");
                std::fs::write(
                    &config,
                    format!("[key_value_store.default]\ntype = \"redis\"\nurl = \"{url}\"\n"),
                )?;
                Some(config)
            }
        };
        let mut command = Command::new(match &self.options.runtime {
            HostBinary::Local => local_host,
            HostBinary::Spin(spin) => spin.as_path(),
        });
        command
            .arg("up")
            .arg("--from")
            .arg(&manifest)
            .arg("--listen")
            .arg(self.http.to_string())
            .arg("--state-dir")
            .arg(self.state.path());
        match &self.options.runtime {
            HostBinary::Local => {
                command
                    .arg("--publish-listen")
                    .arg(self.publish.to_string())
                    .arg("--grip-sig-key")
                    .arg(GRIP_KEY);
                if self.options.with_echo {
                    command.arg("--gateway-echo").arg(GATEWAY_ECHO);
                }
            }
            HostBinary::Spin(_) => {
                // Spin copies component output to its own stdout and stderr, and to files in
                // the state folder.
                command.arg("--log-dir").arg(self.state.path().join("logs"));
            }
        }
        // Its own process group: `spin up` runs the application in a child process
        // (`spin trigger http`), which must stop with it.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        command.current_dir(repo_root());
        if let Some(config) = runtime_config {
            command.arg("--runtime-config-file").arg(config);
        }
        let public_base = format!("{}/", self.base_url());
        let publish_url = self.publish_url();
        let publish_origin = origin(&publish_url);
        let mut variables = vec![
            ("public_base_url".to_owned(), public_base),
            ("grip_publish_origin".to_owned(), publish_origin),
            ("grip_publish_url".to_owned(), publish_url),
            // The sender AS reaches the receiver AS at the application's own listener.
            (
                "receiver_as_origin".to_owned(),
                format!("http://{}", self.http),
            ),
            ("grip_sig_key".to_owned(), GRIP_KEY.to_owned()),
            ("signing_secret".to_owned(), SIGNING_SECRET.to_owned()),
            ("admin_token".to_owned(), ADMIN_TOKEN.to_owned()),
        ];
        variables.extend(self.options.variables.iter().cloned());
        for (name, value) in variables {
            command.env(format!("SPIN_VARIABLE_{}", name.to_uppercase()), value);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("start {}", self.options.runtime.name()))?;
        let stdout = child.stdout.take().context("runtime stdout")?;
        let stderr = child.stderr.take().context("runtime stderr")?;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let echo_log = std::env::var_os(ECHO_HOST_LOG).is_some();
        for (stream, ready) in [
            (Box::new(stdout) as Box<dyn Read + Send>, Some(ready_tx)),
            (Box::new(stderr), None),
        ] {
            let log = self.log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    // Both runtimes print `Serving http://<address>` once they accept requests.
                    if line.starts_with("Serving ")
                        && let Some(ready) = &ready
                    {
                        let _ = ready.send(());
                    }
                    if echo_log {
                        eprintln!("host: {line}");
                    }
                    log.push(line);
                }
            });
        }
        let ready = ready_rx.recv_timeout(Duration::from_secs(120));
        if ready.is_err() {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{} did not print `Serving` (it exited, or took over 120 s); its log:\n{}",
                self.options.runtime.name(),
                self.log.lines().join("\n")
            );
        }
        self.child = Some(child);
        Ok(())
    }

    /// `spin.toml` with the echo component added at `/echo/...` (with the store, one variable
    /// `probe`, and the sender AS's outbound hosts), written to the state folder with its component
    /// paths made absolute.
    fn manifest_with_echo(&self) -> Result<PathBuf> {
        let root = repo_root();
        let text = std::fs::read_to_string(root.join("spin.toml"))?.replace(
            "source = \"target/",
            &format!("source = \"{}/target/", root.display()),
        );
        // Spin maps only files inside the manifest's folder: `www` is a link to the repository's.
        let www = self.state.path().join("www");
        if !www.exists() {
            std::os::unix::fs::symlink(root.join("www"), &www)?;
        }
        // The echo component may call what the sender AS calls (the parity probes), has one
        // variable, and shares the store.
        let echo = format!(
            "\n[[trigger.http]]\nroute = \"/echo/...\"\ncomponent = \"echo\"\n\n\
             [component.echo]\nsource = \"{}/target/wasm32-wasip2/release/echo.wasm\"\n\
             key_value_stores = [\"default\"]\n\
             allowed_outbound_hosts = [\"http://receiver-as.spin.internal\", \"{{{{ receiver_as_origin }}}}\"]\n\
             [component.echo.variables]\nprobe = \"domain {{{{ domain }}}}\"\n",
            root.display()
        );
        let path = self.state.path().join("spin-with-echo.toml");
        std::fs::write(&path, text + &echo)?;
        Ok(path)
    }

    /// Kills the host at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The whole process group, so that no `spin trigger http` outlives its `spin up`.
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--"])
                .arg(format!("-{}", child.id()))
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the host again on the same ports and state (after [`Host::kill`]).
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.spawn()
    }

    /// The runtime's peak resident memory so far, in KiB: the `VmHWM` of its process and of every
    /// process under it (`spin up` runs its trigger as a child process).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        fn peak(pid: u32) -> u64 {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let own = status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0);
            let children: u64 = std::fs::read_dir(format!("/proc/{pid}/task"))
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
                .flat_map(|list| {
                    list.split_whitespace()
                        .filter_map(|child| child.parse().ok())
                        .collect::<Vec<u32>>()
                })
                .map(peak)
                .sum();
            own + children
        }
        self.pid().map(peak)
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Debian's Pushpin, self-contained on loopback, routing everything to a backend over HTTP.
pub struct Pushpin {
    child: Child,
    dir: tempfile::TempDir,
}

impl Pushpin {
    /// Starts Pushpin in front of `backend`, signing its requests with [`GRIP_KEY`].
    /// Clients connect on `http_port`, components publish on `publish_port`. Pushpin's internal
    /// ports are picked free just before it starts, so another process may take one first: a
    /// start that fails is tried again with fresh ones.
    pub fn start(backend: SocketAddr, http_port: u16, publish_port: u16) -> Result<Self> {
        let mut failures = Vec::new();
        for _ in 0..3 {
            match Self::try_start(backend, http_port, publish_port) {
                Ok(pushpin) => return Ok(pushpin),
                Err(failure) => failures.push(failure),
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        bail!("Pushpin did not start:\n{}", failures.join("\n"))
    }

    /// One attempt; on failure, what went wrong with Pushpin's logs.
    fn try_start(
        backend: SocketAddr,
        http_port: u16,
        publish_port: u16,
    ) -> std::result::Result<Self, String> {
        let failed = |error: anyhow::Error| format!("{error:#}");
        let dir = tempfile::tempdir().map_err(|e| failed(e.into()))?;
        let root = dir.path();
        let run = root.join("run");
        let logs = root.join("log");
        std::fs::create_dir_all(&run).map_err(|e| failed(e.into()))?;
        std::fs::create_dir_all(&logs).map_err(|e| failed(e.into()))?;
        let [push_in, push_in_sub, command] = [free_port(), free_port(), free_port()];
        std::fs::write(
            root.join("routes"),
            format!("* 127.0.0.1:{},over_http\n", backend.port()),
        )
        .map_err(|e| failed(e.into()))?;
        let config = format!(
            "[global]\n\
             include={{libdir}}/internal.conf\n\
             rundir={run}\n\
             ipc_prefix=pushpin-\n\
             port_offset=0\n\
             [runner]\n\
             services=condure,zurl,pushpin-proxy,pushpin-handler\n\
             http_port=127.0.0.1:{http_port}\n\
             logdir={logs}\n\
             log_level=2\n\
             client_buffer_size=65536\n\
             client_maxconn=10000\n\
             condure_bin=condure\n\
             zurl_bin=zurl\n\
             [proxy]\n\
             routesfile={routes}\n\
             sig_iss=pushpin\n\
             sig_key={GRIP_KEY}\n\
             zurl_out_specs=ipc://{{rundir}}/{{ipc_prefix}}zurl-in\n\
             zurl_out_stream_specs=ipc://{{rundir}}/{{ipc_prefix}}zurl-in-stream\n\
             zurl_in_specs=ipc://{{rundir}}/{{ipc_prefix}}zurl-out\n\
             [handler]\n\
             push_in_spec=tcp://127.0.0.1:{push_in}\n\
             push_in_sub_specs=tcp://127.0.0.1:{push_in_sub}\n\
             push_in_sub_connect=false\n\
             push_in_http_addr=127.0.0.1\n\
             push_in_http_port={publish_port}\n\
             push_in_http_max_body_size=1000000\n\
             stats_spec=ipc://{{rundir}}/{{ipc_prefix}}stats\n\
             command_spec=tcp://127.0.0.1:{command}\n\
             message_rate=100000\n\
             message_hwm=100000\n\
             connection_subscription_max=20\n",
            run = run.display(),
            logs = logs.display(),
            routes = root.join("routes").display(),
        );
        let config_path = root.join("pushpin.conf");
        std::fs::write(&config_path, config).map_err(|e| failed(e.into()))?;
        let mut child = Command::new("pushpin")
            .arg(format!("--config={}", config_path.display()))
            .current_dir(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start pushpin (apt-get install pushpin)")
            .map_err(failed)?;
        let http: SocketAddr = ([127, 0, 0, 1], http_port).into();
        let started = wait_for_port(http, &mut child, "pushpin")
            .and_then(|()| {
                wait_for_port(([127, 0, 0, 1], publish_port).into(), &mut child, "pushpin")
            })
            .and_then(|()| wait_for_proxying(http));
        let pushpin = Self { child, dir };
        let started = started.and_then(|()| pushpin.wait_for_subscriptions(http));
        match started {
            Ok(()) => Ok(pushpin),
            Err(error) => Err(format!("{error:#}; its logs:\n{}", pushpin.logs())),
        }
    }

    /// Waits until a WebSocket's subscription reaches Pushpin's handler. A channel the origin
    /// subscribes a connection to takes effect only once the proxy's control link to the handler
    /// is up, and at start that link may take a reconnect interval to come up: a message
    /// published to a new connection in between has no receiver and is lost. A probe WebSocket
    /// opens through Pushpin (its OPEN reaches the origin, which subscribes it to its channel),
    /// and the handler's log says when the subscription is in effect.
    fn wait_for_subscriptions(&self, http: SocketAddr) -> Result<()> {
        use std::io::Write;
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut probe = TcpStream::connect_timeout(&http, Duration::from_secs(2))?;
        probe.set_read_timeout(Some(Duration::from_secs(5)))?;
        probe.write_all(
            b"GET /sender/sip HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n\r\n",
        )?;
        let mut status = String::new();
        BufReader::new(probe.try_clone()?).read_line(&mut status)?;
        if !status.starts_with("HTTP/1.1 101") {
            bail!("the probe WebSocket through Pushpin was answered {status:?}");
        }
        loop {
            let subscribed = self
                .logs()
                .lines()
                .any(|line| line.contains("subscribe ") && line.contains("channel=conn:"));
            if subscribed {
                // Dropping the probe closes it; the origin is told and forgets it.
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("a WebSocket through Pushpin was not subscribed to its channel within 30 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Pushpin's own logs, for failure messages.
    pub fn logs(&self) -> String {
        let mut all = String::new();
        if let Ok(entries) = std::fs::read_dir(self.dir.path().join("log")) {
            for entry in entries.flatten() {
                let mut text = String::new();
                if std::fs::File::open(entry.path())
                    .and_then(|mut file| file.read_to_string(&mut text))
                    .is_ok()
                {
                    all.push_str(&text);
                }
            }
        }
        all
    }
}

impl Drop for Pushpin {
    fn drop(&mut self) {
        // Pushpin's runner stops its services when it gets SIGTERM.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP relay between clients and the host that can cut connections, as a lossy network would,
/// and counts the bytes it carries each way. Connections whose HTTP request line contains a marker
/// (`/msrp`, say) can be cut on their own.
pub struct Relay {
    /// Where clients connect.
    pub addr: SocketAddr,
    cut: tokio::sync::watch::Sender<Option<String>>,
    carried: Arc<Carried>,
    task: tokio::task::JoinHandle<()>,
}

/// Bytes a [`Relay`] has carried: from clients to the target, and back.
#[derive(Default)]
struct Carried {
    to_target: std::sync::atomic::AtomicU64,
    to_client: std::sync::atomic::AtomicU64,
}

impl Relay {
    /// Relays 127.0.0.1:<free port> to `target`. Must run inside a tokio runtime.
    pub async fn start(target: SocketAddr) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (cut, _) = tokio::sync::watch::channel(None::<String>);
        let cuts = cut.clone();
        let carried = Arc::new(Carried::default());
        let counters = Arc::clone(&carried);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let cut = cuts.subscribe();
                tokio::spawn(relay_one(client, target, cut, Arc::clone(&counters)));
            }
        });
        Ok(Self {
            addr,
            cut,
            carried,
            task,
        })
    }

    /// The base URL clients use.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Cuts every open connection whose request line contains `marker` (new ones are relayed).
    pub fn cut(&self, marker: &str) {
        self.cut.send_replace(Some(marker.to_owned()));
    }

    /// The bytes carried so far, both ways together (requests and answers, headers included).
    pub fn bytes_carried(&self) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        self.carried.to_target.load(Relaxed) + self.carried.to_client.load(Relaxed)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to` until either ends, adding what passes to `count`.
async fn pump(
    mut from: impl tokio::io::AsyncRead + Unpin,
    mut to: impl tokio::io::AsyncWrite + Unpin,
    count: &std::sync::atomic::AtomicU64,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        if to.write_all(&buffer[..read]).await.is_err() {
            break;
        }
        count.fetch_add(read as u64, std::sync::atomic::Ordering::Relaxed);
    }
    let _ = to.shutdown().await;
}

async fn relay_one(
    mut client: tokio::net::TcpStream,
    target: SocketAddr,
    mut cut: tokio::sync::watch::Receiver<Option<String>>,
    carried: Arc<Carried>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut server) = tokio::net::TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let mut first = vec![0u8; 4096];
    let Ok(read) = client.read(&mut first).await else {
        return;
    };
    first.truncate(read);
    let request_line = String::from_utf8_lossy(&first)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    if server.write_all(&first).await.is_err() {
        return;
    }
    carried
        .to_target
        .fetch_add(read as u64, std::sync::atomic::Ordering::Relaxed);
    // Only cuts ordered after this connection opened apply to it.
    cut.mark_unchanged();
    let (client_read, client_write) = client.split();
    let (server_read, server_write) = server.split();
    let relay = async {
        tokio::join!(
            pump(client_read, server_write, &carried.to_target),
            pump(server_read, client_write, &carried.to_client),
        )
    };
    tokio::pin!(relay);
    loop {
        tokio::select! {
            _ = &mut relay => return,
            changed = cut.changed() => {
                if changed.is_err() {
                    return;
                }
                let marker = cut.borrow_and_update().clone();
                if marker.is_some_and(|marker| request_line.contains(&marker)) {
                    // Dropping both streams resets the connection on both sides.
                    return;
                }
            }
        }
    }
}

/// Creates `name`'s account on the edge at `base` by sign-up, with [`password_of`] the user;
/// nothing if it exists already.
pub async fn ensure_account(base: &str, name: &str) -> Result<()> {
    let mut accounts = rcs_client::Accounts::new(base, Duration::from_secs(30))?;
    let password = rcs_core::client::Password::new(password_of(name));
    match accounts
        .create(name, &password, &rcs_client::Authority::Anyone)
        .await
    {
        Ok(()) | Err(rcs_client::Error::Http { status: 409, .. }) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// The options of `name`, signed in with [`password_of`] the user, operations failing after
/// `timeout` with nothing arriving.
pub fn signed_in(name: &str, timeout: Duration) -> rcs_client::Options {
    rcs_client::Options {
        timeout,
        password: Some(rcs_core::client::Password::new(password_of(name))),
        ..rcs_client::Options::default()
    }
}

/// A device of a user with an account ([`ensure_account`]) connected to the edge at `base` and
/// registered, with `delivery` (`None`: the server's default) and operations failing after
/// `timeout` with nothing arriving.
pub async fn registered(
    base: &str,
    name: &str,
    delivery: Option<rcs_core::service::Delivery>,
    timeout: Duration,
) -> Result<rcs_client::Client> {
    ensure_account(base, name).await?;
    let mut client = rcs_client::Client::connect(base, name, signed_in(name, timeout)).await?;
    client.register(delivery).await?;
    Ok(client)
}

/// Writes a file of `size` pseudo-random bytes (the same for the same seed, different for
/// different seeds) and returns its SHA-256, without holding it in memory.
pub fn make_file(path: &Path, size: u64, seed: u64) -> Result<[u8; 32]> {
    use sha2::{Digest, Sha256};
    use std::io::Write;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut hasher = Sha256::new();
    // A xorshift state is never 0; shifting first keeps every seed's stream its own.
    let mut state = (seed << 1) | 1;
    let mut block = vec![0u8; 64 * 1024];
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        for byte in &mut block[..n] {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = state as u8;
        }
        file.write_all(&block[..n])?;
        hasher.update(&block[..n]);
        left -= n as u64;
    }
    file.flush()?;
    Ok(hasher.finalize().into())
}

/// The SHA-256 of a file on disk.
pub fn sha256_file(path: &Path) -> Result<[u8; 32]> {
    Ok(rcs_client::sha256_of(path)?.1)
}

/// The bytes that crossed between the two application servers, one `(request, answer)` pair per
/// exchange: the bodies of every outbound `POST .../receiver/peer`, as the host logs them.
pub fn peer_traffic(log: &Log) -> Vec<(u64, u64)> {
    let size = |line: &str| {
        line.rsplit(' ')
            .next()
            .and_then(|bytes| bytes.trim_end_matches('B').parse::<u64>().ok())
    };
    let mut requests = Vec::new();
    let mut answers = Vec::new();
    for line in log.lines() {
        if !(line.starts_with("outbound POST ") && line.contains("/receiver/peer ")) {
            continue;
        }
        if line.contains(" request ") {
            requests.extend(size(&line));
        } else if line.contains(" answer ") {
            answers.extend(size(&line));
        }
    }
    requests.into_iter().zip(answers).collect()
}

/// A raw WebSocket to the edge.
pub type RawSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A raw WebSocket to the edge at `base` (`path`, with a subprotocol), for sending what no client
/// would.
pub async fn raw_socket(base: &str, path: &str, protocol: &str) -> Result<RawSocket> {
    let url = format!("{}{path}", base.replacen("http://", "ws://", 1));
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse()?);
    let (socket, response) = tokio_tungstenite::connect_async(request).await?;
    ensure!(
        response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .map(|v| v.as_bytes())
            == Some(protocol.as_bytes()),
        "the {protocol} subprotocol was not negotiated"
    );
    Ok(socket)
}

/// The next text (or binary, read as text) message of a raw socket, within 10 s.
pub async fn next_text<S>(socket: &mut S) -> Result<String>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    use futures_util::StreamExt;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .context("no answer within 10 s")?
            .context("the socket closed")??;
        match message {
            Message::Text(text) => return Ok(text.to_string()),
            Message::Binary(bytes) => return Ok(String::from_utf8_lossy(&bytes).into_owned()),
            _ => {}
        }
    }
}

/// The `Authorization` value that answers the first challenge (MD5, as the widely used browser SIP
/// libraries do) of the SIP `401` `answer`, for `user` with [`password_of`] the user, for `method`
/// on `uri`.
pub fn answer_challenge(answer: &str, user: &str, method: &str, uri: &str) -> Result<String> {
    let message = rcs_core::sip::parse(answer.as_bytes(), &rcs_core::sip::Limits::default())?;
    ensure!(message.status() == Some(401), "not a challenge: {answer}");
    let first = message
        .header_values("WWW-Authenticate")
        .next()
        .context("a 401 without WWW-Authenticate")?;
    let challenge = rcs_core::digest::Challenge::parse(first)?;
    Ok(challenge
        .answer(user, &password_of(user), method, uri, "e2e-cnonce", 1)
        .to_string())
}

/// A SIP request as a raw socket writes it, from `from` (a user at `localhost`) to `to`, numbered
/// `n` (CSeq, Call-ID, branch, tag), with `extra` header lines and `body`.
pub fn sip_request(
    from: &str,
    method: &str,
    uri: &str,
    to: &str,
    n: u32,
    extra: &str,
    body: &str,
) -> String {
    format!(
        "{method} {uri} SIP/2.0\r\n\
         Via: SIP/2.0/WS {from}.invalid;branch=z9hG4bK-raw-{n}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{from}@localhost>;tag=raw{n}\r\n\
         To: <{to}>\r\n\
         Call-ID: raw-call-{n}\r\n\
         CSeq: {n} {method}\r\n\
         {extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The command-line client `rcs`, built with the components.
pub fn rcs_binary() -> PathBuf {
    build();
    target_dir().join("release/rcs")
}

//! Shared test harness: builds the `echo` component, writes a manifest for it, starts `rcs-edge up` as a
//! child process on free 127.0.0.1 ports and stops it, and a small HTTP client.

#![allow(
    dead_code,
    reason = "each test file uses a different part of the harness"
)]

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;

/// The target folder the tests were built in (and the wasm is built in).
fn target_dir() -> PathBuf {
    // The binary is `<target>/<profile>/rcs-edge`.
    Path::new(env!("CARGO_BIN_EXE_rcs-edge"))
        .ancestors()
        .nth(2)
        .expect("the binary lives in <target>/<profile>/")
        .to_owned()
}

/// Builds `echo.wasm` once per test binary and returns its path.
pub fn echo_wasm() -> &'static Path {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| {
        let target = target_dir();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .args([
                "build",
                "-p",
                "echo",
                "--target",
                "wasm32-wasip2",
                "--release",
            ])
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("running cargo to build the echo component");
        assert!(status.success(), "building echo.wasm failed");
        let wasm = target.join("wasm32-wasip2/release/echo.wasm");
        assert!(wasm.exists(), "{} missing after the build", wasm.display());
        wasm
    })
}

/// A manifest for the test application: `echo` on `/echo/...` and `/exact`, `other` on `/other/...`,
/// `backend` private; all three are the echo component.
pub fn write_app(dir: &Path) -> PathBuf {
    let wasm = echo_wasm().display().to_string();
    std::fs::create_dir_all(dir.join("static")).unwrap();
    std::fs::write(dir.join("static/hello.txt"), "hello from a mounted folder").unwrap();
    let manifest = format!(
        r#"spin_manifest_version = 2

[application]
name = "host-tests"

[variables]
greeting = {{ default = "hello" }}
publish_host = {{ default = "127.0.0.1" }}

[[trigger.http]]
route = "/echo/..."
component = "echo"

[[trigger.http]]
route = "/exact"
component = "echo"

[[trigger.http]]
route = "/other/..."
component = "other"

[[trigger.http]]
route = {{ private = true }}
component = "backend"

[component.echo]
source = {wasm:?}
key_value_stores = ["default"]
allowed_outbound_hosts = ["http://backend.spin.internal", "http://{{{{ publish_host }}}}:*"]
files = [{{ source = "static", destination = "/assets" }}]

[component.echo.variables]
message = "{{{{ greeting }}}}, world"

[component.other]
source = {wasm:?}

[component.backend]
source = {wasm:?}
"#
    );
    let path = dir.join("spin.toml");
    std::fs::write(&path, manifest).unwrap();
    path
}

/// A running `rcs-edge up`, killed when dropped.
pub struct Host {
    child: Child,
    /// The application listener.
    pub addr: SocketAddr,
    /// The publish listener.
    pub publish: SocketAddr,
}

impl Host {
    /// Starts the host on `manifest` with its state in `state_dir`, plus extra arguments and
    /// environment variables.
    pub fn start(manifest: &Path, state_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = up(manifest, state_dir);
        command
            .args(["--grip-sig-key", "test-grip-key", "--quiet"])
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().expect("starting rcs-edge");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut publish = None;
        let mut addr = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("reading the host's stdout");
            if let Some(rest) = line.strip_prefix("Publish endpoint http://") {
                publish = Some(rest.trim_end_matches("/publish/").parse().unwrap());
            }
            if let Some(rest) = line.strip_prefix("Serving http://") {
                addr = Some(rest.parse().unwrap());
                break;
            }
        }
        let (Some(addr), Some(publish)) = (addr, publish) else {
            let status = child.wait().expect("waiting for the host");
            panic!("the host exited ({status}) before serving");
        };
        Self {
            child,
            addr,
            publish,
        }
    }

    /// Kills the host the hard way (SIGKILL), as a crash would.
    pub fn kill(mut self) {
        self.child.kill().expect("killing the host");
        self.child.wait().expect("reaping the host");
    }

    /// Runs the host expecting it to refuse to start; returns its stderr.
    pub fn refuse(manifest: &Path, state_dir: &Path, env: &[(&str, &str)]) -> String {
        let output = up(manifest, state_dir)
            .envs(env.iter().copied())
            .output()
            .expect("running rcs-edge");
        assert!(
            !output.status.success(),
            "the host started but should not have"
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response as the tests look at it.
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one HTTP/1.1 request on a new connection.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connecting");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP handshake");
    tokio::spawn(connection);
    let mut builder = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(Full::new(body.into())).unwrap();
    let response = sender
        .send_request(request)
        .await
        .expect("sending the request");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("reading the body").to_bytes();
    Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

/// A free 127.0.0.1 port (bound and released; good enough for a server started right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `rcs-edge up` on `manifest` with its state in `state_dir`, on free loopback ports.
fn up(manifest: &Path, state_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rcs-edge"));
    command
        .arg("up")
        .arg("--from")
        .arg(manifest)
        .arg("--state-dir")
        .arg(state_dir)
        .args(["--listen", "127.0.0.1:0", "--publish-listen", "127.0.0.1:0"]);
    command
}

//! Key-value through the echo component on a real `redis-server`, chosen by a Spin runtime-config file.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Host, free_port, request, write_app};

/// A `redis-server` on a free 127.0.0.1 port, killed when dropped.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start() -> Self {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        let redis = Self { child, port };
        // Wait until it answers PING; it is a fresh process, so this is quick.
        let client = redis::Client::open(redis.url()).unwrap();
        for _ in 0..200 {
            if let Ok(mut connection) = client.get_connection()
                && redis::cmd("PING").query::<String>(&mut connection).is_ok()
            {
                return redis;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server did not start on port {port}");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn key_value_on_redis_answers_as_spin() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_app(dir.path());
    let config = dir.path().join("runtime-config.toml");
    std::fs::write(
        &config,
        format!(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n",
            redis.url()
        ),
    )
    .unwrap();
    let state = dir.path().join("state");
    let config_arg = config.display().to_string();
    let host = Host::start(
        &manifest,
        &state,
        &["--runtime-config-file", &config_arg],
        &[],
    );
    let addr = host.addr;

    assert_eq!(
        request(addr, "GET", "/echo/kv/k", &[], "").await.status,
        404
    );
    assert_eq!(
        request(addr, "PUT", "/echo/kv/k", &[], "in redis")
            .await
            .status,
        204
    );
    assert_eq!(
        request(addr, "PUT", "/echo/kv/j", &[], "too").await.status,
        204
    );
    assert_eq!(
        request(addr, "GET", "/echo/kv/k", &[], "").await.text(),
        "in redis"
    );
    assert_eq!(
        request(addr, "GET", "/echo/kv/", &[], "").await.text(),
        "j\nk"
    );

    // The value is in Redis itself, under the bare key as Spin's Redis backend stores it.
    let mut connection = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let stored: Option<String> = redis::cmd("GET").arg("k").query(&mut connection).unwrap();
    assert_eq!(stored.as_deref(), Some("in redis"));

    assert_eq!(
        request(addr, "DELETE", "/echo/kv/k", &[], "").await.status,
        204
    );
    assert_eq!(
        request(addr, "GET", "/echo/kv/k", &[], "").await.status,
        404
    );
    let stored: Option<String> = redis::cmd("GET").arg("k").query(&mut connection).unwrap();
    assert_eq!(stored, None);
    // No SQLite file was needed.
    assert!(!state.join("sqlite_key_value.db").exists());
}

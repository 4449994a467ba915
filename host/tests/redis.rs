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

/// The echo app in `dir`, on a host whose default store is `redis` (a Spin runtime-config file),
/// with its state folder `dir/state`.
fn host_on(redis: &Redis, dir: &std::path::Path) -> Host {
    let manifest = write_app(dir);
    let config = dir.join("runtime-config.toml");
    std::fs::write(
        &config,
        format!(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n",
            redis.url()
        ),
    )
    .unwrap();
    let config_arg = config.display().to_string();
    Host::start(
        &manifest,
        &dir.join("state"),
        &["--runtime-config-file", &config_arg],
        &[],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn key_value_on_redis_answers_as_spin() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let host = host_on(&redis, dir.path());
    let state = dir.path().join("state");
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

#[tokio::test(flavor = "multi_thread")]
async fn wasi_key_value_on_redis_answers_as_spin() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let host = host_on(&redis, dir.path());
    let addr = host.addr;
    let post = |path: &'static str, headers: &'static [(&'static str, &'static str)], body| async move {
        let answer = request(addr, "POST", path, headers, body).await;
        (answer.status, answer.text())
    };
    assert_eq!(
        post("/echo/wasi-kv/set-many", &[], "a=1\nb=2\na=3").await,
        (200, "done".to_owned())
    );
    let mut connection = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let stored: Vec<Option<String>> = redis::cmd("MGET")
        .arg("a")
        .arg("b")
        .query(&mut connection)
        .unwrap();
    assert_eq!(stored, [Some("3".to_owned()), Some("2".to_owned())]);
    // Spin 4.0.2's Redis store sends KEYS for get-many, which Redis refuses: so does this host.
    let (status, text) = post("/echo/wasi-kv/get-many", &[], "a\nb").await;
    assert_eq!(status, 500);
    assert!(
        text.contains("wrong number of arguments for 'keys'"),
        "{text}"
    );
    assert_eq!(
        post("/echo/wasi-kv/delete-many", &[], "b\nmissing").await,
        (200, "done".to_owned())
    );
    let exists: bool = redis::cmd("EXISTS")
        .arg("b")
        .query(&mut connection)
        .unwrap();
    assert!(!exists);
    assert_eq!(
        post("/echo/wasi-kv/increment/n", &[], "5").await,
        (200, "5".to_owned())
    );
    assert_eq!(
        post("/echo/wasi-kv/increment/n", &[], "-2").await,
        (200, "3".to_owned())
    );
    let counter: String = redis::cmd("GET").arg("n").query(&mut connection).unwrap();
    assert_eq!(
        counter, "3",
        "INCRBY's decimal text, as on Spin's Redis store"
    );
    // As on Spin 4.0.2's Redis store, every swap is answered `cas-failed`, and only the value now
    // stored tells whether it was written.
    assert_eq!(
        post("/echo/wasi-kv/swap/a", &[("x-expect", "3")], "4").await,
        (409, "cas failed; now 4".to_owned())
    );
    assert_eq!(
        post("/echo/wasi-kv/swap-after-write/a", &[], "5").await,
        (409, "cas failed; now written meanwhile".to_owned())
    );
    assert_eq!(
        post("/echo/wasi-kv/swap/fresh", &[], "new").await,
        (409, "cas failed; now new".to_owned())
    );
    let fresh: String = redis::cmd("GET")
        .arg("fresh")
        .query(&mut connection)
        .unwrap();
    assert_eq!(fresh, "new");
}

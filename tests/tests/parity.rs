//! The local host answers as real Spin 4.0.2 does for every runtime feature the components use.
//! The same probes, made through the echo component (`spin.toml` plus echo), run on both runtimes:
//! the peer hop the sender AS makes (by service chaining, which Spin 4.0.2 does not give WASIp3
//! handlers, and to the application's own origin, which works), an outbound host the manifest does
//! not allow, a relative URL, variables (declared, undeclared, badly named), key-value (a label the
//! component may not open, a value over the hosted platforms' 1 MB, and one over the 128 MiB a host
//! call may copy), `wasi:keyvalue` (batches, an atomic counter, compare-and-swap, a cursor), a
//! component that fails (Spin's empty 500), and the page's `ETag`. Each probe's outcome is asserted on the local host, and must be the same on real Spin
//! when `SPIN_BIN` or `spin` on `PATH` gives one (otherwise that half says it was skipped).

use anyhow::{Context, Result, ensure};
use rcs_e2e::{Host, HostBinary, HostOptions, Redis, spin_or_skip};

const MIB: usize = 1024 * 1024;

/// What a probe saw: the HTTP status and body the echo component answered.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    status: u16,
    body: String,
}

/// One probe: a name, and what to ask the echo component.
struct Probe {
    name: &'static str,
    method: reqwest::Method,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn probe(name: &'static str, method: reqwest::Method, path: &'static str) -> Probe {
    Probe {
        name,
        method,
        path,
        headers: Vec::new(),
        body: Vec::new(),
    }
}

fn fetch(name: &'static str, url: String) -> Probe {
    let mut probe = probe(name, reqwest::Method::GET, "/echo/fetch");
    probe.headers.push(("x-fetch-url", url));
    probe
}

/// The probes; `origin` is the application's own `http://host:port` (`receiver_as_origin`).
fn probes(origin: &str) -> Vec<Probe> {
    let big = |name, size: usize| {
        let mut probe = probe(name, reqwest::Method::PUT, "");
        probe.body = vec![0x5a; size];
        probe
    };
    let mut over_hosted = big("set a value of 1 MiB + 1 byte", MIB + 1);
    over_hosted.path = "/echo/kv/hosted-limit";
    let mut over_buffer = big("set a value over the 128 MiB host buffer", 128 * MIB + 1);
    over_buffer.path = "/echo/kv/host-buffer";
    let mut other_store = probe(
        "open a store not listed",
        reqwest::Method::GET,
        "/echo/kv/x",
    );
    other_store.headers.push(("x-store", "other".to_owned()));
    let mut probes = vec![
        fetch(
            "peer hop by service chaining",
            "http://receiver-as.spin.internal/receiver/peer".to_owned(),
        ),
        fetch(
            "peer hop to the application's own origin",
            format!("{origin}/receiver/peer"),
        ),
        fetch(
            "an outbound host not allowed",
            "http://127.0.0.2:9/".to_owned(),
        ),
        fetch("a relative URL", "/receiver/peer".to_owned()),
        probe(
            "a declared variable",
            reqwest::Method::GET,
            "/echo/var/probe",
        ),
        probe(
            "a variable not declared",
            reqwest::Method::GET,
            "/echo/var/missing",
        ),
        probe(
            "a badly named variable",
            reqwest::Method::GET,
            "/echo/var/no__such",
        ),
        other_store,
        over_hosted,
        probe(
            "get the 1 MiB + 1 byte value",
            reqwest::Method::HEAD,
            "/echo/kv/hosted-limit",
        ),
        over_buffer,
        probe(
            "get the value over the host buffer",
            reqwest::Method::GET,
            "/echo/kv/host-buffer",
        ),
    ];
    probes.extend(wasi_key_value_probes());
    probes
}

/// The `wasi:keyvalue` probes: batches, an atomic counter, compare-and-swap, a cursor.
fn wasi_key_value_probes() -> Vec<Probe> {
    let wasi = |name, path, body: &str, expect: Option<&str>| {
        let mut probe = probe(name, reqwest::Method::POST, path);
        probe.body = body.as_bytes().to_vec();
        if let Some(expect) = expect {
            probe.headers.push(("x-expect", expect.to_owned()));
        }
        probe
    };
    let mut cursor = probe(
        "wasi list-keys with a cursor",
        reqwest::Method::GET,
        "/echo/wasi-kv/list-keys",
    );
    cursor.headers.push(("x-cursor", "k".to_owned()));
    vec![
        wasi(
            "wasi set-many, a key twice",
            "/echo/wasi-kv/set-many",
            "wa=1\nwb=2\nwc=3\nwa=4",
            None,
        ),
        wasi(
            "wasi get-many, a key missing",
            "/echo/wasi-kv/get-many",
            "wa\nwb\nw-missing",
            None,
        ),
        wasi(
            "wasi delete-many, a key missing",
            "/echo/wasi-kv/delete-many",
            "wb\nw-missing",
            None,
        ),
        wasi(
            "wasi get-many after delete-many",
            "/echo/wasi-kv/get-many",
            "wa\nwb\nwc",
            None,
        ),
        wasi(
            "wasi increment a new counter",
            "/echo/wasi-kv/increment/wn",
            "5",
            None,
        ),
        wasi(
            "wasi increment it again",
            "/echo/wasi-kv/increment/wn",
            "-2",
            None,
        ),
        wasi(
            "wasi swap with the value current read",
            "/echo/wasi-kv/swap/wa",
            "5",
            Some("4"),
        ),
        wasi(
            "wasi swap after a write meanwhile",
            "/echo/wasi-kv/swap-after-write/wa",
            "6",
            None,
        ),
        wasi(
            "wasi swap of an absent key",
            "/echo/wasi-kv/swap/w-fresh",
            "new",
            None,
        ),
        cursor,
    ]
}

/// Runs every probe against the echo component of `host`.
async fn run_probes(host: &Host, probes: Vec<Probe>) -> Result<Vec<(&'static str, Outcome)>> {
    let client = reqwest::Client::new();
    let origin = format!("http://{}", host.http);
    let mut outcomes = Vec::new();
    for probe in probes {
        // HEAD stands for "GET, but only the length": the body of a 1 MiB value is not compared.
        let head = probe.method == reqwest::Method::HEAD;
        let method = if head {
            reqwest::Method::GET
        } else {
            probe.method.clone()
        };
        let mut request = client
            .request(method, format!("{origin}{}", probe.path))
            .body(probe.body);
        for (name, value) in &probe.headers {
            request = request.header(*name, value);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("probe {:?}", probe.name))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        let body = if head {
            format!("{} bytes", bytes.len())
        } else {
            String::from_utf8_lossy(&bytes).trim_end().to_owned()
        };
        outcomes.push((probe.name, Outcome { status, body }));
    }
    Ok(outcomes)
}

/// The probes whose outcomes are not `same` on the two runtimes, described.
fn differences(
    local: &[(&'static str, Outcome)],
    spin: &[(&'static str, Outcome)],
    same: impl Fn(&Outcome, &Outcome) -> bool,
) -> Vec<String> {
    local
        .iter()
        .zip(spin)
        .filter(|((_, local), (_, spin))| !same(local, spin))
        .map(|((name, local), (_, spin))| {
            format!("{name}:\n  local host: {local:?}\n  Spin 4.0.2: {spin:?}")
        })
        .collect()
}

async fn outcomes_on(runtime: HostBinary) -> Result<Vec<(&'static str, Outcome)>> {
    let host = Host::start(HostOptions {
        with_echo: true,
        ..HostOptions::sqlite().on(runtime)
    })?;
    let origin = format!("http://{}", host.http);
    let mut outcomes = run_probes(&host, probes(&origin))
        .await
        .with_context(|| format!("the logs:\n{}", host.logs()))?;
    // The page's validator: the same bytes must carry the same ETag on both runtimes, although
    // `spin up` serves a fresh copy of `www/` (new modification times) on every start.
    let page = reqwest::get(format!("http://{}/app.js", host.http)).await?;
    let etag = page
        .headers()
        .get("etag")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("none")
        .to_owned();
    outcomes.push((
        "the ETag of /app.js",
        Outcome {
            status: page.status().as_u16(),
            body: etag,
        },
    ));
    Ok(outcomes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_host_answers_as_spin_does() -> Result<()> {
    let local = outcomes_on(HostBinary::Local).await?;
    if let Some(spin) = spin_or_skip("the real-Spin half of the_local_host_answers_as_spin_does") {
        let spin = outcomes_on(spin).await?;
        let differences = differences(&local, &spin, |local, spin| local == spin);
        ensure!(
            differences.is_empty(),
            "the local host and Spin differ:\n{}",
            differences.join("\n")
        );
    }
    let find = |name: &str| {
        local
            .iter()
            .find(|(probe, _)| *probe == name)
            .map(|(_, outcome)| outcome)
            .expect("a probe of that name")
    };
    let expect = |name: &str, status: u16, body: &str| -> Result<()> {
        let outcome = find(name);
        ensure!(
            outcome.status == status && outcome.body.contains(body),
            "{name}: {outcome:?}, expected {status} with {body:?}"
        );
        Ok(())
    };
    expect(
        "peer hop by service chaining",
        502,
        "DnsError(DnsErrorPayload { rcode: Some(\"address not available\"), info-code: Some(0) })",
    )?;
    // The receiver AS answers a GET of its peer route (it takes POST only).
    expect("peer hop to the application's own origin", 200, "405")?;
    expect("an outbound host not allowed", 502, "HttpRequestDenied")?;
    expect("a relative URL", 502, "HttpRequestUriInvalid")?;
    expect("a declared variable", 200, "domain localhost")?;
    expect(
        "a variable not declared",
        404,
        "Undefined(\"no variable for \\\"echo\\\".\\\"missing\\\"\")",
    )?;
    expect(
        "a badly named variable",
        404,
        "must not contain multiple consecutive underscores",
    )?;
    expect("open a store not listed", 403, "AccessDenied")?;
    expect("set a value of 1 MiB + 1 byte", 204, "")?;
    expect(
        "get the 1 MiB + 1 byte value",
        200,
        &format!("{} bytes", MIB + 1),
    )?;
    // No component can write a value that large: the copy into the host runs out of wasmtime's
    // hostcall fuel (128 MiB) and the component traps, on both runtimes, and nothing is stored.
    expect("set a value over the 128 MiB host buffer", 500, "")?;
    expect("get the value over the host buffer", 404, "no such key")?;
    expect("the ETag of /app.js", 200, "\"")?;
    // wasi:keyvalue, as the components use it for batches and compare-and-swap.
    expect("wasi set-many, a key twice", 200, "done")?;
    expect("wasi get-many, a key missing", 200, "wa=4\nwb=2")?;
    ensure!(
        !find("wasi get-many, a key missing")
            .body
            .contains("w-missing")
    );
    expect("wasi delete-many, a key missing", 200, "done")?;
    expect("wasi get-many after delete-many", 200, "wa=4\nwc=3")?;
    expect("wasi increment a new counter", 200, "5")?;
    expect("wasi increment it again", 200, "3")?;
    expect("wasi swap with the value current read", 200, "swapped")?;
    expect(
        "wasi swap after a write meanwhile",
        409,
        "cas failed; now written meanwhile",
    )?;
    expect("wasi swap of an absent key", 200, "swapped")?;
    expect(
        "wasi list-keys with a cursor",
        500,
        "list_keys: cursor not supported",
    )?;

    Ok(())
}

/// The `wasi:keyvalue` probes on each runtime with a Redis store.
async fn wasi_outcomes_on_redis(runtime: HostBinary) -> Result<Vec<(&'static str, Outcome)>> {
    let redis = Redis::start()?;
    let host = Host::start(HostOptions {
        with_echo: true,
        ..HostOptions::redis(redis.url()).on(runtime)
    })?;
    run_probes(&host, wasi_key_value_probes())
        .await
        .with_context(|| format!("the logs:\n{}", host.logs()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasi_key_value_on_redis_answers_as_spin_does() -> Result<()> {
    let local = wasi_outcomes_on_redis(HostBinary::Local).await?;
    if let Some(spin) = spin_or_skip("wasi_key_value_on_redis_answers_as_spin_does") {
        let spin = wasi_outcomes_on_redis(spin).await?;
        // A store error's text comes from each runtime's Redis client; its status and Redis's
        // own words must agree.
        let redis_words = |outcome: &Outcome| {
            let body = outcome.body.as_str();
            body.split_once("ResponseError: ")
                .map_or(body, |(_, words)| words)
                .to_owned()
        };
        let same = |local: &Outcome, spin: &Outcome| {
            local.status == spin.status && redis_words(local) == redis_words(spin)
        };
        let differences = differences(&local, &spin, same);
        ensure!(
            differences.is_empty(),
            "the local host and Spin differ on Redis:\n{}",
            differences.join("\n")
        );
    }
    let outcome = |name: &str| {
        local
            .iter()
            .find(|(probe, _)| *probe == name)
            .map(|(_, outcome)| (outcome.status, outcome.body.as_str()))
            .expect("a probe of that name")
    };
    assert_eq!(outcome("wasi set-many, a key twice"), (200, "done"));
    // Spin 4.0.2's Redis store sends KEYS for get-many, which Redis refuses.
    let (status, body) = outcome("wasi get-many, a key missing");
    assert_eq!(status, 500);
    assert!(
        body.contains("wrong number of arguments for 'keys' command"),
        "{body}"
    );
    assert_eq!(outcome("wasi increment it again"), (200, "3"));
    // Every swap is answered cas-failed there; the value now stored says whether it was written.
    assert_eq!(
        outcome("wasi swap with the value current read"),
        (409, "cas failed; now 5")
    );
    assert_eq!(
        outcome("wasi swap after a write meanwhile"),
        (409, "cas failed; now written meanwhile")
    );
    assert_eq!(
        outcome("wasi swap of an absent key"),
        (409, "cas failed; now new")
    );
    Ok(())
}

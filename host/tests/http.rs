//! Plain HTTP through the host to the echo component: routing and Spin's headers, key-value on SQLite
//! (and across a crash), variables, mounted files, and outbound HTTP (never chained, as on Spin 4.0.2).

mod common;

use common::{Host, request, write_app};

fn header_lines(text: &str) -> Vec<&str> {
    text.lines().skip(1).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_and_spin_headers_follow_spin() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(&write_app(dir.path()), &dir.path().join("state"), &[], &[]);
    let addr = host.addr;

    let reply = request(
        addr,
        "GET",
        "/echo/sub/path?x=1",
        &[("spin-path-info", "/forged")],
        "",
    )
    .await;
    assert_eq!(reply.status, 200);
    let text = reply.text();
    assert_eq!(
        text.lines().next(),
        Some(format!("GET http://{addr}/echo/sub/path?x=1").as_str())
    );
    let lines = header_lines(&text);
    for expected in [
        format!("spin-full-url: http://{addr}/echo/sub/path?x=1"),
        "spin-path-info: /sub/path".to_owned(),
        "spin-matched-route: /echo/...".to_owned(),
        "spin-component-route: /echo".to_owned(),
        "spin-raw-component-route: /echo/...".to_owned(),
        "spin-base-path: /".to_owned(),
    ] {
        assert!(
            lines.contains(&expected.as_str()),
            "{expected} missing in {text}"
        );
    }
    let client = lines
        .iter()
        .find_map(|line| line.strip_prefix("spin-client-addr: "))
        .expect("spin-client-addr");
    assert!(client.starts_with("127.0.0.1:"), "{client}");

    let exact = request(addr, "GET", "/exact", &[], "").await.text();
    assert!(exact.contains("spin-matched-route: /exact\n"), "{exact}");
    assert!(exact.contains("spin-path-info: \n"), "{exact}");

    let other = request(addr, "GET", "/other/x", &[], "").await.text();
    assert!(other.contains("spin-component-route: /other\n"), "{other}");

    let missing = request(addr, "GET", "/nowhere", &[], "").await;
    assert_eq!(missing.status, 404);
    // Spin answers a path no route matches with an empty 404.
    assert!(missing.text().is_empty(), "{}", missing.text());
    // `/exact` is exact: nothing below it is routed there.
    assert_eq!(
        request(addr, "GET", "/exact/more", &[], "").await.status,
        404
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_events_work_as_plain_http_for_a_real_gateway() {
    // Behind Pushpin the component receives the events as an ordinary POST; nothing needs the
    // built-in gateway.
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(&write_app(dir.path()), &dir.path().join("state"), &[], &[]);
    let body = "OPEN\r\nTEXT 5\r\nhello\r\n";
    let reply = request(
        host.addr,
        "POST",
        "/echo/ws",
        &[
            ("content-type", "application/websocket-events"),
            ("connection-id", "c1"),
            ("sec-websocket-protocol", "sip"),
        ],
        body,
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["sec-websocket-protocol"], "sip");
    assert_eq!(reply.headers["sec-websocket-extensions"], "grip");
    assert_eq!(reply.text(), "OPEN\r\nTEXT 7\r\nm:hello\r\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn key_value_on_sqlite_answers_as_spin_and_survives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_app(dir.path());
    let state = dir.path().join("state");
    let host = Host::start(&manifest, &state, &[], &[]);
    let addr = host.addr;

    assert_eq!(
        request(addr, "GET", "/echo/kv/a", &[], "").await.status,
        404
    );
    assert_eq!(
        request(addr, "PUT", "/echo/kv/a", &[], "one").await.status,
        204
    );
    assert_eq!(
        request(addr, "PUT", "/echo/kv/b", &[], vec![0u8, 255])
            .await
            .status,
        204
    );
    assert_eq!(
        request(addr, "GET", "/echo/kv/a", &[], "").await.text(),
        "one"
    );
    assert_eq!(
        request(addr, "GET", "/echo/kv/b", &[], "")
            .await
            .body
            .as_ref(),
        [0, 255]
    );
    assert_eq!(
        request(addr, "GET", "/echo/kv/", &[], "").await.text(),
        "a\nb"
    );
    assert_eq!(
        request(addr, "DELETE", "/echo/kv/b", &[], "").await.status,
        204
    );
    assert_eq!(
        request(addr, "GET", "/echo/kv/b", &[], "").await.status,
        404
    );

    for expected in ["1", "2", "3"] {
        let count = request(addr, "POST", "/echo/counter/hits", &[], "").await;
        assert_eq!(count.text(), expected);
    }

    // A label the component does not list, and a component with no stores at all.
    let denied = request(addr, "GET", "/echo/kv/a", &[("x-store", "other")], "").await;
    assert_eq!(denied.status, 403);
    assert!(denied.text().contains("AccessDenied"), "{}", denied.text());
    let denied = request(addr, "GET", "/other/kv/a", &[], "").await;
    assert!(denied.text().contains("AccessDenied"), "{}", denied.text());

    // SIGKILL: nothing is shut down cleanly, and the committed value is still there.
    host.kill();
    let host = Host::start(&manifest, &state, &[], &[]);
    assert_eq!(
        request(host.addr, "GET", "/echo/kv/a", &[], "")
            .await
            .text(),
        "one"
    );
    let count = request(host.addr, "POST", "/echo/counter/hits", &[], "").await;
    assert_eq!(count.text(), "4");
    assert!(state.join("sqlite_key_value.db").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn variables_resolve_from_defaults_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_app(dir.path());
    let host = Host::start(&manifest, &dir.path().join("state"), &[], &[]);
    let reply = request(host.addr, "GET", "/echo/var/message", &[], "").await;
    assert_eq!(reply.text(), "hello, world");
    let undefined = request(host.addr, "GET", "/echo/var/greeting", &[], "").await;
    assert_eq!(undefined.status, 404);
    assert!(
        undefined.text().contains("Undefined"),
        "{}",
        undefined.text()
    );
    drop(host);

    let host = Host::start(
        &manifest,
        &dir.path().join("state"),
        &[],
        &[("SPIN_VARIABLE_GREETING", "bonjour")],
    );
    let reply = request(host.addr, "GET", "/echo/var/message", &[], "").await;
    assert_eq!(reply.text(), "bonjour, world");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_required_variable_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_app(dir.path());
    let text = std::fs::read_to_string(&manifest).unwrap().replace(
        "greeting = { default = \"hello\" }",
        "greeting = { required = true }",
    );
    std::fs::write(&manifest, text).unwrap();
    let stderr = Host::refuse(&manifest, &dir.path().join("state"), &[]);
    assert!(stderr.contains("SPIN_VARIABLE_GREETING"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mounted_folders_are_readable() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(&write_app(dir.path()), &dir.path().join("state"), &[], &[]);
    let reply = request(host.addr, "GET", "/echo/file/assets/hello.txt", &[], "").await;
    assert_eq!(reply.text(), "hello from a mounted folder");
    let missing = request(host.addr, "GET", "/echo/file/assets/nope.txt", &[], "").await;
    assert_eq!(missing.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn outbound_http_is_limited_to_allowed_hosts_and_never_chained() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(&write_app(dir.path()), &dir.path().join("state"), &[], &[]);
    let addr = host.addr;
    let fetch = |url: String| async move {
        let headers = [("x-fetch-url", url.as_str())];
        request(addr, "GET", "/echo/fetch", &headers, "").await
    };

    // `http://127.0.0.1:*` is allowed: the host's own publish endpoint answers (405 to a GET).
    let allowed = fetch(format!("http://{}/publish/", host.publish)).await;
    assert_eq!(allowed.status, 200);
    assert!(allowed.text().starts_with("405\n"), "{}", allowed.text());

    for denied in [
        format!("http://localhost:{}/publish/", host.publish.port()),
        "https://example.com/".to_owned(),
        "http://other.spin.internal/other/x".to_owned(),
    ] {
        let reply = fetch(denied.clone()).await;
        assert_eq!(reply.status, 502, "{denied}");
        assert!(
            reply.text().contains("HttpRequestDenied"),
            "{denied}: {}",
            reply.text()
        );
    }

    // Service chaining, allowed by the manifest: Spin 4.0.2 does not chain requests from WASIp3
    // handlers, so the name goes to DNS and fails there, as here.
    let chained = fetch("http://backend.spin.internal/deep/path?q=1".to_owned()).await;
    assert_eq!(chained.status, 502);
    let text = chained.text();
    assert!(text.contains("DnsError"), "{text}");
}

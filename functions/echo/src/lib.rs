//! `echo`: the smallest Spin component that speaks GRIP WebSocket-over-HTTP, and the local edge host's
//! test fixture.
//!
//! As a WebSocket backend (any `POST` with `Content-Type: application/websocket-events`) it answers
//! `OPEN` with `OPEN` plus the handshake headers (`Sec-WebSocket-Protocol` echoing the first protocol the
//! client asked for, `Sec-WebSocket-Extensions: grip`), sends every `TEXT`/`BINARY` message back with the
//! `m:` prefix, answers `PING` with `PONG` and `CLOSE` with `CLOSE`. Two text commands exist for tests:
//! `subscribe:<channel>` and `unsubscribe:<channel>` answer with the matching `c:` control message
//! followed by the message `subscribed:<channel>` / `unsubscribed:<channel>`, so a client knows the
//! gateway has applied it. Its cost per message is the benchmark's platform floor. It does not check
//! `Grip-Sig`: it holds nothing worth protecting.
//!
//! Plain HTTP paths (matched on the end of the path, so any route prefix works):
//! - `GET|PUT|DELETE …/kv/<key>` and `GET …/kv/` (the keys, one a line): Spin key-value, store `default`
//!   or the one named by the `x-store` header (so a test can see a denied label's error);
//! - `wasi:keyvalue` on store `default`, each answering `200` with what it read, `409` for a lost
//!   compare-and-swap, or `500` with the error: `POST …/wasi-kv/set-many` (body: `key=value` lines),
//!   `POST …/wasi-kv/get-many` and `POST …/wasi-kv/delete-many` (body: keys, one a line; `get-many`
//!   answers `key=value` lines, sorted), `POST …/wasi-kv/increment/<key>` (body: the delta),
//!   `POST …/wasi-kv/swap/<key>` (body: the new value; header `x-expect`: the value the swap must
//!   find, none for an absent key), `POST …/wasi-kv/swap-after-write/<key>` (reads the key for a
//!   swap, then writes it with `spin:key-value` before swapping: the swap must fail), and
//!   `GET …/wasi-kv/list-keys` (header `x-cursor` to pass one), and `POST …/wasi-kv/counter/<key>`
//!   (`…/counter/<key>` below through `wasi:keyvalue`'s `get` and `set`);
//! - `POST …/counter/<key>`: one key-value read and one write (the counter's next value, as text), the
//!   benchmark's smallest stateful request;
//! - `GET …/var/<name>`: a Spin variable;
//! - `GET …/file/<path>`: the first 64 KiB of a file of the component's `files` mounts;
//! - `GET …/fetch` with an `x-fetch-url` header: an outbound `GET`; `200` with the upstream status on the
//!   first line and its body after, or `502` with the error;
//! - anything else: `200` with the method, the URI and every `spin-*` request header, one a line.

// A Spin component exists only as wasm: a native build of the handler export cannot link.
#![cfg(target_arch = "wasm32")]

use std::io::Read as _;

use bytes::Bytes;
use rcs_core::grip::{self, Control, WsEvent};
use spin_sdk::http::body::IncomingBodyExt as _;
use spin_sdk::http::{FullBody, HeaderMap, HeaderValue, IntoResponse, Method, Request, StatusCode};
use spin_sdk::http_service;
use spin_sdk::key_value::Store;

/// How much of a file `…/file/<path>` returns.
const FILE_LIMIT: u64 = 64 * 1024;

type Reply = (StatusCode, HeaderMap, FullBody<Bytes>);

#[http_service]
async fn handle(request: Request) -> impl IntoResponse {
    let path = request.uri().path().to_owned();
    let is_grip = request
        .headers()
        .get("content-type")
        .is_some_and(|value| value.as_bytes().starts_with(grip::CONTENT_TYPE.as_bytes()));
    if request.method() == Method::POST && is_grip {
        return websocket_events(request).await;
    }
    if let Some(operation) = tail(&path, "/wasi-kv/") {
        let operation = operation.to_owned();
        return wasi_key_value(request, &operation).await;
    }
    if let Some(key) = tail(&path, "/counter/") {
        return counter(key).await;
    }
    if let Some(key) = tail(&path, "/kv/") {
        return key_value(request, key.to_owned()).await;
    }
    if let Some(name) = tail(&path, "/var/") {
        return variable(name).await;
    }
    if let Some(file) = tail(&path, "/file/") {
        return read_file(file);
    }
    if path.ends_with("/fetch") {
        return fetch(&request).await;
    }
    describe(&request)
}

/// What follows the last occurrence of `marker` in `path`.
fn tail<'a>(path: &'a str, marker: &str) -> Option<&'a str> {
    path.rfind(marker).map(|at| &path[at + marker.len()..])
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("text/plain"));
    (status, headers, FullBody::new(body.into()))
}

async fn websocket_events(request: Request) -> Reply {
    let protocol = request
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(',').next())
        .map(|value| value.trim().to_owned());
    let body = match request.into_body().bytes().await {
        Ok(body) => body,
        Err(error) => return text(StatusCode::BAD_REQUEST, format!("unreadable body: {error}")),
    };
    let events = match grip::parse_events(&body, &grip::Limits::default()) {
        Ok(events) => events,
        Err(error) => return text(StatusCode::BAD_REQUEST, format!("bad events: {error}")),
    };
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static(grip::CONTENT_TYPE));
    let mut replies = Vec::with_capacity(events.len());
    for event in events {
        match event {
            WsEvent::Open => {
                replies.push(WsEvent::Open);
                headers.insert("sec-websocket-extensions", HeaderValue::from_static("grip"));
                if let Some(value) = protocol
                    .as_deref()
                    .and_then(|p| HeaderValue::from_str(p).ok())
                {
                    headers.insert("sec-websocket-protocol", value);
                }
            }
            WsEvent::Text(content) => replies.extend(text_message(&content)),
            WsEvent::Binary(content) => {
                let mut echoed = grip::MESSAGE_PREFIX.as_bytes().to_vec();
                echoed.extend_from_slice(&content);
                replies.push(WsEvent::Binary(Bytes::from(echoed)));
            }
            WsEvent::Ping(content) => replies.push(WsEvent::Pong(content)),
            WsEvent::Close(code) => replies.push(WsEvent::Close(code)),
            WsEvent::Pong(_) | WsEvent::Disconnect => {}
        }
    }
    let mut out = Vec::new();
    grip::encode_events(&replies, &mut out);
    (StatusCode::OK, headers, FullBody::new(Bytes::from(out)))
}

/// The reply to a text message: a control command for tests, or the message itself.
fn text_message(content: &[u8]) -> Vec<WsEvent> {
    let text = std::str::from_utf8(content).unwrap_or_default();
    let command = if let Some(channel) = text.strip_prefix("subscribe:") {
        let control = Control::Subscribe {
            channel: channel.to_owned(),
        };
        Some((control, "subscribed", channel))
    } else {
        text.strip_prefix("unsubscribe:").map(|channel| {
            let control = Control::Unsubscribe {
                channel: channel.to_owned(),
            };
            (control, "unsubscribed", channel)
        })
    };
    match command {
        Some((control, done, channel)) => {
            let ack = grip::message_event(format!("{done}:{channel}").as_bytes());
            vec![control.event(), ack]
        }
        None => {
            let mut echoed = grip::MESSAGE_PREFIX.as_bytes().to_vec();
            echoed.extend_from_slice(content);
            vec![WsEvent::Text(Bytes::from(echoed))]
        }
    }
}

async fn key_value(request: Request, key: String) -> Reply {
    let label = request
        .headers()
        .get("x-store")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("default")
        .to_owned();
    let store = match Store::open(&label).await {
        Ok(store) => store,
        Err(error) => return text(StatusCode::FORBIDDEN, format!("open {label}: {error:?}")),
    };
    let method = request.method().clone();
    let result = if key.is_empty() && method == Method::GET {
        store.get_keys().await.collect().await.map(|mut keys| {
            keys.sort();
            text(StatusCode::OK, keys.join("\n"))
        })
    } else if method == Method::GET {
        store.get(&key).await.map(|value| match value {
            Some(value) => text(StatusCode::OK, value),
            None => text(StatusCode::NOT_FOUND, "no such key"),
        })
    } else if method == Method::PUT {
        let value = match request.into_body().bytes().await {
            Ok(value) => value,
            Err(error) => {
                return text(StatusCode::BAD_REQUEST, format!("unreadable body: {error}"));
            }
        };
        store
            .set(&key, &value)
            .await
            .map(|()| text(StatusCode::NO_CONTENT, Bytes::new()))
    } else if method == Method::DELETE {
        store
            .delete(&key)
            .await
            .map(|()| text(StatusCode::NO_CONTENT, Bytes::new()))
    } else {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET, PUT or DELETE");
    };
    result.unwrap_or_else(|error| text(StatusCode::INTERNAL_SERVER_ERROR, format!("{error:?}")))
}

/// The `…/wasi-kv/<operation>` probes (see the module doc).
async fn wasi_key_value(request: Request, operation: &str) -> Reply {
    use spin_sdk::experimental::wasi::keyvalue::{atomics, batch, store};
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let (expect, cursor) = (header("x-expect"), header("x-cursor"));
    let body = match request.into_body().bytes().await {
        Ok(body) => String::from_utf8_lossy(&body).into_owned(),
        Err(error) => return text(StatusCode::BAD_REQUEST, format!("unreadable body: {error}")),
    };
    let lines = || body.lines().filter(|line| !line.is_empty());
    let failed =
        |error: store::Error| text(StatusCode::INTERNAL_SERVER_ERROR, format!("{error:?}"));
    let bucket = match store::open("default") {
        Ok(bucket) => bucket,
        Err(error) => return failed(error),
    };
    let done = |result: Result<(), store::Error>| match result {
        Ok(()) => text(StatusCode::OK, "done"),
        Err(error) => failed(error),
    };
    let swap_outcome = |result: Result<(), atomics::CasError>| match result {
        Ok(()) => text(StatusCode::OK, "swapped"),
        Err(atomics::CasError::CasFailed(again)) => match again.current() {
            Ok(value) => text(
                StatusCode::CONFLICT,
                format!(
                    "cas failed; now {}",
                    value.map_or("absent".into(), |v| String::from_utf8_lossy(&v)
                        .into_owned())
                ),
            ),
            Err(error) => failed(error),
        },
        Err(atomics::CasError::StoreError(error)) => failed(error),
    };
    if let Some(key) = operation.strip_prefix("counter/") {
        let counted = bucket.get(key).and_then(|current| {
            let count = current
                .and_then(|value| String::from_utf8(value).ok())
                .and_then(|value| value.parse::<u64>().ok())
                .unwrap_or(0)
                + 1;
            bucket
                .set(key, count.to_string().as_bytes())
                .map(|()| count)
        });
        return match counted {
            Ok(count) => text(StatusCode::OK, count.to_string()),
            Err(error) => failed(error),
        };
    }
    if let Some(key) = operation.strip_prefix("increment/") {
        let delta = body.trim().parse().unwrap_or(1);
        return match atomics::increment(&bucket, key, delta) {
            Ok(value) => text(StatusCode::OK, value.to_string()),
            Err(error) => failed(error),
        };
    }
    if let Some(key) = operation.strip_prefix("swap/") {
        let cas = match atomics::Cas::new(&bucket, key) {
            Ok(cas) => cas,
            Err(error) => return failed(error),
        };
        let current = match cas.current() {
            Ok(current) => current,
            Err(error) => return failed(error),
        };
        if current.as_deref() != expect.as_deref().map(str::as_bytes) {
            return text(StatusCode::PRECONDITION_FAILED, "not the expected value");
        }
        return swap_outcome(atomics::swap(cas, body.as_bytes()));
    }
    if let Some(key) = operation.strip_prefix("swap-after-write/") {
        let cas = match atomics::Cas::new(&bucket, key).and_then(|cas| cas.current().map(|_| cas)) {
            Ok(cas) => cas,
            Err(error) => return failed(error),
        };
        let written = async {
            Store::open_default()
                .await?
                .set(key, b"written meanwhile")
                .await
        };
        if let Err(error) = written.await {
            return text(StatusCode::INTERNAL_SERVER_ERROR, format!("{error:?}"));
        }
        return swap_outcome(atomics::swap(cas, body.as_bytes()));
    }
    match operation {
        "set-many" => {
            let pairs: Vec<(String, Vec<u8>)> = lines()
                .map(|line| {
                    let (key, value) = line.split_once('=').unwrap_or((line, ""));
                    (key.to_owned(), value.as_bytes().to_vec())
                })
                .collect();
            done(batch::set_many(&bucket, &pairs))
        }
        "delete-many" => done(batch::delete_many(
            &bucket,
            &lines().map(str::to_owned).collect::<Vec<_>>(),
        )),
        "get-many" => {
            let keys: Vec<String> = lines().map(str::to_owned).collect();
            match batch::get_many(&bucket, &keys) {
                Ok(found) => {
                    let mut found: Vec<String> = found
                        .into_iter()
                        .map(|(key, value)| match value {
                            Some(value) => format!("{key}={}", String::from_utf8_lossy(&value)),
                            None => format!("{key} absent"),
                        })
                        .collect();
                    found.sort();
                    text(StatusCode::OK, found.join("\n"))
                }
                Err(error) => failed(error),
            }
        }
        "list-keys" => match bucket.list_keys(cursor.as_deref()) {
            Ok(response) => {
                let mut keys = response.keys;
                keys.sort();
                text(StatusCode::OK, keys.join("\n"))
            }
            Err(error) => failed(error),
        },
        _ => text(StatusCode::NOT_FOUND, "no such wasi-kv operation"),
    }
}

async fn counter(key: &str) -> Reply {
    let result = async {
        let store = Store::open_default().await?;
        let current = store.get(key).await?;
        let count = current
            .and_then(|value| String::from_utf8(value).ok())
            .and_then(|value| value.parse::<u64>().ok())
            .unwrap_or(0)
            + 1;
        store.set(key, count.to_string()).await?;
        Ok::<_, spin_sdk::key_value::Error>(count)
    }
    .await;
    match result {
        Ok(count) => text(StatusCode::OK, count.to_string()),
        Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{error:?}")),
    }
}

async fn variable(name: &str) -> Reply {
    match spin_sdk::variables::get(name).await {
        Ok(value) => text(StatusCode::OK, value),
        Err(error) => text(StatusCode::NOT_FOUND, format!("{error:?}")),
    }
}

fn read_file(path: &str) -> Reply {
    let mut contents = Vec::new();
    let read = std::fs::File::open(format!("/{path}"))
        .and_then(|file| file.take(FILE_LIMIT).read_to_end(&mut contents));
    match read {
        Ok(_) => text(StatusCode::OK, contents),
        Err(error) => text(StatusCode::NOT_FOUND, format!("{path}: {error}")),
    }
}

async fn fetch(request: &Request) -> Reply {
    let Some(url) = request
        .headers()
        .get("x-fetch-url")
        .and_then(|value| value.to_str().ok())
    else {
        return text(StatusCode::BAD_REQUEST, "x-fetch-url header missing");
    };
    let response = match spin_sdk::http::get(url).await {
        Ok(response) => response,
        Err(error) => return text(StatusCode::BAD_GATEWAY, format!("{error:?}")),
    };
    let status = response.status();
    match response.into_body().bytes().await {
        Ok(body) => {
            let mut out = format!("{}\n", status.as_u16()).into_bytes();
            out.extend_from_slice(&body);
            text(StatusCode::OK, out)
        }
        Err(error) => text(StatusCode::BAD_GATEWAY, format!("{error:?}")),
    }
}

fn describe(request: &Request) -> Reply {
    let mut out = format!("{} {}\n", request.method(), request.uri());
    let mut spin: Vec<_> = request
        .headers()
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("spin-"))
        .map(|(name, value)| format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes())))
        .collect();
    spin.sort();
    out.extend(spin);
    text(StatusCode::OK, out)
}

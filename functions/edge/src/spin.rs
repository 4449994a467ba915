//! The Spin side: [`Platform`] over Spin's key-value store, outbound HTTP, the WASI clock and WASI
//! randomness; configuration read from the component's variables; and the entry points the
//! components call with Spin's request, each answering with a WASI response.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::StreamExt;
use futures::future::join_all;
use http::header;
use rcs_core::ids::Entropy;
use rcs_core::time::Timestamp;
use spin_sdk::experimental::wasi::keyvalue as wasi_kv;
use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::http::{FullBody, IncomingMessage, IntoResponse, Request};
use spin_sdk::key_value::Store;
use spin_sdk::wasip3::http::types::{ErrorCode, Response as WasiResponse};
use spin_sdk::wasip3::http_compat::IncomingBody;
use wasi_kv::store::Bucket;

use crate::config::{EdgeConfig, VARIABLES};
use crate::handler::{self, MESSAGE_SIP};
use crate::platform::{Platform, PlatformError};
use crate::{HttpRefusal, Protocol, Route, Side};
use rcs_core::service::UPLOAD_ROUTE;

/// The time now, from the WASI wall clock.
fn wall_clock() -> Timestamp {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_unix_millis(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// What a component's handler returns.
pub type Answer = Result<WasiResponse, ErrorCode>;

/// The largest request body a GRIP or peer request may have: the gateway batches events up to about
/// 1 MB, and a single event may be up to 1 MiB.
pub const MAX_BODY: usize = 4 << 20;

/// The largest answer read from the other application server (one SIP response).
const MAX_PEER_ANSWER: usize = 1 << 20;

/// [`Platform`] on Spin: the `default` key-value store and outbound HTTP. Reads and key listing
/// go through `spin:key-value` (asynchronous, so a request's reads run together); batches and
/// compare-and-swap through `wasi:keyvalue` on the same store, opened when first needed.
pub struct SpinRuntime {
    store: Store,
    bucket: std::cell::OnceCell<Bucket>,
}

impl SpinRuntime {
    /// Opens the `default` key-value store.
    pub async fn open() -> Result<Self, PlatformError> {
        let store = Store::open_default().await.map_err(store_error)?;
        Ok(Self {
            store,
            bucket: std::cell::OnceCell::new(),
        })
    }

    /// The `default` store as a `wasi:keyvalue` bucket.
    fn bucket(&self) -> Result<&Bucket, PlatformError> {
        if let Some(bucket) = self.bucket.get() {
            return Ok(bucket);
        }
        let bucket = wasi_kv::store::open(DEFAULT_STORE).map_err(bucket_error)?;
        Ok(self.bucket.get_or_init(|| bucket))
    }
}

/// The store every component uses.
const DEFAULT_STORE: &str = "default";

fn store_error(error: spin_sdk::key_value::Error) -> PlatformError {
    PlatformError::Store(error.to_string())
}

fn bucket_error(error: wasi_kv::store::Error) -> PlatformError {
    PlatformError::Store(match error {
        wasi_kv::store::Error::NoSuchStore => "no such store".to_owned(),
        wasi_kv::store::Error::AccessDenied => "access denied".to_owned(),
        wasi_kv::store::Error::Other(reason) => reason,
    })
}

impl Platform for SpinRuntime {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, PlatformError> {
        let value = self.store.get(key).await.map_err(store_error)?;
        Ok(value.map(Bytes::from))
    }

    async fn set(&self, key: &str, value: Bytes) -> Result<(), PlatformError> {
        self.store.set(key, &value).await.map_err(store_error)
    }

    async fn delete(&self, key: &str) -> Result<(), PlatformError> {
        self.store.delete(key).await.map_err(store_error)
    }

    async fn set_many(&self, pairs: Vec<(String, Bytes)>) -> Result<(), PlatformError> {
        let pairs: Vec<(String, Vec<u8>)> = pairs
            .into_iter()
            .map(|(key, value)| (key, Vec::from(value)))
            .collect();
        wasi_kv::batch::set_many(self.bucket()?, &pairs).map_err(bucket_error)
    }

    async fn delete_many(&self, keys: Vec<String>) -> Result<(), PlatformError> {
        wasi_kv::batch::delete_many(self.bucket()?, &keys).map_err(bucket_error)
    }

    type Swap = wasi_kv::atomics::Cas;

    async fn begin_swap(&self, key: &str) -> Result<(Self::Swap, Option<Bytes>), PlatformError> {
        let cas = wasi_kv::atomics::Cas::new(self.bucket()?, key).map_err(bucket_error)?;
        let current = cas.current().map_err(bucket_error)?;
        Ok((cas, current.map(Bytes::from)))
    }

    /// A swap reported lost whose key now holds exactly the value it wrote counts as done: Spin
    /// 4.0.2's Redis store reports every swap as lost, written or not (see `host/src/kv.rs`).
    /// Elsewhere that reading only mistakes another request's identical write for this one,
    /// which leaves the record as this request meant it.
    async fn swap(&self, swap: Self::Swap, value: Bytes) -> Result<bool, PlatformError> {
        match wasi_kv::atomics::swap(swap, &value) {
            Ok(()) => Ok(true),
            Err(wasi_kv::atomics::CasError::CasFailed(now)) => {
                let current = now.current().map_err(bucket_error)?;
                Ok(current.as_deref() == Some(&value[..]))
            }
            Err(wasi_kv::atomics::CasError::StoreError(error)) => Err(bucket_error(error)),
        }
    }

    async fn keys(&self, keep: &dyn Fn(&str) -> bool) -> Result<Vec<String>, PlatformError> {
        let mut keys = self.store.get_keys().await;
        let mut kept = Vec::new();
        while let Some(key) = keys.next().await {
            if keep(&key) {
                kept.push(key);
            }
        }
        keys.result().await.map_err(store_error)?;
        Ok(kept)
    }

    async fn publish(&self, url: &str, body: String) -> Result<(), PlatformError> {
        post(url, "application/json", Bytes::from(body), 64 * 1024)
            .await
            .map(drop)
    }

    async fn peer_request(&self, url: &str, message: Bytes) -> Result<Bytes, PlatformError> {
        post(url, MESSAGE_SIP, message, MAX_PEER_ANSWER).await
    }

    fn now(&self) -> Timestamp {
        wall_clock()
    }

    fn entropy(&self) -> Result<Entropy, PlatformError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| PlatformError::Random(e.to_string()))?;
        Ok(Entropy(bytes))
    }

    fn log(&self, line: &str) {
        eprintln!("{line}");
    }
}

/// POSTs `body` and returns the answer's body (at most `limit` bytes) if the status is 2xx.
async fn post(
    url: &str,
    content_type: &str,
    body: Bytes,
    limit: usize,
) -> Result<Bytes, PlatformError> {
    let failed = |reason: String| PlatformError::Outbound {
        url: url.to_owned(),
        reason,
    };
    // The length is stated: Pushpin's publish endpoint refuses a chunked body (411).
    let request = http::Request::post(url)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, body.len())
        .body(FullBody::new(body))
        .map_err(|e| failed(e.to_string()))?;
    let response = spin_sdk::http::send(request)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let status = response.status();
    let answer = read_capped(response.into_body(), limit)
        .await
        .map_err(failed)?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&answer[..answer.len().min(200)]).into_owned();
        return Err(failed(format!("status {status}: {}", text.trim())));
    }
    Ok(answer)
}

/// Reads a body into memory, refusing one over `limit` bytes.
async fn read_capped<T: IncomingMessage>(
    body: IncomingBody<T>,
    limit: usize,
) -> Result<Bytes, String> {
    let mut stream = body.stream();
    let mut collected = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("reading the body: {e}"))?;
        if collected.len() + chunk.len() > limit {
            return Err(format!("the body exceeds {limit} bytes"));
        }
        collected.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(collected))
}

/// Reads the component's variables (all at once) and parses them.
pub async fn load_config() -> Result<EdgeConfig, String> {
    let values = join_all(VARIABLES.iter().map(|name| spin_sdk::variables::get(*name))).await;
    let mut found = std::collections::BTreeMap::new();
    for (name, value) in VARIABLES.iter().zip(values) {
        match value {
            Ok(value) => {
                found.insert(*name, value);
            }
            Err(spin_sdk::variables::Error::Undefined(_)) => {}
            Err(error) => return Err(format!("reading variable {name}: {error}")),
        }
    }
    EdgeConfig::from_variables(|name| found.get(name).cloned()).map_err(|e| e.to_string())
}

/// What every AS entry point needs: the configuration, the store, the request with its body read.
async fn prepare(
    request: Request,
) -> Result<(SpinRuntime, EdgeConfig, http::Request<Bytes>), Answer> {
    let config = load_config()
        .await
        .map_err(|reason| refused(HttpRefusal::Configuration(reason)))?;
    let rt = SpinRuntime::open()
        .await
        .map_err(|error| refused(HttpRefusal::Platform(error)))?;
    let (parts, body) = request.into_parts();
    let body = read_capped(body, MAX_BODY)
        .await
        .map_err(|reason| refused(HttpRefusal::BodyTooLarge(reason)))?;
    Ok((rt, config, http::Request::from_parts(parts, body)))
}

fn answer(response: http::Response<Bytes>) -> Answer {
    response.map(FullBody::new).into_response()
}

/// `POST /<side>/sip|msrp`: a GRIP WebSocket-over-HTTP request.
pub async fn grip(side: Side, protocol: Protocol, request: Request) -> Answer {
    match prepare(request).await {
        Ok((rt, config, request)) => {
            answer(handler::handle_grip(&rt, &config, side, protocol, request).await)
        }
        Err(refused) => refused,
    }
}

/// `POST /receiver/peer`: SIP from the sender AS.
pub async fn peer(side: Side, request: Request) -> Answer {
    match prepare(request).await {
        Ok((rt, config, request)) => {
            answer(handler::handle_peer(&rt, &config, side, request).await)
        }
        Err(refused) => refused,
    }
}

/// `POST /<side>/tick`: due timers and the expiry sweep.
pub async fn tick(side: Side, request: Request) -> Answer {
    match prepare(request).await {
        Ok((rt, config, request)) => {
            answer(handler::handle_tick(&rt, &config, side, request).await)
        }
        Err(refused) => refused,
    }
}

/// `/sender/accounts`: sign-up, password changes, deletion.
pub async fn accounts(request: Request) -> Answer {
    match prepare(request).await {
        Ok((rt, config, request)) => {
            answer(crate::accounts::handle_accounts(&rt, &config, request).await)
        }
        Err(refused) => refused,
    }
}

/// A request no route takes.
pub fn refused(refusal: HttpRefusal) -> Answer {
    answer(refusal.into_response())
}

/// The FT-HTTP routes, served by `rcs-http-files` with the request body streamed: `/files/...`
/// downloads (capability URLs, no sign-in) and `/sender/upload`, which first signs the request in
/// with HTTP Digest (RFC 7616), as RCC.07 content servers do.
pub async fn http_files(route: Route, request: Request) -> Answer {
    let config = match load_config().await {
        Ok(config) => config,
        Err(reason) => return refused(HttpRefusal::Configuration(reason)),
    };
    let now = wall_clock();
    if route == Route::Files {
        return rcs_http_files::download(request, &config.server, now)
            .await
            .into_response();
    }
    let rt = match SpinRuntime::open().await {
        Ok(rt) => rt,
        Err(error) => return refused(HttpRefusal::Platform(error)),
    };
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let target = crate::accounts::request_target(request.uri());
    let signed_in = crate::accounts::sign_in(
        &rt,
        &config.server,
        authorization,
        request.method().as_str(),
        target,
        UPLOAD_ROUTE,
    )
    .await;
    match signed_in {
        Ok(owner) => rcs_http_files::upload(request, &owner, &config.server, now)
            .await
            .into_response(),
        Err(refusal) => refused(refusal),
    }
}

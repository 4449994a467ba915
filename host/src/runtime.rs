//! Running Spin components on wasmtime: the engine and linker, one pre-instantiated component per
//! manifest entry, and a fresh instance per request.
//!
//! The WASIp3 HTTP interface a component exports is a release candidate, and its exact version must
//! match on both sides: wasmtime, wasmtime-wasi and wasmtime-wasi-http 45.x implement
//! `wasi:http@0.3.0-rc-2026-03-15`, which is what `spin-sdk` 6.0.0 components export and Spin 4.0.2
//! runs. wasmtime 46 and later implement `wasi:http@0.3.0` final (spin-sdk 7), so these crates and the
//! SDK version of the components move together, never one without the other.
//!
//! A request runs in its own `Store` on a spawned task: the handler is called inside
//! `run_concurrent`, and that event loop stays alive until the response body has been read or dropped,
//! because a guest writes its body from tasks that only make progress while the loop runs. Bodies
//! stream both ways.
//!
//! Outbound HTTP from a component is checked against its `allowed_outbound_hosts`, then goes to the
//! network, as Spin 4.0.2 does for these components. Spin 4.0.2 serves WASIp3 handlers from pooled
//! instances that have no service-chaining interceptor and no self-request origin, so a request to
//! `http://<component-id>.spin.internal/…` falls through to a DNS lookup that fails there; this host
//! does the same (its log says why), so that nothing passes here that fails on Spin. One
//! component reaches another at the application's own listening address instead.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use tokio::sync::oneshot;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::error::Context as _;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{DirPerms, FilePerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::WasiHttpCtx;
use wasmtime_wasi_http::p3::bindings::ServicePre;
use wasmtime_wasi_http::p3::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::p3::{self, RequestOptions, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::compile_cache;
use crate::kv::Stores;
use crate::manifest::{ComponentConfig, Manifest};
use crate::outbound::default_port;
use crate::routes::{RouteMatch, Router};
use crate::spin_api;

/// A body as the host passes it around: streaming, errors as WASI HTTP error codes.
pub type HostBody = UnsyncBoxBody<Bytes, ErrorCode>;

/// A body that counts the bytes passing through it and logs the total when it is dropped, so the
/// traffic a component sends out (the sender AS's requests to the receiver AS) can be measured from
/// the host's log: `outbound POST http://127.0.0.1:3000/receiver/peer request 1234B`.
struct Counted<B> {
    inner: B,
    label: String,
    bytes: u64,
}

impl<B> Counted<B> {
    fn new(inner: B, label: String) -> Self {
        Self {
            inner,
            label,
            bytes: 0,
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Counted<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.bytes += data.len() as u64;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for Counted<B> {
    fn drop(&mut self) {
        if LOG_REQUESTS.load(std::sync::atomic::Ordering::Relaxed) {
            eprintln!("{} {}B", self.label, self.bytes);
        }
    }
}

/// Whether requests are logged (`--quiet` turns it off); read where no caller passes it down.
pub static LOG_REQUESTS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// The host name suffix of Spin's service chaining, which Spin 4.0.2 does not give WASIp3 handlers.
const CHAINING_SUFFIX: &str = ".spin.internal";

/// The `spin-*` request headers a component receives.
const SPIN_HEADERS: [&str; 7] = [
    "spin-full-url",
    "spin-path-info",
    "spin-matched-route",
    "spin-component-route",
    "spin-raw-component-route",
    "spin-base-path",
    "spin-client-addr",
];

/// One component, compiled and linked once.
pub struct ComponentRuntime {
    id: String,
    pre: ServicePre<State>,
    /// The manifest's settings of this component.
    pub config: ComponentConfig,
}

/// The whole application: every component, the routes and the key-value stores.
pub struct Application {
    components: HashMap<String, Arc<ComponentRuntime>>,
    router: Router,
    stores: Stores,
    extra_env: Vec<(String, String)>,
}

/// The data of one request's `Store`.
pub struct State {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: Outbound,
    component: Arc<ComponentRuntime>,
    stores: Stores,
}

impl ComponentRuntime {
    /// The component's id in the manifest.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl State {
    /// The component this store runs.
    pub fn component(&self) -> &ComponentRuntime {
        &self.component
    }

    /// The application's key-value stores.
    pub fn stores(&self) -> &Stores {
        &self.stores
    }

    /// The store's resource table.
    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl Application {
    /// Compiles (or loads from `compile_cache`) and links every component of `manifest`.
    /// `extra_env` is given to every component as environment variables (after the manifest's own).
    pub fn new(
        manifest: Manifest,
        stores: Stores,
        extra_env: Vec<(String, String)>,
        compile_cache: Option<&Path>,
    ) -> anyhow::Result<Arc<Self>> {
        for (id, component) in &manifest.components {
            for label in &component.key_value_stores {
                if stores.get(label).is_none() {
                    anyhow::bail!(
                        "component {id:?} uses key-value store {label:?}, which is not configured \
                         (only \"default\" exists without a runtime config)"
                    );
                }
            }
        }
        let engine = engine()?;
        let mut linker = Linker::<State>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).context("linking WASI 0.2")?;
        wasmtime_wasi::p3::add_to_linker(&mut linker).context("linking WASI 0.3")?;
        p3::add_to_linker(&mut linker).context("linking wasi:http 0.3")?;
        spin_api::add_to_linker(&mut linker).context("linking the Spin interfaces")?;
        let router = Router::new(manifest.routes)?;
        let mut components = HashMap::with_capacity(manifest.components.len());
        for (id, config) in manifest.components {
            let component = compile_cache::load(&engine, &config.source, compile_cache)
                .with_context(|| {
                    format!(
                        "compiling component {id:?} from {}",
                        config.source.display()
                    )
                })?;
            let instance = linker
                .instantiate_pre(&component)
                .with_context(|| format!("linking component {id:?}"))?;
            let pre = ServicePre::new(instance)
                .with_context(|| format!("component {id:?} does not export wasi:http/handler@0.3.0-rc-2026-03-15 (build it with spin-sdk 6)"))?;
            components.insert(id.clone(), Arc::new(ComponentRuntime { id, pre, config }));
        }
        Ok(Arc::new(Self {
            components,
            router,
            stores,
            extra_env,
        }))
    }

    /// The component serving `path`, if any.
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        self.router.route(path)
    }

    /// Serves a request by the routes: `404` when no route matches, `500` when the component fails,
    /// both with an empty body as Spin answers them (the reason goes to the host's log).
    /// The request URI must be absolute (`http://host/path`).
    pub async fn dispatch(
        self: &Arc<Self>,
        request: Request<HostBody>,
        client: Option<SocketAddr>,
    ) -> Response<HostBody> {
        let path = request.uri().path().to_owned();
        match self.router.route(&path) {
            Some(route) => self.serve(route, request, client).await,
            None => empty_response(StatusCode::NOT_FOUND),
        }
    }

    /// Serves a request with a route already chosen.
    pub async fn serve(
        self: &Arc<Self>,
        route: RouteMatch,
        request: Request<HostBody>,
        client: Option<SocketAddr>,
    ) -> Response<HostBody> {
        let id = route.component.clone();
        match self.handle(route, request, client).await {
            Ok(response) => response,
            Err(error) => {
                eprintln!("component {id:?} failed: {error:#}");
                empty_response(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }

    async fn handle(
        self: &Arc<Self>,
        route: RouteMatch,
        mut request: Request<HostBody>,
        client: Option<SocketAddr>,
    ) -> anyhow::Result<Response<HostBody>> {
        let component = self
            .components
            .get(&route.component)
            .with_context(|| format!("no component {:?}", route.component))?;
        set_spin_headers(&mut request, &route, client);
        let state = self.state(component)?;
        let mut store = Store::new(component.pre.engine(), state);
        let pre = component.pre.clone();
        let (response_tx, response_rx) = oneshot::channel();
        tokio::spawn(async move {
            let outcome = run(&mut store, pre, request, response_tx).await;
            if let Err(error) = outcome {
                eprintln!("component {:?}: {error:#}", store.data().component.id);
            }
        });
        response_rx
            .await
            .context("the component ended without a response")?
    }

    fn state(self: &Arc<Self>, component: &Arc<ComponentRuntime>) -> anyhow::Result<State> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.inherit_stdout().inherit_stderr();
        for (name, value) in component.config.environment.iter().chain(&self.extra_env) {
            wasi.env(name, value);
        }
        for (host, guest) in &component.config.mounts {
            wasi.preopened_dir(host, guest, DirPerms::READ, FilePerms::READ)
                .with_context(|| format!("mounting {}", host.display()))?;
        }
        Ok(State {
            table: ResourceTable::new(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            hooks: Outbound {
                component: Arc::clone(component),
            },
            component: Arc::clone(component),
            stores: self.stores.clone(),
        })
    }
}

/// Instantiates the component, calls its handler and keeps the event loop running until the response
/// body is gone.
async fn run(
    store: &mut Store<State>,
    pre: ServicePre<State>,
    request: Request<HostBody>,
    response_tx: oneshot::Sender<anyhow::Result<Response<HostBody>>>,
) -> anyhow::Result<()> {
    let service = match pre.instantiate_async(&mut *store).await {
        Ok(service) => service,
        Err(error) => {
            let _ = response_tx.send(Err(anyhow::Error::from(error).context("instantiating")));
            return Ok(());
        }
    };
    let (request, _request_io) = p3::Request::from_http(request);
    store
        .run_concurrent(async move |accessor| {
            let response = match service.handle(accessor, request).await {
                Ok(Ok(response)) => response,
                Ok(Err(code)) => {
                    let _ = response_tx.send(Err(anyhow::anyhow!("the handler returned {code:?}")));
                    return Ok::<(), wasmtime::Error>(());
                }
                Err(trap) => {
                    let _ = response_tx
                        .send(Err(anyhow::Error::from(trap).context("the handler trapped")));
                    return Ok::<(), wasmtime::Error>(());
                }
            };
            let response = accessor.with(|store| response.into_http(store, async { Ok(()) }))?;
            let (done_tx, done_rx) = oneshot::channel();
            let response = response.map(|body| {
                NotifyOnDrop {
                    body,
                    _done: done_tx,
                }
                .boxed_unsync()
            });
            if response_tx.send(Ok(response)).is_ok() {
                // Resolves when the body is dropped: read to the end, or abandoned by the client.
                let _ = done_rx.await;
            }
            Ok::<(), wasmtime::Error>(())
        })
        .await??;
    Ok(())
}

/// A body that tells, by dropping a sender, when it is dropped.
struct NotifyOnDrop {
    body: HostBody,
    _done: oneshot::Sender<()>,
}

impl Body for NotifyOnDrop {
    type Data = Bytes;
    type Error = ErrorCode;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ErrorCode>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Bytes of each pooled linear memory kept resident between instances.
const LINEAR_MEMORY_KEEP_RESIDENT: usize = 4 << 20;

fn engine() -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model_async(true);
    // Pre-allocated instance slots make a fresh instance per request cheap; fall back to on-demand
    // allocation where the address space for the pool cannot be reserved.
    let mut pooled = config.clone();
    let mut pool = PoolingAllocationConfig::default();
    // Spin 4.0.2's pool (`crates/core/src/lib.rs`, `SPIN_MAX_INSTANCE_COUNT` = 1000): as many
    // component instances, memories and stacks, twice as many tables and four times as many core
    // instances (each of these components instantiates three core modules). Fewer, and a burst of
    // requests that Spin serves would fail here with "maximum concurrent limit".
    const MAX_INSTANCES: u32 = 1_000;
    pool.total_component_instances(MAX_INSTANCES)
        .total_memories(MAX_INSTANCES)
        .total_tables(2 * MAX_INSTANCES)
        .total_stacks(MAX_INSTANCES)
        .total_core_instances(4 * MAX_INSTANCES);
    // A request's instance touches a few MiB of linear memory. Zeroing that much in place when
    // the slot is freed costs less than handing the pages back and faulting them in again on
    // the next request (a delivery runs one instance per acknowledgement batch).
    pool.linear_memory_keep_resident(LINEAR_MEMORY_KEEP_RESIDENT);
    // Reuse the slots that are warm before touching fresh ones, so the resident memory follows the
    // number of requests running at once, not the number of slots ever used.
    pool.max_unused_warm_slots(0);
    pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    match Engine::new(&pooled) {
        Ok(engine) => Ok(engine),
        Err(error) => {
            eprintln!("pooling allocator unavailable ({error}); allocating instances on demand");
            Ok(Engine::new(&config)?)
        }
    }
}

/// Writes the `spin-*` headers, replacing any the client sent.
fn set_spin_headers(
    request: &mut Request<HostBody>,
    route: &RouteMatch,
    client: Option<SocketAddr>,
) {
    let full_url = request.uri().to_string();
    let headers = request.headers_mut();
    for name in SPIN_HEADERS {
        headers.remove(name);
    }
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    set("spin-full-url", &full_url);
    set("spin-path-info", &route.path_info);
    set("spin-matched-route", &route.raw_route);
    set("spin-component-route", &route.component_route);
    set("spin-raw-component-route", &route.raw_route);
    set("spin-base-path", "/");
    if let Some(client) = client {
        set("spin-client-addr", &client.to_string());
    }
}

/// A response with no body, as Spin's HTTP trigger answers a missing route or a failed component.
fn empty_response(status: StatusCode) -> Response<HostBody> {
    let body = http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}

/// A short plain-text response.
pub fn text_response(status: StatusCode, text: impl Into<Bytes>) -> Response<HostBody> {
    let body = http_body_util::Full::new(text.into())
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Outbound HTTP for one component: the allow list, then the network.
struct Outbound {
    component: Arc<ComponentRuntime>,
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    Response<HostBody>,
                    Box<dyn Future<Output = Result<(), ErrorCode>> + Send>,
                ),
                wasmtime_wasi::TrappableError<ErrorCode>,
            >,
        > + Send,
>;

impl WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        request: Request<HostBody>,
        options: Option<RequestOptions>,
        _response_result: Box<dyn Future<Output = Result<(), ErrorCode>> + Send>,
    ) -> SendFuture {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let host = uri.host().unwrap_or_default().to_ascii_lowercase();
        let port = uri
            .port_u16()
            .or_else(|| default_port(&scheme))
            .unwrap_or(0);
        if !self
            .component
            .config
            .allowed_hosts
            .allows(&scheme, &host, port)
        {
            let denied = format!("{scheme}://{host}:{port}");
            eprintln!(
                "component {:?}: outbound request to {denied} denied (not in allowed_outbound_hosts)",
                self.component.id
            );
            return Box::new(async { Err(ErrorCode::HttpRequestDenied.into()) });
        }
        if host.ends_with(CHAINING_SUFFIX) {
            eprintln!(
                "component {:?}: outbound request to {scheme}://{host}: Spin 4.0.2 does not chain \
                 requests from wasi:http@0.3 handlers, so it goes to DNS; reach the component at \
                 the application's own address instead",
                self.component.id
            );
        }
        let label = format!(
            "outbound {} {scheme}://{host}:{port}{}",
            request.method(),
            request.uri().path()
        );
        let request =
            request.map(|body| Counted::new(body, format!("{label} request")).boxed_unsync());
        Box::new(async move {
            let (response, io) = p3::default_send_request(request, options).await?;
            let status = response.status().as_u16();
            let response = response
                .map(|body| Counted::new(body, format!("{label} {status} answer")).boxed_unsync());
            Ok((response, Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

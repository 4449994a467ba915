//! The HTTP listeners: the application listener (routes to components, WebSocket upgrades to the
//! gateway) and the gateway's publish listener. HTTP/1.1 with keep-alive and streaming bodies; every
//! accepted socket gets `TCP_NODELAY`, because a response's body usually follows its headers in a
//! second write, and Nagle's algorithm would hold that write for a delayed ACK (~40 ms).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{Request, Response, StatusCode, Uri};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use wasmtime_wasi_http::p3::bindings::http::types::ErrorCode;

use crate::gateway::{self, Gateway};
use crate::runtime::{Application, HostBody, text_response};

/// What one listener serves.
#[derive(Clone)]
pub enum Service {
    /// The application: components by route, WebSocket upgrades through the gateway.
    App {
        /// The components.
        runtime: Arc<Application>,
        /// The GRIP gateway.
        gateway: Arc<Gateway>,
    },
    /// The gateway's publish endpoint.
    Publish(Arc<Gateway>),
}

/// Accepts connections on `listener` forever; `log` prints one line per request to stderr.
pub async fn serve(listener: TcpListener, service: Service, log: bool) {
    let local = listener.local_addr().ok();
    loop {
        let (socket, client) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: wait a little instead of spinning.
                eprintln!("accept failed: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(error) = socket.set_nodelay(true) {
            eprintln!("cannot set TCP_NODELAY: {error}");
        }
        let service = service.clone();
        tokio::spawn(async move {
            let handler = service_fn(move |request| {
                let service = service.clone();
                async move { Ok::<_, Infallible>(handle(service, request, client, local, log).await) }
            });
            let connection = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(socket), handler)
                .with_upgrades();
            if let Err(error) = connection.await
                && log
            {
                eprintln!("connection from {client}: {error}");
            }
        });
    }
}

async fn handle(
    service: Service,
    request: Request<Incoming>,
    client: SocketAddr,
    local: Option<SocketAddr>,
    log: bool,
) -> Response<HostBody> {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = match service {
        Service::Publish(gateway) => gateway.handle_publish(request).await,
        Service::App { runtime, gateway } => match absolute_uri(&request, local) {
            Err(reason) => text_response(StatusCode::BAD_REQUEST, reason),
            Ok(uri) if gateway::is_upgrade(&request) => gateway.upgrade(request, uri, client).await,
            Ok(uri) => {
                let (mut parts, body) = request.into_parts();
                parts.uri = uri;
                let body = body
                    .map_err(|error| ErrorCode::InternalError(Some(error.to_string())))
                    .boxed_unsync();
                runtime
                    .dispatch(Request::from_parts(parts, body), Some(client))
                    .await
            }
        },
    };
    if log {
        eprintln!(
            "{method} {path} {} {:.1}ms",
            response.status().as_u16(),
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
    response
}

/// The request's URI made absolute from its `Host` header (hyper gives only the path), as a component
/// expects it.
fn absolute_uri(request: &Request<Incoming>, local: Option<SocketAddr>) -> Result<Uri, String> {
    let host = match request.headers().get(http::header::HOST) {
        Some(host) => host
            .to_str()
            .map_err(|_| "bad Host header\n".to_owned())?
            .to_owned(),
        None => match (request.uri().authority(), local) {
            (Some(authority), _) => authority.to_string(),
            (None, Some(local)) => local.to_string(),
            (None, None) => return Err("no Host header\n".to_owned()),
        },
    };
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str());
    Uri::builder()
        .scheme("http")
        .authority(host)
        .path_and_query(path)
        .build()
        .map_err(|error| format!("bad request target: {error}\n"))
}

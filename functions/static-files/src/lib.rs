//! Serves the `www/` folder (mounted at `/` in the component's WASI filesystem by `spin.toml`):
//! `GET` and `HEAD`, `index.html` for `/` and for directories, content types by extension, `ETag`
//! with `If-None-Match` answered 304, and bodies streamed from the file in 64 KiB reads, never held
//! whole. Paths with `..`, backslashes or NUL are refused; anything missing is 404 with a reason.
//!
//! The `ETag` is a digest of the file's bytes, not of its size and modification time: `spin up`
//! copies `files` into a fresh temporary folder on every start (new modification times), while the
//! local host mounts `www/` in place, and a page must revalidate the same way on both. Only a change
//! of content changes the tag, so a restart or a redeploy of the same page keeps browsers' caches.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body::{Frame, SizeHint};

/// Bytes read from a file per body frame.
const READ_SIZE: usize = 64 * 1024;

/// The content type of a file name, by its extension.
pub fn content_type(path: &Path) -> &'static str {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("wasm") => "application/wasm",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("ico") => "image/x-icon",
        Some("webp") => "image/webp",
        Some("txt") => "text/plain; charset=utf-8",
        Some("map") => "application/json",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// The file path a URL path names under `root`, or why it is refused. Percent-escapes are decoded;
/// a segment that is `..`, or that holds a slash, backslash or NUL once decoded, is refused, so
/// nothing outside `root` can be named.
pub fn resolve(root: &Path, url_path: &str) -> Result<PathBuf, &'static str> {
    let path = url_path.split(['?', '#']).next().unwrap_or("");
    let Some(relative) = path.strip_prefix('/') else {
        return Err("the path must start with /");
    };
    let mut resolved = root.to_path_buf();
    for segment in relative.split('/') {
        let segment = percent_decode(segment).ok_or("the path has a bad percent-escape")?;
        match segment.as_str() {
            "" | "." => {}
            ".." => return Err("the path must not contain .."),
            s if s.contains(['/', '\\', '\0']) => {
                return Err("a path segment must not contain a slash, backslash or NUL");
            }
            s => resolved.push(s),
        }
    }
    Ok(resolved)
}

fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Whether an `If-None-Match` value matches `etag` (weak comparison, RFC 9110 section 13.1.2).
pub fn none_match(if_none_match: &str, etag: &str) -> bool {
    let bare = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    if_none_match.trim() == "*"
        || if_none_match
            .split(',')
            .any(|candidate| bare(candidate) == bare(etag))
}

/// The body of an answer: a file read as it is sent, or a short text.
pub enum Body {
    /// The rest of a file.
    File {
        /// The open file, positioned at the next byte to send.
        file: File,
        /// Bytes still to send.
        remaining: u64,
    },
    /// A short in-memory body (reasons, redirects), or nothing.
    Text(Option<Bytes>),
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        // The WASI filesystem reads synchronously; each frame is one bounded read.
        Poll::Ready(match self.get_mut() {
            Body::Text(text) => text.take().map(|bytes| Ok(Frame::data(bytes))),
            Body::File { remaining: 0, .. } => None,
            Body::File { file, remaining } => {
                let want = usize::try_from(*remaining)
                    .unwrap_or(READ_SIZE)
                    .min(READ_SIZE);
                let mut buffer = vec![0u8; want];
                match file.read(&mut buffer) {
                    Ok(0) => {
                        *remaining = 0;
                        Some(Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the file shrank while being sent",
                        )))
                    }
                    Ok(read) => {
                        buffer.truncate(read);
                        *remaining -= read as u64;
                        Some(Ok(Frame::data(Bytes::from(buffer))))
                    }
                    Err(error) => Some(Err(error)),
                }
            }
        })
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Text(None) | Body::File { remaining: 0, .. })
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Text(text) => SizeHint::with_exact(text.as_ref().map_or(0, |t| t.len() as u64)),
            Body::File { remaining, .. } => SizeHint::with_exact(*remaining),
        }
    }
}

fn text(status: StatusCode, reason: &str) -> Response<Body> {
    let mut response = Response::new(Body::Text(Some(Bytes::from(format!("{reason}\n")))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The strong `ETag` of a file: the first 128 bits of the SHA-256 of its bytes, read in
/// [`READ_SIZE`] pieces.
fn content_tag(path: &Path) -> std::io::Result<String> {
    use sha2::Digest as _;
    let mut file = File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; READ_SIZE];
    loop {
        match file.read(&mut buffer)? {
            0 => break,
            read => hasher.update(&buffer[..read]),
        }
    }
    let digest = hasher.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("\"{hex}\""))
}

/// Answers a request for `url_path` from the files under `root`.
pub fn serve(method: &Method, url_path: &str, headers: &HeaderMap, root: &Path) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("static files take GET and HEAD, not {method}"),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let mut path = match resolve(root, url_path) {
        Ok(path) => path,
        Err(reason) => return text(StatusCode::BAD_REQUEST, reason),
    };
    let not_found = || text(StatusCode::NOT_FOUND, &format!("no such file: {url_path}"));
    let Ok(mut metadata) = std::fs::metadata(&path) else {
        return not_found();
    };
    if metadata.is_dir() {
        let bare = url_path.split(['?', '#']).next().unwrap_or("");
        if !bare.ends_with('/') {
            // Relative links in the index resolve against the directory only with its slash.
            let mut response = text(StatusCode::MOVED_PERMANENTLY, "moved to the directory");
            if let Ok(location) = HeaderValue::from_str(&format!("{bare}/")) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            return response;
        }
        path.push("index.html");
        metadata = match std::fs::metadata(&path) {
            Ok(metadata) if metadata.is_file() => metadata,
            _ => return not_found(),
        };
    }
    if !metadata.is_file() {
        return not_found();
    }
    let etag = match content_tag(&path) {
        Ok(etag) => etag,
        Err(error) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot read {url_path}: {error}"),
            );
        }
    };
    let kind = content_type(&path);
    let mut builder = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::CONTENT_TYPE, kind);
    if kind.starts_with("text/html") {
        builder = builder.header(header::CACHE_CONTROL, "no-cache");
    }
    let matched = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| none_match(v, &etag));
    if matched {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::Text(None))
            .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "bad header"));
    }
    let builder = builder
        .status(StatusCode::OK)
        .header(header::CONTENT_LENGTH, metadata.len());
    let body = if method == Method::HEAD {
        Body::Text(None)
    } else {
        match File::open(&path) {
            Ok(file) => Body::File {
                file,
                remaining: metadata.len(),
            },
            Err(error) => {
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("cannot open {url_path}: {error}"),
                );
            }
        }
    };
    builder
        .body(body)
        .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "bad header"))
}

/// The component: `www/` is mounted at `/` of the WASI filesystem.
#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_service]
async fn handle(request: spin_sdk::http::Request) -> Response<Body> {
    serve(
        request.method(),
        request.uri().path(),
        request.headers(),
        Path::new("/"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;

    /// A fresh folder with an index, a subfolder and a file larger than one read.
    fn site(name: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("static-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("app/empty")).unwrap();
        std::fs::write(root.join("index.html"), "<!doctype html><p>hi</p>").unwrap();
        std::fs::write(root.join("app/index.html"), "<p>app</p>").unwrap();
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(root.join("app/client_bg.wasm"), &big).unwrap();
        std::fs::write(root.join("a b.css"), "p{}").unwrap();
        root
    }

    fn get(root: &Path, path: &str) -> Response<Body> {
        serve(&Method::GET, path, &HeaderMap::new(), root)
    }

    fn read_all(response: Response<Body>) -> Vec<u8> {
        let mut body = response.into_body();
        let mut out = Vec::new();
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut frames = 0;
        while let Poll::Ready(Some(frame)) = Pin::new(&mut body).poll_frame(&mut cx) {
            let data = frame.unwrap().into_data().unwrap();
            assert!(data.len() <= READ_SIZE);
            out.extend_from_slice(&data);
            frames += 1;
            assert!(frames < 100);
        }
        out
    }

    #[test]
    fn content_types_follow_the_extension() {
        for (name, kind) in [
            ("x.wasm", "application/wasm"),
            ("x.JS", "text/javascript; charset=utf-8"),
            ("x.css", "text/css; charset=utf-8"),
            ("x.html", "text/html; charset=utf-8"),
            ("x.svg", "image/svg+xml"),
            ("x.png", "image/png"),
            ("x.json", "application/json"),
            ("x", "application/octet-stream"),
        ] {
            assert_eq!(content_type(Path::new(name)), kind, "{name}");
        }
    }

    #[test]
    fn paths_cannot_leave_the_root() {
        let root = Path::new("/srv");
        assert_eq!(
            resolve(root, "/a/b.js?v=1").unwrap(),
            Path::new("/srv/a/b.js")
        );
        assert_eq!(
            resolve(root, "/a%20b.css").unwrap(),
            Path::new("/srv/a b.css")
        );
        assert_eq!(resolve(root, "/./a//b").unwrap(), Path::new("/srv/a/b"));
        for bad in [
            "/../etc/passwd",
            "/a/%2e%2e/x",
            "/a%2fb",
            "/a%5cb",
            "/a%00",
            "/%zz",
            "relative",
        ] {
            assert!(resolve(root, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn files_are_served_with_type_length_and_etag_and_streamed() {
        let root = site("serve");
        let response = get(&root, "/app/client_bg.wasm");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/wasm");
        assert_eq!(response.headers()["content-length"], "200000");
        assert!(response.headers().get("cache-control").is_none());
        let body = read_all(response);
        assert_eq!(
            body,
            std::fs::read(root.join("app/client_bg.wasm")).unwrap()
        );
        let response = get(&root, "/a%20b.css");
        assert_eq!(read_all(response), b"p{}");
    }

    #[test]
    fn directories_serve_their_index_and_html_is_not_cached() {
        let root = site("index");
        let response = get(&root, "/");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-cache");
        assert_eq!(read_all(response), b"<!doctype html><p>hi</p>");
        assert_eq!(read_all(get(&root, "/app/")), b"<p>app</p>");
        let response = get(&root, "/app?x=1");
        assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
        assert_eq!(response.headers()["location"], "/app/");
        assert_eq!(get(&root, "/app/empty/").status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn the_etag_follows_the_content_not_the_copy() {
        // `spin up` serves a fresh copy of the folder on every start: same bytes, new times.
        let first = site("etag-copy-a");
        let etag = get(&first, "/app/client_bg.wasm").headers()["etag"].clone();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let copy = site("etag-copy-b");
        assert_ne!(
            std::fs::metadata(first.join("app/client_bg.wasm"))
                .unwrap()
                .modified()
                .unwrap(),
            std::fs::metadata(copy.join("app/client_bg.wasm"))
                .unwrap()
                .modified()
                .unwrap()
        );
        assert_eq!(get(&copy, "/app/client_bg.wasm").headers()["etag"], etag);
        let text = etag.to_str().unwrap();
        assert!(
            text.len() == 34 && text.starts_with('"') && text.ends_with('"'),
            "{text}"
        );
        std::fs::write(copy.join("app/client_bg.wasm"), b"changed").unwrap();
        assert_ne!(get(&copy, "/app/client_bg.wasm").headers()["etag"], etag);
    }

    #[test]
    fn a_matching_if_none_match_is_304_and_head_has_no_body() {
        let root = site("etag");
        let etag = get(&root, "/index.html").headers()["etag"].clone();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&format!("\"x\", W/{}", etag.to_str().unwrap())).unwrap(),
        );
        let response = serve(&Method::GET, "/index.html", &headers, &root);
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(response.headers()["etag"], etag);
        assert!(read_all(response).is_empty());
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert_eq!(
            serve(&Method::GET, "/index.html", &headers, &root).status(),
            StatusCode::OK
        );
        let response = serve(&Method::HEAD, "/index.html", &HeaderMap::new(), &root);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-length"], "24");
        assert!(read_all(response).is_empty());
    }

    #[test]
    fn bad_requests_get_a_reason() {
        let root = site("bad");
        let response = get(&root, "/missing.js");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(read_all(response), b"no such file: /missing.js\n");
        let response = get(&root, "/../secret");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(
            String::from_utf8(read_all(response))
                .unwrap()
                .contains("..")
        );
        let response = serve(&Method::POST, "/", &HeaderMap::new(), &root);
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()["allow"], "GET, HEAD");
    }
}

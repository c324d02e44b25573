//! The built-in HTTP server: the output folder, read-only, over HTTP/1.1 (hyper).
//! Content types for feeds and pages with `charset=utf-8`; a strong `ETag` from the
//! content and `Last-Modified`, answered with `304 Not Modified`; gzip when asked; `HEAD`;
//! no directory listing; nothing outside the output folder whatever the path (`..`,
//! `%2e%2e`, links out, dotfiles such as the publisher's temporary files); bounded
//! header sizes, connection counts and timeouts. Files are cached in memory with their
//! compressed form and checked against one `stat` per request.

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use percent_encoding::percent_decode_str;

use crate::inbox::mtime_ns;

/// Most connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 1024;
/// Longest request head (request line and headers), in bytes.
const MAX_HEADER_BYTES: usize = 16 * 1024;
/// How long a client may take to send a request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest life of one connection, however busy or slow.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);
/// Largest file kept in the memory cache; larger ones are read per request.
const MAX_CACHED_FILE: u64 = 8 * 1024 * 1024;
/// Memory the cache may hold before it is emptied and refilled.
const MAX_CACHE_BYTES: usize = 64 * 1024 * 1024;
/// Smallest body worth compressing.
const MIN_GZIP_BYTES: usize = 256;

/// Where unsubscribe links point (`site.base_url` + `unsubscribe/` + token).
const UNSUBSCRIBE_PREFIX: &str = "/unsubscribe/";

/// The page an unsubscribe link shows: a button, so that link scanners opening the
/// URL unsubscribe nobody.
const UNSUBSCRIBE_FORM: &str = "<!DOCTYPE html>\n<html lang=\"zh\">\n<head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>\u{9000}\u{8BA2} / Unsubscribe</title></head>\n<body>\n\
<form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
<button type=\"submit\">\u{9000}\u{8BA2}\u{6458}\u{8981} / Unsubscribe from the digest</button></form>\n</body>\n</html>\n";

/// The page after an opt-out is recorded.
const UNSUBSCRIBED: &str = "<!DOCTYPE html>\n<html lang=\"zh\">\n<head><meta charset=\"utf-8\">\
<title>\u{5DF2}\u{9000}\u{8BA2} / Unsubscribed</title></head>\n<body>\n\
<p>\u{5DF2}\u{9000}\u{8BA2}\u{FF0C}\u{4E0D}\u{4F1A}\u{518D}\u{6536}\u{5230}\u{6458}\u{8981}\u{3002}</p>\n\
<p>You will get no more digests.</p>\n</body>\n</html>\n";

/// What the server serves: one folder, which a reload can replace.
pub struct Files {
    root: RwLock<Arc<PathBuf>>,
    cache: RwLock<Cache>,
    /// The state database, where unsubscribes are recorded; `None` answers them 404.
    state: RwLock<Option<Arc<PathBuf>>>,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<String, Arc<Cached>>,
    bytes: usize,
}

/// One file as served, with the metadata it was read with.
struct Cached {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i64,
    content_type: &'static str,
    body: Bytes,
    etag: HeaderValue,
    gzip: Option<(Bytes, HeaderValue)>,
    last_modified: HeaderValue,
    /// Whole seconds since the epoch, for `If-Modified-Since`.
    mtime_secs: i64,
}

impl Files {
    /// Serves `root`, which must exist.
    pub fn new(root: &Path) -> anyhow::Result<Files> {
        Ok(Files {
            root: RwLock::new(Arc::new(canonical_root(root)?)),
            cache: RwLock::new(Cache::default()),
            state: RwLock::new(None),
        })
    }

    /// Records unsubscribes in this state database from now on.
    pub fn set_state(&self, state: &Path) {
        *self.state.write().unwrap_or_else(|e| e.into_inner()) =
            Some(Arc::new(state.to_path_buf()));
    }

    /// The answer to a request under `/unsubscribe/`: a page with a button for `GET`,
    /// and for `POST` (RFC 8058 one-click, or the page's button) the opt-out recorded
    /// for the recipient whose token it is. A forged or altered token changes nothing.
    pub async fn unsubscribe<B>(&self, request: &Request<B>) -> Response<Full<Bytes>> {
        let token = request
            .uri()
            .path()
            .strip_prefix(UNSUBSCRIBE_PREFIX)
            .filter(|token| token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_ascii_lowercase);
        let Some(token) = token else {
            return plain(StatusCode::NOT_FOUND, "not found\n");
        };
        match *request.method() {
            Method::GET | Method::HEAD => html(StatusCode::OK, UNSUBSCRIBE_FORM),
            Method::POST => {
                let state = self.state.read().unwrap_or_else(|e| e.into_inner()).clone();
                let Some(state) = state else {
                    return plain(StatusCode::NOT_FOUND, "not found\n");
                };
                let recorded = tokio::task::spawn_blocking(move || {
                    let mut store = crate::store::Store::open(&state)?;
                    store.opt_out(&token, chrono::Utc::now().timestamp())
                })
                .await;
                match recorded {
                    Ok(Ok(Some(email))) => {
                        log::info!("digest: {email} unsubscribed");
                        html(StatusCode::OK, UNSUBSCRIBED)
                    }
                    Ok(Ok(None)) => plain(StatusCode::NOT_FOUND, "unknown unsubscribe link\n"),
                    Ok(Err(error)) => {
                        log::error!("cannot record an unsubscribe: {error:#}");
                        plain(StatusCode::SERVICE_UNAVAILABLE, "try again later\n")
                    }
                    Err(_) => plain(StatusCode::SERVICE_UNAVAILABLE, "try again later\n"),
                }
            }
            _ => {
                let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
                response
            }
        }
    }

    /// Serves another folder from now on.
    pub fn set_root(&self, root: &Path) -> anyhow::Result<()> {
        let root = Arc::new(canonical_root(root)?);
        *self.root.write().unwrap_or_else(|e| e.into_inner()) = root;
        *self.cache.write().unwrap_or_else(|e| e.into_inner()) = Cache::default();
        Ok(())
    }

    fn root(&self) -> Arc<PathBuf> {
        self.root.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The answer to one request.
    pub fn respond<B>(&self, request: &Request<B>) -> Response<Full<Bytes>> {
        let head = request.method() == Method::HEAD;
        if !head && request.method() != Method::GET {
            let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        let relative = match relative_path(request.uri().path()) {
            Ok(relative) => relative,
            Err(status) => return plain(status, "not found\n"),
        };
        let root = self.root();
        let path = root.join(&relative);
        let Ok(metadata) = std::fs::metadata(&path) else {
            return plain(StatusCode::NOT_FOUND, "not found\n");
        };
        if metadata.is_dir() {
            return redirect_to_folder(request.uri().path());
        }
        let cached = match self.cached(&relative, &metadata) {
            Some(cached) => cached,
            None => match self.load(&root, &relative, &path) {
                Some(cached) => cached,
                None => return plain(StatusCode::NOT_FOUND, "not found\n"),
            },
        };
        answer(request, &cached, head)
    }

    /// The cached file, if it is still the file at that path.
    fn cached(&self, relative: &str, metadata: &std::fs::Metadata) -> Option<Arc<Cached>> {
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        let cached = cache.entries.get(relative)?;
        let same = cached.dev == metadata.dev()
            && cached.ino == metadata.ino()
            && cached.len == metadata.len()
            && cached.mtime_ns == mtime_ns(metadata);
        same.then(|| cached.clone())
    }

    /// Reads a file that resolves inside the root and is a regular file, and caches it.
    fn load(&self, root: &Path, relative: &str, path: &Path) -> Option<Arc<Cached>> {
        let resolved = std::fs::canonicalize(path).ok()?;
        if !resolved.starts_with(root) {
            log::warn!(
                "refused to serve {}: it leads outside {}",
                path.display(),
                root.display()
            );
            return None;
        }
        let mut file = std::fs::File::open(&resolved).ok()?;
        let metadata = file.metadata().ok()?;
        if !metadata.is_file() {
            return None;
        }
        let mut body = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
        file.read_to_end(&mut body).ok()?;
        let cached = Arc::new(Cached::new(relative, &metadata, body));
        if metadata.len() <= MAX_CACHED_FILE {
            let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
            let size = cached.size();
            if cache.bytes + size > MAX_CACHE_BYTES {
                *cache = Cache::default();
            }
            cache.bytes += size;
            if let Some(old) = cache.entries.insert(relative.to_string(), cached.clone()) {
                cache.bytes = cache.bytes.saturating_sub(old.size());
            }
        }
        Some(cached)
    }
}

impl Cached {
    /// Bytes of memory its bodies hold.
    fn size(&self) -> usize {
        self.body.len() + self.gzip.as_ref().map_or(0, |(gz, _)| gz.len())
    }

    fn new(relative: &str, metadata: &std::fs::Metadata, body: Vec<u8>) -> Cached {
        let content_type = content_type(relative);
        let hash = blake3::hash(&body).to_hex();
        let tag = &hash.as_str()[..32];
        let etag = HeaderValue::from_str(&format!("\"{tag}\""))
            .unwrap_or(HeaderValue::from_static("\"\""));
        let gzip = (is_text(content_type) && body.len() >= MIN_GZIP_BYTES)
            .then(|| gzip(&body))
            .flatten()
            .filter(|compressed| compressed.len() < body.len())
            .map(|compressed| {
                let etag = HeaderValue::from_str(&format!("\"{tag}-gz\""))
                    .unwrap_or(HeaderValue::from_static("\"\""));
                (Bytes::from(compressed), etag)
            });
        let modified = metadata.modified().unwrap_or(std::time::UNIX_EPOCH);
        let last_modified = HeaderValue::from_str(&httpdate::fmt_http_date(modified))
            .unwrap_or(HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"));
        Cached {
            dev: metadata.dev(),
            ino: metadata.ino(),
            len: metadata.len(),
            mtime_ns: mtime_ns(metadata),
            content_type,
            body: Bytes::from(body),
            etag,
            gzip,
            last_modified,
            mtime_secs: metadata.mtime(),
        }
    }
}

/// 200, 304 or (for `HEAD`) the headers alone, for a cached file.
fn answer<B>(request: &Request<B>, cached: &Cached, head: bool) -> Response<Full<Bytes>> {
    let headers = request.headers();
    let (body, etag, gzipped) = match &cached.gzip {
        Some((gz, etag)) if accepts_gzip(headers) => (gz.clone(), etag, true),
        _ => (cached.body.clone(), &cached.etag, false),
    };
    let not_modified = match headers.get(header::IF_NONE_MATCH) {
        Some(value) => etag_matches(value, etag),
        None => headers
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|value| value.to_str().ok())
            .and_then(|text| httpdate::parse_http_date(text).ok())
            .and_then(|since| since.duration_since(std::time::UNIX_EPOCH).ok())
            .is_some_and(|since| {
                cached.mtime_secs <= i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
            }),
    };
    let mut builder = Response::builder()
        .header(header::ETAG, etag.clone())
        .header(header::LAST_MODIFIED, cached.last_modified.clone())
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if cached.gzip.is_some() {
        builder = builder.header(header::VARY, "Accept-Encoding");
    }
    if not_modified {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Full::new(Bytes::new()))
            .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "error\n"));
    }
    builder = builder
        .header(header::CONTENT_TYPE, cached.content_type)
        .header(header::CONTENT_LENGTH, body.len());
    if gzipped {
        builder = builder.header(header::CONTENT_ENCODING, "gzip");
    }
    let body = if head { Bytes::new() } else { body };
    builder
        .status(StatusCode::OK)
        .body(Full::new(body))
        .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "error\n"))
}

/// True if an `If-None-Match` value names this ETag (weak comparison, as RFC 9110
/// asks for `If-None-Match`) or is `*`.
fn etag_matches(value: &HeaderValue, etag: &HeaderValue) -> bool {
    let Ok(text) = value.to_str() else {
        return false;
    };
    let ours = etag.to_str().unwrap_or_default();
    text.split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == ours)
}

/// True if `Accept-Encoding` allows gzip (`gzip`, `x-gzip` or `*`, without `q=0`).
fn accepts_gzip(headers: &hyper::HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|text| text.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default().to_ascii_lowercase();
            let refused = parts.any(|param| {
                param
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            matches!(name.as_str(), "gzip" | "x-gzip" | "*") && !refused
        })
}

/// The file a URL path names, relative to the root: percent-decoded, each segment
/// checked. `..`, dotfiles, NUL and backslashes are refused, never resolved; a path
/// ending in `/` names its `index.html`.
fn relative_path(raw: &str) -> Result<String, StatusCode> {
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| StatusCode::BAD_REQUEST)?;
    if !decoded.starts_with('/') || decoded.contains(['\0', '\\']) {
        return Err(StatusCode::BAD_REQUEST);
    }
    let mut segments = Vec::new();
    for segment in decoded.split('/').filter(|segment| !segment.is_empty()) {
        if segment.starts_with('.') {
            return Err(StatusCode::NOT_FOUND);
        }
        segments.push(segment);
    }
    if decoded.ends_with('/') {
        segments.push("index.html");
    }
    Ok(segments.join("/"))
}

/// `301` to the same path with a trailing `/`, as static servers do for folders.
fn redirect_to_folder(path: &str) -> Response<Full<Bytes>> {
    let mut response = plain(StatusCode::MOVED_PERMANENTLY, "moved\n");
    if let Ok(location) = HeaderValue::from_str(&format!("{path}/")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// A page of the server's own (the unsubscribe pages), never cached.
fn html(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = fixed(status, "text/html; charset=utf-8", text);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    fixed(status, "text/plain; charset=utf-8", text)
}

fn fixed(
    status: StatusCode,
    content_type: &'static str,
    text: &'static str,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The media type of an output file, from its name.
fn content_type(relative: &str) -> &'static str {
    let name = relative.rsplit('/').next().unwrap_or(relative);
    let extension = name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase());
    match (name, extension.as_deref()) {
        ("rss.xml", _) => "application/rss+xml; charset=utf-8",
        ("atom.xml", _) => "application/atom+xml; charset=utf-8",
        ("feed.json", _) => "application/feed+json; charset=utf-8",
        (_, Some("html" | "htm")) => "text/html; charset=utf-8",
        (_, Some("opml")) => "text/x-opml; charset=utf-8",
        (_, Some("xml")) => "application/xml; charset=utf-8",
        (_, Some("json")) => "application/json; charset=utf-8",
        (_, Some("css")) => "text/css; charset=utf-8",
        (_, Some("js")) => "text/javascript; charset=utf-8",
        (_, Some("txt")) => "text/plain; charset=utf-8",
        (_, Some("svg")) => "image/svg+xml",
        (_, Some("png")) => "image/png",
        (_, Some("jpg" | "jpeg")) => "image/jpeg",
        (_, Some("ico")) => "image/x-icon",
        _ => "application/octet-stream",
    }
}

fn is_text(content_type: &str) -> bool {
    content_type.contains("charset=") || content_type == "image/svg+xml"
}

fn gzip(body: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(body).ok()?;
    encoder.finish().ok()
}

fn canonical_root(root: &Path) -> anyhow::Result<PathBuf> {
    use anyhow::Context;
    std::fs::canonicalize(root)
        .with_context(|| format!("cannot serve {}: it cannot be resolved", root.display()))
}

/// Binds the listening socket (done before the daemon says it is ready).
pub async fn bind(address: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    use anyhow::Context;
    tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))
}

/// Accepts and serves connections until `stop` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    files: Arc<Files>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of descriptors and the like: wait a moment rather than spin.
                log::warn!("cannot accept a connection: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let files = files.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    let files = files.clone();
                    async move {
                        let response = if request.uri().path().starts_with(UNSUBSCRIBE_PREFIX) {
                            files.unsubscribe(&request).await
                        } else {
                            files.respond(&request)
                        };
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEADER_BYTES.max(8192))
                .max_header_size(MAX_HEADER_BYTES)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked_segment_by_segment() {
        assert_eq!(relative_path("/").as_deref(), Ok("index.html"));
        assert_eq!(relative_path("/zh/atom.xml").as_deref(), Ok("zh/atom.xml"));
        assert_eq!(relative_path("/zh/").as_deref(), Ok("zh/index.html"));
        assert_eq!(relative_path("//zh//rss.xml").as_deref(), Ok("zh/rss.xml"));
        assert_eq!(
            relative_path("/zh/%E6%96%B0%E9%97%BB.html").as_deref(),
            Ok("zh/新闻.html")
        );
        for refused in [
            "/../etc/passwd",
            "/zh/%2e%2e/%2e%2e/etc/passwd",
            "/%2E%2E/x",
            "/.tmp-1",
            "/zh/.x",
        ] {
            assert_eq!(
                relative_path(refused),
                Err(StatusCode::NOT_FOUND),
                "{refused}"
            );
        }
        for bad in ["/a%00b", "/a%5c..%5cb", "/%ff", "relative"] {
            assert_eq!(relative_path(bad), Err(StatusCode::BAD_REQUEST), "{bad}");
        }
    }

    #[test]
    fn gzip_is_taken_unless_refused() {
        let headers = |value: &'static str| {
            let mut headers = hyper::HeaderMap::new();
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(value));
            headers
        };
        assert!(accepts_gzip(&headers("gzip, deflate, br")));
        assert!(accepts_gzip(&headers("br;q=1.0, gzip;q=0.8")));
        assert!(accepts_gzip(&headers("*")));
        assert!(!accepts_gzip(&headers("gzip;q=0")));
        assert!(!accepts_gzip(&headers("br, identity")));
        assert!(!accepts_gzip(&hyper::HeaderMap::new()));
    }

    #[test]
    fn etags_match_strongly_weakly_and_in_lists() {
        let ours = HeaderValue::from_static("\"abc\"");
        for value in ["\"abc\"", "W/\"abc\"", "\"x\", \"abc\"", "*"] {
            assert!(
                etag_matches(&HeaderValue::from_static(value), &ours),
                "{value}"
            );
        }
        assert!(!etag_matches(&HeaderValue::from_static("\"abcd\""), &ours));
    }

    #[test]
    fn content_types_name_feeds_and_pages() {
        assert_eq!(
            content_type("zh/rss.xml"),
            "application/rss+xml; charset=utf-8"
        );
        assert_eq!(
            content_type("en/atom.xml"),
            "application/atom+xml; charset=utf-8"
        );
        assert_eq!(
            content_type("zh-Hans/feed.json"),
            "application/feed+json; charset=utf-8"
        );
        assert_eq!(content_type("en/a.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("feeds.opml"), "text/x-opml; charset=utf-8");
        assert_eq!(content_type("blob"), "application/octet-stream");
    }
}

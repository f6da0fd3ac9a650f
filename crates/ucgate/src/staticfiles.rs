//! `static` routes: files from a directory over GET and HEAD. The decisions
//! (which path, which content type, which encoding, 304 or not) are
//! `ucgate_proto::staticfiles`; here are the file system and the response.
//!
//! Every file is opened by its canonical path (symlinks resolved) after
//! checking that the path is inside the root, itself resolved at each
//! request (a deployment may swap a `current` symlink), and read whole
//! (files over `max_file_size` are refused, so a response holds at most
//! that much memory); nothing is cached between requests.

use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use tokio::io::AsyncReadExt;
use ucgate_proto::staticfiles::{self as sf, Encoding, Located};

use crate::client::RequestClient;
use crate::config::StaticFiles;
use crate::refusal::Refusal;
use crate::response::{text, Body};
use crate::{RouteRuntime, Shared};

/// What serves a `static` route.
pub(crate) struct StaticService {
    files: StaticFiles,
    cache_control: HeaderValue,
}

impl StaticService {
    pub(crate) fn new(files: &StaticFiles) -> anyhow::Result<StaticService> {
        Ok(StaticService {
            cache_control: HeaderValue::from_str(&files.cache_control)?,
            files: files.clone(),
        })
    }
}

/// Answers one request on a `static` route, and counts the response.
pub(crate) async fn handle<B>(
    shared: &Shared,
    route: &RouteRuntime,
    svc: &StaticService,
    client: &RequestClient,
    req: &Request<B>,
) -> Response<Body> {
    let resp = respond(shared, route, svc, client, req).await;
    shared
        .metrics
        .response(&route.config.path, resp.status().as_u16());
    resp
}

async fn respond<B>(
    shared: &Shared,
    route: &RouteRuntime,
    svc: &StaticService,
    client: &RequestClient,
    req: &Request<B>,
) -> Response<Body> {
    let head = req.method() == Method::HEAD;
    if !head && req.method() != Method::GET {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "a static route serves GET and HEAD",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let path = req.uri().path();
    let query = req.uri().query().map_or(String::new(), |q| format!("?{q}"));
    let (segments, directory) = match sf::locate(&route.config.path, path) {
        Ok(Located::Path {
            segments,
            directory,
        }) => (segments, directory),
        Ok(Located::Redirect(to)) => return redirect(&format!("{to}{query}")),
        Err(why) => {
            shared.refusals.log(Refusal {
                route: &route.config.path,
                client: client.addr,
                cause: "static_path_refused",
                detail: path,
                what: match why {
                    sf::PathRefusal::HiddenName => "a request for a hidden file (a name starting with `.`) on a `static` route was answered 404",
                    _ => "a request path that could leave a `static` route's directory (`..`, an encoded dot, slash or backslash, NUL, a backslash) was answered 404",
                },
            });
            return not_found();
        }
    };
    // Resolved at each request: a deployment may swap a symlink.
    let root = match tokio::fs::canonicalize(&svc.files.root).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(route = %route.config.path, root = %svc.files.root.display(), error = %e, "a static route's root directory cannot be read; answered 404");
            return not_found();
        }
    };
    let root = &root;
    let mut wanted = root.clone();
    wanted.extend(&segments);
    if directory {
        wanted.push(&svc.files.index);
    }
    let Some((file, meta)) = inside(shared, route, client, root, &wanted).await else {
        return not_found();
    };
    if meta.is_dir() {
        // `/chat/dist` names a directory: its slash form, if it has an index.
        let index = wanted.join(&svc.files.index);
        let has_index = !directory
            && inside(shared, route, client, root, &index)
                .await
                .is_some_and(|(_, m)| m.is_file());
        if !has_index {
            return not_found();
        }
        let last = path.rsplit('/').next().unwrap_or_default();
        // `./` keeps a name with a `:` from reading as a scheme.
        return redirect(&format!("./{last}/{query}"));
    }
    if !meta.is_file() {
        return not_found();
    }
    if meta.len() > svc.files.max_file_size {
        tracing::warn!(
            route = %route.config.path,
            file = %file.display(),
            size = meta.len(),
            max_file_size = svc.files.max_file_size,
            "a file larger than the route's `max_file_size` was requested and answered 404; raise `max_file_size` or remove the file"
        );
        return not_found();
    }
    let name = segments
        .last()
        .filter(|_| !directory)
        .unwrap_or(&svc.files.index);
    let accept = joined(req.headers(), header::ACCEPT_ENCODING);
    let mut chosen = (file, meta, None);
    for enc in sf::encodings(accept.as_deref().unwrap_or_default()) {
        let mut sibling = wanted.clone().into_os_string();
        sibling.push(enc.suffix());
        if let Some((f, m)) = inside(shared, route, client, root, Path::new(&sibling)).await {
            if m.is_file() && m.len() <= svc.files.max_file_size {
                chosen = (f, m, Some(enc));
                break;
            }
        }
    }
    let (file, meta, encoding) = chosen;
    serve(
        svc,
        req,
        &file,
        &meta,
        encoding,
        sf::content_type(name),
        head,
    )
    .await
}

/// The file's response: 304, or 200 with the file (no body for HEAD).
async fn serve<B>(
    svc: &StaticService,
    req: &Request<B>,
    file: &Path,
    meta: &Metadata,
    encoding: Option<Encoding>,
    content_type: &'static str,
    head: bool,
) -> Response<Body> {
    let modified = meta.modified().ok();
    let since_epoch = modified
        .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default();
    let etag = sf::etag(meta.len(), since_epoch.as_nanos(), encoding);
    let if_modified_since = req
        .headers()
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs());
    let inm = joined(req.headers(), header::IF_NONE_MATCH);
    let not_modified = sf::not_modified(
        &etag,
        since_epoch.as_secs(),
        inm.as_deref(),
        if_modified_since,
    );
    let body = if not_modified || head {
        Bytes::new()
    } else {
        match read(file, svc.files.max_file_size).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "a static file could not be read; answered 404");
                return not_found();
            }
        }
    };
    let len = if head { meta.len() } else { body.len() as u64 };
    let mut r = Response::new(Full::new(body));
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Some(m) = modified {
        if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(m)) {
            h.insert(header::LAST_MODIFIED, v);
        }
    }
    h.insert(header::CACHE_CONTROL, svc.cache_control.clone());
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if not_modified {
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        return r;
    }
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Some(e) = encoding {
        h.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(e.token()),
        );
    }
    r
}

/// `path` resolved (symlinks followed) with its metadata, if it exists and
/// the result is inside `root`; a symlink leading out is logged.
async fn inside(
    shared: &Shared,
    route: &RouteRuntime,
    client: &RequestClient,
    root: &Path,
    path: &Path,
) -> Option<(PathBuf, Metadata)> {
    let real = tokio::fs::canonicalize(path).await.ok()?;
    if !real.starts_with(root) {
        shared.refusals.log(Refusal {
            route: &route.config.path,
            client: client.addr,
            cause: "static_symlink_outside",
            detail: &path.to_string_lossy(),
            what: "a symlink under a `static` route's root leads outside it; answered 404",
        });
        return None;
    }
    let meta = tokio::fs::metadata(&real).await.ok()?;
    Some((real, meta))
}

/// The whole file, at most `max` bytes.
async fn read(file: &Path, max: u64) -> std::io::Result<Bytes> {
    let f = tokio::fs::File::open(file).await?;
    let mut buf = Vec::new();
    f.take(max).read_to_end(&mut buf).await?;
    Ok(Bytes::from(buf))
}

/// Every value of header `name`, joined with `,` (None when absent).
fn joined(headers: &HeaderMap, name: header::HeaderName) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    for v in headers.get_all(name) {
        let o = out.get_or_insert_with(Vec::new);
        if !o.is_empty() {
            o.push(b',');
        }
        o.extend_from_slice(v.as_bytes());
    }
    out
}

fn not_found() -> Response<Body> {
    text(StatusCode::NOT_FOUND, "not found")
}

fn redirect(location: &str) -> Response<Body> {
    let mut r = text(StatusCode::MOVED_PERMANENTLY, location);
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

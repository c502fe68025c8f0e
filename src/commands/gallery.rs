//! `thumbctl gallery`: a web page of the stack's images, served by thumbctl on this machine.
//!
//! The page is one embedded HTML file with a little plain JS (no build step). It talks to a
//! small JSON API here, and everything that API does goes through the same code as the
//! commands: uploads through `upload`'s sniffing and `put_file`, listings through `list`'s
//! query and `get`'s links, deletes through `delete`, local processing through `invoke-local`.
//!
//! Why a local server and not a page on S3 with presigned forms: the page can then refuse a
//! non-image with `upload`'s reason before anything reaches the bucket, run the handler here
//! against an emulator, and needs no bucket policy, CORS rule or credentials in the browser.

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use indicatif::ProgressBar;
use lambda_image::handler::Handler;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::upload::{Planned, classify, put_file};
use super::{Deployed, images, invoke_local};
use crate::cli::{GalleryArgs, GlobalArgs, Processing};
use crate::context::Ctx;

/// The page, embedded so the binary is all a user needs.
const PAGE: &str = include_str!("gallery/page.html");
/// Images the page shows: a gallery, not an archive browser (`thumbctl list` pages further).
const SHOWN: usize = 200;
/// What one browser upload may carry. Bodies are streamed to a temporary file, so this bounds
/// disk, not memory; the function refuses far smaller originals anyway (its `max_bytes`).
const MAX_UPLOAD: u64 = 512 * 1024 * 1024;
/// The header every changing request must carry. A page of another site cannot set it on a
/// cross-origin request without a CORS preflight, which this server never grants: that is
/// what stops a web page the user visits from uploading to or deleting from their stack.
const CSRF_HEADER: &str = "x-thumbctl-gallery";
const TOKEN_COOKIE: &str = "thumbctl_gallery";

struct App {
    stack: String,
    ctx: Ctx,
    d: Deployed,
    /// The handler when the gallery makes the thumbnails itself.
    handler: Option<Handler>,
    /// Required on every request when listening beyond loopback.
    token: Option<String>,
    /// Host headers this server answers to (DNS rebinding: a foreign name resolving to
    /// 127.0.0.1 must not reach the API with the user's stack behind it).
    hosts: Vec<String>,
    /// Uploads not yet processed (key → ETag), shown as pending cards until their item exists,
    /// and handler errors by key (a transient failure leaves no item to show).
    pending: Mutex<HashMap<String, String>>,
    errors: Mutex<HashMap<String, String>>,
}

pub async fn run(global: &GlobalArgs, args: GalleryArgs) -> anyhow::Result<()> {
    let (ctx, d) = Deployed::load(global).await?;
    let local = match args.processing {
        Processing::Local => true,
        Processing::Lambda => false,
        Processing::Auto => ctx.endpoint.is_some(),
    };
    let handler = if local {
        let config = invoke_local::function_config(&ctx, &d.function).await?;
        let sdk = crate::context::load_sdk_config(&super::in_region(global, &ctx.region)).await?;
        Some(Handler::new(config, &sdk))
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.bind, args.port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}:{}\n  hint: another program may use the port; pass --port 0 for any free one",
                args.bind, args.port
            )
        })?;
    let addr = listener
        .local_addr()
        .context("reading the listening address")?;
    let token = (!args.bind.is_loopback()).then(|| {
        use rand::Rng;
        let bytes: [u8; 16] = rand::rng().random();
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    });
    let host_for_url = match args.bind {
        IpAddr::V4(v4) if v4.is_unspecified() => "127.0.0.1".to_owned(),
        IpAddr::V6(v6) if v6.is_unspecified() => "[::1]".to_owned(),
        IpAddr::V6(v6) => format!("[{v6}]"),
        ip => ip.to_string(),
    };
    let url = match &token {
        Some(t) => format!("http://{host_for_url}:{}/?token={t}", addr.port()),
        None => format!("http://{host_for_url}:{}/", addr.port()),
    };
    let port = addr.port();
    let hosts = ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .map(|h| format!("{h}:{port}"))
        .collect();
    let app = Arc::new(App {
        stack: global.stack.clone(),
        ctx,
        d,
        handler,
        token,
        hosts,
        pending: Mutex::new(HashMap::new()),
        errors: Mutex::new(HashMap::new()),
    });
    let router = Router::new()
        .route("/", get(page))
        .route("/api/images", get(list))
        .route("/api/upload", post(upload))
        .route("/api/delete", post(delete))
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app.clone());

    // Written, not println!: a closed stdout (a pipe whose reader went away) must not take
    // the server down with it.
    let mut out = std::io::stdout();
    let _ = writeln!(out, "Gallery of stack `{}`: {url}", global.stack);
    if app.token.is_some() {
        let _ = writeln!(
            out,
            "  listening on {addr}: from another machine, put this machine's address in the URL; \
anyone who can reach it and has the token can upload and delete"
        );
    }
    let _ = writeln!(
        out,
        "  thumbnails made by {}; Ctrl-C stops",
        if app.handler.is_some() {
            "this machine (the function's handler, run here)"
        } else {
            "the deployed function"
        }
    );
    let _ = out.flush();
    if args.open
        && let Err(e) = webbrowser::open(&url)
    {
        eprintln!("warning: could not open a browser ({e}); open {url} yourself");
    }
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving the gallery")?;
    Ok(())
}

/// Refuses what did not come from the page this server handed out: a foreign Host (DNS
/// rebinding), a missing token beyond loopback, a changing request without the page's header.
async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if app.token.is_none() && !app.hosts.iter().any(|h| h == host) {
        return (
            StatusCode::FORBIDDEN,
            "unknown Host: open the URL thumbctl printed",
        )
            .into_response();
    }
    let mut set_cookie = None;
    if let Some(token) = &app.token {
        let from_query = req
            .uri()
            .query()
            .and_then(|q| {
                url_pairs(q)
                    .into_iter()
                    .find(|(k, _)| k == "token")
                    .map(|(_, v)| v)
            })
            .is_some_and(|v| v == *token);
        let from_cookie = cookie(req.headers(), TOKEN_COOKIE).is_some_and(|v| v == *token);
        if !from_query && !from_cookie {
            return (
                StatusCode::UNAUTHORIZED,
                "this gallery needs its token: open the URL thumbctl printed",
            )
                .into_response();
        }
        if from_query {
            set_cookie = Some(format!(
                "{TOKEN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
            ));
        }
    }
    if req.method() != axum::http::Method::GET && !req.headers().contains_key(CSRF_HEADER) {
        return (StatusCode::FORBIDDEN, "missing the gallery page's header").into_response();
    }
    let mut resp = next.run(req).await;
    if let Some(c) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    resp
}

fn url_pairs(q: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str(q).unwrap_or_default()
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // The page loads nothing but itself and the thumbnails' URLs (S3 or the CDN).
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' https: http: data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'",
            ),
        ],
        Html(PAGE),
    )
        .into_response()
}

/// An error the page shows as it is: what failed and what to do.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({"error": self.1}))).into_response()
    }
}

fn failed(e: anyhow::Error) -> ApiError {
    ApiError(StatusCode::BAD_GATEWAY, format!("{e:#}"))
}

async fn list(State(app): State<Arc<App>>) -> Result<axum::Json<Value>, ApiError> {
    let items = images::list_items(&app.ctx, &app.d.table, None, SHOWN)
        .await
        .map_err(failed)?;
    let mut shown = Vec::with_capacity(items.len());
    for item in items {
        shown.push(
            images::with_links(&app.ctx, &app.d, item)
                .await
                .map_err(failed)?,
        );
    }
    // An upload is pending until an item for its ETag exists.
    let pending: Vec<Value> = {
        let mut pending = app.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain(|key, etag| {
            !shown.iter().any(|i| {
                i["source_key"].as_str() == Some(key.as_str())
                    && i["etag"].as_str().map(|e| e.trim_matches('"')) == Some(etag.as_str())
            })
        });
        pending.keys().map(|k| json!({"key": k})).collect()
    };
    let errors = app.errors.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(axum::Json(json!({
        "stack": app.stack,
        "processing": if app.handler.is_some() { "local" } else { "lambda" },
        "items": shown,
        "pending": pending,
        "errors": errors,
    })))
}

#[derive(Deserialize)]
struct UploadQuery {
    name: String,
}

/// One file, as the request's raw body (the page sends each file on its own so it can show
/// each one's progress). Streamed to a temporary file, then exactly `upload`'s path.
async fn upload(
    State(app): State<Arc<App>>,
    Query(q): Query<UploadQuery>,
    body: Body,
) -> Result<axum::Json<Value>, ApiError> {
    let name = file_name(&q.name).ok_or_else(|| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("`{}` is not a usable file name", q.name),
        )
    })?;
    let key = format!("{}{name}", app.d.source_prefix.as_deref().unwrap_or(""));
    let tmp = tempfile::NamedTempFile::new()
        .map_err(|e| failed(anyhow::anyhow!("cannot create a temporary file: {e}")))?;
    let mut file = tokio::fs::File::create(tmp.path())
        .await
        .map_err(|e| failed(anyhow::anyhow!("cannot write a temporary file: {e}")))?;
    let mut stream = body.into_data_stream();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError(
                StatusCode::BAD_REQUEST,
                format!("the upload of `{name}` broke off: {e}"),
            )
        })?;
        size += chunk.len() as u64;
        if size > MAX_UPLOAD {
            return Err(ApiError(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "`{name}` is larger than {} MiB; use `thumbctl upload`",
                    MAX_UPLOAD >> 20
                ),
            ));
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| failed(anyhow::anyhow!("cannot write a temporary file: {e}")))?;
    }
    file.flush()
        .await
        .map_err(|e| failed(anyhow::anyhow!("cannot write a temporary file: {e}")))?;
    drop(file);
    let (size, content_type) = classify(tmp.path()).map_err(|reason| {
        ApiError(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("`{name}` was not uploaded: {reason}"),
        )
    })?;
    let planned = Planned {
        path: tmp.path().to_owned(),
        key: key.clone(),
        size,
        content_type,
    };
    let etag = put_file(
        &app.ctx,
        &app.d.source_bucket,
        &planned,
        &ProgressBar::hidden(),
    )
    .await
    .map_err(|e| failed(e.into()))?;
    drop(tmp);
    let etag = etag.trim_matches('"').to_owned();
    app.errors
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&key);
    app.pending
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key.clone(), etag.clone());
    if app.handler.is_some() {
        let app = app.clone();
        let key = key.clone();
        tokio::spawn(async move {
            let Some(handler) = &app.handler else { return };
            if let Err(e) = invoke_local::handle_key(&app.ctx, &app.d, handler, &key).await {
                app.pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&key);
                app.errors
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, format!("{e:#}"));
            }
        });
    }
    Ok(axum::Json(json!({"key": key, "etag": etag, "bytes": size})))
}

/// The last segment of what the browser sent as the file's name: never a path, never empty,
/// no control characters (they would make a key nobody can type).
fn file_name(raw: &str) -> Option<&str> {
    let name = raw.rsplit(['/', '\\']).next()?.trim();
    (!name.is_empty() && name != "." && name != ".." && !name.chars().any(char::is_control))
        .then_some(name)
}

#[derive(Deserialize)]
struct DeleteRequest {
    id: String,
}

async fn delete(
    State(app): State<Arc<App>>,
    axum::Json(req): axum::Json<DeleteRequest>,
) -> Result<axum::Json<Value>, ApiError> {
    let Some(item) = images::get_item(&app.ctx, &app.d.table, &req.id)
        .await
        .map_err(failed)?
    else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no image `{}`: it may have been deleted already", req.id),
        ));
    };
    let source_key = item["source_key"].as_str().unwrap_or(&req.id).to_owned();
    let thumbs = images::thumbnail_keys(&item);
    images::delete_image(&app.ctx, &app.d, &req.id, &source_key, &thumbs, false)
        .await
        .map_err(failed)?;
    Ok(axum::Json(
        json!({"deleted": req.id, "thumbnails": thumbs.len()}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_last_segments_without_controls() {
        assert_eq!(file_name("cat.jpg"), Some("cat.jpg"));
        assert_eq!(file_name("C:\\Users\\me\\cat.jpg"), Some("cat.jpg"));
        assert_eq!(file_name("../../etc/passwd"), Some("passwd"));
        assert_eq!(file_name("café ☕ 1+1.png"), Some("café ☕ 1+1.png"));
        assert_eq!(file_name(""), None);
        assert_eq!(file_name("a/"), None);
        assert_eq!(file_name(".."), None);
        assert_eq!(file_name("a\nb.jpg"), None);
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; thumbctl_gallery=abc; b=2"),
        );
        assert_eq!(cookie(&h, TOKEN_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }
}

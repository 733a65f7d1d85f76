//! The HTTP service (axum): JSON API, OpenAPI description and the staff web
//! page. Handlers are thin: they parse, call the library ([`Engine`],
//! [`crate::answer`], [`Documents`]) on the blocking pool, and map errors
//! to `{"error", "code"}` replies.
//!
//! Requests are served from the [`Collection`]'s current snapshot; adding or removing a
//! report (administrators, `admin.rs`) runs as a job and switches the snapshot when it
//! is done, and the server also picks up changes other processes make (`wenda add`),
//! checking every [`RELOAD_POLL_INTERVAL`]. A request in flight keeps the snapshot it
//! started with.

mod admin;
mod api;
mod conn;
mod error;
pub mod jobs;
mod openapi;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

pub use error::ApiError;

use crate::collection::{Collection, Snapshot};
use crate::corpus::Documents;
use crate::generate::LlmClient;
use crate::retrieve::Engine;

/// Largest accepted request body: a question is at most a few kilobytes
/// (2,000 characters × 3 bytes), so 64 KiB leaves room and stops abuse.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// Requests taking longer than this get 503 (the server is overloaded, not the client
/// slow): a search takes milliseconds, an answer well under a second even on 2 cores.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest accepted request target (path and query string), in bytes; longer gets 414
/// `uri_too_long`. A query at its 2,000-character limit is at most 24,000 bytes
/// percent-encoded (4-byte characters, 12 bytes each), so every request the OpenAPI
/// document allows fits.
pub const MAX_URI_BYTES: usize = 32 * 1024;

/// Most bytes of header fields (names and values) a request may carry; more gets 431
/// `headers_too_large`.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Most header fields a request may carry (hyper's default, made explicit); more gets 431.
pub const MAX_HEADERS: usize = 100;

/// hyper's read buffer limit: a request head (request line and headers) larger than this
/// is refused by hyper itself, before the router sees it; [`conn`] turns that reply into
/// the same JSON as ours. Well above [`MAX_URI_BYTES`] + [`MAX_HEADER_BYTES`], so the
/// router's own checks, with their precise messages, answer all but absurd heads.
const HEAD_BUFFER_BYTES: usize = 128 * 1024;

/// Searches and answers admitted at once, per core: each takes 20–40 ms of CPU on the
/// 2-core machine, so 8 per core bounds a request's wait to a few hundred milliseconds;
/// past it a request gets 503 with `Retry-After` at once instead of queuing without limit
/// (64 concurrent asks used to hold 2 GB and all time out).
pub const WORK_PER_CORE: usize = 8;

/// Shortest time between two log lines about refused requests: a burst of 64 clients
/// past capacity refuses thousands of requests a second, and one WARN line a second with
/// their count says as much as a line each (two ERROR lines each wrote 390,000 lines in
/// a 10-second burst).
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Seconds a client is told to wait (`Retry-After`) when the server is at capacity.
pub const RETRY_AFTER_SECONDS: u64 = 1;

/// Largest report file `POST /api/documents` accepts. The upload is held in memory until
/// its job is done (at most [`jobs::MAX_PENDING_JOBS`] at once); a 50-page report made by
/// the fixture script is 0.4 MB and report PDFs full of charts reach tens of megabytes.
pub const MAX_UPLOAD_BYTES: usize = 64 * 1024 * 1024;

/// How often the server looks whether another process changed the index (a `wenda add`
/// beside it): reading two small manifest files, so the cost is nil, and a change shows
/// within two seconds of its end.
pub const RELOAD_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Everything a handler needs, shared by all requests.
#[derive(Clone)]
pub struct AppState {
    /// The collection served: its current snapshot (engine and documents), and its
    /// changes.
    pub collection: Arc<Collection>,
    /// Language model that writes answers (`WENDA_LLM_URL`); `None`: extractive answers.
    pub llm: Option<LlmClient>,
    /// Permits for CPU-heavy work in flight (see [`WORK_PER_CORE`]).
    work: Arc<tokio::sync::Semaphore>,
    /// The token that adding and removing reports needs (`WENDA_ADMIN_TOKEN`); `None`:
    /// writing is off.
    admin_token: Option<String>,
    /// Jobs of adding and removing reports.
    jobs: Arc<jobs::Jobs>,
}

/// Searches and answers admitted at once by default: [`WORK_PER_CORE`] per core.
pub fn default_capacity() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    WORK_PER_CORE * cores
}

impl AppState {
    /// The state for a read-only server over `engine` and `documents`, admitting
    /// [`WORK_PER_CORE`] searches or answers per core at once.
    pub fn new(engine: Arc<Engine>, documents: Arc<Documents>, llm: Option<LlmClient>) -> Self {
        Self::with_capacity(engine, documents, llm, default_capacity())
    }

    /// The same with an explicit number of requests admitted at once (tests).
    pub fn with_capacity(
        engine: Arc<Engine>,
        documents: Arc<Documents>,
        llm: Option<LlmClient>,
        capacity: usize,
    ) -> Self {
        Self::build(
            Arc::new(Collection::fixed(engine, documents)),
            llm,
            None,
            capacity,
        )
    }

    /// The state for a server over a collection that administrators may change with
    /// `admin_token` (`None`: writing is off), admitting `capacity` searches or answers
    /// at once ([`default_capacity`] unless an operator says otherwise).
    pub fn for_collection(
        collection: Arc<Collection>,
        llm: Option<LlmClient>,
        admin_token: Option<String>,
        capacity: usize,
    ) -> Self {
        Self::build(collection, llm, admin_token, capacity)
    }

    fn build(
        collection: Arc<Collection>,
        llm: Option<LlmClient>,
        admin_token: Option<String>,
        capacity: usize,
    ) -> Self {
        AppState {
            collection,
            llm,
            work: Arc::new(tokio::sync::Semaphore::new(capacity.max(1))),
            admin_token: admin_token.filter(|t| !t.trim().is_empty()),
            jobs: Arc::new(jobs::Jobs::default()),
        }
    }

    /// The snapshot a request is served from.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.collection.current()
    }
}

const INDEX_HTML: &str = include_str!("page/index.html");
const APP_JS: &str = include_str!("page/app.js");
const STYLE_CSS: &str = include_str!("page/style.css");

/// The application's routes with their middleware, with the default [`REQUEST_TIMEOUT`].
pub fn router(state: AppState) -> Router {
    router_with(state, REQUEST_TIMEOUT)
}

/// The API's operations: each handler's route and its OpenAPI description come from the
/// same `#[utoipa::path]` attribute, so the document lists exactly the routes served.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(api::search_get, api::search_post))
        .routes(routes!(api::ask))
        .routes(
            routes!(api::documents, admin::upload).layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES)),
        )
        .routes(routes!(api::document_span, admin::remove))
        .routes(routes!(admin::job))
        .routes(routes!(api::healthz))
}

/// [`router`] with an explicit time limit per request. The OpenAPI document is made once
/// here, with the names of the reports this server has.
fn router_with(state: AppState, request_timeout: Duration) -> Router {
    let (api, spec) = api_routes().split_for_parts();
    api.route(
        "/",
        get(|| async { static_file("text/html; charset=utf-8", INDEX_HTML) }),
    )
    .route(
        "/app.js",
        get(|| async { static_file("text/javascript; charset=utf-8", APP_JS) }),
    )
    .route(
        "/style.css",
        get(|| async { static_file("text/css; charset=utf-8", STYLE_CSS) }),
    )
    .route(
        "/api/openapi.json",
        // Made per request: the report names in it change as reports are added and removed.
        get(move |State(state): State<AppState>| {
            let spec = spec.clone();
            async move {
                let reports: Vec<String> = state
                    .snapshot()
                    .documents
                    .reports()
                    .iter()
                    .map(|r| r.file.clone())
                    .collect();
                let document = axum::body::Bytes::from(openapi::document(spec, &reports));
                static_file("application/json", document)
            }
        }),
    )
    .fallback(|| async {
        ApiError::new(
            StatusCode::NOT_FOUND,
            crate::ErrorCode::NotFound,
            "no such route; see /api/openapi.json",
        )
    })
    .method_not_allowed_fallback(|| async {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            crate::ErrorCode::MethodNotAllowed,
            "this route does not take that method; see /api/openapi.json",
        )
    })
    .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
    .layer(axum::middleware::from_fn_with_state(
        request_timeout,
        time_limit,
    ))
    .layer(axum::middleware::from_fn(head_limits))
    // Server errors are logged where they are made (`ApiError`: errors once each, refusals
    // under load as counted warnings), so the trace layer's own failure line is debug.
    .layer(
        TraceLayer::new_for_http()
            .on_failure(tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG)),
    )
    .with_state(state)
}

/// 503 `timeout` as JSON for a request still running after `limit` (tower-http's
/// timeout layer answers with an empty body).
async fn time_limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            crate::ErrorCode::Timeout,
            format!(
                "the request took longer than {} s and was given up; retry later",
                limit.as_secs_f64()
            ),
        )
        .into_response(),
    }
}

/// 414 and 431 as JSON for request targets and header fields over [`MAX_URI_BYTES`] and
/// [`MAX_HEADER_BYTES`], before any handler runs.
async fn head_limits(request: Request, next: Next) -> Response {
    let uri = request.uri();
    let target = uri.path_and_query().map_or(0, |p| p.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len());
    if target > MAX_URI_BYTES {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            crate::ErrorCode::UriTooLong,
            format!(
                "the request target has {target} bytes; the limit is {MAX_URI_BYTES}: send long text in a POST body (POST /api/search, POST /api/ask)"
            ),
        )
        .into_response();
    }
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers > MAX_HEADER_BYTES {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            crate::ErrorCode::HeadersTooLarge,
            format!("the header fields have {headers} bytes; the limit is {MAX_HEADER_BYTES}"),
        )
        .into_response();
    }
    next.run(request).await
}

fn static_file(content_type: &'static str, body: impl Into<axum::body::Body>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body.into(),
    )
}

/// A client must send a request's whole head within this time, on a new connection and
/// between requests on a kept-alive one; otherwise the connection is closed. Real
/// clients send a head in one packet; half-sent requests (slowloris) and idle
/// connections used to be held forever.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long shutdown waits for requests in flight before it gives up on them: a little
/// more than the longest request may take ([`REQUEST_TIMEOUT`]).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(35);

/// Connection limits of [`serve_with`].
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// See [`HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// See [`SHUTDOWN_GRACE`].
    pub shutdown_grace: Duration,
    /// See [`REQUEST_TIMEOUT`].
    pub request_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_read_timeout: HEADER_READ_TIMEOUT,
            shutdown_grace: SHUTDOWN_GRACE,
            request_timeout: REQUEST_TIMEOUT,
        }
    }
}

/// Serves the application on `listener` until `shutdown` completes, then finishes the
/// requests in flight, with the default [`ServeOptions`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, shutdown, ServeOptions::default()).await
}

/// [`serve`] with explicit limits. Written on hyper's HTTP/1.1 connection builder rather
/// than `axum::serve`, which sets no timer and so no header-read timeout; HTTP/1.1 only
/// (the page and the API need nothing more).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    options: ServeOptions,
) -> std::io::Result<()> {
    let watcher = tokio::spawn(watch_collection(state.collection.clone()));
    // The bilingual glossary is read on its first use (about half a second): read it now,
    // off the async threads, so that no English question waits for it.
    tokio::task::spawn_blocking(|| {
        let glossary = crate::analysis::Glossary::bundled();
        tracing::debug!(
            "bilingual glossary ready: {} English definitions",
            glossary.len()
        );
    });
    let app = router_with(state, options.request_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment, keep serving.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(options.header_read_timeout)
            .max_buf_size(HEAD_BUFFER_BYTES)
            .max_headers(MAX_HEADERS);
        let stream = conn::JsonErrorReplies::new(stream);
        let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, "connection closed: {e}");
            }
        });
    }
    drop(listener);
    watcher.abort();
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(options.shutdown_grace) => {
            tracing::warn!(
                "requests still running after {:?}; stopping anyway",
                options.shutdown_grace
            );
        }
    }
    Ok(())
}

/// Switches to changes of the collection made by other processes, every
/// [`RELOAD_POLL_INTERVAL`] (a changeable collection only).
async fn watch_collection(collection: Arc<Collection>) {
    if !collection.is_changeable() {
        return;
    }
    let mut ticks = tokio::time::interval(RELOAD_POLL_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let c = collection.clone();
        match tokio::task::spawn_blocking(move || c.refresh()).await {
            Ok(Ok(true)) => tracing::info!("switched to the collection changed on disk"),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => tracing::info!("the collection on disk is not usable yet: {e}"),
            Err(e) => tracing::warn!("checking the collection on disk failed: {e}"),
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

//! The HTTP service (axum): JSON API, OpenAPI description and the staff web
//! page. Handlers are thin: they parse, call the library ([`Engine`],
//! [`crate::answer`], [`Documents`]) on the blocking pool, and map errors
//! to `{"error", "code"}` replies.

mod api;
mod error;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use error::ApiError;

use crate::corpus::Documents;
use crate::generate::LlmClient;
use crate::retrieve::Engine;

/// Largest accepted request body: a question is at most a few kilobytes
/// (2,000 characters × 3 bytes), so 64 KiB leaves room and stops abuse.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// Requests taking longer than this get 408: a search takes milliseconds,
/// an answer well under a second even on 2 cores.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything a handler needs, shared by all requests.
#[derive(Clone)]
pub struct AppState {
    /// The search engine (index, analyzer, embedder).
    pub engine: Arc<Engine>,
    /// The original reports, for opening citations.
    pub documents: Arc<Documents>,
    /// Language model that writes answers (`WENDA_LLM_URL`); `None`: extractive answers.
    pub llm: Option<LlmClient>,
}

const INDEX_HTML: &str = include_str!("page/index.html");
const APP_JS: &str = include_str!("page/app.js");
const STYLE_CSS: &str = include_str!("page/style.css");
const OPENAPI_JSON: &str = include_str!("openapi.json");

/// The application's routes with their middleware.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
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
            get(|| async { static_file("application/json", OPENAPI_JSON) }),
        )
        .route("/api/search", get(api::search_get).post(api::search_post))
        .route("/api/ask", post(api::ask))
        .route("/api/documents", get(api::documents))
        .route("/api/documents/{source}", get(api::document_span))
        .route("/healthz", get(api::healthz))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                crate::ErrorCode::NotFound,
                "no such route; see /api/openapi.json",
            )
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

fn static_file(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

/// Serves the application on `listener` until `shutdown` completes, then
/// finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
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

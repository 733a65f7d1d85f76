//! Request handlers and their JSON shapes. CPU-heavy work (analysis,
//! embedding, search) runs on tokio's blocking pool so the async threads keep
//! accepting requests.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState};
use crate::answer::{self, Answer, AskRequest, DEFAULT_ANSWER_PASSAGES};
use crate::corpus::DocumentSpan;
use crate::retrieve::{DEFAULT_K, Mode, SearchRequest, SearchResponse};

/// Search parameters, from the query string or a JSON body.
#[derive(Debug, Deserialize)]
pub(super) struct SearchParams {
    /// The query (`q` is accepted too).
    #[serde(alias = "q")]
    query: Option<String>,
    /// Number of results.
    k: Option<usize>,
    /// `bm25`, `dense` or `hybrid`.
    mode: Option<String>,
    /// Restrict to one report (file name).
    source: Option<String>,
}

/// The mode a client named, if any (`None`: the engine's default).
fn parse_mode(mode: Option<&str>) -> Result<Option<Mode>, ApiError> {
    Ok(mode.map(str::parse::<Mode>).transpose()?)
}

/// Runs CPU-heavy work on the blocking pool if a work permit is free, else answers 503
/// at once. The permit travels with the work, so work whose client has gone still
/// counts until it ends and capacity stays bounded.
async fn blocking<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce() -> crate::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let Ok(permit) = state.work.clone().try_acquire_owned() else {
        return Err(ApiError::busy());
    };
    let task = move || {
        let result = f();
        drop(permit);
        result
    };
    match tokio::task::spawn_blocking(task).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => {
            // A panic's text is for the log, never for the client (it can name internals).
            let id = incident_id();
            tracing::error!(incident = %id, "request task failed: {e}");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                crate::ErrorCode::Internal,
                format!("internal error (incident {id}); the server log has the details"),
            ))
        }
    }
}

/// A short id that ties an internal-error reply to its log line.
fn incident_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{:08x}{:04x}",
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed) & 0xffff
    )
}

async fn run_search(
    state: AppState,
    params: SearchParams,
) -> Result<Json<SearchResponse>, ApiError> {
    let query = params.query.unwrap_or_default();
    let mode = parse_mode(params.mode.as_deref())?;
    let request = SearchRequest {
        query,
        k: params.k.unwrap_or(DEFAULT_K),
        mode,
        source: params.source.filter(|s| !s.is_empty()),
    };
    let snapshot = state.snapshot();
    let response = blocking(&state, move || snapshot.engine.search(&request)).await?;
    Ok(Json(response))
}

/// Refuses a query string whose percent-decoded bytes are not UTF-8: serde would
/// silently turn them into U+FFFD, while a JSON body with invalid UTF-8 is refused, and
/// one rule for both is easier to rely on.
fn check_utf8_query(raw: Option<&str>) -> Result<(), ApiError> {
    let Some(raw) = raw else { return Ok(()) };
    let bytes = raw.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            decoded.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        decoded.push(bytes[i]);
        i += 1;
    }
    match std::str::from_utf8(&decoded) {
        Ok(_) => Ok(()),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            crate::ErrorCode::InvalidParameters,
            format!(
                "the query string is not valid UTF-8 once percent-decoded (byte {}); encode the text as UTF-8",
                e.valid_up_to()
            ),
        )),
    }
}

/// `GET /api/search?q=…&k=…&mode=…&source=…`
pub(super) async fn search_get(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Json<SearchResponse>, ApiError> {
    check_utf8_query(raw.as_deref())?;
    let Query(params) = params?;
    run_search(state, params).await
}

/// `POST /api/search` with the same fields as JSON.
pub(super) async fn search_post(
    State(state): State<AppState>,
    body: Result<Json<SearchParams>, JsonRejection>,
) -> Result<Json<SearchResponse>, ApiError> {
    let Json(params) = body?;
    run_search(state, params).await
}

/// Body of `POST /api/ask`.
#[derive(Debug, Deserialize)]
pub(super) struct AskParams {
    /// The question.
    question: Option<String>,
    /// Passages to retrieve.
    k: Option<usize>,
    /// Restrict to one report.
    source: Option<String>,
    /// Retrieval mode.
    mode: Option<String>,
}

/// `POST /api/ask {"question": "…", "k": 5}`
pub(super) async fn ask(
    State(state): State<AppState>,
    body: Result<Json<AskParams>, JsonRejection>,
) -> Result<Json<Answer>, ApiError> {
    let Json(params) = body?;
    let mode = parse_mode(params.mode.as_deref())?;
    let request = AskRequest {
        question: params.question.unwrap_or_default(),
        k: params.k.unwrap_or(DEFAULT_ANSWER_PASSAGES),
        source: params.source.filter(|s| !s.is_empty()),
        mode,
    };
    let snapshot = state.snapshot();
    let llm = state.llm.clone();
    let answer = blocking(&state, move || {
        answer::ask_with(&snapshot.engine, &request, llm.as_ref())
    })
    .await?;
    Ok(Json(answer))
}

/// One report in `GET /api/documents`.
#[derive(Debug, Serialize)]
pub(super) struct DocumentInfo {
    source: String,
    title: String,
    publisher: String,
    year: u32,
}

/// The catalog.
#[derive(Debug, Serialize)]
pub(super) struct DocumentList {
    documents: Vec<DocumentInfo>,
}

/// `GET /api/documents`
pub(super) async fn documents(State(state): State<AppState>) -> Json<DocumentList> {
    Json(DocumentList {
        documents: state
            .snapshot()
            .documents
            .reports()
            .iter()
            .map(|r| DocumentInfo {
                source: r.file.clone(),
                title: r.title.clone(),
                publisher: r.publisher.clone(),
                year: r.year,
            })
            .collect(),
    })
}

/// Span parameters of `GET /api/documents/{source}`.
#[derive(Debug, Deserialize)]
pub(super) struct SpanParams {
    start: Option<usize>,
    end: Option<usize>,
}

/// `GET /api/documents/{source}?start=&end=`: the cited span with context.
pub(super) async fn document_span(
    State(state): State<AppState>,
    source: Result<Path<String>, PathRejection>,
    params: Result<Query<SpanParams>, QueryRejection>,
) -> Result<Json<DocumentSpan>, ApiError> {
    let Path(source) = source.map_err(|r| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            crate::ErrorCode::InvalidParameters,
            format!(
                "the report name in the path is not usable: {}",
                r.body_text()
            ),
        )
    })?;
    let Query(params) = params?;
    let span = state
        .snapshot()
        .documents
        .span(&source, params.start.unwrap_or(0), params.end)?;
    Ok(Json(span))
}

/// `GET /healthz` reply.
#[derive(Debug, Serialize)]
pub(super) struct Health {
    status: &'static str,
    passages: usize,
    modes: Vec<Mode>,
    model: Option<String>,
    /// The collection version (corpus fingerprint): changes with every report added or removed.
    version: String,
    /// Reports in the collection.
    reports: usize,
}

/// `GET /healthz`: ready once index and model are loaded (the server only
/// starts listening after both are).
pub(super) async fn healthz(State(state): State<AppState>) -> Json<Health> {
    let snapshot = state.snapshot();
    Json(Health {
        status: "ready",
        passages: snapshot.engine.passages().len(),
        modes: snapshot.engine.modes(),
        model: snapshot.engine.manifest().model_id.clone(),
        version: snapshot.version().to_string(),
        reports: snapshot.documents.reports().len(),
    })
}

//! Request handlers and their JSON shapes. CPU-heavy work (analysis,
//! embedding, search) runs on tokio's blocking pool so the async threads keep
//! accepting requests.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ErrorBody;
use super::openapi;
use super::{ApiError, AppState};
use crate::answer::{self, Answer, AskRequest, DEFAULT_ANSWER_PASSAGES};
use crate::corpus::DocumentSpan;
use crate::retrieve::{DEFAULT_K, Mode, SearchRequest, SearchResponse};

/// Query string of `GET /api/search`: `q` (or `query`), `k`, `mode`, `source`. Its
/// OpenAPI description is [`openapi::search_query_params`].
#[derive(Debug, Deserialize)]
pub(super) struct SearchQuery {
    /// The query.
    q: Option<String>,
    /// Another name for `q` (`q` wins).
    query: Option<String>,
    /// Number of results.
    #[serde(default, deserialize_with = "text_whole_number")]
    k: Option<usize>,
    /// Retrieval mode.
    mode: Option<String>,
    /// Only this report.
    source: Option<String>,
}

impl IntoParams for SearchQuery {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        openapi::search_query_params()
    }
}

/// Body of `POST /api/search`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = SearchBody)]
pub(super) struct SearchBody {
    #[schema(required = true, schema_with = openapi::query_text)]
    query: Option<String>,
    #[serde(default, deserialize_with = "json_whole_number")]
    #[schema(schema_with = openapi::search_k_or_null)]
    k: Option<usize>,
    #[schema(schema_with = openapi::mode_or_null)]
    mode: Option<String>,
    #[schema(schema_with = openapi::report_filter_or_null)]
    source: Option<String>,
}

/// Reads a count or offset from JSON as JSON Schema's `integer` reads it: a number with
/// no fraction, so `5.0` is 5 (serde's `usize` refuses it); null is absent.
fn json_whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    d.deserialize_option(WholeNumber { text: false })
}

/// The same for a query string, where every value is text: `5` and `5.0` are 5.
fn text_whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    d.deserialize_option(WholeNumber { text: true })
}

/// See [`json_whole_number`]; `text`: the number may come as text.
struct WholeNumber {
    text: bool,
}

impl<'de> Visitor<'de> for WholeNumber {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a whole number ≥ 0")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        usize::try_from(v)
            .map(Some)
            .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::invalid_value(Unexpected::Signed(v), &self)),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // Whole, not negative, and below 2^64 (the first f64 past u64::MAX).
        if v.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&v) {
            self.visit_u64(v as u64)
        } else {
            Err(E::invalid_value(Unexpected::Float(v), &self))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if !self.text {
            return Err(E::invalid_type(Unexpected::Str(v), &self));
        }
        if let Ok(n) = v.parse::<u64>() {
            return self.visit_u64(n);
        }
        match v.parse::<f64>() {
            Ok(f) if f.is_finite() => self.visit_f64(f),
            _ => Err(E::invalid_value(Unexpected::Str(v), &self)),
        }
    }
}

/// Search fields however they came.
struct SearchParams {
    query: Option<String>,
    k: Option<usize>,
    mode: Option<String>,
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
#[utoipa::path(
    get,
    path = "/api/search",
    summary = "Ranked passages with citations",
    description = openapi::SEARCH_DESCRIPTION,
    params(SearchQuery),
    responses(
        (status = 200, description = "The best passages first", body = SearchResponse),
        (status = 400, description = openapi::BAD_QUERY_STRING, body = ErrorBody),
        (status = 500, description = openapi::INTERNAL, body = ErrorBody),
        (status = 503, description = openapi::UNAVAILABLE, body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait (with code overloaded)"))),
    )
)]
pub(super) async fn search_get(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    params: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Json<SearchResponse>, ApiError> {
    check_utf8_query(raw.as_deref())?;
    let Query(params) = params?;
    let params = SearchParams {
        query: params.q.or(params.query),
        k: params.k,
        mode: params.mode,
        source: params.source,
    };
    run_search(state, params).await
}

/// `POST /api/search` with the same fields as JSON.
#[utoipa::path(
    post,
    path = "/api/search",
    summary = "Ranked passages with citations (JSON body)",
    description = openapi::SEARCH_DESCRIPTION,
    request_body(content = SearchBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The best passages first", body = SearchResponse),
        (status = 400, description = openapi::BAD_BODY, body = ErrorBody),
        (status = 413, description = openapi::BODY_TOO_LARGE, body = ErrorBody),
        (status = 415, description = openapi::NOT_JSON, body = ErrorBody),
        (status = 422, description = openapi::WRONG_FIELDS, body = ErrorBody),
        (status = 500, description = openapi::INTERNAL, body = ErrorBody),
        (status = 503, description = openapi::UNAVAILABLE, body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait (with code overloaded)"))),
    )
)]
pub(super) async fn search_post(
    State(state): State<AppState>,
    body: Result<Json<SearchBody>, JsonRejection>,
) -> Result<Json<SearchResponse>, ApiError> {
    let Json(body) = body?;
    let params = SearchParams {
        query: body.query,
        k: body.k,
        mode: body.mode,
        source: body.source,
    };
    run_search(state, params).await
}

/// Body of `POST /api/ask`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = AskBody)]
pub(super) struct AskBody {
    #[schema(required = true, schema_with = openapi::question_text)]
    question: Option<String>,
    #[serde(default, deserialize_with = "json_whole_number")]
    #[schema(schema_with = openapi::ask_k_or_null)]
    k: Option<usize>,
    #[schema(schema_with = openapi::report_filter_or_null)]
    source: Option<String>,
    #[schema(schema_with = openapi::mode_or_null)]
    mode: Option<String>,
}

/// `POST /api/ask {"question": "…", "k": 5}`
#[utoipa::path(
    post,
    path = "/api/ask",
    summary = "An answer with citation markers: extractive, or written by the language model at WENDA_LLM_URL when the server has one (extractive when it fails or times out)",
    description = openapi::ASK_DESCRIPTION,
    request_body(content = AskBody, content_type = "application/json"),
    responses(
        (status = 200, description = "An answer, or found: false with suggestions", body = Answer),
        (status = 400, description = openapi::BAD_BODY, body = ErrorBody),
        (status = 413, description = openapi::BODY_TOO_LARGE, body = ErrorBody),
        (status = 415, description = openapi::NOT_JSON, body = ErrorBody),
        (status = 422, description = openapi::WRONG_FIELDS, body = ErrorBody),
        (status = 500, description = openapi::INTERNAL, body = ErrorBody),
        (status = 503, description = openapi::UNAVAILABLE, body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait (with code overloaded)"))),
    )
)]
pub(super) async fn ask(
    State(state): State<AppState>,
    body: Result<Json<AskBody>, JsonRejection>,
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
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Document)]
pub(super) struct DocumentInfo {
    /// File name: the `source` of citations, filters and `/api/documents/{source}`.
    source: String,
    /// Title from the catalog.
    title: String,
    /// Who published the report.
    publisher: String,
    /// Year of publication.
    year: u32,
}

/// The catalog.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct DocumentList {
    /// Every report of the corpus, in catalog order.
    documents: Vec<DocumentInfo>,
}

/// `GET /api/documents`
#[utoipa::path(
    get,
    path = "/api/documents",
    summary = "The reports of the corpus",
    responses((status = 200, description = "The catalog", body = DocumentList))
)]
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

/// The report named in the path of `GET /api/documents/{source}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct SourcePath {
    /// File name of the report, as listed by `GET /api/documents`.
    #[param(value_type = openapi::ReportName)]
    source: String,
}

/// Span parameters of `GET /api/documents/{source}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct SpanQuery {
    /// Span start: 0-based code point offset (default 0); start <= end.
    #[serde(default, deserialize_with = "text_whole_number")]
    start: Option<usize>,
    /// Span end, exclusive (default: start + 200, at most the report's length);
    /// start <= end <= the report's length in characters, and end - start <= 20000.
    #[serde(default, deserialize_with = "text_whole_number")]
    end: Option<usize>,
}

/// `GET /api/documents/{source}?start=&end=`: the cited span with context.
#[utoipa::path(
    get,
    path = "/api/documents/{source}",
    summary = "A cited span of a report with context",
    description = "Characters start..end of the report exactly as in the file (a citation's char_start..char_end), with up to 200 characters of context on each side.",
    params(SourcePath, SpanQuery),
    responses(
        (status = 200, description = "The span", body = DocumentSpan),
        (status = 400, description = openapi::BAD_SPAN, body = ErrorBody),
        (status = 404, description = "No report of that name (code not_found)", body = ErrorBody),
    )
)]
pub(super) async fn document_span(
    State(state): State<AppState>,
    source: Result<Path<SourcePath>, PathRejection>,
    params: Result<Query<SpanQuery>, QueryRejection>,
) -> Result<Json<DocumentSpan>, ApiError> {
    let Path(SourcePath { source }) = source.map_err(|r| {
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

/// The state `GET /healthz` reports.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum Readiness {
    /// Index and model are loaded (the server listens only from then on).
    Ready,
}

/// `GET /healthz` reply.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Health {
    /// Always `ready`: the server listens only once index and model are loaded.
    status: Readiness,
    /// Passages in the index.
    passages: usize,
    /// The modes this server can search with (dense and hybrid need the model).
    modes: Vec<Mode>,
    /// The embedding model (`id@revision`), or null when running BM25 alone.
    model: Option<String>,
    /// The collection version (corpus fingerprint): changes with every report added or removed.
    version: String,
    /// Reports in the collection.
    reports: usize,
}

/// `GET /healthz`: ready once index and model are loaded (the server only
/// starts listening after both are).
#[utoipa::path(
    get,
    path = "/healthz",
    summary = "Readiness",
    responses((status = 200, description = "Ready", body = Health))
)]
pub(super) async fn healthz(State(state): State<AppState>) -> Json<Health> {
    let snapshot = state.snapshot();
    Json(Health {
        status: Readiness::Ready,
        passages: snapshot.engine.passages().len(),
        modes: snapshot.engine.modes(),
        model: snapshot.engine.manifest().model_id.clone(),
        version: snapshot.version().to_string(),
        reports: snapshot.documents.reports().len(),
    })
}

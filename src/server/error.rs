//! Error replies: every failure becomes `{"error": "...", "code": "..."}`
//! with a 4xx status for anything the client can fix.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::{Error, ErrorCode};

/// Requests refused because the server was at capacity or ran out of time, counted
/// between log lines. Refusing excess work is the server working as designed, so these
/// are warnings, not errors.
struct RefusalLog {
    since_last_line: AtomicU64,
    last_line: Mutex<Option<Instant>>,
}

impl RefusalLog {
    const fn new() -> Self {
        RefusalLog {
            since_last_line: AtomicU64::new(0),
            last_line: Mutex::new(None),
        }
    }
}

/// Requests refused because every work permit (or the query queue) was taken.
static OVERLOADED: RefusalLog = RefusalLog::new();

/// Requests given up after the request time limit.
static TIMED_OUT: RefusalLog = RefusalLog::new();

impl RefusalLog {
    /// Counts one refusal and writes a WARN line with the count when the last line is
    /// at least [`super::REFUSAL_LOG_INTERVAL`] old.
    fn record(&self, code: ErrorCode, message: &str) {
        self.since_last_line.fetch_add(1, Ordering::Relaxed);
        let Ok(mut last) = self.last_line.try_lock() else {
            return; // another refusal is writing the line; it counts this one
        };
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < super::REFUSAL_LOG_INTERVAL) {
            return;
        }
        let previous = last.replace(now);
        let count = self.since_last_line.swap(0, Ordering::Relaxed);
        let window = previous.map_or(String::new(), |t| {
            format!(" in the last {:.1} s", now.duration_since(t).as_secs_f64())
        });
        tracing::warn!(
            code = code.as_str(),
            refused = count,
            "refused {count} request(s){window} with 503: {message}"
        );
    }
}

/// An error reply.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    /// Seconds for a `Retry-After` header, when the client should come back later.
    retry_after: Option<u64>,
    /// Whether to send `WWW-Authenticate: Bearer` (a 401).
    bearer_challenge: bool,
}

/// The body of every error reply, and its schema (`Error`) in the OpenAPI document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Error, description = "The body of every error reply.")]
pub(crate) struct ErrorBody {
    /// What went wrong and what to do, in a sentence for people.
    pub(crate) error: String,
    /// Machine-readable reason, for clients to branch on.
    pub(crate) code: ErrorCode,
}

impl ApiError {
    /// An error with a status, a machine-readable code and a sentence for people.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            bearer_challenge: false,
        }
    }

    /// 401 with `WWW-Authenticate: Bearer`: a write without a valid administrator token.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        let mut e = ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message);
        e.bearer_challenge = true;
        e
    }

    /// The machine-readable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The sentence for people.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// 503 with `Retry-After`: the server is at capacity.
    pub fn busy() -> Self {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Overloaded,
            format!(
                "the server is busy with other questions; retry in {} s",
                super::RETRY_AFTER_SECONDS
            ),
        );
        e.retry_after = Some(super::RETRY_AFTER_SECONDS);
        e
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.code == ErrorCode::Overloaded {
            OVERLOADED.record(self.code, &self.message);
        } else if self.code == ErrorCode::Timeout {
            TIMED_OUT.record(self.code, &self.message);
        } else if self.status.is_server_error() {
            tracing::error!(code = self.code.as_str(), "{}", self.message);
        }
        let body = ErrorBody {
            error: self.message,
            code: self.code,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        if self.bearer_challenge {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidRequest { code, message } => {
                ApiError::new(status_of(code), code, message)
            }
            Error::Unavailable { code, message } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
            }
            Error::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, m),
            Error::Overloaded(_) => ApiError::busy(),
            Error::IndexUnusable { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::IndexUnusable,
                e.to_string(),
            ),
            other => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                other.to_string(),
            ),
        }
    }
}

/// The status of a rejected request: 400 unless its code says more precisely what is wrong.
fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::WritesDisabled => StatusCode::FORBIDDEN,
        ErrorCode::DuplicateDocument | ErrorCode::LastDocument | ErrorCode::ChangeInProgress => {
            StatusCode::CONFLICT
        }
        ErrorCode::UnsupportedFormat | ErrorCode::UnsupportedMediaType => {
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        }
        ErrorCode::NoText => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "send the body as JSON with the header Content-Type: application/json",
            ),
            JsonRejection::JsonSyntaxError(e) => ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::MalformedJson,
                format!("the body is not valid JSON: {}", e.body_text()),
            ),
            JsonRejection::JsonDataError(e) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidBody,
                format!(
                    "the JSON does not have the expected fields: {}",
                    in_words(&e.body_text())
                ),
            ),
            JsonRejection::BytesRejection(e) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::BodyTooLarge,
                format!("the body could not be read: {}", e.body_text()),
            ),
            other => ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                other.body_text(),
            ),
        }
    }
}

/// A deserialization message without Rust's vocabulary: serde names the target type
/// ("expected struct SearchParams", "expected usize"), which means nothing to a client.
fn in_words(message: &str) -> String {
    let message = message
        .trim_start_matches("Failed to deserialize the JSON body into the target type: ")
        .trim_start_matches("Failed to deserialize query string: ");
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find("expected struct ") {
        out.push_str(&rest[..i]);
        out.push_str("expected a JSON object with the documented fields");
        rest = &rest[i + "expected struct ".len()..];
        rest = rest.trim_start_matches(|c: char| c.is_alphanumeric() || c == '_');
    }
    out.push_str(rest);
    out.replace("expected usize", "expected a whole number ≥ 0")
        .replace("expected u32", "expected a whole number ≥ 0")
        .replace("expected a string", "expected text")
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidParameters,
            format!("bad query parameters: {}", in_words(&r.body_text())),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_query_queue_is_503_with_retry_after() {
        let response =
            ApiError::from(Error::Overloaded("64 questions are waiting".into())).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers()[axum::http::header::RETRY_AFTER],
            super::super::RETRY_AFTER_SECONDS.to_string().as_str()
        );
    }
}

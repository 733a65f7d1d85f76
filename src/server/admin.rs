//! The write side of the API: adding (`POST /api/documents`, multipart) and removing
//! (`DELETE /api/documents/{source}`) reports, for administrators only, as jobs
//! (`GET /api/jobs/{id}`). Handlers check the token and the request, then hand the work
//! to [`crate::collection::Collection`] on the blocking pool.

use axum::Json;
use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::ErrorBody;
use super::jobs::{JobKind, JobStatus};
use super::{ApiError, AppState};
use crate::ErrorCode;
use crate::collection::NewReport;

/// Compares two tokens in time that does not depend on where they differ.
fn same_token(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Lets a request write only with `Authorization: Bearer <the admin token>`: 403 when
/// the server has no token (writing is off), 401 when the header is missing or wrong.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = state.admin_token.as_deref() else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::WritesDisabled,
            "adding and removing reports is off: start the server with WENDA_ADMIN_TOKEN (or --admin-token) set",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        None => Err(ApiError::unauthorized(
            "send the administrator token as Authorization: Bearer <token>",
        )),
        Some(token) if !same_token(token, expected) => {
            Err(ApiError::unauthorized("the administrator token is wrong"))
        }
        Some(_) if !state.collection.is_changeable() => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::WritesDisabled,
            "this server's collection cannot be changed",
        )),
        Some(_) => Ok(()),
    }
}

fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BodyTooLarge,
            format!(
                "the upload is larger than {} MiB",
                super::MAX_UPLOAD_BYTES / (1024 * 1024)
            ),
        )
    } else {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            format!("the multipart form could not be read: {}", e.body_text()),
        )
    }
}

fn bad_form(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidBody, message)
}

/// Reads the form of `POST /api/documents`: one `file`, and `title`, `publisher`,
/// `year` as text fields.
async fn read_form(mut form: Multipart) -> Result<NewReport, ApiError> {
    let mut new = NewReport::default();
    let mut have_file = false;
    while let Some(field) = form.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or("").to_string();
        match name.as_str() {
            "file" => {
                if have_file {
                    return Err(bad_form("send one file per request"));
                }
                have_file = true;
                new.file_name = field
                    .file_name()
                    .filter(|n| !n.is_empty())
                    .map(str::to_string);
                new.bytes = field.bytes().await.map_err(multipart_error)?.to_vec();
            }
            "title" | "publisher" | "year" => {
                let value = field.text().await.map_err(multipart_error)?;
                match name.as_str() {
                    "title" => new.title = Some(value),
                    "publisher" => new.publisher = Some(value),
                    _ => {
                        let year = value.trim().parse().map_err(|_| {
                            ApiError::new(
                                StatusCode::BAD_REQUEST,
                                ErrorCode::InvalidMetadata,
                                format!("the year {value:?} is not a number like 2025"),
                            )
                        })?;
                        new.year = Some(year);
                    }
                }
            }
            other => {
                return Err(bad_form(format!(
                    "unknown form field {other:?}: send file, title, publisher and year"
                )));
            }
        }
    }
    if !have_file {
        return Err(bad_form("the form has no file field"));
    }
    if new.bytes.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::NoText,
            "the file is empty",
        ));
    }
    Ok(new)
}

/// 202 with the job's status and its address in `Location`.
fn accepted(status: JobStatus) -> Response {
    let location = format!("/api/jobs/{}", status.id);
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(status),
    )
        .into_response()
}

/// Runs `work` as a job of `kind` on the blocking pool and answers 202 at once; 503 when
/// too many jobs are pending.
fn spawn_job(
    state: &AppState,
    kind: JobKind,
    source: Option<String>,
    work: impl FnOnce(&dyn crate::progress::Progress) -> crate::Result<serde_json::Value>
    + Send
    + 'static,
) -> Result<Response, ApiError> {
    let Some(job) = state.jobs.create(kind, source) else {
        return Err(ApiError::busy());
    };
    let worker = job.clone();
    tokio::task::spawn_blocking(move || {
        worker.start();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&*worker)));
        let outcome = match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                let e = ApiError::from(e);
                Err((e.code(), e.message().to_string()))
            }
            Err(_) => {
                tracing::error!("a {kind:?} job panicked");
                Err((
                    ErrorCode::Internal,
                    "internal error; the server log has the details".to_string(),
                ))
            }
        };
        match &outcome {
            Ok(_) => tracing::info!(job = worker.status().id, "{kind:?} job done"),
            Err((code, message)) => {
                tracing::warn!(job = worker.status().id, %code, "{kind:?} job failed: {message}")
            }
        }
        worker.finish(outcome);
    });
    Ok(accepted(job.status()))
}

/// The multipart form of `POST /api/documents` (documentation only: the handler reads
/// the parts itself to check each one).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(super) struct UploadForm {
    /// The report: .pdf, .txt or .md.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// Default: the text's first line when at most 60 characters (not a running page header).
    #[schema(min_length = 1, max_length = 200)]
    title: Option<String>,
    /// Default: empty.
    #[schema(max_length = 200)]
    publisher: Option<String>,
    /// Default: the first year (like 2025年) in the title or the text's opening.
    #[schema(minimum = 1990, maximum = 2100)]
    year: Option<u32>,
}

/// `POST /api/documents` (multipart: `file`, `title`, `publisher`, `year`): checks the
/// token, the format and duplicates at once, then adds the report as a job (202).
#[utoipa::path(
    post,
    path = "/api/documents",
    summary = "Add a report (administrators)",
    description = "Uploads a report as multipart/form-data: a PDF, UTF-8 text (.txt) or Markdown (.md) file, at most 64 MiB. The format is decided by the content (a PDF starts with %PDF-, text is valid UTF-8 without binary control characters) and must agree with the file name's extension; the client's file name is never used to store the report (the stored name comes from the title or a hash of the content). PDFs are read with poppler's pdftotext on the server. The checks that need no extraction answer at once; the rest (text extraction, index build: only the new report's passages are embedded) runs as a job: 202 with the job, whose address is in Location. When the job succeeds, the report is searchable and citable and /healthz shows the new collection version.",
    security(("adminToken" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 202, description = "Accepted: the job adding the report", body = JobStatus,
            headers(("Location" = String, description = "The job's address, /api/jobs/{id}"))),
        (status = 400, description = "A file name with folders or control characters (bad_file_name), bad title/publisher/year (invalid_metadata), no file field, two files or an unknown field (invalid_body), an unreadable form (bad_request)", body = ErrorBody),
        (status = 401, description = "No Authorization: Bearer header, or a wrong token (code unauthorized; the reply has WWW-Authenticate: Bearer)", body = ErrorBody),
        (status = 403, description = "Writing is off: the server has no administrator token (code writes_disabled)", body = ErrorBody),
        (status = 409, description = "The same file is already in the collection (duplicate_document)", body = ErrorBody),
        (status = 413, description = "The upload is larger than 64 MiB (body_too_large)", body = ErrorBody),
        (status = 415, description = "Not multipart/form-data (unsupported_media_type), or a file that is not a PDF, .txt or .md, or whose content does not match its extension (unsupported_format)", body = ErrorBody),
        (status = 422, description = "An empty file (no_text)", body = ErrorBody),
        (status = 500, description = "A fault of the service (code internal)", body = ErrorBody),
        (status = 503, description = "Too many changes pending (code overloaded, with Retry-After), or PDFs cannot be read on this server (pdftotext missing)", body = ErrorBody),
    )
)]
pub(super) async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let form = form.map_err(|r| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            format!(
                "send the report as multipart/form-data with a file field: {}",
                r.body_text()
            ),
        )
    })?;
    let new = read_form(form).await?;
    let collection = state.collection.clone();
    // Hashing up to 64 MiB and looking for pdftotext: off the async threads.
    let checker = collection.clone();
    let new = tokio::task::spawn_blocking(move || checker.check_addition(&new).map(|_| new))
        .await
        .map_err(|e| {
            tracing::error!("checking an upload failed: {e}");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "internal error; the server log has the details",
            )
        })??;
    let source = new.file_name.clone();
    spawn_job(&state, JobKind::Add, source, move |progress| {
        let added = collection.add(&new, progress)?;
        Ok(serde_json::to_value(added).unwrap_or_default())
    })
}

/// `DELETE /api/documents/{source}`: checks the token and that the report exists, then
/// removes it as a job (202).
#[utoipa::path(
    delete,
    path = "/api/documents/{source}",
    summary = "Remove a report (administrators)",
    description = "Removes the report, its catalog entry and every passage and citation of it, as a job (202; nothing is embedded, the index is rebuilt from cached vectors). The last report cannot be removed (the job fails with last_document).",
    security(("adminToken" = [])),
    params(("source" = String, Path, description = "The report's file name, as GET /api/documents lists it")),
    responses(
        (status = 202, description = "Accepted: the job removing the report", body = JobStatus,
            headers(("Location" = String, description = "The job's address, /api/jobs/{id}"))),
        (status = 400, description = "The name in the path is not usable (invalid_parameters)", body = ErrorBody),
        (status = 401, description = "No Authorization: Bearer header, or a wrong token (code unauthorized; the reply has WWW-Authenticate: Bearer)", body = ErrorBody),
        (status = 403, description = "Writing is off: the server has no administrator token (code writes_disabled)", body = ErrorBody),
        (status = 404, description = "No report has that name (not_found)", body = ErrorBody),
        (status = 503, description = "Too many changes pending (code overloaded, with Retry-After)", body = ErrorBody),
    )
)]
pub(super) async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    source: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let Path(source) = source.map_err(|r| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidParameters,
            format!(
                "the report name in the path is not usable: {}",
                r.body_text()
            ),
        )
    })?;
    let listed = state
        .collection
        .current()
        .documents
        .reports()
        .iter()
        .any(|r| r.file == source);
    if !listed {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("no report named {source:?}; GET /api/documents lists them"),
        ));
    }
    let collection = state.collection.clone();
    let name = source.clone();
    spawn_job(&state, JobKind::Remove, Some(source), move |progress| {
        let removed = collection.remove(&name, progress)?;
        Ok(serde_json::to_value(removed).unwrap_or_default())
    })
}

/// `GET /api/jobs/{id}`: a job's stage, progress and outcome.
#[utoipa::path(
    get,
    path = "/api/jobs/{id}",
    summary = "A job adding or removing a report: stage, progress and outcome",
    params(("id" = String, Path, description = "The job's id, from the 202 reply")),
    responses(
        (status = 200, description = "The job", body = JobStatus),
        (status = 404, description = "Unknown job (finished jobs are kept for the last 100)", body = ErrorBody),
    )
)]
pub(super) async fn job(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<JobStatus>, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "no such job (finished jobs are kept for a while, then forgotten)",
        )
    };
    let Ok(Path(id)) = id else {
        return Err(not_found());
    };
    state
        .jobs
        .get(&id)
        .map(|j| Json(j.status()))
        .ok_or_else(not_found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("s3cret", "s3cret"));
        assert!(!same_token("s3cre", "s3cret"));
        assert!(!same_token("s3creT", "s3cret"));
        assert!(!same_token("", "s3cret"));
    }
}

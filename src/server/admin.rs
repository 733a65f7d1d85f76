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

/// `POST /api/documents` (multipart: `file`, `title`, `publisher`, `year`): checks the
/// token, the format and duplicates at once, then adds the report as a job (202).
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

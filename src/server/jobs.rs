//! Long work behind `202 Accepted`: adding or removing a report runs as a job on the
//! blocking pool, one change at a time; `GET /api/jobs/{id}` reports its stage, progress
//! and outcome.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::error::ErrorCode;
use crate::progress::Progress;

/// Jobs waiting or running at once; past it a new change gets 503 `overloaded`. Changes
/// run one at a time (each rebuilds the index), so a longer queue would only hold
/// uploads (up to [`super::MAX_UPLOAD_BYTES`] each) in memory.
pub const MAX_PENDING_JOBS: usize = 4;

/// Finished jobs kept for `GET /api/jobs/{id}`: a client polls its job within seconds
/// of the end, and a hundred finished jobs are a few kilobytes.
pub const FINISHED_JOBS_KEPT: usize = 100;

/// What a job does.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// `POST /api/documents`.
    Add,
    /// `DELETE /api/documents/{source}`.
    Remove,
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for the change before it.
    Queued,
    /// Running.
    Running,
    /// Done; `result` says what changed.
    Succeeded,
    /// Stopped; `error` says why, and nothing changed.
    Failed,
}

/// The error of a failed job, in the shape of every error reply.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobError {
    /// A sentence for people.
    pub error: String,
    /// Machine-readable reason ([`ErrorCode::as_str`]).
    pub code: &'static str,
}

/// A job as `GET /api/jobs/{id}` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Job)]
pub struct JobStatus {
    /// The job's id.
    pub id: String,
    /// Add or remove.
    pub kind: JobKind,
    /// Queued, running, succeeded or failed.
    pub state: JobState,
    /// The report concerned: the file name being removed, or the uploaded file's name.
    pub source: Option<String>,
    /// The stage running (`extracting text`, `BM25 index`, `passage vectors`).
    pub stage: Option<String>,
    /// Units of the stage done.
    pub done: u64,
    /// Units of the stage in all.
    pub total: u64,
    /// Seconds since the Unix epoch when the job was accepted.
    pub created_at: u64,
    /// Seconds since the Unix epoch when it ended.
    pub finished_at: Option<u64>,
    /// What changed (an `Added` or `Removed` record), once succeeded.
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    /// Why it failed.
    pub error: Option<JobError>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// One job's status, shared by the worker (which updates it) and the handlers.
#[derive(Debug)]
pub struct Job(Mutex<JobStatus>);

impl Job {
    fn update(&self, f: impl FnOnce(&mut JobStatus)) {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// A copy of the status.
    pub fn status(&self) -> JobStatus {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The job has started.
    pub fn start(&self) {
        self.update(|s| s.state = JobState::Running);
    }

    /// The job ended with `outcome`.
    pub fn finish(&self, outcome: Result<serde_json::Value, (ErrorCode, String)>) {
        self.update(|s| {
            s.finished_at = Some(now());
            s.stage = None;
            match outcome {
                Ok(result) => {
                    s.state = JobState::Succeeded;
                    s.result = Some(result);
                }
                Err((code, error)) => {
                    s.state = JobState::Failed;
                    s.error = Some(JobError {
                        error,
                        code: code.as_str(),
                    });
                }
            }
        });
    }

    fn is_pending(&self) -> bool {
        matches!(self.status().state, JobState::Queued | JobState::Running)
    }
}

impl Progress for Job {
    fn stage(&self, name: &str, total: u64) {
        self.update(|s| {
            s.stage = Some(name.to_string());
            s.done = 0;
            s.total = total;
        });
    }

    fn position(&self, done: u64) {
        self.update(|s| s.done = done);
    }

    fn finish(&self) {
        self.update(|s| s.done = s.total);
    }
}

/// The jobs of a server: pending ones and the last [`FINISHED_JOBS_KEPT`] finished.
#[derive(Debug, Default)]
pub struct Jobs {
    jobs: Mutex<VecDeque<Arc<Job>>>,
}

impl Jobs {
    /// Registers a new queued job, or `None` when [`MAX_PENDING_JOBS`] are pending.
    pub fn create(&self, kind: JobKind, source: Option<String>) -> Option<Arc<Job>> {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        if jobs.iter().filter(|j| j.is_pending()).count() >= MAX_PENDING_JOBS {
            return None;
        }
        while jobs.len() >= FINISHED_JOBS_KEPT + MAX_PENDING_JOBS {
            match jobs.iter().position(|j| !j.is_pending()) {
                Some(i) => {
                    jobs.remove(i);
                }
                None => break,
            }
        }
        let job = Arc::new(Job(Mutex::new(JobStatus {
            id: job_id(),
            kind,
            state: JobState::Queued,
            source,
            stage: None,
            done: 0,
            total: 0,
            created_at: now(),
            finished_at: None,
            result: None,
            error: None,
        })));
        jobs.push_back(job.clone());
        Some(job)
    }

    /// The job with this id.
    pub fn get(&self, id: &str) -> Option<Arc<Job>> {
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|j| j.status().id == id)
            .cloned()
    }
}

/// A job id: 16 hex digits from the clock and a counter, unique within a server run and
/// not guessable from the previous one.
fn job_id() -> String {
    use sha2::{Digest, Sha256};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let digest = Sha256::digest(format!("{nanos}:{n}:{}", std::process::id()));
    hex::encode(&digest[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_report_progress_and_outcome_and_pending_ones_are_bounded() {
        let jobs = Jobs::default();
        let job = jobs.create(JobKind::Add, Some("a.pdf".into())).unwrap();
        assert_eq!(job.status().state, JobState::Queued);
        job.start();
        job.stage("passage vectors", 10);
        job.position(4);
        let s = jobs.get(&job.status().id).unwrap().status();
        assert_eq!(
            (s.state, s.stage.as_deref(), s.done, s.total),
            (JobState::Running, Some("passage vectors"), 4, 10)
        );
        job.finish(Err((ErrorCode::NoText, "no text".into())));
        let s = job.status();
        assert_eq!(s.state, JobState::Failed);
        assert_eq!(s.error.unwrap().code, "no_text");
        assert!(jobs.get("nope").is_none());

        let pending: Vec<_> = (0..MAX_PENDING_JOBS)
            .map(|_| jobs.create(JobKind::Remove, None).unwrap())
            .collect();
        assert!(jobs.create(JobKind::Remove, None).is_none());
        pending[0].finish(Ok(serde_json::json!({"source": "x"})));
        assert!(jobs.create(JobKind::Remove, None).is_some());
        let ids: std::collections::HashSet<String> =
            pending.iter().map(|j| j.status().id).collect();
        assert_eq!(ids.len(), MAX_PENDING_JOBS);
    }
}

//! Progress of long work (index builds, model conversion, evaluation), reported through
//! a small trait so the library never draws anything itself: the CLI implements it with
//! progress bars, tests and the server with [`NoProgress`].

/// Receives the progress of long work, one stage at a time.
pub trait Progress: Sync {
    /// A new stage begins with `total` units of work.
    fn stage(&self, name: &str, total: u64);
    /// The current stage has done `done` units so far.
    fn position(&self, done: u64);
    /// The current stage is over.
    fn finish(&self);
}

/// A [`Progress`] that shows nothing (tests, library callers, quiet runs).
pub struct NoProgress;

impl Progress for NoProgress {
    fn stage(&self, _: &str, _: u64) {}
    fn position(&self, _: u64) {}
    fn finish(&self) {}
}

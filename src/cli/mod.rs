//! Pieces of the command-line shell: progress bars, printing, benchmarks.

pub mod bench;
pub mod print;
pub mod progress;

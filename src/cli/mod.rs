//! The command-line shell: one module per `wenda` command, each with its clap flags and
//! a `run` that calls the library, plus what they share (paths and loading, logging,
//! progress bars, printing).

pub mod add;
pub mod bench;
pub mod eval;
pub mod index;
pub mod list;
pub mod logging;
pub mod models;
pub mod paths;
pub mod print;
pub mod progress;
pub mod remove;
pub mod search;
pub mod serve;

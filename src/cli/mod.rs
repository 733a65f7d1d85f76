//! Pieces of the command-line shell: progress bars and printing.

pub mod print;
pub mod progress;

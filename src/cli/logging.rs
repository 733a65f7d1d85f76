//! Logs on stderr through `tracing`, filtered by `WENDA_LOG` (default: info, tantivy's
//! own at warn): coloured text on a terminal, plain text in a file or pipe (and wherever
//! `NO_COLOR` is set), or one JSON object a line for log collectors.

use std::io::IsTerminal;

/// How log lines are written (`--log-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; colour only on a terminal without `NO_COLOR`.
    #[default]
    Text,
    /// One JSON object a line (timestamp, level, fields), for log collectors.
    Json,
}

/// Whether stderr gets colour: a terminal, and `NO_COLOR` unset or empty
/// (<https://no-color.org>).
pub fn stderr_colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Installs the global subscriber; `quiet` keeps errors only.
pub fn init(quiet: bool, format: LogFormat) {
    let default = if quiet { "error" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("WENDA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{default},tantivy=warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Text => builder.with_ansi(stderr_colour()).init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}

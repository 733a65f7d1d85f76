//! Logs on stderr through `tracing`, filtered by `WENDA_LOG` (default: info, tantivy's
//! own at warn).

/// Installs the global subscriber; `quiet` keeps errors only.
pub fn init(quiet: bool) {
    let default = if quiet { "error" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("WENDA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{default},tantivy=warn")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

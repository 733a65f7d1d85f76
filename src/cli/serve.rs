//! `wenda serve`: the HTTP service and web page over the collection.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use wenda::collection::Collection;
use wenda::generate::{DEFAULT_LLM_MODEL, LlmClient};
use wenda::progress::Progress;
use wenda::retrieve::{QUERY_CACHE_ENTRIES, RebuildPolicy};
use wenda::server::{self, AppState};

use super::paths::{ExtractArgs, Paths};

/// Flags of `wenda serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// An OpenAI-compatible chat-completions URL: a language model then writes the answers
    /// from the retrieved passages (extractive answers whenever it fails).
    #[arg(long, env = "WENDA_LLM_URL", value_name = "URL")]
    llm_url: Option<String>,
    /// Model name sent to that endpoint.
    #[arg(long, env = "WENDA_LLM_MODEL", default_value = DEFAULT_LLM_MODEL)]
    llm_model: String,
    /// Bearer token for that endpoint.
    #[arg(long, env = "WENDA_LLM_API_KEY", hide_env_values = true)]
    llm_api_key: Option<String>,
    /// Embed each query on its own instead of in batches with the queries that arrive
    /// while the model is busy (for comparisons; batching serves more clients).
    #[arg(long)]
    no_query_batching: bool,
    /// Query vectors to keep, so a question asked again (or asked by the page's search
    /// and then its answer) is embedded once; 0 turns the cache off.
    #[arg(long, default_value_t = QUERY_CACHE_ENTRIES, value_name = "N")]
    query_cache: usize,
    /// Searches and answers computed at once; more get 503 with Retry-After at once
    /// instead of waiting [default: 8 per core].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_in_flight: Option<u32>,
    /// Token that adding and removing reports through the API needs
    /// (Authorization: Bearer TOKEN); without one, those endpoints answer 403.
    #[arg(long, env = "WENDA_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    #[command(flatten)]
    extract: ExtractArgs,
}

/// Opens the collection (building the index if needed) and serves until a shutdown signal.
pub fn run(paths: &Paths, args: ServeArgs, bars: &dyn Progress) -> Result<()> {
    let encoder = if args.no_query_batching {
        paths.load_encoder(bars)?
    } else {
        paths.load_batched_encoder(bars)?
    };
    let mut config = paths.collection_config(RebuildPolicy::IfNeeded, args.extract.options());
    config.engine.query_cache_entries = args.query_cache;
    let collection = Collection::open(config, encoder, bars)
        .with_context(|| format!("opening the collection in {}", paths.corpus.display()))?;
    let llm = args
        .llm_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|url| {
            LlmClient::new(url, args.llm_model.clone()).with_api_key(args.llm_api_key.clone())
        });
    match &llm {
        Some(l) => tracing::info!(
            url = l.url(),
            "answers are written by the language model, extractive when it fails"
        ),
        None => tracing::info!(
            "answers are extractive (set WENDA_LLM_URL to have a language model write them)"
        ),
    }
    let admin_token = args.admin_token.filter(|t| !t.trim().is_empty());
    match &admin_token {
        Some(_) => {
            tracing::info!("administrators may add and remove reports (POST/DELETE /api/documents)")
        }
        None => tracing::info!(
            "adding and removing reports through the API is off (set WENDA_ADMIN_TOKEN to allow it)"
        ),
    }
    let capacity = args
        .max_in_flight
        .map_or_else(server::default_capacity, |n| n as usize);
    let state = AppState::for_collection(Arc::new(collection), llm, admin_token, capacity);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let addr = format!("{}:{}", args.host, args.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (is the port in use? try --port)"))?;
        let local = listener.local_addr()?;
        println!(
            "wenda listening on http://{local} (page at /, API at /api, spec at /api/openapi.json)"
        );
        std::io::stdout().flush()?;
        server::serve(listener, state, server::shutdown_signal()).await?;
        Ok(())
    })
}

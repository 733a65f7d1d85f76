//! `wenda eval`: retrieval quality on a question set or a BEIR-style benchmark, and
//! answer quality (`--answers`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use wenda::eval::{self, answers, extraction, run};
use wenda::progress::Progress;
use wenda::retrieve::{Fusion, Mode, RebuildPolicy};

use super::paths::Paths;

/// Modes `wenda eval` can run: one of the retrieval modes, or every mode available.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalMode {
    /// Every mode the engine can serve.
    All,
    /// BM25 only.
    #[value(alias = "lexical")]
    Bm25,
    /// Dense only.
    #[value(alias = "vector")]
    Dense,
    /// BM25 and dense, fused.
    Hybrid,
}

/// Flags of `wenda eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// Question set in JSONL with gold evidence spans (see ../shared/eval/README.md).
    #[arg(long, value_name = "FILE", required_unless_present = "beir")]
    set: Option<PathBuf>,
    /// BEIR-style folder (corpus.jsonl, queries.jsonl, qrels.tsv); indexed into a temporary index.
    #[arg(long, value_name = "DIR", conflicts_with = "set")]
    beir: Option<PathBuf>,
    /// Modes to evaluate, comma-separated, or all (every mode available).
    #[arg(short, long, value_enum, value_delimiter = ',', default_value = "all")]
    mode: Vec<EvalMode>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// List every missed question with what was retrieved instead.
    #[arg(long)]
    verbose: bool,
    /// Also write a TREC run file (several modes: the mode goes before the extension).
    #[arg(long, value_name = "FILE")]
    trec_run: Option<PathBuf>,
    /// Fusion for hybrid: rrf, rrf:K, weighted, weighted:W, adaptive or adaptive:W (weighted,
    /// leaning on dense for questions not in Chinese); several, comma-separated, give one row each.
    #[arg(long, value_delimiter = ',', default_value = "adaptive")]
    fusion: Vec<Fusion>,
    /// Also write the TREC qrels of the set.
    #[arg(long, value_name = "FILE")]
    trec_qrels: Option<PathBuf>,
    /// Measure answers instead of retrieval: each question of --set through the same code
    /// as POST /api/ask, scored against its gold answer and evidence.
    /// With --beir: each question over that folder's corpus, scored against its gold
    /// answers (answers.jsonl: found, contains a gold answer, first sentence, character F1).
    #[arg(long, conflicts_with_all = ["trec_run", "trec_qrels"])]
    answers: bool,
    /// With --answers: questions the reports cannot answer (one {"question": …} a line),
    /// to measure how often they are refused.
    #[arg(long, value_name = "FILE", requires = "answers")]
    negatives: Option<PathBuf>,
    /// With --answers: the questions of a BEIR folder (queries.jsonl) asked of the reports
    /// as further negatives (out-of-domain: they should all be refused).
    #[arg(long, value_name = "DIR", requires = "answers")]
    negatives_from: Option<PathBuf>,
    /// With --answers: ask at most this many questions of --beir and of --negatives-from,
    /// evenly spaced over the set.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// With --beir: keep its index in this folder instead of a temporary one, so a later
    /// run takes the vectors from its cache.
    #[arg(long, value_name = "DIR", requires = "beir")]
    beir_index: Option<PathBuf>,
}

/// Runs the evaluation `args` asks for and prints its report.
pub fn run(paths: &Paths, args: EvalArgs, bars: &dyn Progress) -> Result<()> {
    if args.answers {
        return run_answers(paths, &args, bars);
    }
    let fusions = args.fusion;
    let (evaluation, qrels) = if let Some(dir) = &args.beir {
        let set = eval::BeirSet::load(dir)?;
        let encoder = if needs_model(&args.mode) {
            paths.load_encoder(bars)?
        } else {
            None
        };
        let available: Vec<Mode> = if encoder.is_some() {
            Mode::ALL.to_vec()
        } else {
            vec![Mode::Bm25]
        };
        let modes = modes(&args.mode, &available)?;
        let scratch = tempfile::tempdir().context("creating a temporary index folder")?;
        let index_dir = args.beir_index.as_deref().unwrap_or(scratch.path());
        let evaluation = run::evaluate_beir(&set, index_dir, encoder, &fusions, &modes, bars)?;
        (evaluation, set.qrels_rows())
    } else {
        let set_path = args.set.as_ref().context("give --set FILE or --beir DIR")?;
        let questions = eval::load_questions(set_path)?;
        let (_, engine) = paths.engine(RebuildPolicy::IfNeeded, needs_model(&args.mode), bars)?;
        let modes = modes(&args.mode, &engine.modes())?;
        let evaluation = run::evaluate_questions(
            &engine,
            &file_name(set_path),
            &questions,
            &modes,
            &fusions,
            bars,
        )?;
        let qrels = eval::dev_qrels(&questions, &run::all_spans(&engine));
        (evaluation, qrels)
    };
    if let Some(base) = &args.trec_run {
        let several = evaluation.runs.len() > 1;
        for (mode, rankings) in &evaluation.runs {
            let path = trec_path(base, &mode.replace(':', "-"), several);
            eval::write_run_file(&path, &format!("wenda-{mode}"), rankings)?;
            tracing::info!("wrote TREC run {}", path.display());
        }
    }
    if let Some(path) = &args.trec_qrels {
        eval::write_qrels_file(path, &qrels)?;
        tracing::info!("wrote TREC qrels {}", path.display());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&evaluation.report)?);
    } else {
        print!("{}", evaluation.report.to_table());
        if args.verbose {
            print!("{}", evaluation.report.render_misses());
        }
    }
    Ok(())
}

/// `--answers --beir DIR`: the folder indexed, each question asked of it and scored
/// against its gold answers.
fn run_extraction(paths: &Paths, args: &EvalArgs, dir: &Path, bars: &dyn Progress) -> Result<()> {
    let set = eval::BeirSet::load(dir)?;
    let golds = extraction::load_gold_answers(dir)?;
    let questions: Vec<extraction::GoldQuestion> = set
        .queries
        .iter()
        .filter_map(|q| {
            Some(extraction::GoldQuestion {
                id: q.id.clone(),
                text: q.text.clone(),
                answers: golds.get(&q.id)?.clone(),
            })
        })
        .collect();
    let questions = extraction::evenly_spaced(&questions, args.limit);
    let encoder = paths.load_encoder(bars)?;
    let scratch = tempfile::tempdir().context("creating a temporary index folder")?;
    let index_dir = args.beir_index.as_deref().unwrap_or(scratch.path());
    let passages = run::beir_passages(&set);
    let engine = wenda::retrieve::Engine::build_from_passages(
        index_dir,
        &passages,
        encoder,
        Fusion::default(),
        bars,
    )?;
    let report = extraction::evaluate_extraction(&engine, &set.name, &questions, bars)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_table());
    }
    Ok(())
}

/// `--answers`: each question through the code of `POST /api/ask`, scored.
fn run_answers(paths: &Paths, args: &EvalArgs, bars: &dyn Progress) -> Result<()> {
    if let Some(dir) = &args.beir {
        return run_extraction(paths, args, dir, bars);
    }
    let set_path = args.set.as_ref().context("give --set FILE or --beir DIR")?;
    let questions = eval::load_questions(set_path)?;
    let mut negatives = match &args.negatives {
        Some(path) => answers::load_negatives(path)?,
        None => Vec::new(),
    };
    if let Some(dir) = &args.negatives_from {
        let set = eval::BeirSet::load(dir)?;
        let asked: Vec<String> = set.queries.iter().map(|q| q.text.clone()).collect();
        negatives.extend(extraction::evenly_spaced(&asked, args.limit));
    }
    let (_, engine) = paths.engine(RebuildPolicy::IfNeeded, true, bars)?;
    let report =
        answers::evaluate_answers(&engine, &file_name(set_path), &questions, &negatives, bars)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_table());
        if args.verbose {
            print!("{}", report.render_misses());
        }
    }
    Ok(())
}

/// The set's file name, which names it in the report.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The modes `requested` names among those `available`; an error names a missing one.
fn modes(requested: &[EvalMode], available: &[Mode]) -> Result<Vec<Mode>> {
    let mut modes = Vec::new();
    for r in requested {
        let wanted = match r {
            EvalMode::All => available.to_vec(),
            EvalMode::Bm25 => vec![Mode::Bm25],
            EvalMode::Dense => vec![Mode::Dense],
            EvalMode::Hybrid => vec![Mode::Hybrid],
        };
        for mode in wanted {
            if !available.contains(&mode) {
                bail!(
                    "mode {mode} is not available: the embedding model is missing (run `wenda models fetch`, and drop --lexical-only)"
                );
            }
            if !modes.contains(&mode) {
                modes.push(mode);
            }
        }
    }
    Ok(modes)
}

/// Whether evaluating `requested` needs the embedding model.
fn needs_model(requested: &[EvalMode]) -> bool {
    requested.iter().any(|m| *m != EvalMode::Bm25)
}

/// The TREC run file of one mode: `base` itself, or with the mode before the extension
/// when several modes are written.
fn trec_path(base: &Path, mode: &str, several: bool) -> PathBuf {
    if !several {
        return base.to_path_buf();
    }
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match base.extension() {
        Some(ext) => format!("{stem}.{mode}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{mode}"),
    };
    base.with_file_name(name)
}

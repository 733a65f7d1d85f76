//! Adding and removing reports through the library (`wenda::collection`) on a copy of
//! the corpus, with the bigram stand-in for the embedding model: incremental embedding,
//! searchable and citable passages, complete removal, refusals, and failures that change
//! nothing.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{BigramEncoder, listing, new_report_markdown, scratch_collection};
use wenda::collection::{self, Collection, CollectionConfig, NewReport};
use wenda::corpus::Corpus;
use wenda::corpus::extract::ExtractOptions;
use wenda::embed::Encoder;
use wenda::progress::{NoProgress, Progress};
use wenda::retrieve::{Engine, EngineConfig, Fusion, Mode, RebuildPolicy, SearchRequest};
use wenda::{Error, ErrorCode};

/// The bigram encoder, counting the passages it embeds.
#[derive(Default)]
struct Counting(AtomicUsize);

impl Encoder for Counting {
    fn model_id(&self) -> &str {
        BigramEncoder.model_id()
    }
    fn dim(&self) -> usize {
        BigramEncoder.dim()
    }
    fn encode_query(&self, query: &str) -> wenda::Result<Vec<f32>> {
        BigramEncoder.encode_query(query)
    }
    fn encode_passages(
        &self,
        texts: &[&str],
        progress: &dyn Progress,
    ) -> wenda::Result<Vec<Vec<f32>>> {
        self.0.fetch_add(texts.len(), Ordering::SeqCst);
        BigramEncoder.encode_passages(texts, progress)
    }
}

impl Counting {
    fn take(&self) -> usize {
        self.0.swap(0, Ordering::SeqCst)
    }
}

fn config(corpus: &std::path::Path, index: &std::path::Path) -> CollectionConfig {
    CollectionConfig {
        corpus_dir: corpus.to_path_buf(),
        engine: EngineConfig {
            index_dir: index.to_path_buf(),
            rebuild: RebuildPolicy::IfNeeded,
            fusion: Fusion::default(),
            query_cache_entries: wenda::retrieve::QUERY_CACHE_ENTRIES,
            store: Default::default(),
        },
        extract: ExtractOptions::default(),
    }
}

fn markdown_report() -> NewReport {
    NewReport {
        bytes: new_report_markdown().into_bytes(),
        file_name: Some("观察.md".into()),
        name_hint: None,
        title: None,
        publisher: Some("问答测试研究院".into()),
        year: None,
    }
}

/// The distinct texts an index build embeds for `passages`: each passage and each of
/// its readable sentences (a text is embedded once, whichever it is).
fn texts_to_embed(passages: &[wenda::corpus::Passage]) -> std::collections::HashSet<String> {
    passages
        .iter()
        .flat_map(|p| {
            std::iter::once(p.text.clone()).chain(wenda::corpus::readable_sentences(&p.text))
        })
        .collect()
}

fn code_of(e: Error) -> ErrorCode {
    match e {
        Error::InvalidRequest { code, .. } => code,
        other => panic!("expected a refusal, got {other}"),
    }
}

#[test]
fn adding_a_report_embeds_only_its_passages_and_removing_it_restores_everything() {
    let (_dir, corpus, index) = scratch_collection();
    let catalog_before = std::fs::read(corpus.join("catalog.toml")).unwrap();
    let files_before = listing(&corpus);
    let encoder = Arc::new(Counting::default());
    let collection =
        Collection::open(config(&corpus, &index), Some(encoder.clone()), &NoProgress).unwrap();
    let before = collection.current();
    let version_before = before.version().to_string();
    let passages_before = before.engine.passages().len();
    assert_eq!(
        encoder.take(),
        texts_to_embed(before.engine.passages()).len(),
        "the first build embeds every passage and sentence"
    );

    let added = collection.add(&markdown_report(), &NoProgress).unwrap();
    assert_eq!(added.title, "2025年中国大模型行业观察（测试样本）");
    assert_eq!(
        (added.publisher.as_str(), added.year),
        ("问答测试研究院", 2025)
    );
    assert!(added.source.starts_with("report-") && added.source.ends_with(".txt"));
    assert!(added.passages > 0);
    // Only the new passages and their sentences are embedded.
    let new_texts = texts_to_embed(&collection.current().engine.passages()[passages_before..]);
    let old_texts = texts_to_embed(before.engine.passages());
    let fresh = new_texts.difference(&old_texts).count();
    assert_eq!(added.embedded, fresh);
    assert_eq!(encoder.take(), fresh, "only the new passages are embedded");

    // Searchable and citable at once, in every mode.
    let now = collection.current();
    assert_eq!(now.version(), added.version);
    assert_ne!(now.version(), version_before);
    assert_eq!(
        now.engine.passages().len(),
        passages_before + added.passages
    );
    for mode in Mode::ALL {
        let mut request =
            SearchRequest::new("某国有银行借助大模型把信贷审批材料的平均处理时长缩短");
        request.mode = Some(mode);
        // Top in BM25 and hybrid; the bigram stand-in ranks it lower by meaning alone.
        let response = now.engine.search(&request).unwrap();
        let hit = response
            .results
            .iter()
            .find(|h| h.citation.source == added.source)
            .unwrap_or_else(|| panic!("{mode}: not found"));
        assert!(
            mode == Mode::Dense || hit.rank == 1,
            "{mode}: rank {}",
            hit.rank
        );
        let c = &hit.citation;
        let span = now
            .documents
            .span(&c.source, c.char_start, Some(c.char_end))
            .unwrap();
        assert!(
            span.text
                .replace('\n', "")
                .contains("信贷审批材料的平均处理时长从3天缩短到4小时"),
            "{}",
            span.text
        );
    }
    assert!(
        std::fs::read_to_string(corpus.join("catalog.toml"))
            .unwrap()
            .contains(&format!("file = \"{}\"", added.source))
    );
    // The old snapshot is untouched: requests in flight finish on it.
    assert_eq!(before.engine.passages().len(), passages_before);

    let removed = collection.remove(&added.source, &NoProgress).unwrap();
    assert_eq!(removed.passages, added.passages);
    assert_eq!(encoder.take(), 0, "a removal embeds nothing");
    let after = collection.current();
    assert_eq!(after.version(), version_before);
    assert_eq!(after.engine.passages().len(), passages_before);
    assert!(
        after
            .engine
            .passages()
            .iter()
            .all(|p| p.citation.source != added.source)
    );
    let mut request = SearchRequest::new("信贷审批");
    request.source = Some(added.source.clone());
    assert_eq!(
        code_of(after.engine.search(&request).unwrap_err()),
        ErrorCode::UnknownSource
    );
    assert!(matches!(
        after.documents.span(&added.source, 0, Some(1)),
        Err(Error::NotFound(_))
    ));
    let mut request = SearchRequest::new("某国有银行借助大模型把信贷审批材料的平均处理时长缩短");
    request.k = 100;
    let response = after.engine.search(&request).unwrap();
    assert!(
        response
            .results
            .iter()
            .all(|h| h.citation.source != added.source)
    );
    assert_eq!(
        std::fs::read(corpus.join("catalog.toml")).unwrap(),
        catalog_before
    );
    assert_eq!(listing(&corpus), {
        let mut l = files_before.clone();
        l.push(collection::CHANGE_LOCK_FILE.to_string());
        l.sort();
        l
    });

    // Added again: its vectors are still in the cache.
    let again = collection.add(&markdown_report(), &NoProgress).unwrap();
    assert_eq!((again.embedded, encoder.take()), (0, 0));
}

#[test]
fn a_change_made_by_another_process_is_picked_up_by_refresh() {
    let (_dir, corpus, index) = scratch_collection();
    let encoder: Arc<dyn Encoder> = Arc::new(BigramEncoder);
    let served = Collection::open(config(&corpus, &index), Some(encoder), &NoProgress).unwrap();
    assert!(!served.refresh().unwrap(), "nothing changed yet");
    let added = collection::add_report(
        &config(&corpus, &index),
        &markdown_report(),
        Some(&BigramEncoder),
        &NoProgress,
    )
    .unwrap();
    assert!(served.refresh().unwrap());
    assert_eq!(served.current().version(), added.version);
    assert!(!served.refresh().unwrap());
}

#[test]
fn a_failed_addition_changes_nothing() {
    struct Failing;
    impl Encoder for Failing {
        fn model_id(&self) -> &str {
            BigramEncoder.model_id()
        }
        fn dim(&self) -> usize {
            BigramEncoder.dim()
        }
        fn encode_query(&self, q: &str) -> wenda::Result<Vec<f32>> {
            BigramEncoder.encode_query(q)
        }
        fn encode_passages(&self, _: &[&str], _: &dyn Progress) -> wenda::Result<Vec<Vec<f32>>> {
            Err(Error::Corpus("the model fell over".into()))
        }
    }
    let (_dir, corpus, index) = scratch_collection();
    let cfg = config(&corpus, &index);
    let encoder: Arc<dyn Encoder> = Arc::new(BigramEncoder);
    let engine_before = Engine::open(
        &cfg.engine,
        &Corpus::load(&corpus).unwrap(),
        Some(encoder.clone()),
        &NoProgress,
    )
    .unwrap();
    let catalog = std::fs::read(corpus.join("catalog.toml")).unwrap();
    let corpus_files = listing(&corpus);
    let index_files = listing(&index);

    let err =
        collection::add_report(&cfg, &markdown_report(), Some(&Failing), &NoProgress).unwrap_err();
    assert!(err.to_string().contains("fell over"), "{err}");
    assert_eq!(std::fs::read(corpus.join("catalog.toml")).unwrap(), catalog);
    let mut expected = corpus_files.clone();
    expected.push(collection::CHANGE_LOCK_FILE.to_string());
    expected.sort();
    assert_eq!(
        listing(&corpus),
        expected,
        "no report file, no pending file"
    );
    assert_eq!(listing(&index), index_files, "no staged build left");
    // The old index serves the old corpus as it did.
    let never = EngineConfig {
        rebuild: RebuildPolicy::Never,
        ..cfg.engine.clone()
    };
    let engine = Engine::open(
        &never,
        &Corpus::load(&corpus).unwrap(),
        Some(encoder),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(engine.manifest(), engine_before.manifest());
}

#[test]
fn duplicates_bad_metadata_and_impossible_removals_are_refused() {
    let (_dir, corpus, index) = scratch_collection();
    let cfg = config(&corpus, &index);
    let added = collection::add_report(&cfg, &markdown_report(), None, &NoProgress).unwrap();

    // The same file again, under another name.
    let mut same = markdown_report();
    same.file_name = Some("copy.txt".into());
    let err = collection::add_report(&cfg, &same, None, &NoProgress).unwrap_err();
    assert_eq!(code_of(err), ErrorCode::DuplicateDocument);
    // The text of a report already there (with Windows line ends).
    let leadleo = std::fs::read_to_string(corpus.join("leadleo-2023-llm-application-report.txt"))
        .unwrap()
        .replace('\n', "\r\n");
    let copy = NewReport {
        bytes: leadleo.into_bytes(),
        file_name: Some("leadleo.txt".into()),
        year: Some(2023),
        ..NewReport::default()
    };
    let err = collection::add_report(&cfg, &copy, None, &NoProgress).unwrap_err();
    assert_eq!(code_of(err), ErrorCode::DuplicateDocument);

    let cases: Vec<(NewReport, ErrorCode)> = vec![
        (
            NewReport {
                year: Some(20245),
                ..markdown_report()
            },
            ErrorCode::InvalidMetadata,
        ),
        (
            NewReport {
                title: Some("  ".into()),
                ..markdown_report()
            },
            ErrorCode::InvalidMetadata,
        ),
        (
            NewReport {
                title: Some("标题\u{0}".into()),
                ..markdown_report()
            },
            ErrorCode::InvalidMetadata,
        ),
        (
            NewReport {
                bytes: "没有年份的报告正文。".repeat(30).into_bytes(),
                file_name: Some("x.txt".into()),
                ..NewReport::default()
            },
            ErrorCode::InvalidMetadata,
        ),
        (
            NewReport {
                bytes: "太短".into(),
                year: Some(2025),
                ..NewReport::default()
            },
            ErrorCode::NoText,
        ),
    ];
    for (new, expected) in cases {
        let err = collection::add_report(&cfg, &new, None, &NoProgress).unwrap_err();
        assert_eq!(code_of(err), expected, "{:?}", new.title);
    }

    let err = collection::remove_report(&cfg, "nope.txt", None, &NoProgress).unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    let err =
        collection::remove_report(&cfg, "../corpus/catalog.toml", None, &NoProgress).unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    // Down to one report, which stays.
    let sources: Vec<String> = Corpus::load(&corpus)
        .unwrap()
        .catalog
        .reports
        .iter()
        .map(|r| r.file.clone())
        .filter(|f| *f != added.source)
        .collect();
    for s in &sources {
        collection::remove_report(&cfg, s, None, &NoProgress).unwrap();
    }
    let err = collection::remove_report(&cfg, &added.source, None, &NoProgress).unwrap_err();
    assert_eq!(code_of(err), ErrorCode::LastDocument);
    assert_eq!(
        listing(&corpus)
            .iter()
            .filter(|f| f.ends_with(".txt"))
            .count(),
        1
    );
}

#[test]
fn a_change_running_elsewhere_makes_another_wait_its_turn() {
    let (_dir, corpus, index) = scratch_collection();
    let cfg = config(&corpus, &index);
    let lock = std::fs::File::create(corpus.join(collection::CHANGE_LOCK_FILE)).unwrap();
    lock.try_lock().unwrap();
    let err = collection::add_report(&cfg, &markdown_report(), None, &NoProgress).unwrap_err();
    assert_eq!(code_of(err), ErrorCode::ChangeInProgress);
    drop(lock);
    collection::add_report(&cfg, &markdown_report(), None, &NoProgress).unwrap();
}

#[test]
#[cfg_attr(not(shared_data), ignore = "needs ../shared beside the checkout")]
fn eval_figures_are_the_same_after_adding_and_removing_a_report() {
    use wenda::eval::{load_questions, run};
    let dev = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/eval/dev.jsonl");
    let questions = load_questions(&dev).unwrap();
    let (_dir, corpus, index) = scratch_collection();
    let encoder: Arc<dyn Encoder> = Arc::new(BigramEncoder);
    let collection = Collection::open(config(&corpus, &index), Some(encoder), &NoProgress).unwrap();
    let table = |c: &Collection| {
        let engine = c.current().engine.clone();
        run::evaluate_questions(
            &engine,
            "dev.jsonl",
            &questions,
            &Mode::ALL,
            &[Fusion::default()],
            &NoProgress,
        )
        .unwrap()
        .report
        .to_table()
    };
    let before = table(&collection);
    let added = collection.add(&markdown_report(), &NoProgress).unwrap();
    collection.remove(&added.source, &NoProgress).unwrap();
    assert_eq!(table(&collection), before);
}

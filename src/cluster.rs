//! The cluster store: the same BM25 and dense top-k as the embedded index, answered by an
//! OpenSearch cluster (its k-NN plugin, Lucene HNSW), so a library too large for one
//! machine, or one that needs replicas, keeps `wenda`'s ranking without a sharding layer
//! of our own.
//!
//! What lives where: the cluster holds one document per passage (id, text, the citation
//! fields, its report, its jieba terms joined by spaces for the server's `whitespace`
//! analyzer, and its vector); the local index keeps the analyzer's vocabulary, the
//! passage table the results are presented from, and the sentence vectors answers and the
//! dense rescoring read. Analysis stays ours, so both backends search the same terms.
//! The engine asks the cluster only for "BM25 top-k for these terms" and "dense top-k for
//! this vector", and fuses as with the embedded store.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::analysis::Analyzer;
use crate::corpus::Passage;
use crate::error::{Error, ErrorCode, Result};
use crate::index::StoredIndex;
use crate::lexical::{REPORT_BOOST, SECTION_BOOST};
use crate::progress::Progress;

/// Alias the engine searches (`--engine-index`): `wenda index --backend opensearch` loads a
/// new concrete index and moves this alias onto it in one step.
pub const DEFAULT_ALIAS: &str = "wenda";

/// Longest wait for one search or write request. A search of our five reports takes a few
/// milliseconds on a local two-node cluster; ten seconds bounds a stalled node without
/// failing a slow bulk request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest wait to open a connection to a node: a node on the same network answers in
/// well under a millisecond, so two seconds only ever passes for a node that is gone.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Longest wait for a new index's shard copies to start before the alias moves: a few
/// seconds on a local cluster; two minutes leaves room for a busy one.
pub const SHARD_COPIES_WAIT: Duration = Duration::from_secs(120);

/// Passages per bulk request: 256 passages with their 384 float vectors are about 2.5 MB
/// of JSON, under the server's default 100 MB limit and small enough for a 512 MB heap.
pub const BULK_PASSAGES: usize = 256;

/// Extra hits asked of the cluster beyond `k`, so passages tied in score at the cut are
/// all seen and ordered the same way every time (by ordinal: which of two tied passages a
/// shard copy returns first depends on its segments, so a primary and its replica could
/// disagree). On the dev set, BM25 had exact ties at ranks 7–9 of two questions, and one
/// at rank 5 flipped R@5 by 0.025 between runs before this.
pub const TIE_SLACK: usize = 10;

/// Scores closer than this count as tied when the cluster's hits are ordered: far below
/// any real difference (BM25 scores differ by 0.01 and more, cosines by 1e-4 and more), and
/// far above the float rounding of a sum taken in another order (1e-6 at BM25's scale).
pub const TIE_PRECISION: f64 = 1e-5;

/// Which store answers the engine's top-k requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StoreConfig {
    /// tantivy and the in-process vectors of the local index (the default).
    #[default]
    Embedded,
    /// An OpenSearch cluster; the local index still supplies analysis and presentation.
    Cluster(ClusterConfig),
}

/// Where the cluster is and which alias to search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Base URLs of the cluster's nodes (`http://127.0.0.1:9200`); a request goes to the
    /// first node that answers, so one node may be down.
    pub urls: Vec<String>,
    /// The alias the engine searches ([`DEFAULT_ALIAS`]).
    pub alias: String,
}

impl ClusterConfig {
    /// Parses a comma-separated list of node URLs (`--engine-url`).
    pub fn new(urls: &str, alias: &str) -> Result<ClusterConfig> {
        let urls: Vec<String> = urls
            .split(',')
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty())
            .collect();
        if urls.is_empty() || urls.iter().any(|u| !u.starts_with("http")) {
            return Err(Error::invalid(
                ErrorCode::InvalidParameters,
                "give the search engine as --engine-url http://HOST:PORT (several nodes comma-separated)",
            ));
        }
        if alias.is_empty() || alias.starts_with(['_', '-']) || alias != alias.to_lowercase() {
            return Err(Error::invalid(
                ErrorCode::InvalidParameters,
                format!("{alias:?} cannot name an index: use lowercase letters, digits and dashes"),
            ));
        }
        Ok(ClusterConfig {
            urls,
            alias: alias.to_string(),
        })
    }

    /// The URLs as given, for messages.
    pub fn url_list(&self) -> String {
        self.urls.join(",")
    }
}

/// How a new cluster index is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Primary shards.
    pub shards: u32,
    /// Copies of each shard on other nodes.
    pub replicas: u32,
}

impl Default for Layout {
    /// One shard, no replica: a single node (see the README's sizing rule for more).
    fn default() -> Self {
        Layout {
            shards: 1,
            replicas: 0,
        }
    }
}

/// What a load into the cluster did.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The concrete index the alias now points at.
    pub index: String,
    /// Passages written.
    pub passages: usize,
    /// Indices the alias pointed at before (deleted once the alias moved).
    pub replaced: Vec<String>,
}

/// What a sync of the cluster with the local index changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Synced {
    /// Reports whose passages were written.
    pub added: Vec<String>,
    /// Reports whose passages were deleted.
    pub removed: Vec<String>,
}

/// A connection to the cluster: the HTTP agent and the node URLs.
pub struct Client {
    config: ClusterConfig,
    agent: ureq::Agent,
    /// The node that answered last, tried first.
    preferred: AtomicUsize,
}

/// Reply of a request that reached a node: its status and JSON body.
struct Reply {
    status: u16,
    body: Value,
}

impl Client {
    /// A client for `config` with bounded timeouts; nothing is sent yet.
    pub fn new(config: ClusterConfig) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(REQUEST_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .http_status_as_error(false)
            .build()
            .into();
        Client {
            config,
            agent,
            preferred: AtomicUsize::new(0),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    fn unavailable(&self, problem: impl std::fmt::Display) -> Error {
        Error::Unavailable {
            code: ErrorCode::EngineUnavailable,
            message: format!("the search engine at {} {problem}", self.config.url_list()),
        }
    }

    /// Sends one request to the first node that answers (starting with the last one
    /// that did); an error only when no node can be reached.
    fn send(&self, method: &str, path: &str, body: Option<String>, ndjson: bool) -> Result<Reply> {
        let n = self.config.urls.len();
        let first = self.preferred.load(Ordering::Relaxed) % n;
        let mut last_error = String::new();
        for i in 0..n {
            let node = (first + i) % n;
            let url = format!("{}{path}", self.config.urls[node]);
            let content_type = if ndjson {
                "application/x-ndjson"
            } else {
                "application/json"
            };
            let sent = match (method, &body) {
                ("GET", _) => self.agent.get(&url).call(),
                ("DELETE", _) => self.agent.delete(&url).call(),
                ("HEAD", _) => self.agent.head(&url).call(),
                ("PUT", b) => self
                    .agent
                    .put(&url)
                    .header("Content-Type", content_type)
                    .send(b.clone().unwrap_or_default()),
                (_, b) => self
                    .agent
                    .post(&url)
                    .header("Content-Type", content_type)
                    .send(b.clone().unwrap_or_default()),
            };
            match sent {
                Ok(mut response) => {
                    self.preferred.store(node, Ordering::Relaxed);
                    let status = response.status().as_u16();
                    let text = response
                        .body_mut()
                        .with_config()
                        .limit(256 * 1024 * 1024)
                        .read_to_string()
                        .map_err(|e| self.unavailable(format!("sent an unreadable reply: {e}")))?;
                    let body = if text.trim().is_empty() {
                        Value::Null
                    } else {
                        serde_json::from_str(&text).map_err(|_| {
                            self.unavailable(format!(
                                "answered {method} {path} with something other than JSON: {}",
                                text.chars().take(200).collect::<String>()
                            ))
                        })?
                    };
                    return Ok(Reply { status, body });
                }
                Err(e) => last_error = format!("{}: {e}", self.config.urls[node]),
            }
        }
        Err(self.unavailable(format!(
            "cannot be reached ({last_error}); start it (see the README's cluster section) or search the embedded index (drop --backend opensearch)"
        )))
    }

    /// Sends a request and requires a 2xx reply.
    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let reply = self.send(method, path, body.map(|b| b.to_string()), false)?;
        self.expect_ok(method, path, reply)
    }

    fn expect_ok(&self, method: &str, path: &str, reply: Reply) -> Result<Value> {
        if (200..300).contains(&reply.status) {
            Ok(reply.body)
        } else {
            let reason = reply.body["error"]["reason"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| reply.body.to_string().chars().take(300).collect());
            Err(self.unavailable(format!(
                "refused {method} {path} (status {}): {reason}",
                reply.status
            )))
        }
    }

    /// The cluster's name, version and health, for logs and the README's checks.
    pub fn describe(&self) -> Result<String> {
        let root = self.ok("GET", "/", None)?;
        let health = self.ok("GET", "/_cluster/health", None)?;
        Ok(format!(
            "{} {} (cluster {}, {} nodes, status {})",
            root["version"]["distribution"]
                .as_str()
                .unwrap_or("elasticsearch"),
            root["version"]["number"].as_str().unwrap_or("?"),
            health["cluster_name"].as_str().unwrap_or("?"),
            health["number_of_nodes"],
            health["status"].as_str().unwrap_or("?"),
        ))
    }

    /// The concrete indices `alias` points at (none when it does not exist).
    fn alias_targets(&self) -> Result<Vec<String>> {
        let path = format!("/_alias/{}", self.config.alias);
        let reply = self.send("GET", &path, None, false)?;
        if reply.status == 404 {
            return Ok(Vec::new());
        }
        let body = self.expect_ok("GET", &path, reply)?;
        Ok(body
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default())
    }

    /// The `_meta` of the index behind the alias, or None when there is no such index.
    fn meta(&self) -> Result<Option<Value>> {
        let path = format!("/{}/_mapping", self.config.alias);
        let reply = self.send("GET", &path, None, false)?;
        if reply.status == 404 {
            return Ok(None);
        }
        let body = self.expect_ok("GET", &path, reply)?;
        let index = body.as_object().and_then(|o| o.values().next()).cloned();
        Ok(index.map(|i| i["mappings"]["_meta"].clone()))
    }

    /// Passage counts per report in the cluster.
    fn counts_by_source(&self) -> Result<BTreeMap<String, u64>> {
        let body = self.ok(
            "POST",
            &format!("/{}/_search", self.config.alias),
            Some(json!({
                "size": 0,
                "aggs": {"sources": {"terms": {"field": "source", "size": 100_000}}}
            })),
        )?;
        let mut counts = BTreeMap::new();
        for bucket in body["aggregations"]["sources"]["buckets"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let (Some(key), Some(n)) = (bucket["key"].as_str(), bucket["doc_count"].as_u64()) {
                counts.insert(key.to_string(), n);
            }
        }
        Ok(counts)
    }

    /// Writes passages (with their ordinals in `index`) into `target` in bulk requests.
    fn bulk(
        &self,
        target: &str,
        index: &StoredIndex,
        report_labels: &HashMap<String, String>,
        ords: &[usize],
        progress: &dyn Progress,
    ) -> Result<()> {
        let analyzer = index.lexical.analyzer();
        progress.stage("loading passages into the cluster", ords.len() as u64);
        for (chunk_no, chunk) in ords.chunks(BULK_PASSAGES).enumerate() {
            let mut body = String::new();
            for &ord in chunk {
                let p = &index.passages[ord];
                let vector = index.dense.as_ref().map(|d| d.vector(ord));
                let label = report_labels
                    .get(&p.citation.source)
                    .map(String::as_str)
                    .unwrap_or("");
                body.push_str(&json!({"index": {"_index": target, "_id": p.id}}).to_string());
                body.push('\n');
                body.push_str(&document(p, label, vector, analyzer).to_string());
                body.push('\n');
            }
            let path = "/_bulk";
            let reply = self.send("POST", path, Some(body), true)?;
            let reply = self.expect_ok("POST", path, reply)?;
            if reply["errors"].as_bool() == Some(true) {
                let first = reply["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find_map(|i| i["index"]["error"]["reason"].as_str())
                    .unwrap_or("unknown")
                    .to_string();
                return Err(self.unavailable(format!("refused passages in a bulk write: {first}")));
            }
            progress.position((chunk_no * BULK_PASSAGES + chunk.len()) as u64);
        }
        progress.finish();
        Ok(())
    }

    /// Deletes every passage of one report: its ids a page at a time, then a bulk delete
    /// (`_delete_by_query` lives in the reindex module, which the minimal distribution
    /// lacks).
    fn delete_source(&self, source: &str) -> Result<()> {
        let alias = &self.config.alias;
        loop {
            let found = self.ok(
                "POST",
                &format!("/{alias}/_search"),
                Some(json!({
                    "size": BULK_PASSAGES,
                    "_source": false,
                    "query": {"term": {"source": source}}
                })),
            )?;
            let ids: Vec<(String, String)> = found["hits"]["hits"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|h| {
                    Some((
                        h["_index"].as_str()?.to_string(),
                        h["_id"].as_str()?.to_string(),
                    ))
                })
                .collect();
            if ids.is_empty() {
                return Ok(());
            }
            let mut body = String::new();
            for (index, id) in &ids {
                body.push_str(&json!({"delete": {"_index": index, "_id": id}}).to_string());
                body.push('\n');
            }
            let reply = self.send("POST", "/_bulk?refresh=true", Some(body), true)?;
            let reply = self.expect_ok("POST", "/_bulk", reply)?;
            if reply["errors"].as_bool() == Some(true) {
                return Err(self.unavailable(format!("refused to delete the passages of {source}")));
            }
        }
    }

    /// Waits until every shard copy of `target` is started (its primaries only, without
    /// replicas), asking the cluster in steps shorter than [`REQUEST_TIMEOUT`]; an error
    /// after [`SHARD_COPIES_WAIT`] (a replica with no node to go to never starts).
    fn wait_for_copies(&self, target: &str, layout: Layout) -> Result<Value> {
        let status = if layout.replicas > 0 {
            "green"
        } else {
            "yellow"
        };
        let path = format!("/_cluster/health/{target}?wait_for_status={status}&timeout=5s");
        let started = std::time::Instant::now();
        loop {
            let reply = self.send("GET", &path, None, false)?;
            if reply.status == 200 && reply.body["timed_out"] == Value::Bool(false) {
                return Ok(reply.body);
            }
            if reply.status != 408 && reply.status != 200 {
                self.expect_ok("GET", &path, reply)?;
            }
            if started.elapsed() > SHARD_COPIES_WAIT {
                return Err(self.unavailable(format!(
                    "did not start every copy of {target} ({} shards, {} replicas) in {} s: are there {} nodes?",
                    layout.shards,
                    layout.replicas,
                    SHARD_COPIES_WAIT.as_secs(),
                    layout.replicas + 1
                )));
            }
        }
    }

    /// Loads every passage of `index` into a new concrete index with `layout`, then moves
    /// the alias onto it in one atomic step (searches use the old index until then) and
    /// deletes the old one.
    pub fn load(
        &self,
        index: &StoredIndex,
        report_labels: &HashMap<String, String>,
        layout: Layout,
        progress: &dyn Progress,
    ) -> Result<Loaded> {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let target = format!("{}-{millis}", self.config.alias);
        let dim = index.dense.as_ref().map(|d| d.dim());
        self.ok(
            "PUT",
            &format!("/{target}"),
            Some(index_body(layout, dim, &meta_of(index))),
        )?;
        let all: Vec<usize> = (0..index.passages.len()).collect();
        let loaded = self
            .bulk(&target, index, report_labels, &all, progress)
            .and_then(|()| {
                // Back to the usual refresh, and every shard copy ready, before the switch.
                self.ok(
                    "PUT",
                    &format!("/{target}/_settings"),
                    Some(json!({"index": {"refresh_interval": null}})),
                )?;
                self.ok("POST", &format!("/{target}/_refresh"), None)?;
                self.wait_for_copies(&target, layout)
            });
        if let Err(e) = loaded {
            // A half-loaded index never gets the alias; take it away again.
            let _ = self.send("DELETE", &format!("/{target}"), None, false);
            return Err(e);
        }
        let replaced = self.alias_targets()?;
        let mut actions: Vec<Value> = replaced
            .iter()
            .map(|old| json!({"remove": {"index": old, "alias": self.config.alias}}))
            .collect();
        actions.push(json!({"add": {"index": target, "alias": self.config.alias}}));
        self.ok("POST", "/_aliases", Some(json!({ "actions": actions })))?;
        for old in &replaced {
            self.ok("DELETE", &format!("/{old}"), None)?;
        }
        Ok(Loaded {
            index: target,
            passages: index.passages.len(),
            replaced,
        })
    }

    /// Brings the cluster in line with the local index report by report: the passages of
    /// a report that is gone or changed are deleted, those of a new or changed report
    /// written (vectors from the local index, so nothing is embedded again).
    pub fn sync(
        &self,
        index: &StoredIndex,
        report_labels: &HashMap<String, String>,
        progress: &dyn Progress,
    ) -> Result<Synced> {
        let in_cluster = self.counts_by_source()?;
        let mut local: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (ord, p) in index.passages.iter().enumerate() {
            local.entry(&p.citation.source).or_default().push(ord);
        }
        let mut synced = Synced::default();
        for (source, n) in &in_cluster {
            if local.get(source.as_str()).map(|o| o.len() as u64) != Some(*n) {
                self.delete_source(source)?;
                synced.removed.push(source.clone());
            }
        }
        let mut write = Vec::new();
        for (source, ords) in &local {
            if in_cluster.get(*source) != Some(&(ords.len() as u64)) {
                write.extend_from_slice(ords);
                synced.added.push(source.to_string());
            }
        }
        if !write.is_empty() {
            self.bulk(&self.config.alias, index, report_labels, &write, progress)?;
        }
        self.ok(
            "PUT",
            &format!("/{}/_mapping", self.config.alias),
            Some(json!({"_meta": meta_of(index)})),
        )?;
        self.ok("POST", &format!("/{}/_refresh", self.config.alias), None)?;
        Ok(synced)
    }
}

/// The `_meta` a cluster index carries: what it was loaded from, checked when an engine
/// opens it.
fn meta_of(index: &StoredIndex) -> Value {
    json!({
        "corpus_fingerprint": index.manifest.corpus_fingerprint,
        "settings": index.manifest.settings,
        "model_id": index.manifest.model_id,
        "passages": index.passages.len(),
    })
}

/// Settings and mappings of a new cluster index. The three `*_terms` fields mirror the
/// embedded index's BM25 fields (passage text, section, report label), analysed by us and
/// split on whitespace by the server.
fn index_body(layout: Layout, dim: Option<usize>, meta: &Value) -> Value {
    let terms = json!({"type": "text", "analyzer": "whitespace", "similarity": "BM25"});
    let stored = json!({"type": "keyword", "index": false, "doc_values": false});
    let number = json!({"type": "integer", "index": false});
    let mut properties = json!({
        "text_terms": terms, "section_terms": terms, "report_terms": terms,
        "source": {"type": "keyword"},
        "text": {"type": "text", "index": false},
        "title": stored, "section": stored,
        "line_start": number, "line_end": number, "char_start": number, "char_end": number,
    });
    if let Some(dim) = dim {
        properties["vector"] = json!({
            "type": "knn_vector",
            "dimension": dim,
            "method": {"name": "hnsw", "space_type": "cosinesimil", "engine": "lucene"}
        });
    }
    json!({
        "settings": {"index": {
            "number_of_shards": layout.shards,
            "number_of_replicas": layout.replicas,
            "knn": true,
            "refresh_interval": "-1",
        }},
        // The vector is indexed (HNSW) but not kept in `_source`: the local index has it,
        // and it would be most of each stored document (384 numbers as JSON text).
        "mappings": {
            "_meta": meta,
            "dynamic": "strict",
            "_source": {"excludes": ["vector"]},
            "properties": properties
        }
    })
}

/// One passage as a cluster document.
fn document(
    p: &Passage,
    report_label: &str,
    vector: Option<Vec<f32>>,
    analyzer: &Analyzer,
) -> Value {
    let terms = |text: &str| {
        analyzer
            .analyze(text)
            .into_iter()
            .map(|t| t.text)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let c = &p.citation;
    let mut doc = json!({
        "text_terms": terms(&p.text),
        "section_terms": terms(&c.section),
        "report_terms": terms(report_label),
        "source": c.source,
        "text": p.text,
        "title": c.title,
        "section": c.section,
        "line_start": c.line_start,
        "line_end": c.line_end,
        "char_start": c.char_start,
        "char_end": c.char_end,
    });
    if let Some(v) = vector {
        doc["vector"] = json!(v);
    }
    doc
}

/// The engine's view of the cluster: searches by terms or vector, answered with the
/// ordinals of the local index.
pub struct ClusterStore {
    client: Client,
    /// Local ordinal of each passage id.
    ords: HashMap<String, u32>,
}

impl ClusterStore {
    /// Connects to the cluster and checks that its index holds the local index's passages
    /// (same corpus, analysis and model); when it does not (a report was added or removed
    /// since the load), brings it in line first ([`Client::sync`]: only the changed reports
    /// are written, so this is cheap next to a local rebuild).
    pub fn open(
        config: ClusterConfig,
        index: &StoredIndex,
        report_labels: &HashMap<String, String>,
        progress: &dyn Progress,
    ) -> Result<ClusterStore> {
        let client = Client::new(config);
        let alias = client.config.alias.clone();
        let url = client.config.url_list();
        let meta = client.meta()?.ok_or_else(|| Error::Unavailable {
            code: ErrorCode::EngineUnavailable,
            message: format!(
                "the search engine at {url} has no index {alias:?}: run `wenda index --backend opensearch --engine-url {url}`"
            ),
        })?;
        if meta != meta_of(index) {
            let local = meta_of(index);
            if meta["settings"] != local["settings"] || meta["model_id"] != local["model_id"] {
                return Err(Error::Unavailable {
                    code: ErrorCode::EngineUnavailable,
                    message: format!(
                        "the index {alias:?} at {url} was loaded with other analysis settings or another model than the local index: run `wenda index --backend opensearch --engine-url {url}`"
                    ),
                });
            }
            let synced = client.sync(index, report_labels, progress)?;
            tracing::info!(
                "brought {alias:?} at {url} in line with the local index: {} reports written, {} removed",
                synced.added.len(),
                synced.removed.len()
            );
        }
        let ords = index
            .passages
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.clone(), i as u32))
            .collect();
        Ok(ClusterStore { client, ords })
    }

    /// The best `k` ordinals and scores of a search reply, best first and ties by
    /// ordinal (ids the local index lacks, which a sync would remove, are skipped).
    fn hits(&self, body: &Value, k: usize, scale: impl Fn(f32) -> f32) -> Vec<(u32, f32)> {
        let mut hits: Vec<(u32, f32)> = body["hits"]["hits"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| {
                let ord = *self.ords.get(h["_id"].as_str()?)?;
                Some((ord, scale(h["_score"].as_f64()? as f32)))
            })
            .collect();
        // Scores equal to TIE_PRECISION count as tied: how a shard copy sums a passage's
        // term scores depends on its segments, so a tie can differ in the last bit.
        let key = |score: f32| (f64::from(score) / TIE_PRECISION).round() as i64;
        hits.sort_by(|a, b| key(b.1).cmp(&key(a.1)).then(a.0.cmp(&b.0)));
        hits.truncate(k);
        hits
    }

    fn search(&self, query: Value, dfs: bool) -> Result<Value> {
        // Partial results would rank differently from the embedded store: refuse them
        // (a replica answers for a lost shard copy).
        let path = format!(
            "/{}/_search?allow_partial_search_results=false{}",
            self.client.config.alias,
            if dfs {
                "&search_type=dfs_query_then_fetch"
            } else {
                ""
            }
        );
        self.client.ok("POST", &path, Some(query))
    }

    /// BM25 top-`k` for analysed terms over the same three fields and boosts as the
    /// embedded index, optionally within one report. Term statistics are gathered from
    /// every shard first (`dfs_query_then_fetch`), so scores do not depend on how
    /// passages fell into shards; OpenSearch's BM25 keeps the classic `k1 + 1` factor, as
    /// tantivy does, so the scores are the embedded store's.
    pub fn bm25_top_k(
        &self,
        terms: &[String],
        k: usize,
        source: Option<&str>,
    ) -> Result<Vec<(u32, f32)>> {
        if terms.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        let mut should = Vec::new();
        for t in terms {
            should.push(json!({"term": {"text_terms": t}}));
            should.push(json!({"term": {"section_terms": {"value": t, "boost": SECTION_BOOST}}}));
            should.push(json!({"term": {"report_terms": {"value": t, "boost": REPORT_BOOST}}}));
        }
        let mut query = json!({"bool": {"should": should, "minimum_should_match": 1}});
        if let Some(src) = source {
            query["bool"]["filter"] = json!([{"term": {"source": src}}]);
        }
        let body = self.search(
            json!({"size": k + TIE_SLACK, "query": query, "_source": false, "track_total_hits": false}),
            true,
        )?;
        Ok(self.hits(&body, k, |s| s))
    }

    /// Dense top-`k` by cosine for a query vector, optionally within one report (the
    /// filter is applied inside the HNSW search, so `k` passages come back when there
    /// are that many).
    pub fn dense_top_k(
        &self,
        vector: &[f32],
        k: usize,
        source: Option<&str>,
    ) -> Result<Vec<(u32, f32)>> {
        if k == 0 {
            return Ok(Vec::new());
        }
        let mut knn = json!({"vector": vector, "k": k + TIE_SLACK});
        if let Some(src) = source {
            knn["filter"] = json!({"term": {"source": src}});
        }
        let body = self.search(
            json!({"size": k + TIE_SLACK, "query": {"knn": {"vector": knn}}, "_source": false}),
            false,
        )?;
        // The Lucene engine scores cosine similarity as (1 + cos) / 2.
        Ok(self.hits(&body, k, |s| 2.0 * s - 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_lists_and_aliases_are_checked() {
        let c =
            ClusterConfig::new("http://127.0.0.1:9200/, http://127.0.0.1:9201", "wenda").unwrap();
        assert_eq!(c.urls, ["http://127.0.0.1:9200", "http://127.0.0.1:9201"]);
        assert!(ClusterConfig::new("", "wenda").is_err());
        assert!(ClusterConfig::new("127.0.0.1:9200", "wenda").is_err());
        assert!(ClusterConfig::new("http://127.0.0.1:9200", "Wenda").is_err());
    }

    #[test]
    fn an_unreachable_engine_is_an_error_naming_its_url() {
        // Port 9 (discard) on the loopback interface: nothing listens there.
        let client = Client::new(ClusterConfig::new("http://127.0.0.1:9", "wenda").unwrap());
        let err = client.describe().unwrap_err();
        match &err {
            Error::Unavailable { code, message } => {
                assert_eq!(*code, ErrorCode::EngineUnavailable);
                assert!(message.contains("http://127.0.0.1:9"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}

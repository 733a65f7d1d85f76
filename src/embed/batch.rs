//! Queries that arrive together share one forward pass: a [`QueryBatcher`] puts each
//! query in a bounded queue, and one worker thread embeds whatever has queued while the
//! previous batch ran (continuous batching, as text-embeddings-inference does), so
//! sixteen clients share matrix products instead of competing for two cores. A query
//! arriving at an idle batcher runs at once: no waiting for company.
//!
//! Written by hand because it is a few dozen lines over `std::sync::mpsc`, and the
//! queue bound and the overload reply are part of our service's behaviour.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use super::Encoder;
use crate::error::{Error, Result};
use crate::progress::Progress;

/// Queries waiting for the encoder at most; one more is refused as overload (503 with
/// `Retry-After` over HTTP) instead of waiting without limit. Four batches of
/// [`MAX_QUERY_BATCH`]: at about 20 ms a batch on two cores, a query waits under 100 ms.
pub const QUERY_QUEUE_CAPACITY: usize = 64;

/// Most queries embedded in one forward pass: 16 concurrent clients fit in one batch,
/// and a batch of 16 queries of ~20 tokens is still far from the embedder's token budget.
pub const MAX_QUERY_BATCH: usize = 16;

/// Where a query's vector (or the batch's error) goes.
type Reply = Receiver<Result<Vec<f32>>>;

/// One query waiting in the queue, with where its vector goes.
struct Job {
    text: String,
    reply: SyncSender<Result<Vec<f32>>>,
}

/// An [`Encoder`] whose queries are embedded in batches by one worker thread
/// ([`Encoder::encode_queries`] of the wrapped encoder); passages go straight to it.
pub struct QueryBatcher {
    encoder: Arc<dyn Encoder>,
    queue: SyncSender<Job>,
    capacity: usize,
}

impl QueryBatcher {
    /// Starts the worker thread for `encoder` with a queue of [`QUERY_QUEUE_CAPACITY`];
    /// the worker stops when the batcher is dropped.
    pub fn new(encoder: Arc<dyn Encoder>) -> Result<Self> {
        Self::with_capacity(encoder, QUERY_QUEUE_CAPACITY)
    }

    /// [`QueryBatcher::new`] with a queue of `capacity` waiting queries.
    pub fn with_capacity(encoder: Arc<dyn Encoder>, capacity: usize) -> Result<Self> {
        let (queue, jobs) = sync_channel(capacity);
        let worker = encoder.clone();
        std::thread::Builder::new()
            .name("query-batcher".into())
            .spawn(move || run_batches(worker.as_ref(), &jobs))
            .map_err(|e| Error::io("query-batcher thread", e))?;
        Ok(QueryBatcher {
            encoder,
            queue,
            capacity,
        })
    }

    /// Queues `query` without waiting: where its vector will arrive, or overload when
    /// the queue is full.
    fn submit(&self, query: &str) -> Result<Reply> {
        let (reply, answer) = sync_channel(1);
        let job = Job {
            text: query.to_string(),
            reply,
        };
        match self.queue.try_send(job) {
            Ok(()) => Ok(answer),
            Err(TrySendError::Full(_)) => Err(Error::Overloaded(format!(
                "{} questions are already waiting for the embedding model",
                self.capacity
            ))),
            Err(TrySendError::Disconnected(_)) => Err(stopped()),
        }
    }
}

fn stopped() -> Error {
    Error::Overloaded("the query embedding worker has stopped".into())
}

/// Takes the first waiting query (blocking), then every query already queued behind it
/// up to [`MAX_QUERY_BATCH`], embeds them in one call and replies to each.
fn run_batches(encoder: &dyn Encoder, jobs: &Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_QUERY_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let texts: Vec<&str> = batch.iter().map(|j| j.text.as_str()).collect();
        match encoder.encode_queries(&texts) {
            Ok(vectors) => {
                for (job, v) in batch.into_iter().zip(vectors) {
                    // The asker may be gone (its request timed out): nothing to do.
                    let _ = job.reply.send(Ok(v));
                }
            }
            Err(e) => {
                // Every query of the batch gets the error (errors are not `Clone`).
                let message = e.to_string();
                for job in batch {
                    let _ = job.reply.send(Err(Error::Embed(super::EmbedError::compute(
                        "batched query",
                        candle_core::Error::Msg(message.clone()),
                    ))));
                }
            }
        }
    }
}

impl Encoder for QueryBatcher {
    fn model_id(&self) -> &str {
        self.encoder.model_id()
    }

    fn dim(&self) -> usize {
        self.encoder.dim()
    }

    fn encode_query(&self, query: &str) -> Result<Vec<f32>> {
        self.submit(query)?
            .recv()
            .unwrap_or_else(|_| Err(stopped()))
    }

    fn encode_passages(&self, texts: &[&str], progress: &dyn Progress) -> Result<Vec<Vec<f32>>> {
        self.encoder.encode_passages(texts, progress)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::mpsc::channel;

    /// A stand-in model whose calls wait for the test's go-ahead and record batch sizes.
    struct GatedEncoder {
        started: Mutex<std::sync::mpsc::Sender<()>>,
        go: Mutex<Receiver<()>>,
        batches: Mutex<Vec<usize>>,
    }

    impl Encoder for GatedEncoder {
        fn model_id(&self) -> &str {
            "test/gated"
        }
        fn dim(&self) -> usize {
            1
        }
        fn encode_query(&self, query: &str) -> Result<Vec<f32>> {
            Ok(vec![query.len() as f32])
        }
        fn encode_queries(&self, queries: &[&str]) -> Result<Vec<Vec<f32>>> {
            self.batches.lock().unwrap().push(queries.len());
            let _ = self.started.lock().unwrap().send(());
            let _ = self.go.lock().unwrap().recv();
            queries.iter().map(|q| self.encode_query(q)).collect()
        }
        fn encode_passages(&self, _: &[&str], _: &dyn Progress) -> Result<Vec<Vec<f32>>> {
            Ok(Vec::new())
        }
    }

    #[test]
    fn queries_queued_while_the_model_is_busy_share_a_batch_and_a_full_queue_refuses() {
        let (started_tx, started) = channel();
        let (go, go_rx) = channel();
        let model = Arc::new(GatedEncoder {
            started: Mutex::new(started_tx),
            go: Mutex::new(go_rx),
            batches: Mutex::new(Vec::new()),
        });
        let batcher = QueryBatcher::with_capacity(model.clone(), 2).unwrap();
        let first = batcher.submit("a").unwrap();
        started.recv().unwrap(); // the model is busy with "a"
        let second = batcher.submit("bb").unwrap();
        let third = batcher.submit("ccc").unwrap();
        // Two are waiting: the queue is full and the next question is refused at once.
        match batcher.submit("dddd") {
            Err(Error::Overloaded(message)) => assert!(message.contains("2 questions")),
            other => panic!("expected overload, got {:?}", other.map(|_| ())),
        }
        go.send(()).unwrap();
        assert_eq!(first.recv().unwrap().unwrap(), vec![1.0]);
        started.recv().unwrap(); // the two waiting ones, in one batch
        go.send(()).unwrap();
        assert_eq!(second.recv().unwrap().unwrap(), vec![2.0]);
        assert_eq!(third.recv().unwrap().unwrap(), vec![3.0]);
        assert_eq!(*model.batches.lock().unwrap(), vec![1, 2]);
        // The queue has room again.
        let again = batcher.submit("ee").unwrap();
        started.recv().unwrap();
        go.send(()).unwrap();
        assert_eq!(again.recv().unwrap().unwrap(), vec![2.0]);
    }
}

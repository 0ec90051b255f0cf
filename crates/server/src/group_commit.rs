//! Group commit: the writes of many concurrent callers become one transaction.
//!
//! Every item goes to one writer task, which takes whatever queued up while its previous
//! write ran and hands it to the write function as one batch; each caller is answered with its
//! own item's result. A lone item is written at once; under load, many commits and statement
//! round trips become one, which is what the single SQLite writer and PostgreSQL's commit path
//! need.

use std::sync::OnceLock;

use tokio::sync::{mpsc, oneshot};

type Queued<I, O> = (I, oneshot::Sender<O>);

/// Times a writer with a short batch yields to other tasks before writing it.
const LINGER_YIELDS: usize = 2;

pub struct GroupCommit<I, O> {
    sender: OnceLock<mpsc::Sender<Queued<I, O>>>,
    /// Most items handed to one write.
    batch: usize,
    /// Items waiting for the writer; callers wait when it is this far behind.
    depth: usize,
}

/// The writer stopped (the runtime is shutting down) before answering.
#[derive(Debug)]
pub struct Stopped;

impl<I: Send + 'static, O: Send + 'static> GroupCommit<I, O> {
    pub const fn new(batch: usize, depth: usize) -> Self {
        GroupCommit { sender: OnceLock::new(), batch, depth }
    }

    /// Writes `item` in the next batch and returns its result. The writer starts on first
    /// use, in the runtime serving the caller, from `writer()`: a function from a batch to one
    /// result per item, in order.
    pub async fn submit<W, F>(&self, item: I, writer: impl FnOnce() -> W) -> Result<O, Stopped>
    where
        W: FnMut(Vec<I>) -> F + Send + 'static,
        F: Future<Output = Vec<O>> + Send + 'static,
    {
        let sender = self.sender.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(self.depth);
            tokio::spawn(run(receiver, self.batch, writer()));
            sender
        });
        let (reply, answer) = oneshot::channel();
        sender.send((item, reply)).await.map_err(|_| Stopped)?;
        answer.await.map_err(|_| Stopped)
    }
}

/// Runs until every sender is gone, so items queued at shutdown are still written and
/// answered.
async fn run<I, O, W, F>(mut receiver: mpsc::Receiver<Queued<I, O>>, batch: usize, mut write: W)
where
    W: FnMut(Vec<I>) -> F,
    F: Future<Output = Vec<O>>,
{
    let mut queued = Vec::with_capacity(batch);
    while receiver.recv_many(&mut queued, batch).await > 0 {
        // Before writing a short batch, let the requests already running reach the queue: a
        // commit costs about the same for one item as for dozens (the same index pages are
        // written either way), so a moment's wait makes the next ones nearly free.
        for _ in 0..LINGER_YIELDS {
            if queued.len() >= batch {
                break;
            }
            tokio::task::yield_now().await;
            while queued.len() < batch {
                match receiver.try_recv() {
                    Ok(item) => queued.push(item),
                    Err(_) => break,
                }
            }
        }
        let (items, replies): (Vec<_>, Vec<_>) = queued.drain(..).unzip();
        let expected = items.len();
        let results = write(items).await;
        debug_assert_eq!(results.len(), expected, "a write answers every item of its batch");
        for (reply, result) in replies.into_iter().zip(results) {
            // A caller that went away needs no answer; its item is written anyway.
            let _ = reply.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_items_share_batches_and_each_gets_its_own_result() {
        let queue = Arc::new(GroupCommit::<u32, u32>::new(64, 1024));
        let writes = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..200u32 {
            let (queue, writes) = (queue.clone(), writes.clone());
            tasks.push(tokio::spawn(async move {
                queue
                    .submit(i, move || {
                        move |items: Vec<u32>| {
                            writes.fetch_add(1, Ordering::SeqCst);
                            async move {
                                tokio::task::yield_now().await;
                                items.iter().map(|i| i * 2).collect()
                            }
                        }
                    })
                    .await
                    .unwrap()
            }));
        }
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap(), i as u32 * 2);
        }
        let writes = writes.load(Ordering::SeqCst);
        assert!((4..200).contains(&writes), "200 items took {writes} writes; batches of at most 64 were expected");
    }
}

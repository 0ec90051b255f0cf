//! Group commit for agent heartbeats: a fleet's most frequent write.
//!
//! Every heartbeat goes to one writer task, which records whatever has queued up while the
//! previous statement ran as one multi-row update and answers each heartbeat with its own
//! result (recorded, retired, unknown). A lone heartbeat is recorded at once; under load, many
//! commits and statement round trips become one.

use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};

use certctl_api::AgentHeartbeat;
use certctl_store::Store;

use crate::AppState;
use crate::clock::Clock;
use crate::error::{ApiError, ApiResult};

/// Heartbeats waiting for the writer; senders wait when it is this far behind.
const QUEUE_DEPTH: usize = 4096;
/// Most heartbeats recorded in one statement (six parameters each).
const BATCH: usize = 256;

type Queued = ((String, AgentHeartbeat), oneshot::Sender<certctl_store::Result<()>>);

#[derive(Default)]
pub struct HeartbeatQueue {
    sender: OnceLock<mpsc::Sender<Queued>>,
}

impl HeartbeatQueue {
    /// Records one heartbeat through the writer. The writer starts on first use, in the runtime
    /// that serves the requests.
    pub async fn record(&self, s: &AppState, agent_id: String, heartbeat: AgentHeartbeat) -> ApiResult<()> {
        let sender = self.sender.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
            tokio::spawn(write_loop(s.store.clone(), s.clock.clone(), receiver));
            sender
        });
        let (reply, answer) = oneshot::channel();
        let stopped = || ApiError::Internal("the heartbeat writer has stopped".into());
        sender.send(((agent_id, heartbeat), reply)).await.map_err(|_| stopped())?;
        Ok(answer.await.map_err(|_| stopped())??)
    }
}

/// The writer: runs until every sender is gone, so heartbeats queued at shutdown are still
/// recorded and answered.
async fn write_loop(store: Store, clock: Arc<dyn Clock>, mut receiver: mpsc::Receiver<Queued>) {
    let mut queued = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut queued, BATCH).await > 0 {
        let (beats, replies): (Vec<_>, Vec<_>) = queued.drain(..).unzip();
        let now = clock.now();
        match store.record_heartbeats(&beats, now).await {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    // A caller that went away needs no answer; its heartbeat is recorded anyway.
                    let _ = reply.send(result);
                }
            }
            // The batch statement failed as a whole: each heartbeat gets its own attempt, so
            // one bad row cannot fail the others.
            Err(e) => {
                tracing::warn!(error = %e, heartbeats = beats.len(), "batched heartbeat write failed; writing one by one");
                for ((id, hb), reply) in beats.iter().zip(replies) {
                    let _ = reply.send(store.record_heartbeat(id, hb, now).await);
                }
            }
        }
    }
}

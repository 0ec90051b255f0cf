//! Group commit for agent heartbeats: a fleet's most frequent write.
//!
//! Every heartbeat goes to one writer task, which records whatever has queued up while the
//! previous statement ran as one multi-row update and answers each heartbeat with its own
//! result (recorded, retired, unknown). A lone heartbeat is recorded at once; under load, many
//! commits and statement round trips become one.

use certctl_api::AgentHeartbeat;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::group_commit::GroupCommit;

/// Heartbeats waiting for the writer; senders wait when it is this far behind.
const QUEUE_DEPTH: usize = 4096;
/// Most heartbeats recorded in one statement (six parameters each).
const BATCH: usize = 256;

pub struct HeartbeatQueue(GroupCommit<(String, AgentHeartbeat), certctl_store::Result<()>>);

impl Default for HeartbeatQueue {
    fn default() -> Self {
        HeartbeatQueue(GroupCommit::new(BATCH, QUEUE_DEPTH))
    }
}

impl HeartbeatQueue {
    /// Records one heartbeat through the writer.
    pub async fn record(&self, s: &AppState, agent_id: String, heartbeat: AgentHeartbeat) -> ApiResult<()> {
        let (store, clock) = (s.store.clone(), s.clock.clone());
        let writer = move || {
            move |beats: Vec<(String, AgentHeartbeat)>| {
                let (store, now) = (store.clone(), clock.now());
                async move {
                    match store.record_heartbeats(&beats, now).await {
                        Ok(results) => results,
                        // The batch statement failed as a whole: each heartbeat gets its own
                        // attempt, so one bad row cannot fail the others.
                        Err(e) => {
                            tracing::warn!(error = %e, heartbeats = beats.len(), "batched heartbeat write failed; writing one by one");
                            let mut results = Vec::with_capacity(beats.len());
                            for (id, hb) in &beats {
                                results.push(store.record_heartbeat(id, hb, now).await);
                            }
                            results
                        }
                    }
                }
            }
        };
        let stopped = || ApiError::Internal("the heartbeat writer has stopped".into());
        Ok(self.0.submit((agent_id, heartbeat), writer).await.map_err(|_| stopped())??)
    }
}

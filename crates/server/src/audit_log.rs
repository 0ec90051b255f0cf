//! The writer of API-call audit records.
//!
//! Handlers must not wait on a database write for a record of a read, so calls are queued to a
//! bounded channel and written in batches (one transaction, one chain-lock acquisition per
//! batch). A full queue makes callers wait rather than drop records, and shutdown drains the
//! queue before the store closes. Lifecycle changes are audited by the store itself, in the
//! transaction of the change.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use certctl_store::{AuditEntry, Store};

use crate::clock::Clock;

const QUEUE: usize = 8192;
const BATCH: usize = 512;

#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<AuditEntry>,
}

impl AuditLog {
    /// Starts the writer task; it ends once every `AuditLog` clone is dropped and the queue is
    /// written out.
    pub fn start(store: Store, clock: Arc<dyn Clock>) -> (AuditLog, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (AuditLog { tx }, tokio::spawn(write_loop(store, clock, rx)))
    }

    pub async fn record(&self, entry: AuditEntry) {
        if self.tx.send(entry).await.is_err() {
            tracing::error!("audit writer has stopped; an API call record was not written");
        }
    }
}

async fn write_loop(store: Store, clock: Arc<dyn Clock>, mut rx: mpsc::Receiver<AuditEntry>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let mut attempt = 0u32;
        loop {
            match store.record_audit(&batch, clock.now()).await {
                Ok(()) => break,
                Err(e) if attempt < 5 => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, records = batch.len(), "audit write failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 * 2u64.pow(attempt))).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, records = batch.len(), "audit write failed; records lost");
                    break;
                }
            }
        }
        batch.clear();
    }
}

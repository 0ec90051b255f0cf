//! The writes of new-order and finalize through group commit: concurrent orders are created,
//! and concurrent finalized orders filed, in one transaction per batch instead of one each, so
//! a burst of ACME clients costs the database (SQLite's single writer, PostgreSQL's audit-chain
//! lock) a few commits rather than one per request.

use certctl_store::{AcmeIssuance, AcmeOrder, Actor, NewAcmeOrder, StoreError};

use super::problem::AcmeError;
use crate::AppState;
use crate::group_commit::GroupCommit;

/// Items waiting for a writer; callers wait when it is this far behind.
const QUEUE_DEPTH: usize = 1024;
/// Most items written in one transaction.
const BATCH: usize = 64;

pub struct OrderWrites {
    created: GroupCommit<NewAcmeOrder, Result<AcmeOrder, StoreError>>,
    filed: GroupCommit<(AcmeIssuance, Actor), Result<bool, StoreError>>,
}

impl Default for OrderWrites {
    fn default() -> Self {
        OrderWrites { created: GroupCommit::new(BATCH, QUEUE_DEPTH), filed: GroupCommit::new(BATCH, QUEUE_DEPTH) }
    }
}

fn stopped() -> AcmeError {
    AcmeError::Internal("the ACME order writer has stopped".into())
}

impl OrderWrites {
    /// Creates `order` with its authorizations and challenges, as the store reads it back.
    pub async fn create(&self, s: &AppState, order: NewAcmeOrder) -> Result<AcmeOrder, AcmeError> {
        let (store, clock) = (s.store.clone(), s.clock.clone());
        let writer = move || {
            move |orders: Vec<NewAcmeOrder>| {
                let (store, now) = (store.clone(), clock.now());
                async move { store.create_acme_orders(&orders, now).await }
            }
        };
        self.created.submit(order, writer).await.map_err(|_| stopped())?.map_err(AcmeError::from)
    }

    /// Files a finalized order's certificate; false when another finalize filed first.
    pub async fn file(&self, s: &AppState, filing: AcmeIssuance, actor: Actor) -> Result<bool, AcmeError> {
        let (store, clock) = (s.store.clone(), s.clock.clone());
        let writer = move || {
            move |filings: Vec<(AcmeIssuance, Actor)>| {
                let (store, now) = (store.clone(), clock.now());
                async move { store.finish_acme_orders(&filings, now).await }
            }
        };
        self.filed.submit((filing, actor), writer).await.map_err(|_| stopped())?.map_err(AcmeError::from)
    }
}

//! Garbage collection of ACME state that has expired: spent nonces (which no longer verify),
//! orders that never became valid once past expiry and a grace period (their authorizations and
//! challenges go with them), and rate-limit windows that have ended. Runs from the scheduler in
//! bounded batches, so one pass never holds a long transaction.

use time::Duration;

use certctl_store::AcmeGcReport;

use crate::AppState;

/// How long an expired order stays readable (a client polling it sees `invalid` or the expiry,
/// not a 404) before it is removed.
pub const ORDER_GRACE: Duration = Duration::days(1);
/// Rows of each kind one batch removes.
pub const BATCH: i64 = 500;
/// Batches one pass runs at most; what is left waits for the next pass.
const MAX_BATCHES: usize = 20;

/// One pass: batches until a batch comes back short or the pass's bound is reached.
pub async fn collect(s: &AppState) -> anyhow::Result<AcmeGcReport> {
    let mut total = AcmeGcReport::default();
    for _ in 0..MAX_BATCHES {
        let now = s.clock.now();
        let r = s.store.acme_gc(now, now - ORDER_GRACE, BATCH).await?;
        total.nonces += r.nonces;
        total.orders += r.orders;
        total.rate_windows += r.rate_windows;
        let full = |n: u64| n >= BATCH as u64;
        if !(full(r.nonces) || full(r.orders) || full(r.rate_windows)) {
            break;
        }
    }
    if total.total() > 0 {
        tracing::info!(
            nonces = total.nonces,
            orders = total.orders,
            rate_windows = total.rate_windows,
            "ACME garbage collected"
        );
    }
    Ok(total)
}

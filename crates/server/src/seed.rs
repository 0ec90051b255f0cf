//! Demo data for a first look at a living system.

use time::OffsetDateTime;

use certctl_store::Store;

/// Fills an empty store with demo data and returns a one-line summary.
pub async fn seed_demo(_store: &Store, _now: OffsetDateTime) -> anyhow::Result<String> {
    anyhow::bail!("seed-demo is not available yet")
}

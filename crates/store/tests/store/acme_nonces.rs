//! Spent ACME nonces: single use across batches and within one batch, and the purge of
//! expired records.

use certctl_store::testing::TestDb;

use crate::support::at;

fn n(v: &str) -> String {
    v.to_owned()
}

pub async fn nonce_batches_spend_each_nonce_once(db: &TestDb) {
    let s = &db.store().await;
    assert!(s.spend_acme_nonce("a", at(600), false, at(0)).await.unwrap());
    assert!(!s.spend_acme_nonce("a", at(600), false, at(0)).await.unwrap(), "a nonce spends once");

    // A batch answers per nonce, in order: a nonce spent before, a replay inside the batch,
    // and fresh ones.
    let batch = [(n("b"), at(600)), (n("a"), at(600)), (n("c"), at(600)), (n("b"), at(600)), (n("d"), at(5))];
    let spent = s.spend_acme_nonces(&batch, false, at(0)).await.unwrap();
    assert_eq!(spent, vec![true, false, true, false, true]);

    // A later batch sees every nonce of the earlier one as spent.
    let again = s.spend_acme_nonces(&[(n("c"), at(600)), (n("e"), at(600))], false, at(1)).await.unwrap();
    assert_eq!(again, vec![false, true]);

    // Purging at a time past `d`'s expiry forgets `d` only (it no longer verifies anyway).
    let purged = s.spend_acme_nonces(&[(n("f"), at(600))], true, at(10)).await.unwrap();
    assert_eq!(purged, vec![true]);
    let after = s.spend_acme_nonces(&[(n("d"), at(600)), (n("a"), at(600))], false, at(10)).await.unwrap();
    assert_eq!(after, vec![true, false], "only the expired record was purged");
}

pub async fn large_nonce_batches_span_statements(db: &TestDb) {
    let s = &db.store().await;
    let batch: Vec<_> = (0..700).map(|i| (format!("nonce-{i}"), at(600))).collect();
    let spent = s.spend_acme_nonces(&batch, false, at(0)).await.unwrap();
    assert_eq!(spent.len(), 700);
    assert!(spent.iter().all(|&b| b), "every fresh nonce of a 700-nonce batch is spent");
    let replay = s.spend_acme_nonces(&batch[650..], false, at(0)).await.unwrap();
    assert!(replay.iter().all(|&b| !b));
}

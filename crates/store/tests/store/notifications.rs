//! The notification outbox: dedup on insert, leased claims, the retry ladder to `dead`, requeue
//! and read rules, and lists with real totals.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;

use certctl_api::{NotificationStatus, NotificationType, SeverityTier};
use certctl_store::testing::TestDb;
use certctl_store::{
    ClaimKind, FailureOutcome, Listing, NewNotification, NotificationQuery, Paging, RetryPolicy, StoreError,
    enqueue_notifications,
};

use crate::support::{T0, alice, at, newest_audit};

const LEASE: Duration = Duration::from_secs(60);

fn policy() -> RetryPolicy {
    RetryPolicy { base: Duration::from_secs(60), cap: Duration::from_secs(300), max_attempts: 5 }
}

fn item(channel: &str, dedup: Option<&str>) -> NewNotification {
    NewNotification {
        notification_type: NotificationType::Test,
        channel: channel.to_owned(),
        recipient: "ops@example.com".into(),
        certificate_id: None,
        subject: "subject".into(),
        message: "message".into(),
        payload: json!({ "k": 1 }),
        severity: SeverityTier::Warning,
        dedup_key: dedup.map(str::to_owned),
    }
}

fn total<T>(l: &Listing<T>) -> i64 {
    match l {
        Listing::Page { total, .. } => *total,
        Listing::Cursor { .. } => panic!("page mode expected"),
    }
}

pub async fn notification_enqueue_dedups_in_the_callers_transaction(db: &TestDb) {
    let store = db.store().await;
    let mut tx = store.begin().await.unwrap();
    let n =
        enqueue_notifications(&mut tx, &[item("hook", Some("k1")), item("hook", Some("k1")), item("hook", None)], T0)
            .await
            .unwrap();
    assert_eq!(n, 2, "the repeated key is skipped");
    drop(tx);
    let all = store.list_notifications(&NotificationQuery::default(), &Paging::Page { page: 1, per_page: 10 }).await;
    assert_eq!(total(&all.unwrap()), 0, "a rolled-back transaction leaves no notification");

    let mut tx = store.begin().await.unwrap();
    assert_eq!(enqueue_notifications(&mut tx, &[item("hook", Some("k1"))], T0).await.unwrap(), 1);
    tx.commit().await.unwrap();
    assert_eq!(
        store.enqueue_notifications(&[item("hook", Some("k1"))], at(5)).await.unwrap(),
        0,
        "across transactions"
    );
    let all = store.list_notifications(&NotificationQuery::default(), &Paging::Page { page: 1, per_page: 10 }).await;
    let all = all.unwrap();
    assert_eq!(total(&all), 1);
    assert_eq!(all.data()[0].status, NotificationStatus::Pending);
    assert_eq!(all.data()[0].retry_count, 0);
    assert_eq!(all.data()[0].next_retry_at, None);
}

pub async fn notification_retry_ladder_reaches_dead_then_requeue(db: &TestDb) {
    let store = db.store().await;
    store.enqueue_notifications(&[item("hook", None)], T0).await.unwrap();
    let p = policy();
    let mut now = T0;
    let mut claimed = store.claim_notifications(ClaimKind::Pending, now, LEASE, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let id = claimed[0].notification.id.clone();
    assert!(store.claim_notifications(ClaimKind::Pending, now, LEASE, 10).await.unwrap().is_empty(), "leased");
    let expected_waits = [60, 120, 240, 300];
    for (attempt, wait) in expected_waits.iter().enumerate() {
        let c = claimed.pop().unwrap();
        let out = store.record_notification_failure(&id, c.lease, "HTTP 500", &p, now).await.unwrap();
        let next = now + time::Duration::seconds(*wait);
        assert_eq!(out, FailureOutcome::Retry { retry_count: attempt as i64 + 1, next_retry_at: next });
        let n = store.notification(&id).await.unwrap();
        assert_eq!(n.status, NotificationStatus::Failed);
        assert_eq!(n.next_retry_at, Some(next), "the first failure sets next_retry_at too");
        assert_eq!(n.last_error.as_deref(), Some("HTTP 500"));
        let early = store.claim_notifications(ClaimKind::DueRetries, next - time::Duration::seconds(1), LEASE, 10);
        assert!(early.await.unwrap().is_empty(), "not due before next_retry_at");
        now = next;
        claimed = store.claim_notifications(ClaimKind::DueRetries, now, LEASE, 10).await.unwrap();
        assert_eq!(claimed.len(), 1);
    }
    let c = claimed.pop().unwrap();
    let out = store.record_notification_failure(&id, c.lease, "HTTP 503", &p, now).await.unwrap();
    assert_eq!(out, FailureOutcome::Dead { retry_count: 5 });
    let n = store.notification(&id).await.unwrap();
    assert_eq!((n.status, n.retry_count, n.next_retry_at), (NotificationStatus::Dead, 5, None));
    let later = now + time::Duration::days(1);
    assert!(store.claim_notifications(ClaimKind::DueRetries, later, LEASE, 10).await.unwrap().is_empty());

    let dead = NotificationQuery { status: Some(NotificationStatus::Dead), ..Default::default() };
    assert_eq!(total(&store.list_notifications(&dead, &Paging::Page { page: 1, per_page: 5 }).await.unwrap()), 1);

    let r = store.requeue_notification(&id, &alice(), later).await.unwrap();
    assert_eq!((r.status, r.retry_count, r.next_retry_at, r.last_error), (NotificationStatus::Pending, 0, None, None));
    assert_eq!(newest_audit(&store, 1).await[0].action, "notification_requeued");
    let c = store.claim_notifications(ClaimKind::Pending, later, LEASE, 10).await.unwrap().pop().unwrap();
    assert!(store.record_notification_sent(&id, c.lease, later).await.unwrap());
    let n = store.notification(&id).await.unwrap();
    assert_eq!((n.status, n.sent_at), (NotificationStatus::Sent, Some(later)));

    match store.requeue_notification(&id, &alice(), later).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("sent"), "{m}"),
        other => panic!("requeue of a sent row: {other:?}"),
    }
    store.mark_notification_read(&id, &alice(), later).await.unwrap();
    assert!(matches!(store.requeue_notification(&id, &alice(), later).await, Err(StoreError::Conflict(_))));
    assert!(matches!(
        store.requeue_notification("notif-missing", &alice(), later).await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn notification_lost_lease_changes_nothing(db: &TestDb) {
    let store = db.store().await;
    store.enqueue_notifications(&[item("hook", None)], T0).await.unwrap();
    let first = store.claim_notifications(ClaimKind::Pending, T0, LEASE, 1).await.unwrap().pop().unwrap();
    let id = first.notification.id.clone();
    // The first worker stalls past its lease; a second one claims and delivers.
    let after = T0 + time::Duration::seconds(61);
    let second = store.claim_notifications(ClaimKind::Pending, after, LEASE, 1).await.unwrap().pop().unwrap();
    assert!(store.record_notification_sent(&id, second.lease, after).await.unwrap());
    assert!(!store.record_notification_sent(&id, first.lease, after).await.unwrap());
    let out = store.record_notification_failure(&id, first.lease, "late", &policy(), after).await.unwrap();
    assert_eq!(out, FailureOutcome::LeaseLost);
    assert!(!store.record_notification_undeliverable(&id, first.lease, "late", after).await.unwrap());
    assert_eq!(store.notification(&id).await.unwrap().status, NotificationStatus::Sent);
}

pub async fn notification_batch_sent_respects_each_lease(db: &TestDb) {
    let store = db.store().await;
    store.enqueue_notifications(&[item("hook", None), item("hook", None), item("hook", None)], T0).await.unwrap();
    let batch = store.claim_notifications(ClaimKind::Pending, T0, LEASE, 3).await.unwrap();
    assert_eq!(batch.len(), 3);
    let lease = batch[0].lease;
    assert!(batch.iter().all(|c| c.lease == lease), "one claim leases its rows together");
    let ids: Vec<String> = batch.iter().map(|c| c.notification.id.clone()).collect();
    // The third row reaches an end state on another path before the batch is recorded.
    let later = T0 + time::Duration::seconds(10);
    let stolen = &ids[2];
    assert!(store.record_notification_undeliverable(stolen, lease, "moved", later).await.unwrap());

    let recorded: HashSet<String> =
        store.record_notifications_sent(&ids, lease, later).await.unwrap().into_iter().collect();
    assert_eq!(recorded, ids[..2].iter().cloned().collect::<HashSet<_>>(), "only rows still under the lease");
    for id in &ids[..2] {
        let n = store.notification(id).await.unwrap();
        assert_eq!(n.status, NotificationStatus::Sent);
        assert_eq!(n.sent_at, Some(later));
    }
    assert_eq!(store.notification(stolen).await.unwrap().status, NotificationStatus::Dead);
    assert!(store.record_notifications_sent(&ids, lease, later).await.unwrap().is_empty(), "recorded once");
    assert!(store.record_notifications_sent(&[], lease, later).await.unwrap().is_empty());
}

pub async fn notification_unconfigured_channel_goes_dead(db: &TestDb) {
    let store = db.store().await;
    store.enqueue_notifications(&[item("nowhere", None)], T0).await.unwrap();
    let c = store.claim_notifications(ClaimKind::Pending, T0, LEASE, 1).await.unwrap().pop().unwrap();
    let msg = "channel 'nowhere' is not configured";
    assert!(store.record_notification_undeliverable(&c.notification.id, c.lease, msg, T0).await.unwrap());
    let n = store.notification(&c.notification.id).await.unwrap();
    assert_eq!((n.status, n.next_retry_at, n.last_error.as_deref()), (NotificationStatus::Dead, None, Some(msg)));
    assert!(matches!(
        store.mark_notification_read("notif-missing", &alice(), T0).await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn notification_concurrent_claimers_never_share_a_row(db: &TestDb) {
    let store = db.store().await;
    let items: Vec<NewNotification> = (0..60).map(|_| item("hook", None)).collect();
    store.enqueue_notifications(&items, T0).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = db.store().await;
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = store.claim_notifications(ClaimKind::Pending, T0, LEASE, 3).await.unwrap();
                if batch.is_empty() {
                    break;
                }
                got.extend(batch.into_iter().map(|c| c.notification.id));
            }
            got
        }));
    }
    let mut seen = HashSet::new();
    for t in tasks {
        for id in t.await.unwrap() {
            assert!(seen.insert(id.clone()), "{id} claimed twice");
        }
    }
    assert_eq!(seen.len(), 60);
}

pub async fn notification_list_filters_and_pages(db: &TestDb) {
    let store = db.store().await;
    let mut items: Vec<NewNotification> = (0..7).map(|_| item("hook", None)).collect();
    items.extend(
        (0..3).map(|_| NewNotification { notification_type: NotificationType::Revocation, ..item("slack", None) }),
    );
    store.enqueue_notifications(&items, T0).await.unwrap();
    let q = NotificationQuery { channel: Some("hook".into()), ..Default::default() };
    let page = store.list_notifications(&q, &Paging::Page { page: 2, per_page: 5 }).await.unwrap();
    assert_eq!((total(&page), page.data().len()), (7, 2));
    let q = NotificationQuery { notification_type: Some(NotificationType::Revocation), ..Default::default() };
    let page = store.list_notifications(&q, &Paging::Page { page: 1, per_page: 5 }).await.unwrap();
    assert_eq!(total(&page), 3);
    assert!(page.data().iter().all(|n| n.channel == "slack"));
    let mut cursor = None;
    let mut seen = HashSet::new();
    for _ in 0..10 {
        let Listing::Cursor { data, next_cursor, .. } = store
            .list_notifications(&NotificationQuery::default(), &Paging::Cursor { cursor: cursor.clone(), size: 4 })
            .await
            .unwrap()
        else {
            panic!("cursor mode")
        };
        seen.extend(data.into_iter().map(|n| n.id));
        cursor = next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), 10);
}

/// One step of a random delivery history.
#[derive(Debug, Clone, Copy)]
enum Step {
    Succeed,
    Fail,
    Requeue,
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![3 => Just(Step::Fail), 1 => Just(Step::Succeed), 1 => Just(Step::Requeue)]
}

/// Random success/failure/requeue sequences against the real store: the state machine keeps
/// its invariants after every step (sent only after a delivery, dead exactly at the budget,
/// `next_retry_at` set exactly while failed and spaced by the backoff, nothing claimable once
/// sent or dead).
pub fn notification_state_machine_invariants(backend: certctl_store::Backend) {
    use proptest::prelude::*;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = ProptestConfig { cases: 16, ..ProptestConfig::default() };
    proptest!(config, |(steps in proptest::collection::vec(step(), 1..14))| {
        rt.block_on(async {
            let Some(db) = TestDb::new(backend).await else { return };
            let store = db.store().await;
            let p = RetryPolicy { base: Duration::from_secs(10), cap: Duration::from_secs(60), max_attempts: 4 };
            store.enqueue_notifications(&[item("hook", None)], T0).await.unwrap();
            let mut now = T0;
            let mut failures = 0i64;
            let mut delivered = false;
            for s in steps {
                now += time::Duration::hours(1);
                let id = store
                    .list_notifications(&NotificationQuery::default(), &Paging::Page { page: 1, per_page: 1 })
                    .await
                    .unwrap()
                    .data()[0]
                    .id
                    .clone();
                let before = store.notification(&id).await.unwrap();
                let mut claimed = store.claim_notifications(ClaimKind::Pending, now, LEASE, 1).await.unwrap();
                claimed.extend(store.claim_notifications(ClaimKind::DueRetries, now, LEASE, 1).await.unwrap());
                let terminal = matches!(before.status, NotificationStatus::Sent | NotificationStatus::Dead | NotificationStatus::Read);
                assert_eq!(claimed.is_empty(), terminal, "claimable exactly while in delivery: {before:?}");
                match (s, claimed.pop()) {
                    (Step::Succeed, Some(c)) => {
                        assert!(store.record_notification_sent(&id, c.lease, now).await.unwrap());
                        delivered = true;
                    }
                    (Step::Fail, Some(c)) => {
                        store.record_notification_failure(&id, c.lease, "boom", &p, now).await.unwrap();
                        failures += 1;
                    }
                    (Step::Requeue, _) => {
                        let r = store.requeue_notification(&id, &alice(), now).await;
                        if matches!(before.status, NotificationStatus::Dead | NotificationStatus::Failed) {
                            r.unwrap();
                            failures = 0;
                        } else {
                            assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
                        }
                        // A claim made above is released by letting its lease lapse.
                        now += time::Duration::seconds(61);
                    }
                    (_, None) => {}
                }
                let n = store.notification(&id).await.unwrap();
                assert_eq!(n.status == NotificationStatus::Sent, delivered, "{n:?}");
                assert_eq!(n.sent_at.is_some(), delivered);
                assert_eq!(n.retry_count, failures, "{n:?}");
                assert_eq!(n.status == NotificationStatus::Dead, !delivered && failures >= 4, "{n:?}");
                assert_eq!(n.next_retry_at.is_some(), n.status == NotificationStatus::Failed, "{n:?}");
                if n.status == NotificationStatus::Failed && n.updated_at == now {
                    let wait = p.backoff(n.retry_count - 1);
                    assert_eq!(n.next_retry_at, Some(now + time::Duration::try_from(wait).unwrap()));
                }
                if delivered {
                    break;
                }
            }
            db.cleanup().await;
        });
    });
}

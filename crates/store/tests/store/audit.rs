//! The audit trail: one record per change, append-only in the database itself, and a hash
//! chain that exposes altered and removed records.

use aws_lc_rs::digest;
use certctl_api::{ActorType, AuditFilter, Role, UpdateOwner, UpdateTeam};
use certctl_store::audit::GENESIS_HASH;
use certctl_store::testing::TestDb;
use certctl_store::{Actor, AuditEntry, AuditFilterParsed, Backend, NewApiKey, Paging, Store, StoreError};
use serde_json::json;

use crate::support::{Raw, T0, alice, at, audit_count, expect_one_audit, newest_audit, owner_req, team_req};

fn entry(i: usize) -> AuditEntry {
    AuditEntry::new(format!("actor-{}", i % 3), ActorType::User, "api_get", "api", format!("/r/{i}"), json!({"i": i}))
}

/// Appends `n` API-call records in batches of `batch`.
async fn append_records(store: &Store, n: usize, batch: usize) {
    let entries: Vec<AuditEntry> = (0..n).map(entry).collect();
    for (i, chunk) in entries.chunks(batch).enumerate() {
        store.record_audit(chunk, at(i as i64)).await.unwrap();
    }
}

async fn assert_intact(store: &Store, expected: u64) {
    let report = store.verify_audit_chain().await.unwrap();
    assert_eq!(report.first_broken, None);
    assert_eq!(report.checked, expected);
}

pub async fn every_mutation_writes_one_audit_row(db: &TestDb) {
    let store = db.store().await;
    let bob = Actor::user("bob");
    let mut n = audit_count(&store).await;
    assert_eq!(n, 0);

    let team = store.create_team(&team_req("One"), &alice(), T0).await.unwrap();
    expect_one_audit(&store, &mut n, "team_created", &team.id, &alice()).await;
    let update = UpdateTeam { description: Some("d".into()), ..UpdateTeam::default() };
    store.update_team(&team.id, &update, &bob, at(1)).await.unwrap();
    expect_one_audit(&store, &mut n, "team_updated", &team.id, &bob).await;

    let owner = store.create_owner(&owner_req("Ann", &team.id), &alice(), at(2)).await.unwrap();
    expect_one_audit(&store, &mut n, "owner_created", &owner.id, &alice()).await;
    let update = UpdateOwner { name: Some(crate::support::name("Anne")), ..UpdateOwner::default() };
    store.update_owner(&owner.id, &update, &bob, at(3)).await.unwrap();
    expect_one_audit(&store, &mut n, "owner_updated", &owner.id, &bob).await;
    store.delete_owner(&owner.id, &bob, at(4)).await.unwrap();
    expect_one_audit(&store, &mut n, "owner_deleted", &owner.id, &bob).await;
    store.delete_team(&team.id, &bob, at(5)).await.unwrap();
    expect_one_audit(&store, &mut n, "team_deleted", &team.id, &bob).await;

    let hash = "ab".repeat(32);
    let new = NewApiKey { name: "ci".into(), role: Role::Operator, key_hash: hash.clone(), created_by: "alice".into() };
    let key = store.create_api_key(&new, &alice(), at(6)).await.unwrap();
    expect_one_audit(&store, &mut n, "api_key_created", &key.id, &alice()).await;
    store.delete_api_key(&key.id, &Actor::system(), at(7)).await.unwrap();
    expect_one_audit(&store, &mut n, "api_key_deleted", &key.id, &Actor::system()).await;

    store.record_audit(&[entry(1)], at(8)).await.unwrap();
    expect_one_audit(&store, &mut n, "api_get", "/r/1", &Actor::user("actor-1")).await;

    let events = newest_audit(&store, 100).await;
    let types: Vec<&str> = events.iter().rev().map(|e| e.resource_type.as_str()).collect();
    assert_eq!(types, ["team", "team", "owner", "owner", "owner", "team", "api_key", "api_key", "api"]);
    assert_eq!(events[8].timestamp, T0, "records carry the time of their change");
    for e in &events {
        assert!(!e.details.to_string().contains(&hash), "a key hash leaked into {}: {}", e.action, e.details);
    }
    assert_intact(&store, 9).await;
}

pub async fn failed_mutations_write_no_audit_row(db: &TestDb) {
    let store = db.store().await;
    let team = store.create_team(&team_req("One"), &alice(), T0).await.unwrap();
    store.create_owner(&owner_req("Ann", &team.id), &alice(), T0).await.unwrap();
    let new = NewApiKey { name: "ci".into(), role: Role::Viewer, key_hash: "cd".repeat(32), created_by: "t".into() };
    store.create_api_key(&new, &alice(), T0).await.unwrap();
    let before = audit_count(&store).await;
    assert_eq!(before, 3);

    assert!(store.create_team(&team_req("One"), &alice(), at(1)).await.is_err());
    assert!(store.create_owner(&owner_req("X", "missing"), &alice(), at(1)).await.is_err());
    assert!(store.delete_team(&team.id, &alice(), at(1)).await.is_err());
    assert!(store.update_team("missing", &UpdateTeam::default(), &alice(), at(1)).await.is_err());
    assert!(store.delete_owner("missing", &alice(), at(1)).await.is_err());
    assert!(store.create_api_key(&new, &alice(), at(1)).await.is_err());
    assert!(store.delete_api_key("missing", &alice(), at(1)).await.is_err());

    assert_eq!(audit_count(&store).await, before, "a refused change leaves no audit record");
    assert_intact(&store, 3).await;
}

pub async fn database_rejects_update_and_delete_of_audit_rows(db: &TestDb) {
    let store = db.store().await;
    append_records(&store, 5, 5).await;
    let mut raw = Raw::connect(db).await;
    let mut statements = vec![
        "UPDATE audit_events SET actor = 'mallory'",
        "UPDATE audit_events SET details = '{}' WHERE seq = 3",
        "DELETE FROM audit_events",
        "DELETE FROM audit_events WHERE seq = 5",
    ];
    if db.backend() == Backend::Postgres {
        statements.push("TRUNCATE audit_events");
    }
    for sql in statements {
        let e = raw.exec(sql).await.expect_err(sql);
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
    raw.close().await;
    assert_eq!(audit_count(&store).await, 5);
    assert!(newest_audit(&store, 5).await.iter().all(|e| e.actor.starts_with("actor-")));
    assert_intact(&store, 5).await;
}

pub async fn chain_verifies_after_many_appends(db: &TestDb) {
    let store = db.store().await;
    assert_intact(&store, 0).await;
    let mut total = 0;
    // Batch sizes around the store's 50-row insert chunks.
    for (i, size) in [1usize, 2, 49, 50, 51, 120, 7].into_iter().enumerate() {
        let entries: Vec<AuditEntry> = (total..total + size).map(entry).collect();
        store.record_audit(&entries, at(i as i64)).await.unwrap();
        total += size;
        store.create_team(&team_req(&format!("team {i}")), &alice(), at(i as i64)).await.unwrap();
        total += 1;
    }
    assert_intact(&store, total as u64).await;

    let mut events = newest_audit(&store, 500).await;
    events.reverse();
    assert_eq!(events.len(), total);
    assert_eq!(events[0].prev_hash, GENESIS_HASH);
    for pair in events.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash, "each record links to the one before");
    }
    let mut hashes: Vec<&str> = events.iter().map(|e| e.hash.as_str()).collect();
    hashes.sort_unstable();
    hashes.dedup();
    assert_eq!(hashes.len(), total, "every record hash is distinct");
}

/// Writers on many connections still extend a single chain with no gaps or forks.
pub async fn concurrent_appends_keep_one_chain(db: &TestDb) {
    let store = db.store().await;
    let mut tasks = Vec::new();
    for t in 0..8usize {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10usize {
                let entries: Vec<AuditEntry> = (0..1 + (t + i) % 3).map(|j| entry(t * 100 + i * 10 + j)).collect();
                store.record_audit(&entries, at(i as i64)).await.unwrap();
            }
            store.create_team(&team_req(&format!("team {t}")), &alice(), T0).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let expected: usize = (0..8).map(|t| (0..10).map(|i| 1 + (t + i) % 3).sum::<usize>() + 1).sum();
    assert_eq!(audit_count(&store).await, expected as i64);
    assert_intact(&store, expected as u64).await;
}

/// Runs `statement` with the append-only triggers out of the way, as someone with write access
/// to the database could.
async fn tamper(db: &TestDb, statement: &str) {
    let mut raw = Raw::connect(db).await;
    match db.backend() {
        Backend::Sqlite => {
            raw.must("DROP TRIGGER IF EXISTS audit_events_no_update").await;
            raw.must("DROP TRIGGER IF EXISTS audit_events_no_delete").await;
            assert_eq!(raw.must(statement).await, 1, "{statement}");
        }
        Backend::Postgres => {
            raw.must("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete").await;
            assert_eq!(raw.must(statement).await, 1, "{statement}");
            raw.must("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update_delete").await;
        }
    }
    raw.close().await;
}

pub async fn altered_row_is_detected(db: &TestDb) {
    let store = db.store().await;
    append_records(&store, 10, 3).await;
    assert_intact(&store, 10).await;
    tamper(db, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 5").await;
    let report = store.verify_audit_chain().await.unwrap();
    let (seq, reason) = report.first_broken.expect("an altered record breaks the chain");
    assert_eq!(seq, 5);
    assert!(reason.contains("altered"), "{reason}");
    assert_eq!(report.checked, 4, "records before the altered one verify");
}

/// The record hash as documented in the store: SHA-256 over the big-endian seq and time, then
/// each text field (id, actor, actor_type, action, resource_type, resource_id, details,
/// prev_hash) prefixed with its big-endian u64 length.
fn record_hash(seq: i64, ts: i64, texts: [&str; 8]) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(&seq.to_be_bytes());
    ctx.update(&ts.to_be_bytes());
    for t in texts {
        ctx.update(&(t.len() as u64).to_be_bytes());
        ctx.update(t.as_bytes());
    }
    hex::encode(ctx.finish())
}

/// An attacker who alters a record and recomputes its hash is caught at the next record,
/// whose link no longer matches.
pub async fn rehashed_row_is_detected_at_the_next_link(db: &TestDb) {
    let store = db.store().await;
    append_records(&store, 8, 8).await;
    let mut events = newest_audit(&store, 8).await;
    events.reverse();
    let e = &events[3];
    let ts = certctl_store::to_micros(e.timestamp);
    let details = e.details.to_string();
    let fields = |actor: &str| -> [String; 8] {
        [
            e.id.clone(),
            actor.to_owned(),
            e.actor_type.as_str().to_owned(),
            e.action.clone(),
            e.resource_type.clone(),
            e.resource_id.clone(),
            details.clone(),
            e.prev_hash.clone(),
        ]
    };
    let hash_of = |f: &[String; 8]| record_hash(4, ts, std::array::from_fn(|i| f[i].as_str()));
    assert_eq!(hash_of(&fields(&e.actor)), e.hash, "the test recomputes hashes like the store");
    let forged = hash_of(&fields("mallory"));
    tamper(db, &format!("UPDATE audit_events SET actor = 'mallory', hash = '{forged}' WHERE seq = 4")).await;

    let report = store.verify_audit_chain().await.unwrap();
    let (seq, reason) = report.first_broken.expect("a re-hashed record breaks the next link");
    assert_eq!(seq, 5);
    assert!(reason.contains("prev_hash"), "{reason}");
    assert_eq!(report.checked, 4);
}

pub async fn deleted_row_is_detected(db: &TestDb) {
    let store = db.store().await;
    append_records(&store, 10, 4).await;
    tamper(db, "DELETE FROM audit_events WHERE seq = 7").await;
    let report = store.verify_audit_chain().await.unwrap();
    let (seq, reason) = report.first_broken.expect("a missing record breaks the chain");
    assert_eq!(seq, 8, "reported at the first record after the gap");
    assert!(reason.contains("expected record 7"), "{reason}");
    assert_eq!(report.checked, 6);

    // Removing the first record is caught too.
    tamper(db, "DELETE FROM audit_events WHERE seq = 1").await;
    let (seq, reason) = store.verify_audit_chain().await.unwrap().first_broken.unwrap();
    assert_eq!(seq, 2);
    assert!(reason.contains("expected record 1"), "{reason}");
}

pub async fn audit_list_filters_and_lookup(db: &TestDb) {
    let store = db.store().await;
    store.record_audit(&[entry(0), entry(1)], T0).await.unwrap();
    store.record_audit(&[entry(2), entry(3)], at(10)).await.unwrap();
    let team = store.create_team(&team_req("One"), &alice(), at(20)).await.unwrap();
    let all = Paging::Page { page: 1, per_page: 50 };
    let list = |f: AuditFilterParsed| {
        let store = store.clone();
        let all = all.clone();
        async move { store.list_audit(&f, &all).await.unwrap().data().to_vec() }
    };

    let newest = list(AuditFilterParsed::default()).await;
    assert_eq!(newest.len(), 5);
    assert_eq!(newest[0].action, "team_created", "newest first");
    assert_eq!(newest[4].resource_id, "/r/0");

    let by_actor = list(AuditFilterParsed { actor: Some("actor-1".into()), ..Default::default() }).await;
    assert_eq!(by_actor.iter().map(|e| e.resource_id.as_str()).collect::<Vec<_>>(), ["/r/1"]);
    let by_action = list(AuditFilterParsed { action: Some("team_created".into()), ..Default::default() }).await;
    assert_eq!(by_action.len(), 1);
    assert_eq!(by_action[0].resource_id, team.id);
    let by_type = list(AuditFilterParsed { resource_type: Some("api".into()), ..Default::default() }).await;
    assert_eq!(by_type.len(), 4);
    let by_id = list(AuditFilterParsed { resource_id: Some("/r/3".into()), ..Default::default() }).await;
    assert_eq!(by_id.len(), 1);
    // `from` is inclusive, `to` exclusive.
    let window = list(AuditFilterParsed { from: Some(at(10)), to: Some(at(20)), ..Default::default() }).await;
    assert_eq!(window.iter().map(|e| e.resource_id.as_str()).collect::<Vec<_>>(), ["/r/3", "/r/2"]);

    let parsed = AuditFilterParsed::parse(&AuditFilter {
        from: Some("2026-03-01T10:00:10.123456Z".into()),
        ..AuditFilter::default()
    })
    .unwrap();
    assert_eq!(parsed.from, Some(at(10)));
    let e =
        AuditFilterParsed::parse(&AuditFilter { to: Some("yesterday".into()), ..AuditFilter::default() }).unwrap_err();
    assert!(matches!(e, StoreError::Invalid { field: "to", .. }), "{e:?}");

    let one = store.audit_event(&newest[2].id).await.unwrap();
    assert_eq!(one, newest[2]);
    let e = store.audit_event("audit-missing").await.unwrap_err();
    assert!(matches!(e, StoreError::NotFound { .. }), "{e:?}");

    // Keyset mode walks newest to oldest as well.
    let mut cursor = None;
    let mut walked = Vec::new();
    loop {
        let page = store
            .list_audit(&AuditFilterParsed::default(), &Paging::Cursor { cursor: cursor.clone(), size: 2 })
            .await
            .unwrap();
        walked.extend(page.data().iter().map(|e| e.id.clone()));
        let certctl_store::Listing::Cursor { next_cursor, .. } = page else { panic!("cursor mode") };
        match next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(walked, newest.iter().map(|e| e.id.clone()).collect::<Vec<_>>());
}

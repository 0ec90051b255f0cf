//! Page-numbered and keyset paging, including a property test of keyset walks that race with
//! inserts.

use std::collections::{HashMap, HashSet};

use certctl_api::{CreateTeam, Team};
use certctl_store::testing::TestDb;
use certctl_store::{AuditFilterParsed, Backend, Listing, Paging, Store, StoreError};
use proptest::collection::vec;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use time::OffsetDateTime;

use crate::support::{Raw, alice, at, rid, team_req};

async fn teams(store: &Store, n: i64) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(store.create_team(&team_req(&format!("team {i}")), &alice(), at(i)).await.unwrap().id);
    }
    ids
}

/// Walks every keyset page of size `size`, returning the IDs per page.
async fn walk_pages(store: &Store, size: u32) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let listing = store.list_teams(&Paging::Cursor { cursor: cursor.take(), size }).await.unwrap();
        let Listing::Cursor { data, next_cursor, page_size } = listing else { panic!("cursor mode expected") };
        assert_eq!(page_size, size);
        pages.push(data.into_iter().map(|t| t.id).collect());
        match next_cursor {
            Some(c) => cursor = Some(c),
            None => return pages,
        }
        assert!(pages.len() < 1000, "the walk does not end");
    }
}

pub async fn page_mode_reports_totals(db: &TestDb) {
    let store = db.store().await;
    let ids = teams(&store, 7).await;
    let mut concatenated = Vec::new();
    for (page, expected_len) in [(1u32, 3usize), (2, 3), (3, 1), (4, 0)] {
        let Listing::Page { data, total, page: p, per_page } =
            store.list_teams(&Paging::Page { page, per_page: 3 }).await.unwrap()
        else {
            panic!("page mode expected")
        };
        assert_eq!((total, p, per_page), (7, page, 3));
        assert_eq!(data.len(), expected_len, "page {page}");
        concatenated.extend(data.into_iter().map(|t| t.id));
    }
    assert_eq!(concatenated, ids, "pages follow creation order");
    let Listing::Page { total, data, .. } =
        store.list_owners(Some(&ids[0]), &Paging::Page { page: 1, per_page: 3 }).await.unwrap()
    else {
        panic!("page mode expected")
    };
    assert_eq!((total, data.len()), (0, 0), "totals follow the filter");
}

pub async fn cursor_mode_walks_every_row(db: &TestDb) {
    let store = db.store().await;
    let ids = teams(&store, 7).await;
    let pages = walk_pages(&store, 3).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
    assert_eq!(pages.concat(), ids);
    // An exact fit ends without an empty trailing page.
    assert_eq!(walk_pages(&store, 7).await, std::slice::from_ref(&ids));
    assert_eq!(walk_pages(&store, 500).await, [ids]);
}

pub async fn cursor_mode_breaks_ties_by_id(db: &TestDb) {
    let store = db.store().await;
    for id in ["t-e", "t-a", "t-c", "t-b", "t-d"] {
        let req = CreateTeam { id: Some(rid(id)), name: crate::support::name(id), description: None };
        store.create_team(&req, &alice(), at(0)).await.unwrap();
    }
    let pages = walk_pages(&store, 2).await;
    assert_eq!(pages.concat(), ["t-a", "t-b", "t-c", "t-d", "t-e"]);
    assert_eq!(pages.len(), 3);
}

pub async fn bad_cursor_is_invalid(db: &TestDb) {
    let store = db.store().await;
    teams(&store, 3).await;
    store
        .record_audit(
            &[certctl_store::AuditEntry::new("a", certctl_api::ActorType::User, "x", "y", "z", serde_json::json!({}))],
            at(0),
        )
        .await
        .unwrap();
    let Listing::Cursor { next_cursor: Some(audit_cursor), .. } =
        store.list_audit(&AuditFilterParsed::default(), &Paging::Cursor { cursor: None, size: 1 }).await.unwrap()
    else {
        panic!("the audit list has more than one record")
    };
    let garbage = [
        "not a cursor".to_owned(),
        "e30".to_owned(), // base64url of "{}"
        audit_cursor,     // a cursor of another list's sort order
    ];
    for cursor in garbage {
        let e = store.list_teams(&Paging::Cursor { cursor: Some(cursor.clone()), size: 2 }).await.unwrap_err();
        assert!(matches!(e, StoreError::Invalid { field: "cursor", .. }), "{cursor}: {e:?}");
    }
}

async fn create_at(store: &Store, secs: i64) -> Result<Team, String> {
    let id = format!("t{}", uuid::Uuid::new_v4().simple());
    let req = CreateTeam { id: Some(rid(&id)), name: crate::support::name(&id), description: None };
    store.create_team(&req, &alice(), at(secs)).await.map_err(|e| format!("create: {e}"))
}

/// One walk over the teams of `store`, which starts empty: `initial` rows (creation second
/// offsets, with many ties) exist first; page sizes cycle through `sizes`; while page `i` is
/// fetched, the rows of `inserts[i]` are created concurrently, at times before, among and after
/// the rows already walked.
async fn walk_while_inserting(
    store: &Store,
    initial: Vec<i64>,
    sizes: Vec<u32>,
    inserts: Vec<Vec<i64>>,
) -> Result<(), String> {
    let mut before = HashSet::new();
    for secs in initial {
        before.insert(create_at(store, secs).await?.id);
    }
    let mut seen: Vec<(OffsetDateTime, String)> = Vec::new();
    let mut cursor = None;
    for step in 0.. {
        if step > 10_000 {
            return Err("the walk does not end".into());
        }
        let size = sizes[step % sizes.len()];
        let batch = inserts.get(step).cloned().unwrap_or_default();
        let writer = tokio::spawn({
            let store = store.clone();
            async move {
                for secs in batch {
                    create_at(&store, secs).await?;
                }
                Ok::<(), String>(())
            }
        });
        let page = store.list_teams(&Paging::Cursor { cursor: cursor.take(), size }).await;
        writer.await.map_err(|e| e.to_string())??;
        let Listing::Cursor { data, next_cursor, .. } = page.map_err(|e| e.to_string())? else {
            return Err("cursor mode expected".into());
        };
        if data.len() > size as usize || (next_cursor.is_some() && data.len() != size as usize) {
            return Err(format!("page of {} rows for size {size} (next: {})", data.len(), next_cursor.is_some()));
        }
        seen.extend(data.into_iter().map(|t| (t.created_at, t.id)));
        match next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }

    let mut times: HashMap<&str, usize> = HashMap::new();
    for (_, id) in &seen {
        *times.entry(id).or_default() += 1;
    }
    if let Some((id, n)) = times.iter().find(|(_, n)| **n > 1) {
        return Err(format!("{id} returned {n} times"));
    }
    if let Some(missing) = before.iter().find(|id| !times.contains_key(id.as_str())) {
        return Err(format!("{missing} existed before the walk but was never returned"));
    }
    if let Some(pair) = seen.windows(2).find(|p| p[0] >= p[1]) {
        return Err(format!("rows out of keyset order: {:?} then {:?}", pair[0], pair[1]));
    }
    Ok(())
}

pub fn cursor_walk_during_inserts_sees_every_row_once(backend: Backend) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let Some(db) = rt.block_on(TestDb::new(backend)) else { return };
    let store = rt.block_on(db.store());
    // The runner's closure is `Fn`, so the connection sits behind a lock.
    let raw = tokio::sync::Mutex::new(rt.block_on(Raw::connect(&db)));
    let config =
        ProptestConfig { cases: 16, max_shrink_iters: 64, failure_persistence: None, ..ProptestConfig::default() };
    let strategy = (vec(0i64..8, 0..40), vec(1u32..=20, 1..6), vec(vec(-5i64..15, 0..4), 0..30));
    let result = TestRunner::new(config).run(&strategy, |(initial, sizes, inserts)| {
        rt.block_on(async {
            // Cases share the database (creating one per case is slow on PostgreSQL) and start
            // from an empty teams table.
            raw.lock().await.exec("DELETE FROM teams").await.map_err(|e| e.to_string())?;
            walk_while_inserting(&store, initial, sizes, inserts).await
        })
        .map_err(TestCaseError::fail)
    });
    rt.block_on(async {
        raw.into_inner().close().await;
        store.close().await;
        db.cleanup().await;
    });
    result.unwrap_or_else(|e| panic!("{e}"));
}

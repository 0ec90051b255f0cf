//! API keys: stored by hash, found by hash, deleted.

use certctl_api::Role;
use certctl_store::testing::TestDb;
use certctl_store::{Actor, NewApiKey, Paging, StoreError};

use crate::support::{T0, at};

fn key(name: &str, role: Role, hash: &str) -> NewApiKey {
    NewApiKey { name: name.into(), role, key_hash: hash.into(), created_by: "tests".into() }
}

const H1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const H2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

pub async fn api_key_lifecycle(db: &TestDb) {
    let store = db.store().await;
    assert_eq!(store.count_api_keys().await.unwrap(), 0);
    let created = store.create_api_key(&key("ci", Role::Operator, H1), &Actor::system(), T0).await.unwrap();
    assert!(created.id.starts_with("key-"), "{}", created.id);
    assert_eq!((created.name.as_str(), created.role, created.created_by.as_str()), ("ci", Role::Operator, "tests"));
    assert_eq!(created.created_at, T0);
    store.create_api_key(&key("reader", Role::Viewer, H2), &Actor::system(), at(1)).await.unwrap();
    assert_eq!(store.count_api_keys().await.unwrap(), 2);

    let found = store.api_key_by_hash(H1).await.unwrap().expect("stored key is found by its hash");
    assert_eq!(found.key, created);
    assert_eq!(found.key_hash, H1);
    assert_eq!(store.api_key_by_hash(&H1.replace('1', "3")).await.unwrap(), None);

    let listed = store.list_api_keys(&Paging::Page { page: 1, per_page: 10 }).await.unwrap();
    let names: Vec<&str> = listed.data().iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["ci", "reader"]);

    let hash = store.delete_api_key(&created.id, &Actor::user("admin"), at(2)).await.unwrap();
    assert_eq!(hash, H1, "deletion returns the hash so caches can drop it");
    assert_eq!(store.api_key_by_hash(H1).await.unwrap(), None);
    assert_eq!(store.count_api_keys().await.unwrap(), 1);
    let e = store.delete_api_key(&created.id, &Actor::user("admin"), at(3)).await.unwrap_err();
    assert!(matches!(e, StoreError::NotFound { .. }), "{e:?}");
}

pub async fn api_key_duplicates_conflict(db: &TestDb) {
    let store = db.store().await;
    store.create_api_key(&key("ci", Role::Operator, H1), &Actor::system(), T0).await.unwrap();
    let e = store.create_api_key(&key("ci", Role::Viewer, H2), &Actor::system(), T0).await.unwrap_err();
    assert!(matches!(&e, StoreError::Conflict(m) if m.contains("'ci'")), "{e:?}");
    // The same key under another name is refused by the database's unique index.
    let e = store.create_api_key(&key("other", Role::Viewer, H1), &Actor::system(), T0).await.unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
    assert_eq!(store.count_api_keys().await.unwrap(), 1);
}

pub async fn web_sessions_expire_end_and_die_with_their_key(db: &TestDb) {
    let store = db.store().await;
    let admin = store.create_api_key(&key("alice", Role::Admin, H1), &Actor::system(), T0).await.unwrap();
    let viewer = store.create_api_key(&key("bob", Role::Viewer, H2), &Actor::system(), T0).await.unwrap();
    store.create_web_session("s1", &admin.id, "csrf-1", T0, at(100)).await.unwrap();
    store.create_web_session("s2", &viewer.id, "csrf-2", T0, at(100)).await.unwrap();
    store.create_web_session("s3", &admin.id, "csrf-3", T0, at(10)).await.unwrap();

    let s1 = store.web_session("s1", at(50)).await.unwrap().expect("a live session is found");
    assert_eq!((s1.key_name.as_str(), s1.role, s1.csrf_token.as_str()), ("alice", Role::Admin, "csrf-1"));
    assert_eq!(s1.expires_at, at(100));
    assert_eq!(store.web_session("s1", at(100)).await.unwrap(), None, "a session ends at its expiry");
    assert_eq!(store.web_session("unknown", at(1)).await.unwrap(), None);

    assert_eq!(store.prune_web_sessions(at(50), 100).await.unwrap(), 1, "only the expired session is pruned");
    assert_eq!(store.web_session("s3", at(5)).await.unwrap(), None);

    store.delete_web_session("s2").await.unwrap();
    assert_eq!(store.web_session("s2", at(1)).await.unwrap(), None, "sign-out ends the session");
    store.delete_web_session("s2").await.unwrap();

    store.create_web_session("s4", &viewer.id, "csrf-4", T0, at(100)).await.unwrap();
    store.delete_api_key(&viewer.id, &Actor::user("root"), at(2)).await.unwrap();
    assert_eq!(store.web_session("s4", at(3)).await.unwrap(), None, "deleting the key ends its sessions");
    assert!(store.web_session("s1", at(3)).await.unwrap().is_some(), "other keys' sessions live on");
}

//! Data outlives the store handle: close, reopen the same URL, everything is there.

use certctl_api::Role;
use certctl_store::testing::TestDb;
use certctl_store::{NewApiKey, Store, StoreOptions};

use crate::support::{T0, alice, at, audit_count, owner_req, team_req};

pub async fn data_survives_reconnect(db: &TestDb) {
    let store = db.store().await;
    let team = store.create_team(&team_req("One"), &alice(), T0).await.unwrap();
    let owner = store.create_owner(&owner_req("Ann", &team.id), &alice(), T0).await.unwrap();
    let hash = "ef".repeat(32);
    let new = NewApiKey { name: "ci".into(), role: Role::Admin, key_hash: hash.clone(), created_by: "t".into() };
    let key = store.create_api_key(&new, &alice(), T0).await.unwrap();
    store.close().await;
    assert!(store.ping().await.is_err(), "a closed store does not answer");

    let store = Store::connect(db.url(), &StoreOptions::default()).await.unwrap();
    store.migrate().await.expect("migrating an up-to-date database is a no-op");
    store.ping().await.unwrap();
    assert_eq!(store.team(&team.id).await.unwrap(), team);
    assert_eq!(store.owner(&owner.id).await.unwrap(), owner);
    assert_eq!(store.api_key_by_hash(&hash).await.unwrap().map(|r| r.key), Some(key));
    assert_eq!(audit_count(&store).await, 3);

    // The chain continues where it stopped.
    store.create_team(&team_req("Two"), &alice(), at(1)).await.unwrap();
    let report = store.verify_audit_chain().await.unwrap();
    assert_eq!((report.checked, report.first_broken), (4, None));
    store.close().await;
}

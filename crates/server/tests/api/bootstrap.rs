//! First-start provisioning of the admin key, in process.

use std::os::unix::fs::PermissionsExt;

use certctl_server::auth::hash_key;
use certctl_server::config::RawSettings;
use certctl_store::testing::TestDb;

use crate::harness::T0;

async fn config(db: &TestDb, dir: &std::path::Path, key: Option<&str>) -> certctl_server::config::Config {
    let mut raw = RawSettings::default();
    raw.set("data_dir", dir.display().to_string());
    raw.set("database_url", db.url());
    if let Some(k) = key {
        raw.set("bootstrap_api_key", k);
    }
    raw.into_config().unwrap()
}

#[tokio::test]
async fn first_start_generates_one_admin_key() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let config = config(&db, dir.path(), None).await;
    let store = certctl_server::open_store(&config).await.unwrap();
    certctl_server::bootstrap::ensure_admin_key(&store, &config, T0).await.unwrap();
    let path = dir.path().join("admin-api-key");
    let key = std::fs::read_to_string(&path).unwrap().trim().to_owned();
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let record = store.api_key_by_hash(&hash_key(&key)).await.unwrap().expect("the written key is stored");
    assert_eq!((record.key.name.as_str(), record.key.role), ("admin", certctl_api::Role::Admin));

    // Later starts leave keys and the file alone.
    certctl_server::bootstrap::ensure_admin_key(&store, &config, T0).await.unwrap();
    assert_eq!(store.count_api_keys().await.unwrap(), 1);
    assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), key);
}

#[tokio::test]
async fn configured_bootstrap_key_is_stored_once() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let key = "k".repeat(40);
    let config = config(&db, dir.path(), Some(&key)).await;
    let store = certctl_server::open_store(&config).await.unwrap();
    for _ in 0..2 {
        certctl_server::bootstrap::ensure_admin_key(&store, &config, T0).await.unwrap();
    }
    assert_eq!(store.count_api_keys().await.unwrap(), 1);
    let record = store.api_key_by_hash(&hash_key(&key)).await.unwrap().unwrap();
    assert_eq!(record.key.role, certctl_api::Role::Admin);
    assert!(!dir.path().join("admin-api-key").exists(), "a configured key is not written to disk");
}

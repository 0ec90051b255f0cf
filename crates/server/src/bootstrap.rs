//! First-start provisioning of the admin API key.

use anyhow::Context;
use time::OffsetDateTime;

use certctl_api::Role;
use certctl_store::{Actor, NewApiKey, Store};

use crate::auth::{generate_key, hash_key};
use crate::config::Config;
use crate::fsutil::write_private;

/// Ensures an admin can sign in: stores `CERTCTL_BOOTSTRAP_API_KEY` when given and unknown;
/// otherwise, when no key exists at all, generates one, prints it once and writes it to
/// `$CERTCTL_DATA_DIR/admin-api-key` (mode 0600).
pub async fn ensure_admin_key(store: &Store, config: &Config, now: OffsetDateTime) -> anyhow::Result<()> {
    let actor = Actor::system();
    if let Some(key) = &config.bootstrap_api_key {
        let hash = hash_key(key);
        if store.api_key_by_hash(&hash).await?.is_none() {
            let name = if store.count_api_keys().await? == 0 {
                "admin".to_owned()
            } else {
                format!("bootstrap-{}", &hash[..8])
            };
            let new = NewApiKey { name, role: Role::Admin, key_hash: hash, created_by: "bootstrap".into() };
            store.create_api_key(&new, &actor, now).await.context("cannot store CERTCTL_BOOTSTRAP_API_KEY")?;
            tracing::info!("stored the admin key from CERTCTL_BOOTSTRAP_API_KEY");
        }
        return Ok(());
    }
    if store.count_api_keys().await? > 0 {
        return Ok(());
    }
    let key = generate_key();
    let new =
        NewApiKey { name: "admin".into(), role: Role::Admin, key_hash: hash_key(&key), created_by: "bootstrap".into() };
    store.create_api_key(&new, &actor, now).await.context("cannot store the generated admin key")?;
    let path = config.data_dir.join("admin-api-key");
    write_private(&path, format!("{key}\n").as_bytes())?;
    println!("Generated admin API key (shown once, also saved to {} with mode 0600):\n  {key}", path.display());
    Ok(())
}

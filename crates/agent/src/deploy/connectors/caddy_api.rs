//! Caddy through its admin API: the certificate and key are loaded by a POST, no files.

use certctl_api::CaddyConfig;
use zeroize::Zeroizing;

use super::Connector;
use crate::deploy::engine::{Action, StagedFile};
use crate::deploy::{DeployFailure, Material};

pub struct CaddyApi<'a> {
    pub caddy: &'a CaddyConfig,
}

impl Connector for CaddyApi<'_> {
    fn files(&self, _: &Material) -> Result<Vec<StagedFile>, DeployFailure> {
        Ok(Vec::new())
    }

    fn action(&self, m: &Material) -> Result<Option<Action>, DeployFailure> {
        let url = format!("{}/config/apps/tls/certificates/load", self.caddy.admin_api.trim_end_matches('/'));
        let body = serde_json::json!({"cert": m.fullchain_pem(), "key": m.key_pem.as_str()});
        Ok(Some(Action::Post { url, body: Zeroizing::new(body.to_string()) }))
    }
}

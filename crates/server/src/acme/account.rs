//! Accounts (RFC 8555 §7.3): registration by key thumbprint, lookup with
//! `onlyReturnExisting`, contact updates, deactivation, the orders list and key rollover.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use certctl_pki::constraints::San;
use certctl_store::{AccountStatus, AcmeAccount, new_id};

use super::eab;
use super::jws::{Jwk, Jws, Signer};
use super::problem::{AcmeError, AcmeResult};
use super::ratelimit::{self, ClientIp, Limit};
use super::request::{ByJwk, ByKid, Directory};
use super::resource;
use crate::AppState;

/// Most contacts an account may list.
const MAX_CONTACTS: usize = 10;
/// Most orders the orders list returns (newest first).
const ORDERS_LIST_LIMIT: i64 = 1000;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewAccount {
    #[serde(default)]
    contact: Option<Vec<String>>,
    #[serde(default)]
    terms_of_service_agreed: Option<bool>,
    #[serde(default)]
    only_return_existing: bool,
    #[serde(default)]
    external_account_binding: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountUpdate {
    #[serde(default)]
    contact: Option<Vec<String>>,
    #[serde(default)]
    status: Option<String>,
    /// Clients echo it; it changes nothing.
    #[serde(default, rename = "termsOfServiceAgreed")]
    _terms_of_service_agreed: Option<bool>,
}

#[derive(Serialize)]
struct AccountDoc<'a> {
    status: &'static str,
    contact: &'a [String],
    orders: String,
}

/// The account's URL (its `kid`).
pub fn account_url(dir: &Directory, id: &str) -> String {
    dir.url(&format!("account/{id}"))
}

fn render(dir: &Directory, a: &AcmeAccount, status: StatusCode) -> Response {
    let doc = AccountDoc {
        status: a.status.as_str(),
        contact: &a.contact,
        orders: dir.url(&format!("account/{}/orders", a.id)),
    };
    resource(status, Some(&account_url(dir, &a.id)), &doc)
}

/// Checks contacts: `mailto:` URLs of one plain address each (RFC 8555 §7.3).
fn parse_contacts(contacts: Vec<String>) -> AcmeResult<Vec<String>> {
    if contacts.len() > MAX_CONTACTS {
        return Err(AcmeError::InvalidContact(format!("at most {MAX_CONTACTS} contacts are accepted")));
    }
    let mut out = Vec::with_capacity(contacts.len());
    for c in contacts {
        let Some((scheme, address)) = c.split_once(':') else {
            return Err(AcmeError::InvalidContact(format!("contact {c:?} is not a URL")));
        };
        if !scheme.eq_ignore_ascii_case("mailto") {
            return Err(AcmeError::UnsupportedContact(format!("contact {c:?}: only mailto: contacts are supported")));
        }
        let invalid = |why: &str| AcmeError::InvalidContact(format!("contact {c:?}: {why}"));
        if address.len() > 254 || address.contains(['?', ',', '%', ' ', '<', '>']) {
            return Err(invalid("must be a single plain email address"));
        }
        let Some((local, domain)) = address.rsplit_once('@') else { return Err(invalid("has no '@'")) };
        if local.is_empty() || local.contains('@') || !local.is_ascii() {
            return Err(invalid("the local part is not a plain ASCII name"));
        }
        match San::parse(domain) {
            Ok(San::Dns(d)) if d.contains('.') && !d.starts_with('*') => out.push(format!("mailto:{local}@{d}")),
            _ => return Err(invalid("the domain is not a valid DNS name")),
        }
    }
    Ok(out)
}

/// `new-account`: registers the signing key, or returns its existing account.
pub async fn new_account(State(s): State<AppState>, ip: ClientIp, ByJwk(req): ByJwk) -> AcmeResult<Response> {
    let body: NewAccount = req.json()?;
    let thumbprint = req.jwk.thumbprint();
    if let Some(existing) = s.store.acme_account_by_thumbprint(&req.dir.profile.id, &thumbprint).await? {
        return Ok(render(&req.dir, &existing, StatusCode::OK));
    }
    if body.only_return_existing {
        return Err(AcmeError::AccountDoesNotExist("no account has this key".into()));
    }
    // A binding is verified whenever one is sent, and required where the profile says so.
    let eab_kid = match &body.external_account_binding {
        Some(binding) => Some(eab::verify(&s, &req, binding).await?),
        None if req.dir.binding.external_account_required => {
            return Err(AcmeError::ExternalAccountRequired(
                "this directory requires an external account binding (an EAB kid and HMAC key from its administrator)"
                    .into(),
            ));
        }
        None => None,
    };
    if body.terms_of_service_agreed == Some(false) {
        return Err(AcmeError::Malformed("termsOfServiceAgreed is false".into()));
    }
    let contact = parse_contacts(body.contact.unwrap_or_default())?;
    ratelimit::check(&s, Limit::NewAccount, &ip.key()).await?;
    let account = AcmeAccount {
        id: new_id("acct"),
        profile_id: req.dir.profile.id.clone(),
        thumbprint,
        jwk: req.jwk.canonical(),
        status: AccountStatus::Valid,
        contact,
        created_at: s.clock.now(),
    };
    let (account, created) = s.store.create_acme_account_bound(&account, eab_kid.as_deref(), s.clock.now()).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok(render(&req.dir, &account, status))
}

/// The account a path names, which must be the signer's own.
fn own_account<'a>(req: &'a ByKid, params: &HashMap<String, String>) -> AcmeResult<&'a AcmeAccount> {
    let account = req.account();
    if params.get("account_id").map(String::as_str) != Some(account.id.as_str()) {
        return Err(AcmeError::Unauthorized("an account can only read and change itself".into()));
    }
    Ok(account)
}

/// `account/{id}`: POST-as-GET, contact update or deactivation.
pub async fn account(
    State(s): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    req: ByKid,
) -> AcmeResult<Response> {
    let account = own_account(&req, &params)?;
    let dir = &req.0.dir;
    if req.0.is_post_as_get() {
        return Ok(render(dir, account, StatusCode::OK));
    }
    let update: AccountUpdate = req.0.json()?;
    let status = match update.status.as_deref() {
        None => None,
        Some("deactivated") => Some(AccountStatus::Deactivated),
        Some(other) => {
            return Err(AcmeError::Malformed(format!(
                "an account's status can only become deactivated, not {other:?}"
            )));
        }
    };
    let contact = update.contact.map(parse_contacts).transpose()?;
    if contact.is_none() && status.is_none() {
        return Ok(render(dir, account, StatusCode::OK));
    }
    let updated = s.store.update_acme_account(&account.id, contact.as_deref(), status, s.clock.now()).await;
    s.acme.accounts.clear();
    let updated = updated?;
    Ok(render(dir, &updated, StatusCode::OK))
}

/// `account/{id}/orders`: the account's order URLs, newest first.
pub async fn orders(
    State(s): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    req: ByKid,
) -> AcmeResult<Response> {
    let account = own_account(&req, &params)?;
    req.0.must_be_post_as_get()?;
    let ids = s.store.acme_account_orders(&account.id, ORDERS_LIST_LIMIT).await?;
    let urls: Vec<String> = ids.iter().map(|id| req.0.dir.url(&format!("order/{id}"))).collect();
    Ok(resource(StatusCode::OK, None, &serde_json::json!({ "orders": urls })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyChange {
    account: String,
    old_key: Value,
}

/// `key-change` (RFC 8555 §7.3.5): the outer JWS is signed by the account, the inner one by
/// the new key over `{account, oldKey}`.
pub async fn key_change(State(s): State<AppState>, req: ByKid) -> AcmeResult<Response> {
    let account = req.account().clone();
    let outer = &req.0;
    let inner = Jws::parse(&outer.payload)?;
    let Signer::Jwk(new_key) = &inner.signer else {
        return Err(AcmeError::Malformed("the inner JWS must carry the new key as a jwk".into()));
    };
    if inner.nonce.is_some() {
        return Err(AcmeError::Malformed("the inner JWS must not carry a nonce".into()));
    }
    if inner.url != outer.url {
        return Err(AcmeError::Malformed("the inner JWS url differs from the outer one".into()));
    }
    inner.verify(new_key)?;
    let change: KeyChange = serde_json::from_slice(&inner.payload)
        .map_err(|e| AcmeError::Malformed(format!("the inner payload is not a key change: {e}")))?;
    if change.account != account_url(&outer.dir, &account.id) {
        return Err(AcmeError::Unauthorized("the key change names another account".into()));
    }
    if Jwk::parse(&change.old_key)? != outer.jwk {
        return Err(AcmeError::Unauthorized("oldKey is not the account's current key".into()));
    }
    let thumbprint = new_key.thumbprint();
    if let Some(holder) = s.store.acme_account_by_thumbprint(&outer.dir.profile.id, &thumbprint).await? {
        return Err(AcmeError::KeyInUse {
            detail: "another account already uses the new key".into(),
            location: account_url(&outer.dir, &holder.id),
        });
    }
    let changed = s
        .store
        .change_acme_account_key(&account.id, &account.thumbprint, &thumbprint, &new_key.canonical(), s.clock.now())
        .await;
    s.acme.accounts.clear();
    changed?;
    Ok(render(&outer.dir, &account, StatusCode::OK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts() {
        let ok = parse_contacts(vec!["mailto:Ops@Example.COM".into()]).unwrap();
        assert_eq!(ok, vec!["mailto:Ops@example.com"]);
        assert!(matches!(parse_contacts(vec!["tel:+1".into()]), Err(AcmeError::UnsupportedContact(_))));
        for bad in ["mailto:a@b@c.com", "mailto:a@localhost", "mailto:a@x.com?subject=hi", "mailto:a@x.com,b@y.com"] {
            assert!(matches!(parse_contacts(vec![bad.into()]), Err(AcmeError::InvalidContact(_))), "{bad}");
        }
    }
}

//! Renewal policies: when certificates renew, how often a failed renewal retries, and who hears
//! about an approaching expiry.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::json;
use sqlx::FromRow;
use time::OffsetDateTime;

use certctl_api::{CreateRenewalPolicy, RenewalPolicy, SeverityTier, UpdateRenewalPolicy};

use crate::audit::{AuditEntry, append};
use crate::common::{Actor, Deletable, exists, id_free, must_reference, name_free};
use crate::paging::{self, CREATED, Keyed, Listing, Order, Paging, SortValue};
use crate::sql::{Conn, Sql};
use crate::{Result, Store, StoreError, from_micros, new_id, parse_json, to_json, to_micros};

/// The policy every certificate falls back to; created at start-up when missing.
pub const DEFAULT_RENEWAL_POLICY_ID: &str = "rp-default";

/// Longest slug kept in a generated ID.
const SLUG_MAX: usize = 60;

/// Highest suffix tried for a generated ID before falling back to a unique one.
const SLUG_SUFFIX_MAX: u32 = 10;

#[derive(Debug, FromRow, Deserialize)]
struct PolicyRow {
    id: String,
    name: String,
    renewal_window_days: i64,
    auto_renew: bool,
    max_retries: i64,
    retry_interval_seconds: i64,
    alert_thresholds_days: String,
    alert_channels: String,
    alert_severity_map: String,
    certificate_profile_id: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl Keyed for PolicyRow {
    fn id(&self) -> &str {
        &self.id
    }
    fn sort_value(&self, _: &str) -> SortValue {
        SortValue::Int(self.created_at)
    }
}

impl TryFrom<PolicyRow> for RenewalPolicy {
    type Error = StoreError;

    fn try_from(r: PolicyRow) -> Result<Self> {
        Ok(RenewalPolicy {
            id: r.id,
            name: r.name,
            renewal_window_days: r.renewal_window_days,
            auto_renew: r.auto_renew,
            max_retries: r.max_retries,
            retry_interval_seconds: r.retry_interval_seconds,
            alert_thresholds_days: parse_json("alert_thresholds_days", &r.alert_thresholds_days)?,
            alert_channels: parse_json("alert_channels", &r.alert_channels)?,
            alert_severity_map: parse_json("alert_severity_map", &r.alert_severity_map)?,
            certificate_profile_id: r.certificate_profile_id,
            created_at: from_micros(r.created_at),
            updated_at: from_micros(r.updated_at),
        })
    }
}

const POLICY_COLUMNS: &str = "SELECT id, name, renewal_window_days, auto_renew, max_retries, retry_interval_seconds, \
     alert_thresholds_days, alert_channels, alert_severity_map, certificate_profile_id, created_at, updated_at \
     FROM renewal_policies";

/// Copies every field present in a create or update request onto a policy; both request types
/// carry the same optional fields.
macro_rules! apply_policy_fields {
    ($p:expr, $req:expr) => {{
        let (p, req) = (&mut $p, &$req);
        if let Some(v) = req.renewal_window_days {
            p.renewal_window_days = v;
        }
        if let Some(v) = req.auto_renew {
            p.auto_renew = v;
        }
        if let Some(v) = req.max_retries {
            p.max_retries = v;
        }
        if let Some(v) = req.retry_interval_seconds {
            p.retry_interval_seconds = v;
        }
        if let Some(v) = &req.alert_thresholds_days {
            p.alert_thresholds_days = v.clone();
        }
        if let Some(v) = &req.alert_channels {
            p.alert_channels = v.clone();
        }
        if let Some(v) = &req.alert_severity_map {
            p.alert_severity_map = v.clone();
        }
        if let Some(v) = &req.certificate_profile_id {
            p.certificate_profile_id = Some(v.to_string());
        }
    }};
}

fn invalid(field: &'static str, message: impl Into<String>) -> StoreError {
    StoreError::Invalid { field, message: message.into() }
}

/// A policy with every default, before a create request is applied.
fn default_policy(id: String, name: String, now: OffsetDateTime) -> RenewalPolicy {
    RenewalPolicy {
        id,
        name,
        renewal_window_days: 30,
        auto_renew: true,
        max_retries: 3,
        retry_interval_seconds: 3600,
        alert_thresholds_days: vec![30, 14, 7, 0],
        alert_channels: BTreeMap::new(),
        alert_severity_map: BTreeMap::new(),
        certificate_profile_id: None,
        created_at: now,
        updated_at: now,
    }
}

/// The ID-safe form of a name: lowercase ASCII letters and digits, every other run of
/// characters one `-`, no `-` at either end, at most 60 characters. Empty when the name has no
/// letter or digit.
pub(crate) fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    // Only ASCII was pushed, so truncating at a byte index cannot split a character.
    out.truncate(SLUG_MAX);
    out.trim_end_matches('-').to_owned()
}

/// The IDs tried, in order, for a policy called `name`: `rp-<slug>`, then `-2` … `-10`.
pub(crate) fn id_candidates(name: &str) -> Vec<String> {
    let slug = slug(name);
    if slug.is_empty() {
        return Vec::new();
    }
    let base = format!("rp-{slug}");
    std::iter::once(base.clone()).chain((2..=SLUG_SUFFIX_MAX).map(|n| format!("{base}-{n}"))).collect()
}

async fn generated_id(conn: &mut Conn<'_>, name: &str) -> Result<String> {
    for candidate in id_candidates(name) {
        if !exists(conn, "renewal_policies", &candidate).await? {
            return Ok(candidate);
        }
    }
    Ok(new_id("rp"))
}

fn check_range(field: &'static str, value: i64, min: i64, max: i64) -> Result<()> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(invalid(field, format!("must be between {min} and {max}, not {value}")))
    }
}

/// Validates a complete policy and puts it in canonical form: thresholds unique and descending,
/// severity-map keys in plain decimal, channel names trimmed and unique. Errors name the field.
pub(crate) fn normalize_policy(p: &mut RenewalPolicy) -> Result<()> {
    check_range("renewal_window_days", p.renewal_window_days, 1, 365)?;
    check_range("max_retries", p.max_retries, 0, 10)?;
    check_range("retry_interval_seconds", p.retry_interval_seconds, 60, 86_400)?;

    for (i, days) in p.alert_thresholds_days.iter().enumerate() {
        if !(0..=365).contains(days) {
            return Err(invalid("alert_thresholds_days", format!("[{i}]: must be between 0 and 365, not {days}")));
        }
    }
    p.alert_thresholds_days.sort_unstable_by(|a, b| b.cmp(a));
    p.alert_thresholds_days.dedup();

    let mut severity = BTreeMap::new();
    for (key, tier) in &p.alert_severity_map {
        let days: i64 = key
            .trim()
            .parse()
            .map_err(|_| invalid("alert_severity_map", format!("key '{key}' is not a number of days")))?;
        if !(0..=365).contains(&days) {
            return Err(invalid("alert_severity_map", format!("key '{key}' must be between 0 and 365")));
        }
        if !p.alert_thresholds_days.contains(&days) {
            return Err(invalid("alert_severity_map", format!("key '{key}' is not one of alert_thresholds_days")));
        }
        if severity.insert(days.to_string(), *tier).is_some() {
            return Err(invalid("alert_severity_map", format!("key '{key}' repeats another key")));
        }
    }
    p.alert_severity_map = severity;

    let mut channels: BTreeMap<SeverityTier, Vec<String>> = BTreeMap::new();
    for (tier, names) in &p.alert_channels {
        let mut kept: Vec<String> = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let name = name.trim();
            if name.is_empty() {
                return Err(invalid("alert_channels", format!("{tier}[{i}]: channel name must not be empty")));
            }
            if !kept.iter().any(|k| k == name) {
                kept.push(name.to_owned());
            }
        }
        channels.insert(*tier, kept);
    }
    p.alert_channels = channels;
    Ok(())
}

fn audit(actor: &Actor, action: &str, id: &str, details: serde_json::Value) -> AuditEntry {
    AuditEntry::new(actor.name.clone(), actor.kind, action, "renewal_policy", id, details)
}

async fn policy_in(conn: &mut Conn<'_>, id: &str) -> Result<RenewalPolicy> {
    let mut q = Sql::default();
    q.push(POLICY_COLUMNS).push(" WHERE id = ").push_bind(id);
    let row: Option<PolicyRow> = q.fetch_optional(conn).await?;
    match row {
        Some(r) => r.try_into(),
        None => Err(StoreError::NotFound { resource: "renewal policy", id: id.to_owned() }),
    }
}

async fn insert_policy(conn: &mut Conn<'_>, p: &RenewalPolicy) -> Result<()> {
    let insert = Sql::new(
        "INSERT INTO renewal_policies (id, name, renewal_window_days, auto_renew, max_retries, \
         retry_interval_seconds, alert_thresholds_days, alert_channels, alert_severity_map, \
         certificate_profile_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
    )
    .arg(&p.id);
    bind_policy(insert, p, p.created_at).execute(conn).await?;
    Ok(())
}

/// Binds `$2…$11` of the insert and the update, which list the columns in the same order.
fn bind_policy(q: Sql, p: &RenewalPolicy, now: OffsetDateTime) -> Sql {
    q.arg(&p.name)
        .arg(p.renewal_window_days)
        .arg(p.auto_renew)
        .arg(p.max_retries)
        .arg(p.retry_interval_seconds)
        .arg(to_json(&p.alert_thresholds_days))
        .arg(to_json(&p.alert_channels))
        .arg(to_json(&p.alert_severity_map))
        .arg(p.certificate_profile_id.clone())
        .arg(to_micros(now))
}

fn created_details(p: &RenewalPolicy) -> serde_json::Value {
    json!({
        "name": p.name,
        "renewal_window_days": p.renewal_window_days,
        "auto_renew": p.auto_renew,
        "max_retries": p.max_retries,
        "retry_interval_seconds": p.retry_interval_seconds,
        "alert_thresholds_days": p.alert_thresholds_days,
        "certificate_profile_id": p.certificate_profile_id,
    })
}

impl Store {
    pub async fn list_renewal_policies(&self, paging: &Paging) -> Result<Listing<RenewalPolicy>> {
        let mut c = self.reader().await?;
        let rows: Listing<PolicyRow> = paging::list(
            &mut c.conn(),
            POLICY_COLUMNS,
            "SELECT COUNT(*) FROM renewal_policies",
            |q| {
                q.push(" WHERE 1=1");
            },
            Order { key: CREATED, desc: false },
            paging,
        )
        .await?;
        rows.try_map(RenewalPolicy::try_from)
    }

    pub async fn renewal_policy(&self, id: &str) -> Result<RenewalPolicy> {
        let mut c = self.reader().await?;
        policy_in(&mut c.conn(), id).await
    }

    /// Creates a policy; without a client ID it gets `rp-<slug of name>`.
    pub async fn create_renewal_policy(
        &self,
        req: &CreateRenewalPolicy,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<RenewalPolicy> {
        let mut p = default_policy(String::new(), req.name.to_string(), now);
        apply_policy_fields!(p, req);
        normalize_policy(&mut p)?;

        let mut tx = self.begin().await?;
        p.id = match &req.id {
            Some(id) => {
                id_free(&mut tx.conn(), "renewal_policies", "renewal policy", id.as_str()).await?;
                id.to_string()
            }
            None => generated_id(&mut tx.conn(), &p.name).await?,
        };
        name_free(&mut tx.conn(), "renewal_policies", "renewal policy", &p.name, None).await?;
        if let Some(profile) = &p.certificate_profile_id {
            must_reference(
                &mut tx.conn(),
                "certificate_profiles",
                "certificate_profile_id",
                "certificate profile",
                profile,
            )
            .await?;
        }
        insert_policy(&mut tx.conn(), &p).await?;
        append(&mut tx, &[audit(actor, "renewal_policy_created", &p.id, created_details(&p))], now).await?;
        tx.commit().await?;
        self.renewal_policy(&p.id).await
    }

    /// Applies the fields present in `req` and validates the result as a whole (a severity map
    /// must still match the thresholds it kept).
    pub async fn update_renewal_policy(
        &self,
        id: &str,
        req: &UpdateRenewalPolicy,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<RenewalPolicy> {
        let mut tx = self.begin().await?;
        let mut p = policy_in(&mut tx.conn(), id).await?;
        if let Some(name) = &req.name {
            name_free(&mut tx.conn(), "renewal_policies", "renewal policy", name.as_str(), Some(id)).await?;
            p.name = name.to_string();
        }
        apply_policy_fields!(p, req);
        normalize_policy(&mut p)?;
        if let Some(profile) = &req.certificate_profile_id {
            must_reference(
                &mut tx.conn(),
                "certificate_profiles",
                "certificate_profile_id",
                "certificate profile",
                profile.as_str(),
            )
            .await?;
        }
        let update = Sql::new(
            "UPDATE renewal_policies SET name = $2, renewal_window_days = $3, auto_renew = $4, max_retries = $5, \
             retry_interval_seconds = $6, alert_thresholds_days = $7, alert_channels = $8, \
             alert_severity_map = $9, certificate_profile_id = $10, updated_at = $11 WHERE id = $1",
        )
        .arg(id);
        bind_policy(update, &p, now).execute(&mut tx.conn()).await?;
        append(&mut tx, &[audit(actor, "renewal_policy_updated", id, json!({ "changes": req }))], now).await?;
        tx.commit().await?;
        self.renewal_policy(id).await
    }

    /// Deletes a policy that no certificate uses.
    pub async fn delete_renewal_policy(&self, id: &str, actor: &Actor, now: OffsetDateTime) -> Result<()> {
        const POLICY: Deletable = Deletable {
            table: "renewal_policies",
            resource: "renewal policy",
            kind: "renewal_policy",
            referrers: &[("SELECT COUNT(*) FROM managed_certificates WHERE renewal_policy_id = $1", "certificates")],
        };
        self.delete_unreferenced(&POLICY, id, actor, now).await
    }

    /// Creates `rp-default` with the default settings unless it exists, and returns it. Safe to
    /// run from several servers at once: a concurrent creation wins and is returned.
    pub async fn ensure_default_renewal_policy(&self, actor: &Actor, now: OffsetDateTime) -> Result<RenewalPolicy> {
        match self.create_default_policy(actor, now).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) if self.renewal_policy(DEFAULT_RENEWAL_POLICY_ID).await.is_ok() => {}
            Err(e) => return Err(e),
        }
        self.renewal_policy(DEFAULT_RENEWAL_POLICY_ID).await
    }

    async fn create_default_policy(&self, actor: &Actor, now: OffsetDateTime) -> Result<()> {
        let mut tx = self.begin().await?;
        if exists(&mut tx.conn(), "renewal_policies", DEFAULT_RENEWAL_POLICY_ID).await? {
            return Ok(());
        }
        // A user may already have a policy called "Default"; names are unique, IDs are what
        // certificates use, so the seeded one takes a distinct name then.
        let name = match name_free(&mut tx.conn(), "renewal_policies", "renewal policy", "Default", None).await {
            Ok(()) => "Default",
            Err(StoreError::Conflict(_)) => "Default (rp-default)",
            Err(e) => return Err(e),
        };
        let p = default_policy(DEFAULT_RENEWAL_POLICY_ID.to_owned(), name.to_owned(), now);
        insert_policy(&mut tx.conn(), &p).await?;
        append(&mut tx, &[audit(actor, "renewal_policy_created", &p.id, created_details(&p))], now).await?;
        tx.commit().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RenewalPolicy {
        default_policy("rp-t".into(), "t".into(), OffsetDateTime::UNIX_EPOCH)
    }

    fn field_of(res: Result<()>) -> &'static str {
        match res {
            Err(StoreError::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("Production Web"), "production-web");
        assert_eq!(slug("  --Prod__EU (fast)!! "), "prod-eu-fast");
        assert_eq!(slug("A1.b2/C3"), "a1-b2-c3");
        assert_eq!(slug("Zürich 90d"), "z-rich-90d");
        assert_eq!(slug("!!!"), "");
        assert_eq!(slug(""), "");
        let long = "x".repeat(59) + " yz";
        assert_eq!(slug(&long), "x".repeat(59), "a trailing '-' left by truncation is trimmed");
        assert_eq!(slug(&"ab".repeat(40)).len(), 60);
    }

    #[test]
    fn candidates() {
        let c = id_candidates("Web Servers");
        assert_eq!(c.len(), 10);
        assert_eq!(c[0], "rp-web-servers");
        assert_eq!(c[1], "rp-web-servers-2");
        assert_eq!(c[9], "rp-web-servers-10");
        assert!(id_candidates("***").is_empty());
        assert!(id_candidates(&"n".repeat(300)).iter().all(|id| id.len() <= 66));
    }

    #[test]
    fn defaults_are_valid_and_canonical() {
        let mut p = policy();
        normalize_policy(&mut p).unwrap();
        assert_eq!(p, policy());
    }

    /// Sets one numeric field of a policy.
    type Setter = fn(&mut RenewalPolicy, i64);

    #[test]
    fn scalar_bounds() {
        let cases: [(&str, Setter, i64, i64); 3] = [
            ("renewal_window_days", |p, v| p.renewal_window_days = v, 1, 365),
            ("max_retries", |p, v| p.max_retries = v, 0, 10),
            ("retry_interval_seconds", |p, v| p.retry_interval_seconds = v, 60, 86_400),
        ];
        for (field, set, min, max) in cases {
            for ok in [min, max] {
                let mut p = policy();
                set(&mut p, ok);
                normalize_policy(&mut p).unwrap_or_else(|e| panic!("{field}={ok}: {e}"));
            }
            for bad in [min - 1, max + 1] {
                let mut p = policy();
                set(&mut p, bad);
                assert_eq!(field_of(normalize_policy(&mut p)), field, "{field}={bad}");
            }
        }
    }

    #[test]
    fn thresholds_sorted_descending_and_unique() {
        let mut p = policy();
        p.alert_thresholds_days = vec![7, 30, 0, 7, 365];
        normalize_policy(&mut p).unwrap();
        assert_eq!(p.alert_thresholds_days, vec![365, 30, 7, 0]);
        for bad in [-1, 366] {
            let mut p = policy();
            p.alert_thresholds_days = vec![30, bad];
            assert_eq!(field_of(normalize_policy(&mut p)), "alert_thresholds_days");
        }
    }

    #[test]
    fn severity_map_keys() {
        let mut p = policy();
        p.alert_severity_map =
            BTreeMap::from([("07".to_owned(), SeverityTier::Warning), ("0".to_owned(), SeverityTier::Critical)]);
        normalize_policy(&mut p).unwrap();
        assert_eq!(
            p.alert_severity_map,
            BTreeMap::from([("7".to_owned(), SeverityTier::Warning), ("0".to_owned(), SeverityTier::Critical)])
        );
        for bad in ["x", "-1", "400", "15", "7.5"] {
            let mut p = policy();
            p.alert_severity_map = BTreeMap::from([(bad.to_owned(), SeverityTier::Warning)]);
            assert_eq!(field_of(normalize_policy(&mut p)), "alert_severity_map", "{bad}");
        }
        let mut p = policy();
        p.alert_severity_map =
            BTreeMap::from([("7".to_owned(), SeverityTier::Warning), ("007".to_owned(), SeverityTier::Critical)]);
        assert_eq!(field_of(normalize_policy(&mut p)), "alert_severity_map");
    }

    #[test]
    fn channel_names() {
        let mut p = policy();
        p.alert_channels =
            BTreeMap::from([(SeverityTier::Critical, vec![" Slack ".to_owned(), "Email".into(), "Slack".into()])]);
        normalize_policy(&mut p).unwrap();
        assert_eq!(p.alert_channels[&SeverityTier::Critical], vec!["Slack".to_owned(), "Email".into()]);
        let mut p = policy();
        p.alert_channels = BTreeMap::from([(SeverityTier::Warning, vec!["Email".to_owned(), "  ".into()])]);
        assert_eq!(field_of(normalize_policy(&mut p)), "alert_channels");
    }
}

//! Certificate profiles: the issuance constraints a set of certificates shares.

use serde::Deserialize;
use serde_json::json;
use sqlx::FromRow;
use time::OffsetDateTime;

use certctl_api::{
    AcmeAuthMode, CertificateProfile, CreateProfile, ExtendedKeyUsage, KeyAlgorithm, KeyAlgorithmRule, UpdateProfile,
    check_dns_name,
};

use crate::audit::{AuditEntry, append};
use crate::common::{Actor, Deletable, id_free, name_free};
use crate::paging::{self, CREATED, Keyed, Listing, Order, Paging, SortValue};
use crate::sql::{Conn, Sql};
use crate::{Result, Store, StoreError, from_micros, new_id, parse_enum, parse_json, to_json, to_micros};

/// Validity below which a profile counts as short-lived (one hour).
const SHORT_LIVED_LIMIT: i64 = 3600;

/// Longest accepted `max_ttl_seconds` (100 years), so adding it to a time cannot overflow.
const MAX_TTL_LIMIT: i64 = 100 * 366 * 86_400;

#[derive(Debug, FromRow, Deserialize)]
struct ProfileRow {
    id: String,
    name: String,
    description: String,
    allowed_key_algorithms: String,
    max_ttl_seconds: i64,
    allowed_ekus: String,
    required_san_patterns: String,
    spiffe_uri_pattern: String,
    allow_short_lived: bool,
    must_staple: bool,
    requires_approval: bool,
    key_mode: Option<String>,
    acme_auth_mode: String,
    enabled: bool,
    created_at: i64,
    updated_at: i64,
}

impl Keyed for ProfileRow {
    fn id(&self) -> &str {
        &self.id
    }
    fn sort_value(&self, _: &str) -> SortValue {
        SortValue::Int(self.created_at)
    }
}

impl TryFrom<ProfileRow> for CertificateProfile {
    type Error = StoreError;

    fn try_from(r: ProfileRow) -> Result<Self> {
        Ok(CertificateProfile {
            id: r.id,
            name: r.name,
            description: r.description,
            allowed_key_algorithms: parse_json("allowed_key_algorithms", &r.allowed_key_algorithms)?,
            max_ttl_seconds: r.max_ttl_seconds,
            allowed_ekus: parse_json("allowed_ekus", &r.allowed_ekus)?,
            required_san_patterns: parse_json("required_san_patterns", &r.required_san_patterns)?,
            spiffe_uri_pattern: r.spiffe_uri_pattern,
            allow_short_lived: r.allow_short_lived,
            must_staple: r.must_staple,
            requires_approval: r.requires_approval,
            key_mode: r.key_mode.as_deref().map(|m| parse_enum("key_mode", m)).transpose()?,
            acme_auth_mode: parse_enum("acme_auth_mode", &r.acme_auth_mode)?,
            enabled: r.enabled,
            created_at: from_micros(r.created_at),
            updated_at: from_micros(r.updated_at),
        })
    }
}

const PROFILE_COLUMNS: &str = "SELECT id, name, description, allowed_key_algorithms, max_ttl_seconds, allowed_ekus, \
     required_san_patterns, spiffe_uri_pattern, allow_short_lived, must_staple, requires_approval, key_mode, \
     acme_auth_mode, enabled, created_at, updated_at FROM certificate_profiles";

/// Copies every field present in a create or update request onto a profile; both request types
/// carry the same optional fields.
macro_rules! apply_profile_fields {
    ($p:expr, $req:expr) => {{
        let (p, req) = (&mut $p, &$req);
        if let Some(v) = &req.description {
            p.description = v.clone();
        }
        if let Some(v) = &req.allowed_key_algorithms {
            p.allowed_key_algorithms = v.clone();
        }
        if let Some(v) = req.max_ttl_seconds {
            p.max_ttl_seconds = v;
        }
        if let Some(v) = &req.allowed_ekus {
            p.allowed_ekus = v.clone();
        }
        if let Some(v) = &req.required_san_patterns {
            p.required_san_patterns = v.clone();
        }
        if let Some(v) = &req.spiffe_uri_pattern {
            p.spiffe_uri_pattern = v.clone();
        }
        if let Some(v) = req.allow_short_lived {
            p.allow_short_lived = v;
        }
        if let Some(v) = req.must_staple {
            p.must_staple = v;
        }
        if let Some(v) = req.requires_approval {
            p.requires_approval = v;
        }
        if let Some(v) = req.key_mode {
            p.key_mode = Some(v);
        }
        if let Some(v) = req.acme_auth_mode {
            p.acme_auth_mode = v;
        }
        if let Some(v) = req.enabled {
            p.enabled = v;
        }
    }};
}

fn invalid(field: &'static str, message: impl Into<String>) -> StoreError {
    StoreError::Invalid { field, message: message.into() }
}

/// A profile with every default, before a create request is applied.
fn default_profile(id: String, name: String, now: OffsetDateTime) -> CertificateProfile {
    CertificateProfile {
        id,
        name,
        description: String::new(),
        allowed_key_algorithms: vec![
            KeyAlgorithmRule { algorithm: KeyAlgorithm::Ecdsa, min_size: 256 },
            KeyAlgorithmRule { algorithm: KeyAlgorithm::Rsa, min_size: 2048 },
        ],
        max_ttl_seconds: 0,
        allowed_ekus: vec![ExtendedKeyUsage::ServerAuth],
        required_san_patterns: Vec::new(),
        spiffe_uri_pattern: String::new(),
        allow_short_lived: false,
        must_staple: false,
        requires_approval: false,
        key_mode: None,
        acme_auth_mode: AcmeAuthMode::TrustAuthenticated,
        enabled: true,
        created_at: now,
        updated_at: now,
    }
}

/// Checks one key rule and returns it with `min_size` made explicit (0 means the algorithm's
/// minimum, so the stored rule never depends on that convention).
pub(crate) fn normalize_key_rule(rule: &KeyAlgorithmRule) -> Result<KeyAlgorithmRule, String> {
    let min_size = match (rule.algorithm, rule.min_size) {
        (KeyAlgorithm::Rsa, n @ 2048..=8192) => n,
        (KeyAlgorithm::Rsa, n) => return Err(format!("RSA min_size must be between 2048 and 8192, not {n}")),
        (KeyAlgorithm::Ecdsa, 0) => 256,
        (KeyAlgorithm::Ecdsa, n @ (256 | 384)) => n,
        (KeyAlgorithm::Ecdsa, n) => return Err(format!("ECDSA min_size must be 256 or 384 (or 0 for 256), not {n}")),
        (KeyAlgorithm::Ed25519, 0 | 256) => 256,
        (KeyAlgorithm::Ed25519, n) => return Err(format!("Ed25519 min_size must be 0 or 256, not {n}")),
    };
    Ok(KeyAlgorithmRule { algorithm: rule.algorithm, min_size })
}

/// Validates a complete profile and puts it in canonical form: explicit key sizes, no duplicate
/// key rules, EKUs or SAN patterns. Errors name the offending field.
pub(crate) fn normalize_profile(p: &mut CertificateProfile) -> Result<()> {
    if p.allowed_key_algorithms.is_empty() {
        return Err(invalid("allowed_key_algorithms", "must list at least one key algorithm"));
    }
    let mut rules: Vec<KeyAlgorithmRule> = Vec::with_capacity(p.allowed_key_algorithms.len());
    for (i, rule) in p.allowed_key_algorithms.iter().enumerate() {
        let rule = normalize_key_rule(rule).map_err(|m| invalid("allowed_key_algorithms", format!("[{i}]: {m}")))?;
        if !rules.contains(&rule) {
            rules.push(rule);
        }
    }
    p.allowed_key_algorithms = rules;

    if p.max_ttl_seconds < 0 {
        return Err(invalid("max_ttl_seconds", "must not be negative"));
    }
    if p.max_ttl_seconds > MAX_TTL_LIMIT {
        return Err(invalid("max_ttl_seconds", format!("must be at most {MAX_TTL_LIMIT} (100 years)")));
    }
    if p.allow_short_lived && !(1..SHORT_LIVED_LIMIT).contains(&p.max_ttl_seconds) {
        return Err(invalid(
            "max_ttl_seconds",
            format!("must be between 1 and {} when allow_short_lived is true", SHORT_LIVED_LIMIT - 1),
        ));
    }

    if p.allowed_ekus.is_empty() {
        return Err(invalid("allowed_ekus", "must list at least one extended key usage"));
    }
    let mut ekus = Vec::with_capacity(p.allowed_ekus.len());
    for eku in &p.allowed_ekus {
        if !ekus.contains(eku) {
            ekus.push(*eku);
        }
    }
    p.allowed_ekus = ekus;

    let mut patterns: Vec<String> = Vec::with_capacity(p.required_san_patterns.len());
    for (i, pattern) in p.required_san_patterns.iter().enumerate() {
        check_dns_name(pattern, true).map_err(|e| invalid("required_san_patterns", format!("[{i}]: {e}")))?;
        if !patterns.contains(pattern) {
            patterns.push(pattern.clone());
        }
    }
    p.required_san_patterns = patterns;
    Ok(())
}

/// Binds `$2…$15` of the insert and the update, which list the columns in the same order.
fn bind_profile(q: Sql, p: &CertificateProfile, now: OffsetDateTime) -> Sql {
    q.arg(&p.name)
        .arg(&p.description)
        .arg(to_json(&p.allowed_key_algorithms))
        .arg(p.max_ttl_seconds)
        .arg(to_json(&p.allowed_ekus))
        .arg(to_json(&p.required_san_patterns))
        .arg(&p.spiffe_uri_pattern)
        .arg(p.allow_short_lived)
        .arg(p.must_staple)
        .arg(p.requires_approval)
        .arg(p.key_mode.map(|m| m.as_str().to_owned()))
        .arg(p.acme_auth_mode.as_str())
        .arg(p.enabled)
        .arg(to_micros(now))
}

fn audit(actor: &Actor, action: &str, id: &str, details: serde_json::Value) -> AuditEntry {
    AuditEntry::new(actor.name.clone(), actor.kind, action, "certificate_profile", id, details)
}

async fn profile_in(conn: &mut Conn<'_>, id: &str) -> Result<CertificateProfile> {
    let mut q = Sql::default();
    q.push(PROFILE_COLUMNS).push(" WHERE id = ").push_bind(id);
    let row: Option<ProfileRow> = q.fetch_optional(conn).await?;
    match row {
        Some(r) => r.try_into(),
        None => Err(StoreError::NotFound { resource: "certificate profile", id: id.to_owned() }),
    }
}

impl Store {
    pub async fn list_profiles(&self, paging: &Paging) -> Result<Listing<CertificateProfile>> {
        let mut c = self.reader().await?;
        let rows: Listing<ProfileRow> = paging::list(
            &mut c.conn(),
            PROFILE_COLUMNS,
            "SELECT COUNT(*) FROM certificate_profiles",
            |q| {
                q.push(" WHERE 1=1");
            },
            Order { key: CREATED, desc: false },
            paging,
        )
        .await?;
        rows.try_map(CertificateProfile::try_from)
    }

    pub async fn profile(&self, id: &str) -> Result<CertificateProfile> {
        let mut c = self.reader().await?;
        profile_in(&mut c.conn(), id).await
    }

    pub async fn create_profile(
        &self,
        req: &CreateProfile,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<CertificateProfile> {
        let id = req.id.as_ref().map(|i| i.to_string()).unwrap_or_else(|| new_id("prof"));
        let mut p = default_profile(id, req.name.to_string(), now);
        apply_profile_fields!(p, req);
        normalize_profile(&mut p)?;

        let mut tx = self.begin().await?;
        id_free(&mut tx.conn(), "certificate_profiles", "certificate profile", &p.id).await?;
        name_free(&mut tx.conn(), "certificate_profiles", "certificate profile", &p.name, None).await?;
        let insert = Sql::new(
            "INSERT INTO certificate_profiles (id, name, description, allowed_key_algorithms, max_ttl_seconds, \
             allowed_ekus, required_san_patterns, spiffe_uri_pattern, allow_short_lived, must_staple, \
             requires_approval, key_mode, acme_auth_mode, enabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15)",
        )
        .arg(&p.id);
        bind_profile(insert, &p, now).execute(&mut tx.conn()).await?;
        let details = json!({
            "name": p.name,
            "allowed_key_algorithms": p.allowed_key_algorithms,
            "max_ttl_seconds": p.max_ttl_seconds,
            "allowed_ekus": p.allowed_ekus,
            "allow_short_lived": p.allow_short_lived,
            "requires_approval": p.requires_approval,
            "enabled": p.enabled,
        });
        append(&mut tx, &[audit(actor, "certificate_profile_created", &p.id, details)], now).await?;
        tx.commit().await?;
        self.profile(&p.id).await
    }

    /// Applies the fields present in `req` and validates the result as a whole, so a change to
    /// one field cannot leave the profile inconsistent with another it kept.
    pub async fn update_profile(
        &self,
        id: &str,
        req: &UpdateProfile,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<CertificateProfile> {
        let mut tx = self.begin().await?;
        let mut p = profile_in(&mut tx.conn(), id).await?;
        if let Some(name) = &req.name {
            name_free(&mut tx.conn(), "certificate_profiles", "certificate profile", name.as_str(), Some(id)).await?;
            p.name = name.to_string();
        }
        apply_profile_fields!(p, req);
        normalize_profile(&mut p)?;
        let update = Sql::new(
            "UPDATE certificate_profiles SET name = $2, description = $3, allowed_key_algorithms = $4, \
             max_ttl_seconds = $5, allowed_ekus = $6, required_san_patterns = $7, spiffe_uri_pattern = $8, \
             allow_short_lived = $9, must_staple = $10, requires_approval = $11, key_mode = $12, \
             acme_auth_mode = $13, enabled = $14, updated_at = $15 WHERE id = $1",
        )
        .arg(id);
        bind_profile(update, &p, now).execute(&mut tx.conn()).await?;
        append(&mut tx, &[audit(actor, "certificate_profile_updated", id, json!({ "changes": req }))], now).await?;
        tx.commit().await?;
        self.profile(id).await
    }

    /// Deletes a profile that no certificate or renewal policy references.
    pub async fn delete_profile(&self, id: &str, actor: &Actor, now: OffsetDateTime) -> Result<()> {
        const PROFILE: Deletable = Deletable {
            table: "certificate_profiles",
            resource: "certificate profile",
            kind: "certificate_profile",
            referrers: &[
                ("SELECT COUNT(*) FROM managed_certificates WHERE certificate_profile_id = $1", "certificates"),
                ("SELECT COUNT(*) FROM renewal_policies WHERE certificate_profile_id = $1", "renewal policies"),
            ],
        };
        self.delete_unreferenced(&PROFILE, id, actor, now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(algorithm: KeyAlgorithm, min_size: u32) -> KeyAlgorithmRule {
        KeyAlgorithmRule { algorithm, min_size }
    }

    fn profile() -> CertificateProfile {
        default_profile("prof-t".into(), "t".into(), OffsetDateTime::UNIX_EPOCH)
    }

    fn field_of(err: StoreError) -> &'static str {
        match err {
            StoreError::Invalid { field, .. } => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn key_rules() {
        for (alg, size, want) in [
            (KeyAlgorithm::Rsa, 2048, 2048),
            (KeyAlgorithm::Rsa, 8192, 8192),
            (KeyAlgorithm::Ecdsa, 0, 256),
            (KeyAlgorithm::Ecdsa, 256, 256),
            (KeyAlgorithm::Ecdsa, 384, 384),
            (KeyAlgorithm::Ed25519, 0, 256),
            (KeyAlgorithm::Ed25519, 256, 256),
        ] {
            assert_eq!(normalize_key_rule(&rule(alg, size)), Ok(rule(alg, want)), "{alg} {size}");
        }
        for (alg, size) in [
            (KeyAlgorithm::Rsa, 0),
            (KeyAlgorithm::Rsa, 1024),
            (KeyAlgorithm::Rsa, 2047),
            (KeyAlgorithm::Rsa, 8193),
            (KeyAlgorithm::Ecdsa, 224),
            (KeyAlgorithm::Ecdsa, 521),
            (KeyAlgorithm::Ed25519, 255),
            (KeyAlgorithm::Ed25519, 448),
        ] {
            assert!(normalize_key_rule(&rule(alg, size)).is_err(), "{alg} {size} accepted");
        }
    }

    #[test]
    fn defaults_are_valid_and_canonical() {
        let mut p = profile();
        normalize_profile(&mut p).unwrap();
        assert_eq!(p, profile());
    }

    #[test]
    fn algorithms_must_not_be_empty() {
        let mut p = profile();
        p.allowed_key_algorithms.clear();
        assert_eq!(field_of(normalize_profile(&mut p).unwrap_err()), "allowed_key_algorithms");
    }

    #[test]
    fn bad_rule_names_the_field_and_index() {
        let mut p = profile();
        p.allowed_key_algorithms.push(rule(KeyAlgorithm::Rsa, 1024));
        let err = normalize_profile(&mut p).unwrap_err();
        assert!(err.to_string().starts_with("allowed_key_algorithms: [2]: RSA"), "{err}");
    }

    #[test]
    fn duplicate_rules_and_ekus_collapse() {
        let mut p = profile();
        p.allowed_key_algorithms = vec![rule(KeyAlgorithm::Ecdsa, 0), rule(KeyAlgorithm::Ecdsa, 256)];
        p.allowed_ekus = vec![ExtendedKeyUsage::ClientAuth, ExtendedKeyUsage::ServerAuth, ExtendedKeyUsage::ClientAuth];
        normalize_profile(&mut p).unwrap();
        assert_eq!(p.allowed_key_algorithms, vec![rule(KeyAlgorithm::Ecdsa, 256)]);
        assert_eq!(p.allowed_ekus, vec![ExtendedKeyUsage::ClientAuth, ExtendedKeyUsage::ServerAuth]);
    }

    #[test]
    fn ekus_must_not_be_empty() {
        let mut p = profile();
        p.allowed_ekus.clear();
        assert_eq!(field_of(normalize_profile(&mut p).unwrap_err()), "allowed_ekus");
    }

    #[test]
    fn ttl_bounds() {
        for ttl in [-1, MAX_TTL_LIMIT + 1] {
            let mut p = profile();
            p.max_ttl_seconds = ttl;
            assert_eq!(field_of(normalize_profile(&mut p).unwrap_err()), "max_ttl_seconds", "{ttl}");
        }
        let mut p = profile();
        p.max_ttl_seconds = 90 * 86_400;
        normalize_profile(&mut p).unwrap();
    }

    #[test]
    fn short_lived_needs_ttl_below_an_hour() {
        for (ttl, ok) in [(0, false), (1, true), (3599, true), (3600, false), (86_400, false)] {
            let mut p = profile();
            p.allow_short_lived = true;
            p.max_ttl_seconds = ttl;
            let res = normalize_profile(&mut p);
            assert_eq!(res.is_ok(), ok, "ttl {ttl}: {res:?}");
            if let Err(e) = res {
                assert_eq!(field_of(e), "max_ttl_seconds");
            }
        }
    }

    #[test]
    fn san_patterns() {
        let mut p = profile();
        p.required_san_patterns = vec!["*.example.com".into(), "api.example.com".into(), "*.example.com".into()];
        normalize_profile(&mut p).unwrap();
        assert_eq!(p.required_san_patterns, vec!["*.example.com".to_owned(), "api.example.com".to_owned()]);
        for bad in ["", "^.*\\.example\\.com$", "a.*.example.com", "*", "exa mple.com", "-a.example.com"] {
            let mut p = profile();
            p.required_san_patterns = vec!["ok.example.com".into(), bad.into()];
            let err = normalize_profile(&mut p).unwrap_err();
            assert!(err.to_string().starts_with("required_san_patterns: [1]: "), "{bad}: {err}");
        }
    }
}

/// Profiles and renewal policies against a real database, on each backend.
#[cfg(all(test, feature = "testing"))]
mod store_tests {
    use certctl_api::{CreateRenewalPolicy, KeyMode, Name, ResourceId, SeverityTier, UpdateRenewalPolicy};

    use super::*;
    use crate::testing::TestDb;
    use crate::{Backend, DEFAULT_RENEWAL_POLICY_ID};

    fn create(name: &str) -> CreateProfile {
        serde_json::from_value(json!({ "name": name })).unwrap()
    }

    fn policy(name: &str) -> CreateRenewalPolicy {
        serde_json::from_value(json!({ "name": name })).unwrap()
    }

    async fn scenario(backend: Backend) {
        let Some(db) = TestDb::new(backend).await else { return };
        let store = db.store().await;
        let actor = Actor::user("alice");
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);

        let p = store.create_profile(&create("Web"), &actor, now).await.unwrap();
        assert!(p.id.starts_with("prof-"));
        assert_eq!(p, default_profile(p.id.clone(), "Web".into(), now));
        assert!(matches!(store.create_profile(&create("Web"), &actor, now).await, Err(StoreError::Conflict(_))));
        let bad: CreateProfile =
            serde_json::from_value(json!({"name": "x", "allowed_key_algorithms": [{"algorithm": "RSA"}]})).unwrap();
        assert!(matches!(
            store.create_profile(&bad, &actor, now).await,
            Err(StoreError::Invalid { field: "allowed_key_algorithms", .. })
        ));

        let short: UpdateProfile = serde_json::from_value(json!({"allow_short_lived": true})).unwrap();
        assert!(matches!(
            store.update_profile(&p.id, &short, &actor, now).await,
            Err(StoreError::Invalid { field: "max_ttl_seconds", .. })
        ));
        let short: UpdateProfile = serde_json::from_value(json!({
            "allow_short_lived": true, "max_ttl_seconds": 600, "key_mode": "server",
            "allowed_ekus": ["clientAuth", "clientAuth"], "name": "Web short"
        }))
        .unwrap();
        let later = now + time::Duration::seconds(5);
        let u = store.update_profile(&p.id, &short, &actor, later).await.unwrap();
        assert_eq!(
            (u.name.as_str(), u.max_ttl_seconds, u.key_mode, u.allowed_ekus.clone(), u.updated_at, u.created_at),
            ("Web short", 600, Some(KeyMode::Server), vec![ExtendedKeyUsage::ClientAuth], later, now)
        );
        assert_eq!(store.profile(&p.id).await.unwrap(), u);

        let rp = store.create_renewal_policy(&policy("Web Servers!"), &actor, now).await.unwrap();
        assert_eq!(rp, default_policy_for_test(&rp.id, "Web Servers!", now));
        assert_eq!(rp.id, "rp-web-servers");
        let rp2 = store.create_renewal_policy(&policy("web servers"), &actor, now).await.unwrap();
        assert_eq!(rp2.id, "rp-web-servers-2");
        assert!(matches!(
            store.create_renewal_policy(&policy("web servers"), &actor, now).await,
            Err(StoreError::Conflict(_))
        ));
        let mut with_profile = policy("Bound");
        with_profile.id = Some(ResourceId::parse("bound").unwrap());
        with_profile.certificate_profile_id = Some(ResourceId::parse("prof-missing").unwrap());
        assert!(matches!(
            store.create_renewal_policy(&with_profile, &actor, now).await,
            Err(StoreError::InvalidReference { field: "certificate_profile_id", .. })
        ));
        with_profile.certificate_profile_id = Some(ResourceId::parse(p.id.clone()).unwrap());
        with_profile.alert_thresholds_days = Some(vec![7, 60, 7]);
        with_profile.alert_severity_map = Some([("7".to_owned(), SeverityTier::Critical)].into());
        let bound = store.create_renewal_policy(&with_profile, &actor, now).await.unwrap();
        assert_eq!((bound.id.as_str(), bound.alert_thresholds_days.clone()), ("bound", vec![60, 7]));
        assert_eq!(store.renewal_policy("bound").await.unwrap(), bound);

        let drop_seven: UpdateRenewalPolicy = serde_json::from_value(json!({"alert_thresholds_days": [30]})).unwrap();
        assert!(matches!(
            store.update_renewal_policy("bound", &drop_seven, &actor, now).await,
            Err(StoreError::Invalid { field: "alert_severity_map", .. })
        ));
        let rename = UpdateRenewalPolicy {
            name: Some(Name::parse("Bound 2").unwrap()),
            ..serde_json::from_value(json!({"max_retries": 0, "auto_renew": false})).unwrap()
        };
        let b2 = store.update_renewal_policy("bound", &rename, &actor, later).await.unwrap();
        assert_eq!((b2.name.as_str(), b2.max_retries, b2.auto_renew, b2.updated_at), ("Bound 2", 0, false, later));

        match store.delete_profile(&p.id, &actor, now).await {
            Err(StoreError::Conflict(m)) => assert!(m.contains("1 renewal policy"), "{m}"),
            other => panic!("referenced profile deleted: {other:?}"),
        }
        store.delete_renewal_policy("bound", &actor, now).await.unwrap();
        store.delete_profile(&p.id, &actor, now).await.unwrap();
        assert!(matches!(store.profile(&p.id).await, Err(StoreError::NotFound { .. })));

        let d = store.ensure_default_renewal_policy(&Actor::system(), now).await.unwrap();
        assert_eq!(d, default_policy_for_test(DEFAULT_RENEWAL_POLICY_ID, "Default", now));
        assert_eq!(store.ensure_default_renewal_policy(&Actor::system(), later).await.unwrap(), d);
        let listed = store.list_renewal_policies(&Paging::Page { page: 1, per_page: 10 }).await.unwrap();
        assert_eq!(listed.data().len(), 3);
        let listed = store.list_profiles(&Paging::Cursor { cursor: None, size: 10 }).await.unwrap();
        assert!(listed.data().is_empty());
        // One record per successful change; the refused ones and the second ensure write none.
        let filter = crate::AuditFilterParsed::default();
        let audit = store.list_audit(&filter, &Paging::Page { page: 1, per_page: 1 }).await.unwrap();
        match audit {
            Listing::Page { total, .. } => assert_eq!(total, 9),
            other => panic!("page mode returned {other:?}"),
        }
        db.cleanup().await;
    }

    fn default_policy_for_test(id: &str, name: &str, now: OffsetDateTime) -> certctl_api::RenewalPolicy {
        certctl_api::RenewalPolicy {
            id: id.into(),
            name: name.into(),
            renewal_window_days: 30,
            auto_renew: true,
            max_retries: 3,
            retry_interval_seconds: 3600,
            alert_thresholds_days: vec![30, 14, 7, 0],
            alert_channels: Default::default(),
            alert_severity_map: Default::default(),
            certificate_profile_id: None,
            created_at: now,
            updated_at: now,
        }
    }

    #[tokio::test]
    async fn sqlite() {
        scenario(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn postgres() {
        scenario(Backend::Postgres).await;
    }
}

//! The ACME server's state: profile bindings, accounts, orders with their authorizations and
//! challenges, spent nonces, and the one transaction that turns a finalized order into a managed
//! certificate.

use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::FromRow;
use time::OffsetDateTime;

use certctl_api::ActorType;

use crate::audit::{AuditEntry, append};
use crate::common::Actor;
use crate::issuance::IssuedVersion;
use crate::sql::{Conn, Sql};
use crate::{Backend, Result, Store, StoreError, batch_or_each, from_micros, opt_time, parse_json, to_json, to_micros};

/// Rows per multi-row INSERT of a batch, well under either backend's limit on bound parameters.
const ACME_ROWS_PER_INSERT: usize = 64;

macro_rules! status_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant,)*
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            fn parse(column: &str, text: &str) -> Result<Self> {
                match text {
                    $($text => Ok($name::$variant),)*
                    other => Err(StoreError::Corrupt(format!("{column}: unexpected value '{other}'"))),
                }
            }
        }
    };
}

status_enum!(
    /// RFC 8555 §7.1.6 account states.
    AccountStatus { Valid = "valid", Deactivated = "deactivated", Revoked = "revoked", }
);
status_enum!(
    /// RFC 8555 §7.1.6 order states.
    OrderStatus { Pending = "pending", Ready = "ready", Processing = "processing", Valid = "valid", Invalid = "invalid", }
);
status_enum!(
    /// RFC 8555 §7.1.6 authorization states.
    AuthzStatus {
        Pending = "pending",
        Valid = "valid",
        Invalid = "invalid",
        Deactivated = "deactivated",
        Expired = "expired",
        Revoked = "revoked",
    }
);
status_enum!(
    /// RFC 8555 §7.1.6 challenge states.
    ChallengeStatus { Pending = "pending", Processing = "processing", Valid = "valid", Invalid = "invalid", }
);

/// A profile served over ACME and where its certificates go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeBindingRecord {
    pub profile_id: String,
    pub issuer_id: String,
    pub owner_id: String,
    pub team_id: String,
    pub renewal_policy_id: String,
    /// New accounts must carry an external account binding (RFC 8555 §7.3.4).
    pub external_account_required: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// An ACME identifier (RFC 8555 §9.7.7): `dns` or `ip`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AcmeIdentifier {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeAccount {
    pub id: String,
    pub profile_id: String,
    /// RFC 7638 thumbprint (base64url SHA-256) of the account key.
    pub thumbprint: String,
    /// The account key as a JWK (JSON text).
    pub jwk: String,
    pub status: AccountStatus,
    pub contact: Vec<String>,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeOrder {
    pub id: String,
    pub account_id: String,
    pub profile_id: String,
    pub status: OrderStatus,
    pub expires_at: OffsetDateTime,
    pub identifiers: Vec<AcmeIdentifier>,
    pub not_before: Option<OffsetDateTime>,
    pub not_after: Option<OffsetDateTime>,
    /// A problem document (JSON text) when the order is invalid.
    pub error: Option<String>,
    /// The managed certificate issued for the order.
    pub certificate_id: Option<String>,
    /// Its authorizations, in identifier order.
    pub authz_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeChallenge {
    pub id: String,
    pub authz_id: String,
    pub kind: String,
    pub token: String,
    pub status: ChallengeStatus,
    pub validated_at: Option<OffsetDateTime>,
    /// A problem document (JSON text) when validation failed.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeAuthz {
    pub id: String,
    pub order_id: String,
    pub account_id: String,
    pub identifier: AcmeIdentifier,
    pub wildcard: bool,
    pub status: AuthzStatus,
    pub expires_at: OffsetDateTime,
    pub challenges: Vec<AcmeChallenge>,
}

/// A new order with its authorizations and their challenges, all IDs chosen by the caller.
#[derive(Debug, Clone)]
pub struct NewAcmeOrder {
    pub id: String,
    pub account_id: String,
    pub profile_id: String,
    pub status: OrderStatus,
    pub expires_at: OffsetDateTime,
    pub identifiers: Vec<AcmeIdentifier>,
    pub not_before: Option<OffsetDateTime>,
    pub not_after: Option<OffsetDateTime>,
    pub authzs: Vec<AcmeAuthz>,
}

/// What a finalized order becomes in the inventory.
#[derive(Debug, Clone)]
pub struct AcmeIssuance {
    pub order_id: String,
    pub certificate_id: String,
    pub name: String,
    pub common_name: String,
    pub sans: Vec<String>,
    pub binding: AcmeBindingRecord,
    pub version: IssuedVersion,
}

/// An issued certificate as revocation needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedBySerial {
    pub certificate_id: String,
    pub ca_id: Option<String>,
    pub pem_chain: String,
    pub fingerprint_sha256: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub revoked: bool,
}

#[derive(FromRow, Deserialize)]
struct SerialRow {
    certificate_id: String,
    issuer_ca_id: Option<String>,
    pem_chain: String,
    fingerprint_sha256: String,
    not_before: i64,
    not_after: i64,
    revoked: i64,
}

#[derive(FromRow, Deserialize)]
struct AccountRow {
    id: String,
    profile_id: String,
    thumbprint: String,
    jwk: String,
    status: String,
    contact: String,
    created_at: i64,
}

impl AccountRow {
    fn into_account(self) -> Result<AcmeAccount> {
        Ok(AcmeAccount {
            status: AccountStatus::parse("acme_accounts.status", &self.status)?,
            contact: parse_json("acme_accounts.contact", &self.contact)?,
            id: self.id,
            profile_id: self.profile_id,
            thumbprint: self.thumbprint,
            jwk: self.jwk,
            created_at: from_micros(self.created_at),
        })
    }
}

#[derive(FromRow, Deserialize)]
struct OrderRow {
    id: String,
    account_id: String,
    profile_id: String,
    status: String,
    expires_at: i64,
    identifiers: String,
    not_before: Option<i64>,
    not_after: Option<i64>,
    error: Option<String>,
    certificate_id: Option<String>,
    authz_ids: Option<String>,
}

#[derive(FromRow, Deserialize)]
struct AuthzRow {
    id: String,
    order_id: String,
    account_id: String,
    identifier_type: String,
    identifier_value: String,
    wildcard: bool,
    status: String,
    expires_at: i64,
}

#[derive(FromRow, Deserialize)]
struct ChallengeRow {
    id: String,
    authz_id: String,
    #[sqlx(rename = "type")]
    #[serde(rename = "type")]
    kind: String,
    token: String,
    status: String,
    validated_at: Option<i64>,
    error: Option<String>,
}

impl ChallengeRow {
    fn into_challenge(self) -> Result<AcmeChallenge> {
        Ok(AcmeChallenge {
            status: ChallengeStatus::parse("acme_challenges.status", &self.status)?,
            id: self.id,
            authz_id: self.authz_id,
            kind: self.kind,
            token: self.token,
            validated_at: opt_time(self.validated_at),
            error: self.error,
        })
    }
}

const ACCOUNT_COLUMNS: &str = "SELECT id, profile_id, thumbprint, jwk, status, contact, created_at FROM acme_accounts";
const ORDER_COLUMNS: &str =
    "SELECT id, account_id, profile_id, status, expires_at, identifiers, not_before, not_after, error, certificate_id";
const AUTHZ_COLUMNS: &str = "SELECT id, order_id, account_id, identifier_type, identifier_value, wildcard, status, \
     expires_at FROM acme_authorizations";
const CHALLENGE_COLUMNS: &str = "SELECT id, authz_id, type, token, status, validated_at, error FROM acme_challenges";

/// The audit actor of an ACME account's changes.
pub fn acme_actor(account_id: &str) -> Actor {
    Actor { name: format!("acme:{account_id}"), kind: ActorType::User }
}

pub(crate) fn acme_audit(actor: &Actor, action: &str, kind: &str, id: &str, details: serde_json::Value) -> AuditEntry {
    AuditEntry::new(actor.name.clone(), actor.kind, action, kind, id, details)
}

async fn fetch_order(conn: &mut Conn<'_>, id: &str) -> Result<Option<AcmeOrder>> {
    // The order and its authorizations' IDs (space-separated, in creation order) in one read.
    let mut q = Sql::new(ORDER_COLUMNS);
    q.push(match conn.backend() {
        Backend::Sqlite => ", (SELECT group_concat(a.id, ' ' ORDER BY a.created_at, a.id)",
        Backend::Postgres => ", (SELECT string_agg(a.id, ' ' ORDER BY a.created_at, a.id)",
    });
    q.push(" FROM acme_authorizations a WHERE a.order_id = acme_orders.id) AS authz_ids FROM acme_orders WHERE id = ");
    q.push_bind(id);
    let Some(r): Option<OrderRow> = q.fetch_optional(conn).await? else { return Ok(None) };
    Ok(Some(AcmeOrder {
        status: OrderStatus::parse("acme_orders.status", &r.status)?,
        identifiers: parse_json("acme_orders.identifiers", &r.identifiers)?,
        id: r.id,
        account_id: r.account_id,
        profile_id: r.profile_id,
        expires_at: from_micros(r.expires_at),
        not_before: opt_time(r.not_before),
        not_after: opt_time(r.not_after),
        error: r.error,
        certificate_id: r.certificate_id,
        authz_ids: r.authz_ids.as_deref().unwrap_or_default().split_whitespace().map(str::to_owned).collect(),
    }))
}

async fn fetch_authz(conn: &mut Conn<'_>, id: &str) -> Result<Option<AcmeAuthz>> {
    let mut q = Sql::new(AUTHZ_COLUMNS);
    q.push(" WHERE id = ").push_bind(id);
    let Some(r): Option<AuthzRow> = q.fetch_optional(conn).await? else { return Ok(None) };
    let mut q = Sql::new(CHALLENGE_COLUMNS);
    q.push(" WHERE authz_id = ").push_bind(id).push(" ORDER BY created_at, id");
    let challenges: Vec<ChallengeRow> = q.fetch_all(conn).await?;
    Ok(Some(AcmeAuthz {
        status: AuthzStatus::parse("acme_authorizations.status", &r.status)?,
        id: r.id,
        order_id: r.order_id,
        account_id: r.account_id,
        identifier: AcmeIdentifier { kind: r.identifier_type, value: r.identifier_value },
        wildcard: r.wildcard,
        expires_at: from_micros(r.expires_at),
        challenges: challenges.into_iter().map(ChallengeRow::into_challenge).collect::<Result<_>>()?,
    }))
}

impl Store {
    pub async fn acme_account(&self, id: &str) -> Result<Option<AcmeAccount>> {
        let mut c = self.reader().await?;
        let mut q = Sql::new(ACCOUNT_COLUMNS);
        q.push(" WHERE id = ").push_bind(id);
        q.fetch_optional::<AccountRow>(&mut c.conn()).await?.map(AccountRow::into_account).transpose()
    }

    pub async fn acme_account_by_thumbprint(&self, profile_id: &str, thumbprint: &str) -> Result<Option<AcmeAccount>> {
        let mut c = self.reader().await?;
        let mut q = Sql::new(ACCOUNT_COLUMNS);
        q.push(" WHERE profile_id = ").push_bind(profile_id).push(" AND thumbprint = ").push_bind(thumbprint);
        q.fetch_optional::<AccountRow>(&mut c.conn()).await?.map(AccountRow::into_account).transpose()
    }

    /// Creates an account, or returns the one that already has this key in this profile
    /// (`false`: not created), also when a concurrent registration won the race.
    pub async fn create_acme_account(&self, a: &AcmeAccount, now: OffsetDateTime) -> Result<(AcmeAccount, bool)> {
        self.create_acme_account_bound(a, None, now).await
    }

    /// Creates an account as [`Store::create_acme_account`] does and, when it is new, binds the
    /// EAB key `eab_kid` to it in the same transaction. A key that is gone or already bound
    /// another account is `Forbidden` and creates nothing: each key binds one account, once.
    pub async fn create_acme_account_bound(
        &self,
        a: &AcmeAccount,
        eab_kid: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(AcmeAccount, bool)> {
        let mut tx = self.begin().await?;
        let ts = to_micros(now);
        let inserted = Sql::new(
            "INSERT INTO acme_accounts (id, profile_id, thumbprint, jwk, status, contact, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (profile_id, thumbprint) DO NOTHING",
        )
        .arg(&a.id)
        .arg(&a.profile_id)
        .arg(&a.thumbprint)
        .arg(&a.jwk)
        .arg(a.status.as_str())
        .arg(to_json(&a.contact))
        .arg(ts)
        .execute(&mut tx.conn())
        .await?;
        if inserted == 1
            && let Some(kid) = eab_kid
        {
            crate::acme_policy::bind_eab_key(&mut tx, kid, a, now).await?;
        }
        if inserted == 1 {
            let details = json!({
                "profile_id": a.profile_id, "thumbprint": a.thumbprint, "contact": a.contact,
                "eab_kid": eab_kid,
            });
            append(
                &mut tx,
                &[acme_audit(&acme_actor(&a.id), "acme_account_created", "acme_account", &a.id, details)],
                now,
            )
            .await?;
        }
        let mut q = Sql::new(ACCOUNT_COLUMNS);
        q.push(" WHERE profile_id = ").push_bind(a.profile_id.as_str()).push(" AND thumbprint = ");
        q.push_bind(a.thumbprint.as_str());
        let row: AccountRow = q.fetch_one(&mut tx.conn()).await?;
        tx.commit().await?;
        Ok((row.into_account()?, inserted == 1))
    }

    /// Changes an account's contacts and/or status; a deactivated account stays deactivated.
    pub async fn update_acme_account(
        &self,
        id: &str,
        contact: Option<&[String]>,
        status: Option<AccountStatus>,
        now: OffsetDateTime,
    ) -> Result<AcmeAccount> {
        let mut tx = self.begin().await?;
        let ts = to_micros(now);
        let changed = Sql::new(
            "UPDATE acme_accounts SET contact = COALESCE($2, contact), status = COALESCE($3, status), updated_at = $4 \
             WHERE id = $1 AND status = 'valid'",
        )
        .arg(id)
        .arg(contact.map(|c| to_json(&c)))
        .arg(status.map(|s| s.as_str()))
        .arg(ts)
        .execute(&mut tx.conn())
        .await?;
        if changed == 0 {
            return Err(StoreError::Conflict(format!("ACME account '{id}' is not valid")));
        }
        let action = if status == Some(AccountStatus::Deactivated) {
            "acme_account_deactivated"
        } else {
            "acme_account_updated"
        };
        append(&mut tx, &[acme_audit(&acme_actor(id), action, "acme_account", id, json!({"contact": contact}))], now)
            .await?;
        let mut q = Sql::new(ACCOUNT_COLUMNS);
        q.push(" WHERE id = ").push_bind(id);
        let row: AccountRow = q.fetch_one(&mut tx.conn()).await?;
        tx.commit().await?;
        row.into_account()
    }

    /// Replaces an account's key, unless another account of the profile holds the new key
    /// (`Conflict`) or the key changed meanwhile (`Conflict`).
    pub async fn change_acme_account_key(
        &self,
        id: &str,
        old_thumbprint: &str,
        new_thumbprint: &str,
        new_jwk: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let changed = Sql::new(
            "UPDATE acme_accounts SET thumbprint = $3, jwk = $4, updated_at = $5 WHERE id = $1 AND thumbprint = $2 \
             AND status = 'valid'",
        )
        .arg(id)
        .arg(old_thumbprint)
        .arg(new_thumbprint)
        .arg(new_jwk)
        .arg(to_micros(now))
        .execute(&mut tx.conn())
        .await?;
        if changed == 0 {
            return Err(StoreError::Conflict(format!("the key of ACME account '{id}' changed meanwhile")));
        }
        let details = json!({"old_thumbprint": old_thumbprint, "new_thumbprint": new_thumbprint});
        append(&mut tx, &[acme_audit(&acme_actor(id), "acme_account_key_changed", "acme_account", id, details)], now)
            .await?;
        tx.commit().await
    }

    /// Creates an order with its authorizations and challenges.
    /// Creates orders with their authorizations and challenges in one transaction (group
    /// commit), each answered as it would be alone. When the batch fails as a whole (one order
    /// violating a constraint), each order is retried in a transaction of its own so the error
    /// lands on the order that caused it.
    pub async fn create_acme_orders(&self, orders: &[NewAcmeOrder], now: OffsetDateTime) -> Vec<Result<AcmeOrder>> {
        batch_or_each(orders, |batch| self.create_orders_batch(batch, now)).await
    }

    async fn create_orders_batch(&self, orders: &[NewAcmeOrder], now: OffsetDateTime) -> Result<Vec<AcmeOrder>> {
        let ts = to_micros(now);
        let mut tx = self.begin().await?;
        for chunk in orders.chunks(ACME_ROWS_PER_INSERT) {
            let mut q = Sql::new(
                "INSERT INTO acme_orders (id, account_id, profile_id, status, expires_at, identifiers, not_before, \
                 not_after, created_at, updated_at) VALUES ",
            );
            for (n, o) in chunk.iter().enumerate() {
                q.push(if n == 0 { "(" } else { ", (" });
                q.push_bind(o.id.as_str()).push(", ").push_bind(o.account_id.as_str());
                q.push(", ").push_bind(o.profile_id.as_str()).push(", ").push_bind(o.status.as_str());
                q.push(", ").push_bind(to_micros(o.expires_at)).push(", ").push_bind(to_json(&o.identifiers));
                q.push(", ").push_bind(o.not_before.map(to_micros)).push(", ").push_bind(o.not_after.map(to_micros));
                q.push(", ").push_bind(ts).push(", ").push_bind(ts).push(")");
            }
            q.execute(&mut tx.conn()).await?;
        }
        // Authorizations keep identifier order through their creation times, as do an
        // authorization's challenges.
        let authzs: Vec<(&NewAcmeOrder, i64, &AcmeAuthz)> =
            orders.iter().flat_map(|o| o.authzs.iter().enumerate().map(move |(n, a)| (o, ts + n as i64, a))).collect();
        for chunk in authzs.chunks(ACME_ROWS_PER_INSERT) {
            let mut q = Sql::new(
                "INSERT INTO acme_authorizations (id, order_id, account_id, identifier_type, identifier_value, \
                 wildcard, status, expires_at, created_at, updated_at) VALUES ",
            );
            for (n, (o, at, a)) in chunk.iter().enumerate() {
                q.push(if n == 0 { "(" } else { ", (" });
                q.push_bind(a.id.as_str()).push(", ").push_bind(o.id.as_str());
                q.push(", ").push_bind(o.account_id.as_str()).push(", ").push_bind(a.identifier.kind.as_str());
                q.push(", ").push_bind(a.identifier.value.as_str()).push(", ").push_bind(a.wildcard);
                q.push(", ").push_bind(a.status.as_str()).push(", ").push_bind(to_micros(a.expires_at));
                q.push(", ").push_bind(*at).push(", ").push_bind(*at).push(")");
            }
            q.execute(&mut tx.conn()).await?;
        }
        let challenges: Vec<(&AcmeAuthz, i64, &AcmeChallenge)> = authzs
            .iter()
            .flat_map(|(_, _, a)| a.challenges.iter().enumerate().map(move |(m, ch)| (*a, ts + m as i64, ch)))
            .collect();
        for chunk in challenges.chunks(ACME_ROWS_PER_INSERT) {
            let mut q = Sql::new(
                "INSERT INTO acme_challenges (id, authz_id, type, token, status, validated_at, created_at, \
                 updated_at) VALUES ",
            );
            for (n, (a, at, ch)) in chunk.iter().enumerate() {
                q.push(if n == 0 { "(" } else { ", (" });
                q.push_bind(ch.id.as_str()).push(", ").push_bind(a.id.as_str());
                q.push(", ").push_bind(ch.kind.as_str()).push(", ").push_bind(ch.token.as_str());
                q.push(", ").push_bind(ch.status.as_str()).push(", ").push_bind(ch.validated_at.map(to_micros));
                q.push(", ").push_bind(*at).push(", ").push_bind(*at).push(")");
            }
            q.execute(&mut tx.conn()).await?;
        }
        let audit: Vec<AuditEntry> = orders
            .iter()
            .map(|o| {
                let details = json!({"account_id": o.account_id, "identifiers": o.identifiers, "status": o.status});
                acme_audit(&acme_actor(&o.account_id), "acme_order_created", "acme_order", &o.id, details)
            })
            .collect();
        append(&mut tx, &audit, now).await?;
        tx.commit().await?;
        // What a read would return, built from what was written (times at the stored precision).
        Ok(orders
            .iter()
            .map(|o| AcmeOrder {
                id: o.id.clone(),
                account_id: o.account_id.clone(),
                profile_id: o.profile_id.clone(),
                status: o.status,
                expires_at: from_micros(to_micros(o.expires_at)),
                identifiers: o.identifiers.clone(),
                not_before: o.not_before.map(|t| from_micros(to_micros(t))),
                not_after: o.not_after.map(|t| from_micros(to_micros(t))),
                error: None,
                certificate_id: None,
                authz_ids: o.authzs.iter().map(|a| a.id.clone()).collect(),
            })
            .collect())
    }

    pub async fn acme_order(&self, id: &str) -> Result<Option<AcmeOrder>> {
        let mut c = self.reader().await?;
        fetch_order(&mut c.conn(), id).await
    }

    /// The newest orders of an account, up to `limit`.
    pub async fn acme_account_orders(&self, account_id: &str, limit: i64) -> Result<Vec<String>> {
        let mut c = self.reader().await?;
        let rows: Vec<(String,)> =
            Sql::new("SELECT id FROM acme_orders WHERE account_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2")
                .arg(account_id)
                .arg(limit)
                .fetch_all(&mut c.conn())
                .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    pub async fn acme_authz(&self, id: &str) -> Result<Option<AcmeAuthz>> {
        let mut c = self.reader().await?;
        fetch_authz(&mut c.conn(), id).await
    }

    /// The authorization a challenge belongs to, with all its challenges.
    pub async fn acme_authz_of_challenge(&self, challenge_id: &str) -> Result<Option<AcmeAuthz>> {
        let mut c = self.reader().await?;
        let authz: Option<(String,)> = Sql::new("SELECT authz_id FROM acme_challenges WHERE id = $1")
            .arg(challenge_id)
            .fetch_optional(&mut c.conn())
            .await?;
        match authz {
            Some((id,)) => fetch_authz(&mut c.conn(), &id).await,
            None => Ok(None),
        }
    }

    /// Moves an order to `to` when it is in one of `from`; `false` when it was not.
    pub async fn transition_acme_order(
        &self,
        id: &str,
        from: &[OrderStatus],
        to: OrderStatus,
        error: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let mut q = Sql::new("UPDATE acme_orders SET status = $2, error = $3, updated_at = $4 WHERE id = $1")
            .arg(id)
            .arg(to.as_str())
            .arg(error)
            .arg(to_micros(now));
        q.push(" AND status IN (").push_list(from.iter().map(|s| s.as_str())).push(")");
        let changed = q.execute(&mut tx.conn()).await? == 1;
        if changed && to == OrderStatus::Invalid {
            let account: (String,) =
                Sql::new("SELECT account_id FROM acme_orders WHERE id = $1").arg(id).fetch_one(&mut tx.conn()).await?;
            let entry =
                acme_audit(&acme_actor(&account.0), "acme_order_invalid", "acme_order", id, json!({"error": error}));
            append(&mut tx, &[entry], now).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// Starts validating a pending challenge (`false` when it is not pending any more).
    pub async fn start_acme_challenge(&self, id: &str, now: OffsetDateTime) -> Result<bool> {
        let mut tx = self.begin().await?;
        let changed = Sql::new(
            "UPDATE acme_challenges SET status = 'processing', updated_at = $2 WHERE id = $1 AND status = 'pending'",
        )
        .arg(id)
        .arg(to_micros(now))
        .execute(&mut tx.conn())
        .await?;
        tx.commit().await?;
        Ok(changed == 1)
    }

    /// Records a challenge's outcome and carries it up: a valid challenge makes its
    /// authorization valid (and the order ready once every authorization is); an invalid one
    /// makes the authorization and the order invalid.
    pub async fn finish_acme_challenge(
        &self,
        challenge_id: &str,
        error: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let ts = to_micros(now);
        let (status, authz_status) = match error {
            None => ("valid", "valid"),
            Some(_) => ("invalid", "invalid"),
        };
        let changed = Sql::new(
            "UPDATE acme_challenges SET status = $2, validated_at = $3, error = $4, updated_at = $5 WHERE id = $1 \
             AND status IN ('pending', 'processing')",
        )
        .arg(challenge_id)
        .arg(status)
        .arg(error.is_none().then_some(ts))
        .arg(error)
        .arg(ts)
        .execute(&mut tx.conn())
        .await?;
        if changed == 0 {
            return Ok(());
        }
        let (authz_id, order_id, account_id): (String, String, String) = Sql::new(
            "SELECT a.id, a.order_id, a.account_id FROM acme_challenges c JOIN acme_authorizations a \
             ON a.id = c.authz_id WHERE c.id = $1",
        )
        .arg(challenge_id)
        .fetch_one(&mut tx.conn())
        .await?;
        Sql::new("UPDATE acme_authorizations SET status = $2, updated_at = $3 WHERE id = $1 AND status = 'pending'")
            .arg(&authz_id)
            .arg(authz_status)
            .arg(ts)
            .execute(&mut tx.conn())
            .await?;
        match error {
            None => {
                Sql::new(
                    "UPDATE acme_orders SET status = 'ready', updated_at = $2 WHERE id = $1 AND status = 'pending' \
                     AND NOT EXISTS (SELECT 1 FROM acme_authorizations WHERE order_id = $1 AND status <> 'valid')",
                )
                .arg(&order_id)
                .arg(ts)
                .execute(&mut tx.conn())
                .await?;
            }
            Some(problem) => {
                Sql::new(
                    "UPDATE acme_orders SET status = 'invalid', error = $2, updated_at = $3 WHERE id = $1 \
                     AND status = 'pending'",
                )
                .arg(&order_id)
                .arg(problem)
                .arg(ts)
                .execute(&mut tx.conn())
                .await?;
            }
        }
        let details = json!({"authz_id": authz_id, "order_id": order_id, "status": status, "error": error});
        let entry =
            acme_audit(&acme_actor(&account_id), "acme_challenge_validated", "acme_challenge", challenge_id, details);
        append(&mut tx, &[entry], now).await?;
        tx.commit().await
    }

    /// Files finalized orders in one transaction (group commit): each order moves from
    /// `ready` (or `processing`, where a finalize parks it while an external step runs) to
    /// `valid` with its managed certificate, first version and audit record. Each filing is
    /// answered with whether it claimed its order: of two finalizes racing, the first claims the
    /// order and files its certificate, and the other finds it taken and writes nothing. When the
    /// batch fails as a whole, each filing is retried in a transaction of its own.
    pub async fn finish_acme_orders(
        &self,
        filings: &[(AcmeIssuance, Actor)],
        now: OffsetDateTime,
    ) -> Vec<Result<bool>> {
        batch_or_each(filings, |batch| self.finish_orders_batch(batch, now)).await
    }

    async fn finish_orders_batch(&self, filings: &[(AcmeIssuance, Actor)], now: OffsetDateTime) -> Result<Vec<bool>> {
        let ts = to_micros(now);
        let mut tx = self.begin().await?;
        let mut q = Sql::new("UPDATE acme_orders SET status = 'valid', updated_at = ");
        q.push_bind(ts).push(" WHERE status IN ('ready', 'processing') AND id IN (");
        q.push_list(filings.iter().map(|(i, _)| i.order_id.as_str())).push(") RETURNING id");
        let claimed_ids: Vec<(String,)> = q.fetch_all(&mut tx.conn()).await?;
        let mut unclaimed: std::collections::HashSet<&str> = claimed_ids.iter().map(|(id,)| id.as_str()).collect();
        // An order named twice in one batch is claimed by its first filing only.
        let claimed: Vec<bool> = filings.iter().map(|(i, _)| unclaimed.remove(i.order_id.as_str())).collect();
        let won: Vec<&(AcmeIssuance, Actor)> =
            filings.iter().zip(&claimed).filter(|(_, c)| **c).map(|(f, _)| f).collect();
        if won.is_empty() {
            tx.commit().await?;
            return Ok(claimed);
        }
        for chunk in won.chunks(ACME_ROWS_PER_INSERT) {
            let mut q = Sql::new(
                "INSERT INTO managed_certificates (id, name, common_name, sans, environment, owner_id, team_id, \
                 issuer_id, renewal_policy_id, certificate_profile_id, status, expires_at, tags, source, \
                 last_renewal_at, created_at, updated_at) VALUES ",
            );
            for (n, (i, _)) in chunk.iter().enumerate() {
                let b = &i.binding;
                q.push(if n == 0 { "(" } else { ", (" });
                q.push_bind(i.certificate_id.as_str()).push(", ").push_bind(i.name.as_str());
                q.push(", ").push_bind(i.common_name.as_str()).push(", ").push_bind(to_json(&i.sans));
                q.push(", '', ").push_bind(b.owner_id.as_str()).push(", ").push_bind(b.team_id.as_str());
                q.push(", ").push_bind(b.issuer_id.as_str()).push(", ").push_bind(b.renewal_policy_id.as_str());
                q.push(", ").push_bind(b.profile_id.as_str()).push(", 'Active', ");
                q.push_bind(to_micros(i.version.not_after)).push(", ");
                q.push_bind(to_json(&serde_json::json!({"acme_order": i.order_id}))).push(", 'ACME', ");
                q.push_bind(ts).push(", ").push_bind(ts).push(", ").push_bind(ts).push(")");
            }
            q.execute(&mut tx.conn()).await?;
        }
        for chunk in won.chunks(ACME_ROWS_PER_INSERT) {
            let mut q = Sql::new(
                "INSERT INTO certificate_versions (id, certificate_id, serial_number, not_before, not_after, \
                 fingerprint_sha256, pem_chain, csr_pem, key_algorithm, key_size, created_at, issuer_ca_id, \
                 sealed_private_key) VALUES ",
            );
            for (n, (i, _)) in chunk.iter().enumerate() {
                let v = &i.version;
                q.push(if n == 0 { "(" } else { ", (" });
                q.push_bind(v.id.as_str()).push(", ").push_bind(i.certificate_id.as_str());
                q.push(", ").push_bind(v.serial_number.as_str()).push(", ").push_bind(to_micros(v.not_before));
                q.push(", ").push_bind(to_micros(v.not_after)).push(", ").push_bind(v.fingerprint_sha256.as_str());
                q.push(", ").push_bind(v.pem_chain.as_str()).push(", ").push_bind(v.csr_pem.clone());
                q.push(", ").push_bind(v.key_algorithm.as_str()).push(", ").push_bind(v.key_size);
                q.push(", ").push_bind(ts).push(", ").push_bind(v.issuer_ca_id.clone()).push(", NULL)");
            }
            q.execute(&mut tx.conn()).await?;
        }
        // The certificates exist now, so the orders may refer to them.
        for chunk in won.chunks(ACME_ROWS_PER_INSERT) {
            let mut q = Sql::new("WITH f (oid, cid) AS (VALUES ");
            for (n, (i, _)) in chunk.iter().enumerate() {
                q.push(if n == 0 { "(" } else { ", (" });
                q.push_bind(i.order_id.as_str()).push(", ").push_bind(i.certificate_id.as_str()).push(")");
            }
            q.push(") UPDATE acme_orders SET certificate_id = f.cid FROM f WHERE acme_orders.id = f.oid");
            q.execute(&mut tx.conn()).await?;
        }
        let audit: Vec<AuditEntry> = won
            .iter()
            .map(|(i, actor)| {
                let v = &i.version;
                let details = json!({
                    "acme_order": i.order_id, "version_id": v.id, "serial_number": v.serial_number,
                    "issuer_ca_id": v.issuer_ca_id, "not_after": v.not_after.unix_timestamp(),
                    "fingerprint_sha256": v.fingerprint_sha256, "source": "ACME", "sans": i.sans,
                });
                AuditEntry::new(
                    actor.name.clone(),
                    actor.kind,
                    "certificate_issued",
                    "certificate",
                    &i.certificate_id,
                    details,
                )
            })
            .collect();
        append(&mut tx, &audit, now).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// The certificate with this serial, as issued by certctl (any CA).
    pub async fn issued_by_serial(&self, serial_hex: &str) -> Result<Option<IssuedBySerial>> {
        let mut c = self.reader().await?;
        let row: Option<SerialRow> = Sql::new(
            "SELECT v.certificate_id, v.issuer_ca_id, v.pem_chain, v.fingerprint_sha256, v.not_before, v.not_after, \
             (SELECT COUNT(*) FROM certificate_revocations r WHERE r.serial_number = v.serial_number \
             AND r.ca_id = v.issuer_ca_id) AS revoked FROM certificate_versions v WHERE v.serial_number = $1 \
             ORDER BY v.created_at LIMIT 1",
        )
        .arg(serial_hex)
        .fetch_optional(&mut c.conn())
        .await?;
        Ok(row.map(|r| IssuedBySerial {
            certificate_id: r.certificate_id,
            ca_id: r.issuer_ca_id,
            pem_chain: r.pem_chain,
            fingerprint_sha256: r.fingerprint_sha256,
            not_before: from_micros(r.not_before),
            not_after: from_micros(r.not_after),
            revoked: r.revoked > 0,
        }))
    }

    /// Whether an account ordered the managed certificate.
    pub async fn acme_account_owns_certificate(&self, account_id: &str, certificate_id: &str) -> Result<bool> {
        let mut c = self.reader().await?;
        let n = Sql::new("SELECT COUNT(*) FROM acme_orders WHERE account_id = $1 AND certificate_id = $2")
            .arg(account_id)
            .arg(certificate_id)
            .fetch_i64(&mut c.conn())
            .await?;
        Ok(n > 0)
    }

    /// The current PEM chain of a managed certificate.
    pub async fn certificate_pem_chain(&self, certificate_id: &str) -> Result<Option<String>> {
        let mut c = self.reader().await?;
        let row: Option<(String,)> = Sql::new(
            "SELECT pem_chain FROM certificate_versions WHERE certificate_id = $1 ORDER BY created_at DESC, id DESC \
             LIMIT 1",
        )
        .arg(certificate_id)
        .fetch_optional(&mut c.conn())
        .await?;
        Ok(row.map(|(p,)| p))
    }
}

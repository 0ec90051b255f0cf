//! Audit records of the inventory resources (issuers, targets, profiles, renewal policies,
//! certificates, jobs): one per change, in the same transaction, none for a refused change,
//! and no secret in any of them.

use certctl_api::{AgentStatus, CertificateStatus, IssuerType, JobType, TargetType, UpdateCertificate};
use certctl_store::testing::TestDb;
use certctl_store::{
    Actor, IssuerChanges, NewAgent, NewIssuer, NewJob, NewTarget, NewVersion, SealedConfig, TargetChanges,
};
use serde_json::{Map, Value, json};

use crate::support::{T0, alice, at, audit_count, expect_one_audit, name, newest_audit, owner_req, rid, team_req};

/// Sealed bytes the store must never copy into an audit record.
const SEALED: &[u8] = b"sealed-secret-bytes";

fn sealed(keys: Value) -> SealedConfig {
    let redacted: Map<String, Value> = serde_json::from_value(keys).unwrap();
    SealedConfig { redacted, sealed: SEALED.to_vec(), merged_from: None }
}

fn from_json<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

pub async fn inventory_mutations_write_one_audit_row(db: &TestDb) {
    let store = db.store().await;
    let bob = Actor::user("bob");
    let team = store.create_team(&team_req("One"), &alice(), T0).await.unwrap().id;
    let owner = store.create_owner(&owner_req("Ann", &team), &alice(), T0).await.unwrap().id;
    let agent =
        NewAgent { id: Some("agent-1".into()), name: "a1".into(), status: AgentStatus::Online, ..NewAgent::default() };
    store.create_agent(&agent, &alice(), T0).await.unwrap();
    let mut n = audit_count(&store).await;

    let issuer = NewIssuer {
        id: "iss-1".into(),
        name: name("Vault"),
        issuer_type: IssuerType::VaultPki,
        config: sealed(json!({"url": "https://v", "token": "********"})),
        enabled: true,
    };
    store.create_issuer(&issuer, &alice(), at(1)).await.unwrap();
    expect_one_audit(&store, &mut n, "issuer_created", "iss-1", &alice()).await;
    let changes = IssuerChanges {
        name: Some(name("Vault 2")),
        config: Some(sealed(json!({"token": "********"}))),
        enabled: None,
    };
    store.update_issuer("iss-1", &changes, &bob, at(2)).await.unwrap();
    expect_one_audit(&store, &mut n, "issuer_updated", "iss-1", &bob).await;

    let target = NewTarget {
        id: "target-1".into(),
        name: name("nginx"),
        target_type: TargetType::Nginx,
        agent_id: "agent-1".into(),
        config: sealed(json!({"cert_path": "/a.pem", "password": "********"})),
        enabled: true,
    };
    store.create_target(&target, &alice(), at(3)).await.unwrap();
    expect_one_audit(&store, &mut n, "target_created", "target-1", &alice()).await;
    let changes = TargetChanges { enabled: Some(false), ..TargetChanges::default() };
    store.update_target("target-1", &changes, &bob, at(4)).await.unwrap();
    expect_one_audit(&store, &mut n, "target_updated", "target-1", &bob).await;

    let profile = store.create_profile(&from_json(json!({"name": "Web"})), &alice(), at(5)).await.unwrap().id;
    expect_one_audit(&store, &mut n, "certificate_profile_created", &profile, &alice()).await;
    store.update_profile(&profile, &from_json(json!({"description": "d"})), &bob, at(6)).await.unwrap();
    expect_one_audit(&store, &mut n, "certificate_profile_updated", &profile, &bob).await;
    let policy = store.create_renewal_policy(&from_json(json!({"name": "Fast"})), &alice(), at(7)).await.unwrap().id;
    expect_one_audit(&store, &mut n, "renewal_policy_created", &policy, &alice()).await;
    store.update_renewal_policy(&policy, &from_json(json!({"max_retries": 1})), &bob, at(8)).await.unwrap();
    expect_one_audit(&store, &mut n, "renewal_policy_updated", &policy, &bob).await;

    let req = from_json(json!({"name": "web", "common_name": "web.example.com", "owner_id": owner, "team_id": team,
        "issuer_id": "iss-1", "renewal_policy_id": policy, "certificate_profile_id": profile, "target_ids": ["target-1"]}));
    let cert = store.create_certificate(&req, "API", &alice(), at(9)).await.unwrap().id;
    expect_one_audit(&store, &mut n, "certificate_created", &cert, &alice()).await;
    let update = UpdateCertificate { environment: Some("prod".into()), target_ids: Some(vec![]), ..Default::default() };
    store.update_certificate(&cert, &update, &bob, at(10)).await.unwrap();
    expect_one_audit(&store, &mut n, "certificate_updated", &cert, &bob).await;
    store.map_target(&cert, "target-1", &bob, at(11)).await.unwrap();
    expect_one_audit(&store, &mut n, "certificate_target_mapped", &cert, &bob).await;
    store.map_target(&cert, "target-1", &bob, at(12)).await.unwrap();
    assert_eq!(audit_count(&store).await, n, "mapping twice changes nothing and records nothing");
    store.unmap_target(&cert, "target-1", &bob, at(13)).await.unwrap();
    expect_one_audit(&store, &mut n, "certificate_target_unmapped", &cert, &bob).await;
    let v = NewVersion {
        certificate_id: cert.clone(),
        serial_number: "01".into(),
        not_before: T0,
        not_after: at(86_400),
        fingerprint_sha256: "ab".repeat(32),
        pem_chain: String::new(),
        csr_pem: None,
        key_algorithm: "ECDSA".into(),
        key_size: 256,
    };
    store.add_version(&v, CertificateStatus::Active, &Actor::system(), at(14)).await.unwrap();
    expect_one_audit(&store, &mut n, "certificate_version_added", &cert, &Actor::system()).await;
    let job = store.create_job(&NewJob::new(JobType::Renewal, &cert), &Actor::system(), at(15)).await.unwrap().id;
    expect_one_audit(&store, &mut n, "job_created", &job, &Actor::system()).await;
    store.cancel_job(&job, &bob, at(16)).await.unwrap();
    expect_one_audit(&store, &mut n, "job_cancelled", &job, &bob).await;
    store.archive_certificate(&cert, &bob, at(17)).await.unwrap();
    expect_one_audit(&store, &mut n, "certificate_archived", &cert, &bob).await;

    store.delete_target("target-1", &bob, at(18)).await.unwrap();
    expect_one_audit(&store, &mut n, "target_deleted", "target-1", &bob).await;
    let spare = store.create_profile(&from_json(json!({"name": "Spare"})), &alice(), at(19)).await.unwrap().id;
    expect_one_audit(&store, &mut n, "certificate_profile_created", &spare, &alice()).await;
    store.delete_profile(&spare, &bob, at(20)).await.unwrap();
    expect_one_audit(&store, &mut n, "certificate_profile_deleted", &spare, &bob).await;
    let spare = store.create_renewal_policy(&from_json(json!({"name": "Spare"})), &alice(), at(21)).await.unwrap().id;
    expect_one_audit(&store, &mut n, "renewal_policy_created", &spare, &alice()).await;
    store.delete_renewal_policy(&spare, &bob, at(22)).await.unwrap();
    expect_one_audit(&store, &mut n, "renewal_policy_deleted", &spare, &bob).await;
    let spare = NewIssuer { id: "iss-2".into(), name: name("Spare"), ..issuer };
    store.create_issuer(&spare, &alice(), at(23)).await.unwrap();
    expect_one_audit(&store, &mut n, "issuer_created", "iss-2", &alice()).await;
    store.delete_issuer("iss-2", &bob, at(24)).await.unwrap();
    expect_one_audit(&store, &mut n, "issuer_deleted", "iss-2", &bob).await;

    let sealed_text = String::from_utf8_lossy(SEALED);
    for e in newest_audit(&store, 100).await {
        assert!(!e.details.to_string().contains(sealed_text.as_ref()), "{} carries the sealed config", e.action);
    }
    let report = store.verify_audit_chain().await.unwrap();
    assert_eq!(report.first_broken, None);
}

pub async fn refused_inventory_mutations_write_no_audit_row(db: &TestDb) {
    let store = db.store().await;
    let team = store.create_team(&team_req("One"), &alice(), T0).await.unwrap().id;
    let owner = store.create_owner(&owner_req("Ann", &team), &alice(), T0).await.unwrap().id;
    let agent = NewAgent { id: Some("agent-1".into()), name: "a1".into(), ..NewAgent::default() };
    store.create_agent(&agent, &alice(), T0).await.unwrap();
    let issuer = NewIssuer {
        id: "iss-1".into(),
        name: name("CA"),
        issuer_type: IssuerType::GenericCa,
        config: sealed(json!({})),
        enabled: true,
    };
    store.create_issuer(&issuer, &alice(), T0).await.unwrap();
    let policy = store.create_renewal_policy(&from_json(json!({"name": "P"})), &alice(), T0).await.unwrap().id;
    let target = NewTarget {
        id: "target-1".into(),
        name: name("t"),
        target_type: TargetType::File,
        agent_id: "agent-1".into(),
        config: sealed(json!({})),
        enabled: true,
    };
    store.create_target(&target, &alice(), T0).await.unwrap();
    let req = from_json(json!({"name": "web", "common_name": "web.example.com", "owner_id": owner, "team_id": team,
        "issuer_id": "iss-1", "renewal_policy_id": policy, "target_ids": ["target-1"]}));
    let cert = store.create_certificate(&req, "API", &alice(), T0).await.unwrap().id;
    let job = store.create_job(&NewJob::new(JobType::Issuance, &cert), &alice(), T0).await.unwrap().id;
    store.cancel_job(&job, &alice(), T0).await.unwrap();
    let before = audit_count(&store).await;

    assert!(store.create_issuer(&NewIssuer { id: "iss-2".into(), ..issuer.clone() }, &alice(), at(1)).await.is_err());
    assert!(store.update_issuer("missing", &IssuerChanges::default(), &alice(), at(1)).await.is_err());
    assert!(store.delete_issuer("iss-1", &alice(), at(1)).await.is_err(), "a certificate uses it");
    assert!(store.create_target(&target, &alice(), at(1)).await.is_err());
    let elsewhere = NewTarget { id: "target-2".into(), agent_id: "agent-missing".into(), ..target.clone() };
    assert!(store.create_target(&elsewhere, &alice(), at(1)).await.is_err());
    assert!(store.delete_target("target-1", &alice(), at(1)).await.is_err(), "a certificate is mapped to it");
    assert!(
        store.create_profile(&from_json(json!({"name": "X", "max_ttl_seconds": -1})), &alice(), at(1)).await.is_err()
    );
    assert!(store.update_profile("missing", &from_json(json!({})), &alice(), at(1)).await.is_err());
    assert!(store.create_renewal_policy(&from_json(json!({"name": "P"})), &alice(), at(1)).await.is_err());
    assert!(store.delete_renewal_policy(&policy, &alice(), at(1)).await.is_err(), "a certificate uses it");
    assert!(store.create_certificate(&req, "API", &alice(), at(1)).await.is_err(), "the name is taken");
    let update = UpdateCertificate { owner_id: Some(rid("owner-missing")), ..Default::default() };
    assert!(store.update_certificate(&cert, &update, &alice(), at(1)).await.is_err());
    assert!(store.map_target(&cert, "target-missing", &alice(), at(1)).await.is_err());
    assert!(store.unmap_target(&cert, "target-2", &alice(), at(1)).await.is_err());
    assert!(store.archive_certificate("missing", &alice(), at(1)).await.is_err());
    assert!(store.cancel_job(&job, &alice(), at(1)).await.is_err(), "the job is already cancelled");

    assert_eq!(audit_count(&store).await, before, "a refused change leaves no audit record");
}

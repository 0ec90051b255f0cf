//! The digest query: the window's certificates counted by status, soonest first, with
//! revoked, archived and later certificates left out.

use certctl_api::{CertificateStatus, IssuerType};
use certctl_store::testing::TestDb;
use certctl_store::{DEFAULT_RENEWAL_POLICY_ID, ImportedCertificate, NewIssuer, SealedConfig};
use serde_json::Map;
use time::Duration;

use crate::support::{T0, alice, name, owner_req, team_req};

pub async fn digest_counts_the_window_by_status(db: &TestDb) {
    let store = db.store().await;
    store.ensure_default_renewal_policy(&alice(), T0).await.unwrap();
    let team = store.create_team(&team_req("Platform"), &alice(), T0).await.unwrap().id;
    let owner = store.create_owner(&owner_req("Ann", &team), &alice(), T0).await.unwrap().id;
    let issuer = NewIssuer {
        id: "iss-local".into(),
        name: name("local"),
        issuer_type: IssuerType::GenericCa,
        config: SealedConfig { redacted: Map::new(), sealed: vec![7; 4], merged_from: None },
        enabled: true,
    };
    let issuer = store.create_issuer(&issuer, &alice(), T0).await.unwrap().id;
    let cert = |id: &str, status: CertificateStatus, days: Option<i64>| ImportedCertificate {
        id: id.to_owned(),
        name: id.to_owned(),
        common_name: format!("{id}.example.com"),
        sans: vec![],
        environment: "prod".into(),
        owner_id: owner.clone(),
        team_id: team.clone(),
        issuer_id: issuer.clone(),
        renewal_policy_id: DEFAULT_RENEWAL_POLICY_ID.to_owned(),
        certificate_profile_id: None,
        status,
        expires_at: days.map(|d| T0 + Duration::days(d) + Duration::hours(1)),
        tags: Default::default(),
        source: "Import".into(),
        created_at: T0,
    };
    let certs = [
        cert("soon", CertificateStatus::Expiring, Some(5)),
        cert("later", CertificateStatus::Active, Some(29)),
        cert("edge", CertificateStatus::Active, Some(20)),
        cert("gone", CertificateStatus::Expired, Some(-3)),
        cert("failed", CertificateStatus::Failed, Some(10)),
        cert("revoked", CertificateStatus::Revoked, Some(2)),
        cert("archived", CertificateStatus::Archived, Some(2)),
        cert("far", CertificateStatus::Active, Some(90)),
        cert("new", CertificateStatus::Pending, None),
    ];
    store.import_certificates(&certs, &alice(), T0).await.unwrap();

    let d = store.digest(T0, 30).await.unwrap();
    assert_eq!((d.window_days, d.total_certificates, d.expiring_total), (30, 9, 5));
    let counts: Vec<(CertificateStatus, i64)> = d.by_status.iter().map(|s| (s.status, s.count)).collect();
    assert_eq!(counts.iter().find(|(s, _)| *s == CertificateStatus::Active), Some(&(CertificateStatus::Active, 2)));
    for s in [CertificateStatus::Expiring, CertificateStatus::Expired, CertificateStatus::Failed] {
        assert!(counts.contains(&(s, 1)), "{s}: {counts:?}");
    }
    assert_eq!(counts.len(), 4, "{counts:?}");
    let order: Vec<&str> = d.certificates.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(order, ["gone", "soon", "failed", "edge", "later"]);
    let days: Vec<i64> = d.certificates.iter().map(|c| c.days_left).collect();
    assert_eq!(days, [-3, 5, 10, 20, 29]);
    assert_eq!(d.certificates[1].owner_email, "ann@example.com");

    let narrow = store.digest(T0, 7).await.unwrap();
    assert_eq!(narrow.expiring_total, 2);
    let empty = store.digest(T0 - Duration::days(400), 30).await.unwrap();
    assert_eq!((empty.expiring_total, empty.certificates.len(), empty.by_status.len()), (0, 0, 0));
}

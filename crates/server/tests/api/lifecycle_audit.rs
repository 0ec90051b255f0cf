//! Lifecycle audit records of the inventory resources: every change through the API writes
//! exactly one, naming the action, the resource and the key; a refused change writes none; and
//! no record carries a secret.

use std::collections::HashSet;

use serde_json::json;

use certctl_api::{ActorType, AuditEvent, JobType};
use certctl_store::{Actor, NewJob, Store};

use crate::fixtures::{agent, cert_body, deps, lifecycle_audit, with};
use crate::harness::{T0, TestApp};

const TOKEN: &str = "vault-t0ken-d0-not-log";
const PASSWORD: &str = "pfx-passw0rd-d0-not-log";

/// The lifecycle records seen so far, to tell which ones a request added.
struct Trail<'a> {
    store: &'a Store,
    seen: HashSet<String>,
}

impl<'a> Trail<'a> {
    async fn new(store: &'a Store) -> Trail<'a> {
        let seen = lifecycle_audit(store).await.into_iter().map(|e| e.id).collect();
        Trail { store, seen }
    }

    async fn added(&mut self) -> Vec<AuditEvent> {
        let added: Vec<AuditEvent> =
            lifecycle_audit(self.store).await.into_iter().filter(|e| !self.seen.contains(&e.id)).collect();
        self.seen.extend(added.iter().map(|e| e.id.clone()));
        added
    }

    /// Asserts that exactly one record was added since the last check: `action` on `resource`
    /// of type `kind`, by the operator key.
    async fn one(&mut self, action: &str, kind: &str, resource: &str) -> AuditEvent {
        let added = self.added().await;
        assert_eq!(added.len(), 1, "{action} on {resource} must write exactly one lifecycle record: {added:#?}");
        let e = added.into_iter().next().unwrap();
        assert_eq!((e.action.as_str(), e.resource_type.as_str(), e.resource_id.as_str()), (action, kind, resource));
        assert_eq!((e.actor.as_str(), e.actor_type), ("operator", ActorType::User), "{action}");
        e
    }

    async fn none(&mut self, what: &str) {
        let added = self.added().await;
        assert!(added.is_empty(), "{what} was refused but wrote {added:#?}");
    }
}

fn id(r: &crate::harness::Reply) -> String {
    r.expect(201, None);
    r.json["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn issuer_and_target_changes_are_audited_once_without_secrets() {
    let app = TestApp::new().await;
    let ag = agent(&app.store, "web1").await;
    let mut trail = Trail::new(&app.store).await;

    let body = json!({"name": "Vault", "type": "VaultPKI", "config": {"url": "https://v", "token": TOKEN}});
    let issuer = id(&app.post_json("/api/v1/issuers", &app.operator, &body).await);
    let e = trail.one("issuer_created", "issuer", &issuer).await;
    assert_eq!(e.details["config_keys"], json!(["token", "url"]), "keys are listed, values are not");
    let path = format!("/api/v1/issuers/{issuer}");
    let update = json!({"name": "Vault 2", "config": {"url": "https://w", "token": "********"}});
    app.put_json(&path, &app.operator, &update).await.expect(200, None);
    trail.one("issuer_updated", "issuer", &issuer).await;
    app.put_json(&path, &app.operator, &json!({"config": {"token": "r0tated-t0ken"}})).await.expect(200, None);
    trail.one("issuer_updated", "issuer", &issuer).await;
    app.post_json("/api/v1/issuers", &app.operator, &json!({"name": "Vault 2", "type": "StepCA"}))
        .await
        .expect(409, None);
    app.put_json(&path, &app.operator, &json!({"config": {"password": "********"}})).await.expect(400, None);
    app.put_json("/api/v1/issuers/missing", &app.operator, &json!({"name": "x"})).await.expect(404, None);
    app.post_json("/api/v1/issuers", &app.operator, &json!({"name": "X", "type": "Nope"})).await.expect(400, None);
    trail.none("issuer changes").await;

    // F5 has no typed configuration, so its keys are free and only the generic checks apply.
    let body = json!({"name": "nginx", "type": "F5", "agent_id": ag,
        "config": {"cert_path": "/etc/ssl/a.pem", "password": PASSWORD}});
    let target = id(&app.post_json("/api/v1/targets", &app.operator, &body).await);
    let e = trail.one("target_created", "target", &target).await;
    assert_eq!(e.details["agent_id"], json!(ag));
    let tpath = format!("/api/v1/targets/{target}");
    let update = json!({"enabled": false, "config": {"cert_path": "/srv/a.pem", "password": "********"}});
    app.put_json(&tpath, &app.operator, &update).await.expect(200, None);
    trail.one("target_updated", "target", &target).await;
    app.put_json(&tpath, &app.operator, &json!({"config": {"cert_path": "a.pem"}})).await.expect(400, None);
    app.put_json(&tpath, &app.operator, &json!({"config": {"reload_command": "a;b"}})).await.expect(400, None);
    app.post_json("/api/v1/targets", &app.operator, &with(body.clone(), json!({"config": {}}))).await.expect(409, None);
    app.post_json("/api/v1/targets", &app.operator, &with(body, json!({"agent_id": "agent-x"})))
        .await
        .expect(400, None);
    trail.none("target changes").await;

    // A certificate mapped to the target keeps it.
    let d = deps(&app, "x").await;
    let c = app
        .post_json("/api/v1/certificates", &app.operator, &with(cert_body(&d, "web"), json!({"target_ids": [target]})))
        .await;
    trail.added().await;
    app.delete(&tpath, &app.operator).await.expect(409, None);
    app.delete(&format!("/api/v1/issuers/{}", d.issuer), &app.operator).await.expect(409, None);
    trail.none("deleting referenced records").await;
    app.put_json(&format!("/api/v1/certificates/{}", id(&c)), &app.operator, &json!({"target_ids": []}))
        .await
        .expect(200, None);
    trail.added().await;
    app.delete(&tpath, &app.operator).await.expect(204, None);
    trail.one("target_deleted", "target", &target).await;
    app.delete(&path, &app.operator).await.expect(204, None);
    trail.one("issuer_deleted", "issuer", &issuer).await;
    app.delete(&path, &app.operator).await.expect(404, None);
    trail.none("deleting a deleted issuer").await;

    // The API-call records are written in order, so once the last is there all are.
    let last = app.get("/api/v1/issuers", &app.viewer).await;
    app.api_audit("GET", "/api/v1/issuers", last.request_id()).await;
    let all = app
        .store
        .list_audit(
            &certctl_store::AuditFilterParsed::default(),
            &certctl_store::Paging::Page { page: 1, per_page: 500 },
        )
        .await
        .unwrap();
    for e in all.data() {
        let text = e.details.to_string();
        for secret in [TOKEN, PASSWORD, "r0tated-t0ken"] {
            assert!(!text.contains(secret), "{} ({}) carries a secret: {text}", e.action, e.resource_type);
        }
    }
}

#[tokio::test]
async fn inventory_changes_are_audited_once() {
    let app = TestApp::new().await;
    let d = deps(&app, "x").await;
    let ag = agent(&app.store, "web1").await;
    let t = crate::fixtures::target(&app, "t", &ag).await;
    let mut trail = Trail::new(&app.store).await;

    let prof = id(&app.post_json("/api/v1/profiles", &app.operator, &json!({"name": "Web"})).await);
    trail.one("certificate_profile_created", "certificate_profile", &prof).await;
    let ppath = format!("/api/v1/profiles/{prof}");
    app.put_json(&ppath, &app.operator, &json!({"description": "d"})).await.expect(200, None);
    trail.one("certificate_profile_updated", "certificate_profile", &prof).await;
    app.put_json(&ppath, &app.operator, &json!({"max_ttl_seconds": -1})).await.expect(400, None);
    app.post_json("/api/v1/profiles", &app.operator, &json!({"name": "Web"})).await.expect(409, None);
    app.post_json("/api/v1/profiles", &app.operator, &json!({"name": "X", "allowed_ekus": []})).await.expect(400, None);
    trail.none("profile changes").await;

    let policy = id(&app.post_json("/api/v1/renewal-policies", &app.operator, &json!({"name": "Fast"})).await);
    trail.one("renewal_policy_created", "renewal_policy", &policy).await;
    let rpath = format!("/api/v1/renewal-policies/{policy}");
    app.put_json(&rpath, &app.operator, &json!({"max_retries": 5})).await.expect(200, None);
    trail.one("renewal_policy_updated", "renewal_policy", &policy).await;
    app.put_json(&rpath, &app.operator, &json!({"max_retries": 50})).await.expect(400, None);
    app.post_json("/api/v1/renewal-policies", &app.operator, &json!({"name": "Fast"})).await.expect(409, None);
    app.delete(&format!("/api/v1/renewal-policies/{}", d.policy), &app.operator).await.expect(204, None);
    trail.one("renewal_policy_deleted", "renewal_policy", &d.policy).await;
    let d = crate::fixtures::Deps { policy: policy.clone(), ..d };

    let body = with(cert_body(&d, "web"), json!({"certificate_profile_id": prof}));
    let c = id(&app.post_json("/api/v1/certificates", &app.operator, &body).await);
    let e = trail.one("certificate_created", "certificate", &c).await;
    assert_eq!((&e.details["name"], &e.details["source"]), (&json!("web"), &json!("API")));
    let cpath = format!("/api/v1/certificates/{c}");
    app.put_json(&cpath, &app.operator, &json!({"environment": "prod", "tags": {"a": "b"}})).await.expect(200, None);
    let e = trail.one("certificate_updated", "certificate", &c).await;
    assert_eq!(e.details["changed"], json!(["environment", "tags"]));
    app.post_json("/api/v1/certificates", &app.operator, &body).await.expect(409, None);
    app.post_json("/api/v1/certificates", &app.operator, &with(cert_body(&d, "x"), json!({"owner_id": "nope"})))
        .await
        .expect(400, None);
    app.put_json(&cpath, &app.operator, &json!({"issuer_id": "nope"})).await.expect(400, None);
    app.put_json(&cpath, &app.operator, &json!({"common_name": "a..b"})).await.expect(400, None);
    app.delete(&ppath, &app.operator).await.expect(409, None);
    app.delete(&rpath, &app.operator).await.expect(409, None);
    trail.none("certificate changes").await;

    let map = format!("{cpath}/targets/{t}");
    app.put_json(&map, &app.operator, &json!({})).await.expect(204, None);
    let e = trail.one("certificate_target_mapped", "certificate", &c).await;
    assert_eq!(e.details["target_id"], json!(t));
    app.put_json(&map, &app.operator, &json!({})).await.expect(204, None);
    trail.none("mapping an already mapped target").await;
    app.delete(&map, &app.operator).await.expect(204, None);
    trail.one("certificate_target_unmapped", "certificate", &c).await;
    app.delete(&map, &app.operator).await.expect(404, None);
    app.put_json(&format!("{cpath}/targets/target-missing"), &app.operator, &json!({})).await.expect(404, None);
    trail.none("unmapping twice").await;
    app.delete(&cpath, &app.operator).await.expect(204, None);
    trail.one("certificate_archived", "certificate", &c).await;

    let job = app.store.create_job(&NewJob::new(JobType::Renewal, &c), &Actor::system(), T0).await.unwrap().id;
    trail.added().await;
    app.post_json(&format!("/api/v1/jobs/{job}/cancel"), &app.operator, &json!({})).await.expect(200, None);
    let e = trail.one("job_cancelled", "job", &job).await;
    assert_eq!((&e.details["previous_status"], &e.details["certificate_id"]), (&json!("Pending"), &json!(c)));
    app.post_json(&format!("/api/v1/jobs/{job}/cancel"), &app.operator, &json!({})).await.expect(409, None);
    app.post_json("/api/v1/jobs/job-missing/cancel", &app.operator, &json!({})).await.expect(404, None);
    trail.none("cancelling a cancelled job").await;

    let spare = id(&app.post_json("/api/v1/profiles", &app.operator, &json!({"name": "Spare"})).await);
    trail.added().await;
    app.delete(&format!("/api/v1/profiles/{spare}"), &app.operator).await.expect(204, None);
    trail.one("certificate_profile_deleted", "certificate_profile", &spare).await;
}

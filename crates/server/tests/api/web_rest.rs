//! The dashboard's remaining REST gaps in process: per-type configuration fields on the
//! target and issuer create forms, the digest page, deploying a certificate, marking a
//! notification read, the retired agents list and the issuer's CA chain download, and that a
//! viewer is offered none of the writes.

use axum::http::header;
use serde_json::{Value, json};

use certctl_api::{NotificationType, SeverityTier};
use certctl_server::clock::Clock;
use certctl_server::notify::worker;
use certctl_server::scheduler::drain_jobs;
use certctl_store::{ClaimKind, NewNotification};

use crate::fixtures;
use crate::harness::TestApp;
use crate::pki_peer::server_profile;
use crate::web::{Browser, html, is_page, location};

/// The record named `name` of the list at `api`, as the admin reads it.
async fn named(app: &TestApp, api: &str, name: &str) -> Option<Value> {
    let list = app.get(&format!("{api}?per_page=500"), &app.admin).await;
    list.json["data"].as_array().unwrap().iter().find(|v| v["name"] == name).cloned()
}

/// The text of `body` from the fieldset of `type_name` to the end of that fieldset.
fn fieldset<'a>(body: &'a str, type_name: &str) -> &'a str {
    let start = body.find(&format!("data-type=\"{type_name}\"")).expect("the type has a fieldset");
    let end = body[start..].find("</fieldset>").unwrap();
    &body[start..start + end]
}

#[tokio::test]
async fn target_form_builds_the_chosen_types_configuration_and_blames_its_fields() {
    let app = TestApp::new().await;
    let agent = fixtures::agent(&app.store, "web-rest").await;
    let mut b = Browser::new(&app);
    b.sign_in(&app.operator).await;
    let page = is_page(&b.get("/targets").await, 200);
    for t in ["NGINX", "Apache", "HAProxy", "Traefik", "Caddy", "Envoy", "Postfix", "Dovecot", "JavaKeystore", "File"] {
        assert!(page.contains(&format!("<fieldset class=\"typed-config\" data-type=\"{t}\">")), "{t}: {page}");
    }
    assert!(fieldset(&page, "HAProxy").contains("name=\"cfg.HAProxy.pem_path\""));
    assert!(fieldset(&page, "JavaKeystore").contains("type=\"password\""), "the keystore password is masked");

    let csrf = b.csrf().await;
    let r = b
        .post(
            "/targets",
            &[
                ("_csrf", &csrf),
                ("name", "edge-haproxy"),
                ("type", "HAProxy"),
                ("agent_id", &agent),
                ("cfg.HAProxy.pem_path", "/etc/haproxy/site.pem"),
                ("cfg.NGINX.cert_path", "/not/sent"),
                ("cfg.shared.backup_retention", "7"),
                ("cfg.shared.verify", "false"),
                ("config", ""),
            ],
        )
        .await;
    assert_eq!((r.status.as_u16(), location(&r)), (303, "/targets?notice=Created."), "{}", html(&r));
    let target = named(&app, "/api/v1/targets", "edge-haproxy").await.expect("the target is created");
    assert_eq!(
        target["config"],
        json!({"pem_path": "/etc/haproxy/site.pem", "backup_retention": 7, "verify": false}),
        "only the chosen type's fields and the shared options are sent"
    );

    // Raw JSON adds keys the fields do not cover; the fields win over it.
    let r = b
        .post(
            "/targets",
            &[
                ("_csrf", &csrf),
                ("name", "web-nginx"),
                ("type", "NGINX"),
                ("agent_id", &agent),
                ("cfg.NGINX.cert_path", "/etc/nginx/site.pem"),
                ("cfg.NGINX.key_path", "/etc/nginx/site.key"),
                ("config", r#"{"key_mode": "0640", "cert_path": "/overridden"}"#),
            ],
        )
        .await;
    assert_eq!(r.status.as_u16(), 303, "{}", html(&r));
    let target = named(&app, "/api/v1/targets", "web-nginx").await.unwrap();
    assert_eq!(
        target["config"],
        json!({"cert_path": "/etc/nginx/site.pem", "key_path": "/etc/nginx/site.key", "key_mode": "0640"})
    );

    // A missing required field is blamed next to that field of the chosen type.
    let r = b
        .post(
            "/targets",
            &[
                ("_csrf", &csrf),
                ("name", "half-nginx"),
                ("type", "NGINX"),
                ("agent_id", &agent),
                ("cfg.NGINX.cert_path", "/etc/nginx/half.pem"),
            ],
        )
        .await;
    let body = is_page(&r, 400);
    let nginx = fieldset(&body, "NGINX");
    assert!(nginx.contains("data-field=\"config.key_path\""), "the error sits at key_path: {nginx}");
    assert!(nginx.contains("value=\"/etc/nginx/half.pem\""), "what was typed is kept");
    assert!(!fieldset(&body, "Apache").contains("field-error"), "other types' fields are not blamed");
    assert!(named(&app, "/api/v1/targets", "half-nginx").await.is_none(), "nothing is created");
}

#[tokio::test]
async fn issuer_form_creates_a_generic_ca_that_issues_and_blames_acme_fields() {
    let app = TestApp::new().await;
    let mut b = Browser::new(&app);
    b.sign_in(&app.operator).await;
    let page = is_page(&b.get("/issuers").await, 200);
    assert!(fieldset(&page, "GenericCA").contains("name=\"cfg.GenericCA.validity_days\""));
    assert!(fieldset(&page, "ACME").contains("name=\"cfg.ACME.directory_url\""));
    let csrf = b.csrf().await;

    let r = b
        .post(
            "/issuers",
            &[
                ("_csrf", &csrf),
                ("name", "form-ca"),
                ("type", "GenericCA"),
                ("cfg.GenericCA.validity_days", "0"),
                ("cfg.GenericCA.key_algorithm", "ECDSA-P384"),
            ],
        )
        .await;
    assert!(fieldset(&is_page(&r, 422), "GenericCA").contains("data-field=\"config.validity_days\""));

    let r = b
        .post(
            "/issuers",
            &[
                ("_csrf", &csrf),
                ("name", "form-ca"),
                ("type", "GenericCA"),
                ("cfg.GenericCA.validity_days", "30"),
                ("cfg.GenericCA.key_algorithm", "ECDSA-P384"),
                ("cfg.GenericCA.common_name", "Form Root"),
                ("cfg.ACME.directory_url", "https://not.sent.example/dir"),
            ],
        )
        .await;
    assert_eq!(r.status.as_u16(), 303, "{}", html(&r));
    let issuer = named(&app, "/api/v1/issuers", "form-ca").await.expect("the issuer is created");
    assert_eq!(
        issuer["config"],
        json!({"validity_days": 30, "key_algorithm": "ECDSA-P384", "common_name": "Form Root"})
    );
    let issuer_id = issuer["id"].as_str().unwrap().to_owned();

    // The issuer works: a certificate is issued by it, valid for the days the form set.
    let mut d = fixtures::deps(&app, "form-ca").await;
    d.issuer = issuer_id.clone();
    let profile = server_profile(&app, "form-ca keys").await;
    let body = fixtures::with(fixtures::cert_body(&d, "formed"), json!({"certificate_profile_id": profile}));
    let cert = fixtures::cert(&app, &body).await;
    app.post_json(&format!("/api/v1/certificates/{cert}/renew"), &app.operator, &json!({})).await.expect(202, None);
    drain_jobs(&app.state).await;
    let c = app.get(&format!("/api/v1/certificates/{cert}"), &app.admin).await;
    assert_eq!(c.json["status"], "Active", "{}", c.json);

    // ACME: the required directory URL is blamed at its field.
    let r = b
        .post(
            "/issuers",
            &[("_csrf", &csrf), ("name", "form-acme"), ("type", "ACME"), ("cfg.ACME.contact", "ops@example.com")],
        )
        .await;
    let body = is_page(&r, 400);
    assert!(fieldset(&body, "ACME").contains("data-field=\"config.directory_url\""), "{body}");
    assert!(named(&app, "/api/v1/issuers", "form-acme").await.is_none());
}

#[tokio::test]
async fn ca_chain_downloads_as_pem_from_the_issuer_page() {
    let app = TestApp::new().await;
    let issuer = fixtures::issuer(&app, "chain-ca").await;
    let mut b = Browser::new(&app);
    b.sign_in(&app.viewer).await;
    let page = is_page(&b.get(&format!("/issuers/{issuer}")).await, 200);
    assert!(page.contains(&format!("href=\"/issuers/{issuer}/ca-chain.pem\"")), "{page}");
    let r = b.get(&format!("/issuers/{issuer}/ca-chain.pem")).await;
    assert_eq!(r.status, 200, "{}", html(&r));
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/x-pem-file");
    let disposition = r.headers[header::CONTENT_DISPOSITION].to_str().unwrap();
    assert_eq!(disposition, format!("attachment; filename=\"{issuer}-ca-chain.pem\""));
    let pem = html(&r);
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----") && pem.trim_end().ends_with("-----END CERTIFICATE-----"));
    let api = app.get(&format!("/api/v1/issuers/{issuer}/ca"), &app.viewer).await;
    assert_eq!(pem.as_bytes(), &api.body[..], "the API's chain, unchanged");
}

#[tokio::test]
async fn digest_page_previews_and_sends() {
    let app = TestApp::new().await;
    let d = fixtures::deps(&app, "digest").await;
    fixtures::cert(&app, &fixtures::cert_body(&d, "digested")).await;
    let mut b = Browser::new(&app);
    b.sign_in(&app.viewer).await;
    let page = is_page(&b.get("/digest?days=60").await, 200);
    assert!(page.contains("data-testid=\"digest-preview\"") && page.contains("href=\"/digest\""), "{page}");
    assert!(page.contains("value=\"60\""), "the window is kept");
    assert!(!page.contains("data-testid=\"digest-send\""), "a viewer cannot send");

    let mut b = Browser::new(&app);
    b.sign_in(&app.operator).await;
    let page = is_page(&b.get("/digest").await, 200);
    assert!(page.contains("data-testid=\"digest-send\""));
    let csrf = b.csrf().await;
    let r = b.post("/digest/send", &[("_csrf", &csrf), ("days", "")]).await;
    let body = is_page(&r, 503);
    assert!(body.contains("data-testid=\"digest-error\"") && body.contains("no email channel"), "{body}");

    let config = json!({"host": "smtp.invalid", "port": 587, "tls": "starttls", "from": "certctl@example.com",
                        "to": ["ops@example.com"]});
    app.post_json(
        "/api/v1/notification-channels",
        &app.operator,
        &json!({"name": "mail", "type": "Email", "config": config}),
    )
    .await
    .expect(201, None);
    let r = b.post("/digest/send", &[("_csrf", &csrf), ("days", "45")]).await;
    assert_eq!(r.status.as_u16(), 303, "{}", html(&r));
    assert!(location(&r).starts_with("/digest?days=45&notice=Digest%20queued%20for%201"), "{}", location(&r));
    let sent = app.get("/api/v1/notifications?type=Digest", &app.admin).await;
    assert_eq!(sent.json["data"].as_array().unwrap().len(), 1, "{}", sent.json);
}

#[tokio::test]
async fn deploy_button_queues_deployment_jobs() {
    let app = TestApp::new().await;
    let d = fixtures::deps(&app, "deploy").await;
    let agent = fixtures::agent(&app.store, "deployer").await;
    let target = fixtures::target(&app, "deploy-target", &agent).await;
    let profile = server_profile(&app, "deploy keys").await;
    let body = fixtures::with(
        fixtures::cert_body(&d, "deployed"),
        json!({"certificate_profile_id": profile, "target_ids": [target]}),
    );
    let cert = fixtures::cert(&app, &body).await;
    app.post_json(&format!("/api/v1/certificates/{cert}/renew"), &app.operator, &json!({})).await.expect(202, None);
    drain_jobs(&app.state).await;
    let deployments = || async {
        let jobs = app.get(&format!("/api/v1/jobs?certificate_id={cert}&type=Deployment"), &app.admin).await;
        jobs.json["data"].as_array().unwrap().len()
    };
    let before = deployments().await;

    let mut viewer = Browser::new(&app);
    viewer.sign_in(&app.viewer).await;
    let page = is_page(&viewer.get(&format!("/certificates/{cert}")).await, 200);
    assert!(!page.contains("data-testid=\"deploy\""), "a viewer is offered no Deploy");

    let mut b = Browser::new(&app);
    b.sign_in(&app.operator).await;
    let page = is_page(&b.get(&format!("/certificates/{cert}")).await, 200);
    assert!(page.contains(&format!("action=\"/certificates/{cert}/deploy\"")), "{page}");
    let csrf = b.csrf().await;
    let r = b.post(&format!("/certificates/{cert}/deploy"), &[("_csrf", &csrf), ("target_id", &target)]).await;
    assert_eq!(
        (r.status.as_u16(), location(&r)),
        (303, format!("/certificates/{cert}?notice=Deployment%20queued%3A%201%20job%28s%29.").as_str())
    );
    assert_eq!(deployments().await, before + 1, "one Deployment job for the chosen target");

    // A certificate that was never issued is refused by the API; the page says why.
    let fresh =
        fixtures::cert(&app, &fixtures::with(fixtures::cert_body(&d, "fresh"), json!({"target_ids": [target]}))).await;
    let r = b.post(&format!("/certificates/{fresh}/deploy"), &[("_csrf", &csrf)]).await;
    assert!(location(&r).contains("notice=Not%20deployed"), "{}", location(&r));
}

fn dead_letter(n: usize) -> NewNotification {
    NewNotification {
        notification_type: NotificationType::ExpirationWarning,
        // No Email channel is configured, so delivery sends the row straight to `dead`.
        channel: "Email".into(),
        recipient: format!("ops{n}@example.com"),
        certificate_id: None,
        subject: format!("Certificate {n} expires soon"),
        message: "expires in 5 days".into(),
        payload: json!({}),
        severity: SeverityTier::Warning,
        dedup_key: None,
    }
}

#[tokio::test]
async fn mark_read_changes_the_notification() {
    let app = TestApp::new().await;
    app.store.enqueue_notifications(&[dead_letter(1)], app.clock.now()).await.unwrap();
    while worker::deliver(&app.state, ClaimKind::Pending).await > 0 {}
    let list = app.get("/api/v1/notifications", &app.admin).await;
    let id = list.json["data"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(list.json["data"][0]["status"], "dead");

    let mut viewer = Browser::new(&app);
    viewer.sign_in(&app.viewer).await;
    assert!(!is_page(&viewer.get("/notifications").await, 200).contains("data-read="), "a viewer cannot mark read");

    let mut b = Browser::new(&app);
    b.sign_in(&app.operator).await;
    let page = is_page(&b.get("/notifications?status=dead").await, 200);
    assert!(page.contains(&format!("data-read=\"{id}\"")), "{page}");
    let csrf = b.csrf().await;
    let r =
        b.post(&format!("/notifications/{id}/read"), &[("_csrf", &csrf), ("back", "/notifications?status=dead")]).await;
    assert_eq!(r.status.as_u16(), 303);
    assert!(location(&r).starts_with("/notifications?status=dead&notice=Marked"), "{}", location(&r));
    let n = app.get(&format!("/api/v1/notifications/{id}"), &app.admin).await;
    assert_eq!(n.json["status"], "read", "{}", n.json);
    let page = is_page(&b.get("/notifications").await, 200);
    assert!(!page.contains(&format!("data-read=\"{id}\"")), "a read row offers no Mark read");
}

#[tokio::test]
async fn retired_agents_have_their_own_list() {
    let app = TestApp::new().await;
    let live = fixtures::agent(&app.store, "still-here").await;
    let gone = fixtures::agent(&app.store, "decommissioned").await;
    let r = app.delete(&format!("/api/v1/agents/{gone}"), &app.admin).await;
    assert!(r.status.is_success(), "{}", r.json);
    let mut b = Browser::new(&app);
    b.sign_in(&app.viewer).await;
    let agents = is_page(&b.get("/agents").await, 200);
    assert!(agents.contains("href=\"/agents-retired\""));
    assert!(agents.contains(&format!("data-id=\"{live}\"")) && !agents.contains(&format!("data-id=\"{gone}\"")));
    let retired = is_page(&b.get("/agents-retired").await, 200);
    assert!(retired.contains(&format!("data-id=\"{gone}\"")), "{retired}");
    assert!(retired.contains(&format!("href=\"/agents/{gone}\"")), "a retired agent links to its page");
    is_page(&b.get(&format!("/agents/{gone}")).await, 200);
    assert!(!retired.contains(&format!("data-id=\"{live}\"")));
}

#[tokio::test]
async fn a_viewer_gets_no_configuration_forms() {
    let app = TestApp::new().await;
    let mut b = Browser::new(&app);
    b.sign_in(&app.viewer).await;
    for page in ["/targets", "/issuers"] {
        let body = is_page(&b.get(page).await, 200);
        assert!(!body.contains("typed-config"), "{page}: {body}");
    }
}

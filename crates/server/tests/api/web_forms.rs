//! The dashboard's forms in process: editing a certificate, the PKCS#12 download, names in the
//! inventory, the alert matrix editor, claiming a discovered certificate, the ACME page's EAB
//! keys, what a viewer may not do, and HTML snapshots of the stable empty-store pages.

use serde_json::json;
use time::OffsetDateTime;

use certctl_api::CreateCertificate;
use certctl_server::clock::Clock;
use certctl_server::scheduler::drain_jobs;
use certctl_store::{Actor, NewDiscovery};

use crate::fixtures::{self, Deps};
use crate::harness::TestApp;
use crate::pki_peer::{Openssl, server_profile};
use crate::web::{Browser, html, is_page, location};

/// A certificate `name` with a server-held key, issued.
async fn issued(app: &TestApp, d: &Deps, name: &str) -> String {
    let profile = server_profile(app, &format!("{name} keys")).await;
    let id =
        fixtures::cert(app, &fixtures::with(fixtures::cert_body(d, name), json!({"certificate_profile_id": profile})))
            .await;
    app.post_json(&format!("/api/v1/certificates/{id}/renew"), &app.operator, &json!({})).await.expect(202, None);
    drain_jobs(&app.state).await;
    let c = app.get(&format!("/api/v1/certificates/{id}"), &app.admin).await;
    assert_eq!(c.json["status"], "Active", "{}", c.json);
    id
}

#[tokio::test]
async fn the_edit_form_is_prefilled_saves_and_shows_field_errors() {
    let app = TestApp::new().await;
    let d = fixtures::deps(&app, "edit").await;
    let id = fixtures::cert(&app, &fixtures::cert_body(&d, "shop")).await;
    let mut b = Browser::new(&app);
    b.sign_in(&app.operator).await;
    let detail = is_page(&b.get(&format!("/certificates/{id}")).await, 200);
    assert!(detail.contains(&format!("href=\"/certificates/{id}/edit\"")), "{detail}");
    let form = is_page(&b.get(&format!("/certificates/{id}/edit")).await, 200);
    assert!(form.contains(&format!("action=\"/certificates/{id}/edit\"")) && form.contains(">Save</button>"));
    assert!(form.contains("value=\"shop.example.com\""), "the common name is filled in: {form}");
    assert!(form.contains(&format!("<option value=\"{}\" selected>", d.owner)), "the owner is selected");

    let csrf = b.csrf().await;
    let mut fields = vec![
        ("_csrf", csrf.as_str()),
        ("name", "shop-renamed"),
        ("common_name", "shop.example.com"),
        ("sans", "shop.example.com, www.shop.example.com"),
        ("environment", "production"),
        ("tags", "cost=web, tier=1"),
        ("owner_id", "o-nobody"),
        ("team_id", d.team.as_str()),
        ("issuer_id", d.issuer.as_str()),
        ("renewal_policy_id", d.policy.as_str()),
    ];
    let r = b.post(&format!("/certificates/{id}/edit"), &fields).await;
    assert!(r.status.is_client_error(), "{}", html(&r));
    let body = is_page(&r, r.status.as_u16());
    assert!(body.contains("data-field=\"owner_id\""), "the error sits at the owner field: {body}");
    assert!(body.contains("value=\"shop-renamed\""), "what was typed is kept");
    let unchanged = app.get(&format!("/api/v1/certificates/{id}"), &app.admin).await;
    assert_eq!(unchanged.json["name"], "shop", "a refused edit changes nothing");

    fields[5] = ("tags", "no-equals-sign");
    fields[6] = ("owner_id", d.owner.as_str());
    let r = b.post(&format!("/certificates/{id}/edit"), &fields).await;
    assert!(is_page(&r, 400).contains("data-field=\"tags\""), "malformed tags are blamed on the tags field");

    fields[5] = ("tags", "cost=web, tier=1");
    let r = b.post(&format!("/certificates/{id}/edit"), &fields).await;
    assert_eq!((r.status.as_u16(), location(&r)), (303, format!("/certificates/{id}?notice=Saved.").as_str()));
    let saved = app.get(&format!("/api/v1/certificates/{id}"), &app.admin).await;
    assert_eq!(
        (&saved.json["name"], &saved.json["sans"], &saved.json["environment"], &saved.json["tags"]),
        (
            &json!("shop-renamed"),
            &json!(["shop.example.com", "www.shop.example.com"]),
            &json!("production"),
            &json!({"cost": "web", "tier": "1"})
        )
    );
    app.finish().await;
}

#[tokio::test]
async fn pkcs12_export_downloads_a_file_openssl_reads() {
    let Some(ssl) = Openssl::new() else { return };
    let app = TestApp::new().await;
    let d = fixtures::deps(&app, "p12").await;
    let id = issued(&app, &d, "vault").await;
    let mut admin = Browser::new(&app);
    admin.sign_in(&app.admin).await;
    let detail = is_page(&admin.get(&format!("/certificates/{id}")).await, 200);
    assert!(detail.contains("data-testid=\"pkcs12\"") && detail.contains("name=\"include_key\""), "{detail}");
    let csrf = admin.csrf().await;
    let path = format!("/certificates/{id}/export.p12");

    let r = admin.post(&path, &[("_csrf", &csrf), ("password", "")]).await;
    let body = is_page(&r, 400);
    assert!(body.contains("data-field=\"password\""), "a refused export is shown at its form: {body}");

    let r = admin.post(&path, &[("_csrf", &csrf), ("password", "p12 s3cret"), ("include_key", "on")]).await;
    assert_eq!(r.status, 200, "{}", html(&r));
    assert_eq!(r.headers["content-type"], "application/x-pkcs12");
    let disposition = r.headers["content-disposition"].to_str().unwrap();
    assert_eq!(disposition, format!("attachment; filename=\"{id}.p12\""), "the API's file name");
    let p12 = ssl.write("full.p12", &r.body);
    let info = ssl.ok(&["pkcs12", "-info", "-nokeys", "-in", p12, "-passin", "pass:p12 s3cret"]);
    assert_eq!(info.matches("BEGIN CERTIFICATE").count(), 2, "leaf and root: {info}");
    let keys = ssl.ok(&["pkcs12", "-info", "-nocerts", "-nodes", "-in", p12, "-passin", "pass:p12 s3cret"]);
    assert!(keys.contains("BEGIN PRIVATE KEY"), "an admin's export carries the key: {keys}");
    ssl.fails(&["pkcs12", "-info", "-nokeys", "-in", p12, "-passin", "pass:wrong"]);

    // An operator gets certificates only, and no key option.
    let mut op = Browser::new(&app);
    op.sign_in(&app.operator).await;
    let detail = is_page(&op.get(&format!("/certificates/{id}")).await, 200);
    assert!(detail.contains("data-testid=\"pkcs12\"") && !detail.contains("name=\"include_key\""));
    let csrf = op.csrf().await;
    let r = op.post(&path, &[("_csrf", &csrf), ("password", "certs-only")]).await;
    assert_eq!(r.status, 200, "{}", html(&r));
    let p12 = ssl.write("certs.p12", &r.body);
    let info = ssl.ok(&["pkcs12", "-info", "-nodes", "-in", p12, "-passin", "pass:certs-only"]);
    assert!(!info.contains("PRIVATE KEY") && info.contains("BEGIN CERTIFICATE"), "{info}");
    let r = op.post(&path, &[("_csrf", &csrf), ("password", "x"), ("include_key", "on")]).await;
    assert!(is_page(&r, 403).contains("needs an admin key"), "the API still refuses a forged key option");
    app.finish().await;
}

#[tokio::test]
async fn the_inventory_shows_names_linked_instead_of_ids() {
    let app = TestApp::new().await;
    let d = fixtures::deps(&app, "names").await;
    let id = fixtures::cert(&app, &fixtures::cert_body(&d, "named")).await;
    let mut b = Browser::new(&app);
    b.sign_in(&app.viewer).await;
    let list = is_page(&b.get("/certificates").await, 200);
    let row = &list[list.find(&format!("href=\"/certificates/{id}\"")).expect("the row is listed")..];
    let row = &row[..row.find("</tr>").unwrap()];
    for (field, name, ref_id) in [
        ("issuer_id", "issuer names", &d.issuer),
        ("owner_id", "owner-names", &d.owner),
        ("team_id", "team names", &d.team),
    ] {
        let link = format!("<a href=\"/certificates?{field}={ref_id}\" title=\"{ref_id}\">{name}</a>");
        assert!(row.contains(&link), "{field} shows its name linked: {row}");
    }
    let detail = is_page(&b.get(&format!("/certificates/{id}")).await, 200);
    assert!(
        detail.contains(&format!("title=\"{}\">owner-names</a> / ", d.owner)),
        "the detail names them too: {detail}"
    );
    assert!(detail.contains(&format!("href=\"/renewal-policies/{}/alerts\"", d.policy)), "{detail}");
    // A filter link leads to the filtered inventory.
    let filtered = is_page(&b.get(&format!("/certificates?owner_id={}", d.owner)).await, 200);
    assert!(filtered.contains(&format!("href=\"/certificates/{id}\"")));
    app.finish().await;
}

#[tokio::test]
async fn the_alert_matrix_editor_round_trips_through_the_api() {
    let app = TestApp::new().await;
    let d = fixtures::deps(&app, "alerts").await;
    let r = app
        .post_json(
            "/api/v1/notification-channels",
            &app.admin,
            &json!({"name": "ops-hook", "type": "Webhook", "config": {"url": "https://hooks.example.com/x"}}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.json);
    let mut b = Browser::new(&app);
    b.sign_in(&app.operator).await;
    let list = is_page(&b.get("/renewal-policies").await, 200);
    let edit = format!("/renewal-policies/{}/alerts", d.policy);
    assert!(list.contains(&format!("href=\"{edit}\"")), "each policy row links its editor: {list}");
    let page = is_page(&b.get(&edit).await, 200);
    let before = app.get(&format!("/api/v1/renewal-policies/{}", d.policy), &app.admin).await;
    let thresholds = before.json["alert_thresholds_days"].as_array().unwrap().clone();
    for t in &thresholds {
        assert!(page.contains(&format!("value=\"{t}\"")), "threshold {t} has its row: {page}");
    }
    assert!(page.contains("name=\"channels_critical\" value=\"ops-hook\""), "managed channels are columns: {page}");

    // Keep 30 at its default, make 7 critical, drop the others, add 3 as warning; route
    // critical to the managed channel.
    let csrf = b.csrf().await;
    let n = thresholds.len() + 2;
    let mut fields: Vec<(String, String)> = vec![("_csrf".into(), csrf.clone()), ("rows".into(), n.to_string())];
    for (i, t) in thresholds.iter().enumerate() {
        fields.push((format!("days_{i}"), t.to_string()));
        match t.as_i64().unwrap() {
            30 => {}
            7 => fields.push((format!("severity_{i}"), "critical".into())),
            _ => fields.push((format!("remove_{i}"), "on".into())),
        }
    }
    fields.push((format!("days_{}", thresholds.len()), "3".into()));
    fields.push((format!("severity_{}", thresholds.len()), "warning".into()));
    fields.push(("channels_critical".into(), "ops-hook".into()));
    fields.push(("channels_warning".into(), "Email".into()));
    let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = b.post(&edit, &refs).await;
    assert_eq!((r.status.as_u16(), location(&r)), (303, format!("{edit}?notice=Saved.").as_str()), "{}", html(&r));
    let after = app.get(&format!("/api/v1/renewal-policies/{}", d.policy), &app.admin).await;
    assert_eq!(after.json["alert_thresholds_days"], json!([30, 7, 3]));
    assert_eq!(after.json["alert_severity_map"], json!({"3": "warning", "7": "critical"}));
    assert_eq!(after.json["alert_channels"], json!({"critical": ["ops-hook"], "warning": ["Email"]}));
    let page = is_page(&b.get(&edit).await, 200);
    assert!(page.contains("name=\"channels_critical\" value=\"ops-hook\" checked"), "saved routes are ticked: {page}");

    // A channel that exists nowhere is the API's 422, shown on the editor as posted.
    let r = b.post(&edit, &[("_csrf", &csrf), ("rows", "1"), ("days_0", "5"), ("channels_warning", "nowhere")]).await;
    let body = is_page(&r, 422);
    assert!(body.contains("nowhere") && body.contains("does not exist"), "{body}");
    assert!(body.contains("value=\"5\""), "the posted rows are kept");
    let unchanged = app.get(&format!("/api/v1/renewal-policies/{}", d.policy), &app.admin).await;
    assert_eq!(unchanged.json["alert_thresholds_days"], json!([30, 7, 3]));
    app.finish().await;
}

fn discovery(path: &str) -> NewDiscovery {
    NewDiscovery {
        source_path: path.into(),
        source_format: "PEM".into(),
        fingerprint_sha256: format!("{:0>64}", path.len()),
        common_name: "legacy.example.com".into(),
        sans: vec!["legacy.example.com".into()],
        serial_number: "0a".into(),
        subject_dn: "CN=legacy.example.com".into(),
        issuer_dn: "CN=Old Corp CA".into(),
        not_before: OffsetDateTime::UNIX_EPOCH,
        not_after: OffsetDateTime::UNIX_EPOCH + time::Duration::days(30_000),
        key_algorithm: "ECDSA".into(),
        key_size: 256,
        is_ca: false,
        pem_data: "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n".into(),
    }
}

#[tokio::test]
async fn a_discovered_certificate_is_claimed_from_its_form() {
    let app = TestApp::new().await;
    let d = fixtures::deps(&app, "claim").await;
    let agent = fixtures::agent(&app.store, "finder").await;
    app.store
        .record_discoveries(&agent, &[discovery("/etc/ssl/legacy.pem")], json!({}), app.clock.now())
        .await
        .unwrap();
    let found = app.get("/api/v1/discovered-certificates", &app.admin).await;
    let id = found.json["data"][0]["id"].as_str().unwrap().to_owned();

    let mut b = Browser::new(&app);
    b.sign_in(&app.operator).await;
    let list = is_page(&b.get("/discovery").await, 200);
    assert!(list.contains(&format!("href=\"/discovery/{id}/claim\"")) && list.contains(">Dismiss</button>"), "{list}");
    assert!(list.contains("<td>/etc/ssl/legacy.pem</td>"), "where it was found is listed");
    let form = is_page(&b.get(&format!("/discovery/{id}/claim")).await, 200);
    assert!(form.contains("value=\"legacy.example.com\"") && form.contains(&format!("<option value=\"{}\"", d.owner)));
    let csrf = b.csrf().await;
    let path = format!("/discovery/{id}/claim");
    let r = b.post(&path, &[("_csrf", &csrf), ("name", "legacy")]).await;
    assert!(is_page(&r, 400).contains("data-field=\"owner_id\""), "the missing reference is blamed");
    let r = b
        .post(
            &path,
            &[
                ("_csrf", &csrf),
                ("name", "legacy"),
                ("owner_id", &d.owner),
                ("team_id", &d.team),
                ("issuer_id", &d.issuer),
                ("renewal_policy_id", &d.policy),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", html(&r));
    assert!(location(&r).starts_with("/discovery?notice=Claimed"), "{}", location(&r));
    let claimed = app.get(&format!("/api/v1/discovered-certificates/{id}"), &app.admin).await;
    assert_eq!(claimed.json["status"], "Managed");
    let managed = claimed.json["managed_certificate_id"].as_str().unwrap();
    let m = app.get(&format!("/api/v1/certificates/{managed}"), &app.admin).await;
    assert_eq!((&m.json["name"], &m.json["owner_id"]), (&json!("legacy"), &json!(d.owner)));
    app.finish().await;
}

#[tokio::test]
async fn eab_keys_are_created_shown_once_and_deleted() {
    let app = TestApp::new().await;
    let mut b = Browser::new(&app);
    b.sign_in(&app.admin).await;
    let page = is_page(&b.get("/acme").await, 200);
    assert!(page.contains("href=\"/acme\"") && page.contains("No EAB keys"), "{page}");
    let csrf = b.csrf().await;
    let r = b.post("/acme/eab-keys", &[("_csrf", &csrf), ("note", "certbot on web-1")]).await;
    let body = is_page(&r, 200);
    let at = body.find("data-testid=\"hmac\">").expect("the HMAC key is shown") + 19;
    let hmac = &body[at..at + body[at..].find('<').unwrap()];
    assert!(hmac.len() >= 43, "a 256-bit key, base64url: {hmac}");
    let keys = app.get("/api/v1/acme/eab-keys", &app.admin).await;
    let kid = keys.json["data"][0]["kid"].as_str().unwrap().to_owned();
    assert_eq!(keys.json["data"][0]["note"], "certbot on web-1");

    let again = is_page(&b.get("/acme").await, 200);
    assert!(again.contains(&kid) && !again.contains(hmac), "listed, the HMAC key never again");
    let r = b.post(&format!("/acme/eab-keys/{kid}/delete"), &[("_csrf", &csrf)]).await;
    assert_eq!(r.status, 303, "{}", html(&r));
    let keys = app.get("/api/v1/acme/eab-keys", &app.admin).await;
    assert_eq!(keys.json["total"], 0);
    app.finish().await;
}

#[tokio::test]
async fn a_viewer_sees_no_write_controls_and_is_refused_on_post() {
    let app = TestApp::new().await;
    let d = fixtures::deps(&app, "viewer").await;
    let id = fixtures::cert(&app, &fixtures::cert_body(&d, "ro")).await;
    let agent = fixtures::agent(&app.store, "ro-finder").await;
    app.store.record_discoveries(&agent, &[discovery("/etc/ro.pem")], json!({}), app.clock.now()).await.unwrap();
    let found = app.get("/api/v1/discovered-certificates", &app.admin).await;
    let discovered = found.json["data"][0]["id"].as_str().unwrap().to_owned();

    let mut b = Browser::new(&app);
    b.sign_in(&app.viewer).await;
    let detail = is_page(&b.get(&format!("/certificates/{id}")).await, 200);
    assert!(!detail.contains("/edit\""), "no edit link: {detail}");
    let form = is_page(&b.get(&format!("/certificates/{id}/edit")).await, 200);
    assert!(!form.contains(">Save</button>"), "the form is read-only for a viewer");
    let alerts = is_page(&b.get(&format!("/renewal-policies/{}/alerts", d.policy)).await, 200);
    assert!(!alerts.contains(">Save</button>") && !alerts.contains("name=\"remove_0\""), "{alerts}");
    let acme = is_page(&b.get("/acme").await, 200);
    assert!(!acme.contains("data-testid=\"eab-create\"") && !acme.contains("/renew-now\""), "{acme}");
    let discovery_list = is_page(&b.get("/discovery").await, 200);
    assert!(!discovery_list.contains("/claim\""), "{discovery_list}");
    let claim = is_page(&b.get(&format!("/discovery/{discovered}/claim")).await, 200);
    assert!(!claim.contains("data-testid=\"claim\""), "{claim}");

    let csrf = b.csrf().await;
    let posts = [
        (format!("/certificates/{id}/edit"), vec![("name", "x")]),
        (format!("/renewal-policies/{}/alerts", d.policy), vec![("rows", "1"), ("days_0", "9")]),
        (format!("/discovery/{discovered}/claim"), vec![("managed_certificate_id", id.as_str())]),
        ("/acme/eab-keys".to_owned(), vec![("note", "x")]),
        ("/certificates/bulk".to_owned(), vec![("ids", id.as_str()), ("action", "reassign"), ("owner_id", &d.owner)]),
    ];
    for (path, extra) in posts {
        let mut fields = vec![("_csrf", csrf.as_str())];
        fields.extend(extra);
        let r = b.post(&path, &fields).await;
        let body = is_page(&r, 403);
        assert!(body.contains("needs an admin"), "the API's refusal is shown: {path}: {body}");
    }
    let c = app.get(&format!("/api/v1/certificates/{id}"), &app.admin).await;
    assert_eq!(c.json["name"], "ro", "nothing changed");
    app.finish().await;
}

#[tokio::test]
async fn bulk_reassign_moves_the_ticked_certificates() {
    let app = TestApp::new().await;
    let d = fixtures::deps(&app, "bulk").await;
    let a = fixtures::cert(&app, &fixtures::cert_body(&d, "one")).await;
    let other_team = app.team("new home").await;
    let other_owner = app.owner("new-owner", &other_team).await;
    let mut b = Browser::new(&app);
    b.sign_in(&app.operator).await;
    let csrf = b.csrf().await;
    let r = b
        .post(
            "/certificates/bulk",
            &[
                ("_csrf", &csrf),
                ("ids", &a),
                ("action", "reassign"),
                ("owner_id", &other_owner),
                ("team_id", &other_team),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", html(&r));
    assert!(location(&r).contains("1%20of%201%20certificates%20done"), "{}", location(&r));
    let c = app.get(&format!("/api/v1/certificates/{a}"), &app.admin).await;
    assert_eq!((&c.json["owner_id"], &c.json["team_id"]), (&json!(other_owner), &json!(other_team)));
    app.finish().await;
}

/// Snapshots `body` with what varies between runs replaced: the CSRF token, the version,
/// dates and generated IDs. The sidebar is left out: it grows with every new page, and the
/// pages' own content is what these snapshots guard.
fn snapshot(name: &str, body: &str) {
    let body = body.replace(env!("CARGO_PKG_VERSION"), "[version]");
    insta::with_settings!({filters => vec![
        (r#"(?s)<nav class="sidebar" aria-label="Main">.*?</nav>"#, "[sidebar]"),
        (r#"name="_csrf" value="[^"]*""#, r#"name="_csrf" value="[csrf]""#),
        (r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?", "[date]"),
        (r"\b([a-z]+)-[0-9a-f]{32}\b", "$1-[id]"),
    ]}, {
        insta::assert_snapshot!(name, body);
    });
}

#[tokio::test]
async fn stable_pages_of_an_empty_store_match_their_snapshots() {
    let app = TestApp::new().await;
    let mut b = Browser::new(&app);
    snapshot("login", &is_page(&b.get("/login").await, 200));
    b.sign_in(&app.admin).await;
    snapshot("dashboard_first_run", &is_page(&b.get("/").await, 200));
    snapshot("teams_empty", &is_page(&b.get("/teams").await, 200));
    snapshot("certificates_empty", &is_page(&b.get("/certificates").await, 200));
    app.finish().await;
}

#[tokio::test]
async fn a_profile_is_served_over_acme_from_its_form_and_renew_now_answers() {
    let app = TestApp::new().await;
    let d = fixtures::deps(&app, "acme").await;
    let profile = fixtures::profile(&app, "acme web").await;
    let mut b = Browser::new(&app);
    b.sign_in(&app.admin).await;
    let page = is_page(&b.get("/acme").await, 200);
    assert!(page.contains(&format!("action=\"/acme/bindings/{profile}\"")) && page.contains("Not served over ACME."));
    let csrf = b.csrf().await;
    let mut fields = vec![
        ("_csrf", csrf.as_str()),
        ("issuer_id", d.issuer.as_str()),
        ("owner_id", d.owner.as_str()),
        ("team_id", d.team.as_str()),
        ("external_account_required", "on"),
        ("renewal_policy_id", d.policy.as_str()),
    ];
    // An auto-renewing policy is the API's 422, shown at that profile's form.
    let body = is_page(&b.post(&format!("/acme/bindings/{profile}"), &fields).await, 422);
    let block = &body[body.find(&format!("data-profile=\"{profile}\"")).unwrap()..];
    assert!(block[..block.find("</form>").unwrap()].contains("auto-renews"), "{block}");

    // Without a policy the API files ACME certificates under rp-acme.
    fields.pop();
    let refs = fields;
    let r = b.post(&format!("/acme/bindings/{profile}"), &refs).await;
    assert_eq!(r.status, 303, "{}", html(&r));
    let bindings = app.get("/api/v1/acme/profiles", &app.viewer).await;
    let bound = bindings.json.as_array().unwrap().iter().find(|x| x["profile_id"] == profile.as_str()).unwrap().clone();
    assert_eq!(
        (&bound["issuer_id"], &bound["renewal_policy_id"], &bound["external_account_required"]),
        (&json!(d.issuer), &json!("rp-acme"), &json!(true))
    );
    let page = is_page(&b.get("/acme").await, 200);
    assert!(page.contains(&format!("/acme/profile/{profile}/directory")), "the directory URL is shown: {page}");

    let r = b.post(&format!("/acme/issuers/{}/renew-now", d.issuer), &[("_csrf", &csrf)]).await;
    assert_eq!(r.status, 303, "{}", html(&r));
    assert!(location(&r).starts_with("/acme?notice=0%20certificates"), "{}", location(&r));

    // One ACME certificate: its detail page asks its client to renew, admins only.
    let req: CreateCertificate = serde_json::from_value(fixtures::cert_body(&d, "acme-one")).unwrap();
    let cert = app.store.create_certificate(&req, "ACME", &Actor::system(), app.clock.now()).await.unwrap().id;
    let other = fixtures::cert(&app, &fixtures::cert_body(&d, "api-one")).await;
    let detail = is_page(&b.get(&format!("/certificates/{cert}")).await, 200);
    assert!(detail.contains("data-testid=\"acme-renew-now\""), "{detail}");
    assert!(!is_page(&b.get(&format!("/certificates/{other}")).await, 200).contains("acme-renew-now"));
    let mut op = Browser::new(&app);
    op.sign_in(&app.operator).await;
    assert!(!is_page(&op.get(&format!("/certificates/{cert}")).await, 200).contains("acme-renew-now"));
    let r = b.post(&format!("/certificates/{cert}/acme-renew-now"), &[("_csrf", &csrf)]).await;
    assert_eq!(r.status, 303, "{}", html(&r));
    assert!(location(&r).starts_with(&format!("/certificates/{cert}?notice=ACME")), "{}", location(&r));
    let window = app.store.acme_renewal_override(&cert).await.unwrap();
    assert_eq!(window.map(|(start, _)| start), Some(app.clock.now()), "the ARI window opens now");
    app.finish().await;
}

//! The dashboard in process: sign-in and sessions, CSRF, role gating, every page on an empty
//! and a populated store, the create form's field errors, and the notifications tabs with
//! requeue. The real-browser flows are in `web_browser.rs`.

use axum::body::Body;
use axum::http::{Method, Request, header};
use serde_json::json;

use certctl_api::{NotificationType, SeverityTier};
use certctl_server::clock::Clock;
use certctl_server::notify::worker;
use certctl_store::{AuditFilterParsed, ClaimKind, NewNotification};

use crate::fixtures;
use crate::harness::{Reply, TestApp};

/// A browser's view of the app: the cookies it holds.
pub struct Browser<'a> {
    app: &'a TestApp,
    cookies: Vec<(String, String)>,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Browser<'a> {
        Browser { app, cookies: Vec::new() }
    }

    fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn keep_cookies(&mut self, r: &Reply) {
        for v in r.headers.get_all(header::SET_COOKIE) {
            let v = v.to_str().unwrap();
            let (pair, _) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != k);
            if !val.is_empty() {
                self.cookies.push((k.to_owned(), val.to_owned()));
            }
        }
    }

    fn with_cookies(&self, b: axum::http::request::Builder) -> axum::http::request::Builder {
        if self.cookies.is_empty() {
            return b;
        }
        let header = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        b.header(header::COOKIE, header)
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        let req = self.with_cookies(Request::builder().method(Method::GET).uri(path)).body(Body::empty()).unwrap();
        let r = self.app.send(req).await;
        self.keep_cookies(&r);
        r
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let body: String = fields.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&");
        let req = self
            .with_cookies(Request::builder().method(Method::POST).uri(path))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        let r = self.app.send(req).await;
        self.keep_cookies(&r);
        r
    }

    /// Signs in with `key`; panics unless the server answers with a session.
    pub async fn sign_in(&mut self, key: &str) {
        let page = self.get("/login").await;
        page.expect(200, None);
        let csrf = self.cookie("certctl_login_csrf").expect("the sign-in page sets its CSRF cookie").to_owned();
        let r = self.post("/login", &[("_csrf", &csrf), ("api_key", key)]).await;
        assert_eq!(r.status, 303, "{}", html(&r));
        assert_eq!(location(&r), "/");
        assert!(self.cookie("certctl_session").is_some());
    }

    /// The CSRF token of the signed-in session, as the pages embed it.
    pub async fn csrf(&mut self) -> String {
        let page = self.get("/certificates").await;
        let body = html(&page);
        let at = body.find("name=\"_csrf\" value=\"").expect("pages carry the CSRF token") + 20;
        body[at..at + body[at..].find('"').unwrap()].to_owned()
    }
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub fn html(r: &Reply) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

pub fn location(r: &Reply) -> &str {
    r.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

#[track_caller]
pub fn is_page(r: &Reply, status: u16) -> String {
    let body = html(r);
    assert_eq!(r.status.as_u16(), status, "{body}");
    let ct = r.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(ct.starts_with("text/html"), "a page, not {ct}: {body}");
    let csp = r.headers.get(header::CONTENT_SECURITY_POLICY).and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "strict CSP: {csp}");
    assert!(!body.contains("<script>") && !body.contains(" onclick="), "no inline script");
    body
}

#[tokio::test]
async fn sign_in_sets_a_strict_session_cookie_and_sign_out_ends_it() {
    let app = TestApp::new().await;
    let mut b = Browser::new(&app);
    let r = b.get("/").await;
    assert_eq!((r.status.as_u16(), location(&r)), (303, "/login"), "no session: to the sign-in page");

    let page = b.get("/login").await;
    let body = is_page(&page, 200);
    assert!(body.contains("name=\"api_key\""));
    let set = page.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Secure"), "{set}");

    // The sign-in form needs its CSRF token.
    let r = b.post("/login", &[("api_key", app.admin.as_str())]).await;
    assert!(is_page(&r, 403).contains("Form expired"));
    // A wrong key is refused on the form, audited, and gives no session.
    let csrf = b.cookie("certctl_login_csrf").unwrap().to_owned();
    let r = b.post("/login", &[("_csrf", &csrf), ("api_key", "cck_wrong")]).await;
    assert!(is_page(&r, 401).contains("Sign-in failed: invalid API key"));
    assert!(b.cookie("certctl_session").is_none());
    app.wait_for_audit(AuditFilterParsed::default(), |e| e.action == "dashboard_sign_in_failed").await;

    b.sign_in(&app.admin).await;
    let session_cookie = b.cookie("certctl_session").unwrap().to_owned();
    let r = b.get("/").await;
    let body = is_page(&r, 200);
    assert!(body.contains("data-testid=\"user\">admin<") && body.contains(">admin</span>"), "{body}");
    assert!(body.contains("Get started"), "the empty inventory shows the first-run guide");
    assert!(body.contains(env!("CARGO_PKG_VERSION")), "the version is in the footer");
    app.wait_for_audit(AuditFilterParsed::default(), |e| e.action == "dashboard_sign_in" && e.actor == "admin").await;
    // The pages' REST calls are audited as the signed-in key, marked as the dashboard's.
    app.wait_for_audit(AuditFilterParsed::default(), |e| {
        e.actor == "admin" && e.resource_id == "/api/v1/stats/summary" && e.details["via"] == "dashboard"
    })
    .await;

    let csrf = b.csrf().await;
    let r = b.post("/logout", &[("_csrf", &csrf)]).await;
    assert_eq!((r.status.as_u16(), location(&r)), (303, "/login"));
    let mut replay = Browser::new(&app);
    replay.cookies.push(("certctl_session".into(), session_cookie));
    let r = replay.get("/").await;
    assert_eq!(location(&r), "/login?expired=1", "a signed-out session cookie no longer works");
    app.finish().await;
}

#[tokio::test]
async fn sessions_expire_and_die_with_their_key() {
    let app = TestApp::new().await;
    let mut b = Browser::new(&app);
    b.sign_in(&app.operator).await;
    is_page(&b.get("/certificates").await, 200);
    app.clock.advance(time::Duration::hours(9));
    let r = b.get("/certificates").await;
    assert_eq!(location(&r), "/login?expired=1");
    let page = b.get("/login?expired=1").await;
    assert!(is_page(&page, 200).contains("Your session has expired"));

    let mut b = Browser::new(&app);
    b.sign_in(&app.viewer).await;
    let keys = app.get("/api/v1/apikeys?per_page=100", &app.admin).await;
    let viewer_id = keys.json["data"].as_array().unwrap().iter().find(|k| k["name"] == "viewer").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.delete(&format!("/api/v1/apikeys/{viewer_id}"), &app.admin).await.expect(204, None);
    assert_eq!(location(&b.get("/").await), "/login?expired=1", "deleting the key ends its sessions");
    app.finish().await;
}

#[tokio::test]
async fn every_page_renders_empty_and_populated() {
    let app = TestApp::new().await;
    let mut b = Browser::new(&app);
    b.sign_in(&app.admin).await;
    for path in ["/", "/certificates", "/certificates/new", "/notifications", "/notifications?status=dead"]
        .into_iter()
        .chain(SECTIONS.iter().copied())
    {
        is_page(&b.get(path).await, 200);
    }
    assert!(html(&b.get("/issuers").await).contains("No issuers yet"));
    assert_eq!(b.get("/no-such-page").await.status, 404, "paths the dashboard does not serve are the API's 404");
    assert!(html(&b.get("/certificates").await).contains("No certificates match"));
    assert!(html(&b.get("/notifications?status=dead").await).contains("The dead-letter queue is empty"));
    assert!(html(&b.get("/certificates/new").await).contains("No issuers yet"));

    let deps = fixtures::deps(&app, "web").await;
    let id = fixtures::cert(&app, &fixtures::cert_body(&deps, "shop")).await;
    let r = app.post_json(&format!("/api/v1/certificates/{id}/renew"), &app.operator, &json!({})).await;
    assert!(r.status.is_success(), "{}", html(&r));
    let home = is_page(&b.get("/").await, 200);
    assert!(!home.contains("Get started") && home.contains("<svg class=\"chart status\""), "{home}");
    let list = is_page(&b.get("/certificates").await, 200);
    assert!(list.contains(&format!("href=\"/certificates/{id}\"")) && list.contains("shop.example.com"));
    assert!(list.contains("id=\"bulk\""), "an admin gets the bulk actions");
    let filtered = is_page(&b.get("/certificates?status=Revoked").await, 200);
    assert!(!filtered.contains(&format!("href=\"/certificates/{id}\"")), "filters reach the API");
    let detail = is_page(&b.get(&format!("/certificates/{id}")).await, 200);
    assert!(
        detail.contains(">Renew now</button>") && detail.contains("shop.example.com") && detail.contains("Requested")
    );
    assert!(is_page(&b.get("/certificates/mc-missing").await, 404).contains("Not found"));
    for path in SECTIONS {
        let page = is_page(&b.get(path).await, 200);
        assert!(page.contains("<h1>"), "{path}");
    }
    assert!(html(&b.get("/issuers").await).contains(&deps.issuer));
    assert!(html(&b.get("/jobs").await).contains(&id), "the issuance job is listed");
    let observability = html(&b.get("/observability").await);
    assert!(observability.contains("certificate_total") && observability.contains("# TYPE certctl_certificate_total"));
    app.finish().await;
}

#[tokio::test]
async fn the_create_form_shows_api_errors_next_to_the_field_and_creates() {
    let app = TestApp::new().await;
    let deps = fixtures::deps(&app, "form").await;
    let mut b = Browser::new(&app);
    b.sign_in(&app.operator).await;
    let csrf = b.csrf().await;
    let mut fields = vec![
        ("_csrf", csrf.as_str()),
        ("name", "api"),
        ("common_name", "api.example.com"),
        ("sans", "api.example.com, www.example.com"),
        ("owner_id", "o-nobody"),
        ("team_id", deps.team.as_str()),
        ("issuer_id", deps.issuer.as_str()),
        ("renewal_policy_id", deps.policy.as_str()),
    ];
    let r = b.post("/certificates", &fields).await;
    assert!(r.status.is_client_error(), "{}", html(&r));
    let body = is_page(&r, r.status.as_u16());
    assert!(body.contains("data-field=\"owner_id\""), "the error sits at the owner field: {body}");
    assert!(body.contains("value=\"api.example.com\""), "what was typed is kept");
    assert!(!body.trim_start().starts_with('{'), "never raw JSON");

    fields[4] = ("owner_id", deps.owner.as_str());
    let r = b.post("/certificates", &fields).await;
    assert_eq!(r.status, 303, "{}", html(&r));
    let to = location(&r).to_owned();
    assert!(to.starts_with("/certificates/cert-") && to.ends_with("?notice=Created."), "{to}");
    let detail = is_page(&b.get(&to).await, 200);
    assert!(detail.contains("www.example.com"));
    app.finish().await;
}

#[tokio::test]
async fn forms_need_the_sessions_csrf_token_and_viewers_cannot_write() {
    let app = TestApp::new().await;
    let deps = fixtures::deps(&app, "csrf").await;
    let id = fixtures::cert(&app, &fixtures::cert_body(&deps, "gate")).await;
    let mut op = Browser::new(&app);
    op.sign_in(&app.operator).await;
    let renew = format!("/certificates/{id}/renew");
    assert!(is_page(&op.post(&renew, &[]).await, 403).contains("Form expired"), "missing token");
    assert!(is_page(&op.post(&renew, &[("_csrf", "forged")]).await, 403).contains("Form expired"), "forged token");
    // Another session's token is not this session's.
    let mut other = Browser::new(&app);
    other.sign_in(&app.admin).await;
    let other_csrf = other.csrf().await;
    is_page(&op.post(&renew, &[("_csrf", &other_csrf)]).await, 403);
    let csrf = op.csrf().await;
    let r = op.post(&renew, &[("_csrf", &csrf)]).await;
    assert_eq!((r.status.as_u16(), location(&r)), (303, format!("/certificates/{id}?notice=Renewal+queued.").as_str()));

    let mut viewer = Browser::new(&app);
    viewer.sign_in(&app.viewer).await;
    let list = is_page(&viewer.get("/certificates").await, 200);
    assert!(!list.contains("New certificate") && !list.contains("id=\"bulk\""), "a viewer sees no write controls");
    let detail = is_page(&viewer.get(&format!("/certificates/{id}")).await, 200);
    assert!(!detail.contains(">Renew now</button>") && !detail.contains(">Revoke</button>"));
    let csrf = viewer.csrf().await;
    let r = viewer.post(&format!("/certificates/{id}/revoke"), &[("_csrf", &csrf), ("reason", "superseded")]).await;
    let body = is_page(&r, 403);
    assert!(body.contains("Not allowed") && body.contains("needs an admin or operator key"), "{body}");
    let cert = app.get(&format!("/api/v1/certificates/{id}"), &app.admin).await;
    assert_ne!(cert.json["status"], "Revoked");
    app.finish().await;
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
async fn notification_tabs_show_only_their_rows_and_requeue_one_row() {
    let app = TestApp::new().await;
    let now = app.clock.now();
    app.store.enqueue_notifications(&[dead_letter(1), dead_letter(2)], now).await.unwrap();
    while worker::deliver(&app.state, ClaimKind::Pending).await > 0 {}
    let mut pending = dead_letter(3);
    pending.channel = "Webhook".into();
    app.store.enqueue_notifications(&[pending], now).await.unwrap();

    let mut b = Browser::new(&app);
    b.sign_in(&app.operator).await;
    let all = is_page(&b.get("/notifications").await, 200);
    assert_eq!(all.matches("<tr data-id=").count(), 3, "{all}");
    let dead = is_page(&b.get("/notifications?status=dead").await, 200);
    assert_eq!(dead.matches("<tr data-id=").count(), 2, "{dead}");
    assert_eq!(dead.matches("data-status=\"dead\"").count(), 2, "the dead tab lists only dead rows");
    let max = app.state.config.notification_max_attempts;
    assert!(dead.contains(&format!("Retry 0/{max}")), "{dead}");
    assert!(dead.contains("class=\"last-error\" title=\"") && dead.contains("is not configured"), "{dead}");
    assert!(dead.contains("aria-selected=\"true\" class=\"active\" data-tab=\"dead\""), "{dead}");

    let listed = app.get("/api/v1/notifications?status=dead", &app.admin).await;
    let ids: Vec<String> =
        listed.json["data"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_owned()).collect();
    let csrf = b.csrf().await;
    let r = b
        .post(
            &format!("/notifications/{}/requeue", ids[0]),
            &[("_csrf", &csrf), ("back", "/notifications?status=dead")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert!(location(&r).starts_with("/notifications?status=dead&notice="), "{}", location(&r));
    let after = is_page(&b.get("/notifications?status=dead").await, 200);
    assert_eq!(after.matches("<tr data-id=").count(), 1, "only the requeued row left the dead-letter tab");
    assert!(after.contains(&format!("data-id=\"{}\"", ids[1])));
    let requeued = app.get(&format!("/api/v1/notifications/{}", ids[0]), &app.admin).await;
    assert_eq!(requeued.json["status"], "pending");
    let other = app.get(&format!("/api/v1/notifications/{}", ids[1]), &app.admin).await;
    assert_eq!(other.json["status"], "dead");
    app.finish().await;
}

#[tokio::test]
async fn static_assets_are_served_and_unknown_ones_are_not() {
    let app = TestApp::new().await;
    let r = app.get("/static/app.css", "").await;
    assert_eq!(r.status, 200);
    assert!(r.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/css"));
    let r = app.get("/static/app.js", "").await;
    assert!(html(&r).contains("data-select-all"));
    assert_eq!(app.get("/static/../Cargo.toml", "").await.status, 404);
    assert_eq!(app.get("/static/nope.js", "").await.status, 404);
    app.finish().await;
}

/// The list pages of the other resources, as the sidebar links them.
const SECTIONS: &[&str] = &[
    "/jobs",
    "/issuers",
    "/targets",
    "/agents",
    "/agent-tokens",
    "/discovery",
    "/profiles",
    "/renewal-policies",
    "/channels",
    "/teams",
    "/owners",
    "/audit",
    "/api-keys",
    "/observability",
    "/acme",
    "/digest",
    "/agents-retired",
];

#[tokio::test]
async fn resource_pages_create_act_delete_and_reveal_secrets_once() {
    let app = TestApp::new().await;
    let mut admin = Browser::new(&app);
    admin.sign_in(&app.admin).await;
    let csrf = admin.csrf().await;

    // A team through the generic create form, then deleted from its row.
    let r = admin.post("/teams", &[("_csrf", &csrf), ("name", "Payments"), ("description", "cards")]).await;
    assert_eq!((r.status.as_u16(), location(&r)), (303, "/teams?notice=Created."));
    let teams = app.get("/api/v1/teams?per_page=10", &app.admin).await;
    let team = teams.json["data"].as_array().unwrap().iter().find(|t| t["name"] == "Payments").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(html(&admin.get("/teams").await).contains(&format!("data-id=\"{team}\"")));
    // A refused create keeps what was typed and names the field.
    let r = admin
        .post("/owners", &[("_csrf", &csrf), ("name", "bob"), ("email", "not-an-email"), ("team_id", &team)])
        .await;
    let body = is_page(&r, 400);
    assert!(body.contains("data-field=\"email\""), "{body}");
    assert!(body.contains("value=\"not-an-email\""));
    // JSON fields are checked before the API sees them.
    let r =
        admin.post("/issuers", &[("_csrf", &csrf), ("name", "x"), ("type", "GenericCA"), ("config", "{oops")]).await;
    assert!(is_page(&r, 400).contains("config: must be a JSON object"));
    let r = admin
        .post(
            "/issuers",
            &[("_csrf", &csrf), ("name", "Local"), ("type", "GenericCA"), ("config", "{\"validity_days\": 30}")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", html(&r));
    let r = admin.post(&format!("/teams/{team}/delete"), &[("_csrf", &csrf)]).await;
    assert_eq!(r.status, 303, "{}", html(&r));
    assert!(!html(&admin.get("/teams").await).contains(&format!("data-id=\"{team}\"")));
    assert!(is_page(&admin.post(&format!("/teams/{team}/delete"), &[]).await, 403).contains("Form expired"));

    // An API key is shown in the create answer only, never in a URL.
    let r = admin.post("/api-keys", &[("_csrf", &csrf), ("name", "ci-bot"), ("role", "operator")]).await;
    let body = is_page(&r, 200);
    assert!(body.contains("data-testid=\"revealed\"") && body.contains("<code>cck_"), "{body}");
    assert!(!html(&admin.get("/api-keys").await).contains("data-testid=\"revealed\""));

    // The audit trail exports as CSV and JSON. The sign-in is recorded by the API-call audit
    // writer in the background, so it may take a moment to appear.
    let mut text = String::new();
    for _ in 0..100 {
        let csv = admin.get("/audit/export/audit.csv").await;
        assert_eq!(csv.status, 200);
        text = html(&csv);
        if text.contains("dashboard_sign_in") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(text.starts_with("id,timestamp,actor,actor_type,action,") && text.contains("dashboard_sign_in"), "{text}");
    let json = admin.get("/audit/export/audit.json").await;
    assert!(serde_json::from_slice::<serde_json::Value>(&json.body).unwrap().as_array().is_some_and(|a| !a.is_empty()));

    // A viewer gets lists without create forms, and a refused write is a readable page.
    let mut viewer = Browser::new(&app);
    viewer.sign_in(&app.viewer).await;
    let page = is_page(&viewer.get("/teams").await, 200);
    assert!(!page.contains("<h2>Create</h2>") && !page.contains(">Delete</button>"));
    let csrf = viewer.csrf().await;
    let r = viewer.post("/teams", &[("_csrf", &csrf), ("name", "Sneaky")]).await;
    assert!(is_page(&r, 403).contains("needs an admin or operator key"));
    app.finish().await;
}

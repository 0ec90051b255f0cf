//! The dashboard's detail pages in process: issuers with their CA hierarchy, targets with their
//! deployment history, agents with their targets and jobs, jobs with their actions; the
//! actions taken from them, role gating, and the readable 404 page.

use serde_json::{Value, json};

use certctl_api::JobType;
use certctl_store::{Actor, NewJob};

use crate::fixtures::{Deps, agent, cert, cert_body, deps, target, with};
use crate::harness::{T0, TestApp};
use crate::web::{Browser, html, is_page, location};

/// A certificate whose profile needs approval, with its issuance requested; returns the job.
async fn gated_job(app: &TestApp, d: &Deps, tag: &str) -> String {
    let r = app
        .post_json(
            "/api/v1/profiles",
            &app.operator,
            &json!({"name": format!("gated {tag}"), "requires_approval": true}),
        )
        .await;
    r.expect(201, None);
    let id = cert(app, &with(cert_body(d, tag), json!({"certificate_profile_id": r.json["id"]}))).await;
    let r = app.post_json(&format!("/api/v1/certificates/{id}/renew"), &app.operator, &json!({})).await;
    assert!(r.status.is_success(), "{}", r.message());
    let jobs = app.get(&format!("/api/v1/jobs?certificate_id={id}"), &app.admin).await;
    assert_eq!(jobs.json["data"][0]["status"], "AwaitingApproval");
    jobs.json["data"][0]["id"].as_str().unwrap().to_owned()
}

async fn job_status(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/api/v1/jobs/{id}"), &app.admin).await.json
}

/// The issuer's CAs as the API lists them, oldest first.
async fn cas(app: &TestApp, issuer: &str) -> Vec<Value> {
    let r = app.get(&format!("/api/v1/issuers/{issuer}/intermediates"), &app.admin).await;
    r.expect(200, None);
    r.json["data"].as_array().unwrap().clone()
}

/// The root and the one intermediate of a two-CA hierarchy (created in the same instant, so
/// their listing order says nothing).
async fn root_and_child(app: &TestApp, issuer: &str) -> (Value, Value) {
    let tree = cas(app, issuer).await;
    assert_eq!(tree.len(), 2, "{tree:?}");
    let (roots, children): (Vec<Value>, Vec<Value>) = tree.into_iter().partition(|c| c["parent_ca_id"].is_null());
    (roots[0].clone(), children[0].clone())
}

/// Inventory with one of everything a detail page shows.
struct World {
    deps: Deps,
    agent: String,
    target: String,
    gated: String,
}

async fn world(app: &TestApp) -> World {
    let deps = deps(app, "detail").await;
    let agent = agent(&app.store, "web1").await;
    let target = target(app, "edge", &agent).await;
    let c = cert(app, &cert_body(&deps, "shop")).await;
    let deploy = NewJob {
        id: Some("job-deploy".into()),
        target_id: Some(target.clone()),
        agent_id: Some(agent.clone()),
        ..NewJob::new(JobType::Deployment, &c)
    };
    app.store.create_job(&deploy, &Actor::system(), T0).await.unwrap();
    let gated = gated_job(app, &deps, "gated").await;
    World { deps, agent, target, gated }
}

#[tokio::test]
async fn detail_pages_render_for_a_populated_store_and_lists_link_to_them() {
    let app = TestApp::new().await;
    let w = world(&app).await;
    let r = app
        .post_json(&format!("/api/v1/issuers/{}/intermediates", w.deps.issuer), &app.admin, &json!({"name": "Issuing"}))
        .await;
    r.expect(201, None);
    let mut b = Browser::new(&app);
    b.sign_in(&app.admin).await;

    for (list, id) in [("issuers", &w.deps.issuer), ("targets", &w.target), ("agents", &w.agent), ("jobs", &w.gated)] {
        let page = is_page(&b.get(&format!("/{list}")).await, 200);
        assert!(page.contains(&format!("<a href=\"/{list}/{id}\">{id}</a>")), "/{list} links {id}: {page}");
    }

    let issuer = is_page(&b.get(&format!("/issuers/{}", w.deps.issuer)).await, 200);
    assert!(issuer.contains("issuer detail") && issuer.contains("validity_days"), "{issuer}");
    assert!(issuer.contains(">Test</button>") && issuer.contains("Create an intermediate CA"));
    let (root, child) = root_and_child(&app, &w.deps.issuer).await;
    let (root, child) = (root["id"].as_str().unwrap(), child["id"].as_str().unwrap());
    let at_root = issuer.find(&format!("data-ca=\"{root}\"")).expect("the root is in the tree");
    let at_child = issuer.find(&format!("data-ca=\"{child}\"")).expect("the intermediate is in the tree");
    assert!(at_root < at_child && issuer[at_root..at_child].contains("<ul>"), "the child is nested under the root");
    assert_eq!(issuer.matches("<ul").count(), issuer.matches("</ul>").count(), "every list is closed");
    assert!(issuer.contains("data-state=\"active\"") && issuer.contains(">Retire</button>"));

    let target = is_page(&b.get(&format!("/targets/{}", w.target)).await, 200);
    assert!(target.contains(&format!("href=\"/agents/{}\"", w.agent)), "{target}");
    assert!(target.contains("data-id=\"job-deploy\"") && target.contains("/etc/ssl/a.pem"), "{target}");
    assert!(!target.contains(&format!("data-id=\"{}\"", w.gated)), "only this target's jobs");

    let agent = is_page(&b.get(&format!("/agents/{}", w.agent)).await, 200);
    for want in ["web1.example.com", "linux", "amd64", "10.0.0.1", "1.0.0", "data-testid=\"state\">online<"] {
        assert!(agent.contains(want), "{want}: {agent}");
    }
    assert!(agent.contains(&format!("href=\"/targets/{}\"", w.target)) && agent.contains("data-id=\"job-deploy\""));
    assert!(agent.contains(">Retire agent</button>"));

    let job = is_page(&b.get(&format!("/jobs/{}", w.gated)).await, 200);
    for want in [
        "AwaitingApproval",
        "Last error",
        "Verification",
        ">Approve</button>",
        ">Reject</button>",
        ">Cancel job</button>",
    ] {
        assert!(job.contains(want), "{want}: {job}");
    }
    let done = is_page(&b.get("/jobs/job-deploy").await, 200);
    assert!(!done.contains(">Approve</button>"), "only a job awaiting approval offers approval");
    app.finish().await;
}

#[tokio::test]
async fn unknown_ids_get_the_readable_404_page() {
    let app = TestApp::new().await;
    let mut b = Browser::new(&app);
    b.sign_in(&app.viewer).await;
    for path in ["/issuers/iss-missing", "/targets/tgt-missing", "/agents/agent-missing", "/jobs/job-missing"] {
        let page = is_page(&b.get(path).await, 404);
        assert!(page.contains("Not found") && !page.trim_start().starts_with('{'), "{path}: {page}");
    }
    app.finish().await;
}

#[tokio::test]
async fn viewers_see_no_write_buttons_and_their_posts_are_refused() {
    let app = TestApp::new().await;
    let w = world(&app).await;
    app.post_json(&format!("/api/v1/issuers/{}/intermediates", w.deps.issuer), &app.admin, &json!({"name": "Sub"}))
        .await
        .expect(201, None);
    let ca = root_and_child(&app, &w.deps.issuer).await.1["id"].as_str().unwrap().to_owned();
    let mut viewer = Browser::new(&app);
    viewer.sign_in(&app.viewer).await;
    let issuer = is_page(&viewer.get(&format!("/issuers/{}", w.deps.issuer)).await, 200);
    assert!(!issuer.contains(">Test</button>") && !issuer.contains(">Retire</button>"), "{issuer}");
    assert!(!issuer.contains("Create an intermediate CA") && issuer.contains("shown to admin keys"));
    let job = is_page(&viewer.get(&format!("/jobs/{}", w.gated)).await, 200);
    assert!(!job.contains(">Approve</button>") && !job.contains(">Reject</button>") && !job.contains("Cancel job"));
    let agent = is_page(&viewer.get(&format!("/agents/{}", w.agent)).await, 200);
    assert!(!agent.contains("Retire agent"));

    let csrf = viewer.csrf().await;
    for (path, fields) in [
        (format!("/jobs/{}/approve", w.gated), vec![]),
        (format!("/jobs/{}/reject", w.gated), vec![("reason", "nope")]),
        (format!("/issuers/{}/test", w.deps.issuer), vec![]),
        (format!("/issuers/{}/intermediates", w.deps.issuer), vec![("name", "Sneaky")]),
        (format!("/issuers/{}/cas/{ca}/retire", w.deps.issuer), vec![]),
        (format!("/agents/{}/retire", w.agent), vec![("force", "on"), ("reason", "x")]),
    ] {
        let mut form = vec![("_csrf", csrf.as_str())];
        form.extend(fields);
        let page = is_page(&viewer.post(&path, &form).await, 403);
        assert!(page.contains("Not allowed"), "{path}: {page}");
    }
    assert_eq!(job_status(&app, &w.gated).await["status"], "AwaitingApproval");
    assert_eq!(cas(&app, &w.deps.issuer).await.len(), 2);

    // An operator may test and approve, but CAs and agents are an admin's.
    let mut op = Browser::new(&app);
    op.sign_in(&app.operator).await;
    let issuer = is_page(&op.get(&format!("/issuers/{}", w.deps.issuer)).await, 200);
    assert!(issuer.contains(">Test</button>") && !issuer.contains(">Retire</button>"));
    assert!(!issuer.contains("Create an intermediate CA"));
    assert!(is_page(&op.get(&format!("/jobs/{}", w.gated)).await, 200).contains(">Approve</button>"));
    let csrf = op.csrf().await;
    let r = op.post(&format!("/issuers/{}/cas/{ca}/retire", w.deps.issuer), &[("_csrf", &csrf)]).await;
    assert!(is_page(&r, 403).contains("admin"));
    // Forms on these pages need the session's CSRF token like every other.
    let r = op.post(&format!("/jobs/{}/approve", w.gated), &[("_csrf", "forged")]).await;
    assert!(is_page(&r, 403).contains("Form expired"));
    assert_eq!(job_status(&app, &w.gated).await["status"], "AwaitingApproval");
    app.finish().await;
}

#[tokio::test]
async fn jobs_are_approved_and_rejected_through_the_dashboard() {
    let app = TestApp::new().await;
    let d = deps(&app, "approvals").await;
    let first = gated_job(&app, &d, "first").await;
    let second = gated_job(&app, &d, "second").await;
    let mut op = Browser::new(&app);
    op.sign_in(&app.operator).await;
    let csrf = op.csrf().await;

    let r = op.post(&format!("/jobs/{first}/approve"), &[("_csrf", &csrf)]).await;
    assert_eq!((r.status.as_u16(), location(&r)), (303, format!("/jobs/{first}?notice=Job%20Pending.").as_str()));
    assert_eq!(job_status(&app, &first).await["status"], "Pending");
    let page = is_page(&op.get(location(&r)).await, 200);
    assert!(page.contains("Job Pending.") && !page.contains(">Approve</button>"), "{page}");
    // The page's Cancel goes through the jobs list's own action.
    assert!(page.contains(&format!("action=\"/jobs/{first}/cancel\"")));
    let r = op.post(&format!("/jobs/{first}/cancel"), &[("_csrf", &csrf)]).await;
    assert_eq!(r.status, 303, "{}", html(&r));
    assert_eq!(job_status(&app, &first).await["status"], "Cancelled");

    let r = op.post(&format!("/jobs/{second}/reject"), &[("_csrf", &csrf), ("reason", "change freeze")]).await;
    assert_eq!(r.status, 303, "{}", html(&r));
    let job = job_status(&app, &second).await;
    assert_eq!((&job["status"], &job["last_error"]), (&json!("Cancelled"), &json!("rejected: change freeze")));
    let page = is_page(&op.get(&format!("/jobs/{second}")).await, 200);
    assert!(page.contains("rejected: change freeze") && !page.contains("Cancel job"), "{page}");

    // A refusal is shown on the page, not as JSON.
    let r = op.post(&format!("/jobs/{second}/approve"), &[("_csrf", &csrf)]).await;
    let page = is_page(&r, 409);
    assert!(
        page.contains("data-testid=\"job-error\"") && page.contains("is Cancelled and cannot be approved"),
        "{page}"
    );
    app.finish().await;
}

#[tokio::test]
async fn intermediates_are_created_and_retired_through_the_dashboard() {
    let app = TestApp::new().await;
    let d = deps(&app, "hierarchy").await;
    let issuer = format!("/issuers/{}", d.issuer);
    let mut admin = Browser::new(&app);
    admin.sign_in(&app.admin).await;
    let csrf = admin.csrf().await;
    let create = format!("{issuer}/intermediates");

    let r = admin.post(&create, &[("_csrf", &csrf), ("name", "Issuing"), ("ttl_days", "soon")]).await;
    let page = is_page(&r, 400);
    assert!(page.contains("data-testid=\"ca-error\">ttl_days: must be a whole number"), "{page}");
    assert!(page.contains("value=\"Issuing\""), "what was typed is kept");
    let r = admin.post(&create, &[("_csrf", &csrf), ("name", " ")]).await;
    assert!(is_page(&r, 400).contains("name: must be 1 to 255 characters"), "the API's own refusal is shown");

    let form = [
        ("_csrf", csrf.as_str()),
        ("name", "Issuing"),
        ("algorithm", "ECDSA-P384"),
        ("ttl_days", "365"),
        ("path_len_constraint", "0"),
        ("permitted_dns", "example.com, example.org"),
    ];
    let r = admin.post(&create, &form).await;
    assert_eq!(r.status, 303, "{}", html(&r));
    assert!(location(&r).starts_with(&format!("{issuer}?notice=Created%20CA%20ca-")), "{}", location(&r));
    // The root is created for the intermediate.
    let (_, child) = root_and_child(&app, &d.issuer).await;
    assert_eq!((&child["key_algorithm"], &child["path_len_constraint"]), (&json!("ECDSA-P384"), &json!(0)));
    assert_eq!(child["name_constraints"]["permitted_dns"], json!(["example.com", "example.org"]));
    let page = is_page(&admin.get(&issuer).await, 200);
    assert!(page.contains("path length 0") && page.contains("permitted DNS: example.com, example.org"), "{page}");

    let child_id = child["id"].as_str().unwrap();
    let retire = format!("{issuer}/cas/{child_id}/retire");
    let r = admin.post(&retire, &[("_csrf", &csrf)]).await;
    assert_eq!(r.status, 303, "{}", html(&r));
    assert_eq!(root_and_child(&app, &d.issuer).await.1["state"], "retiring");
    let page = is_page(&admin.get(&issuer).await, 200);
    assert!(page.contains("data-state=\"retiring\"") && page.contains(">Confirm retirement</button>"));
    let r = admin.post(&retire, &[("_csrf", &csrf), ("confirm", "on")]).await;
    assert_eq!(r.status, 303, "{}", html(&r));
    assert_eq!(root_and_child(&app, &d.issuer).await.1["state"], "retired");
    let page = is_page(&admin.get(&issuer).await, 200);
    assert!(page.contains("data-state=\"retired\""));
    app.finish().await;
}

#[tokio::test]
async fn the_issuer_test_result_is_shown_on_its_page() {
    let app = TestApp::new().await;
    let d = deps(&app, "tested").await;
    let vault = app
        .post_json(
            "/api/v1/issuers",
            &app.operator,
            &json!({"name": "vault", "type": "VaultPKI", "config": {"url": "https://vault.example.com"}}),
        )
        .await;
    let vault = vault.json["id"].as_str().unwrap().to_owned();
    let mut op = Browser::new(&app);
    op.sign_in(&app.operator).await;
    let csrf = op.csrf().await;
    let page = is_page(&op.post(&format!("/issuers/{}/test", d.issuer), &[("_csrf", &csrf)]).await, 200);
    assert!(page.contains("data-testid=\"test-result\">Test passed: signing CA"), "{page}");
    assert!(page.contains("success"), "the recorded status is shown");
    let page = is_page(&op.post(&format!("/issuers/{vault}/test"), &[("_csrf", &csrf)]).await, 422);
    assert!(page.contains("Test failed:") && page.contains("certctl cannot issue through type VaultPKI yet"), "{page}");
    assert!(!page.contains("CA hierarchy"), "only a local CA has a hierarchy");
    app.finish().await;
}

#[tokio::test]
async fn an_agent_is_retired_with_a_reason_through_the_dashboard() {
    let app = TestApp::new().await;
    let agent_id = agent(&app.store, "old").await;
    target(&app, "still-live", &agent_id).await;
    let path = format!("/agents/{agent_id}/retire");
    let mut admin = Browser::new(&app);
    admin.sign_in(&app.admin).await;
    let csrf = admin.csrf().await;

    let page = is_page(&admin.post(&path, &[("_csrf", &csrf)]).await, 409);
    assert!(page.contains("data-testid=\"retire-error\"") && page.contains("1 live target(s)"), "{page}");
    let page = is_page(&admin.post(&path, &[("_csrf", &csrf), ("force", "on")]).await, 400);
    assert!(page.contains("reason: required with force=true"), "{page}");
    assert!(page.contains("name=\"force\" id=\"force\" checked"), "the checkbox keeps its state");

    let r = admin.post(&path, &[("_csrf", &csrf), ("force", "on"), ("reason", "host decommissioned")]).await;
    assert_eq!((r.status.as_u16(), location(&r)), (303, format!("/agents/{agent_id}?notice=Retired.").as_str()));
    let agent = app.get(&format!("/api/v1/agents/{agent_id}"), &app.admin).await;
    assert_eq!(agent.json["retired_reason"], "host decommissioned");
    let page = is_page(&admin.get(location(&r)).await, 200);
    assert!(page.contains("data-testid=\"state\">retired<") && page.contains("host decommissioned"), "{page}");
    assert!(!page.contains("Retire agent"), "a retired agent offers no retirement");
    app.finish().await;
}

//! Edit forms of the inventory's resources in process: filled with the current values, saved
//! with PUT, refusals shown at their field, configurations kept, nothing offered to a viewer; and a
//! certificate archived from its page.

use serde_json::json;

use crate::harness::TestApp;
use crate::web::{Browser, is_page, location};

#[tokio::test]
async fn a_team_is_renamed_through_its_edit_form() {
    let app = TestApp::new().await;
    let team = app.team("Platform").await;
    let mut b = Browser::new(&app);
    b.sign_in(&app.operator).await;

    let list = is_page(&b.get("/teams").await, 200);
    assert!(list.contains(&format!("href=\"/teams/{team}/edit\"")), "the list links the edit form: {list}");
    let form = is_page(&b.get(&format!("/teams/{team}/edit")).await, 200);
    assert!(form.contains("data-testid=\"edit-form\""), "{form}");
    assert!(form.contains("value=\"Platform\""), "the form shows the current name: {form}");

    let csrf = b.csrf().await;
    let r = b.post(&format!("/teams/{team}/edit"), &[("_csrf", &csrf), ("name", "Platform SRE")]).await;
    assert_eq!(r.status, 303, "{}", crate::web::html(&r));
    assert!(location(&r).starts_with("/teams?notice=Saved"), "{}", location(&r));
    let after = app.get(&format!("/api/v1/teams/{team}"), &app.admin).await;
    assert_eq!(after.json["name"], "Platform SRE");
}

#[tokio::test]
async fn a_refused_edit_shows_the_error_at_its_field_and_changes_nothing() {
    let app = TestApp::new().await;
    let team = app.team("Platform").await;
    let owner = app.owner("alice", &team).await;
    let mut b = Browser::new(&app);
    b.sign_in(&app.operator).await;
    let form = is_page(&b.get(&format!("/owners/{owner}/edit")).await, 200);
    assert!(form.contains("value=\"alice@example.com\""), "{form}");
    assert!(form.contains(&format!("<option value=\"{team}\" selected>")), "the team is selected: {form}");

    let csrf = b.csrf().await;
    let r = b
        .post(
            &format!("/owners/{owner}/edit"),
            &[("_csrf", &csrf), ("name", "alice"), ("email", "not-an-email"), ("team_id", &team)],
        )
        .await;
    let page = is_page(&r, 400);
    assert!(page.contains("data-field=\"email\""), "the error sits at the email field: {page}");
    assert!(page.contains("value=\"not-an-email\""), "what was typed is kept: {page}");
    let after = app.get(&format!("/api/v1/owners/{owner}"), &app.admin).await;
    assert_eq!(after.json["email"], "alice@example.com");
}

#[tokio::test]
async fn an_issuer_edit_keeps_its_configuration() {
    let app = TestApp::new().await;
    let created = app
        .post_json(
            "/api/v1/issuers",
            &app.admin,
            &json!({"name": "Local CA", "type": "GenericCA", "config": {"validity_days": 45}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.json);
    let id = created.json["id"].as_str().unwrap().to_owned();
    let mut b = Browser::new(&app);
    b.sign_in(&app.operator).await;
    let form = is_page(&b.get(&format!("/issuers/{id}/edit")).await, 200);
    assert!(form.contains("validity_days"), "the configuration is shown as JSON: {form}");

    // The form posts back what it showed, with a new name.
    let config = app.get(&format!("/api/v1/issuers/{id}"), &app.admin).await.json["config"].to_string();
    let csrf = b.csrf().await;
    let r = b
        .post(
            &format!("/issuers/{id}/edit"),
            &[("_csrf", &csrf), ("name", "Local CA (prod)"), ("type", "GenericCA"), ("config", &config)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", crate::web::html(&r));
    let after = app.get(&format!("/api/v1/issuers/{id}"), &app.admin).await;
    assert_eq!(after.json["name"], "Local CA (prod)");
    assert_eq!(after.json["config"]["validity_days"], 45);
}

#[tokio::test]
async fn a_viewer_is_offered_no_edit_and_is_refused() {
    let app = TestApp::new().await;
    let team = app.team("Platform").await;
    let mut b = Browser::new(&app);
    b.sign_in(&app.viewer).await;
    let list = is_page(&b.get("/teams").await, 200);
    assert!(!list.contains("/edit\""), "no edit link for a viewer: {list}");
    let form = is_page(&b.get(&format!("/teams/{team}/edit")).await, 200);
    assert!(!form.contains("data-testid=\"edit-form\""), "no form for a viewer: {form}");

    let csrf = b.csrf().await;
    let r = b.post(&format!("/teams/{team}/edit"), &[("_csrf", &csrf), ("name", "Renamed")]).await;
    is_page(&r, 403);
    let after = app.get(&format!("/api/v1/teams/{team}"), &app.admin).await;
    assert_eq!(after.json["name"], "Platform");
}

#[tokio::test]
async fn resources_the_api_does_not_update_have_no_edit_form() {
    let app = TestApp::new().await;
    let mut b = Browser::new(&app);
    b.sign_in(&app.admin).await;
    let r = b.get("/jobs/job-x/edit").await;
    assert_ne!(r.status, 200, "jobs are not edited here");
}

#[tokio::test]
async fn a_certificate_is_archived_from_its_page() {
    let app = TestApp::new().await;
    let d = crate::fixtures::deps(&app, "archive").await;
    let cert = crate::fixtures::cert(&app, &crate::fixtures::cert_body(&d, "to-archive")).await;
    let mut b = Browser::new(&app);
    b.sign_in(&app.viewer).await;
    let page = is_page(&b.get(&format!("/certificates/{cert}")).await, 200);
    assert!(!page.contains("data-testid=\"archive\""), "a viewer is offered no archive: {page}");

    let mut b = Browser::new(&app);
    b.sign_in(&app.operator).await;
    let page = is_page(&b.get(&format!("/certificates/{cert}")).await, 200);
    assert!(page.contains("data-testid=\"archive\""), "{page}");
    let csrf = b.csrf().await;
    let r = b.post(&format!("/certificates/{cert}/archive"), &[("_csrf", &csrf)]).await;
    assert_eq!(r.status, 303, "{}", crate::web::html(&r));
    let after = app.get(&format!("/api/v1/certificates/{cert}"), &app.admin).await;
    assert_eq!(after.json["status"], "Archived");
    let page = is_page(&b.get(&format!("/certificates/{cert}")).await, 200);
    assert!(!page.contains("data-testid=\"archive\""), "an archived certificate is not archived again: {page}");
}

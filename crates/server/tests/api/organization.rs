//! `/api/v1/teams` and `/api/v1/owners`.

use serde_json::{Value, json};

use crate::harness::{T0, TestApp};

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap()
}

#[tokio::test]
async fn team_lifecycle() {
    let app = TestApp::new().await;
    let r = app.post_json("/api/v1/teams", &app.operator, &json!({"name": "Platform", "description": "edge"})).await;
    r.expect(201, None);
    let team = r.json.clone();
    let id = team["id"].as_str().unwrap();
    assert!(id.starts_with("team-"), "{id}");
    assert_eq!(team["name"], "Platform");
    assert_eq!(team["description"], "edge");
    assert_eq!(team["created_at"], rfc3339(T0), "times come from the injected clock");

    let r = app.get(&format!("/api/v1/teams/{id}"), &app.viewer).await;
    r.expect(200, None);
    assert_eq!(r.json, team);

    app.clock.advance(time::Duration::hours(1));
    let r = app.put_json(&format!("/api/v1/teams/{id}"), &app.operator, &json!({"name": "Edge"})).await;
    r.expect(200, None);
    assert_eq!((&r.json["name"], &r.json["description"]), (&json!("Edge"), &json!("edge")));
    assert_eq!(r.json["created_at"], rfc3339(T0));
    assert_eq!(r.json["updated_at"], rfc3339(T0 + time::Duration::hours(1)));

    let chosen = app.post_json("/api/v1/teams", &app.admin, &json!({"id": "team-chosen", "name": "Chosen"})).await;
    chosen.expect(201, None);
    assert_eq!(chosen.json["id"], "team-chosen");

    let r = app.get("/api/v1/teams", &app.viewer).await;
    r.expect(200, None);
    assert_eq!(
        (r.json["total"].as_i64(), r.json["page"].as_i64(), r.json["per_page"].as_i64()),
        (Some(2), Some(1), Some(50))
    );
    let names: Vec<&str> = r.json["data"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Edge", "Chosen"]);

    let r = app.delete(&format!("/api/v1/teams/{id}"), &app.operator).await;
    r.expect(204, None);
    assert!(r.body.is_empty());
    let r = app.get(&format!("/api/v1/teams/{id}"), &app.viewer).await;
    r.expect(404, Some("not_found"));
    assert!(r.message().contains(id), "{}", r.message());
}

#[tokio::test]
async fn team_input_errors_name_the_field() {
    let app = TestApp::new().await;
    let cases = [
        (json!({"name": 5}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": "a", "id": "has space"}), "id"),
        (json!({"name": "a", "description": ["x"]}), "description"),
    ];
    for (body, field) in cases {
        app.post_json("/api/v1/teams", &app.operator, &body).await.expect_bad_field(field);
    }
    let r = app.post_json("/api/v1/teams", &app.operator, &json!({"name": "a", "colour": "red"})).await;
    r.expect(400, Some("bad_request"));
    assert!(r.message().contains("colour"), "unknown field is named: {}", r.message());
    let r = app.post_json("/api/v1/teams", &app.operator, &json!({"description": "no name"})).await;
    r.expect(400, Some("bad_request"));
    assert!(r.message().contains("`name`"), "missing field is named: {}", r.message());

    let id = app.team("One").await;
    app.put_json(&format!("/api/v1/teams/{id}"), &app.operator, &json!({"name": 1})).await.expect_bad_field("name");
    let r = app.put_json(&format!("/api/v1/teams/{id}"), &app.operator, &json!({"nme": "x"})).await;
    r.expect(400, Some("bad_request"));
    assert!(r.message().contains("nme"), "{}", r.message());
    let r = app.get("/api/v1/teams", &app.viewer).await;
    assert_eq!(r.json["total"], 1, "no refused request created anything");
}

#[tokio::test]
async fn team_conflicts_and_unknown_ids() {
    let app = TestApp::new().await;
    let id = app.team("One").await;
    let other = app.team("Two").await;
    let r = app.post_json("/api/v1/teams", &app.operator, &json!({"name": "One"})).await;
    r.expect(409, Some("conflict"));
    assert!(r.message().contains("One"), "{}", r.message());
    app.post_json("/api/v1/teams", &app.operator, &json!({"id": id, "name": "Three"}))
        .await
        .expect(409, Some("conflict"));
    app.put_json(&format!("/api/v1/teams/{other}"), &app.operator, &json!({"name": "One"}))
        .await
        .expect(409, Some("conflict"));

    app.get("/api/v1/teams/missing", &app.viewer).await.expect(404, Some("not_found"));
    app.put_json("/api/v1/teams/missing", &app.operator, &json!({"name": "x"})).await.expect(404, Some("not_found"));
    app.delete("/api/v1/teams/missing", &app.operator).await.expect(404, Some("not_found"));

    app.owner("ann", &id).await;
    let r = app.delete(&format!("/api/v1/teams/{id}"), &app.operator).await;
    r.expect(409, Some("conflict"));
    assert!(r.message().contains("1 owner"), "the message names what refers to it: {}", r.message());
    app.get(&format!("/api/v1/teams/{id}"), &app.viewer).await.expect(200, None);
}

#[tokio::test]
async fn viewers_cannot_write() {
    let app = TestApp::new().await;
    let team = app.team("One").await;
    let owner = app.owner("ann", &team).await;
    let attempts = [
        app.post_json("/api/v1/teams", &app.viewer, &json!({"name": "New"})).await,
        app.put_json(&format!("/api/v1/teams/{team}"), &app.viewer, &json!({"name": "Renamed"})).await,
        app.delete(&format!("/api/v1/teams/{team}"), &app.viewer).await,
        app.post_json("/api/v1/owners", &app.viewer, &json!({"name": "b", "email": "b@example.com", "team_id": team}))
            .await,
        app.put_json(&format!("/api/v1/owners/{owner}"), &app.viewer, &json!({"name": "b"})).await,
        app.delete(&format!("/api/v1/owners/{owner}"), &app.viewer).await,
    ];
    for r in &attempts {
        r.expect(403, Some("forbidden"));
        assert!(r.message().contains("viewer"), "{}", r.message());
    }
    let teams = app.get("/api/v1/teams", &app.viewer).await;
    assert_eq!(teams.json["total"], 1);
    assert_eq!(teams.json["data"][0]["name"], "One");
    assert_eq!(app.get("/api/v1/owners", &app.viewer).await.json["total"], 1);
}

#[tokio::test]
async fn owner_lifecycle() {
    let app = TestApp::new().await;
    let t1 = app.team("One").await;
    let t2 = app.team("Two").await;
    let body = json!({"name": "Ann", "email": "ann@example.com", "team_id": t1});
    let r = app.post_json("/api/v1/owners", &app.operator, &body).await;
    r.expect(201, None);
    let ann = r.json["id"].as_str().unwrap().to_owned();
    assert_eq!((&r.json["email"], &r.json["team_id"]), (&json!("ann@example.com"), &json!(t1)));
    let bob = app.owner("bob", &t2).await;

    let r = app.get(&format!("/api/v1/owners?team_id={t1}"), &app.viewer).await;
    r.expect(200, None);
    assert_eq!(r.json["total"], 1);
    assert_eq!(r.json["data"][0]["id"], ann);
    assert_eq!(app.get("/api/v1/owners", &app.viewer).await.json["total"], 2);

    let r = app
        .put_json(&format!("/api/v1/owners/{ann}"), &app.operator, &json!({"team_id": t2, "email": "ann@corp.example"}))
        .await;
    r.expect(200, None);
    assert_eq!(
        (&r.json["name"], &r.json["team_id"], &r.json["email"]),
        (&json!("Ann"), &json!(t2), &json!("ann@corp.example"))
    );
    assert_eq!(app.get(&format!("/api/v1/owners/{ann}"), &app.viewer).await.json, r.json);

    app.delete(&format!("/api/v1/owners/{bob}"), &app.operator).await.expect(204, None);
    app.get(&format!("/api/v1/owners/{bob}"), &app.viewer).await.expect(404, Some("not_found"));
    app.delete(&format!("/api/v1/owners/{bob}"), &app.operator).await.expect(404, Some("not_found"));
    app.put_json("/api/v1/owners/missing", &app.operator, &json!({"name": "x"})).await.expect(404, Some("not_found"));
}

#[tokio::test]
async fn owner_input_errors_name_the_field() {
    let app = TestApp::new().await;
    let team = app.team("One").await;
    let owner = |email: Value, team_id: Value| json!({"name": "Ann", "email": email, "team_id": team_id});
    for bad in ["not-an-email", "ann@", "@example.com", "ann@bad..domain", "ann@nodot"] {
        app.post_json("/api/v1/owners", &app.operator, &owner(json!(bad), json!(team))).await.expect_bad_field("email");
    }
    app.post_json("/api/v1/owners", &app.operator, &owner(json!(7), json!(team))).await.expect_bad_field("email");
    let r =
        app.post_json("/api/v1/owners", &app.operator, &owner(json!("ann@example.com"), json!("missing-team"))).await;
    r.expect_bad_field("team_id");
    assert!(r.message().contains("missing-team"), "{}", r.message());
    let r = app.post_json("/api/v1/owners", &app.operator, &json!({"name": "Ann", "team_id": team})).await;
    r.expect(400, Some("bad_request"));
    assert!(r.message().contains("`email`"), "{}", r.message());

    let id = app.owner("ann", &team).await;
    app.put_json(&format!("/api/v1/owners/{id}"), &app.operator, &json!({"email": "nope"}))
        .await
        .expect_bad_field("email");
    app.put_json(&format!("/api/v1/owners/{id}"), &app.operator, &json!({"team_id": "missing"}))
        .await
        .expect_bad_field("team_id");
    assert_eq!(app.get("/api/v1/owners", &app.viewer).await.json["total"], 1);
}

#[tokio::test]
async fn list_paging_parameters() {
    let app = TestApp::new().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(app.team(&format!("team {i}")).await);
    }
    let r = app.get("/api/v1/teams?page=2&per_page=2", &app.viewer).await;
    r.expect(200, None);
    assert_eq!(
        (r.json["total"].as_i64(), r.json["page"].as_i64(), r.json["per_page"].as_i64()),
        (Some(5), Some(2), Some(2))
    );
    assert_eq!(r.json["data"].as_array().unwrap().len(), 2);

    // Keyset mode: follow next_cursor until it is absent.
    let mut walked = Vec::new();
    let mut url = "/api/v1/teams?page_size=2".to_owned();
    loop {
        let r = app.get(&url, &app.viewer).await;
        r.expect(200, None);
        assert_eq!(r.json["page_size"], 2);
        assert!(r.json.get("total").is_none(), "keyset pages have no total");
        walked.extend(r.json["data"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_owned()));
        match r.json.get("next_cursor").and_then(Value::as_str) {
            Some(c) => url = format!("/api/v1/teams?page_size=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(walked, ids);

    for (query, field) in [
        ("per_page=501", "per_page"),
        ("per_page=0", "per_page"),
        ("page_size=501", "page_size"),
        ("page=0", "page"),
        ("cursor=not-a-cursor", "cursor"),
        ("page=1&page_size=2", "page"),
    ] {
        for path in ["/api/v1/teams", "/api/v1/owners", "/api/v1/audit"] {
            app.get(&format!("{path}?{query}"), &app.viewer).await.expect_bad_field(field);
        }
    }
    let r = app.get("/api/v1/teams?per_page=many", &app.viewer).await;
    r.expect(400, Some("bad_request"));
    assert!(r.message().contains("per_page"), "{}", r.message());
    app.get("/api/v1/teams?per_page=500", &app.viewer).await.expect(200, None);
}

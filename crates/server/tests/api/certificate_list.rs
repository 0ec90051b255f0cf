//! `GET /api/v1/certificates`: every filter, every sort key in both directions, sparse fields,
//! and page and keyset paging checked against a model built from the certificates themselves.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use certctl_api::{CertificateStatus, CreateCertificate};
use certctl_server::clock::Clock;
use certctl_store::{Actor, NewVersion};

use crate::fixtures::{Deps, agent, cert, cert_body, deps, ids, profile, target, with};
use crate::harness::{T0, TestApp};

/// The inventory the list is queried over, and what is known about it.
struct Inventory {
    app: TestApp,
    /// Every certificate as `GET /certificates/{id}` returns it.
    certs: Vec<Value>,
    /// Agent of each target.
    target_agent: BTreeMap<String, String>,
    a: Deps,
    b: Deps,
    profile: String,
}

/// Which certificates a filter selects, as the test's model.
type Pred<'a> = Box<dyn Fn(&Value) -> bool + 'a>;

/// A sort value as the server orders it: never-issued certificates sort last by expiry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Time(i128),
    Text(String),
}

fn time(v: &Value) -> Option<OffsetDateTime> {
    v.as_str().map(|s| OffsetDateTime::parse(s, &Rfc3339).expect("an RFC 3339 time"))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

/// The value of sort key `name` (any accepted spelling) for a certificate.
fn key(c: &Value, name: &str) -> Key {
    let nanos = |field: &str| Key::Time(time(&c[field]).map_or(i128::MAX, OffsetDateTime::unix_timestamp_nanos));
    let text = |field: &str| Key::Text(c[field].as_str().unwrap().to_owned());
    match name {
        "createdAt" | "created_at" => nanos("created_at"),
        "updatedAt" | "updated_at" => nanos("updated_at"),
        "notAfter" | "expiresAt" | "expires_at" | "not_after" => nanos("expires_at"),
        "name" => text("name"),
        "commonName" | "common_name" => text("common_name"),
        "status" => text("status"),
        "environment" => text("environment"),
        other => panic!("unknown sort key {other}"),
    }
}

const NAMES: [&str; 10] = ["kilo", "alpha", "juliet", "bravo", "india", "charlie", "hotel", "delta", "golf", "echo"];

async fn inventory() -> Inventory {
    let app = TestApp::new().await;
    let a = deps(&app, "a").await;
    let b = deps(&app, "b").await;
    let profile = profile(&app, "Web").await;
    let (ag1, ag2) = (agent(&app.store, "one").await, agent(&app.store, "two").await);
    let t1a = target(&app, "t1a", &ag1).await;
    let t1b = target(&app, "t1b", &ag1).await;
    let t2 = target(&app, "t2", &ag2).await;
    let target_agent = BTreeMap::from([(t1a.clone(), ag1.clone()), (t1b.clone(), ag1), (t2.clone(), ag2)]);

    let mut created = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        // Certificates 0 and 1 share a creation time, so ties are broken by ID.
        if i != 1 {
            app.clock.advance(time::Duration::seconds(10));
        }
        let d = if i % 2 == 0 { &a } else { &b };
        let targets = match i % 4 {
            0 => json!([t1a]),
            1 => json!([t1a, t1b]),
            2 => json!([t2]),
            _ => json!([]),
        };
        let environment = ["prod", "staging", "dev"][i % 3];
        let common_name = format!("{}.example.com", NAMES[9 - i]);
        let mut body = with(
            cert_body(d, name),
            json!({"common_name": common_name, "environment": environment, "target_ids": targets}),
        );
        if i % 3 == 0 {
            body["certificate_profile_id"] = json!(profile);
        }
        created.push(cert(&app, &body).await);
    }
    // One certificate came in through another channel.
    app.clock.advance(time::Duration::seconds(10));
    let req: CreateCertificate = serde_json::from_value(with(
        cert_body(&b, "foxtrot"),
        json!({"common_name": "acme.example.com", "environment": "prod"}),
    ))
    .unwrap();
    created.push(app.store.create_certificate(&req, "ACME", &Actor::system(), app.clock.now()).await.unwrap().id);

    // Issued versions set expiry and status; some certificates change later, two at once.
    app.clock.advance(time::Duration::minutes(5));
    for (i, id) in created.iter().enumerate().filter(|(i, _)| i % 3 != 2) {
        let not_after = T0 + time::Duration::days(30 + (i as i64 * 7) % 50);
        let status = if i % 4 == 3 { CertificateStatus::Expiring } else { CertificateStatus::Active };
        let v = NewVersion {
            certificate_id: id.clone(),
            serial_number: format!("{i:02}"),
            not_before: T0,
            not_after,
            fingerprint_sha256: format!("{i:0>64}"),
            pem_chain: String::new(),
            csr_pem: None,
            key_algorithm: "RSA".into(),
            key_size: 2048,
        };
        app.store.add_version(&v, status, &Actor::system(), app.clock.now()).await.unwrap();
        if i % 2 == 1 {
            app.clock.advance(time::Duration::seconds(1));
        }
    }
    app.delete(&format!("/api/v1/certificates/{}", created[4]), &app.operator).await.expect(204, None);

    let mut certs = Vec::new();
    for id in &created {
        certs.push(app.get(&format!("/api/v1/certificates/{id}"), &app.viewer).await.json);
    }
    Inventory { app, certs, target_agent, a, b, profile }
}

impl Inventory {
    fn agents_of(&self, c: &Value) -> HashSet<&str> {
        c["target_ids"].as_array().unwrap().iter().map(|t| self.target_agent[t.as_str().unwrap()].as_str()).collect()
    }

    /// The IDs `pred` selects, in (`sort`, id) order.
    fn expected(&self, pred: impl Fn(&Value) -> bool, sort: &str, desc: bool) -> Vec<String> {
        let mut rows: Vec<(Key, String)> = self
            .certs
            .iter()
            .filter(|c| pred(c))
            .map(|c| (key(c, sort), c["id"].as_str().unwrap().to_owned()))
            .collect();
        rows.sort();
        if desc {
            rows.reverse();
        }
        rows.into_iter().map(|(_, id)| id).collect()
    }

    async fn get(&self, query: &str) -> Value {
        let r = self.app.get(&format!("/api/v1/certificates?{query}"), &self.app.viewer).await;
        r.expect(200, None);
        r.json
    }

    /// Every ID the query lists, in one page.
    async fn list(&self, query: &str) -> Vec<String> {
        let page = self.get(&format!("per_page=500&{query}")).await;
        let listed = ids(&page["data"]);
        assert_eq!(page["total"], listed.len(), "{query}");
        listed
    }

    /// Every ID the query lists, walking keyset pages of `size`.
    async fn walk(&self, query: &str, size: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = self.get(&format!("page_size={size}&{query}{cursor}")).await;
            assert!(page.get("total").is_none(), "keyset pages have no total");
            let data = ids(&page["data"]);
            assert!(data.len() <= size, "{query}: page of {}", data.len());
            out.extend(data.iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => {
                    assert_eq!(data.len(), size, "{query}: a short page has no next page");
                    cursor = format!("&cursor={c}");
                }
                None => return out,
            }
            assert!(out.len() <= self.certs.len(), "{query}: the walk does not end");
        }
    }
}

fn is(field: &'static str, value: String) -> impl Fn(&Value) -> bool {
    move |c| c[field] == json!(value)
}

#[tokio::test]
async fn filters_select_the_matching_certificates() {
    let inv = inventory().await;
    let (a, b, app) = (&inv.a, &inv.b, &inv.app);
    let all = inv.expected(|_| true, "createdAt", false);
    assert_eq!(inv.list("").await, all, "by default in creation order");
    assert_eq!(all.len(), 11);

    let cut = T0 + time::Duration::days(45);
    let created_cut = T0 + time::Duration::seconds(50);
    let mut updates: Vec<OffsetDateTime> = inv.certs.iter().map(|c| time(&c["updated_at"]).unwrap()).collect();
    updates.sort();
    let updated_cut = updates[updates.len() / 2];
    let statuses = ["Active", "Expiring", "Pending", "Archived"];
    for status in statuses {
        assert_eq!(
            inv.list(&format!("status={status}")).await,
            inv.expected(is("status", status.into()), "createdAt", false),
            "{status}"
        );
    }
    let cases: Vec<(String, Pred<'_>)> = vec![
        ("environment=prod".into(), Box::new(is("environment", "prod".into()))),
        (format!("owner_id={}", a.owner), Box::new(is("owner_id", a.owner.clone()))),
        (format!("team_id={}", b.team), Box::new(is("team_id", b.team.clone()))),
        (format!("issuer_id={}", a.issuer), Box::new(is("issuer_id", a.issuer.clone()))),
        (format!("profile_id={}", inv.profile), Box::new(is("certificate_profile_id", inv.profile.clone()))),
        ("agent_id=agent-one".into(), Box::new(|c: &Value| inv.agents_of(c).contains("agent-one"))),
        ("agent_id=agent-two".into(), Box::new(|c: &Value| inv.agents_of(c).contains("agent-two"))),
        ("agent_id=agent-none".into(), Box::new(|_: &Value| false)),
        ("source=ACME".into(), Box::new(is("source", "ACME".into()))),
        ("source=API".into(), Box::new(is("source", "API".into()))),
        (
            format!("expires_before={}", rfc3339(cut)),
            Box::new(|c: &Value| time(&c["expires_at"]).is_some_and(|t| t < cut)),
        ),
        (
            format!("expires_after={}", rfc3339(cut)),
            Box::new(|c: &Value| time(&c["expires_at"]).is_some_and(|t| t > cut)),
        ),
        (
            format!("created_after={}", rfc3339(created_cut)),
            Box::new(|c: &Value| time(&c["created_at"]).unwrap() > created_cut),
        ),
        (
            format!("updated_after={}", rfc3339(updated_cut)),
            Box::new(|c: &Value| time(&c["updated_at"]).unwrap() > updated_cut),
        ),
        (
            format!("environment=prod&team_id={}&status=Active", a.team),
            Box::new(|c: &Value| {
                c["environment"] == "prod" && c["team_id"] == json!(a.team) && c["status"] == "Active"
            }),
        ),
        ("status=&environment=".into(), Box::new(|_: &Value| true)),
    ];
    for (query, pred) in &cases {
        let expected = inv.expected(pred, "createdAt", false);
        assert!(
            query.contains("agent-none")
                || (!expected.is_empty() && expected.len() < all.len())
                || query.starts_with("status=&"),
            "{query} selects {} of {} certificates, which tests nothing",
            expected.len(),
            all.len()
        );
        assert_eq!(inv.list(query).await, expected, "{query}");
        assert_eq!(inv.walk(query, 2).await, expected, "{query} (keyset)");
    }
    // A certificate mapped to two targets of one agent is listed once; unmapping removes it.
    let twice = inv.certs.iter().find(|c| c["target_ids"].as_array().unwrap().len() == 2).unwrap();
    let id = twice["id"].as_str().unwrap();
    assert_eq!(inv.list("agent_id=agent-one").await.iter().filter(|x| *x == id).count(), 1);
    app.put_json(&format!("/api/v1/certificates/{id}"), &app.operator, &json!({"target_ids": []}))
        .await
        .expect(200, None);
    assert!(!inv.list("agent_id=agent-one").await.iter().any(|x| x == id));

    for (query, field) in [
        ("status=Bogus", "status"),
        ("status=active", "status"),
        ("expires_before=tomorrow", "expires_before"),
        ("expires_after=2026-02-30T00:00:00Z", "expires_after"),
        ("created_after=2026-03-01", "created_after"),
        ("updated_after=1700000000", "updated_after"),
    ] {
        app.get(&format!("/api/v1/certificates?{query}"), &app.viewer).await.expect_bad_field(field);
    }
}

#[tokio::test]
async fn every_sort_key_orders_both_ways() {
    let inv = inventory().await;
    let keys = [
        "createdAt",
        "created_at",
        "updatedAt",
        "updated_at",
        "notAfter",
        "expiresAt",
        "expires_at",
        "not_after",
        "name",
        "commonName",
        "common_name",
        "status",
        "environment",
    ];
    for k in keys {
        let asc = inv.expected(|_| true, k, false);
        let desc = inv.expected(|_| true, k, true);
        assert_eq!(inv.list(&format!("sort={k}")).await, asc, "sort={k}");
        assert_eq!(inv.list(&format!("sort=-{k}")).await, desc, "sort=-{k}");
        assert_eq!(inv.list(&format!("sort={k}&sort_desc=true")).await, desc, "sort={k}&sort_desc=true");
        assert_eq!(inv.list(&format!("sort={k}&sort_desc=false")).await, asc, "sort={k}&sort_desc=false");
    }
    assert_eq!(inv.list("sort_desc=true").await, inv.expected(|_| true, "createdAt", true));
    let expiring = inv.list("sort=expiresAt").await;
    let never = inv.certs.iter().filter(|c| c["expires_at"].is_null()).count();
    assert!(never > 0);
    assert!(
        expiring[expiring.len() - never..]
            .iter()
            .all(|id| inv.certs.iter().any(|c| c["id"] == json!(id) && c["expires_at"].is_null())),
        "never-issued certificates sort last by expiry"
    );

    let app = &inv.app;
    for bad in ["sort=bogus", "sort=-", "sort=-bogus", "sort=name,status", "sort=Name"] {
        let r = app.get(&format!("/api/v1/certificates?{bad}"), &app.viewer).await;
        r.expect_bad_field("sort");
    }
    let r = app.get("/api/v1/certificates?sort_desc=maybe", &app.viewer).await;
    r.expect(400, Some("bad_request"));
    assert!(r.message().contains("sort_desc"), "{}", r.message());
}

#[tokio::test]
async fn keyset_walks_return_each_match_once() {
    let inv = inventory().await;
    let filters: [(String, Pred<'_>); 3] = [
        (String::new(), Box::new(|_: &Value| true)),
        ("environment=prod".into(), Box::new(is("environment", "prod".into()))),
        ("agent_id=agent-one".into(), Box::new(|c: &Value| inv.agents_of(c).contains("agent-one"))),
    ];
    let keys = ["createdAt", "updatedAt", "expiresAt", "name", "commonName", "status", "environment"];
    for (filter, pred) in &filters {
        for k in keys {
            for (sort, desc) in [(k.to_owned(), false), (format!("-{k}"), true)] {
                let expected = inv.expected(pred, k, desc);
                let query = format!("{filter}&sort={sort}");
                for size in [1, 2, 3] {
                    let walked = inv.walk(&query, size).await;
                    assert_eq!(walked, expected, "{query} page_size={size}");
                }
            }
        }
    }
    // A cursor belongs to its sort order.
    let app = &inv.app;
    let page = inv.get("page_size=2&sort=name").await;
    let cursor = page["next_cursor"].as_str().unwrap();
    for other in ["sort=-name", "sort=status", ""] {
        app.get(&format!("/api/v1/certificates?page_size=2&cursor={cursor}&{other}"), &app.viewer)
            .await
            .expect_bad_field("cursor");
    }
    app.get("/api/v1/certificates?page_size=2&cursor=garbage", &app.viewer).await.expect_bad_field("cursor");
}

#[tokio::test]
async fn page_mode_and_sparse_fields() {
    let inv = inventory().await;
    let prod = |c: &Value| c["environment"] == "prod";
    let expected = inv.expected(prod, "name", true);
    let mut paged = Vec::new();
    for page in 1..=3 {
        let p = inv.get(&format!("per_page=2&page={page}&sort=-name&environment=prod")).await;
        assert_eq!((&p["page"], &p["per_page"], &p["total"]), (&json!(page), &json!(2), &json!(expected.len())));
        paged.extend(ids(&p["data"]));
    }
    assert_eq!(paged, expected, "pages cover every match once, in order");
    assert_eq!(inv.get("per_page=5&page=9").await["data"], json!([]));
    assert_eq!(inv.get("per_page=5&page=9").await["total"], json!(inv.certs.len()));

    let by_id = |id: &str| inv.certs.iter().find(|c| c["id"] == id).unwrap();
    let p = inv.get("fields=id,status&per_page=500").await;
    assert_eq!(p["total"], inv.certs.len());
    assert_eq!(ids(&p["data"]), inv.expected(|_| true, "createdAt", false));
    for row in p["data"].as_array().unwrap() {
        assert_eq!(row.as_object().unwrap().len(), 2, "only the asked fields: {row}");
        assert_eq!(row["status"], by_id(row["id"].as_str().unwrap())["status"]);
    }
    // Names are trimmed and empty ones ignored; keyset pages are projected too.
    let p = inv.get("fields=%20name%20,%20expires_at%20,&page_size=2&sort=-name").await;
    assert!(p["next_cursor"].is_string());
    let names: Vec<Value> =
        inv.expected(|_| true, "name", true)[..2].iter().map(|id| by_id(id)["name"].clone()).collect();
    for (row, name) in p["data"].as_array().unwrap().iter().zip(&names) {
        let keys: HashSet<&str> = row.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, HashSet::from(["name", "expires_at"]), "{row}");
        assert_eq!(&row["name"], name);
    }
    let first = inv.expected(|_| true, "createdAt", false).remove(0);
    assert_eq!(&inv.get("fields=&per_page=1").await["data"][0], by_id(&first), "an empty list is every field");
    let app = &inv.app;
    for bad in ["fields=id,bogus", "fields=ID", "fields=config"] {
        let r = app.get(&format!("/api/v1/certificates?{bad}"), &app.viewer).await;
        r.expect_bad_field("fields");
    }
}

//! The certificate list: filters, every sort key in both directions under page and keyset
//! paging, the agent filter through mappings, and a property test of keyset walks that race
//! with inserts under a random sort key.

use std::collections::{HashMap, HashSet};

use certctl_api::{
    AgentStatus, CertificateQuery, CertificateStatus, CreateCertificate, IssuerType, ManagedCertificate, TargetType,
};
use certctl_store::testing::TestDb;
use certctl_store::{
    Backend, CertificateFilter, CertificateListQuery, ImportedCertificate, Listing, NewAgent, NewIssuer, NewTarget,
    NewVersion, Paging, SealedConfig, Store, to_micros,
};
use proptest::collection::vec;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::{Map, json};
use time::OffsetDateTime;

use crate::support::{Raw, T0, alice, at, name, owner_req, team_req};

/// Every sort key under its canonical name, as the wire accepts it.
const SORT_KEYS: [&str; 7] = ["createdAt", "updatedAt", "expiresAt", "name", "commonName", "status", "environment"];

const ENVIRONMENTS: [&str; 3] = ["dev", "prod", "staging"];

const STATUSES: [CertificateStatus; 4] =
    [CertificateStatus::Active, CertificateStatus::Expiring, CertificateStatus::Failed, CertificateStatus::Pending];

/// What a certificate refers to.
struct Deps {
    team: String,
    owner: String,
    issuer: String,
    policy: String,
}

async fn deps(store: &Store, tag: &str) -> Deps {
    let team = store.create_team(&team_req(&format!("team {tag}")), &alice(), T0).await.unwrap().id;
    let owner = store.create_owner(&owner_req(&format!("Owner{tag}"), &team), &alice(), T0).await.unwrap().id;
    let new = NewIssuer {
        id: format!("iss-{tag}"),
        name: name(&format!("issuer {tag}")),
        issuer_type: IssuerType::GenericCa,
        config: SealedConfig { redacted: Map::new(), sealed: vec![1, 2, 3], merged_from: None },
        enabled: true,
    };
    let issuer = store.create_issuer(&new, &alice(), T0).await.unwrap().id;
    let req = serde_json::from_value(json!({"name": format!("policy {tag}")})).unwrap();
    let policy = store.create_renewal_policy(&req, &alice(), T0).await.unwrap().id;
    Deps { team, owner, issuer, policy }
}

async fn agent_with_targets(store: &Store, agent: &str, targets: &[&str]) {
    let new = NewAgent {
        id: Some(agent.to_owned()),
        name: agent.to_owned(),
        status: AgentStatus::Online,
        ..NewAgent::default()
    };
    store.create_agent(&new, &alice(), T0).await.unwrap();
    for t in targets {
        let new = NewTarget {
            id: (*t).to_owned(),
            name: name(t),
            target_type: TargetType::File,
            agent_id: agent.to_owned(),
            config: SealedConfig { redacted: Map::new(), sealed: vec![1], merged_from: None },
            enabled: true,
        };
        store.create_target(&new, &alice(), T0).await.unwrap();
    }
}

fn create_req(d: &Deps, cert_name: &str, extra: serde_json::Value) -> CreateCertificate {
    let mut body = json!({
        "name": cert_name, "common_name": format!("{cert_name}.example.com"), "owner_id": d.owner, "team_id": d.team,
        "issuer_id": d.issuer, "renewal_policy_id": d.policy,
    });
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    serde_json::from_value(body).unwrap()
}

fn query(q: CertificateQuery) -> CertificateListQuery {
    CertificateListQuery::parse(&q).unwrap()
}

/// Which certificates a filter selects, as the test's model.
type Pred<'a> = Box<dyn Fn(&ManagedCertificate) -> bool + 'a>;

/// A sort value as the store orders it; never-issued certificates sort last by expiry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Int(i64),
    Text(String),
}

fn key(c: &ManagedCertificate, sort: &str) -> Key {
    match sort {
        "createdAt" => Key::Int(to_micros(c.created_at)),
        "updatedAt" => Key::Int(to_micros(c.updated_at)),
        "expiresAt" => Key::Int(c.expires_at.map_or(i64::MAX, to_micros)),
        "name" => Key::Text(c.name.clone()),
        "commonName" => Key::Text(c.common_name.clone()),
        "status" => Key::Text(c.status.as_str().to_owned()),
        "environment" => Key::Text(c.environment.clone()),
        other => panic!("unknown sort key {other}"),
    }
}

/// IDs of `certs` that `pred` selects, in (`sort`, id) order.
fn expected(
    certs: &[ManagedCertificate],
    pred: impl Fn(&ManagedCertificate) -> bool,
    sort: &str,
    desc: bool,
) -> Vec<String> {
    let mut rows: Vec<(Key, &str)> = certs.iter().filter(|c| pred(c)).map(|c| (key(c, sort), c.id.as_str())).collect();
    rows.sort();
    if desc {
        rows.reverse();
    }
    rows.into_iter().map(|(_, id)| id.to_owned()).collect()
}

async fn all_ids(store: &Store, q: &CertificateListQuery) -> Vec<String> {
    let Listing::Page { data, total, .. } =
        store.list_certificates(q, &Paging::Page { page: 1, per_page: 500 }).await.unwrap()
    else {
        panic!("page mode expected")
    };
    assert_eq!(total, data.len() as i64);
    data.into_iter().map(|c| c.id).collect()
}

/// Every ID of a keyset walk with pages of `size`.
async fn walk(store: &Store, q: &CertificateListQuery, size: u32) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let listing = store.list_certificates(q, &Paging::Cursor { cursor: cursor.take(), size }).await.unwrap();
        let Listing::Cursor { data, next_cursor, page_size } = listing else { panic!("cursor mode expected") };
        assert_eq!(page_size, size);
        assert!(data.len() <= size as usize);
        if next_cursor.is_some() {
            assert_eq!(data.len(), size as usize, "only the last page is short");
        }
        out.extend(data.into_iter().map(|c| c.id));
        match next_cursor {
            Some(c) => cursor = Some(c),
            None => return out,
        }
        assert!(out.len() <= 1000, "the walk does not end");
    }
}

pub async fn certificate_list_filters_and_keyset_paging(db: &TestDb) {
    let store = db.store().await;
    let (a, b) = (deps(&store, "a").await, deps(&store, "b").await);
    let req = serde_json::from_value(json!({"name": "Web"})).unwrap();
    let profile = store.create_profile(&req, &alice(), T0).await.unwrap().id;
    agent_with_targets(&store, "agent-1", &["t1a", "t1b"]).await;
    agent_with_targets(&store, "agent-2", &["t2"]).await;

    let names =
        ["kilo", "alpha", "juliet", "bravo", "india", "charlie", "hotel", "delta", "golf", "echo", "lima", "foxtrot"];
    let mut ids = Vec::new();
    for (i, cert_name) in names.iter().enumerate() {
        let d = if i % 2 == 0 { &a } else { &b };
        let targets = [json!(["t1a"]), json!(["t1a", "t1b"]), json!(["t2"]), json!([])][i % 4].clone();
        let mut extra = json!({"environment": ENVIRONMENTS[i % 3], "common_name": format!("{}.example.com", names[11 - i]),
                               "target_ids": targets});
        if i % 3 == 0 {
            extra["certificate_profile_id"] = json!(profile);
        }
        let source = if i == 7 { "ACME" } else { "API" };
        // Pairs of certificates share a creation time.
        let created = at((i / 2) as i64 * 10);
        ids.push(
            store.create_certificate(&create_req(d, cert_name, extra), source, &alice(), created).await.unwrap().id,
        );
    }
    for (i, id) in ids.iter().enumerate().filter(|(i, _)| i % 3 != 2) {
        let not_after = T0 + time::Duration::days(20 + (i as i64 * 13) % 40);
        let v = NewVersion {
            certificate_id: id.clone(),
            serial_number: format!("{i}"),
            not_before: T0,
            not_after,
            fingerprint_sha256: format!("{i:0>64}"),
            pem_chain: String::new(),
            csr_pem: None,
            key_algorithm: "ECDSA".into(),
            key_size: 256,
        };
        store.add_version(&v, STATUSES[i % 2], &alice(), at(1000 + (i / 3) as i64)).await.unwrap();
    }
    store.archive_certificate(&ids[5], &alice(), at(2000)).await.unwrap();

    let everything = query(CertificateQuery::default());
    let certs = store.list_certificates(&everything, &Paging::Page { page: 1, per_page: 500 }).await.unwrap();
    let certs = certs.data().to_vec();
    assert_eq!(certs.len(), names.len());
    let on_agent = |agent: &'static str| {
        move |c: &ManagedCertificate| {
            c.target_ids.iter().any(|t| if agent == "agent-1" { t.starts_with("t1") } else { t == "t2" })
        }
    };
    let cut = T0 + time::Duration::days(35);
    let cases: Vec<(CertificateQuery, Pred<'_>)> = vec![
        (CertificateQuery::default(), Box::new(|_| true)),
        (
            CertificateQuery { environment: Some("prod".into()), ..Default::default() },
            Box::new(|c| c.environment == "prod"),
        ),
        (
            CertificateQuery { status: Some("Active".into()), ..Default::default() },
            Box::new(|c| c.status == CertificateStatus::Active),
        ),
        (
            CertificateQuery { owner_id: Some(a.owner.clone()), ..Default::default() },
            Box::new(|c| c.owner_id == a.owner),
        ),
        (CertificateQuery { team_id: Some(b.team.clone()), ..Default::default() }, Box::new(|c| c.team_id == b.team)),
        (
            CertificateQuery { issuer_id: Some(a.issuer.clone()), ..Default::default() },
            Box::new(|c| c.issuer_id == a.issuer),
        ),
        (
            CertificateQuery { profile_id: Some(profile.clone()), ..Default::default() },
            Box::new(|c| c.certificate_profile_id.as_deref() == Some(profile.as_str())),
        ),
        (CertificateQuery { agent_id: Some("agent-1".into()), ..Default::default() }, Box::new(on_agent("agent-1"))),
        (CertificateQuery { agent_id: Some("agent-2".into()), ..Default::default() }, Box::new(on_agent("agent-2"))),
        (CertificateQuery { source: Some("ACME".into()), ..Default::default() }, Box::new(|c| c.source == "ACME")),
        (
            CertificateQuery { expires_before: Some(rfc3339(cut)), ..Default::default() },
            Box::new(|c| c.expires_at.is_some_and(|t| t < cut)),
        ),
        (
            CertificateQuery { expires_after: Some(rfc3339(cut)), ..Default::default() },
            Box::new(|c| c.expires_at.is_some_and(|t| t > cut)),
        ),
        (
            CertificateQuery { created_after: Some(rfc3339(at(20))), ..Default::default() },
            Box::new(|c| c.created_at > at(20)),
        ),
        (
            CertificateQuery { updated_after: Some(rfc3339(at(1001))), ..Default::default() },
            Box::new(|c| c.updated_at > at(1001)),
        ),
        (
            CertificateQuery { environment: Some("dev".into()), team_id: Some(a.team.clone()), ..Default::default() },
            Box::new(|c| c.environment == "dev" && c.team_id == a.team),
        ),
    ];
    for (q, pred) in &cases {
        let count = store.count_certificates(&query(q.clone()).filter).await.unwrap();
        assert_eq!(count as usize, certs.iter().filter(|c| pred(c)).count(), "{q:?}");
        for sort in SORT_KEYS {
            for desc in [false, true] {
                let sorted = CertificateQuery { sort: Some(sort.into()), sort_desc: Some(desc), ..q.clone() };
                let lq = query(sorted);
                let want = expected(&certs, pred, sort, desc);
                assert_eq!(all_ids(&store, &lq).await, want, "{q:?} sort={sort} desc={desc}");
                for size in [1, 3] {
                    assert_eq!(walk(&store, &lq, size).await, want, "{q:?} sort={sort} desc={desc} page_size={size}");
                }
            }
        }
    }
    store.close().await;
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap()
}

pub async fn certificate_agent_filter(db: &TestDb) {
    let store = db.store().await;
    let d = deps(&store, "a").await;
    agent_with_targets(&store, "agent-1", &["t1a", "t1b"]).await;
    agent_with_targets(&store, "agent-2", &["t2"]).await;
    agent_with_targets(&store, "agent-3", &[]).await;
    let create = |cert_name: &str, extra: serde_json::Value, secs: i64| {
        let (req, store) = (create_req(&d, cert_name, extra), store.clone());
        async move { store.create_certificate(&req, "API", &alice(), at(secs)).await.unwrap().id }
    };
    let both = create("both", json!({"target_ids": ["t1a", "t1b"]}), 1).await;
    let other = create("other", json!({"target_ids": ["t2"]}), 2).await;
    let none = create("none", json!({}), 3).await;
    let of = |agent: &str| query(CertificateQuery { agent_id: Some(agent.into()), ..Default::default() });
    let count = |agent: &str| {
        let filter = CertificateFilter { agent_id: Some(agent.into()), ..CertificateFilter::default() };
        let store = store.clone();
        async move { store.count_certificates(&filter).await.unwrap() }
    };

    assert_eq!(
        all_ids(&store, &of("agent-1")).await,
        std::slice::from_ref(&both),
        "two mappings to one agent list the certificate once"
    );
    assert_eq!(walk(&store, &of("agent-1"), 1).await, std::slice::from_ref(&both));
    assert_eq!(count("agent-1").await, 1);
    assert_eq!(all_ids(&store, &of("agent-2")).await, std::slice::from_ref(&other));
    assert!(all_ids(&store, &of("agent-3")).await.is_empty());
    assert!(all_ids(&store, &of("agent-missing")).await.is_empty());

    store.map_target(&none, "t2", &alice(), at(4)).await.unwrap();
    store.map_target(&none, "t2", &alice(), at(5)).await.unwrap();
    assert_eq!(all_ids(&store, &of("agent-2")).await, [other.clone(), none.clone()]);
    assert_eq!(count("agent-2").await, 2);
    store.unmap_target(&both, "t1a", &alice(), at(6)).await.unwrap();
    assert_eq!(all_ids(&store, &of("agent-1")).await, std::slice::from_ref(&both), "one mapping is enough");
    store.unmap_target(&both, "t1b", &alice(), at(7)).await.unwrap();
    assert!(all_ids(&store, &of("agent-1")).await.is_empty());
    assert_eq!(store.certificate(&both).await.unwrap().target_ids, Vec::<String>::new());
    // Filters combine with the agent filter.
    let q = query(CertificateQuery {
        agent_id: Some("agent-2".into()),
        created_after: Some(rfc3339(at(2))),
        ..Default::default()
    });
    assert_eq!(all_ids(&store, &q).await, [none]);
    store.close().await;
}

/// The sortable attributes of one generated certificate, as small indices so values tie often.
type Attrs = (i64, Option<i64>, usize, usize, usize);

fn imported(d: &Deps, (created, expires, cn, status, env): Attrs) -> ImportedCertificate {
    let id = format!("mc-{}", uuid::Uuid::new_v4().simple());
    ImportedCertificate {
        name: format!("n{cn}-{id}"),
        common_name: format!("cn{}.example.com", (cn * 7) % 5),
        sans: Vec::new(),
        environment: ENVIRONMENTS[env].to_owned(),
        owner_id: d.owner.clone(),
        team_id: d.team.clone(),
        issuer_id: d.issuer.clone(),
        renewal_policy_id: d.policy.clone(),
        certificate_profile_id: None,
        status: STATUSES[status],
        expires_at: expires.map(|e| T0 + time::Duration::days(e)),
        tags: Default::default(),
        source: "Import".into(),
        created_at: at(created),
        id,
    }
}

/// One walk over the certificates of `store`, which starts with none: `initial` exist first;
/// page sizes cycle through `sizes`; while page `i` is fetched, `inserts[i]` are created.
async fn walk_while_inserting(
    store: &Store,
    d: &Deps,
    (sort, desc, env): (&str, bool, Option<&str>),
    initial: Vec<Attrs>,
    sizes: Vec<u32>,
    inserts: Vec<Vec<Attrs>>,
) -> Result<(), String> {
    let matches = |c: &ManagedCertificate| env.is_none_or(|e| c.environment == e);
    let rows: Vec<ImportedCertificate> = initial.into_iter().map(|a| imported(d, a)).collect();
    store.import_certificates(&rows, &alice(), T0).await.map_err(|e| format!("import: {e}"))?;
    let before: HashSet<String> =
        rows.iter().filter(|r| env.is_none_or(|e| r.environment == e)).map(|r| r.id.clone()).collect();
    let q = query(CertificateQuery {
        sort: Some(sort.into()),
        sort_desc: Some(desc),
        environment: env.map(str::to_owned),
        ..Default::default()
    });
    let mut seen: Vec<(Key, String)> = Vec::new();
    let mut cursor = None;
    for step in 0.. {
        if step > 10_000 {
            return Err("the walk does not end".into());
        }
        let size = sizes[step % sizes.len()];
        let batch: Vec<ImportedCertificate> =
            inserts.get(step).into_iter().flatten().map(|a| imported(d, *a)).collect();
        let writer = tokio::spawn({
            let store = store.clone();
            async move {
                store.import_certificates(&batch, &alice(), T0).await.map(drop).map_err(|e| format!("insert: {e}"))
            }
        });
        let page = store.list_certificates(&q, &Paging::Cursor { cursor: cursor.take(), size }).await;
        writer.await.map_err(|e| e.to_string())??;
        let Listing::Cursor { data, next_cursor, .. } = page.map_err(|e| e.to_string())? else {
            return Err("cursor mode expected".into());
        };
        if data.len() > size as usize || (next_cursor.is_some() && data.len() != size as usize) {
            return Err(format!("page of {} rows for size {size} (next: {})", data.len(), next_cursor.is_some()));
        }
        if let Some(c) = data.iter().find(|c| !matches(c)) {
            return Err(format!("{} ({}) does not match the filter", c.id, c.environment));
        }
        seen.extend(data.iter().map(|c| (key(c, sort), c.id.clone())));
        match next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }

    let mut times: HashMap<&str, usize> = HashMap::new();
    for (_, id) in &seen {
        *times.entry(id).or_default() += 1;
    }
    if let Some((id, n)) = times.iter().find(|(_, n)| **n > 1) {
        return Err(format!("{id} returned {n} times"));
    }
    if let Some(missing) = before.iter().find(|id| !times.contains_key(id.as_str())) {
        return Err(format!("{missing} existed before the walk but was never returned"));
    }
    let out_of_order = |p: &[(Key, String)]| if desc { p[0] <= p[1] } else { p[0] >= p[1] };
    if let Some(pair) = seen.windows(2).find(|p| out_of_order(p)) {
        return Err(format!("rows out of keyset order: {:?} then {:?}", pair[0], pair[1]));
    }
    Ok(())
}

pub fn certificate_walk_during_inserts_sees_every_row_once(backend: Backend) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let Some(db) = rt.block_on(TestDb::new(backend)) else { return };
    let store = rt.block_on(db.store());
    let d = rt.block_on(deps(&store, "p"));
    let raw = tokio::sync::Mutex::new(rt.block_on(Raw::connect(&db)));
    let config =
        ProptestConfig { cases: 24, max_shrink_iters: 64, failure_persistence: None, ..ProptestConfig::default() };
    let attrs =
        || (0i64..6, proptest::option::of(0i64..4), 0usize..6, 0usize..STATUSES.len(), 0usize..ENVIRONMENTS.len());
    let strategy = (
        (0usize..SORT_KEYS.len(), proptest::bool::ANY, proptest::option::of(0usize..ENVIRONMENTS.len())),
        vec(attrs(), 0..30),
        vec(1u32..=8, 1..5),
        vec(vec(attrs(), 0..4), 0..20),
    );
    let result = TestRunner::new(config).run(&strategy, |((sort, desc, env), initial, sizes, inserts)| {
        rt.block_on(async {
            // Cases share the database and start with no certificates.
            raw.lock().await.exec("DELETE FROM managed_certificates").await.map_err(|e| e.to_string())?;
            let order = (SORT_KEYS[sort], desc, env.map(|e| ENVIRONMENTS[e]));
            walk_while_inserting(&store, &d, order, initial, sizes, inserts).await
        })
        .map_err(TestCaseError::fail)
    });
    rt.block_on(async {
        raw.into_inner().close().await;
        store.close().await;
        db.cleanup().await;
    });
    result.unwrap_or_else(|e| panic!("{e}"));
}

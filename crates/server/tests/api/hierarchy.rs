//! CA hierarchies of a local-CA issuer, checked with `openssl`: a constrained intermediate
//! signs the issuer's leaves and its constraints hold, path length stops deeper CAs, only admin
//! keys reach the endpoints, and retirement stops issuance but not the CA's CRL.

use serde_json::{Value, json};

use certctl_server::scheduler::drain_jobs;

use crate::fixtures::{agent, deps};
use crate::harness::{NO_KEY, Reply, TestApp};
use crate::pki_peer::{
    Openssl, attime, cert_for, export_pem, issue, issued, issuer_chain, job_of, ocsp_post, ocsp_request, ocsp_status,
    renew, server_profile, to_wall_clock, versions,
};

async fn create_ca(app: &TestApp, issuer: &str, key: &str, body: Value) -> Reply {
    app.post_json(&format!("/api/v1/issuers/{issuer}/intermediates"), key, &body).await
}

async fn retire(app: &TestApp, ca: &str, confirm: bool) -> Reply {
    app.post_json(&format!("/api/v1/intermediates/{ca}/retire"), &app.admin, &json!({"confirm": confirm})).await
}

/// Creates the issuer's root a second before anything else: the signing CA is the newest active
/// one by creation time, and under the manual clock a root made in the same request as its first
/// intermediate would share its timestamp.
async fn root_first(app: &TestApp, issuer: &str) {
    issuer_chain(app, issuer).await;
    app.clock.advance(time::Duration::seconds(1));
}

/// The CA certificate served at its AIA location (DER), as PEM in `name`.
async fn served_ca<'a>(app: &TestApp, ssl: &Openssl, ca: &str, name: &'a str) -> &'a str {
    let r = app.get(&format!("/.well-known/pki/ca/{ca}"), NO_KEY).await;
    r.expect(200, None);
    assert_eq!(r.headers["content-type"], "application/pkix-cert");
    let der = format!("{name}.der");
    ssl.write(&der, &r.body);
    ssl.ok(&["x509", "-inform", "DER", "-in", &der, "-out", name]);
    name
}

#[tokio::test]
async fn constrained_intermediate_signs_the_leaves() {
    let Some(ssl) = Openssl::new() else { return };
    let app = TestApp::new().await;
    // openssl judges OCSP responses by the wall clock.
    to_wall_clock(&app);
    let d = deps(&app, "tree").await;
    let prof = server_profile(&app, "server tree").await;
    let root_id = format!("ca-root-{}", d.issuer);
    root_first(&app, &d.issuer).await;
    let body = json!({"name": "Web Issuing CA", "path_len_constraint": 0,
                      "name_constraints": {"permitted_dns": ["example.com"]}});
    let r = create_ca(&app, &d.issuer, &app.admin, body).await;
    r.expect(201, None);
    let inter = r.json.clone();
    let inter_id = inter["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (&inter["issuer_id"], &inter["parent_ca_id"], &inter["state"], &inter["source"]),
        (&json!(d.issuer), &json!(root_id), &json!("active"), &json!("intermediate"))
    );
    assert_eq!((&inter["path_len_constraint"], &inter["subject"]), (&json!(0), &json!("CN=Web Issuing CA")));
    assert_eq!(inter["name_constraints"]["permitted_dns"], json!(["example.com"]));
    assert_eq!(app.get(&format!("/api/v1/intermediates/{inter_id}"), &app.admin).await.json, inter);
    let list = app.get(&format!("/api/v1/issuers/{}/intermediates", d.issuer), &app.admin).await;
    list.expect(200, None);
    assert_eq!(list.json["total"], 2);
    let root = &list.json["data"][0];
    assert_eq!(
        (&root["id"], &root["parent_ca_id"], &root["source"]),
        (&json!(root_id), &json!(null), &json!("generated"))
    );
    assert_eq!(list.json["data"][1]["id"], json!(inter_id));

    let root_pem = served_ca(&app, &ssl, &root_id, "root.pem").await;
    assert_eq!(ssl.read_text(root_pem), root["cert_pem"].as_str().unwrap(), "the served root is the listed one");
    let inter_pem = ssl.write("inter.pem", inter["cert_pem"].as_str().unwrap());
    assert_eq!(ssl.read_text(served_ca(&app, &ssl, &inter_id, "inter_served.pem").await), ssl.read_text(inter_pem));
    let at = attime(&app);
    ssl.ok(&["verify", "-attime", &at, "-x509_strict", "-CAfile", root_pem, inter_pem]);
    let text = ssl.ok(&["x509", "-in", inter_pem, "-noout", "-text"]);
    assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
    assert!(text.contains("Permitted:") && text.contains("DNS:example.com"), "{text}");
    let chain = issuer_chain(&app, &d.issuer).await;
    assert_eq!(chain, format!("{}{}", ssl.read_text(inter_pem), ssl.read_text(root_pem)), "signing CA first");

    // Leaves of the issuer now come from the intermediate.
    let (www, www_pem) = issued(&app, &d, &prof, "www", "www.example.com").await;
    let leaf = ssl.write("www.pem", www_pem);
    let out = ssl.ok(&["verify", "-attime", &at, "-x509_strict", "-CAfile", root_pem, "-untrusted", inter_pem, leaf]);
    assert!(out.contains("www.pem: OK"), "{out}");
    ssl.fails(&["verify", "-attime", &at, "-CAfile", root_pem, leaf]);
    assert_eq!(ssl.name_field(leaf, "issuer"), "CN=Web Issuing CA");
    assert_eq!(export_pem(&app, &www).await["chain_pem"], chain);
    let text = ssl.ok(&["x509", "-in", leaf, "-noout", "-text"]);
    assert!(text.contains(&format!("/.well-known/pki/crl/{inter_id}")), "the CDP names the intermediate: {text}");

    // OCSP answers for the intermediate's leaf under the issuer's path and the CA's own.
    ssl.write("chain.pem", &chain);
    let req = ocsp_request(&ssl, inter_pem, leaf, "www.req", true);
    for path in [&d.issuer, &inter_id] {
        let r = ocsp_post(&app, path, req.clone()).await;
        ssl.write("www.resp", &r.body);
        assert!(ocsp_status(&ssl, "www.resp", "www.req", inter_pem, "chain.pem", leaf).contains("www.pem: good"));
    }

    // A name outside the constraint is refused: by the job (server keys) …
    let evil = cert_for(&app, &d, Some(&prof), "evil", "evil.com").await;
    let job = issue(&app, &evil).await;
    assert_eq!((&job["status"], &job["attempts"]), (&json!("Pending"), &json!(1)), "{job}");
    let error = job["last_error"].as_str().unwrap();
    assert!(error.contains("constraint") && error.contains("evil.com"), "{error}");
    assert!(versions(&app, &evil).await.is_empty());
    // … and on CSR submission (agent keys).
    let agent_id = agent(&app.store, "edge").await;
    let evil2 = cert_for(&app, &d, None, "evil2", "evil.org").await;
    let job_id = renew(&app, &evil2).await["id"].as_str().unwrap().to_owned();
    drain_jobs(&app.state).await;
    assert_eq!(job_of(&app, &job_id).await["status"], "AwaitingCSR");
    ssl.ok(&[
        "req",
        "-new",
        "-nodes",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-keyout",
        "evil.key",
        "-out",
        "evil.csr",
        "-subj",
        "/CN=evil.org",
        "-addext",
        "subjectAltName=DNS:evil.org",
    ]);
    let body = json!({"certificate_id": evil2, "csr_pem": ssl.read_text("evil.csr")});
    let r = app.post_json(&format!("/api/v1/agents/{agent_id}/csr"), &app.operator, &body).await;
    r.expect(422, Some("unprocessable_entity"));
    assert!(r.message().contains("constraint"), "{}", r.message());
    let job = job_of(&app, &job_id).await;
    assert_eq!(job["status"], "Pending", "the refused attempt counts and is retried: {job}");
    assert!(job["last_error"].as_str().unwrap().contains("evil.org"), "{job}");

    // Path length 0: no CA below the intermediate.
    let r = create_ca(&app, &d.issuer, &app.admin, json!({"name": "Too deep", "parent_ca_id": inter_id})).await;
    r.expect(422, Some("unprocessable_entity"));
    assert!(r.message().contains("path length"), "{}", r.message());
    let other = deps(&app, "elsewhere").await;
    let r = create_ca(&app, &other.issuer, &app.admin, json!({"name": "Cross", "parent_ca_id": inter_id})).await;
    r.expect(400, Some("bad_request"));
    create_ca(&app, "iss-missing", &app.admin, json!({"name": "Nowhere"})).await.expect(404, Some("not_found"));

    // The intermediate's CRL lists what it revoked; the root's does not.
    let r = app.post_json(&format!("/api/v1/certificates/{www}/revoke"), &app.operator, &json!({})).await;
    r.expect(200, None);
    let r = app.get(&format!("/.well-known/pki/crl/{inter_id}"), NO_KEY).await;
    r.expect(200, None);
    ssl.write("inter.crl", &r.body);
    assert!(ssl.crl_verifies("inter.crl", "chain.pem"));
    assert!(!ssl.crl_verifies("inter.crl", root_pem), "the intermediate, not the root, signs it");
    ssl.ok(&["crl", "-inform", "DER", "-in", "inter.crl", "-out", "inter_crl.pem"]);
    let out = ssl.fails(&[
        "verify",
        "-attime",
        &at,
        "-crl_check",
        "-CRLfile",
        "inter_crl.pem",
        "-CAfile",
        root_pem,
        "-untrusted",
        inter_pem,
        leaf,
    ]);
    assert!(out.contains("certificate revoked"), "{out}");
    let r = ocsp_post(&app, &d.issuer, req).await;
    ssl.write("www_revoked.resp", &r.body);
    let out = ocsp_status(&ssl, "www_revoked.resp", "www.req", inter_pem, "chain.pem", leaf);
    assert!(out.contains("www.pem: revoked"), "{out}");
    let r = app.get(&format!("/.well-known/pki/crl/{}", d.issuer), NO_KEY).await;
    ssl.write("root.crl", &r.body);
    let text = ssl.ok(&["crl", "-inform", "DER", "-in", "root.crl", "-noout", "-text"]);
    assert!(text.contains("No Revoked Certificates"), "{text}");
    app.finish().await;
}

#[tokio::test]
async fn intermediates_need_an_admin_key() {
    let app = TestApp::new().await;
    let d = deps(&app, "keys").await;
    let list = format!("/api/v1/issuers/{}/intermediates", d.issuer);
    for key in [&app.operator, &app.viewer] {
        app.post_json(&list, key, &json!({"name": "Nope"})).await.expect(403, Some("forbidden"));
        app.get(&list, key).await.expect(403, Some("forbidden"));
    }
    let r = create_ca(&app, &d.issuer, &app.admin, json!({"name": "Allowed"})).await;
    r.expect(201, None);
    let id = r.json["id"].as_str().unwrap();
    for key in [&app.operator, &app.viewer] {
        app.get(&format!("/api/v1/intermediates/{id}"), key).await.expect(403, Some("forbidden"));
        app.post_json(&format!("/api/v1/intermediates/{id}/retire"), key, &json!({}))
            .await
            .expect(403, Some("forbidden"));
    }
    app.get(&list, NO_KEY).await.expect(401, None);
    assert_eq!(app.get(&format!("/api/v1/intermediates/{id}"), &app.admin).await.json["state"], "active");
    app.get("/api/v1/intermediates/ca-missing", &app.admin).await.expect(404, Some("not_found"));
    app.finish().await;
}

#[tokio::test]
async fn retirement_stops_issuance_but_not_the_crl() {
    let Some(ssl) = Openssl::new() else { return };
    let app = TestApp::new().await;
    let d = deps(&app, "retire").await;
    let prof = server_profile(&app, "server retire").await;
    let root_id = format!("ca-root-{}", d.issuer);
    root_first(&app, &d.issuer).await;
    let r = create_ca(&app, &d.issuer, &app.admin, json!({"name": "Old Issuing CA"})).await;
    r.expect(201, None);
    let inter_id = r.json["id"].as_str().unwrap().to_owned();
    let inter_pem = ssl.write("inter.pem", r.json["cert_pem"].as_str().unwrap());
    let root_pem = served_ca(&app, &ssl, &root_id, "root.pem").await;
    let (x, x_pem) = issued(&app, &d, &prof, "x", "x.example.com").await;
    let x_leaf = ssl.write("x.pem", x_pem);
    assert_eq!(ssl.name_field(x_leaf, "issuer"), "CN=Old Issuing CA");

    retire(&app, &inter_id, true).await.expect(409, Some("conflict"));
    let r = retire(&app, &inter_id, false).await;
    r.expect(200, None);
    assert_eq!(r.json["state"], "retiring");
    assert_eq!(app.get(&format!("/api/v1/intermediates/{inter_id}"), &app.admin).await.json["state"], "retiring");
    retire(&app, &inter_id, false).await.expect(409, Some("conflict"));
    let r = create_ca(&app, &d.issuer, &app.admin, json!({"name": "Under retiring", "parent_ca_id": inter_id})).await;
    r.expect(409, Some("conflict"));

    // New leaves fall back to the newest active CA: the root.
    let (_, y_pem) = issued(&app, &d, &prof, "y", "y.example.com").await;
    let y_leaf = ssl.write("y.pem", y_pem);
    let at = attime(&app);
    ssl.ok(&["verify", "-attime", &at, "-x509_strict", "-CAfile", root_pem, y_leaf]);
    assert_eq!(ssl.name_field(y_leaf, "issuer"), ssl.name_field(root_pem, "subject"));
    assert_eq!(issuer_chain(&app, &d.issuer).await, ssl.read_text(root_pem));

    // The retiring CA still signs its CRL, with new revocations of what it issued.
    app.post_json(
        &format!("/api/v1/certificates/{x}/revoke"),
        &app.operator,
        &json!({"reason": "cessationOfOperation"}),
    )
    .await
    .expect(200, None);
    let r = app.get(&format!("/.well-known/pki/crl/{inter_id}"), NO_KEY).await;
    r.expect(200, None);
    ssl.write("inter.crl", &r.body);
    assert!(ssl.crl_verifies("inter.crl", inter_pem));
    ssl.ok(&["crl", "-inform", "DER", "-in", "inter.crl", "-out", "inter_crl.pem"]);
    let out = ssl.fails(&[
        "verify",
        "-attime",
        &at,
        "-crl_check",
        "-CRLfile",
        "inter_crl.pem",
        "-CAfile",
        root_pem,
        "-untrusted",
        inter_pem,
        x_leaf,
    ]);
    assert!(out.contains("certificate revoked"), "{out}");

    // A CA with a live child is not retired for good.
    let r = create_ca(&app, &d.issuer, &app.admin, json!({"name": "New Issuing CA"})).await;
    r.expect(201, None);
    let fresh = r.json["id"].as_str().unwrap().to_owned();
    let r = retire(&app, &root_id, false).await;
    r.expect(200, None);
    assert_eq!(r.json["state"], "retiring", "retiring a parent needs nothing of its children");
    let r = retire(&app, &root_id, true).await;
    r.expect(409, Some("conflict"));
    assert!(r.message().contains("child"), "{}", r.message());
    let (_, z_pem) = issued(&app, &d, &prof, "z", "z.example.com").await;
    assert_eq!(ssl.name_field(ssl.write("z.pem", z_pem), "issuer"), "CN=New Issuing CA");

    let r = retire(&app, &inter_id, true).await;
    r.expect(200, None);
    assert_eq!(r.json["state"], "retired");
    retire(&app, &inter_id, false).await.expect(409, Some("conflict"));
    retire(&app, &inter_id, true).await.expect(409, Some("conflict"));
    retire(&app, &root_id, true).await.expect(409, Some("conflict"));
    retire(&app, &fresh, false).await.expect(200, None);
    retire(&app, &fresh, true).await.expect(200, None);
    let r = retire(&app, &root_id, true).await;
    r.expect(200, None);
    assert_eq!(r.json["state"], "retired");
    retire(&app, "ca-missing", false).await.expect(404, Some("not_found"));

    // With every CA retired the issuer issues nothing.
    let orphan = cert_for(&app, &d, Some(&prof), "orphan", "orphan.example.com").await;
    let job = issue(&app, &orphan).await;
    assert_eq!(job["status"], "Pending");
    assert!(job["last_error"].as_str().unwrap().contains("no active certificate authority"), "{job}");
    app.finish().await;
}

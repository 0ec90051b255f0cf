// Headless Chromium against a running certctl-server with demo data (started and seeded by
// crates/server/tests/api/web_browser.rs, which passes everything in the environment).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const URL = process.env.CERTCTL_URL;
const KEY = process.env.CERTCTL_KEY;
const SHOTS = process.env.CERTCTL_SHOTS;
const DEPS = JSON.parse(process.env.CERTCTL_DEPS);

let browser;
let page;
// Every console error and failed request of the whole run; each test checks none happened.
const problems = [];

async function api(path, init = {}) {
  // NODE_EXTRA_CA_CERTS (set by the Rust side) makes Node trust the server's bootstrap CA.
  const r = await fetch(URL + path, {
    ...init,
    headers: { Authorization: `Bearer ${KEY}`, "Content-Type": "application/json", ...(init.headers || {}) },
  });
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return r.json();
}

function noProblems() {
  assert.deepEqual(problems.splice(0), [], "no console errors or failed requests");
}

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1360, height: 900 } });
  page = await context.newPage();
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => {
    // A navigation cancels loads still in flight (ERR_ABORTED); that is the browser, not the server.
    const why = r.failure()?.errorText;
    if (why !== "net::ERR_ABORTED") problems.push(`request failed: ${r.url()} ${why}`);
  });
  page.on("response", (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`); });
  // Revoke asks for confirmation; the flows accept.
  page.on("dialog", (d) => d.accept());
});

after(async () => { await browser?.close(); });

test("sign in with the API key", async () => {
  await page.goto(URL + "/");
  assert.match(page.url(), /\/login$/);
  await page.fill("#api_key", KEY);
  await Promise.all([page.waitForURL(URL + "/"), page.click("button[type=submit]")]);
  assert.equal(await page.textContent("[data-testid=user]"), "admin");
  assert.equal(await page.textContent("[data-testid=role]"), "admin");
  noProblems();
});

test("every sidebar page opens without errors", async () => {
  const links = await page.$$eval("nav.sidebar a[href^='/']", (as) => as.map((a) => a.getAttribute("href")));
  assert.ok(links.length >= 3, `sidebar links: ${links}`);
  for (const href of new Set(links)) {
    const response = await page.goto(URL + href);
    assert.equal(response.status(), 200, href);
    assert.ok(await page.$("main"), `${href} has a main`);
  }
  noProblems();
  if (SHOTS) {
    await page.goto(URL + "/");
    await page.screenshot({ path: `${SHOTS}/dashboard.png`, fullPage: true });
    await page.goto(URL + "/certificates");
    await page.screenshot({ path: `${SHOTS}/certificates.png`, fullPage: true });
  }
});

test("detail pages open from their lists without errors", async () => {
  // The demo data has issuers, jobs and certificates; targets and agents only when a list
  // shows rows (the seeding enrols no agent).
  const visited = [];
  for (const list of ["issuers", "targets", "agents", "jobs", "certificates"]) {
    await page.goto(URL + "/" + list);
    const link = await page.$("table.list tbody tr td a");
    if (!link) continue;
    visited.push(list);
    // The first row's first link leads to that row's detail page.
    const href = await link.getAttribute("href");
    assert.match(href, new RegExp(`^/${list}/[^/]+$`), `${list} links its rows`);
    const response = await page.goto(URL + href);
    assert.equal(response.status(), 200, href);
    const heading = (await page.textContent("header.topbar h1")).trim();
    assert.ok(heading.length > 0, `${href} has a heading`);
  }
  for (const list of ["issuers", "jobs", "certificates"]) assert.ok(visited.includes(list), `${list} has rows`);
  noProblems();
});

test("create a certificate through the form", async () => {
  await page.goto(URL + "/certificates/new");
  await page.fill("#name", "browser-made");
  await page.fill("#common_name", "browser.example.com");
  await page.selectOption("#issuer_id", DEPS.issuer);
  await page.selectOption("#owner_id", DEPS.owner);
  await page.selectOption("#team_id", DEPS.team);
  await page.selectOption("#renewal_policy_id", DEPS.policy);
  await Promise.all([page.waitForURL(/\/certificates\/cert-[^/]+\?notice=Created\./), page.click("form.form button[type=submit]")]);
  assert.match(await page.textContent("main"), /browser\.example\.com/);
  const listed = await api("/api/v1/certificates?per_page=100");
  assert.ok(listed.data.some((c) => c.name === "browser-made"), "the API lists the new certificate");
  noProblems();
});

test("a field error shows next to its field", async () => {
  await page.goto(URL + "/certificates/new");
  await page.fill("#name", "missing-owner");
  await page.fill("#common_name", "missing.example.com");
  await page.selectOption("#issuer_id", DEPS.issuer);
  await page.selectOption("#team_id", DEPS.team);
  await page.selectOption("#renewal_policy_id", DEPS.policy);
  problems.length = 0;
  await page.click("form.form button[type=submit]");
  await page.waitForSelector(".field-error, p.error");
  const text = await page.textContent("main");
  assert.match(text, /owner_id/);
  // The refusal is the page's own 4xx, which is expected here.
  problems.splice(0);
});

test("notification tabs show only their own rows, and Requeue changes only its row", async () => {
  await page.goto(URL + "/notifications");
  const allCount = await page.locator("tr[data-id]").count();
  assert.ok(allCount >= 3, `all tab rows: ${allCount}`);
  await Promise.all([page.waitForURL(/status=dead/), page.click("[data-tab=dead]")]);
  assert.equal(await page.getAttribute("[data-tab=dead]", "aria-selected"), "true");
  const statuses = await page.$$eval("tr[data-id]", (rows) => rows.map((r) => r.dataset.status));
  assert.ok(statuses.length >= 2, `dead rows: ${statuses}`);
  assert.deepEqual([...new Set(statuses)], ["dead"], "the dead-letter tab lists only dead rows");
  const retries = await page.$$eval("tr[data-id] .retries", (s) => s.map((x) => x.textContent));
  assert.equal(retries.length, statuses.length);
  for (const r of retries) assert.match(r, /^Retry \d+\/\d+$/);
  const titles = await page.$$eval("tr[data-id] .last-error", (s) => s.map((x) => x.getAttribute("title")));
  assert.equal(titles.length, statuses.length);
  for (const t of titles) assert.ok(t.length > 0, "the full last_error is in the tooltip");
  if (SHOTS) await page.screenshot({ path: `${SHOTS}/notifications.png`, fullPage: true });

  const before = await api("/api/v1/notifications?per_page=100");
  const target = await page.getAttribute("tr[data-id] [data-requeue]", "data-requeue");
  await Promise.all([page.waitForURL(/notice=Requeued/), page.click(`[data-requeue="${target}"]`)]);
  const remaining = await page.$$eval("tr[data-id]", (rows) => rows.map((r) => r.dataset.id));
  assert.ok(!remaining.includes(target), "the requeued row left the dead-letter tab");
  assert.equal(remaining.length, statuses.length - 1);
  const afterwards = await api("/api/v1/notifications?per_page=100");
  const was = Object.fromEntries(before.data.map((n) => [n.id, n.status]));
  const changed = afterwards.data.filter((n) => n.status !== was[n.id]).map((n) => n.id);
  // The requeued row may already have been retried (and gone dead again); no other row moved.
  assert.ok(changed.every((id) => id === target), `only ${target} changed, not ${changed}`);
  noProblems();
});

test("the target form shows only the selected type's configuration fields", async () => {
  await page.goto(URL + "/targets");
  await page.selectOption("#type", "HAProxy");
  assert.ok(await page.isVisible("fieldset[data-type=HAProxy]"), "the chosen type's fields show");
  assert.ok(await page.isHidden("fieldset[data-type=NGINX]"), "other types' fields are hidden");
  await page.selectOption("#type", "NGINX");
  assert.ok(await page.isVisible("input[name='cfg.NGINX.cert_path']"));
  assert.ok(await page.isHidden("fieldset[data-type=HAProxy]"));
  noProblems();
});

test("sign out ends the session", async () => {
  await Promise.all([page.waitForURL(/\/login$/), page.click("form[action='/logout'] button")]);
  const response = await page.goto(URL + "/certificates");
  assert.match(page.url(), /\/login/);
  assert.equal(response.status(), 200);
  noProblems();
});

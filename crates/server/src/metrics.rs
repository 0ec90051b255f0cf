//! The metrics registry: process counters other code records through [`Metrics`], and the
//! database snapshot (inventory counts) exposed as gauges.
//!
//! The snapshot is computed by one query batch at a time and reused for [`DEFAULT_SNAPSHOT_TTL`],
//! so a scrape costs the same however large the inventory is and however many scrapers there
//! are: a scrape inside the TTL reads memory; the first one after it runs the counts while
//! concurrent scrapes wait for that same result. While scrapes keep coming, a background task
//! refreshes the snapshot before it goes stale, so scrapers never wait on the database.
//!
//! Compatibility series from the Go certctl whose names end in `_total` (`certctl_certificate_total`,
//! `certctl_job_completed_total`, …) are database counts that can go down; they keep their names
//! and the counter type (the text format allows `_total` only on counters), and every one of them
//! also has a correctly typed gauge (`certctl_certificates`, `certctl_jobs{status}`, …).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use time::OffsetDateTime;

use certctl_store::{InventoryCounts, Store, StoreError};

use crate::clock::Clock;

/// How long one database snapshot serves scrapes.
pub const DEFAULT_SNAPSHOT_TTL: Duration = Duration::from_secs(5);
/// The background refresh runs only while someone scraped within this.
const DEMAND_WINDOW: Duration = Duration::from_secs(600);

/// `Content-Type` of the Prometheus text format 0.0.4.
pub const PROMETHEUS_CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
/// `Content-Type` of OpenMetrics text, served when a scraper asks for it.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

const ISSUANCE_BUCKETS: [f64; 14] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];
const HTTP_BUCKETS: [f64; 13] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabels {
    channel_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExpiryAlertLabels {
    threshold_days: u32,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IssuanceLabels {
    issuer_type: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IssuerLabels {
    issuer_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AcmeLabels {
    endpoint: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn issuance_histogram() -> Histogram {
    Histogram::new(ISSUANCE_BUCKETS)
}

fn http_histogram() -> Histogram {
    Histogram::new(HTTP_BUCKETS)
}

/// One database snapshot.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub counts: InventoryCounts,
    /// The application time the counts are for.
    pub taken_at: OffsetDateTime,
    /// How long the counts took.
    pub took: Duration,
    taken: Instant,
}

/// The latest snapshot, shared by the registry's collector and the JSON endpoint.
#[derive(Debug)]
struct SnapshotCell {
    current: RwLock<Option<Arc<Snapshot>>>,
    started: Instant,
}

impl SnapshotCell {
    fn get(&self) -> Option<Arc<Snapshot>> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// A counter named `{name}_total`.
fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(u64::try_from(value).unwrap_or(0));
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn labelled_gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(String, i64)],
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, prometheus_client::metrics::MetricType::Gauge)?;
    for (status, value) in rows {
        let labels = [("status", status.as_str())];
        ConstGauge::new(*value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for SnapshotCell {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        gauge(
            &mut e,
            "certctl_uptime_seconds",
            "Seconds since the server started",
            self.started.elapsed().as_secs() as i64,
        )?;
        let Some(s) = self.get() else { return Ok(()) };
        let c = &s.counts;
        // Compatibility names (Go certctl dashboards and alerts).
        counter(
            &mut e,
            "certctl_certificate",
            "Certificates in the inventory, archived excluded (database count; also certctl_certificates)",
            c.certificates,
        )?;
        gauge(
            &mut e,
            "certctl_certificate_active",
            "Certificates neither expiring within 30 days, expired nor revoked",
            c.active(),
        )?;
        gauge(&mut e, "certctl_certificate_expiring_soon", "Certificates expiring within 30 days", c.expiring)?;
        gauge(
            &mut e,
            "certctl_certificate_expired",
            "Certificates marked expired or past their expiry, revoked excluded",
            c.expired,
        )?;
        gauge(&mut e, "certctl_certificate_revoked", "Revoked certificates", c.revoked)?;
        counter(&mut e, "certctl_agent", "Agents not retired (database count; also certctl_agents)", c.agents)?;
        gauge(&mut e, "certctl_agent_online", "Agents with a heartbeat within the last 5 minutes", c.agents_online)?;
        gauge(&mut e, "certctl_job_pending", "Jobs pending, awaiting a CSR or approval, or running", c.jobs_open())?;
        counter(
            &mut e,
            "certctl_job_completed",
            "Completed jobs (database count; also certctl_jobs{status=\"Completed\"})",
            c.jobs_in("Completed"),
        )?;
        counter(
            &mut e,
            "certctl_job_failed",
            "Failed jobs (database count; also certctl_jobs{status=\"Failed\"})",
            c.jobs_in("Failed"),
        )?;
        counter(
            &mut e,
            "certctl_notification_dead",
            "Notifications in the dead-letter queue (database count; also certctl_notifications{status=\"dead\"})",
            c.notifications_in("dead"),
        )?;
        // The same snapshots as correctly typed gauges.
        gauge(&mut e, "certctl_certificates", "Certificates in the inventory, archived excluded", c.certificates)?;
        gauge(&mut e, "certctl_agents", "Agents not retired", c.agents)?;
        labelled_gauge(&mut e, "certctl_jobs", "Jobs by status", &c.jobs)?;
        labelled_gauge(&mut e, "certctl_notifications", "Notifications by status", &c.notifications)?;
        gauge(
            &mut e,
            "certctl_metrics_snapshot_age_seconds",
            "Age of the database snapshot these gauges come from",
            s.taken.elapsed().as_secs() as i64,
        )?;
        let took = prometheus_client::metrics::gauge::ConstGauge::new(s.took.as_secs_f64());
        took.encode(e.encode_descriptor(
            "certctl_metrics_snapshot_duration_seconds",
            "How long the database snapshot took to compute",
            None,
            took.metric_type(),
        )?)?;
        Ok(())
    }
}

/// The process's metrics; one per server, shared through `AppState::metrics`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    notifications_sent: Family<ChannelLabels, Counter>,
    notifications_failed: Family<ChannelLabels, Counter>,
    notifications_dead_lettered: Family<ChannelLabels, Counter>,
    expiry_alerts: Family<ExpiryAlertLabels, Counter>,
    issuances: Family<IssuanceLabels, Counter>,
    issuance_duration: HistogramFamily<IssuerLabels>,
    deployments: Family<OutcomeLabels, Counter>,
    ocsp_requests: Family<OutcomeLabels, Counter>,
    acme_requests: Family<AcmeLabels, Counter>,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: HistogramFamily<RouteLabels>,
    snapshot: Arc<SnapshotCell>,
    /// Serialises snapshot refreshes: one computes, the others wait for its result.
    refresh: tokio::sync::Mutex<()>,
    ttl_ms: AtomicU64,
    /// Milliseconds after `snapshot.started` of the latest scrape.
    demanded_ms: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let m = Metrics {
            notifications_sent: Family::default(),
            notifications_failed: Family::default(),
            notifications_dead_lettered: Family::default(),
            expiry_alerts: Family::default(),
            issuances: Family::default(),
            issuance_duration: Family::new_with_constructor(issuance_histogram as fn() -> Histogram),
            deployments: Family::default(),
            ocsp_requests: Family::default(),
            acme_requests: Family::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(http_histogram as fn() -> Histogram),
            snapshot: Arc::new(SnapshotCell { current: RwLock::new(None), started: Instant::now() }),
            refresh: tokio::sync::Mutex::new(()),
            ttl_ms: AtomicU64::new(DEFAULT_SNAPSHOT_TTL.as_millis() as u64),
            demanded_ms: AtomicU64::new(0),
            registry: Registry::default(),
        };
        registry.register(
            "certctl_notifications_sent",
            "Notifications delivered, by channel type",
            m.notifications_sent.clone(),
        );
        registry.register(
            "certctl_notifications_failed",
            "Notification delivery attempts that failed, by channel type",
            m.notifications_failed.clone(),
        );
        registry.register(
            "certctl_notifications_dead_lettered",
            "Notifications moved to the dead-letter queue, by channel type",
            m.notifications_dead_lettered.clone(),
        );
        registry.register(
            "certctl_expiry_alerts",
            "Expiry alerts by threshold (days) and result",
            m.expiry_alerts.clone(),
        );
        registry.register("certctl_issuance", "Issuances by issuer type and outcome", m.issuances.clone());
        registry.register(
            "certctl_issuance_duration_seconds",
            "Issuance duration by issuer type",
            m.issuance_duration.clone(),
        );
        registry.register("certctl_deployments", "Deployments by outcome", m.deployments.clone());
        registry.register("certctl_ocsp_requests", "OCSP requests by outcome", m.ocsp_requests.clone());
        registry.register(
            "certctl_acme_requests",
            "ACME server requests by endpoint and outcome",
            m.acme_requests.clone(),
        );
        registry.register(
            "certctl_http_requests",
            "HTTP requests by method, route template and status",
            m.http_requests.clone(),
        );
        registry.register(
            "certctl_http_request_duration_seconds",
            "HTTP request duration by method and route template",
            m.http_duration.clone(),
        );
        registry.register_collector(Box::new(m.snapshot.clone()));
        Metrics { registry, ..m }
    }

    /// A notification was delivered through a channel of `channel_type` (`Email`, `Webhook`, …).
    pub fn notification_sent(&self, channel_type: &str) {
        self.notifications_sent.get_or_create(&ChannelLabels { channel_type: channel_type.to_owned() }).inc();
    }

    /// A delivery attempt through a channel of `channel_type` failed (it may be retried).
    pub fn notification_failed(&self, channel_type: &str) {
        self.notifications_failed.get_or_create(&ChannelLabels { channel_type: channel_type.to_owned() }).inc();
    }

    /// A notification for a channel of `channel_type` became `dead`.
    pub fn notification_dead_lettered(&self, channel_type: &str) {
        self.notifications_dead_lettered.get_or_create(&ChannelLabels { channel_type: channel_type.to_owned() }).inc();
    }

    /// An expiry alert at `threshold_days` ended in `result` (`success`, `failure`, `deduped`).
    pub fn expiry_alert(&self, threshold_days: u32, result: &str) {
        self.expiry_alerts.get_or_create(&ExpiryAlertLabels { threshold_days, result: result.to_owned() }).inc();
    }

    /// An issuance through an issuer of `issuer_type` ended in `outcome` (`success`,
    /// `failure`) after `duration`.
    pub fn issuance(&self, issuer_type: &str, outcome: &str, duration: Duration) {
        let labels = IssuanceLabels { issuer_type: issuer_type.to_owned(), outcome: outcome.to_owned() };
        self.issuances.get_or_create(&labels).inc();
        self.issuance_duration
            .get_or_create(&IssuerLabels { issuer_type: issuer_type.to_owned() })
            .observe(duration.as_secs_f64());
    }

    /// A deployment ended in `outcome` (`success`, `failure`, …).
    pub fn deployment(&self, outcome: &str) {
        self.deployments.get_or_create(&OutcomeLabels { outcome: outcome.to_owned() }).inc();
    }

    /// An OCSP request was answered with `outcome` (`good`, `revoked`, `unknown`, `malformed`, …).
    pub fn ocsp_request(&self, outcome: &str) {
        self.ocsp_requests.get_or_create(&OutcomeLabels { outcome: outcome.to_owned() }).inc();
    }

    /// An ACME server request to `endpoint` (`new_order`, `finalize`, …) ended in `outcome`.
    pub fn acme_request(&self, endpoint: &str, outcome: &str) {
        let labels = AcmeLabels { endpoint: endpoint.to_owned(), outcome: outcome.to_owned() };
        self.acme_requests.get_or_create(&labels).inc();
    }

    /// An HTTP request matched `route` (a route template, never a raw path) and got `status`.
    pub fn http_request(&self, method: &str, route: &str, status: u16, duration: Duration) {
        let (method, route) = (method.to_owned(), route.to_owned());
        self.http_duration
            .get_or_create(&RouteLabels { method: method.clone(), route: route.clone() })
            .observe(duration.as_secs_f64());
        self.http_requests.get_or_create(&HttpLabels { method, route, status }).inc();
    }

    /// How long a snapshot serves; zero computes one for every request (tests).
    pub fn set_snapshot_ttl(&self, ttl: Duration) {
        self.ttl_ms.store(ttl.as_millis() as u64, Ordering::Relaxed);
    }

    fn ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms.load(Ordering::Relaxed))
    }

    fn fresh(&self) -> Option<Arc<Snapshot>> {
        let ttl = self.ttl();
        self.snapshot.get().filter(|s| s.taken.elapsed() < ttl)
    }

    /// The database snapshot, at most one TTL old.
    pub async fn snapshot(&self, store: &Store, now: OffsetDateTime) -> Result<Arc<Snapshot>, StoreError> {
        self.demanded_ms.store(self.snapshot.started.elapsed().as_millis() as u64, Ordering::Relaxed);
        if let Some(s) = self.fresh() {
            return Ok(s);
        }
        let _one = self.refresh.lock().await;
        // Another request may have refreshed it while this one waited.
        if let Some(s) = self.fresh() {
            return Ok(s);
        }
        self.compute(store, now).await
    }

    async fn compute(&self, store: &Store, now: OffsetDateTime) -> Result<Arc<Snapshot>, StoreError> {
        let started = Instant::now();
        let counts = store.inventory_counts(now).await?;
        let snapshot = Arc::new(Snapshot { counts, taken_at: now, took: started.elapsed(), taken: Instant::now() });
        *self.snapshot.current.write().unwrap_or_else(|e| e.into_inner()) = Some(snapshot.clone());
        Ok(snapshot)
    }

    /// Keeps the snapshot fresh while scrapes keep coming, so no scrape waits for the
    /// database; idle when nobody has scraped for ten minutes. Abort the handle to stop it.
    pub fn spawn_refresher(self: Arc<Self>, store: Store, clock: Arc<dyn Clock>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let ttl = self.ttl().max(Duration::from_secs(1));
                tokio::time::sleep(ttl / 2).await;
                let since_demand = self.snapshot.started.elapsed().as_millis() as u64
                    - self.demanded_ms.load(Ordering::Relaxed).min(self.snapshot.started.elapsed().as_millis() as u64);
                let recently_scraped = self.snapshot.get().is_some() && since_demand < DEMAND_WINDOW.as_millis() as u64;
                let due = self.snapshot.get().is_none_or(|s| s.taken.elapsed() >= ttl / 2);
                if recently_scraped && due {
                    let _one = self.refresh.lock().await;
                    if let Err(e) = self.compute(&store, clock.now()).await {
                        tracing::warn!(error = %e, "metrics snapshot refresh failed");
                    }
                }
            }
        })
    }

    /// The registry in the Prometheus text format 0.0.4 (what `promtool check metrics` reads).
    pub fn encode_prometheus(&self) -> String {
        let mut out = String::with_capacity(8192);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }

    /// The registry in OpenMetrics text.
    pub fn encode_openmetrics(&self) -> String {
        let mut out = String::with_capacity(8192);
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Counts every request by method, matched route template and status. Unmatched requests are
/// counted under `unmatched`, so scanners probing random paths cannot grow the label set.
pub async fn track_http(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method: &'static str = match req.method().as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    metrics.http_request(method, &route, response.status().as_u16(), started.elapsed());
    response
}

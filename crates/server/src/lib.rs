//! certctl-server: the REST API, its state, and the process that serves it.

pub mod acme;
pub mod acme_issuer;
pub mod api;
pub mod audit_log;
pub mod auth;
pub mod bootstrap;
pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
pub mod extract;
mod fsutil;
pub mod group_commit;
pub mod heartbeats;
pub mod issuance;
pub mod local_ca;
pub mod metrics;
pub mod notify;
pub mod revocation;
pub mod scheduler;
pub mod secrets;
pub mod seed;
mod telemetry;
pub mod tls;
pub mod ttl_cache;
pub mod web;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::serve::ListenerExt;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use certctl_store::{Store, StoreOptions};

use crate::audit_log::AuditLog;
use crate::auth::Authenticator;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::secrets::SecretBox;

pub use telemetry::init_logging;

/// Everything handlers share; built once at start-up. axum clones the state for every request,
/// so it is one reference count to bump rather than one per shared part.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// The same state with another configuration, for tools and tests that vary one setting.
    pub fn with_config(&self, config: Config) -> Self {
        let mut shared = (*self.0).clone();
        shared.config = Arc::new(config);
        AppState(Arc::new(shared))
    }
}

/// The parts of [`AppState`].
#[derive(Clone)]
pub struct Shared {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub auth: Arc<Authenticator>,
    pub audit_log: AuditLog,
    pub secrets: Arc<SecretBox>,
    pub config: Arc<Config>,
    pub started_at: time::OffsetDateTime,
    /// Issuance, CA and revocation runtime state shared by handlers and the scheduler.
    pub engine: Arc<issuance::Engine>,
    /// Process counters and the cached database snapshot behind the metrics endpoints.
    pub metrics: Arc<metrics::Metrics>,
    /// Notification channels, the outbound HTTP client and the retry ladder.
    pub notify: Arc<notify::Notifications>,
    /// The ACME server's nonce key and validation limits.
    pub acme: Arc<acme::AcmeRuntime>,
}

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Gives every request an ID (the caller's `X-Request-ID` when it is sane, else a new UUID),
/// makes it available to error rendering, and returns it on the response.
async fn request_id(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path());
    let mut response = error::REQUEST_ID.scope(id.clone(), tracing::Instrument::instrument(next.run(req), span)).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), v);
    }
    response
}

/// The complete HTTP application.
pub fn router(state: AppState) -> Router {
    let (api, _) = api::router(state.clone()).split_for_parts();
    let rest: Router = api.with_state(state.clone());
    let protocols: Router = Router::new()
        .route("/.well-known/pki/ocsp/{issuer_id}/{*request}", axum::routing::get(api::authorities::ocsp_get))
        .merge(acme::router(state.clone()))
        .with_state(state.clone());
    rest.clone()
        .merge(protocols)
        .merge(web::router(state.clone(), rest))
        .method_not_allowed_fallback(|| async { error::ApiError::MethodNotAllowed })
        // Inside the router's layers so the matched route template is known.
        .layer(axum::middleware::from_fn_with_state(state.metrics.clone(), metrics::track_http))
        .layer(axum::middleware::from_fn(request_id))
        .layer(TraceLayer::new_for_http())
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::if_not_present(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        ))
}

/// The plain-HTTP application of `CERTCTL_PKI_HTTP_LISTEN`: only `/.well-known/pki/*`.
pub fn pki_router(state: AppState) -> Router {
    let (pki, _) = api::authorities::pki_router().split_for_parts();
    pki.route("/.well-known/pki/ocsp/{issuer_id}/{*request}", axum::routing::get(api::authorities::ocsp_get))
        .fallback(|| async { error::ApiError::NotFound("only /.well-known/pki/* is served here".into()) })
        .with_state(state)
        .layer(axum::middleware::from_fn(request_id))
}

/// Opens and migrates the store named by the configuration.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    if config.database_url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("CERTCTL_DATA_DIR: cannot create {}", config.data_dir.display()))?;
    }
    let options = StoreOptions { max_connections: config.database_max_connections, ..StoreOptions::default() };
    let store = Store::connect(&config.database_url, &options)
        .await
        .with_context(|| format!("CERTCTL_DATABASE_URL: cannot open {}", redact_url(&config.database_url)))?;
    store.migrate().await.context("database migration failed")?;
    Ok(store)
}

/// The database URL without its password, for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Builds the state over an open store; the returned handle ends when the audit writer has
/// drained after every clone of the state is dropped.
pub fn build_state(
    store: Store,
    config: Config,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<(AppState, tokio::task::JoinHandle<()>)> {
    let secrets = SecretBox::load(config.encryption_key.as_deref(), &config.data_dir)?;
    let (audit_log, writer) = AuditLog::start(store.clone(), clock.clone());
    let notifications = notify::Notifications::from_config(&config)?;
    let state = AppState(Arc::new(Shared {
        auth: Arc::new(Authenticator::new(store.clone())),
        started_at: clock.now(),
        store,
        clock,
        audit_log,
        secrets: Arc::new(secrets),
        config: Arc::new(config),
        engine: Arc::new(issuance::Engine::default()),
        metrics: Arc::new(metrics::Metrics::new()),
        notify: Arc::new(notifications),
        acme: Arc::new(acme::AcmeRuntime::default()),
    }));
    Ok((state, writer))
}

/// Runs the server until SIGINT or SIGTERM, then drains connections and the audit queue.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = open_store(&config).await?;
    bootstrap::ensure_admin_key(&store, &config, clock.now()).await?;
    store
        .ensure_default_renewal_policy(&certctl_store::Actor::system(), clock.now())
        .await
        .context("cannot create the default renewal policy")?;
    let tls = tls::load(&config, clock.now())?;
    let rustls_config =
        axum_server::tls_rustls::RustlsConfig::from_pem(tls.cert_pem.into_bytes(), tls.key_pem.into_bytes())
            .await
            .context("the TLS certificate or key is not valid PEM")?;
    let listen = config.listen;
    let external_url = config.external_url.clone();
    let pki_listen = config.pki_http_listen;
    let (state, audit_writer) = build_state(store.clone(), config, clock)?;
    let scheduler = scheduler::Scheduler::start(&state);
    let metrics_refresher = state.metrics.clone().spawn_refresher(store.clone(), state.clock.clone());
    if let Some(addr) = pki_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("CERTCTL_PKI_HTTP_LISTEN: cannot listen on {addr}"))?
            .tap_io(|tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "cannot set TCP_NODELAY");
                }
            });
        let pki = pki_router(state.clone());
        tracing::info!(address = %addr, "PKI HTTP listener (CRL, OCSP) is listening");
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, pki).with_graceful_shutdown(shutdown_signal()).await {
                tracing::error!(error = %e, "PKI HTTP listener failed");
            }
        });
    }
    let app = router(state);

    let handle = axum_server::Handle::new();
    let shutdown = handle.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: draining connections");
        shutdown.graceful_shutdown(Some(Duration::from_secs(30)));
    });
    // TCP_NODELAY: a TLS response leaves in several writes (records for the head and the body),
    // and with Nagle's algorithm the last one waits for the client's delayed ACK, up to 40 ms.
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(rustls_config)
        .acceptor(axum_server::accept::NoDelayAcceptor::new());
    let server = axum_server::Server::bind(listen)
        .acceptor(acceptor)
        .handle(handle.clone())
        .serve(app.into_make_service_with_connect_info::<std::net::SocketAddr>());
    let serving = tokio::spawn(server);
    let bound = handle.listening().await.with_context(|| format!("CERTCTL_LISTEN: cannot listen on {listen}"))?;
    tracing::info!(address = %bound, url = %external_url, startup_ms = started.elapsed().as_millis() as u64, "certctl-server is listening");
    println!("certctl-server listening on https://{bound} (dashboard and API at {external_url})");
    serving.await.context("server task failed")?.context("server failed")?;
    scheduler.shutdown().await;
    metrics_refresher.abort();
    audit_writer.await.ok();
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        tokio::signal::ctrl_c().await.ok();
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_url_password_is_hidden() {
        assert_eq!(super::redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(super::redact_url("sqlite://./data/x.db"), "sqlite://./data/x.db");
    }
}

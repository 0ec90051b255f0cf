//! The one runner for every background loop: renewal scan, job processing, overdue-job
//! reaping, agent liveness, the PKI refresh, notification delivery, the notification retry sweep, the
//! expiry-alert scan, ACME garbage collection and, when enabled, the certificate digest. Each loop
//! runs at start, then on its interval; a run is bounded by a timeout, never overlaps itself, and
//! stops when the server shuts down.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use certctl_store::{Actor, ClaimKind};

use crate::AppState;
use crate::{issuance, notify, revocation};

/// Stops the loops when dropped or when `stop` is called.
pub struct Scheduler {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Scheduler {
    /// Starts every loop.
    pub fn start(s: &AppState) -> Scheduler {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let cfg = s.config.clone();
        spawn_loop(
            &mut tasks,
            stopped.clone(),
            "renewal_scan",
            cfg.renewal_check_interval,
            Duration::from_secs(300),
            None,
            {
                let s = s.clone();
                move || {
                    let s = s.clone();
                    async move { renewal_scan(&s).await }
                }
            },
        );
        spawn_loop(
            &mut tasks,
            stopped.clone(),
            "job_processor",
            cfg.job_process_interval,
            Duration::from_secs(120),
            Some((s.clone(), |s: &AppState| &s.engine.wake)),
            {
                let s = s.clone();
                move || {
                    let s = s.clone();
                    async move { drain_jobs(&s).await }
                }
            },
        );
        spawn_loop(
            &mut tasks,
            stopped.clone(),
            "overdue_jobs",
            Duration::from_secs(60),
            Duration::from_secs(60),
            None,
            {
                let s = s.clone();
                move || {
                    let s = s.clone();
                    async move {
                        if let Err(e) = issuance::reap_overdue_jobs(&s).await {
                            tracing::warn!(error = %e, "overdue job reaping failed");
                        }
                    }
                }
            },
        );
        spawn_loop(
            &mut tasks,
            stopped.clone(),
            "notification_delivery",
            Duration::from_secs(1),
            Duration::from_secs(600),
            Some((s.clone(), |s: &AppState| &s.notify.wake)),
            {
                let s = s.clone();
                move || {
                    let s = s.clone();
                    async move {
                        notify::worker::deliver(&s, ClaimKind::Pending).await;
                    }
                }
            },
        );
        spawn_loop(
            &mut tasks,
            stopped.clone(),
            "notification_retry_sweep",
            cfg.notification_retry_interval,
            Duration::from_secs(600),
            None,
            {
                let s = s.clone();
                move || {
                    let s = s.clone();
                    async move {
                        notify::worker::deliver(&s, ClaimKind::DueRetries).await;
                    }
                }
            },
        );
        spawn_loop(
            &mut tasks,
            stopped.clone(),
            "expiry_alerts",
            cfg.renewal_check_interval,
            Duration::from_secs(300),
            None,
            {
                let s = s.clone();
                move || {
                    let s = s.clone();
                    async move {
                        notify::worker::scan_expiry(&s).await;
                    }
                }
            },
        );
        spawn_loop(
            &mut tasks,
            stopped.clone(),
            "agent_liveness",
            Duration::from_secs(60),
            Duration::from_secs(60),
            None,
            {
                let s = s.clone();
                move || {
                    let s = s.clone();
                    async move { mark_silent_agents(&s).await }
                }
            },
        );
        spawn_loop(
            &mut tasks,
            stopped.clone(),
            "web_sessions",
            Duration::from_secs(600),
            Duration::from_secs(60),
            None,
            {
                let s = s.clone();
                move || {
                    let s = s.clone();
                    async move { prune_web_sessions(&s).await }
                }
            },
        );
        if cfg.digest_enabled {
            let every = cfg.digest_interval;
            spawn_loop(&mut tasks, stopped.clone(), "digest", every, Duration::from_secs(300), None, {
                let s = s.clone();
                move || {
                    let s = s.clone();
                    async move {
                        notify::digest::scheduled(&s, every).await;
                    }
                }
            });
        }
        spawn_loop(&mut tasks, stopped.clone(), "acme_gc", cfg.acme_gc_interval, Duration::from_secs(120), None, {
            let s = s.clone();
            move || {
                let s = s.clone();
                async move {
                    if let Err(e) = crate::acme::gc::collect(&s).await {
                        tracing::warn!(error = %e, "ACME garbage collection failed");
                    }
                }
            }
        });
        spawn_loop(&mut tasks, stopped, "pki_refresh", Duration::from_millis(500), Duration::from_secs(60), None, {
            let s = s.clone();
            move || {
                let s = s.clone();
                async move { pki_refresh(&s).await }
            }
        });
        Scheduler { stop, tasks }
    }

    /// Signals every loop to stop and waits for runs in progress to finish.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Marks agents `Offline` once they have been silent for the window the statistics count an
/// agent online in, so the agent list, the stats and the metrics agree.
async fn mark_silent_agents(s: &AppState) {
    let now = s.clock.now();
    match s.store.mark_silent_agents_offline(now - certctl_store::ONLINE_WINDOW, now).await {
        Ok(ids) if !ids.is_empty() => tracing::info!(agents = ?ids, "agents marked offline after missing heartbeats"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "marking silent agents offline failed"),
    }
}

/// Deletes expired dashboard sessions in bounded batches; a lookup already ignores them, so
/// this only keeps the table small.
async fn prune_web_sessions(s: &AppState) {
    const BATCH: i64 = 1_000;
    for _ in 0..100 {
        match s.store.prune_web_sessions(s.clock.now(), BATCH).await {
            Ok(n) if n < BATCH as u64 => return,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "pruning expired dashboard sessions failed");
                return;
            }
        }
    }
}

/// Picks the `Notify` that wakes a loop ahead of its interval.
type WakeSource = fn(&AppState) -> &tokio::sync::Notify;

fn spawn_loop<F, Fut>(
    tasks: &mut JoinSet<()>,
    mut stopped: watch::Receiver<bool>,
    name: &'static str,
    every: Duration,
    limit: Duration,
    wake: Option<(AppState, WakeSource)>,
    run: F,
) where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tasks.spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let woken = async {
                match &wake {
                    Some((s, source)) => source(s).notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = stopped.changed() => break,
                _ = ticker.tick() => {},
                () = woken => {},
            }
            if *stopped.borrow() {
                break;
            }
            if tokio::time::timeout(limit, run()).await.is_err() {
                tracing::warn!(task = name, limit_s = limit.as_secs(), "scheduled run timed out");
            }
        }
    });
}

/// One renewal scan; public so tests drive it with a manual clock.
pub async fn renewal_scan(s: &AppState) {
    match s.store.renewal_scan(s.clock.now(), &Actor::system()).await {
        Ok(report) => {
            if !report.jobs_created.is_empty() || !report.expired.is_empty() || !report.expiring.is_empty() {
                tracing::info!(
                    jobs = report.jobs_created.len(),
                    expiring = report.expiring.len(),
                    expired = report.expired.len(),
                    "renewal scan"
                );
            }
            if !report.jobs_created.is_empty() {
                s.engine.wake.notify_one();
            }
        }
        Err(e) => tracing::warn!(error = %e, "renewal scan failed"),
    }
}

/// Processes due jobs until none is left (bounded by the run's timeout).
pub async fn drain_jobs(s: &AppState) {
    loop {
        match issuance::process_due_jobs(s).await {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "job processing failed");
                break;
            }
        }
    }
}

async fn pki_refresh(s: &AppState) {
    match s.engine.revocation.refresh_generations(s).await {
        Ok(changed) => {
            revocation::refresh_crls(s, &changed).await;
            revocation::refresh_ocsp(s).await;
        }
        Err(e) => tracing::warn!(error = %e, "cannot read revocation generations"),
    }
}

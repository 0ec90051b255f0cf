//! The machine's load average: the benchmarks share two cores with whatever else runs, so
//! measurements wait for a quiet machine and record the load they ran under.

use std::time::{Duration, Instant};

/// The three load averages as `/proc/loadavg` shows them, or `unknown`.
pub fn averages() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn one_minute() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// Waits until the 1-minute load average is below `limit`, at most `max`; says so when it gives up.
pub async fn wait_below(limit: f64, max: Duration) {
    let started = Instant::now();
    while let Some(load) = one_minute() {
        if load < limit {
            return;
        }
        if started.elapsed() >= max {
            println!("load average still {load:.2} after {} s; measuring anyway", max.as_secs());
            return;
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
}

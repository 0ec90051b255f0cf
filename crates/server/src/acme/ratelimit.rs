//! ACME rate limits held in the database, so every replica counts against the same windows:
//! new accounts per client IP and new orders per account, each per fixed one-hour window. A
//! check is one upsert; an exhausted limit is `rateLimited` with `Retry-After` set to the
//! seconds until the window ends.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use time::{Duration, OffsetDateTime};

use super::problem::{AcmeError, AcmeResult};
use crate::AppState;

/// The length of every rate-limit window.
pub const WINDOW: Duration = Duration::hours(1);

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// New accounts, keyed by client IP.
    NewAccount,
    /// New orders, keyed by account.
    NewOrder,
}

impl Limit {
    fn name(self) -> &'static str {
        match self {
            Limit::NewAccount => "new-account",
            Limit::NewOrder => "new-order",
        }
    }

    fn per_window(self, s: &AppState) -> u32 {
        match self {
            Limit::NewAccount => s.config.acme_rate_limit_accounts_per_hour,
            Limit::NewOrder => s.config.acme_rate_limit_orders_per_hour,
        }
    }
}

/// The peer address of the connection, when the server knows it. Proxies are not trusted:
/// `X-Forwarded-For` is the client's to forge.
#[derive(Debug, Clone)]
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
    }
}

impl ClientIp {
    /// The rate-limit key: the address, or `unknown` when the transport gives none.
    pub fn key(&self) -> String {
        self.0.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    }
}

/// The window `now` falls in: its start and its end.
pub fn window(now: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
    let len = WINDOW.whole_seconds();
    let start = now.unix_timestamp().div_euclid(len) * len;
    let start = OffsetDateTime::from_unix_timestamp(start).unwrap_or(now);
    (start, start + WINDOW)
}

/// Counts one event of `limit` for `key`; refuses it once the window's count exceeds the limit.
pub async fn check(s: &AppState, limit: Limit, key: &str) -> AcmeResult<()> {
    let allowed = limit.per_window(s);
    if allowed == 0 {
        return Ok(());
    }
    let now = s.clock.now();
    let (start, end) = window(now);
    let bucket = format!("{}:{key}", limit.name());
    let hits = s.store.acme_rate_hit(&bucket, start, end).await?;
    if hits <= i64::from(allowed) {
        return Ok(());
    }
    let wait = (end - now).whole_seconds().max(1) as u64;
    Err(AcmeError::RateLimited {
        detail: format!("at most {allowed} {} requests per hour; retry in {wait} s", limit.name()),
        retry_after: wait,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn windows_are_aligned_hours() {
        let (start, end) = window(datetime!(2026-03-01 10:59:59 UTC));
        assert_eq!(start, datetime!(2026-03-01 10:00 UTC));
        assert_eq!(end, datetime!(2026-03-01 11:00 UTC));
    }
}

//! A small map whose entries are trusted for a fixed time: for rows read on every request that
//! change rarely (an issuer's type, a certificate profile). A change made through this replica
//! clears the cache at once; one made through another replica applies here within the TTL.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept at most; when full, the cache starts over rather than tracking recency, since
/// these tables hold tens of rows, not thousands.
const MAX_ENTRIES: usize = 4096;

pub struct TtlCache<V> {
    ttl: Duration,
    entries: Mutex<HashMap<String, (V, Instant)>>,
}

impl<V: Clone> TtlCache<V> {
    pub fn new(ttl: Duration) -> Self {
        TtlCache { ttl, entries: Mutex::new(HashMap::new()) }
    }

    /// The fresh value for `key`, if any.
    pub fn fresh(&self, key: &str) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(key).filter(|(_, at)| at.elapsed() < self.ttl).map(|(v, _)| v.clone())
    }

    pub fn insert(&self, key: &str, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key.to_owned(), (value, Instant::now()));
    }

    /// The fresh value for `key`, or the one `load` reads (and caches) when there is none.
    pub async fn get_or_load<E, F>(&self, key: &str, load: F) -> Result<V, E>
    where
        F: Future<Output = Result<V, E>>,
    {
        if let Some(v) = self.fresh(key) {
            return Ok(v);
        }
        let v = load.await?;
        self.insert(key, v.clone());
        Ok(v)
    }

    pub fn clear(&self) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loads_once_while_fresh_and_again_after_clear_or_expiry() {
        let cache = TtlCache::new(Duration::from_millis(50));
        let mut loads = 0;
        for _ in 0..3 {
            let v: Result<i32, ()> = cache
                .get_or_load("a", async {
                    loads += 1;
                    Ok(7)
                })
                .await;
            assert_eq!(v, Ok(7));
        }
        assert_eq!(loads, 1, "fresh entries are served from memory");
        cache.clear();
        assert_eq!(cache.fresh("a"), None);
        cache.insert("a", 8);
        assert_eq!(cache.fresh("a"), Some(8));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.fresh("a"), None, "an entry past its TTL is not served");
    }

    #[tokio::test]
    async fn a_failed_load_is_not_cached() {
        let cache: TtlCache<i32> = TtlCache::new(Duration::from_secs(5));
        let v: Result<i32, &str> = cache.get_or_load("a", async { Err("down") }).await;
        assert_eq!(v, Err("down"));
        assert_eq!(cache.fresh("a"), None);
    }
}

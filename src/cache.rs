//! What a node keeps in memory of rows every node may change: clients, signing keys, rule sets.
//!
//! An entry is stamped with the generation it was read at (a column of the tenant row, bumped by
//! every write in the write's own transaction) and served only to a request that read the same
//! generation, so a change on one node holds on every node at its next request, with no TTL and
//! no extra query. One type for the three, so they share one set of semantics:
//! - bounded: least recently used entries go first;
//! - keep-newer: a slow load of an older generation never replaces a newer entry;
//! - single flight: concurrent misses of one key wait for one load instead of each querying;
//! - `Arc` values: a hit is a reference count, not a copy.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::metrics::counter::Counter;

/// A hit and a miss counter of one cache, registered by [`crate::metrics::Metrics`].
#[derive(Clone, Debug)]
pub struct CacheCounters {
    /// Names the metrics: `wardstone_{name}_cache_hits` and `…_misses`.
    pub name: &'static str,
    /// Lookups served from memory.
    pub hits: Counter,
    /// Lookups that went to the store.
    pub misses: Counter,
}

/// A bounded LRU of `(generation, Arc<V>)` by key; see the module docs.
pub struct GenerationCache<K: Hash + Eq + Clone, V> {
    entries: Mutex<lru::LruCache<K, (i64, Arc<V>)>>,
    /// The loads under way, one per key.
    flights: Mutex<HashMap<K, Arc<Flight>>>,
    counters: CacheCounters,
}

/// One key's load: the first miss of a generation loads holding `turn`; the misses that queued
/// behind it look again when it is done.
struct Flight {
    turn: tokio::sync::Mutex<()>,
    /// The generation last loaded (or begun) holding `turn`. A miss of that same generation
    /// after it — the key does not exist, the load failed or was cancelled — loads side by side
    /// with the others rather than one after the other: a failing database must not make the
    /// k-th request wait k timeouts. A miss of another generation takes the turn again.
    tried: AtomicI64,
}

impl Default for Flight {
    fn default() -> Self {
        Flight {
            turn: tokio::sync::Mutex::new(()),
            tried: AtomicI64::new(i64::MIN),
        }
    }
}

/// A caller's place on a key's flight; the last one to leave takes the flight off the map, also
/// when its request is dropped mid-load (an abandoned request must not leave an entry behind).
struct Boarding<'a, K: Hash + Eq + Clone> {
    flights: &'a Mutex<HashMap<K, Arc<Flight>>>,
    key: K,
    flight: Arc<Flight>,
}

impl<K: Hash + Eq + Clone> Drop for Boarding<'_, K> {
    fn drop(&mut self) {
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        // The map's reference and ours: nobody else is on this flight.
        if flights
            .get(&self.key)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flight) && Arc::strong_count(f) <= 2)
        {
            flights.remove(&self.key);
        }
    }
}

impl<K: Hash + Eq + Clone, V> GenerationCache<K, V> {
    /// An empty cache of at most `capacity` entries.
    pub fn new(name: &'static str, capacity: usize) -> Self {
        GenerationCache {
            entries: Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(capacity.max(1)).expect("at least one"),
            )),
            flights: Mutex::default(),
            counters: CacheCounters {
                name,
                hits: Counter::default(),
                misses: Counter::default(),
            },
        }
    }

    /// Its counters, for the metrics registry.
    pub fn counters(&self) -> CacheCounters {
        self.counters.clone()
    }

    /// The entry for `key` if it was read at `generation`.
    pub fn get(&self, key: &K, generation: i64) -> Option<Arc<V>> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(key) {
            Some((g, value)) if *g == generation => Some(value.clone()),
            _ => None,
        }
    }

    /// Keeps `value`, read at `generation`, unless a newer generation is already kept.
    pub fn put(&self, key: K, generation: i64, value: Arc<V>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.peek(&key).is_some_and(|(g, _)| *g > generation) {
            return;
        }
        entries.put(key, (generation, value));
    }

    /// The entry for `key` at `generation`, or what `load` finds (kept when it is `Some`:
    /// nothing is remembered of a key that does not exist, so junk keys cannot fill the cache).
    /// Concurrent misses of one key run `load` once when it finds the value; the others then
    /// find its entry.
    pub async fn get_or_try_load<E, F, Fut>(
        &self,
        key: K,
        generation: i64,
        load: F,
    ) -> Result<Option<Arc<V>>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, E>>,
    {
        if let Some(value) = self.get(&key, generation) {
            self.counters.hits.inc();
            return Ok(Some(value));
        }
        let flight = self
            .flights
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        let boarding = Boarding {
            flights: &self.flights,
            key: key.clone(),
            flight,
        };
        let turn = boarding.flight.turn.lock().await;
        if let Some(value) = self.get(&key, generation) {
            self.counters.hits.inc();
            return Ok(Some(value));
        }
        let turn = (boarding.flight.tried.swap(generation, Ordering::AcqRel) != generation)
            .then_some(turn);
        self.counters.misses.inc();
        let result = match load().await {
            Ok(Some(value)) => {
                let value = Arc::new(value);
                self.put(key, generation, value.clone());
                Ok(Some(value))
            }
            other => other.map(|_| None),
        };
        drop(turn);
        drop(boarding);
        result
    }

    /// [`Self::get_or_try_load`] for a `load` that always finds a value.
    pub async fn get_or_load<E, F, Fut>(
        &self,
        key: K,
        generation: i64,
        load: F,
    ) -> Result<Arc<V>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let found = self
            .get_or_try_load(key, generation, || async { load().await.map(Some) })
            .await?;
        Ok(found.expect("a load that always finds a value"))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn an_entry_serves_only_its_generation_and_an_older_load_never_replaces_a_newer() {
        let cache: GenerationCache<&str, &str> = GenerationCache::new("test", 10);
        cache.put("k", 2, Arc::new("two"));
        assert_eq!(cache.get(&"k", 2).as_deref(), Some(&"two"));
        assert!(cache.get(&"k", 3).is_none());
        cache.put("k", 1, Arc::new("one"));
        assert_eq!(cache.get(&"k", 2).as_deref(), Some(&"two"));
        cache.put("k", 3, Arc::new("three"));
        assert!(cache.get(&"k", 2).is_none());
        assert_eq!(cache.get(&"k", 3).as_deref(), Some(&"three"));
    }

    #[tokio::test]
    async fn absent_keys_are_not_kept_and_the_bound_holds() {
        let cache: GenerationCache<u32, u32> = GenerationCache::new("test", 2);
        let none: Result<_, ()> = cache.get_or_try_load(9, 1, || async { Ok(None) }).await;
        assert_eq!(none, Ok(None));
        assert!(cache.entries.lock().unwrap().is_empty());
        for k in 0..3 {
            cache.put(k, 1, Arc::new(k));
        }
        assert!(cache.get(&0, 1).is_none(), "least recently used goes first");
        assert_eq!(cache.get(&2, 1).as_deref(), Some(&2));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_of_one_key_load_once() {
        let cache = Arc::new(GenerationCache::<u32, u32>::new("test", 10));
        let loads = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (cache, loads) = (cache.clone(), loads.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_load(7, 1, || async {
                            loads.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            Ok::<_, ()>(42)
                        })
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(*t.await.unwrap().unwrap(), 42);
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        assert_eq!(cache.counters().misses.get(), 1);
        assert_eq!(cache.counters().hits.get(), 15);
        assert!(cache.flights.lock().unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_load_leaves_nothing_behind_and_failures_do_not_queue() {
        let cache = Arc::new(GenerationCache::<u32, u32>::new("test", 10));
        // A load dropped mid-way (its request went away) takes its flight with it.
        let slow = cache.get_or_load(1, 1, || async {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            Ok::<_, ()>(1)
        });
        let cancelled = tokio::time::timeout(std::time::Duration::from_millis(20), slow).await;
        assert!(cancelled.is_err());
        assert!(cache.flights.lock().unwrap().is_empty());
        // Eight concurrent lookups of a failing key: the first fails holding the turn, the
        // others then load side by side, not one after the other.
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (cache, running, most) = (cache.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_load(2, 1, || async move {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                            running.fetch_sub(1, Ordering::SeqCst);
                            Err::<u32, _>("down")
                        })
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), Err("down"));
        }
        assert!(
            most.load(Ordering::SeqCst) >= 2,
            "failing loads ran one at a time"
        );
        assert!(cache.flights.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_failed_load_is_not_kept_and_the_next_lookup_loads_again() {
        let cache: GenerationCache<u32, u32> = GenerationCache::new("test", 10);
        let failed = cache
            .get_or_load(1, 1, || async { Err::<u32, _>("down") })
            .await;
        assert_eq!(failed, Err("down"));
        let loaded = cache.get_or_load(1, 1, || async { Ok::<_, &str>(5) }).await;
        assert_eq!(loaded.as_deref(), Ok(&5));
    }
}

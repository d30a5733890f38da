//! Metrics for `GET /metrics` (SPEC §11), in the OpenMetrics text format that Prometheus
//! scrapes. Each server has its own registry (no process-wide state: tests run several servers
//! in one process). Every label has a bounded set of values — route templates, status codes,
//! outcomes, grant types — never a user id, a tenant name or a raw path.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    /// The route template (`/t/{tenant}/authorize`), or `unmatched`.
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrantLabels {
    grant_type: &'static str,
}

/// What the rules service counts; owned by [`crate::rules::Rules`], registered by [`Metrics`].
#[derive(Clone)]
pub struct RuleMetrics {
    executions: Family<OutcomeLabels, Counter>,
    duration: Histogram,
    fuel: Histogram,
    cache_hits: Counter,
    cache_misses: Counter,
    skipped: Counter,
    runs: Family<PlaceLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlaceLabels {
    place: &'static str,
}

impl RuleMetrics {
    /// The rules' metrics around the module cache's own hit and miss counters.
    pub fn new(cache_hits: Counter, cache_misses: Counter) -> Self {
        RuleMetrics {
            executions: Family::default(),
            // 1 µs … ~1 s.
            duration: Histogram::new(exponential_buckets(1e-6, 4.0, 11)),
            // 100 … ~10^10 instructions (the largest fuel setting).
            fuel: Histogram::new(exponential_buckets(100.0, 10.0, 9)),
            cache_hits,
            cache_misses,
            skipped: Counter::default(),
            runs: Family::default(),
        }
    }

    /// Counts a trigger run by where it happened: `request_thread`, `executor`, or
    /// `executor_after_overrun` (abandoned on the request's thread — past its bound, or asking
    /// for the network; counted again as `executor` when it ran there).
    pub fn run_place(&self, place: &'static str) {
        self.runs.get_or_create(&PlaceLabels { place }).inc();
    }

    /// Counts a failure of an `on_failure: skip` rule that the login went past.
    pub fn skipped(&self) {
        self.skipped.inc();
    }
    pub fn execution(&self, outcome: &'static str, duration_us: i64, fuel: i64) {
        self.executions
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        self.duration.observe(duration_us.max(0) as f64 / 1e6);
        self.fuel.observe(fuel.max(0) as f64);
    }
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<HttpLabels, Histogram>,
    logins: Family<OutcomeLabels, Counter>,
    tokens: Family<GrantLabels, Counter>,
}

impl Metrics {
    /// A registry with the server's metrics, the rules service's and the caches'.
    pub fn new(rules: &RuleMetrics, caches: &[crate::cache::CacheCounters]) -> Arc<Self> {
        let mut registry = Registry::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        // 0.5 ms … ~8 s.
        let http_duration: Family<HttpLabels, Histogram> =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 15)));
        let logins = Family::<OutcomeLabels, Counter>::default();
        let tokens = Family::<GrantLabels, Counter>::default();
        registry.register(
            "wardstone_http_requests",
            "HTTP requests by route template and status",
            http_requests.clone(),
        );
        registry.register_with_unit(
            "wardstone_http_request_duration",
            "HTTP request duration by route template and status",
            Unit::Seconds,
            http_duration.clone(),
        );
        registry.register(
            "wardstone_logins",
            "Password logins by outcome",
            logins.clone(),
        );
        registry.register(
            "wardstone_tokens_issued",
            "Token responses by grant type",
            tokens.clone(),
        );
        registry.register(
            "wardstone_rule_executions",
            "Rule executions by outcome",
            rules.executions.clone(),
        );
        registry.register(
            "wardstone_rule_runs",
            "Rule and action trigger runs by where they ran",
            rules.runs.clone(),
        );
        registry.register_with_unit(
            "wardstone_rule_execution_duration",
            "Rule execution time",
            Unit::Seconds,
            rules.duration.clone(),
        );
        registry.register(
            "wardstone_rule_fuel_consumed",
            "Instructions (fuel) a rule execution used",
            rules.fuel.clone(),
        );
        registry.register(
            "wardstone_rule_failures_skipped",
            "Failures of on_failure=skip rules that logins went past",
            rules.skipped.clone(),
        );
        registry.register(
            "wardstone_rule_module_cache_hits",
            "Compiled-module lookups served from memory",
            rules.cache_hits.clone(),
        );
        registry.register(
            "wardstone_rule_module_cache_misses",
            "Compiled-module lookups that loaded an artifact or compiled",
            rules.cache_misses.clone(),
        );
        for cache in caches {
            registry.register(
                format!("wardstone_{}_cache_hits", cache.name),
                format!("{} lookups served from this node's memory", cache.name),
                cache.hits.clone(),
            );
            registry.register(
                format!("wardstone_{}_cache_misses", cache.name),
                format!("{} lookups that read the database", cache.name),
                cache.misses.clone(),
            );
        }
        Arc::new(Metrics {
            registry,
            http_requests,
            http_duration,
            logins,
            tokens,
        })
    }

    /// Counts one answered HTTP request.
    pub fn http(&self, route: &str, status: u16, seconds: f64) {
        let labels = HttpLabels {
            route: route.to_string(),
            status,
        };
        self.http_duration.get_or_create(&labels).observe(seconds);
        self.http_requests.get_or_create(&labels).inc();
    }

    /// Counts one password login attempt by outcome.
    pub fn login(&self, outcome: &'static str) {
        self.logins.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// Counts one token response by grant type.
    pub fn token_issued(&self, grant_type: &'static str) {
        self.tokens.get_or_create(&GrantLabels { grant_type }).inc();
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

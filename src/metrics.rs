//! Prometheus metrics, one registry per `App` (`prometheus-client`: no global state, so an
//! embedding product and its tests keep their own). Counters and histograms are updated where
//! things happen; what is a state rather than an event (the outbox backlog, the database pool)
//! is read when `/metrics` is scraped.
//!
//! No label carries a user id, an email address, an IP address or a credential: labels are
//! operation ids, methods, status classes, outcomes, reasons and action names, all from fixed
//! sets in the code.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The OpenAPI `operationId`, or `other` (docs, health, unknown paths).
    pub operation: String,
    pub method: String,
    /// `2xx`, `4xx`, ...
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LoginLabels {
    /// `success`, `failure`, `blocked` or `mfa_required`.
    pub outcome: &'static str,
    /// As in the audit trail (`wrong_password`, `invalid_code`, ...); empty on success.
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to about 16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Every metric Tessera records, and the registry that renders them.
pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: Family<OperationLabels, Histogram, fn() -> Histogram>,
    pub logins: Family<LoginLabels, Counter>,
    pub registrations: Counter,
    pub rate_limit_refusals: Family<ActionLabels, Counter>,
    pub outbox_pending: Gauge,
    pub outbox_oldest_age: Gauge,
    pub outbox_deliveries: Counter,
    pub outbox_failed_attempts: Counter,
    pub hashes_in_flight: Gauge,
    pub hashes_waiting: Gauge,
    pub hash_wait: Histogram,
    pub db_pool_size: Gauge,
    pub db_pool_idle: Gauge,
    pub db_acquire_wait: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub cache_hits: Counter,
    pub cache_misses: Counter,
    pub cache_evictions: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut root = Registry::default();
        let registry = root.sub_registry_with_prefix("tessera");
        let metrics = Self {
            registry: Registry::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            logins: Family::default(),
            registrations: Counter::default(),
            rate_limit_refusals: Family::default(),
            outbox_pending: Gauge::default(),
            outbox_oldest_age: Gauge::default(),
            outbox_deliveries: Counter::default(),
            outbox_failed_attempts: Counter::default(),
            hashes_in_flight: Gauge::default(),
            hashes_waiting: Gauge::default(),
            hash_wait: latency_histogram(),
            db_pool_size: Gauge::default(),
            db_pool_idle: Gauge::default(),
            db_acquire_wait: Gauge::default(),
            cache_hits: Counter::default(),
            cache_misses: Counter::default(),
            cache_evictions: Counter::default(),
        };
        let m = &metrics;
        registry.register(
            "http_requests",
            "HTTP requests by operation, method and status class",
            m.http_requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "HTTP request latency by operation",
            Unit::Seconds,
            m.http_duration.clone(),
        );
        registry.register(
            "logins",
            "Login attempts by outcome and failure reason",
            m.logins.clone(),
        );
        registry.register("registrations", "Accounts created", m.registrations.clone());
        registry.register(
            "rate_limit_refusals",
            "Requests refused by a rate limit, by action",
            m.rate_limit_refusals.clone(),
        );
        registry.register(
            "outbox_pending",
            "Mail messages waiting to be delivered",
            m.outbox_pending.clone(),
        );
        registry.register_with_unit(
            "outbox_oldest_pending_age",
            "Age of the oldest undelivered mail message",
            Unit::Seconds,
            m.outbox_oldest_age.clone(),
        );
        registry.register(
            "outbox_deliveries",
            "Mail messages delivered",
            m.outbox_deliveries.clone(),
        );
        registry.register(
            "outbox_failed_attempts",
            "Mail delivery attempts that failed (each retried or given up)",
            m.outbox_failed_attempts.clone(),
        );
        registry.register(
            "password_hashes_in_flight",
            "Password hashes being computed",
            m.hashes_in_flight.clone(),
        );
        registry.register(
            "password_hashes_waiting",
            "Password hashes waiting for a permit (password_hashing.max_concurrent)",
            m.hashes_waiting.clone(),
        );
        registry.register_with_unit(
            "password_hash_wait",
            "Time a password hash waited for its permit",
            Unit::Seconds,
            m.hash_wait.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Connections open in the database pool",
            m.db_pool_size.clone(),
        );
        registry.register(
            "db_pool_idle_connections",
            "Idle connections in the database pool",
            m.db_pool_idle.clone(),
        );
        registry.register_with_unit(
            "db_pool_acquire_wait",
            "Time to get a connection from the pool, measured at the scrape",
            Unit::Seconds,
            m.db_acquire_wait.clone(),
        );
        registry.register(
            "credential_cache_hits",
            "Credentials served from the instance's cache",
            m.cache_hits.clone(),
        );
        registry.register(
            "credential_cache_misses",
            "Credentials read from the database",
            m.cache_misses.clone(),
        );
        registry.register(
            "credential_cache_evictions",
            "Cached credentials evicted for room (not expiry or revocation)",
            m.cache_evictions.clone(),
        );
        registry.register(
            "build",
            "The running build",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        Self {
            registry: root,
            ..metrics
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    pub fn record_login(&self, outcome: &'static str, reason: Option<&'static str>) {
        self.logins
            .get_or_create(&LoginLabels {
                outcome,
                reason: reason.unwrap_or_default(),
            })
            .inc();
    }

    pub fn observe_request(&self, operation: &str, method: &str, status: u16, elapsed: Duration) {
        let status = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.http_requests
            .get_or_create(&HttpLabels {
                operation: operation.to_owned(),
                method: method.to_owned(),
                status,
            })
            .inc();
        self.http_duration
            .get_or_create(&OperationLabels {
                operation: operation.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }
}

/// Shared by everything that records.
pub type SharedMetrics = Arc<Metrics>;

//! Time, passed in. Protocol logic never reads the wall clock itself so expiry is testable.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Seconds since the Unix epoch.
pub type UnixTime = i64;

/// A source of the current time.
#[derive(Clone)]
pub enum Clock {
    /// The operating system's clock.
    System,
    /// A clock that tests move by hand.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// A manual clock starting at `start`.
    pub fn manual(start: UnixTime) -> Self {
        Clock::Manual(Arc::new(AtomicI64::new(start)))
    }

    /// The current time in seconds.
    pub fn now(&self) -> UnixTime {
        match self {
            #[allow(clippy::disallowed_methods)] // the one place that may read the wall clock
            Clock::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0),
            Clock::Manual(t) => t.load(Ordering::SeqCst),
        }
    }

    /// The current time in microseconds (a rule's `Date`; a manual clock has whole seconds).
    pub fn now_micros(&self) -> i64 {
        match self {
            #[allow(clippy::disallowed_methods)] // the one place that may read the wall clock
            Clock::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros() as i64)
                .unwrap_or(0),
            Clock::Manual(t) => t.load(Ordering::SeqCst) * 1_000_000,
        }
    }

    /// Moves a manual clock forward; does nothing to the system clock.
    pub fn advance(&self, seconds: i64) {
        if let Clock::Manual(t) = self {
            t.fetch_add(seconds, Ordering::SeqCst);
        }
    }
}

/// A Unix time as RFC 3339 (`2026-12-04T09:30:00Z`), as Auth0's APIs show times.
pub fn rfc3339(t: UnixTime) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

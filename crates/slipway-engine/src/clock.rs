//! Where the engine reads "now": the system clock in production, a manual clock in simulations.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use slipway_core::time::{Span, Time};

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Time;
}

/// Wall-clock time.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Time {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Time(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
    }
}

/// A clock that moves only when told to. Clones share the same time.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    millis: Arc<AtomicI64>,
}

impl ManualClock {
    pub fn starting_at(time: Time) -> Self {
        Self {
            millis: Arc::new(AtomicI64::new(time.as_millis())),
        }
    }

    pub fn advance(&self, span: Span) {
        let ms = i64::try_from(span.as_millis()).unwrap_or(i64::MAX);
        self.millis.fetch_add(ms, Ordering::SeqCst);
    }

    /// Moves the clock to `time` if that is later than now.
    pub fn advance_to(&self, time: Time) {
        self.millis.fetch_max(time.as_millis(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Time {
        Time(self.millis.load(Ordering::SeqCst))
    }
}

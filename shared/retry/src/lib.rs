//! The one retry policy for every loop that waits for something to come back (the database,
//! the global, the zone, the KDS CA): capped exponential backoff, optionally jittered so that
//! many clients cut off together do not return together, and reset by a caller whose
//! connection lasted. It owns only timing: what to retry, and what to log, stay with the
//! caller.
#![forbid(unsafe_code)]

use std::time::Duration;

use tokio::sync::watch;

/// Delays of one retry loop.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    /// Each delay is the nominal one times a factor drawn from this range.
    jitter: (f64, f64),
    nominal: Duration,
}

impl Backoff {
    /// Starts at `first` and doubles up to `max`, without jitter.
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            jitter: (1.0, 1.0),
            nominal: first,
        }
    }

    /// Each delay becomes the nominal one times a factor in `[low, high)`.
    pub fn jittered(mut self, low: f64, high: f64) -> Backoff {
        self.jitter = (low.max(0.0), high.max(low.max(0.0)));
        self
    }

    /// The delay to wait now; the next one is twice as long, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let (low, high) = self.jitter;
        let factor = low + (high - low) * fastrand::f64();
        let delay = self.nominal.mul_f64(factor);
        self.nominal = self.nominal.saturating_mul(2).min(self.max);
        delay
    }

    /// The nominal delay the next [`Backoff::next_delay`] is based on.
    pub fn upcoming(&self) -> Duration {
        self.nominal
    }

    /// Back to the first delay, e.g. after a connection that lasted.
    pub fn reset(&mut self) {
        self.nominal = self.first;
    }

    /// Sleeps for the next delay; false when `stop` turned true first.
    pub async fn wait(&mut self, stop: &mut watch::Receiver<bool>) -> bool {
        let delay = self.next_delay();
        tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = stop.wait_for(|s| *s) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(100 * MS, 450 * MS);
        let delays: Vec<Duration> = (0..5).map(|_| b.next_delay()).collect();
        assert_eq!(delays, [100 * MS, 200 * MS, 400 * MS, 450 * MS, 450 * MS]);
        b.reset();
        assert_eq!(b.next_delay(), 100 * MS);
    }

    #[test]
    fn jitter_stays_in_its_range_and_varies() {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let mut b = Backoff::new(1000 * MS, 1000 * MS).jittered(0.5, 1.5);
            let d = b.next_delay();
            assert!(d >= 500 * MS && d < 1500 * MS, "{d:?}");
            seen.insert(d.as_millis());
        }
        assert!(seen.len() > 10, "jitter spreads the delays: {seen:?}");
    }

    // Real clock: tokio's paused clock needs its `test-util` feature, which would give the
    // workspace's tests a different tokio from its binaries and build everything twice.
    #[tokio::test]
    async fn wait_sleeps_the_delay_or_stops_early() {
        let (tx, mut stop) = watch::channel(false);
        let mut short = Backoff::new(30 * MS, 30 * MS);
        let started = std::time::Instant::now();
        assert!(short.wait(&mut stop).await);
        assert!(started.elapsed() >= 30 * MS, "{:?}", started.elapsed());

        let mut long = Backoff::new(Duration::from_secs(600), Duration::from_secs(600));
        let waiting = tokio::spawn(async move { long.wait(&mut stop).await });
        tokio::task::yield_now().await;
        tx.send(true).expect("send");
        let stopped = tokio::time::timeout(Duration::from_secs(60), waiting)
            .await
            .expect("stopping ends the wait long before the 600 s delay");
        assert!(!stopped.expect("join"), "reported as stopped");
    }
}

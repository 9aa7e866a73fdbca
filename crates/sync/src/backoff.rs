//! Reconnect delays (difference D6): exponential with jitter instead of Dikastes's fixed 1 s.

use std::time::Duration;

use rand::Rng;

/// How a delay is drawn from the current exponential step `base`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Jitter {
    /// Uniform in `[base/2, base]`: spreads clients out and still grows with every failure.
    #[default]
    Equal,
    /// Uniform in `[0, base]`: the widest spread.
    Full,
}

/// Exponential backoff: the step starts at `initial`, doubles after every delay handed out and
/// stops at `max`; [`reset`](Backoff::reset) once a stream has reached InSync.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    jitter: Jitter,
    step: Duration,
}

impl Backoff {
    /// The D6 defaults: 50 ms, doubling, capped at 5 s.
    pub const DEFAULT_INITIAL: Duration = Duration::from_millis(50);
    /// The D6 cap: a wait never exceeds 5 s.
    pub const DEFAULT_MAX: Duration = Duration::from_secs(5);

    /// Backoff from `initial` up to `max` (`max` below `initial` is raised to it), equal jitter.
    pub fn new(initial: Duration, max: Duration) -> Self {
        let max = max.max(initial);
        Backoff { initial, max, jitter: Jitter::default(), step: initial }
    }

    /// The same backoff with another jitter.
    pub fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The step the next delay is drawn from.
    pub fn step(&self) -> Duration {
        self.step
    }

    /// The next delay; never more than `max`.
    pub fn next_delay(&mut self, rng: &mut impl Rng) -> Duration {
        let base = self.step;
        self.step = base.saturating_mul(2).min(self.max);
        let nanos = u64::try_from(base.as_nanos()).unwrap_or(u64::MAX);
        let nanos = match self.jitter {
            Jitter::Equal => nanos - nanos / 2 + rng.random_range(0..=nanos / 2),
            Jitter::Full => rng.random_range(0..=nanos),
        };
        Duration::from_nanos(nanos)
    }

    /// Back to the initial step (a stream reached InSync, so the server is healthy).
    pub fn reset(&mut self) {
        self.step = self.initial;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Self::DEFAULT_INITIAL, Self::DEFAULT_MAX)
    }
}

#[cfg(test)]
mod tests;

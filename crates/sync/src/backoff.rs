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
mod tests {
    use rand::{SeedableRng, rngs::StdRng};

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    #[test]
    fn equal_jitter_stays_within_half_step_and_step() {
        let mut rng = rng();
        let mut b = Backoff::default();
        let mut step = 50 * MS;
        for _ in 0..20 {
            let d = b.next_delay(&mut rng);
            assert!(d >= step / 2 && d <= step, "{d:?} outside [{:?}, {step:?}]", step / 2);
            step = (step * 2).min(5000 * MS);
        }
    }

    #[test]
    fn full_jitter_stays_within_zero_and_step() {
        let mut rng = rng();
        let mut b = Backoff::default().with_jitter(Jitter::Full);
        let mut step = 50 * MS;
        for _ in 0..20 {
            let d = b.next_delay(&mut rng);
            assert!(d <= step, "{d:?} above {step:?}");
            step = (step * 2).min(5000 * MS);
        }
    }

    #[test]
    fn step_doubles_from_50ms_and_caps_at_5s() {
        let mut rng = rng();
        let mut b = Backoff::default();
        let mut steps = vec![];
        for _ in 0..10 {
            steps.push(b.step());
            b.next_delay(&mut rng);
        }
        let ms: Vec<u128> = steps.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [50, 100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    }

    #[test]
    fn delays_never_exceed_cap_even_after_many_failures() {
        let mut rng = rng();
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(5)).with_jitter(Jitter::Full);
        for _ in 0..200 {
            assert!(b.next_delay(&mut rng) <= Duration::from_secs(5));
        }
        let mut huge = Backoff::new(Duration::from_secs(1), Duration::MAX);
        for _ in 0..200 {
            huge.next_delay(&mut rng);
        }
        assert_eq!(huge.step(), Duration::MAX);
    }

    #[test]
    fn equal_jitter_delays_grow_until_the_cap() {
        let mut rng = rng();
        let mut b = Backoff::default();
        let delays: Vec<Duration> = (0..8).map(|_| b.next_delay(&mut rng)).collect();
        // Each lower bound (step/2) is the previous upper bound (step), so delays never shrink.
        // (until the step reaches the cap: 3200 ms doubles to 5000, not 6400).
        for w in delays[..7].windows(2) {
            assert!(w[1] >= w[0], "{delays:?}");
        }
        assert!(delays[7] >= 2500 * MS);
    }

    #[test]
    fn reset_returns_to_initial() {
        let mut rng = rng();
        let mut b = Backoff::default();
        for _ in 0..6 {
            b.next_delay(&mut rng);
        }
        assert!(b.step() > 50 * MS);
        b.reset();
        assert_eq!(b.step(), 50 * MS);
        assert!(b.next_delay(&mut rng) <= 50 * MS);
    }

    #[test]
    fn max_below_initial_is_raised() {
        let mut b = Backoff::new(100 * MS, 10 * MS);
        b.next_delay(&mut rng());
        assert_eq!(b.step(), 100 * MS);
    }

    #[test]
    fn jitter_spreads_delays() {
        for jitter in [Jitter::Equal, Jitter::Full] {
            let mut rng = rng();
            let mut delays: Vec<Duration> = (0..200)
                .map(|_| Backoff::new(Duration::from_secs(1), Duration::from_secs(1)).with_jitter(jitter))
                .map(|mut b| b.next_delay(&mut rng))
                .collect();
            delays.sort();
            delays.dedup();
            assert!(delays.len() > 150, "{jitter:?}: only {} distinct delays of 200", delays.len());
            let (lo, hi) = (delays[0], delays[delays.len() - 1]);
            let width = if jitter == Jitter::Equal { 500 * MS } else { 1000 * MS };
            // 200 uniform draws cover at least 80% of the interval.
            assert!(hi - lo >= width * 8 / 10, "{jitter:?}: spread {lo:?}..{hi:?}");
        }
    }
}

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

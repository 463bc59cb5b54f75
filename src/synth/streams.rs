//! Satisfaction streams with known change points, for `tideline bench detect` and tests.
//!
//! A store receives reviews at irregular times (a Poisson process with more on weekends).
//! Each review draws a latent satisfaction `u = level + N(0, 1)`; most reviewers turn it
//! into stars through an ordered probit, a share of "extreme" reviewers give 1 or 5 only
//! (the J-shape of real review sites); the text sentiment follows `u` with noise. Each
//! scenario moves the level or the extreme share at known times, and the truth records
//! where, which way, and the expected mean stars on each side.

use super::Rng;
use crate::pipeline::detect::{Direction, Point};

const DAY: f64 = 86_400.0;
/// Ordered-probit cut points between 1|2, 2|3, 3|4 and 4|5 stars.
const CUTS: [f64; 4] = [-1.5, -0.8, -0.1, 0.7];
/// Extreme reviewers give 5 stars above this latent value and 1 star below.
const EXTREME_CUT: f64 = 0.3;
const BASE_EXTREME: f64 = 0.12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    None,
    ShiftDown,
    ShiftUp,
    DriftDown,
    Polarise,
    Outlier,
    BadTicketShift,
    DipRecover,
}

impl Scenario {
    pub const ALL: [Scenario; 8] = [
        Scenario::None,
        Scenario::ShiftDown,
        Scenario::ShiftUp,
        Scenario::DriftDown,
        Scenario::Polarise,
        Scenario::Outlier,
        Scenario::BadTicketShift,
        Scenario::DipRecover,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::None => "none",
            Scenario::ShiftDown => "shift_down",
            Scenario::ShiftUp => "shift_up",
            Scenario::DriftDown => "drift_down",
            Scenario::Polarise => "polarise",
            Scenario::Outlier => "outlier",
            Scenario::BadTicketShift => "bad_ticket_shift",
            Scenario::DipRecover => "dip_recover",
        }
    }

    /// Whether the scenario has no real change (any detection is a false alarm).
    pub fn is_quiet(self) -> bool {
        matches!(self, Scenario::None | Scenario::Outlier)
    }
}

/// A change the generator planted.
#[derive(Debug, Clone, PartialEq)]
pub struct TrueChange {
    /// Index of the first review after the change; a drift has three (start, middle, end:
    /// three "annotators").
    pub index: usize,
    pub direction: Direction,
    /// Expected mean stars before and after (from the model, not the sample); for a
    /// polarisation the means barely move, the shares do.
    pub stars_before: f64,
    pub stars_after: f64,
    /// Whether a step size is well defined here (not for drifts).
    pub step: bool,
}

#[derive(Debug, Clone)]
pub struct Stream {
    pub name: String,
    pub scenario: Scenario,
    pub stars: Vec<Point>,
    pub sentiment: Vec<Point>,
    /// Per annotator, the true change indexes (TCPD layout).
    pub annotations: Vec<Vec<usize>>,
    pub changes: Vec<TrueChange>,
    /// The escalated ticket that preceded the drop (bad_ticket_shift only): its time.
    pub ticket_t: Option<f64>,
}

fn uniform(r: &mut Rng) -> f64 {
    (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn normal(r: &mut Rng) -> f64 {
    let u1 = uniform(r).max(1e-300);
    let u2 = uniform(r);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Standard normal CDF (Abramowitz-Stegun 7.1.26 erf, error < 1.5e-7).
fn phi(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-z * z).exp();
    if x >= 0.0 {
        0.5 * (1.0 + y)
    } else {
        0.5 * (1.0 - y)
    }
}

/// Expected mean stars at a latent level and extreme share.
pub fn expected_stars(level: f64, extreme: f64) -> f64 {
    let mut probit = 0.0;
    let mut below = 0.0;
    for (k, c) in CUTS.iter().enumerate() {
        let p = phi(c - level);
        probit += (k as f64 + 1.0) * (p - below);
        below = p;
    }
    probit += 5.0 * (1.0 - below);
    let p5 = 1.0 - phi(EXTREME_CUT - level);
    let ext = 1.0 + 4.0 * p5;
    (1.0 - extreme) * probit + extreme * ext
}

fn stars_of(u: f64, extreme: bool) -> f64 {
    if extreme {
        return if u > EXTREME_CUT { 5.0 } else { 1.0 };
    }
    (CUTS.iter().filter(|&&c| u > c).count() + 1) as f64
}

/// One store's year of reviews under `scenario`.
pub fn store_stream(seed: u64, id: usize, scenario: Scenario) -> Stream {
    let mut r = Rng::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (id as u64 + 1));
    for _ in 0..4 {
        r.next_u64();
    }
    // Reviews per day: log-uniform between 0.7 and 4.
    let rate = (0.7f64.ln() + uniform(&mut r) * (4.0f64.ln() - 0.7f64.ln())).exp();
    let base = 0.3 + 0.9 * uniform(&mut r);
    let year = 365.0 * DAY;
    let tc = year * (0.3 + 0.4 * uniform(&mut r));
    let size = 0.6 + 0.6 * uniform(&mut r);
    let ramp = DAY * (30.0 + 30.0 * uniform(&mut r));
    let dip_len = DAY * (30.0 + 40.0 * uniform(&mut r));
    let level_at = |t: f64| -> f64 {
        match scenario {
            Scenario::ShiftDown | Scenario::BadTicketShift if t >= tc => base - size,
            Scenario::ShiftUp if t >= tc => base + size,
            Scenario::DriftDown if t >= tc => base - size * ((t - tc) / ramp).min(1.0),
            Scenario::DipRecover if t >= tc && t < tc + dip_len => base - size,
            _ => base,
        }
    };
    let extreme_at = |t: f64| {
        if scenario == Scenario::Polarise && t >= tc {
            0.45
        } else {
            BASE_EXTREME
        }
    };
    // Poisson arrivals with weekend modulation, by thinning at the peak rate.
    let peak = rate * 1.4 / DAY;
    let mut t = 0.0;
    let mut stars = Vec::new();
    let mut sentiment = Vec::new();
    let mut outlier_done = false;
    loop {
        t += -uniform(&mut r).max(1e-300).ln() / peak;
        if t >= year {
            break;
        }
        let weekday = ((t / DAY) as u64) % 7;
        let m = if weekday >= 5 { 1.4 } else { 0.84 };
        if uniform(&mut r) * 1.4 > m {
            continue;
        }
        let (value, tone) = if scenario == Scenario::Outlier && !outlier_done && t >= tc {
            outlier_done = true;
            (1.0, -0.95)
        } else {
            let u = level_at(t) + normal(&mut r);
            let ext = uniform(&mut r) < extreme_at(t);
            let tone = (0.7 * u + 0.35 * normal(&mut r)).tanh();
            (stars_of(u, ext), tone)
        };
        stars.push(Point { t, value });
        sentiment.push(Point { t, value: tone });
    }
    let index_at = |time: f64| {
        stars
            .iter()
            .position(|p| p.t >= time)
            .unwrap_or(stars.len())
    };
    let e0 = expected_stars(base, BASE_EXTREME);
    let mut changes = Vec::new();
    let mut annotations = vec![Vec::new()];
    let one = |at: f64, level: f64, extreme: f64, from: f64, step: bool| {
        let after = expected_stars(level, extreme);
        let direction = if (after - from).abs() < 0.1 {
            Direction::Change
        } else if after > from {
            Direction::Up
        } else {
            Direction::Down
        };
        TrueChange {
            index: index_at(at),
            direction,
            stars_before: from,
            stars_after: after,
            step,
        }
    };
    match scenario {
        Scenario::None | Scenario::Outlier => {}
        Scenario::ShiftDown | Scenario::BadTicketShift => {
            changes.push(one(tc, base - size, BASE_EXTREME, e0, true))
        }
        Scenario::ShiftUp => changes.push(one(tc, base + size, BASE_EXTREME, e0, true)),
        // Polarisation is a change of shape: more ones and fives, the mean moves little.
        // It has no direction to get right.
        Scenario::Polarise => changes.push(TrueChange {
            direction: Direction::Change,
            ..one(tc, base, 0.45, e0, false)
        }),
        Scenario::DipRecover => {
            let low = expected_stars(base - size, BASE_EXTREME);
            changes.push(one(tc, base - size, BASE_EXTREME, e0, true));
            changes.push(one(tc + dip_len, base, BASE_EXTREME, low, true));
        }
        Scenario::DriftDown => {
            let end = one(tc + ramp, base - size, BASE_EXTREME, e0, false);
            let mid = index_at(tc + ramp / 2.0);
            annotations = vec![vec![index_at(tc)], vec![mid], vec![end.index]];
            changes.push(TrueChange { index: mid, ..end });
        }
    }
    if scenario != Scenario::DriftDown {
        annotations = vec![changes.iter().map(|c| c.index).collect()];
    }
    Stream {
        name: format!("store_{id:03}_{}", scenario.as_str()),
        scenario,
        stars,
        sentiment,
        annotations,
        changes,
        ticket_t: (scenario == Scenario::BadTicketShift).then_some(tc - DAY),
    }
}

/// `per_scenario` stores of every scenario.
pub fn stores(seed: u64, per_scenario: usize) -> Vec<Stream> {
    let mut out = Vec::new();
    for (k, s) in Scenario::ALL.into_iter().enumerate() {
        for i in 0..per_scenario {
            out.push(store_stream(seed, k * per_scenario + i, s));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_deterministic_and_shaped_as_planned() {
        let a = store_stream(7, 3, Scenario::ShiftDown);
        let b = store_stream(7, 3, Scenario::ShiftDown);
        assert_eq!(a.stars, b.stars);
        assert!(a.stars.len() > 200);
        assert!(a.stars.windows(2).all(|w| w[0].t <= w[1].t));
        let c = &a.changes[0];
        assert_eq!(c.direction, Direction::Down);
        assert!(c.stars_before - c.stars_after > 0.3);
        assert!((expected_stars(0.0, 0.0) - expected_stars(0.0, 0.0)).abs() < 1e-12);
        assert!(expected_stars(1.0, 0.12) > expected_stars(0.0, 0.12));
    }
}

//! Bayesian online change-point detection (Adams & MacKay 2007), in log space.
//!
//! Differences from the textbook form, each for a reason given in
//! `../shared/reference/changepoint.md`:
//! - the hazard depends on the time since the previous observation,
//!   `H(Δt) = 1 - exp(-Δt / τ)`, so a store with ten reviews a day and a customer with six
//!   interactions a year share one notion of "how often satisfaction changes";
//! - the observation that opens a new run belongs to that run (its predictive under the
//!   prior), so a run's `start` is directly the index of the first observation after a
//!   change;
//! - at most `max_runs` run lengths are tracked: runs below `PRUNE_LOG_P` are dropped and,
//!   past the cap, the least likely run joins its older neighbour (its mass kept; the
//!   oldest run and the newest few are never merged away), which bounds memory and time
//!   per observation without losing a likely change however long ago it began.
//!
//! The state is plain data (`serde`), so a daemon stores it per series and a restart
//! continues where it stopped instead of re-reading history.

use serde::{Deserialize, Serialize};

/// Runs whose log posterior falls below this are dropped (e^-20 ≈ 2e-9).
const PRUNE_LOG_P: f64 = -20.0;
/// The newest runs are never merged away at the cap.
const YOUNG_RUNS: usize = 16;
/// Counts up to this are looked up instead of computing a logarithm.
const LN_TABLE: usize = 4096;

/// The conjugate observation model of a series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Model {
    /// Dirichlet-categorical over `alpha.len()` categories (stars, NPS buckets); with two
    /// categories this is the Beta-Bernoulli model for outcomes.
    Categorical { alpha: Vec<f64> },
    /// Normal-Gamma on a real value (sentiment): Student-t predictive, which absorbs a
    /// single outlier instead of starting a run for it.
    NormalGamma {
        mu: f64,
        kappa: f64,
        alpha: f64,
        beta: f64,
    },
}

/// One observation as the detector sees it: a category or a real value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Obs {
    Category(u8),
    Real(f64),
}

/// Sufficient statistics of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Stats {
    Counts(Vec<u32>),
    Moments { n: f64, mean: f64, m2: f64 },
}

impl Stats {
    fn empty(model: &Model) -> Self {
        match model {
            Model::Categorical { alpha } => Stats::Counts(vec![0; alpha.len()]),
            Model::NormalGamma { .. } => Stats::Moments {
                n: 0.0,
                mean: 0.0,
                m2: 0.0,
            },
        }
    }

    pub fn add(&mut self, x: Obs) {
        match (self, x) {
            (Stats::Counts(c), Obs::Category(k)) => {
                let k = usize::from(k).min(c.len() - 1);
                c[k] += 1;
            }
            (Stats::Moments { n, mean, m2 }, Obs::Real(v)) => {
                *n += 1.0;
                let d = v - *mean;
                *mean += d / *n;
                *m2 += d * (v - *mean);
            }
            _ => {}
        }
    }

    /// Observations in the run.
    pub fn count(&self) -> u64 {
        match self {
            Stats::Counts(c) => c.iter().map(|&v| u64::from(v)).sum(),
            Stats::Moments { n, .. } => *n as u64,
        }
    }

    /// `self - other` for statistics of nested runs (`other` a suffix of `self`).
    pub fn minus(&self, other: &Stats) -> Stats {
        match (self, other) {
            (Stats::Counts(a), Stats::Counts(b)) => {
                Stats::Counts(a.iter().zip(b).map(|(x, y)| x.saturating_sub(*y)).collect())
            }
            (
                Stats::Moments {
                    n: na,
                    mean: ma,
                    m2: sa,
                },
                Stats::Moments {
                    n: nb,
                    mean: mb,
                    m2: sb,
                },
            ) => {
                let n = na - nb;
                if n <= 0.5 {
                    return Stats::Moments {
                        n: 0.0,
                        mean: 0.0,
                        m2: 0.0,
                    };
                }
                let mean = (na * ma - nb * mb) / n;
                let m2 = (sa - sb - n * nb / na * (mean - mb).powi(2)).max(0.0);
                Stats::Moments { n, mean, m2 }
            }
            (a, _) => a.clone(),
        }
    }
}

/// The detector state of one series.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bocpd {
    model: Model,
    /// Expected time between changes, in the unit of the timestamps (seconds).
    tau: f64,
    max_runs: usize,
    /// Observations seen.
    n: u64,
    last_t: Option<f64>,
    /// Per run, oldest first: log posterior, index of its first observation, statistics.
    log_p: Vec<f64>,
    start: Vec<u64>,
    /// Time of each run's first observation.
    start_t: Vec<f64>,
    stats: Vec<Stats>,
    /// Categorical: ln(alpha_k + j) per category, then ln(sum alpha + j). Normal-Gamma:
    /// the Student-t's ln Γ((ν+1)/2) - ln Γ(ν/2) for a run of j observations.
    #[serde(skip)]
    ln_alpha: Vec<Vec<f64>>,
}

impl Bocpd {
    pub fn new(model: Model, tau: f64, max_runs: usize) -> Self {
        let mut d = Self {
            model,
            tau: tau.max(1e-9),
            max_runs: max_runs.max(2),
            n: 0,
            last_t: None,
            log_p: Vec::new(),
            start: Vec::new(),
            start_t: Vec::new(),
            stats: Vec::new(),
            ln_alpha: Vec::new(),
        };
        d.warm();
        d
    }

    /// Rebuilds the lookup tables after deserialising.
    pub fn warm(&mut self) {
        self.ln_alpha.clear();
        self.grow_tables((self.n as usize + 1).max(64));
    }

    /// Makes the lookup tables cover runs of up to `len` observations (doubling, capped
    /// at `LN_TABLE`; past it the values are computed). A sparse timeline of a few
    /// interactions never pays for a large table.
    fn grow_tables(&mut self, len: usize) {
        let have = self.ln_alpha.first().map_or(0, Vec::len);
        if have >= len.min(LN_TABLE) {
            return;
        }
        let size = len.next_power_of_two().clamp(64, LN_TABLE);
        match &self.model {
            Model::Categorical { alpha } => {
                let total: f64 = alpha.iter().sum();
                let mut tables: Vec<Vec<f64>> = alpha
                    .iter()
                    .map(|a| (0..size).map(|j| (a + j as f64).ln()).collect())
                    .collect();
                tables.push((0..size).map(|j| (total + j as f64).ln()).collect());
                self.ln_alpha = tables;
            }
            Model::NormalGamma { alpha, .. } => {
                let ratio = |j: usize| {
                    let nu = 2.0 * alpha + j as f64;
                    ln_gamma((nu + 1.0) / 2.0) - ln_gamma(nu / 2.0)
                };
                self.ln_alpha = vec![(0..size).map(ratio).collect()];
            }
        }
    }

    pub fn observations(&self) -> u64 {
        self.n
    }

    /// Runs as (posterior probability, first index, statistics), oldest first.
    pub fn runs(&self) -> impl Iterator<Item = (f64, u64, &Stats)> {
        self.log_p
            .iter()
            .zip(&self.start)
            .zip(&self.stats)
            .map(|((lp, s), st)| (lp.exp(), *s, st))
    }

    fn log_predictive(&self, stats: &Stats, x: Obs) -> f64 {
        match (&self.model, stats, x) {
            (Model::Categorical { alpha }, Stats::Counts(c), Obs::Category(k)) => {
                let k = usize::from(k).min(alpha.len() - 1);
                let nk = c[k] as usize;
                let n: usize = c.iter().map(|&v| v as usize).sum();
                let num = self.ln_alpha[k]
                    .get(nk)
                    .copied()
                    .unwrap_or_else(|| (alpha[k] + nk as f64).ln());
                let den = self.ln_alpha[alpha.len()]
                    .get(n)
                    .copied()
                    .unwrap_or_else(|| (alpha.iter().sum::<f64>() + n as f64).ln());
                num - den
            }
            (
                Model::NormalGamma {
                    mu,
                    kappa,
                    alpha,
                    beta,
                },
                Stats::Moments { n, mean, m2 },
                Obs::Real(v),
            ) => {
                let kn = kappa + n;
                let mun = (kappa * mu + n * mean) / kn;
                let an = alpha + n / 2.0;
                let bn = beta + 0.5 * m2 + kappa * n * (mean - mu).powi(2) / (2.0 * kn);
                // Student-t with 2an degrees of freedom, location mun, scale² bn(kn+1)/(an kn).
                let nu = 2.0 * an;
                let s2 = bn * (kn + 1.0) / (an * kn);
                let z = (v - mun).powi(2) / (nu * s2);
                let gamma_ratio = self
                    .ln_alpha
                    .first()
                    .and_then(|t| t.get(*n as usize))
                    .copied()
                    .unwrap_or_else(|| ln_gamma((nu + 1.0) / 2.0) - ln_gamma(nu / 2.0));
                gamma_ratio
                    - 0.5 * (nu * std::f64::consts::PI * s2).ln()
                    - (nu + 1.0) / 2.0 * z.ln_1p()
            }
            _ => f64::NEG_INFINITY,
        }
    }

    /// Adds one observation at time `t` (seconds; non-decreasing within a series).
    pub fn update(&mut self, t: f64, x: Obs) {
        let idx = self.n;
        self.n += 1;
        self.grow_tables(self.n as usize + 1);
        let dt = match self.last_t {
            Some(prev) => (t - prev).max(0.0),
            None => f64::INFINITY,
        };
        self.last_t = Some(t);
        let mut fresh = Stats::empty(&self.model);
        let prior_lp = self.log_predictive(&fresh, x);
        fresh.add(x);
        if self.log_p.is_empty() {
            self.log_p.push(0.0);
            self.start.push(idx);
            self.start_t.push(t);
            self.stats.push(fresh);
            return;
        }
        // ln H and ln(1 - H), kept finite so a burst at one timestamp stays well defined.
        let h = (-(-dt / self.tau).exp_m1()).clamp(1e-12, 1.0 - 1e-12);
        let (ln_h, ln_1mh) = (h.ln(), (-h).ln_1p());
        let cp = ln_h + prior_lp;
        let mut max = cp;
        for i in 0..self.log_p.len() {
            let v = self.log_p[i] + ln_1mh + self.log_predictive(&self.stats[i], x);
            max = max.max(v);
            self.log_p[i] = v;
        }
        let mut sum = (cp - max).exp();
        for &v in &self.log_p {
            sum += (v - max).exp();
        }
        let z = max + sum.ln();
        // Runs are kept oldest first: every old run grows by one, the new run goes last,
        // and runs too unlikely to matter are dropped in the same pass.
        let mut w = 0;
        for r in 0..self.log_p.len() {
            let lp = self.log_p[r] - z;
            if lp < PRUNE_LOG_P && r > 0 {
                continue;
            }
            self.log_p[w] = lp;
            self.start[w] = self.start[r];
            self.start_t[w] = self.start_t[r];
            self.stats.swap(w, r);
            self.stats[w].add(x);
            w += 1;
        }
        self.log_p.truncate(w);
        self.start.truncate(w);
        self.start_t.truncate(w);
        self.stats.truncate(w);
        self.log_p.push(cp - z);
        self.start.push(idx);
        self.start_t.push(t);
        self.stats.push(fresh);
        // Past the cap, the least likely run (never the oldest, which holds the regime a
        // detector compares against, nor the newest few, still young) joins its older
        // neighbour: its mass is kept, placed a little earlier. Likely candidates survive
        // however old they are.
        while self.log_p.len() > self.max_runs {
            let young = YOUNG_RUNS.min(self.log_p.len() - 2);
            let end = self.log_p.len() - young;
            let i = (1..end)
                .min_by(|&a, &b| self.log_p[a].total_cmp(&self.log_p[b]))
                .unwrap_or(1);
            let merged = self.log_p.remove(i);
            self.start.remove(i);
            self.start_t.remove(i);
            self.stats.remove(i);
            self.log_p[i - 1] = log_add(self.log_p[i - 1], merged);
        }
    }

    /// Time of the first observation of the run that began at `start`, if tracked.
    pub fn start_time(&self, start: u64) -> Option<f64> {
        self.start
            .iter()
            .position(|&s| s == start)
            .map(|i| self.start_t[i])
    }

    /// Probability that the current regime began after index `after`, with the start
    /// most of that mass points at. `None` when no run started after `after`.
    pub fn mass_after(&self, after: u64) -> Option<(f64, u64)> {
        // Runs are oldest first: sum the few that started early instead of the many after.
        let mut early = 0.0;
        let mut best = (f64::NEG_INFINITY, 0);
        for (lp, &s) in self.log_p.iter().zip(&self.start) {
            if s > after {
                if *lp > best.0 {
                    best = (*lp, s);
                }
            } else {
                early += lp.exp();
            }
        }
        (best.0 > f64::NEG_INFINITY).then_some(((1.0 - early).max(0.0), best.1))
    }

    /// Statistics of the run that began at `start`, if it is still tracked.
    pub fn stats_of(&self, start: u64) -> Option<&Stats> {
        self.start
            .iter()
            .position(|&s| s == start)
            .map(|i| &self.stats[i])
    }

    /// Changes the hazard's time scale (numeric clocks of unknown unit re-estimate it).
    pub fn set_tau(&mut self, tau: f64) {
        self.tau = tau.max(1e-9);
    }

    /// Statistics of an empty run under this model.
    pub fn empty_stats(&self) -> Stats {
        Stats::empty(&self.model)
    }
}

fn log_add(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    hi + (lo - hi).exp().ln_1p()
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9), accurate to about 1e-13.
pub fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_matches_known_values() {
        assert!((ln_gamma(1.0)).abs() < 1e-12);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
    }

    #[test]
    fn posterior_sums_to_one_and_finds_a_shift() {
        let mut d = Bocpd::new(
            Model::Categorical {
                alpha: vec![0.5, 0.3, 0.4, 0.8, 2.0],
            },
            200.0,
            300,
        );
        for i in 0..200u64 {
            let k = if i < 100 {
                4 - (i % 7 == 0) as u8
            } else {
                (i % 5 == 0) as u8
            };
            d.update(i as f64, Obs::Category(k));
            let total: f64 = d.runs().map(|r| r.0).sum();
            // Pruned runs take at most e^-20 each with them.
            assert!((total - 1.0).abs() < 1e-6, "{total}");
        }
        let (mass, start) = d.mass_after(50).expect("a run after 50");
        assert!(mass > 0.99 && (98..=102).contains(&start), "{mass} {start}");
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut d = Bocpd::new(
            Model::NormalGamma {
                mu: 0.0,
                kappa: 1.0,
                alpha: 1.0,
                beta: 1.0,
            },
            50.0,
            100,
        );
        for i in 0..30 {
            d.update(i as f64, Obs::Real((i % 3) as f64 * 0.1));
        }
        let mut back: Bocpd = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        back.warm();
        d.update(30.0, Obs::Real(0.2));
        back.update(30.0, Obs::Real(0.2));
        assert_eq!(d.log_p, back.log_p);
    }
}

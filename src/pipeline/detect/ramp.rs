//! Step or ramp: whether a change the search found is better read as a gradual move
//! between two points than as a jump at one.
//!
//! The offline search cuts a series into flat segments, so a drift (a level that slides
//! over weeks) comes out as one step somewhere on the slide. Around each change, on the
//! values of its two neighbouring segments, we fit the best step and the best ramp (flat,
//! then a straight line from the old level to the new, then flat) by least squares; the
//! ramp is kept only when it beats the step by a penalty in units of the noise, so a jump
//! stays a jump.

/// A ramp found around a change: the level starts to move at `start` and has arrived at
/// `end` (both 0-based indexes of observations, `start < end`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ramp {
    pub start: usize,
    pub end: usize,
    /// Squared-error gain of the ramp over the best step, in units of the noise variance.
    pub gain: f64,
    /// The ramp's squared error over the window it was fitted on.
    pub rss: f64,
}

/// Grid points a side of the coarse search for a ramp's ends.
const GRID: usize = 48;

/// The prefix sums of one window, positions relative to its start.
type Window = super::cost::PositionSums;

/// Residual sum of squares of `x ~ level + delta * w` over the whole window, where
/// `w` is 0 before `s`, rises linearly to 1 at `e` and stays 1 from `e` on (`s < e`;
/// `e = s + 1` is a step at `e`).
fn rss(p: &Window, s: usize, e: usize) -> f64 {
    let n = p.len();
    let nf = n as f64;
    let l = (e - s) as f64;
    let sf = s as f64;
    // The ramp part [s, e): w = (i - s) / l.
    let ri = p.i[e] - p.i[s] - sf * l;
    let rii = (p.ii[e] - p.ii[s]) - 2.0 * sf * (p.i[e] - p.i[s]) + sf * sf * l;
    let rix = (p.ix[e] - p.ix[s]) - sf * (p.x[e] - p.x[s]);
    // The plateau [e, n): w = 1.
    let tail = (n - e) as f64;
    let sw = ri / l + tail;
    let sww = rii / (l * l) + tail;
    let sxw = rix / l + (p.x[n] - p.x[e]);
    let sx = p.x[n];
    let vxx = p.xx[n] - sx * sx / nf;
    let vww = sww - sw * sw / nf;
    let vxw = sxw - sx * sw / nf;
    if vww <= 1e-12 {
        return vxx.max(0.0);
    }
    (vxx - vxw * vxw / vww).max(0.0)
}

/// How a ramp is looked for around a change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Search {
    /// The flat parts are at least this long, the ramp longer than twice it (shorter
    /// ones are steps for any reader).
    pub min_len: usize,
    /// The noise variance the gain is measured in.
    pub variance: f64,
    /// What the ramp must gain over the best step.
    pub penalty: f64,
    /// How far from the change the ramp's ends are looked for.
    pub reach: usize,
}

impl Search {
    /// Tests the change at `c` (first index after it) between its neighbouring bounds `a`
    /// and `b` (`a < c < b`) for a ramp that straddles it.
    pub fn around(&self, values: &[f64], a: usize, c: usize, b: usize) -> Option<Ramp> {
        ramp_around(values, a, c, b, self)
    }
}

fn ramp_around(values: &[f64], a: usize, c: usize, b: usize, q: &Search) -> Option<Ramp> {
    let (variance, penalty, reach) = (q.variance, q.penalty, q.reach);
    let m = q.min_len.max(1);
    if b <= a || c <= a || c >= b || b - a < 4 * m || variance <= 0.0 {
        return None;
    }
    let w = Window::new(&values[a..b]);
    let n = b - a;
    let cl = c - a;
    // Best step anywhere in the window (flat parts at least m long).
    let step = (m..=n - m)
        .map(|e| rss(&w, e - 1, e))
        .fold(f64::INFINITY, f64::min);
    let lo = cl.saturating_sub(reach).max(m);
    let hi = (cl + reach).min(n - m);
    let min_ramp = 2 * m + 1;
    // Ends on a grid of about GRID points a side, then every position within a grid step
    // of the best pair: the fit is smooth in the ends, and the whole search stays linear.
    let g = (hi - lo).div_ceil(GRID).max(1);
    let scan = |s_range: std::ops::RangeInclusive<usize>,
                e_range: std::ops::RangeInclusive<usize>,
                step: usize,
                best: &mut Option<(f64, usize, usize)>| {
        for s in s_range.step_by(step) {
            let from = (s + min_ramp).max(cl).max(*e_range.start());
            for e in (from..=*e_range.end()).step_by(step) {
                let r = rss(&w, s, e);
                if best.is_none_or(|(v, _, _)| r < v) {
                    *best = Some((r, s, e));
                }
            }
        }
    };
    let mut best = None;
    scan(lo..=cl.min(hi), cl..=hi, g, &mut best);
    if g > 1 {
        let (_, s0, e0) = best?;
        scan(
            s0.saturating_sub(g).max(lo)..=(s0 + g).min(cl).min(hi),
            e0.saturating_sub(g).max(cl)..=(e0 + g).min(hi),
            1,
            &mut best,
        );
    }
    let (r, s, e) = best?;
    let gain = (step - r) / variance;
    (gain > penalty).then_some(Ramp {
        start: a + s,
        end: a + e,
        gain,
        rss: r,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(seed: u64, n: usize, sd: f64) -> Vec<f64> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                let u: f64 = (0..12)
                    .map(|_| {
                        state = state
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        (state >> 33) as f64 / (1u64 << 31) as f64
                    })
                    .sum::<f64>()
                    - 6.0;
                sd * u
            })
            .collect()
    }

    fn search() -> Search {
        Search {
            min_len: 5,
            variance: 0.64,
            penalty: 3.0 * 400f64.ln(),
            reach: 300,
        }
    }

    #[test]
    fn a_step_window_fit_is_exact_on_a_clean_step_and_a_clean_ramp() {
        let mut x = vec![4.0; 30];
        x.extend(vec![3.0; 30]);
        let w = Window::new(&x);
        assert!(rss(&w, 29, 30) < 1e-9);
        assert!(rss(&w, 10, 30) > 1.0);
        let ramp: Vec<f64> = (0..60)
            .map(|i| 4.0 - (f64::from(i) - 20.0).clamp(0.0, 20.0) / 20.0)
            .collect();
        let w = Window::new(&ramp);
        assert!(rss(&w, 20, 40) < 1e-9, "{}", rss(&w, 20, 40));
    }

    #[test]
    fn a_long_slide_is_a_ramp_with_its_start_and_end() {
        // A slide of 2.5 noise SDs over 160 observations: plainly not a jump.
        let e = noise(5, 400, 0.8);
        let x: Vec<f64> = (0..400)
            .map(|i| 4.2 - 2.0 * ((i as f64 - 120.0) / 160.0).clamp(0.0, 1.0) + e[i])
            .collect();
        let r = search().around(&x, 0, 200, 400).expect("a ramp");
        // Looked for only near the change the search found.
        let near = Search {
            reach: 20,
            ..search()
        };
        assert!(near.around(&x, 0, 200, 400).is_none_or(|r| r.start >= 180));
        // A kink is placed far less sharply than a jump: within a couple of dozen.
        assert!(r.start.abs_diff(120) <= 25, "{r:?}");
        assert!(r.end.abs_diff(280) <= 25, "{r:?}");
    }

    #[test]
    fn a_jump_stays_a_jump() {
        for seed in 1..20 {
            let e = noise(seed, 400, 0.8);
            let x: Vec<f64> = (0..400)
                .map(|i| if i < 200 { 4.2 } else { 3.4 } + e[i])
                .collect();
            assert_eq!(search().around(&x, 0, 200, 400), None, "seed {seed}");
        }
    }
}

//! Offline search for the segmentation that minimises total cost plus a penalty per
//! change: PELT (exact, pruned) and binary segmentation (greedy, the second opinion).

use super::cost::Cost;

/// Series up to this long are searched exactly; longer ones on blocks (see [`pelt`]).
pub const EXACT_UP_TO: usize = 4_000;

/// PELT (Killick, Fearnhead & Eckley 2012): the optimum of
/// `sum(cost(segment)) + penalty * changes` over segmentations whose segments hold at least
/// `min_len` observations. Returns the 0-based first index of every new segment.
///
/// Exact up to [`EXACT_UP_TO`] observations. PELT is linear in n only while changes keep
/// arriving: inside a long stretch without a change nothing can be pruned and the work
/// grows with the square of its length. Longer series are therefore searched on blocks of
/// `ceil(n / EXACT_UP_TO)` observations (block sums of the same cost, so the same penalty
/// applies), and every change found is then moved to its exact best position within a
/// block either side. Two changes closer than a block merge; at that length they are
/// closer than anything a report can show.
pub fn pelt(cost: &Cost, penalty: f64, min_len: usize) -> Vec<usize> {
    let n = cost.len();
    let m = min_len.max(1);
    if n <= EXACT_UP_TO {
        return pelt_with(n, penalty, m, |a, b| cost.segment(a, b));
    }
    let block = n.div_ceil(EXACT_UP_TO);
    let blocks = n.div_ceil(block);
    let coarse = pelt_with(blocks, penalty, m.div_ceil(block), |a, b| {
        cost.segment(a * block, (b * block).min(n))
    });
    let mut out: Vec<usize> = Vec::with_capacity(coarse.len());
    for (i, &c) in coarse.iter().enumerate() {
        let prev = out.last().copied().unwrap_or(0);
        let next = coarse.get(i + 1).map_or(n, |&x| x * block);
        let centre = c * block;
        let lo = centre.saturating_sub(block - 1).max(prev + m);
        let hi = (centre + block - 1).min(next.saturating_sub(m));
        let best = (lo..=hi)
            .map(|p| (cost.segment(prev, p) + cost.segment(p, next), p))
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
            .map_or(centre, |(_, p)| p);
        out.push(best);
    }
    out
}

/// PELT over positions `0..n` with a segment cost function.
fn pelt_with(
    n: usize,
    penalty: f64,
    m: usize,
    segment: impl Fn(usize, usize) -> f64,
) -> Vec<usize> {
    if n < 2 * m {
        return Vec::new();
    }
    let mut best = vec![f64::INFINITY; n + 1];
    let mut last = vec![0usize; n + 1];
    best[0] = -penalty;
    let mut candidates: Vec<usize> = vec![0];
    let mut values: Vec<f64> = Vec::new();
    for t in m..=n {
        let fresh = t - m;
        if fresh >= m {
            candidates.push(fresh);
        }
        values.clear();
        let (mut f, mut arg) = (f64::INFINITY, 0);
        for &s in &candidates {
            let v = best[s] + segment(s, t);
            values.push(v);
            if v + penalty < f {
                f = v + penalty;
                arg = s;
            }
        }
        best[t] = f;
        last[t] = arg;
        let mut i = 0;
        candidates.retain(|_| {
            let keep = values[i] <= f;
            i += 1;
            keep
        });
    }
    let mut out = Vec::new();
    let mut t = n;
    while t > 0 {
        let s = last[t];
        if s > 0 {
            out.push(s);
        }
        t = s;
    }
    out.reverse();
    out
}

/// The exact optimum of `sum(cost(segment))` over segmentations with exactly `k` changes
/// and segments of at least `min_len` observations (dynamic programming, O(k n²)): what a
/// detector told the true number of changes would place. The benchmark's oracle, not a
/// detector; empty when `k` changes do not fit.
pub fn optimal_k(cost: &Cost, k: usize, min_len: usize) -> Vec<usize> {
    let n = cost.len();
    let m = min_len.max(1);
    if k == 0 || n < (k + 1) * m {
        return Vec::new();
    }
    // best[j][t]: the least cost of [0, t) cut into j + 1 segments; from[j][t]: its last cut.
    let mut best = vec![vec![f64::INFINITY; n + 1]; k + 1];
    let mut from = vec![vec![0usize; n + 1]; k + 1];
    for (t, b) in best[0].iter_mut().enumerate().skip(m) {
        *b = cost.segment(0, t);
    }
    for j in 1..=k {
        for t in (j + 1) * m..=n {
            let (f, arg) = (j * m..=t - m)
                .map(|s| (best[j - 1][s] + cost.segment(s, t), s))
                .fold(
                    (f64::INFINITY, 0),
                    |acc, x| if x.0 < acc.0 { x } else { acc },
                );
            best[j][t] = f;
            from[j][t] = arg;
        }
    }
    let mut out = Vec::with_capacity(k);
    let mut t = n;
    for j in (1..=k).rev() {
        t = from[j][t];
        out.push(t);
    }
    out.reverse();
    out
}

/// Binary segmentation: split where the cost drops most while the drop exceeds the
/// penalty, then recurse into both halves. O(n log n); not exact, so it serves as a
/// second opinion beside PELT.
pub fn binary_segmentation(cost: &Cost, penalty: f64, min_len: usize) -> Vec<usize> {
    let n = cost.len();
    let m = min_len.max(1);
    let mut out = Vec::new();
    let mut stack = vec![(0usize, n)];
    while let Some((a, b)) = stack.pop() {
        if b - a < 2 * m {
            continue;
        }
        let whole = cost.segment(a, b);
        let (mut gain, mut at) = (0.0, 0);
        for s in a + m..=b - m {
            let g = whole - cost.segment(a, s) - cost.segment(s, b);
            if g > gain {
                gain = g;
                at = s;
            }
        }
        if gain > penalty {
            out.push(at);
            stack.push((a, at));
            stack.push((at, b));
        }
    }
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::super::cost::{CategoricalSums, MeanSums};
    use super::*;

    fn brute_force(cost: &Cost, penalty: f64, m: usize) -> f64 {
        let n = cost.len();
        let mut f = vec![f64::INFINITY; n + 1];
        f[0] = -penalty;
        for t in m..=n {
            for s in (0..=t - m).filter(|&s| s == 0 || s >= m) {
                f[t] = f[t].min(f[s] + cost.segment(s, t) + penalty);
            }
        }
        f[n]
    }

    fn total(cost: &Cost, cps: &[usize], penalty: f64) -> f64 {
        let mut bounds = vec![0];
        bounds.extend(cps);
        bounds.push(cost.len());
        bounds
            .windows(2)
            .map(|w| cost.segment(w[0], w[1]))
            .sum::<f64>()
            + penalty * cps.len() as f64
    }

    #[test]
    fn pelt_finds_the_exact_optimum() {
        let mut x = Vec::new();
        let mut state = 7u64;
        for i in 0..300 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let noise = ((state >> 33) as f64 / (1u64 << 31) as f64) - 0.5;
            let level = if i < 100 {
                0.0
            } else if i < 180 {
                1.5
            } else {
                -0.5
            };
            x.push(level + noise);
        }
        let cost = Cost::Mean(MeanSums::new(&x, 0.3));
        let pen = 3.0 * (300f64).ln();
        let cps = pelt(&cost, pen, 5);
        assert_eq!(cps, vec![100, 180]);
        assert!((total(&cost, &cps, pen) - brute_force(&cost, pen, 5)).abs() < 1e-6);
        assert_eq!(binary_segmentation(&cost, pen, 5), vec![100, 180]);
        // Told there are two changes, the exact search finds the same two.
        assert_eq!(optimal_k(&cost, 2, 5), vec![100, 180]);
        let one = optimal_k(&cost, 1, 5);
        let best_one = (5..=295)
            .map(|c| cost.segment(0, c) + cost.segment(c, 300))
            .fold(f64::INFINITY, f64::min);
        assert!((cost.segment(0, one[0]) + cost.segment(one[0], 300) - best_one).abs() < 1e-9);
    }

    #[test]
    fn long_series_are_searched_on_blocks_and_refined_to_the_exact_position() {
        let n = 20_000;
        let mut state = 3u64;
        let x: Vec<f64> = (0..n)
            .map(|i| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let noise = ((state >> 33) as f64 / (1u64 << 31) as f64) - 0.5;
                let level = [0.0, 1.0, -0.5, 0.7]
                    [(i >= 4_003) as usize + (i >= 9_998) as usize + (i >= 15_001) as usize];
                level + noise
            })
            .collect();
        let cost = Cost::Mean(MeanSums::new(&x, 0.3));
        let cps = pelt(&cost, 3.0 * (n as f64).ln(), 5);
        assert_eq!(cps, vec![4_003, 9_998, 15_001]);
    }

    #[test]
    fn identical_runs_do_not_fragment_a_categorical_series() {
        let mut cats = vec![4u8; 40];
        cats.extend([0u8; 40]);
        let cost = Cost::Categorical(CategoricalSums::new(&cats, 5));
        assert_eq!(pelt(&cost, 3.0 * 80f64.ln(), 5), vec![40]);
    }
}

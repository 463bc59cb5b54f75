//! Segment costs for the offline search, each O(1) per segment from prefix sums.
//!
//! A cost is twice the negative log-likelihood of a segment under its own fitted
//! parameters (up to a constant), so costs add across segments and a split never costs
//! more than the whole: the property PELT's pruning relies on.

/// Which model a segment is fitted with.
#[derive(Debug, Clone)]
pub enum Cost {
    /// A line per segment (level and slope), residuals in units of `scale²`. Suits
    /// unbounded real signals, whose trends a mean-shift cost would cut into steps.
    Linear(LinearSums),
    /// A level per segment, residuals in units of `scale²`.
    Mean(MeanSums),
    /// Category shares per segment (stars, NPS buckets, outcomes): the multinomial
    /// deviance. Runs of identical values cost nothing but cannot make the cost
    /// degenerate, unlike a Gaussian mean-and-variance cost.
    Categorical(CategoricalSums),
    /// Several channels observed at the same positions (a review's stars and its text
    /// sentiment): the costs add, so a change is placed where the channels agree.
    Sum(Vec<Cost>),
}

impl Cost {
    /// Cost of the half-open segment `[a, b)`.
    #[inline]
    pub fn segment(&self, a: usize, b: usize) -> f64 {
        match self {
            Cost::Linear(s) => s.cost(a, b),
            Cost::Mean(s) => s.cost(a, b),
            Cost::Categorical(s) => s.cost(a, b),
            Cost::Sum(parts) => parts.iter().map(|c| c.segment(a, b)).sum(),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Cost::Linear(s) => s.sums.len(),
            Cost::Mean(s) => s.x.len() - 1,
            Cost::Categorical(s) => s.counts.len() / s.k - 1,
            Cost::Sum(parts) => parts.first().map_or(0, Cost::len),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone)]
pub struct MeanSums {
    x: Vec<f64>,
    xx: Vec<f64>,
    /// Prefix counts of present values, when some positions have none.
    present: Option<Vec<u32>>,
    inv_var: f64,
}

impl MeanSums {
    pub fn new(values: &[f64], scale: f64) -> Self {
        let mut m = Self::with_gaps(values.iter().map(|&v| Some(v)), values.len(), scale);
        m.present = None;
        m
    }

    /// Positions without a value (a review without text) add nothing to any segment.
    pub fn with_gaps(values: impl Iterator<Item = Option<f64>>, len: usize, scale: f64) -> Self {
        let mut x = Vec::with_capacity(len + 1);
        let mut xx = Vec::with_capacity(len + 1);
        let mut present = Vec::with_capacity(len + 1);
        let (mut s, mut ss, mut c) = (0.0, 0.0, 0u32);
        x.push(0.0);
        xx.push(0.0);
        present.push(0);
        for v in values {
            if let Some(v) = v {
                s += v;
                ss += v * v;
                c += 1;
            }
            x.push(s);
            xx.push(ss);
            present.push(c);
        }
        Self {
            x,
            xx,
            present: Some(present),
            inv_var: 1.0 / (scale * scale).max(1e-12),
        }
    }

    #[inline]
    fn cost(&self, a: usize, b: usize) -> f64 {
        let m = match &self.present {
            Some(p) => f64::from(p[b] - p[a]),
            None => (b - a) as f64,
        };
        if m == 0.0 {
            return 0.0;
        }
        let s = self.x[b] - self.x[a];
        ((self.xx[b] - self.xx[a]) - s * s / m).max(0.0) * self.inv_var
    }
}

/// Prefix sums of a series against its positions (x, x², i, i², i·x), from which the
/// least-squares fit of any line or ramp over any stretch costs O(1).
#[derive(Debug, Clone)]
pub(super) struct PositionSums {
    pub(super) x: Vec<f64>,
    pub(super) xx: Vec<f64>,
    pub(super) i: Vec<f64>,
    pub(super) ii: Vec<f64>,
    pub(super) ix: Vec<f64>,
}

impl PositionSums {
    pub(super) fn new(values: &[f64]) -> Self {
        let n = values.len() + 1;
        let mut s = Self {
            x: Vec::with_capacity(n),
            xx: Vec::with_capacity(n),
            i: Vec::with_capacity(n),
            ii: Vec::with_capacity(n),
            ix: Vec::with_capacity(n),
        };
        let (mut x, mut xx, mut i, mut ii, mut ix) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for v in [&mut s.x, &mut s.xx, &mut s.i, &mut s.ii, &mut s.ix] {
            v.push(0.0);
        }
        for (k, &v) in values.iter().enumerate() {
            let p = k as f64;
            x += v;
            xx += v * v;
            i += p;
            ii += p * p;
            ix += p * v;
            s.x.push(x);
            s.xx.push(xx);
            s.i.push(i);
            s.ii.push(ii);
            s.ix.push(ix);
        }
        s
    }

    /// How many values the sums cover.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.x.len() - 1
    }
}

#[derive(Debug, Clone)]
pub struct LinearSums {
    sums: PositionSums,
    inv_var: f64,
}

impl LinearSums {
    /// The regressor is the observation's position, not its time: change points are
    /// positions, and the benchmark series are equally spaced.
    pub fn new(values: &[f64], scale: f64) -> Self {
        Self {
            sums: PositionSums::new(values),
            inv_var: 1.0 / (scale * scale).max(1e-12),
        }
    }

    #[inline]
    fn cost(&self, a: usize, b: usize) -> f64 {
        let p = &self.sums;
        let m = (b - a) as f64;
        let sx = p.x[b] - p.x[a];
        let st = p.i[b] - p.i[a];
        let vtt = (p.ii[b] - p.ii[a]) - st * st / m;
        let vtx = (p.ix[b] - p.ix[a]) - st * sx / m;
        let vxx = (p.xx[b] - p.xx[a]) - sx * sx / m;
        let rss = if vtt > 1e-9 {
            vxx - vtx * vtx / vtt
        } else {
            vxx
        };
        rss.max(0.0) * self.inv_var
    }
}

#[derive(Debug, Clone)]
pub struct CategoricalSums {
    /// Row-major prefix counts: `counts[i * k + c]` is how many of the first `i` values
    /// fall in category `c`.
    counts: Vec<u32>,
    k: usize,
}

impl CategoricalSums {
    /// `categories` holds each value's category in `0..k`.
    pub fn new(categories: &[u8], k: usize) -> Self {
        let mut counts = vec![0u32; (categories.len() + 1) * k];
        for (i, &c) in categories.iter().enumerate() {
            let (prev, next) = counts.split_at_mut((i + 1) * k);
            next[..k].copy_from_slice(&prev[i * k..]);
            next[usize::from(c).min(k - 1)] += 1;
        }
        Self { counts, k }
    }

    #[inline]
    fn cost(&self, a: usize, b: usize) -> f64 {
        let m = (b - a) as f64;
        let (ra, rb) = (&self.counts[a * self.k..], &self.counts[b * self.k..]);
        let mut c = 0.0;
        for j in 0..self.k {
            let nj = f64::from(rb[j] - ra[j]);
            if nj > 0.0 {
                c -= nj * (nj / m).ln();
            }
        }
        2.0 * c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_are_zero_on_a_perfect_fit_and_add_up_on_a_split() {
        let line: Vec<f64> = (0..20).map(|i| 2.0 + 0.5 * i as f64).collect();
        let l = LinearSums::new(&line, 1.0);
        assert!(l.cost(0, 20).abs() < 1e-6);
        let flat = MeanSums::new(&[3.0; 10], 1.0);
        assert_eq!(flat.cost(0, 10), 0.0);
        let cat = CategoricalSums::new(&[4, 4, 4, 0, 0, 0], 5);
        assert_eq!(cat.cost(0, 3), 0.0);
        let whole = cat.cost(0, 6);
        assert!((whole - 2.0 * 6.0 * 2f64.ln()).abs() < 1e-9);
        assert!(cat.cost(0, 3) + cat.cost(3, 6) <= whole);
    }
}

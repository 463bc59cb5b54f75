//! The learned layer of the sentiment scorer: a three-class logistic regression over hashed
//! word and character n-grams plus the rule layer's signals.
//!
//! Hashing keeps the model a fixed size whatever the vocabulary (2^20 buckets x 3 classes
//! of `f32`, 12 MiB), needs no vocabulary file, and lets one model serve every language:
//! character n-grams carry across inflections and missing diacritics. The hash is FNV-1a,
//! written out here, so a stored model means the same thing in every build.

use super::lexicon::{Signals, URL_TOKEN, USER_TOKEN, fold};
use crate::synth::Rng;

/// Classes in model order.
pub const NEGATIVE: usize = 0;
pub const NEUTRAL: usize = 1;
pub const POSITIVE: usize = 2;

const BITS: u8 = 18;
/// Buckets below this index hold the dense rule features.
const DENSE: u32 = 32;

/// A text as the model reads it: hashed n-gram buckets that share one value (so the
/// n-gram part has unit length), and the dense rule features as (bucket, value).
///
/// The buckets are kept sorted as LEB128-coded gaps, about two bytes each instead of
/// four: the built-in corpus is held in memory whole while the model trains.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Features {
    hashed: Vec<u8>,
    norm: f32,
    dense: Vec<(u8, f32)>,
}

impl Features {
    fn new(mut buckets: Vec<u32>, dense: Vec<(u8, f32)>) -> Self {
        let norm = 1.0 / (buckets.len().max(1) as f32).sqrt();
        buckets.sort_unstable();
        let mut hashed = Vec::with_capacity(buckets.len() * 2);
        let mut prev = 0u32;
        for b in buckets {
            let mut gap = b - prev;
            prev = b;
            loop {
                let byte = (gap & 0x7f) as u8;
                gap >>= 7;
                if gap == 0 {
                    hashed.push(byte);
                    break;
                }
                hashed.push(byte | 0x80);
            }
        }
        hashed.shrink_to_fit();
        Self {
            hashed,
            norm,
            dense,
        }
    }

    fn for_each(&self, mut f: impl FnMut(usize, f32)) {
        let mut bucket = 0u32;
        let mut gap = 0u32;
        let mut shift = 0;
        for &byte in &self.hashed {
            gap |= u32::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                bucket += gap;
                f(bucket as usize, self.norm);
                gap = 0;
                shift = 0;
            } else {
                shift += 7;
            }
        }
        for &(j, v) in &self.dense {
            f(usize::from(j), v);
        }
    }
}

fn fnv(seed: u8, parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(seed);
    for (k, p) in parts.iter().enumerate() {
        if k > 0 {
            h ^= 0x1f;
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        for b in p.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x100_0000_01b3);
        }
    }
    h
}

/// A hash that is the same in every build and on every machine.
pub fn stable_hash(s: &str) -> u64 {
    fnv(0, &[s])
}

fn bucket(seed: u8, parts: &[&str]) -> u32 {
    let dim = 1u64 << BITS;
    (fnv(seed, parts) % (dim - u64::from(DENSE))) as u32 + DENSE
}

/// Builds the features of one analysed text.
pub fn featurize(s: &Signals) -> Features {
    let mut hashed: Vec<u32> = Vec::with_capacity(s.tokens.len() * 8);
    let mut prev = String::from("<s>");
    let mut has_url = false;
    let mut has_user = false;
    // Words in a clause that a later contrast overrides ("great, but ...") are told apart
    // from the rest, so the model can learn to discount them.
    let mut overridden = vec![false; s.tokens.len()];
    for (k, c) in s.clauses.iter().enumerate() {
        if s.clauses.get(k + 1).is_some_and(|n| n.after_contrast) {
            for o in overridden.iter_mut().take(c.end).skip(c.start) {
                *o = true;
            }
        }
    }
    for (i, t) in s.tokens.iter().enumerate() {
        if t.text == URL_TOKEN {
            has_url = true;
            continue;
        }
        if t.text == USER_TOKEN {
            has_user = true;
            continue;
        }
        let word = fold(&t.text);
        let word = if s.negated[i] {
            format!("!{word}")
        } else {
            word
        };
        if overridden[i] {
            hashed.push(bucket(5, &[&word]));
        } else {
            hashed.push(bucket(1, &[&word]));
        }
        hashed.push(bucket(2, &[&prev, &word]));
        let plain = word.trim_start_matches('!');
        if plain.chars().count() >= 3 && plain.chars().all(char::is_alphabetic) {
            let padded: Vec<char> = format!(" {plain} ").chars().collect();
            for n in 3..=5 {
                if padded.len() < n {
                    break;
                }
                for w in padded.windows(n) {
                    let g: String = w.iter().collect();
                    hashed.push(bucket(3, &[&g]));
                }
            }
        }
        prev = word;
    }
    hashed.push(bucket(2, &[&prev, "</s>"]));
    let mut out: Vec<(u8, f32)> = Vec::with_capacity(24);

    let clause_score = |k: usize| (s.clauses[k].sum / 3.0).tanh() as f32;
    let last = s.clauses.len() - 1;
    let contrast = s.clauses.iter().any(|c| c.after_contrast);
    let dense: [(u8, f32); 16] = [
        (0, s.score as f32),
        (1, (s.positive as f32).ln_1p()),
        (2, (s.negative as f32).ln_1p()),
        (3, f32::from(s.hits == 0)),
        (4, if contrast { clause_score(last) } else { 0.0 }),
        (5, (s.emoji_positive as f32).ln_1p()),
        (6, (s.emoji_negative as f32).ln_1p()),
        (7, f32::from(s.exclaims > 0)),
        (8, f32::from(s.questions > 0)),
        (9, f32::from(s.emphasis > 0)),
        (10, f32::from(s.negations > 0)),
        (11, f32::from(has_url)),
        (12, f32::from(has_user)),
        (13, f32::from(s.tokens.len() < 5)),
        (14, f32::from(s.tokens.len() > 30)),
        (15, (s.score as f32).abs()),
    ];
    out.extend(dense.into_iter().filter(|(_, v)| *v != 0.0));
    // The rule score by range, so the model can learn a threshold, not only a slope.
    let range = ((s.score + 1.0) * 4.0).floor().clamp(0.0, 7.0) as u8;
    out.push((16 + range, 1.0));
    for (o, sums) in s.by_origin.iter().enumerate() {
        for (k, v) in sums.iter().enumerate() {
            if *v != 0.0 {
                out.push((24 + 2 * o as u8 + k as u8, (*v as f32).ln_1p()));
            }
        }
    }
    Features::new(hashed, out)
}

/// A trained model.
#[derive(Clone, PartialEq)]
pub struct LinearModel {
    weights: Vec<[f32; 3]>,
    bias: [f32; 3],
}

impl std::fmt::Debug for LinearModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinearModel")
            .field("buckets", &self.weights.len())
            .field("bias", &self.bias)
            .finish()
    }
}

/// One training example.
#[derive(Debug, Clone)]
pub struct Example {
    pub features: Features,
    pub class: usize,
    pub weight: f32,
}

/// Training settings.
#[derive(Debug, Clone, Copy)]
pub struct TrainOptions {
    pub epochs: usize,
    pub learning_rate: f32,
    pub l2: f32,
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            epochs: 6,
            learning_rate: 0.2,
            l2: 1e-3,
            seed: 7,
        }
    }
}

/// Errors reading a stored model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("stored sentiment model is not in a format this version reads (expected magic TLM1)")]
    Format,
    #[error("stored sentiment model is truncated at byte {0}")]
    Truncated(usize),
}

const MAGIC: &[u8; 4] = b"TLM1";

impl LinearModel {
    fn empty() -> Self {
        Self {
            weights: vec![[0.0; 3]; 1 << BITS],
            bias: [0.0; 3],
        }
    }

    /// Class probabilities (negative, neutral, positive).
    pub fn predict(&self, f: &Features) -> [f32; 3] {
        let mut z = self.bias;
        f.for_each(|j, v| {
            let w = &self.weights[j];
            z[0] += w[0] * v;
            z[1] += w[1] * v;
            z[2] += w[2] * v;
        });
        softmax(z)
    }

    /// Trains with AdaGrad on the examples, classes balanced by weight.
    pub fn train(examples: &[Example], opts: TrainOptions) -> Self {
        let mut m = Self::empty();
        if examples.is_empty() {
            return m;
        }
        let mut class_mass = [0f32; 3];
        for e in examples {
            class_mass[e.class] += e.weight;
        }
        let total: f32 = class_mass.iter().sum();
        let balance: [f32; 3] = std::array::from_fn(|k| {
            if class_mass[k] > 0.0 {
                total / (3.0 * class_mass[k])
            } else {
                0.0
            }
        });
        let mut g2 = vec![[0f32; 3]; 1 << BITS];
        let mut gb = [0f32; 3];
        let mut order: Vec<usize> = (0..examples.len()).collect();
        let mut rng = Rng::new(opts.seed);
        let eps = 1e-6f32;
        for _ in 0..opts.epochs {
            for i in (1..order.len()).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                order.swap(i, j);
            }
            for &k in &order {
                let e = &examples[k];
                let p = m.predict(&e.features);
                let scale = e.weight * balance[e.class];
                let g: [f32; 3] =
                    std::array::from_fn(|c| (p[c] - if c == e.class { 1.0 } else { 0.0 }) * scale);
                for c in 0..3 {
                    gb[c] += g[c] * g[c];
                    m.bias[c] -= opts.learning_rate * g[c] / (gb[c].sqrt() + eps);
                }
                e.features.for_each(|j, v| {
                    let w = &mut m.weights[j];
                    let acc = &mut g2[j];
                    for c in 0..3 {
                        let grad = g[c] * v + opts.l2 * w[c];
                        acc[c] += grad * grad;
                        w[c] -= opts.learning_rate * grad / (acc[c].sqrt() + eps);
                    }
                });
            }
        }
        m
    }

    /// A compact encoding: only the buckets that were trained.
    pub fn to_bytes(&self) -> Vec<u8> {
        let used: Vec<(u32, &[f32; 3])> = self
            .weights
            .iter()
            .enumerate()
            .filter(|(_, w)| w.iter().any(|x| *x != 0.0))
            .map(|(j, w)| (j as u32, w))
            .collect();
        let mut out = Vec::with_capacity(4 + 1 + 12 + 4 + used.len() * 16);
        out.extend_from_slice(MAGIC);
        out.push(BITS);
        for b in self.bias {
            out.extend_from_slice(&b.to_le_bytes());
        }
        out.extend_from_slice(&(used.len() as u32).to_le_bytes());
        for (j, w) in used {
            out.extend_from_slice(&j.to_le_bytes());
            for x in w {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        if bytes.len() < 5 || &bytes[..4] != MAGIC || bytes[4] != BITS {
            return Err(ModelError::Format);
        }
        let mut pos = 5;
        let word = |pos: &mut usize| -> Result<[u8; 4], ModelError> {
            let b = bytes
                .get(*pos..*pos + 4)
                .ok_or(ModelError::Truncated(*pos))?;
            *pos += 4;
            Ok(b.try_into().expect("4 bytes"))
        };
        let mut m = Self::empty();
        for c in 0..3 {
            m.bias[c] = f32::from_le_bytes(word(&mut pos)?);
        }
        let n = u32::from_le_bytes(word(&mut pos)?) as usize;
        for _ in 0..n {
            let j = u32::from_le_bytes(word(&mut pos)?) as usize;
            let w = m.weights.get_mut(j).ok_or(ModelError::Format)?;
            for x in w.iter_mut() {
                *x = f32::from_le_bytes(word(&mut pos)?);
            }
        }
        if pos != bytes.len() {
            return Err(ModelError::Format);
        }
        Ok(m)
    }
}

fn softmax(z: [f32; 3]) -> [f32; 3] {
    let m = z[0].max(z[1]).max(z[2]);
    let e = [(z[0] - m).exp(), (z[1] - m).exp(), (z[2] - m).exp()];
    let s = e[0] + e[1] + e[2];
    [e[0] / s, e[1] / s, e[2] / s]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::sentiment::lexicon::Rules;

    #[test]
    fn learns_and_round_trips() {
        let rules = Rules::new();
        let data = [
            ("cold fries again", NEGATIVE),
            ("lovely cold beer", POSITIVE),
            ("we ordered at noon", NEUTRAL),
        ];
        let examples: Vec<Example> = data
            .iter()
            .cycle()
            .take(30)
            .map(|(t, c)| Example {
                features: featurize(&rules.analyse(t, Some("en"))),
                class: *c,
                weight: 1.0,
            })
            .collect();
        let m = LinearModel::train(&examples, TrainOptions::default());
        for (t, c) in data {
            let p = m.predict(&featurize(&rules.analyse(t, Some("en"))));
            let best = (0..3).max_by(|a, b| p[*a].total_cmp(&p[*b])).unwrap();
            assert_eq!(best, c, "{t}: {p:?}");
        }
        let back = LinearModel::from_bytes(&m.to_bytes()).unwrap();
        assert!(back == m);
        assert!(matches!(
            LinearModel::from_bytes(b"nope"),
            Err(ModelError::Format)
        ));
        let bytes = m.to_bytes();
        assert!(matches!(
            LinearModel::from_bytes(&bytes[..bytes.len() - 3]),
            Err(ModelError::Truncated(_))
        ));
    }
}

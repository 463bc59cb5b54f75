//! `tideline bench detect`: change detection measured three ways.
//! - TCPD (van den Burg & Williams): every univariate series z-scored, the `real` kind with
//!   default settings, F1 (margin 5, several annotators) and cover, the definitions of
//!   `../shared/eval/cpd_score.py`; the predictions can be written for that script too.
//! - Generated satisfaction streams (`synth::streams`): per-store F1, false alarms on
//!   stores without a change, direction, and the step's error in stars.
//! - Throughput of the online and offline detectors on one core.

use crate::pipeline::detect::{self, Change, Kind, Online, Point, Settings};
use crate::synth::streams::{self, Scenario, Stream};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum DetectBenchError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is not a TCPD series or annotation file: {message}")]
    Format { path: PathBuf, message: String },
}

/// The change-point metrics of TCPDBench, as `cpd_score.py` defines them.
pub mod metrics {
    fn clean(cps: &[usize], n: usize, zero: bool) -> Vec<usize> {
        let mut v: Vec<usize> = cps.iter().copied().filter(|&c| c < n).collect();
        if zero {
            v.push(0);
        } else {
            v.retain(|&c| c != 0);
        }
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Truth points that get a distinct prediction within the margin (closest first).
    fn matched(truth: &[usize], pred: &[usize], margin: usize) -> usize {
        let pos = |v: &[usize]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
        matched_at(&pos(truth), &pos(pred), margin as f64)
    }

    /// [`matched`] on any increasing positions (indexes or times).
    fn matched_at(truth: &[f64], pred: &[f64], margin: f64) -> usize {
        let mut unused = pred.to_vec();
        let mut hits = 0;
        for &t in truth {
            let (mut best, mut dist) = (None, f64::INFINITY);
            for (i, &p) in unused.iter().enumerate() {
                let d = (p - t).abs();
                if d <= margin && d < dist {
                    best = Some(i);
                    dist = d;
                } else if p > t + margin {
                    break;
                }
            }
            if let Some(i) = best {
                hits += 1;
                unused.remove(i);
            }
        }
        hits
    }

    /// F1 as [`f1`], but a prediction matches a truth point when their *times* are within
    /// `margin_secs` (`times[i]` is observation i's time): how a manager reads "when".
    pub fn f1_time(
        annotations: &[Vec<usize>],
        pred: &[usize],
        times: &[f64],
        margin_secs: f64,
    ) -> f64 {
        let n = times.len();
        let at =
            |v: &[usize]| -> Vec<f64> { clean(v, n, true).iter().map(|&i| times[i]).collect() };
        let ann: Vec<Vec<f64>> = if annotations.is_empty() {
            vec![at(&[])]
        } else {
            annotations.iter().map(|a| at(a)).collect()
        };
        let pred = at(pred);
        let mut union: Vec<f64> = ann.iter().flatten().copied().collect();
        union.sort_by(f64::total_cmp);
        union.dedup();
        let precision = matched_at(&union, &pred, margin_secs) as f64 / pred.len() as f64;
        let recall = ann
            .iter()
            .map(|a| matched_at(a, &pred, margin_secs) as f64 / a.len() as f64)
            .sum::<f64>()
            / ann.len() as f64;
        if precision == 0.0 && recall == 0.0 {
            return 0.0;
        }
        2.0 * precision * recall / (precision + recall)
    }

    /// F1 with `margin` against several annotators: precision against their union,
    /// recall averaged over them. `zero` counts index 0 as a change in every set (TCPD).
    pub fn f1(annotations: &[Vec<usize>], pred: &[usize], n: usize, zero: bool) -> f64 {
        let ann: Vec<Vec<usize>> = if annotations.is_empty() {
            vec![clean(&[], n, zero)]
        } else {
            annotations.iter().map(|a| clean(a, n, zero)).collect()
        };
        let pred = clean(pred, n, zero);
        let mut union: Vec<usize> = ann.iter().flatten().copied().collect();
        union.sort_unstable();
        union.dedup();
        let precision = if pred.is_empty() {
            if union.is_empty() { 1.0 } else { 0.0 }
        } else {
            matched(&union, &pred, 5) as f64 / pred.len() as f64
        };
        let recall = ann
            .iter()
            .map(|a| {
                if a.is_empty() {
                    1.0
                } else {
                    matched(a, &pred, 5) as f64 / a.len() as f64
                }
            })
            .sum::<f64>()
            / ann.len() as f64;
        if precision == 0.0 && recall == 0.0 {
            return 0.0;
        }
        2.0 * precision * recall / (precision + recall)
    }

    fn segments(cps: &[usize], n: usize) -> Vec<(usize, usize)> {
        let mut b: Vec<usize> = cps.iter().copied().filter(|&c| c > 0 && c < n).collect();
        b.sort_unstable();
        b.dedup();
        let starts = std::iter::once(0).chain(b.iter().copied());
        let ends = b.iter().copied().chain(std::iter::once(n));
        starts.zip(ends).collect()
    }

    /// Segmentation covering, averaged over annotators.
    pub fn cover(annotations: &[Vec<usize>], pred: &[usize], n: usize) -> f64 {
        let ps = segments(pred, n);
        let empty = [Vec::new()];
        let list = if annotations.is_empty() {
            &empty[..]
        } else {
            annotations
        };
        let mut total = 0.0;
        for a in list {
            let mut c = 0.0;
            for (s0, s1) in segments(a, n) {
                let mut best: f64 = 0.0;
                for &(p0, p1) in &ps {
                    let inter = s1.min(p1).saturating_sub(s0.max(p0)) as f64;
                    let union = (s1 - s0 + p1 - p0) as f64 - inter;
                    if union > 0.0 {
                        best = best.max(inter / union);
                    }
                }
                c += (s1 - s0) as f64 * best;
            }
            total += c / n as f64;
        }
        total / list.len() as f64
    }
}

/// One TCPD series' result.
#[derive(Debug, Clone)]
pub struct SeriesScore {
    pub name: String,
    pub n: usize,
    pub predicted: Vec<usize>,
    pub f1: f64,
    pub cover: f64,
}

/// The 25 series behind the published univariate table that are in the TCPD copy.
pub const PUBLISHED_25: [&str; 25] = [
    "bank",
    "brent_spot",
    "businv",
    "centralia",
    "children_per_woman",
    "co2_canada",
    "construction",
    "debt_ireland",
    "gdp_argentina",
    "gdp_croatia",
    "gdp_iran",
    "gdp_japan",
    "global_co2",
    "homeruns",
    "jfk_passengers",
    "lga_passengers",
    "nile",
    "ozone",
    "rail_lines",
    "seatbelts",
    "shanghai_license",
    "unemployment_nl",
    "us_population",
    "usd_isk",
    "well_log",
];

fn read_json(path: &Path) -> Result<serde_json::Value, DetectBenchError> {
    let text = std::fs::read_to_string(path).map_err(|source| DetectBenchError::Read {
        path: path.into(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| DetectBenchError::Format {
        path: path.into(),
        message: e.to_string(),
    })
}

/// Runs the `real` detector on every univariate series in a TCPD directory (series files
/// plus `annotations.json`). Missing values take the previous value, as a flat stretch.
pub fn tcpd(dir: &Path, settings: &Settings) -> Result<Vec<SeriesScore>, DetectBenchError> {
    let ann_path = dir.join("annotations.json");
    let annotations = read_json(&ann_path)?;
    let annotations = annotations
        .as_object()
        .ok_or_else(|| DetectBenchError::Format {
            path: ann_path.clone(),
            message: "expected an object of series".into(),
        })?;
    let mut out = Vec::new();
    for (name, ann) in annotations {
        let path = dir.join(format!("{name}.json"));
        if !path.exists() {
            continue;
        }
        let doc = read_json(&path)?;
        let series = doc["series"].as_array().cloned().unwrap_or_default();
        if series.len() != 1 {
            continue;
        }
        let raw = series[0]["raw"]
            .as_array()
            .ok_or_else(|| DetectBenchError::Format {
                path: path.clone(),
                message: "expected series[0].raw to be an array".into(),
            })?;
        let mut values: Vec<f64> = Vec::with_capacity(raw.len());
        let first = raw.iter().find_map(|v| v.as_f64()).unwrap_or(0.0);
        for v in raw {
            let prev = values.last().copied().unwrap_or(first);
            values.push(v.as_f64().unwrap_or(prev));
        }
        let points: Vec<Point> = values
            .iter()
            .enumerate()
            .map(|(i, &value)| Point { t: i as f64, value })
            .collect();
        let predicted: Vec<usize> = detect::offline(Kind::Real, &points, settings)
            .into_iter()
            .map(|c| c.index)
            .collect();
        let anns: Vec<Vec<usize>> = ann
            .as_object()
            .map(|m| {
                m.values()
                    .map(|v| {
                        v.as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|x| x.as_u64())
                                    .map(|x| x as usize)
                                    .collect()
                            })
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .unwrap_or_default();
        let n = values.len();
        out.push(SeriesScore {
            name: name.clone(),
            n,
            f1: metrics::f1(&anns, &predicted, n, true),
            cover: metrics::cover(&anns, &predicted, n),
            predicted,
        });
    }
    Ok(out)
}

/// How the generated stores were read.
#[derive(Debug, Clone, Default)]
pub struct SynthScore {
    pub streams: usize,
    pub f1: f64,
    pub strict_f1: f64,
    /// F1 with a ±7-day margin instead of ±5 observations.
    pub f1_week: f64,
    pub cover: f64,
    /// Stores without a real change that got any change reported (watch included).
    pub false_alarms: usize,
    /// ... that got a confirmed change.
    pub confirmed_false_alarms: usize,
    pub quiet_streams: usize,
    /// Matched changes with the right direction / all matched changes with one.
    pub direction_right: usize,
    pub direction_checked: usize,
    /// |estimated step - expected step| in stars, over matched abrupt changes.
    pub step_errors: Vec<f64>,
    /// The same against the sample means of the true segments (the detector's own error).
    pub step_errors_sample: Vec<f64>,
    pub per_scenario: BTreeMap<&'static str, (usize, f64)>,
}

impl SynthScore {
    pub fn step_error_mean(&self) -> f64 {
        mean(&self.step_errors)
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Which detector the synthetic run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Offline,
    Online,
}

/// Which series of a generated store is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Stars,
    Sentiment,
    /// Stars and text sentiment together ([`detect::offline_reviews`]).
    Reviews,
}

/// Runs a detector over one series and returns every change it reports (online: the
/// confirmed ones plus the one still watched at the end).
pub fn run(kind: Kind, points: &[Point], settings: &Settings, mode: Mode) -> Vec<Change> {
    match mode {
        Mode::Offline => detect::offline(kind, points, settings),
        Mode::Online => {
            let mut d = Online::new(kind, settings);
            let mut out: Vec<Change> = points.iter().filter_map(|p| d.push(*p)).collect();
            out.extend(d.watching());
            out
        }
    }
}

/// Scores a detector on generated stores, on the stars channel (or sentiment).
pub fn synthetic(
    stores: &[Stream],
    channel: Channel,
    settings: &Settings,
    mode: Mode,
    trace: bool,
) -> SynthScore {
    let mut s = SynthScore::default();
    let mut by_scenario: BTreeMap<&'static str, (usize, f64)> = BTreeMap::new();
    for st in stores {
        let (kind, points) = match channel {
            Channel::Sentiment => (Kind::Sentiment, &st.sentiment),
            Channel::Stars | Channel::Reviews => (Kind::Stars, &st.stars),
        };
        let n = points.len();
        let found = if channel == Channel::Reviews {
            let text: Vec<Option<f64>> = st.sentiment.iter().map(|p| Some(p.value)).collect();
            detect::offline_reviews(points, &text, settings)
        } else {
            run(kind, points, settings, mode)
        };
        let idx: Vec<usize> = found.iter().map(|c| c.index).collect();
        let f1 = metrics::f1(&st.annotations, &idx, n, true);
        if trace && f1 < 0.999 {
            let got: Vec<String> = found
                .iter()
                .map(|c| format!("{}:{}:{}", c.index, c.status.as_str(), c.direction.as_str()))
                .collect();
            eprintln!(
                "  {} n={n} truth={:?} found=[{}] f1={f1:.3}",
                st.name,
                st.annotations,
                got.join(" ")
            );
        }
        s.f1 += f1;
        s.strict_f1 += metrics::f1(&st.annotations, &idx, n, false);
        let times: Vec<f64> = points.iter().map(|p| p.t).collect();
        s.f1_week += metrics::f1_time(&st.annotations, &idx, &times, 7.0 * 86_400.0);
        s.cover += metrics::cover(&st.annotations, &idx, n);
        s.streams += 1;
        let e = by_scenario.entry(st.scenario.as_str()).or_default();
        e.0 += 1;
        e.1 += f1;
        if st.scenario.is_quiet() {
            s.quiet_streams += 1;
            if !found.is_empty() {
                s.false_alarms += 1;
            }
            if found.iter().any(|c| c.status == detect::Status::Confirmed) {
                s.confirmed_false_alarms += 1;
            }
        }
        for truth in &st.changes {
            // The annotator sets of a drift span the ramp: match anywhere on it.
            let lo = st
                .annotations
                .iter()
                .flatten()
                .min()
                .copied()
                .unwrap_or(truth.index);
            let hi = st
                .annotations
                .iter()
                .flatten()
                .max()
                .copied()
                .unwrap_or(truth.index);
            let near = |c: &&Change| {
                if st.scenario == Scenario::DriftDown {
                    c.index + 5 >= lo && c.index <= hi + 5
                } else {
                    c.index.abs_diff(truth.index) <= 5
                }
            };
            let Some(hit) = found
                .iter()
                .filter(near)
                .min_by_key(|c| c.index.abs_diff(truth.index))
            else {
                continue;
            };
            if truth.direction != detect::Direction::Change {
                s.direction_checked += 1;
                if hit.direction == truth.direction {
                    s.direction_right += 1;
                } else if trace {
                    eprintln!(
                        "  direction: {} truth {:?} {:.2}->{:.2} found {:?} {:.2}->{:.2} at {}",
                        st.name,
                        truth.direction,
                        truth.stars_before,
                        truth.stars_after,
                        hit.direction,
                        hit.before,
                        hit.after,
                        hit.index
                    );
                }
            }
            if truth.step && kind == Kind::Stars {
                let expected = truth.stars_after - truth.stars_before;
                s.step_errors
                    .push(((hit.after - hit.before) - expected).abs());
                // Sample means of the true segments around this change.
                let mut bounds: Vec<usize> = vec![0];
                bounds.extend(st.changes.iter().map(|c| c.index));
                bounds.push(n);
                let k = st.changes.iter().position(|c| c == truth).unwrap_or(0) + 1;
                let m = |a: usize, b: usize| {
                    mean(&points[a..b].iter().map(|p| p.value).collect::<Vec<_>>())
                };
                let sample = m(bounds[k], bounds[k + 1]) - m(bounds[k - 1], bounds[k]);
                s.step_errors_sample
                    .push(((hit.after - hit.before) - sample).abs());
            }
        }
    }
    let k = s.streams.max(1) as f64;
    s.f1 /= k;
    s.strict_f1 /= k;
    s.f1_week /= k;
    s.cover /= k;
    s.per_scenario = by_scenario
        .into_iter()
        .map(|(name, (count, f))| (name, (count, f / count.max(1) as f64)))
        .collect();
    s
}

/// The bound on localisation: per store, the exact optimum of the offline stars cost
/// with the true number of changes (`k_drift` for a drift, whose planted change is a ramp),
/// scored as the detector is. What it misses is lost to where the cost places a change,
/// not to whether a change is found. Per scenario F1, and the overall F1.
pub fn oracle(stores: &[Stream], k_drift: usize) -> (f64, BTreeMap<&'static str, f64>) {
    let mut by: BTreeMap<&'static str, (usize, f64)> = BTreeMap::new();
    let mut total = 0.0;
    for st in stores {
        let values: Vec<f64> = st.stars.iter().map(|p| p.value).collect();
        let k = if st.scenario == Scenario::DriftDown {
            k_drift
        } else {
            st.changes.len()
        };
        let pred = detect::offline_cost(Kind::Stars, &values)
            .map(|c| detect::search::optimal_k(&c, k, Settings::default().min_len))
            .unwrap_or_default();
        let f1 = metrics::f1(&st.annotations, &pred, values.len(), true);
        total += f1;
        let e = by.entry(st.scenario.as_str()).or_default();
        e.0 += 1;
        e.1 += f1;
    }
    let per = by
        .into_iter()
        .map(|(k, (c, f))| (k, f / c.max(1) as f64))
        .collect();
    (total / stores.len().max(1) as f64, per)
}

/// Generated stores for the given seeds.
pub fn stores(seeds: &[u64], per_scenario: usize) -> Vec<Stream> {
    seeds
        .iter()
        .flat_map(|&seed| streams::stores(seed, per_scenario))
        .collect()
}

#[derive(Debug, Clone)]
pub struct Throughput {
    pub what: String,
    pub points: usize,
    pub per_sec: f64,
    /// Online: the largest stored state of one series, in bytes.
    pub state_bytes: Option<usize>,
}

/// Online and offline throughput, each on one thread, with the data built before timing.
pub fn throughput(settings: &Settings) -> Vec<Throughput> {
    let mut out = Vec::new();
    // A dense stream: a year of a busy store repeated with its changes, 200k reviews.
    let mut dense: Vec<Point> = Vec::new();
    let mut offset = 0.0;
    let mut id = 0;
    while dense.len() < 200_000 {
        let s = streams::store_stream(99, id, Scenario::ALL[id % Scenario::ALL.len()]);
        id += 1;
        let last = s.stars.last().map_or(0.0, |p| p.t);
        dense.extend(s.stars.iter().map(|p| Point {
            t: p.t + offset,
            value: p.value,
        }));
        offset += last + 1.0;
    }
    dense.truncate(200_000);
    for kind in [Kind::Stars, Kind::Sentiment] {
        let pts: Vec<Point> = if kind == Kind::Sentiment {
            dense
                .iter()
                .map(|p| Point {
                    t: p.t,
                    value: (p.value - 3.0) / 2.0,
                })
                .collect()
        } else {
            dense.clone()
        };
        let start = Instant::now();
        let mut d = Online::new(kind, settings);
        let mut max_state = 0;
        let mut found = 0;
        for (i, p) in pts.iter().enumerate() {
            found += usize::from(d.push(*p).is_some());
            if i % 20_000 == 19_999 {
                max_state = max_state.max(d.state_bytes());
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let _ = found;
        out.push(Throughput {
            what: format!(
                "online {}, one dense stream (max {} runs)",
                kind.as_str(),
                settings.max_runs
            ),
            points: pts.len(),
            per_sec: pts.len() as f64 / secs,
            state_bytes: Some(max_state),
        });
    }
    // Sparse customers: 20,000 timelines of 40 events each, a new detector per timeline.
    let sparse: Vec<Vec<Point>> = (0..20_000)
        .map(|i| {
            let s = streams::store_stream(5, i, Scenario::ALL[i % 8]);
            s.stars.into_iter().step_by(9).take(40).collect()
        })
        .collect();
    let total: usize = sparse.iter().map(Vec::len).sum();
    let start = Instant::now();
    let mut max_state = 0;
    for (i, pts) in sparse.iter().enumerate() {
        let mut d = Online::new(Kind::Stars, settings);
        for p in pts {
            d.push(*p);
        }
        if i % 1000 == 0 {
            max_state = max_state.max(d.state_bytes());
        }
    }
    out.push(Throughput {
        what: "online stars, 20,000 sparse timelines".into(),
        points: total,
        per_sec: total as f64 / start.elapsed().as_secs_f64(),
        state_bytes: Some(max_state),
    });
    // Offline on 10^5 points: stars with their changes, a real signal, and a stretch
    // without any change (PELT's worst case).
    let stars: Vec<Point> = dense[..100_000].to_vec();
    let mut r = crate::synth::Rng::new(3);
    let mut level = 0.0;
    let real: Vec<Point> = (0..100_000)
        .map(|i| {
            if i % 2_000 == 0 {
                level += (r.below(200) as f64 - 100.0) / 50.0;
            }
            Point {
                t: i as f64,
                value: level + (r.below(1000) as f64 / 500.0 - 1.0),
            }
        })
        .collect();
    let quiet: Vec<Point> = (0..100_000)
        .map(|i| Point {
            t: i as f64,
            value: (r.below(1000) as f64 / 500.0 - 1.0),
        })
        .collect();
    for (what, kind, pts) in [
        (
            "offline stars (PELT + binary segmentation), 10^5 points",
            Kind::Stars,
            &stars,
        ),
        (
            "offline real (PELT + binary segmentation), 10^5 points",
            Kind::Real,
            &real,
        ),
        (
            "offline real, 10^5 points without a change (worst case)",
            Kind::Real,
            &quiet,
        ),
    ] {
        let start = Instant::now();
        let found = detect::offline(kind, pts, settings);
        let secs = start.elapsed().as_secs_f64();
        out.push(Throughput {
            what: format!("{what}: {} changes", found.len()),
            points: pts.len(),
            per_sec: pts.len() as f64 / secs,
            state_bytes: None,
        });
    }
    out
}

/// What `tideline bench detect` runs.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub tcpd: Option<PathBuf>,
    pub predictions: Option<PathBuf>,
    pub seeds: Vec<u64>,
    pub stores_per_scenario: usize,
    pub throughput: bool,
    pub verbose: bool,
    /// Overrides the default penalty, to show how flat the results are around it.
    pub penalty_ln_n: Option<f64>,
    /// Also score the oracle told the true number of changes (see [`oracle`]).
    pub oracle: bool,
}

/// Runs the benchmark and prints its figures to `out`.
pub fn report(o: &BenchOptions, out: &mut impl std::io::Write) -> Result<(), DetectBenchError> {
    let mut settings = Settings::default();
    if let Some(p) = o.penalty_ln_n {
        settings.penalty_ln_n = p;
    }
    let io = |source| DetectBenchError::Read {
        path: "stdout".into(),
        source,
    };
    writeln!(
        out,
        "settings: penalty {} ln n, min segment {}, min per side {}, tau {} days, max runs {}, confirm mass {}",
        settings.penalty_ln_n,
        settings.min_len,
        settings.min_side,
        settings.tau_secs / 86_400.0,
        settings.max_runs,
        settings.confirm_mass
    )
    .map_err(io)?;
    if let Some(dir) = &o.tcpd {
        let scores = tcpd(dir, &settings)?;
        if o.verbose {
            for s in &scores {
                writeln!(
                    out,
                    "  {:22} n={:4} f1={:.3} cover={:.3} predicted={:?}",
                    s.name, s.n, s.f1, s.cover, s.predicted
                )
                .map_err(io)?;
            }
        }
        let avg = |pick: &dyn Fn(&SeriesScore) -> bool| {
            let v: Vec<&SeriesScore> = scores.iter().filter(|s| pick(s)).collect();
            let k = v.len().max(1) as f64;
            (
                v.len(),
                v.iter().map(|s| s.f1).sum::<f64>() / k,
                v.iter().map(|s| s.cover).sum::<f64>() / k,
            )
        };
        for (label, (n, f, c)) in [
            ("all univariate series", avg(&|_| true)),
            (
                "the published table's series present here",
                avg(&|s| PUBLISHED_25.contains(&s.name.as_str())),
            ),
            (
                "quality-control series",
                avg(&|s| s.name.starts_with("quality_control")),
            ),
        ] {
            writeln!(out, "TCPD, {label} ({n}): F1 {f:.3}, cover {c:.3}").map_err(io)?;
        }
        if let Some(path) = &o.predictions {
            let map: BTreeMap<&str, &Vec<usize>> = scores
                .iter()
                .map(|s| (s.name.as_str(), &s.predicted))
                .collect();
            std::fs::write(path, serde_json::to_string_pretty(&map).unwrap_or_default()).map_err(
                |source| DetectBenchError::Read {
                    path: path.clone(),
                    source,
                },
            )?;
            writeln!(out, "predictions written to {}", path.display()).map_err(io)?;
        }
    }
    if !o.seeds.is_empty() {
        let all = stores(&o.seeds, o.stores_per_scenario);
        let sizes: Vec<usize> = all.iter().map(|s| s.stars.len()).collect();
        writeln!(
            out,
            "generated stores: {} (seeds {:?}, {} per scenario), {} to {} reviews each",
            all.len(),
            o.seeds,
            o.stores_per_scenario,
            sizes.iter().min().unwrap_or(&0),
            sizes.iter().max().unwrap_or(&0)
        )
        .map_err(io)?;
        if o.oracle {
            for k_drift in [1, 2, 3] {
                let (f, per) = oracle(&all, k_drift);
                let per: Vec<String> = per.iter().map(|(k, f)| format!("{k} {f:.3}")).collect();
                writeln!(
                    out,
                    "oracle stars (exact optimum of the offline cost, true number of changes; {k_drift} on a drift): F1 {f:.3}\n    per scenario F1: {}",
                    per.join(", ")
                )
                .map_err(io)?;
            }
        }
        for (channel, mode) in [
            (Channel::Stars, Mode::Offline),
            (Channel::Sentiment, Mode::Offline),
            (Channel::Reviews, Mode::Offline),
            (Channel::Stars, Mode::Online),
            (Channel::Sentiment, Mode::Online),
        ] {
            let s = synthetic(&all, channel, &settings, mode, o.verbose);
            let name = match channel {
                Channel::Stars => "stars",
                Channel::Sentiment => "sentiment",
                Channel::Reviews => "stars+text",
            };
            let mode_name = if mode == Mode::Offline {
                "offline"
            } else {
                "online "
            };
            let steps = if channel != Channel::Sentiment {
                let mut e = s.step_errors.clone();
                e.sort_by(f64::total_cmp);
                let p90 = e.get(e.len() * 9 / 10).copied().unwrap_or(0.0);
                format!(
                    "; step error vs the model {:.3} stars (p90 {p90:.3}), vs the sample {:.3}",
                    s.step_error_mean(),
                    mean(&s.step_errors_sample)
                )
            } else {
                String::new()
            };
            writeln!(
                out,
                "{mode_name} {name:10}: F1 {:.3} (strict {:.3}; within 7 days {:.3}), cover {:.3}; false alarms on {} quiet stores: {} confirmed, {} with any report; direction {}/{}{steps}",
                s.f1,
                s.strict_f1,
                s.f1_week,
                s.cover,
                s.quiet_streams,
                s.confirmed_false_alarms,
                s.false_alarms,
                s.direction_right,
                s.direction_checked,
            )
            .map_err(io)?;
            let per: Vec<String> = s
                .per_scenario
                .iter()
                .map(|(k, (_, f))| format!("{k} {f:.3}"))
                .collect();
            writeln!(out, "    per scenario F1: {}", per.join(", ")).map_err(io)?;
        }
    }
    if o.throughput {
        for t in throughput(&settings) {
            writeln!(
                out,
                "throughput, {}: {:.0} points/s over {} points{}",
                t.what,
                t.per_sec,
                t.points,
                t.state_bytes
                    .map(|b| format!("; largest state {b} bytes"))
                    .unwrap_or_default()
            )
            .map_err(io)?;
        }
    }
    Ok(())
}

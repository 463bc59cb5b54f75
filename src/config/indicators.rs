//! `[indicators]`: the small-sample rule, the composite index's weights, CSAT "satisfied"
//! thresholds per scale and business-hour support times. Every key is optional.

use crate::pipeline::indicators::{IndicatorSettings, Weights};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIndicators {
    min_sample: Option<u64>,
    #[serde(default)]
    weights: RawWeights,
    #[serde(default)]
    csat_satisfied_at: BTreeMap<String, f64>,
    business_hours: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeights {
    nps: Option<f64>,
    csat: Option<f64>,
    ces: Option<f64>,
    stars: Option<f64>,
}

/// Validates `[indicators]`, adding every problem with its fix to `problems`.
pub(super) fn validate(raw: RawIndicators, problems: &mut Vec<String>) -> IndicatorSettings {
    let mut s = IndicatorSettings::default();
    match raw.min_sample {
        Some(0) => problems.push(
            "indicators.min_sample: 0 would call every figure a large sample; fix: use 1 or more (default 30)"
                .into(),
        ),
        Some(n) => s.min_sample = n,
        None => {}
    }
    let d = Weights::default();
    let mut weight = |key: &str, v: Option<f64>, default: f64| match v {
        Some(w) if !w.is_finite() || w < 0.0 => {
            problems.push(format!(
                "indicators.weights.{key}: `{w}` is not a weight; fix: use a number of 0 or more (0 leaves the component out)"
            ));
            default
        }
        Some(w) => w,
        None => default,
    };
    s.weights = Weights {
        nps: weight("nps", raw.weights.nps, d.nps),
        csat: weight("csat", raw.weights.csat, d.csat),
        ces: weight("ces", raw.weights.ces, d.ces),
        stars: weight("stars", raw.weights.stars, d.stars),
    };
    let w = &s.weights;
    if w.nps + w.csat + w.ces + w.stars <= 0.0 {
        problems.push(
            "indicators.weights: every weight is 0; fix: give at least one component a positive weight"
                .into(),
        );
    }
    for (scale, t) in raw.csat_satisfied_at {
        let range = scale
            .split_once('-')
            .and_then(|(a, b)| Some((a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?)))
            .filter(|(a, b)| a < b);
        match range {
            None => problems.push(format!(
                "indicators.csat_satisfied_at: `{scale}` is not a scale; fix: name a numeric scale like \"1-5\" (good/bad needs no threshold)"
            )),
            Some((lo, hi)) if !(lo..=hi).contains(&t) => problems.push(format!(
                "indicators.csat_satisfied_at.\"{scale}\": {t} is outside the scale; fix: use an answer from {lo} to {hi}"
            )),
            Some(_) => {
                s.csat_satisfied_at.insert(scale, t);
            }
        }
    }
    s.business_hours = raw.business_hours.unwrap_or(false);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported_with_its_fix() {
        let raw: RawIndicators = toml::from_str(
            "min_sample = 0\n[weights]\nnps = -1\n[csat_satisfied_at]\n\"1-5\" = 9\n\"x\" = 1\n",
        )
        .unwrap();
        let mut problems = Vec::new();
        validate(raw, &mut problems);
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems.iter().all(|p| p.contains("fix:")));
        assert!(toml::from_str::<RawIndicators>("min_samples = 3").is_err());
    }

    #[test]
    fn defaults_and_overrides() {
        let raw: RawIndicators = toml::from_str(
            "min_sample = 10\n[weights]\nces = 0\n[csat_satisfied_at]\n\"1-10\" = 8\n",
        )
        .unwrap();
        let mut problems = Vec::new();
        let s = validate(raw, &mut problems);
        assert!(problems.is_empty());
        assert_eq!(s.min_sample, 10);
        assert_eq!((s.weights.ces, s.weights.nps), (0.0, 0.3));
        assert_eq!(s.csat_satisfied_at.get("1-10"), Some(&8.0));
    }
}

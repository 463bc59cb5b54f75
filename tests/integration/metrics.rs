//! Issue 7, indicators: answers imported through the real presets (out-of-scale ones
//! quarantined), read back through the store and through `tideline metrics`, compared with
//! hand-computed numbers. March 2024 in Europe/Berlin spans the DST change of 31 March.

use crate::common::{TestDb, bin};
use crate::on_both_backends;
use chrono::NaiveDate;
use std::path::{Path, PathBuf};
use tideline::connectors::files::Preset;
use tideline::ingest::{self, ImportOptions};
use tideline::outputs::indicators::{MetricsRequest, Scope, report};
use tideline::pipeline::indicators::{IndicatorSettings, PeriodSpec, Unit};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics")
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-6, "{a} != {b}");
}

async fn import(db: &TestDb) {
    let config = crate::common::demo_config();
    let analyzer = crate::common::analyzer(&config);
    let answers = ingest::import_file(
        db.store.as_ref(),
        analyzer.clone(),
        &config,
        &ImportOptions {
            path: fixtures().join("answers.csv"),
            preset: Preset::GenericCsv,
            mapping: Some(fixtures().join("answers.mapping.toml")),
            source: Some("survey".into()),
            location: None,
            timezone: None,
        },
    )
    .await
    .unwrap();
    // q1 (NPS 11), q2 (CSAT 6 on 1-5), q3 (CES 8 on 1-7), q4 (6 stars).
    assert_eq!(answers.quarantined, 4, "{answers:?}");
    let tickets = ingest::import_file(
        db.store.as_ref(),
        analyzer,
        &config,
        &ImportOptions {
            path: fixtures().join("tickets.json"),
            preset: Preset::ZendeskJson,
            mapping: None,
            source: None,
            location: None,
            timezone: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(tickets.inserted, 2, "{tickets:?}");
}

async fn indicators_match_hand_computed_numbers(db: TestDb) {
    import(&db).await;
    let config = crate::common::demo_config();
    let d = |m, day| NaiveDate::from_ymd_opt(2024, m, day).unwrap();
    let settings = IndicatorSettings {
        min_sample: 3,
        ..IndicatorSettings::default()
    };
    let req = MetricsRequest {
        scope: Scope::Location("berlin-mitte".into()),
        channel: None,
        customer: None,
        period: PeriodSpec::Dates(d(3, 1), d(3, 31)),
        by: Some(Unit::Day),
    };
    let r = report(
        db.store.as_ref(),
        &config.locations,
        chrono_tz::UTC,
        &settings,
        &req,
        0,
    )
    .await
    .unwrap();
    assert_eq!(r.groups.len(), 1);
    let g = &r.groups[0];
    assert_eq!(g.timezone, "Europe/Berlin");
    // March in Berlin: r1 (23:30Z on 29 Feb = 1 March 00:30 CET) .. r5 (21:30Z on 31 March
    // = 23:30 CEST); r6 (22:30Z = 1 April 00:30 CEST) is outside; plus tickets 501, 502.
    let c = &g.current;
    assert_eq!(c.interactions, 7);
    // NPS: 10, 9 promoters; 7, 8 passives; 3 detractor -> (2 - 1)/5 = 20.
    assert_eq!((c.nps.n, c.nps.promoters, c.nps.detractors), (5, 2, 1));
    close(c.nps.value.unwrap(), 20.0);
    // CSAT: 5, 4, good satisfied; 2, bad not -> 3/5 = 60%. Means apart per scale:
    // 1-5: (5 + 4 + 2)/3 = 3.6667; good/bad: (1 + 0)/2 = 0.5.
    close(c.csat.satisfied_pct.pct.unwrap(), 60.0);
    let means: Vec<(String, f64)> = c
        .csat
        .mean_by_scale
        .iter()
        .map(|m| (m.scale.clone(), m.mean.value.unwrap()))
        .collect();
    assert_eq!(means.len(), 2);
    close(means.iter().find(|m| m.0 == "1-5").unwrap().1, 11.0 / 3.0);
    close(means.iter().find(|m| m.0 == "good/bad").unwrap().1, 0.5);
    // CES: 6 (1-7), 2 on 1-5-reversed -> 1 + 6×3/4 = 5.5, 3 (1-7): mean 14.5/3 = 4.8333;
    // agreeing 6 and reversed 2, not 3 -> 2/3.
    close(c.ces.mean.value.unwrap(), 14.5 / 3.0);
    close(c.ces.agree_pct.pct.unwrap(), 200.0 / 3.0);
    // Stars: 5, 3 -> mean 4; the 6 was quarantined.
    close(c.stars.mean.value.unwrap(), 4.0);
    assert_eq!(c.stars.distribution, [0, 0, 1, 0, 1]);
    // Support: 501 metrics 600 min, 502 solved created -> updated 4 h = 240 min.
    // Hours 4, 10: median 7; p90 4 + 0.9 × 6 = 9.4. First reply 30 min = 0.5 h.
    assert_eq!(c.support.tickets, 2);
    close(c.support.resolution.median_hours.unwrap(), 7.0);
    close(c.support.resolution.p90_hours.unwrap(), 9.4);
    assert_eq!(c.support.resolution_approximate, 1);
    close(c.support.first_reply.median_hours.unwrap(), 0.5);
    close(c.support.reopen_rate.pct.unwrap(), 100.0);
    close(c.support.tickets_per_customer.unwrap(), 1.0);
    // Composite with min 3: NPS (20+100)/2 = 60 (w .3), CSAT 60 (w .3), CES 66.667 (w .2);
    // stars n = 2 left out -> (60×.3 + 60×.3 + 66.667×.2)/.8 = 61.6667.
    close(
        c.composite.value.unwrap(),
        (18.0 + 18.0 + 0.2 * 200.0 / 3.0) / 0.8,
    );
    assert!(c.composite.renormalised);
    // Previous period, 31 days before (30 Jan .. 29 Feb local): p1 10, p2 2, p3 9
    // (22:30Z on 29 Feb = 23:30 CET) -> (2 - 1)/3 = 33.33; CSAT 5 and 1 -> 50%.
    assert_eq!(g.previous_period.from, d(1, 30));
    close(g.previous.nps.value.unwrap(), 100.0 / 3.0);
    close(g.previous.csat.satisfied_pct.pct.unwrap(), 50.0);
    // Local-day buckets: 1 March holds r1 (NPS 10), 31 March holds r5 (NPS 3) only.
    let day = |k: &str| &g.buckets.iter().find(|b| b.key == k).unwrap().indicators;
    assert_eq!(g.buckets.len(), 31);
    assert_eq!(day("2024-03-01").nps.promoters, 1);
    assert_eq!(
        (day("2024-03-31").nps.n, day("2024-03-31").nps.detractors),
        (1, 1)
    );
    // Channels: survey/survey_response and zendesk/ticket.
    let keys: Vec<&str> = g.channels.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys.len(), 2, "{keys:?}");

    // Every location: Warsaw's w1, w2 -> NPS 100 (n = 2, a small sample under 3).
    let all = report(
        db.store.as_ref(),
        &config.locations,
        chrono_tz::UTC,
        &settings,
        &MetricsRequest {
            scope: Scope::AllLocations,
            by: None,
            ..req.clone()
        },
        0,
    )
    .await
    .unwrap();
    let warsaw = all
        .groups
        .iter()
        .find(|g| g.location_id.as_deref() == Some("warsaw-centrum"))
        .unwrap();
    assert_eq!(warsaw.current.nps.value, Some(100.0));
    assert!(warsaw.current.nps.small_sample);

    // The same through the binary, JSON and table.
    let cfg = db.dir.path().join("tideline.toml");
    std::fs::write(
        &cfg,
        format!(
            "{}\n[indicators]\nmin_sample = 3\n",
            include_str!("../../samples/demo/tideline.toml")
        ),
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let out = bin()
            .arg("--config")
            .arg(&cfg)
            .arg("--database-url")
            .arg(db.url.expose())
            .args([
                "metrics",
                "--location",
                "berlin-mitte",
                "--from",
                "2024-03-01",
                "--to",
                "2024-03-31",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let v: serde_json::Value = serde_json::from_str(&run(&["--format", "json"])).unwrap();
    let cur = &v["groups"][0]["current"];
    assert_eq!(cur["nps"]["value"].as_f64(), Some(20.0));
    assert_eq!(cur["nps"]["n"].as_u64(), Some(5));
    assert_eq!(cur["csat"]["satisfied_pct"]["pct"].as_f64(), Some(60.0));
    close(
        cur["composite"]["value"].as_f64().unwrap(),
        (18.0 + 18.0 + 0.2 * 200.0 / 3.0) / 0.8,
    );
    assert_eq!(
        cur["composite"]["components"][3]["left_out"].as_str(),
        Some("small sample")
    );
    let table = run(&["--format", "table"]);
    assert!(table.contains("NPS"), "{table}");
    assert!(table.contains("20 (n=5)"), "{table}");
    // Stars n = 2 < 3: flagged.
    assert!(table.contains("4.00 (n=2)"), "{table}");
    assert!(table.contains("small sample"), "{table}");
}

on_both_backends!(indicators_match_hand_computed_numbers);

#[test]
fn the_example_config_declares_the_indicator_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    let c = tideline::config::Config::from_toml(
        &std::fs::read_to_string(path).unwrap(),
        "example",
        &tideline::config::Overrides::default(),
    )
    .unwrap();
    assert_eq!(c.indicators.min_sample, 30);
    assert_eq!(c.indicators.weights, Default::default());
    assert_eq!(c.indicators.csat_satisfied_at.get("1-5"), Some(&4.0));
}

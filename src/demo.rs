//! `tideline demo`: a fresh SQLite database in a directory, the bundled sample exports
//! imported through the same path as `tideline import`, and what a user wants to see
//! printed and written: the reputation report (HTML, CSV, JSON), per-location figures, a
//! few customer timelines, the quarantine.

use crate::config::{Config, Overrides};
use crate::connectors::files::Preset;
use crate::ingest::{self, ImportOptions, ImportReport, IngestError};
use crate::outputs::{quarantine, summary, timeline};
use crate::pipeline::Analyzer;
use crate::store::{self, ConnectOptions, StoreError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The bundled sample files, written into `<out>/samples/` before import.
const SAMPLES: &[(&str, &[u8])] = &[
    (
        "tideline.toml",
        include_bytes!("../samples/demo/tideline.toml"),
    ),
    (
        "zendesk_tickets.csv",
        include_bytes!("../samples/demo/zendesk_tickets.csv"),
    ),
    (
        "zendesk_incremental_page1.json",
        include_bytes!("../samples/demo/zendesk_incremental_page1.json"),
    ),
    (
        "zendesk_incremental_page2.json",
        include_bytes!("../samples/demo/zendesk_incremental_page2.json"),
    ),
    (
        "delighted_responses.json",
        include_bytes!("../samples/demo/delighted_responses.json"),
    ),
    ("reviews.csv", include_bytes!("../samples/demo/reviews.csv")),
    (
        "reviews.mapping.toml",
        include_bytes!("../samples/demo/reviews.mapping.toml"),
    ),
    ("README.md", include_bytes!("../samples/demo/README.md")),
];

/// (file, preset, mapping, source)
/// The bundled samples in import order: (file, preset, mapping, source).
pub const IMPORTS: &[(&str, Preset, Option<&str>, &str)] = &[
    ("zendesk_tickets.csv", Preset::ZendeskCsv, None, "zendesk"),
    (
        "zendesk_incremental_page1.json",
        Preset::ZendeskJson,
        None,
        "zendesk",
    ),
    (
        "zendesk_incremental_page2.json",
        Preset::ZendeskJson,
        None,
        "zendesk",
    ),
    (
        "delighted_responses.json",
        Preset::DelightedJson,
        None,
        "delighted",
    ),
    (
        "reviews.csv",
        Preset::GenericCsv,
        Some("reviews.mapping.toml"),
        "reviews",
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot prepare `{path}`: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Timeline(#[from] timeline::TimelineError),
    #[error(transparent)]
    Analyze(#[from] crate::analyze::AnalyzeError),
    #[error(transparent)]
    Report(#[from] crate::outputs::indicators::IndicatorsError),
    #[error("cannot write the CSV report: {0}")]
    Csv(#[from] csv::Error),
}

/// What the demo did, for its caller and tests.
#[derive(Debug)]
pub struct DemoReport {
    pub out_dir: PathBuf,
    pub database: PathBuf,
    pub imports: Vec<ImportReport>,
    pub text: String,
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), DemoError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| DemoError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, bytes).map_err(|source| DemoError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Runs the demo into `out`. Any database left there by an earlier demo is replaced.
pub async fn run(out: &Path) -> Result<DemoReport, DemoError> {
    let samples = out.join("samples");
    for (name, bytes) in SAMPLES {
        write(&samples.join(name), bytes)?;
    }
    let database = out.join("tideline.db");
    store::remove_database(&database).map_err(|source| DemoError::Io {
        path: database.clone(),
        source,
    })?;
    let overrides = Overrides {
        database_url: Some(crate::config::Secret::new(format!(
            "sqlite://{}",
            database.display()
        ))),
        data_dir: Some(out.to_path_buf()),
    };
    let config = Config::load(Some(&samples.join("tideline.toml")), &overrides)?;
    let store = store::connect(
        &config.storage.effective_url(),
        &ConnectOptions::from(&config.storage),
    )
    .await?;
    store.put_locations(&config.locations).await?;
    let analyzer = Arc::new(Analyzer::from_config(&config.pipeline));

    let mut text = String::from(
        "Tideline demo: Harbor & Crumb, five stores, tickets, surveys and reviews.\n\n",
    );
    let mut imports = Vec::new();
    text.push_str("Imported\n");
    for (file, preset, mapping, source) in IMPORTS {
        let opts = ImportOptions {
            path: samples.join(file),
            preset: *preset,
            mapping: mapping.map(|m| samples.join(m)),
            source: Some(source.to_string()),
            location: None,
            timezone: None,
        };
        let r = ingest::import_file(store.as_ref(), analyzer.clone(), &config, &opts).await?;
        text.push_str(&format!(
            "  {:<32} {:<15} read {:>4}  inserted {:>4}  updated {:>3}  unchanged {:>3}  quarantined {}\n",
            file, preset.name(), r.read, r.inserted, r.updated, r.unchanged, r.quarantined
        ));
        imports.push(r);
    }
    let counts = store.counts().await?;
    text.push_str(&format!(
        "\n{} interactions from {} customers ({} identities); {} rows in quarantine.\n\n",
        counts.interactions, counts.customers, counts.identities, counts.quarantine_open
    ));

    let locations = store.locations().await?;
    let figs = summary::figures(&store.location_summaries().await?, &locations);
    text.push_str("Per location\n\n");
    text.push_str(&summary::render_text(&figs));
    write(
        &out.join("summary.md"),
        format!(
            "# Harbor & Crumb: per-location summary\n\n{}",
            summary::render_markdown(&figs)
        )
        .as_bytes(),
    )?;
    write(
        &out.join("summary.json"),
        serde_json::to_string_pretty(&figs)
            .expect("plain data")
            .as_bytes(),
    )?;

    // Change detection over everything imported, as the daemon does after each sync, and
    // its display-name pass.
    store
        .suggest_by_name(config.identity.name_window_days as i64 * 86_400_000)
        .await?;
    let analysis = crate::analyze::analyze(
        store.as_ref(),
        &crate::pipeline::detect::Settings::default(),
        crate::store::now_ms(),
    )
    .await?;

    let countries: Vec<String> = config.phone_countries();
    let busiest = store.busiest_customers(10).await?;
    text.push_str(
        "\nCustomer timelines (the three seen in the most sources; all ten in timelines/)\n\n",
    );
    for (k, c) in busiest.iter().enumerate() {
        let t = timeline::load(store.as_ref(), &c.customer_id, &countries).await?;
        let table = timeline::render_table(&t);
        write(
            &out.join("timelines")
                .join(format!("{}.json", c.customer_id)),
            serde_json::to_string_pretty(&t)
                .expect("plain data")
                .as_bytes(),
        )?;
        write(
            &out.join("timelines").join(format!("{}.txt", c.customer_id)),
            table.as_bytes(),
        )?;
        if k < 3 {
            text.push_str(&format!(
                "{} ({} interactions in {} sources)\n{table}\n",
                c.display_name.as_deref().unwrap_or("?"),
                c.interactions,
                c.sources
            ));
        }
    }

    let changes = store.changes(&Default::default()).await?;
    let confirmed: Vec<_> = changes
        .iter()
        .filter(|c| c.change.status == "confirmed")
        .cloned()
        .collect();
    text.push_str(&format!(
        "Changes ({} series: {} confirmed, {} watched, {} incidents on customer timelines; all in changes.txt)\n\n",
        analysis.series, analysis.confirmed, analysis.watching, analysis.incidents
    ));
    text.push_str(&crate::outputs::changes::render_table(&confirmed));
    text.push('\n');
    write(
        &out.join("changes.txt"),
        crate::outputs::changes::render_table(&changes).as_bytes(),
    )?;
    write(
        &out.join("changes.json"),
        serde_json::to_string_pretty(&changes)
            .expect("plain data")
            .as_bytes(),
    )?;

    // The reputation report of the last 90 days of the samples against the 90 before.
    let newest = figs
        .iter()
        .filter_map(|f| f.last_at.as_deref())
        .max()
        .and_then(|d| chrono::NaiveDate::parse_from_str(d.get(..10)?, "%Y-%m-%d").ok());
    if let Some(newest) = newest {
        use crate::outputs::report;
        let req = report::ReportRequest {
            scope: crate::outputs::indicators::Scope::AllLocations,
            period: crate::pipeline::indicators::PeriodSpec::Dates(
                newest - chrono::Duration::days(89),
                newest,
            ),
            waiting_limit: report::WAITING_LIMIT,
        };
        let r = report::build(store.as_ref(), &config, &req, crate::store::now_ms()).await?;
        write(
            &out.join("report.html"),
            report::html::render(&r).as_bytes(),
        )?;
        write(&out.join("report.csv"), report::csv::render(&r)?.as_bytes())?;
        write(
            &out.join("report.json"),
            serde_json::to_string_pretty(&r)
                .expect("plain data")
                .as_bytes(),
        )?;
        text.push_str(&format!(
            "Reputation report, {} to {} against the 90 days before (report.html)
",
            newest - chrono::Duration::days(89),
            newest
        ));
        for p in &r.portfolio {
            let waiting = r
                .locations
                .iter()
                .find(|l| l.indicators.location_id.as_deref() == Some(p.location_id.as_str()))
                .map_or(0, |l| l.waiting_total);
            text.push_str(&format!(
                "  {}. {:<22} reviews {:>3} (before {:>3})  stars {} (before {})  waiting for an answer {}{}\n",
                p.rank,
                crate::outputs::one_line(&p.name, 22),
                p.reviews,
                p.reviews_previous,
                p.stars.map_or("-".into(), |s| format!("{s:.2}")),
                p.stars_previous.map_or("-".into(), |s| format!("{s:.2}")),
                waiting,
                if p.moved { "  moved" } else { "" }
            ));
        }
        text.push('\n');
    }

    let quarantine = store.quarantine(Some("open")).await?;
    text.push_str("Quarantine (fix the mapping or the file, then `tideline quarantine replay`)\n");
    for q in &quarantine {
        text.push_str(&format!("  {}\n", quarantine::render_line(q, true)));
    }
    write(
        &out.join("quarantine.json"),
        serde_json::to_string_pretty(&quarantine)
            .expect("plain data")
            .as_bytes(),
    )?;
    text.push_str(&format!(
        "\nWritten to {}: tideline.db, report.html, report.csv, report.json, summary.md, summary.json, timelines/, changes.txt, changes.json, quarantine.json\n",
        out.display()
    ));
    write(&out.join("demo.txt"), text.as_bytes())?;
    Ok(DemoReport {
        out_dir: out.to_path_buf(),
        database,
        imports,
        text,
    })
}

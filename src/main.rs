//! The `tideline` command: parses arguments, loads the configuration, and calls the
//! library. The only place that uses `anyhow`.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tideline::config::{Config, Overrides, Secret, redact_url};
use tideline::connectors::files::Preset;
use tideline::ingest::{self, ImportOptions};
use tideline::learn;
use tideline::outputs::{summary, timeline};
use tideline::pipeline::Analyzer;
use tideline::store::{self, ConnectOptions, Store};

/// mimalloc instead of glibc's allocator: resolving and writing a batch frees many small
/// strings and then allocates large buffers, which sent glibc into `malloc_consolidate`
/// for a fifth of the identity benchmark's time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "tideline",
    version,
    about = "How your customers feel, and when that changed."
)]
struct Cli {
    /// Configuration file (TOML). Without it, the defaults apply.
    #[arg(long, global = true, env = "TIDELINE_CONFIG")]
    config: Option<PathBuf>,
    /// Database URL (sqlite://PATH or postgres://...); wins over the config file.
    #[arg(
        long,
        global = true,
        env = "TIDELINE_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// Data directory (holds the SQLite file); wins over the config file.
    #[arg(long, global = true, env = "TIDELINE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the daemon until SIGTERM or Ctrl-C (SIGHUP reloads the configuration).
    Run,
    /// Import the new files of watched folders (`[[watch]]`) once, and exit.
    Watch {
        /// Watch names; all when none is given.
        names: Vec<String>,
        #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
        format: SummaryFormat,
    },
    /// Run connectors once, each until the end of its stream, and exit.
    Sync {
        /// Connector names (`[[connector]]` name); all when none is given.
        names: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
        format: SummaryFormat,
    },
    /// The local reputation report of a period against the one before it: per location
    /// (or all, with the portfolio ranking) indicators with sample sizes, reviews and
    /// response times, sentiment per language and channel, rising topics, changes with
    /// their evidence, reviews waiting for an answer.
    Report {
        /// One configured location.
        #[arg(long, conflicts_with = "all")]
        location: Option<String>,
        /// Every configured location (the default).
        #[arg(long)]
        all: bool,
        /// First local date (YYYY-MM-DD), with --to.
        #[arg(long, requires = "to")]
        from: Option<String>,
        /// Last local date, included.
        #[arg(long, requires = "from")]
        to: Option<String>,
        /// last-<N>d (today included), or the last complete week, month, quarter or year.
        #[arg(long, default_value = "last-30d")]
        period: String,
        #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
        format: ReportFormat,
        /// How many reviews waiting for an answer to list per location.
        #[arg(long, default_value_t = tideline::outputs::report::WAITING_LIMIT)]
        waiting: usize,
        /// Where to write it (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Connectors and other sources: last run, counts and health.
    Sources {
        #[command(subcommand)]
        command: SourcesCommand,
    },
    /// Import the bundled samples into a fresh SQLite database and show what Tideline sees.
    Demo {
        /// Where to put the database, the summary and the timelines.
        #[arg(long, default_value = "tideline-demo")]
        out: PathBuf,
    },
    /// Import an export file.
    Import {
        path: PathBuf,
        /// generic-csv, generic-json, zendesk-csv, zendesk-json, delighted-json, qualtrics-csv,
        /// surveymonkey-csv, intercom-csv, intercom-json or typeform-json.
        #[arg(long)]
        preset: String,
        /// Column mapping (TOML) for the generic presets; refines the others (typeform-json:
        /// the answer refs of each role).
        #[arg(long)]
        mapping: Option<PathBuf>,
        /// Source name the records are stored under (default: from the preset).
        #[arg(long)]
        source: Option<String>,
        /// Location id for records that name none.
        #[arg(long)]
        location: Option<String>,
        /// Time zone for dates without an offset (default: the location's, then import.default_timezone).
        #[arg(long)]
        timezone: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Show one customer's timeline.
    Timeline {
        /// An email, a phone number, a platform id (zendesk_user:42) or a customer id.
        identity: String,
        #[arg(long, value_enum, default_value_t = TimelineFormat::Table)]
        format: TimelineFormat,
    },
    /// Service indicators (NPS, CSAT, CES, stars, support times, composite index) of a
    /// period and the one before it, each with its sample size and 95% interval.
    Metrics {
        /// One configured location (periods in its time zone).
        #[arg(long, conflicts_with = "all")]
        location: Option<String>,
        /// Every configured location, one after another.
        #[arg(long)]
        all: bool,
        /// A source, a kind, or `source/kind`.
        #[arg(long)]
        channel: Option<String>,
        /// One customer id.
        #[arg(long)]
        customer: Option<String>,
        /// First local date (YYYY-MM-DD), with --to.
        #[arg(long, requires = "to", conflicts_with = "period")]
        from: Option<String>,
        /// Last local date, included.
        #[arg(long, requires = "from")]
        to: Option<String>,
        /// last-<N>d (today included), or the last complete week, month, quarter or year.
        #[arg(long, default_value = "last-30d")]
        period: String,
        /// Buckets inside the period.
        #[arg(long, value_parser = ["day", "week", "month", "quarter"])]
        by: Option<String>,
        #[arg(long, value_parser = ["json", "table"], default_value = "table")]
        format: String,
    },
    /// Show the per-location figures.
    Summary {
        #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
        format: SummaryFormat,
    },
    /// List, replay or dismiss rows that could not be imported.
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// Customers: links the resolver held back for you to decide.
    Customers {
        #[command(subcommand)]
        command: CustomersCommand,
    },
    /// Detect changes: JSONL observations `{"series", "t", "value"}` on stdin, one JSON
    /// line per change on stdout.
    Detect {
        #[arg(long, value_enum, default_value_t = DetectMode::Offline)]
        mode: DetectMode,
        #[arg(long, value_enum, default_value_t = DetectKind::Real)]
        kind: DetectKind,
    },
    /// Feed interactions stored since the last pass to the change detectors.
    Analyze {
        /// Forget every detector state and stored change first, and read all history.
        #[arg(long)]
        rebuild: bool,
    },
    /// List detected changes and incidents with their evidence, newest first.
    Changes {
        /// Only this location's changes.
        #[arg(long, conflicts_with = "customer")]
        location: Option<String>,
        /// Only this customer's (an email, a phone, a platform id or a cus_ id).
        #[arg(long)]
        customer: Option<String>,
        /// Only changes on or after this date (YYYY-MM-DD, UTC).
        #[arg(long)]
        since: Option<chrono::NaiveDate>,
        #[arg(long, value_enum, default_value_t = TimelineFormat::Table)]
        format: TimelineFormat,
    },
    /// Score texts: JSONL `{"id", "text", "lang"?}` on stdin, one JSON line per text on stdout.
    Score {
        /// Language to assume for texts too short to detect (ISO 639-1).
        #[arg(long)]
        lang_hint: Option<String>,
        /// Use this deployment's adapted model from the database instead of the built-in one.
        #[arg(long)]
        adapted: bool,
    },
    /// Adapt the sentiment model to this deployment's rated texts, or show past runs.
    Sentiment {
        #[command(subcommand)]
        command: SentimentCommand,
    },
    /// Check the configuration and exit.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// CRM sync (`[[crm.sink]]`: HubSpot, Salesforce, a signed webhook) through the
    /// outbox: deliver, inspect, retry parked items.
    Crm {
        #[command(subcommand)]
        command: CrmCommand,
    },
    /// Email digests (`[[digest.recipient]]`): write one without sending it, or send the
    /// due ones now. Each (recipient, period) is sent once, whoever sends it.
    #[command(group(clap::ArgGroup::new("action").required(true).args(["preview", "send_now"])))]
    Digest {
        /// Write the digest of --recipient to --out as an RFC 5322 message (.eml: headers,
        /// text and HTML parts) without sending it or marking it sent.
        #[arg(long, requires_all = ["recipient", "out"])]
        preview: bool,
        /// Send every due digest not sent yet (or only --recipient's) over [smtp].
        #[arg(long)]
        send_now: bool,
        /// The recipient's email address.
        #[arg(long)]
        recipient: Option<String>,
        /// Where --preview writes the message.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Act as if it were this instant (RFC 3339), e.g. to preview an earlier period.
        #[arg(long)]
        at: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Subcommand, Debug)]
enum CrmCommand {
    /// Deliver what the CRM sinks (`[[crm.sink]]`) have not received yet: every
    /// interaction and change once (upserts by Tideline's key), erasures as deletes. The
    /// first sync of a sink sends the whole history. Waits for retries that are due within
    /// --wait-secs, so a manual run drains the queue.
    Sync {
        /// One sink by name; all when omitted.
        #[arg(long)]
        sink: Option<String>,
        /// Show what would be sent (the first items of each queue, as the CRM would get
        /// them) without sending anything or changing the queue.
        #[arg(long)]
        dry_run: bool,
        /// How many items --dry-run shows per sink.
        #[arg(long, default_value_t = 5)]
        limit: i64,
        /// Wait at most this long for items in backoff before ending the run.
        #[arg(long, default_value_t = 120)]
        wait_secs: u64,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Each sink's queue: pending, due, parked, delivered, the last run and its error.
    /// Exits 1 when an item is parked or the last run stopped on an error.
    Status {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Items a CRM refused (or that failed too often), with the reason.
    Parked {
        #[arg(long)]
        sink: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Put parked items back in the queue (the ids from `crm parked`, or all of --sink,
    /// or all); the next sync tries them again.
    Retry {
        ids: Vec<i64>,
        #[arg(long)]
        sink: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum CustomersCommand {
    /// Open link suggestions: records that a shared phone would have joined to someone else,
    /// and customers who share a full display name (scored, with their evidence).
    Suggestions {
        #[arg(long, value_enum, default_value_t = TimelineFormat::Table)]
        format: TimelineFormat,
    },
    /// One customer: identities, where they spoke, changes, open link suggestions.
    Show {
        /// An email, a phone number, a platform id or a customer id.
        identity: String,
        #[arg(long, value_enum, default_value_t = TimelineFormat::Table)]
        format: TimelineFormat,
    },
    /// Join the customers of two identities (an operator's decision, recorded with the
    /// merges; it closes the link suggestion between them).
    Link { a: String, b: String },
    /// Split two identities' customer apart along the recorded evidence (an operator's
    /// decision, recorded; later syncs keep them apart).
    Unlink { a: String, b: String },
    /// Erase a person (GDPR): their customer, identities, interactions, quarantined rows and
    /// derived figures; only keyed hashes stay, so later imports bring nothing of them back.
    Erase {
        /// An email, a phone number, a platform id or a customer id.
        identity: String,
        /// Confirm: without it, nothing is erased.
        #[arg(long)]
        yes: bool,
    },
    /// Reject a link between the customers of two identities (a display-name or shared-phone
    /// suggestion): it is closed and never suggested again.
    Dismiss { a: String, b: String },
    /// Identities blocked automatically because they would have joined more than
    /// `identity.max_customers_per_identity` otherwise separate customers.
    Blocked {
        #[arg(long, value_enum, default_value_t = TimelineFormat::Table)]
        format: TimelineFormat,
    },
    /// Let an automatically blocked identity (`kind:value` as `customers blocked` lists it)
    /// join people again; it is never blocked automatically again.
    Unblock { identity: String },
}

#[derive(Subcommand, Debug)]
enum SentimentCommand {
    /// Train on the texts that came with stars, NPS or CSAT; adopt the result when it does at
    /// least as well as the built-in model on the held-out fifth, then re-score stored texts.
    Train {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Score again every stored text the model in use did not score (after an upgrade
    /// that changed the built-in model, for example). The daemon does this at start.
    Rescore,
    /// The model in use and the past training runs with their held-out accuracy.
    Status {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum ReportFormat {
    Json,
    Csv,
    Html,
}

#[derive(Subcommand, Debug)]
enum SourcesCommand {
    /// Each connector's last run, what it fetched in the last 24 hours and the 24 before,
    /// and its health (failing, quiet, stale); exits 1 when a source has a problem.
    Status {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Subcommand, Debug)]
enum QuarantineCommand {
    /// List quarantined rows.
    List {
        #[arg(long, value_enum, default_value_t = TimelineFormat::Table)]
        format: TimelineFormat,
        /// open, replayed, dismissed or all.
        #[arg(long, default_value = "open")]
        status: String,
    },
    /// Import quarantined rows again, e.g. after fixing the mapping.
    Replay {
        /// Only these ids (default: every open row).
        #[arg(long = "id")]
        ids: Vec<i64>,
        /// A corrected mapping to use instead of the one recorded.
        #[arg(long)]
        mapping: Option<PathBuf>,
    },
    /// Stop listing rows you decided to drop.
    Dismiss { ids: Vec<i64> },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Validate the configuration, printing every problem at once.
    Check,
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Language and sentiment accuracy per language on a labelled CSV (`lang,text,label`),
    /// e.g. the evaluation sets in ../shared/eval/sentiment/ (read, never shipped).
    Sentiment {
        /// One or more labelled CSV files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Also print each language's confusion matrix.
        #[arg(long)]
        verbose: bool,
    },
    /// Throughput of `tideline score` on one thread (JSON in and out, language detection,
    /// sentiment, aspects) over texts of about 100 characters taken from labelled CSVs.
    Score {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Shortest text used, in characters.
        #[arg(long, default_value_t = 80)]
        min_chars: usize,
        /// Longest text used, in characters.
        #[arg(long, default_value_t = 120)]
        max_chars: usize,
        /// Texts to score (the selection repeats until there are this many).
        #[arg(long, default_value_t = 50_000)]
        texts: usize,
    },
    /// Identity resolution on a generated world: pairwise merge precision and recall over
    /// strong identifiers, merges from display names alone, and time.
    Identity {
        #[arg(long, default_value_t = 3_000)]
        people: u32,
        #[arg(long, default_value_t = 12_000)]
        interactions: u64,
        /// Seeds to run (each a different world).
        #[arg(long, default_values_t = vec![7, 11, 13])]
        seed: Vec<u64>,
        /// Where the temporary database goes.
        #[arg(long, default_value = "target/bench-identity")]
        dir: PathBuf,
    },
    /// Change detection: accuracy on TCPD and on generated satisfaction streams, and
    /// throughput of the online and offline detectors.
    Detect {
        /// A TCPD directory (series files and annotations.json), e.g. ../shared/eval/tcpd.
        #[arg(long)]
        tcpd: Option<PathBuf>,
        /// Write the TCPD predictions as JSON (`{series: [index, ...]}`) for cpd_score.py.
        #[arg(long)]
        predictions: Option<PathBuf>,
        /// Seeds of the generated stores.
        #[arg(long, value_delimiter = ',', default_values_t = vec![7, 11, 13])]
        seed: Vec<u64>,
        /// Skip the generated stores.
        #[arg(long)]
        no_streams: bool,
        #[arg(long, default_value_t = 15)]
        stores_per_scenario: usize,
        /// Skip the throughput runs.
        #[arg(long)]
        no_throughput: bool,
        /// Print every TCPD series (and, on stderr, every generated store not read perfectly).
        #[arg(long)]
        verbose: bool,
        /// Penalty per change as a multiple of ln(n), instead of the default 3: shows how
        /// the figures move around the one setting.
        #[arg(long)]
        penalty_ln_n: Option<f64>,
        /// Also score an oracle told the true number of changes per store, placing them at
        /// the exact optimum of the offline stars cost: the bound on localisation.
        #[arg(long)]
        oracle: bool,
    },
    /// Generate a Zendesk-style export and import it into a fresh SQLite database.
    Import {
        #[arg(long, default_value_t = 200_000)]
        rows: u64,
        /// Every Nth row is malformed (0: none).
        #[arg(long, default_value_t = 100)]
        bad_every: u64,
        /// Working directory (default: a temporary one).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Import into a fresh schema on this PostgreSQL server instead of SQLite
        /// (e.g. postgres://postgres@127.0.0.1:5432/test); the schema is dropped afterwards.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// The HTTP API under load: a fresh SQLite store filled with generated interactions,
    /// then customer timelines requested at random over loopback; latency percentiles.
    Api {
        #[arg(long, default_value_t = 1_000_000)]
        interactions: u64,
        #[arg(long, default_value_t = 100_000)]
        customers: u64,
        #[arg(long, default_value_t = 20_000)]
        requests: u64,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Interactions per write batch while filling.
        #[arg(long, default_value_t = 10_000)]
        batch: usize,
        /// Working directory (default: a temporary one, removed afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The reputation report of all locations (last 90 days against the 90 before) over a
    /// generated store: build time, then HTML, CSV and JSON rendering, rows, peak memory.
    Report {
        #[arg(long, default_value_t = 1_000_000)]
        interactions: u64,
        #[arg(long, default_value_t = 100)]
        locations: u64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Where the temporary SQLite database goes (removed afterwards).
        #[arg(long, default_value = "target/bench-report")]
        dir: PathBuf,
        /// Fill a fresh schema on this PostgreSQL server instead of SQLite
        /// (e.g. postgres://postgres@127.0.0.1:5432/test); the schema is dropped afterwards.
        #[arg(long)]
        postgres: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum DetectMode {
    /// Read everything, then segment each series (PELT, binary segmentation as a check).
    Offline,
    /// Bayesian online detection: write each change the moment it is confirmed.
    Online,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum DetectKind {
    /// Star ratings 1-5.
    Stars,
    /// Sentiment scores in [-1, 1].
    Sentiment,
    /// NPS answers 0-10 (before/after are NPS scores).
    Nps,
    /// Outcomes 0/1 (before/after are rates).
    Outcome,
    /// Any real-valued signal, no assumption about its scale.
    Real,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Format {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum TimelineFormat {
    Json,
    Table,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum SummaryFormat {
    Text,
    Json,
    Markdown,
}

unsafe extern "C" {
    /// mimalloc's own collection (linked in through the `mimalloc` crate): frees what the
    /// heaps no longer use and returns the pages to the operating system.
    fn mi_collect(force: bool);
}

/// mimalloc keeps freed pages until it is asked to collect; the library asks after its
/// one-off jobs (training the built-in model, loading the language models).
fn collect_freed_pages() {
    // SAFETY: mi_collect takes no pointers and only releases memory no block uses.
    unsafe { mi_collect(true) }
}

fn main() -> ExitCode {
    tideline::telemetry::set_release_hook(collect_freed_pages);
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run) {
        // A one-shot command piped into `head` should end quietly when the pipe closes, as
        // Unix tools do, instead of panicking on the failed write. The daemon keeps Rust's
        // default (SIGPIPE ignored) so a closed socket is an error, never a kill.
        #[cfg(unix)]
        // SAFETY: called before any thread starts; restores the default disposition.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn open_store(config: &Config) -> Result<Arc<dyn Store>> {
    let url = config.storage.effective_url();
    let store = store::connect(&url, &ConnectOptions::from(&config.storage)).await?;
    store.put_locations(&config.locations).await?;
    tracing::debug!(database = %redact_url(url.expose()), backend = store.backend(), "Store opened.");
    Ok(store)
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let overrides = Overrides {
        database_url: cli.database_url.clone().map(Secret::new),
        data_dir: cli.data_dir.clone(),
    };
    let config = Config::load(cli.config.as_deref(), &overrides)?;
    let daemon = matches!(cli.command, Command::Run);
    tideline::telemetry::init(
        config.log.format,
        if daemon { &config.log.level } else { "warn" },
    );
    match cli.command {
        Command::Run => run_daemon(config, cli.config.clone(), overrides).await,
        Command::Sync { names, format } => sync_once(&config, &names, format).await,
        Command::Watch { names, format } => watch_once(&config, &names, format).await,
        Command::Report {
            location,
            all: _,
            from,
            to,
            period,
            format,
            waiting,
            out,
        } => {
            use tideline::outputs::indicators as ind;
            let period = match (from, to) {
                (Some(a), Some(b)) => {
                    let date = |s: &str| {
                        ind::parse_date(s)
                            .with_context(|| format!("`{s}` is not a date; use YYYY-MM-DD"))
                    };
                    let (a, b) = (date(&a)?, date(&b)?);
                    if b < a {
                        bail!("--to {b} is before --from {a}");
                    }
                    tideline::pipeline::indicators::PeriodSpec::Dates(a, b)
                }
                _ => ind::parse_period(&period)?,
            };
            let scope = match location {
                Some(id) => ind::Scope::Location(id),
                None => ind::Scope::AllLocations,
            };
            let store = open_store(&config).await?;
            let now = chrono::Utc::now().timestamp_millis();
            let mut report = tideline::outputs::report::build(
                store.as_ref(),
                &config,
                &tideline::outputs::report::ReportRequest {
                    scope,
                    period,
                    waiting_limit: waiting,
                },
                now,
            )
            .await?;
            // Competitors' figures are fetched now and only put into this report.
            tideline::competitors::add_to(&mut report, &config, &|| {
                chrono::Utc::now().timestamp_millis()
            })
            .await;
            let text = match format {
                ReportFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
                ReportFormat::Csv => tideline::outputs::report::csv::render(&report)?,
                ReportFormat::Html => tideline::outputs::report::html::render(&report),
            };
            match out {
                Some(path) => {
                    std::fs::write(&path, text)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!(
                        "report of {} locations written to {}",
                        report.locations.len(),
                        path.display()
                    );
                }
                None => print!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Sources {
            command: SourcesCommand::Status { format },
        } => {
            let store = open_store(&config).await?;
            let now = chrono::Utc::now().timestamp_millis();
            let sources = tideline::outputs::sources::report(store.as_ref(), &config, now).await?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&sources)?),
                Format::Text => {
                    print!("{}", tideline::outputs::sources::render_text(&sources, now))
                }
            }
            let problem = sources.iter().any(|s| s.health.state.is_problem());
            Ok(if problem {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Demo { out } => {
            let report = tideline::demo::run(&out).await?;
            print!("{}", report.text);
            Ok(ExitCode::SUCCESS)
        }
        Command::Import {
            path,
            preset,
            mapping,
            source,
            location,
            timezone,
            format,
        } => {
            let Some(preset) = Preset::parse(&preset) else {
                bail!(
                    "unknown preset `{preset}`; fix: use one of {}",
                    Preset::ALL.map(|p| p.name()).join(", ")
                );
            };
            let store = open_store(&config).await?;
            let analyzer = Arc::new(learn::analyzer_for(store.as_ref(), &config.pipeline).await?);
            let opts = ImportOptions {
                path,
                preset,
                mapping,
                source,
                location,
                timezone,
            };
            let r = ingest::import_file(store.as_ref(), analyzer, &config, &opts).await?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&r)?),
                Format::Text => {
                    println!(
                        "{}: read {}, inserted {}, updated {}, unchanged {}, quarantined {} ({:.1}s)",
                        r.file,
                        r.read,
                        r.inserted,
                        r.updated,
                        r.unchanged,
                        r.quarantined,
                        r.seconds
                    );
                    if r.unreadable_identities > 0 {
                        println!(
                            "  note: {} email(s) or phone(s) could not be read (e.g. Excel's 4.91701E+12); they stay in the raw records but do not join customers",
                            r.unreadable_identities
                        );
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Timeline { identity, format } => {
            let store = open_store(&config).await?;
            let countries: Vec<String> = config.phone_countries();
            let t = timeline::load(store.as_ref(), &identity, &countries).await?;
            match format {
                TimelineFormat::Json => println!("{}", serde_json::to_string_pretty(&t)?),
                TimelineFormat::Table => print!("{}", timeline::render_table(&t)),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Metrics {
            location,
            all,
            channel,
            customer,
            from,
            to,
            period,
            by,
            format,
        } => {
            metrics(
                &config,
                (location, all, channel, customer),
                (from, to, period, by),
                &format,
            )
            .await
        }
        Command::Summary { format } => {
            let store = open_store(&config).await?;
            let figs = summary::figures(
                &store.location_summaries().await?,
                &store.locations().await?,
            );
            match format {
                SummaryFormat::Json => println!("{}", serde_json::to_string_pretty(&figs)?),
                SummaryFormat::Text => print!("{}", summary::render_text(&figs)),
                SummaryFormat::Markdown => print!("{}", summary::render_markdown(&figs)),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Quarantine { command } => quarantine(&config, command).await,
        Command::Detect { mode, kind } => {
            use tideline::pipeline::detect::Kind;
            let kind = match kind {
                DetectKind::Stars => Kind::Stars,
                DetectKind::Sentiment => Kind::Sentiment,
                DetectKind::Nps => Kind::Nps,
                DetectKind::Outcome => Kind::Outcome,
                DetectKind::Real => Kind::Real,
            };
            let mode = match mode {
                DetectMode::Offline => tideline::detect::Mode::Offline,
                DetectMode::Online => tideline::detect::Mode::Online,
            };
            let stdin = std::io::stdin().lock();
            let stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
            let summary = tideline::detect::detect_lines(
                kind,
                mode,
                &tideline::pipeline::detect::Settings::default(),
                stdin,
                stdout,
                |line, error| eprintln!("stdin line {line}: {error}"),
            )?;
            if summary.rejected > 0 {
                eprintln!(
                    "{} line(s) skipped; {} observations in {} series read, {} change(s) written",
                    summary.rejected, summary.observations, summary.series, summary.changes
                );
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Analyze { rebuild } => {
            let store = open_store(&config).await?;
            if rebuild {
                store.reset_analysis().await?;
            }
            let names = store
                .suggest_by_name(config.identity.name_window_days as i64 * 86_400_000)
                .await?;
            if names.suggestions > 0 {
                println!(
                    "{} display-name link suggestion(s); see `tideline customers suggestions`",
                    names.suggestions
                );
            }
            let r = tideline::analyze::analyze(
                store.as_ref(),
                &tideline::pipeline::detect::Settings::default(),
                now_ms(),
            )
            .await?;
            println!(
                "read {} interactions ({} observations in {} series, {} rebuilt): {} confirmed change(s), {} watched, {} incident(s)",
                r.interactions,
                r.observations,
                r.series,
                r.rebuilt,
                r.confirmed,
                r.watching,
                r.incidents
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Changes {
            location,
            customer,
            since,
            format,
        } => {
            let store = open_store(&config).await?;
            let entity = match (location, customer) {
                (Some(l), _) => Some(("location".to_string(), l)),
                (None, Some(c)) => {
                    let countries: Vec<String> = config.phone_countries();
                    let id = timeline::resolve(store.as_ref(), &c, &countries).await?;
                    Some(("customer".to_string(), id))
                }
                (None, None) => None,
            };
            let filter = tideline::store::ChangeFilter {
                entity,
                since_ms: since.map(|d| {
                    d.and_hms_opt(0, 0, 0)
                        .expect("midnight exists")
                        .and_utc()
                        .timestamp_millis()
                }),
                limit: None,
            };
            let changes = store.changes(&filter).await?;
            match format {
                TimelineFormat::Json => println!("{}", serde_json::to_string_pretty(&changes)?),
                TimelineFormat::Table => {
                    print!("{}", tideline::outputs::changes::render_table(&changes))
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Score { lang_hint, adapted } => {
            let analyzer = if adapted {
                let store = open_store(&config).await?;
                learn::analyzer_for(store.as_ref(), &config.pipeline).await?
            } else {
                Analyzer::from_config(&config.pipeline)
            };
            let stdin = std::io::stdin().lock();
            let stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
            let summary = tideline::score::score_lines(
                &analyzer,
                lang_hint.as_deref(),
                stdin,
                stdout,
                |line, error| eprintln!("stdin line {line}: {error}"),
            )?;
            if summary.failed > 0 {
                eprintln!(
                    "{} line(s) could not be scored (marked with \"error\" in the output); {} scored",
                    summary.failed, summary.scored
                );
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Sentiment { command } => sentiment_command(&config, command).await,
        Command::Customers {
            command: CustomersCommand::Show { identity, format },
        } => {
            let store = open_store(&config).await?;
            let countries: Vec<String> = config.phone_countries();
            let v =
                tideline::outputs::customer::show(store.as_ref(), &identity, &countries).await?;
            match format {
                TimelineFormat::Json => println!("{}", serde_json::to_string_pretty(&v)?),
                TimelineFormat::Table => {
                    print!("{}", tideline::outputs::customer::render_table(&v))
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Customers {
            command: CustomersCommand::Link { a, b },
        } => {
            let store = open_store(&config).await?;
            let (ia, ib) = identity_pair(store.as_ref(), &config, &a, &b).await?;
            match store.link(&ia, &ib).await? {
                Some((from, into)) if from == into => println!("already one customer: {into}"),
                Some((from, into)) => println!("merged {from} into {into}"),
                None => println!("nothing linked: an identity is not known"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Customers {
            command: CustomersCommand::Unlink { a, b },
        } => {
            let store = open_store(&config).await?;
            let (ia, ib) = identity_pair(store.as_ref(), &config, &a, &b).await?;
            match store.unlink(&ia, &ib).await? {
                Some(ids) => println!(
                    "split into {}; change detection will rebuild on its next pass",
                    ids.join(", ")
                ),
                None => println!("nothing to split: the two identities are not one customer"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Customers {
            command: CustomersCommand::Erase { identity, yes },
        } => {
            if !yes {
                eprintln!(
                    "erasure cannot be undone; run again with --yes to erase everything Tideline holds on {}",
                    tideline::outputs::one_line(&identity, 120)
                );
                return Ok(ExitCode::FAILURE);
            }
            let store = open_store(&config).await?;
            let (customer, o) =
                tideline::erasure::erase(store.as_ref(), &config, &identity).await?;
            println!(
                "erased customer {customer}: {} interaction(s), {} identit(ies), {} quarantined row(s), {} link suggestion(s); change detection will rebuild on its next pass",
                o.interactions, o.identities, o.quarantined, o.suggestions
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Customers {
            command: CustomersCommand::Suggestions { format },
        } => {
            let store = open_store(&config).await?;
            let items = store.link_suggestions().await?;
            match format {
                TimelineFormat::Json => println!("{}", serde_json::to_string_pretty(&items)?),
                TimelineFormat::Table => {
                    print!(
                        "{}",
                        tideline::outputs::customer::render_suggestions(&items)
                    );
                    let blocked = store.blocked_identities().await?;
                    let n = blocked.iter().filter(|b| b.status == "blocked").count();
                    if n > 0 {
                        println!(
                            "{n} identit(ies) blocked automatically: see `tideline customers blocked`"
                        );
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Customers {
            command: CustomersCommand::Dismiss { a, b },
        } => {
            let store = open_store(&config).await?;
            let (ia, ib) = identity_pair(store.as_ref(), &config, &a, &b).await?;
            match store.dismiss_suggestion(&ia, &ib).await? {
                Some(n) => println!(
                    "dismissed {n} open suggestion(s); these customers will not be suggested again"
                ),
                None => println!("nothing dismissed: an identity is not known"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Customers {
            command: CustomersCommand::Blocked { format },
        } => {
            let store = open_store(&config).await?;
            let items = store.blocked_identities().await?;
            match format {
                TimelineFormat::Json => println!("{}", serde_json::to_string_pretty(&items)?),
                TimelineFormat::Table => {
                    print!("{}", tideline::outputs::customer::render_blocked(&items))
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Customers {
            command: CustomersCommand::Unblock { identity },
        } => {
            let store = open_store(&config).await?;
            let key = identity.trim();
            if store.unblock_identity(key).await? {
                println!("unblocked; it joins people again from the next import or sync");
            } else {
                println!(
                    "nothing unblocked: {} is not blocked automatically (write it as `customers blocked` lists it)",
                    tideline::outputs::one_line(key, 120)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            println!(
                "configuration is valid: {} location(s), database {}",
                config.locations.len(),
                redact_url(config.storage.effective_url().expose())
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            command:
                BenchCommand::Score {
                    files,
                    min_chars,
                    max_chars,
                    texts,
                },
        } => {
            let started = std::time::Instant::now();
            let analyzer = Analyzer::from_config(&config.pipeline);
            let _ = analyzer.scorer.score("warm-up", Some("en"));
            analyzer.detector.preload();
            let load = started.elapsed().as_secs_f64();
            let loaded_rss = tideline::bench::rss_kib().unwrap_or(0);
            let r =
                tideline::bench::score_throughput(&files, min_chars..=max_chars, texts, &analyzer)?;
            println!(
                "scored {} texts of {}-{} chars (mean {:.0}) in {:.2} s on one thread: {:.0} texts/s",
                r.texts, min_chars, max_chars, r.mean_chars, r.seconds, r.texts_per_sec
            );
            println!(
                "models loaded in {load:.2} s; resident memory with all models loaded {:.0} MiB, peak {:.0} MiB",
                loaded_rss as f64 / 1024.0,
                tideline::bench::peak_rss_kib().unwrap_or(0) as f64 / 1024.0
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            command:
                BenchCommand::Identity {
                    people,
                    interactions,
                    seed,
                    dir,
                },
        } => {
            for s in seed {
                let r = tideline::bench::identity(&dir, people, interactions, s, &config).await?;
                println!(
                    "seed {s}: {} people, {} records ({} with a strong identity) -> {} customers in {:.2} s ({:.0} records/s)",
                    r.people,
                    r.records,
                    r.evaluated,
                    r.customers,
                    r.seconds,
                    r.records as f64 / r.seconds.max(1e-9)
                );
                println!(
                    "  pairwise precision {:.4}, recall {:.4}; records without a strong identity attached to a customer: {}; wrong pairs of namesakes: {}",
                    r.precision,
                    r.recall,
                    r.attached_without_strong_identity,
                    r.false_pairs_same_name
                );
                println!(
                    "  display-name pass {:.2} s: {} suggestion(s), {} of one person (precision {:.3}); customers changed by names: {}",
                    r.name_pass_seconds,
                    r.name_suggestions,
                    r.name_suggestions_same_person,
                    if r.name_suggestions == 0 {
                        1.0
                    } else {
                        r.name_suggestions_same_person as f64 / r.name_suggestions as f64
                    },
                    r.name_merges
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            command:
                BenchCommand::Detect {
                    tcpd,
                    predictions,
                    seed,
                    no_streams,
                    stores_per_scenario,
                    no_throughput,
                    verbose,
                    penalty_ln_n,
                    oracle,
                },
        } => {
            let options = tideline::bench::detect::BenchOptions {
                tcpd,
                predictions,
                seeds: if no_streams { Vec::new() } else { seed },
                stores_per_scenario,
                throughput: !no_throughput,
                verbose,
                penalty_ln_n,
                oracle,
            };
            tideline::bench::detect::report(&options, &mut std::io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            command: BenchCommand::Sentiment { files, verbose },
        } => {
            let started = std::time::Instant::now();
            let analyzer = Analyzer::from_config(&config.pipeline);
            // Build the model and load every lingua model before timing anything.
            let _ = analyzer.scorer.score("warm-up", Some("en"));
            analyzer.detector.preload();
            println!(
                "models loaded in {:.2} s (lexicons, aspect lists, lingua for {} languages, built-in regression trained on {} sentences); resident memory with all models loaded: {:.0} MiB",
                started.elapsed().as_secs_f64(),
                analyzer.detector.languages().len(),
                tideline::pipeline::sentiment::builtin_corpus().count(),
                tideline::bench::rss_kib().unwrap_or(0) as f64 / 1024.0
            );
            for file in files {
                let r = tideline::bench::eval_sentiment(&file, &analyzer)?;
                println!(
                    "\n{} ({:.0} texts/s on one thread, mean {:.0} chars; detection + sentiment + aspects)",
                    file.display(),
                    r.texts_per_sec,
                    r.mean_chars
                );
                println!(
                    "  {:<5} {:>6} {:>10} {:>10} {:>9} {:>8}",
                    "lang", "n", "lang acc", "sent acc", "macro-F1", "Pearson"
                );
                for s in &r.languages {
                    println!(
                        "  {:<5} {:>6} {:>9.1}% {:>9.1}% {:>9.3} {:>8}",
                        s.lang,
                        s.n,
                        100.0 * s.language_correct as f64 / s.n.max(1) as f64,
                        100.0 * s.accuracy(),
                        s.macro_f1(),
                        s.pearson().map_or("-".to_string(), |p| format!("{p:.3}"))
                    );
                }
                if verbose {
                    for s in &r.languages {
                        let c = s.confusion.0;
                        println!(
                            "  {} confusion (rows gold neg/neu/pos, columns predicted): {:?} {:?} {:?}",
                            s.lang, c[0], c[1], c[2]
                        );
                    }
                }
                println!(
                    "  language decided by: first pass {}, lingua {}, too short (declared) {}",
                    r.methods.fast, r.methods.model, r.methods.declared
                );
                if r.languages.len() > 1 {
                    let f1: Vec<f64> = r.languages.iter().map(|s| s.macro_f1()).collect();
                    println!(
                        "  macro-F1 mean {:.3}, lowest {:.3}",
                        f1.iter().sum::<f64>() / f1.len() as f64,
                        f1.iter().copied().fold(f64::INFINITY, f64::min)
                    );
                }
            }
            if let Some(kib) = tideline::bench::peak_rss_kib() {
                println!("\npeak memory (RSS): {:.0} MiB", kib as f64 / 1024.0);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            command:
                BenchCommand::Import {
                    rows,
                    bad_every,
                    dir,
                    postgres,
                },
        } => {
            let keep = dir.is_some();
            let dir = dir.unwrap_or_else(|| {
                std::env::temp_dir().join(format!("tideline-bench-{}", std::process::id()))
            });
            let postgres = postgres.map(Secret::new);
            let r =
                tideline::bench::import(&dir, rows, bad_every, &config, postgres.as_ref()).await?;
            println!(
                "bench import ({}): {} rows ({:.1} MB) in {:.2}s = {:.0} rows/s; peak RSS {}",
                if postgres.is_some() {
                    "postgres"
                } else {
                    "sqlite"
                },
                r.rows,
                r.file_bytes as f64 / 1e6,
                r.report.seconds,
                r.rows_per_sec,
                r.peak_rss_kib
                    .map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
                    .unwrap_or_else(|| "unknown".into())
            );
            println!(
                "  reading+analysis {:.2}s, store writes {:.2}s (they overlap)",
                r.report.seconds_reading, r.report.seconds_writing
            );
            println!(
                "  inserted {}, quarantined {}; languages: {} declared, {} fast pass, {} model",
                r.report.inserted,
                r.report.quarantined,
                r.report.languages_declared,
                r.report.languages_fast,
                r.report.languages_model
            );
            if !keep {
                let _ = std::fs::remove_dir_all(&dir);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            command:
                BenchCommand::Api {
                    interactions,
                    customers,
                    requests,
                    concurrency,
                    batch,
                    dir,
                },
        } => {
            let keep = dir.is_some();
            let dir = dir.unwrap_or_else(|| {
                std::env::temp_dir().join(format!("tideline-bench-api-{}", std::process::id()))
            });
            let opts = tideline::bench::api::ApiBenchOptions {
                interactions,
                customers,
                requests,
                concurrency,
                warmup: (requests / 10).min(2_000),
                batch,
                dir: dir.clone(),
                seed: 7,
            };
            let r = tideline::bench::api::api(&opts, &config).await;
            if !keep {
                let _ = std::fs::remove_dir_all(&dir);
            }
            let r = r?;
            println!(
                "bench api (sqlite): {} interactions, {} customers stored in {:.1} s ({:.0} rows/s), database {:.0} MB",
                r.interactions,
                r.customers,
                r.fill_secs,
                r.interactions as f64 / r.fill_secs.max(1e-9),
                r.database_bytes as f64 / 1e6
            );
            println!(
                "GET /api/v1/customers/{{id}}/timeline x {} at concurrency {concurrency} (mean {:.1} interactions each, {} errors): p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {:.0} requests/s",
                r.requests, r.mean_items, r.errors, r.p50, r.p90, r.p99, r.max, r.requests_per_sec
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            command:
                BenchCommand::Report {
                    interactions,
                    locations,
                    seed,
                    dir,
                    postgres,
                },
        } => {
            let backend = if postgres.is_some() {
                "postgres"
            } else {
                "sqlite"
            };
            let opts = tideline::bench::report::ReportBenchOptions {
                interactions,
                locations,
                seed,
                dir,
                postgres: postgres.map(Secret::new),
            };
            let r = tideline::bench::report::run(&opts).await?;
            println!(
                "bench report ({backend}): {} interactions over {} locations stored in {:.1} s (untimed)",
                r.interactions, r.locations, r.fill_secs
            );
            println!(
                "report --all, last 90 days vs the 90 before: build {:.2} s ({} interactions in the two periods); render html {:.2} s ({:.1} MB), csv {:.2} s ({:.1} MB), json {:.2} s ({:.1} MB); peak RSS {}",
                r.build_secs,
                r.rows_read,
                r.html_secs,
                r.html_bytes as f64 / 1e6,
                r.csv_secs,
                r.csv_bytes as f64 / 1e6,
                r.json_secs,
                r.json_bytes as f64 / 1e6,
                r.peak_rss_kib
                    .map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
                    .unwrap_or_else(|| "unknown".into())
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Digest {
            preview,
            send_now: _,
            recipient,
            out,
            at,
            format,
        } => digest_command(&config, preview, recipient, out, at, format).await,
        Command::Crm { command } => crm_command(&config, command).await,
    }
}

fn ms_text(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "-".into())
}

async fn crm_command(config: &Config, command: CrmCommand) -> Result<ExitCode> {
    use tideline::sinks::crm;
    let store = open_store(config).await?;
    match command {
        CrmCommand::Sync {
            sink,
            dry_run,
            limit,
            wait_secs,
            format,
        } => {
            let sinks = crm::select(config, sink.as_deref())?;
            if dry_run {
                let mut shown = Vec::new();
                for s in &sinks {
                    let items = store.crm_lease(&s.name, limit, None).await?;
                    let status = store
                        .crm_status()
                        .await?
                        .into_iter()
                        .find(|x| x.sink == s.name);
                    shown.push((s, status, items));
                }
                match format {
                    Format::Json => {
                        let v: Vec<serde_json::Value> = shown
                            .iter()
                            .map(|(s, status, items)| {
                                serde_json::json!({
                                    "sink": s.name,
                                    "kind": s.kind.as_str(),
                                    "registered": status.is_some(),
                                    "pending": status.as_ref().map(|x| x.pending),
                                    "items": items,
                                })
                            })
                            .collect();
                        println!("{}", serde_json::to_string_pretty(&v)?)
                    }
                    Format::Text => {
                        for (s, status, items) in &shown {
                            match status {
                                Some(st) => println!(
                                    "{} ({}): {} item(s) pending; the first would go as:",
                                    s.name,
                                    s.kind.as_str(),
                                    st.pending
                                ),
                                None => println!(
                                    "{} ({}): not synced yet; its first sync sends the whole history",
                                    s.name,
                                    s.kind.as_str()
                                ),
                            }
                            for i in items {
                                println!("  {}", crm::describe(i));
                            }
                        }
                        println!("dry run: nothing was sent");
                    }
                }
                return Ok(ExitCode::SUCCESS);
            }
            let stop = tokio_util::sync::CancellationToken::new();
            {
                let stop = stop.clone();
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
                tokio::spawn(async move {
                    tokio::select! {
                        _ = term.recv() => {},
                        _ = tokio::signal::ctrl_c() => {},
                    }
                    stop.cancel();
                });
            }
            let opts = crm::SyncOptions {
                wait_for_retries: std::time::Duration::from_secs(wait_secs),
                ..Default::default()
            };
            let runs = crm::sync(store.as_ref(), config, &sinks, &opts, &stop).await?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&runs)?),
                Format::Text => {
                    for r in &runs {
                        println!("{r}");
                    }
                }
            }
            let failed = runs.iter().any(|r| r.stopped.is_some());
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        CrmCommand::Status { format } => {
            let all = store.crm_status().await?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&all)?),
                Format::Text => {
                    if all.is_empty() {
                        println!(
                            "no CRM sink has synced yet (`tideline crm sync` registers the configured ones)"
                        );
                    }
                    for s in &all {
                        println!(
                            "{} ({}): {} pending ({} due), {} parked, {} delivered, {} skipped, {} record(s) held; oldest pending {}; next attempt {}; last run {}{}",
                            s.sink,
                            s.kind,
                            s.pending,
                            s.due,
                            s.parked,
                            s.delivered,
                            s.skipped,
                            s.links,
                            ms_text(s.oldest_pending_ms),
                            ms_text(s.next_attempt_ms),
                            ms_text(s.last_run_ms),
                            s.last_error
                                .as_deref()
                                .map(|e| format!(
                                    "; stopped: {}",
                                    tideline::outputs::one_line(e, 300)
                                ))
                                .unwrap_or_default()
                        );
                    }
                }
            }
            let bad = all.iter().any(|s| s.parked > 0 || s.last_error.is_some());
            Ok(if bad {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        CrmCommand::Parked {
            sink,
            limit,
            format,
        } => {
            let items = store.crm_parked(sink.as_deref(), limit).await?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&items)?),
                Format::Text => {
                    for p in &items {
                        println!(
                            "#{} {} {} {} {} (after {} attempt(s), {}): {}",
                            p.id,
                            p.sink,
                            p.op,
                            p.entity,
                            tideline::outputs::one_line(&p.entity_key, 120),
                            p.attempts,
                            ms_text(Some(p.parked_at_ms)),
                            tideline::outputs::one_line(
                                p.last_error.as_deref().unwrap_or("-"),
                                400
                            )
                        );
                    }
                    println!(
                        "{} parked item(s); `tideline crm retry ID...` queues them again",
                        items.len()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        CrmCommand::Retry { ids, sink } => {
            let n = store.crm_retry(sink.as_deref(), &ids).await?;
            println!(
                "{n} item(s) queued again; the next `tideline crm sync` (or the daemon) delivers them"
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn quarantine(config: &Config, command: QuarantineCommand) -> Result<ExitCode> {
    let store = open_store(config).await?;
    match command {
        QuarantineCommand::List { format, status } => {
            let filter = match status.as_str() {
                "all" => None,
                "open" | "replayed" | "dismissed" => Some(status.as_str()),
                other => {
                    bail!("unknown status `{other}`; fix: use open, replayed, dismissed or all")
                }
            };
            let items = store.quarantine(filter).await?;
            match format {
                TimelineFormat::Json => println!("{}", serde_json::to_string_pretty(&items)?),
                TimelineFormat::Table => {
                    for q in &items {
                        println!("{}", tideline::outputs::quarantine::render_line(q, false));
                    }
                    println!("{} row(s)", items.len());
                }
            }
        }
        QuarantineCommand::Replay { ids, mapping } => {
            let analyzer = learn::analyzer_for(store.as_ref(), &config.pipeline).await?;
            let r = ingest::replay_quarantine(
                store.as_ref(),
                &analyzer,
                config,
                &ids,
                mapping.as_deref().map(Path::new),
            )
            .await
            .context("replay failed")?;
            println!(
                "replayed {}: imported {}, still failing {}",
                r.attempted, r.imported, r.still_failing
            );
        }
        QuarantineCommand::Dismiss { ids } => {
            let n = store.set_quarantine_status(&ids, "dismissed").await?;
            println!("dismissed {n} row(s)");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn sentiment_command(config: &Config, command: SentimentCommand) -> Result<ExitCode> {
    let store = open_store(config).await?;
    match command {
        SentimentCommand::Train { format } => {
            let out = learn::train(store.as_ref(), &config.pipeline, now_ms()).await?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&out)?),
                Format::Text => print!("{}", learn::render_outcome(&out)),
            }
        }
        SentimentCommand::Rescore => {
            let analyzer = Arc::new(learn::analyzer_for(store.as_ref(), &config.pipeline).await?);
            let n = learn::rescore(store.as_ref(), analyzer.clone()).await?;
            println!("re-scored {n} text(s) with {}", analyzer.scorer.version());
        }
        SentimentCommand::Status { format } => {
            let runs = store.sentiment_models(20).await?;
            let active = store.adopted_sentiment_model().await?;
            let active = active.as_ref().map(|m| m.version.as_str());
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "model_in_use": active.unwrap_or(tideline::pipeline::sentiment::MODEL_VERSION),
                        "runs": runs,
                    }))?
                ),
                Format::Text => print!("{}", learn::render_status(active, &runs)),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Logs the sentiment model in use and what its training measured.
async fn report_sentiment_model(store: &dyn Store) {
    match store.adopted_sentiment_model().await {
        Ok(Some(m)) => tracing::info!(
            version = %m.version,
            held_out = m.report.held_out,
            accuracy = m.report.adapted_accuracy,
            macro_f1 = m.report.adapted_macro_f1,
            builtin_accuracy = m.report.base_accuracy,
            "Sentiment model adapted to this deployment in use."
        ),
        Ok(None) => tracing::info!(
            version = tideline::pipeline::sentiment::MODEL_VERSION,
            "Built-in sentiment model in use."
        ),
        Err(e) => tracing::warn!(error = %e, "Cannot read the sentiment models."),
    }
}

/// `tideline metrics`: the request from the flags, the report from the library.
async fn metrics(
    config: &Config,
    (location, all, channel, customer): (Option<String>, bool, Option<String>, Option<String>),
    (from, to, period, by): (Option<String>, Option<String>, String, Option<String>),
    format: &str,
) -> Result<ExitCode> {
    use tideline::outputs::indicators as out;
    use tideline::pipeline::indicators::{PeriodSpec, Unit};
    let date = |s: &str| {
        out::parse_date(s).with_context(|| format!("`{s}` is not a date; use YYYY-MM-DD"))
    };
    let period = match (from, to) {
        (Some(a), Some(b)) => {
            let (a, b) = (date(&a)?, date(&b)?);
            if b < a {
                bail!("--to {b} is before --from {a}");
            }
            PeriodSpec::Dates(a, b)
        }
        _ => out::parse_period(&period)?,
    };
    let by = by.map(|b| match b.as_str() {
        "day" => Unit::Day,
        "week" => Unit::Week,
        "month" => Unit::Month,
        _ => Unit::Quarter,
    });
    let scope = match (location, all) {
        (Some(id), _) => out::Scope::Location(id),
        (None, true) => out::Scope::AllLocations,
        (None, false) => out::Scope::Overall,
    };
    let store = open_store(config).await?;
    let report = out::report(
        store.as_ref(),
        &config.locations,
        config.import.default_timezone,
        &config.indicators,
        &out::MetricsRequest {
            scope,
            channel,
            customer,
            period,
            by,
        },
        now_ms(),
    )
    .await?;
    if format == "json" {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", out::render_table(&report));
    }
    Ok(ExitCode::SUCCESS)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The stored identities two command-line arguments name (for `customers link|unlink`).
async fn identity_pair(
    store: &dyn tideline::store::Store,
    config: &Config,
    a: &str,
    b: &str,
) -> Result<(tideline::model::Identity, tideline::model::Identity)> {
    let countries = config.phone_countries();
    let known = |arg| tideline::outputs::customer::known_identity(store, arg, &countries);
    Ok((known(a).await?, known(b).await?))
}

async fn run_daemon(
    config: Config,
    path: Option<PathBuf>,
    overrides: Overrides,
) -> Result<ExitCode> {
    let signals = tideline::daemon::Signals::install().context("cannot install signal handlers")?;
    let store = open_store(&config).await?;
    report_sentiment_model(store.as_ref()).await;
    let analyzer = Arc::new(learn::analyzer_for(store.as_ref(), &config.pipeline).await?);
    {
        // Texts scored by an older model (before an upgrade) are scored again, in the
        // background and in pages, so figures compare like with like.
        let (store, analyzer) = (store.clone(), analyzer.clone());
        tokio::spawn(async move {
            match learn::rescore(store.as_ref(), analyzer).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(texts = n, "Texts re-scored with the model in use."),
                Err(e) => tracing::warn!(error = %e, "Re-scoring stored texts failed."),
            }
        });
    }
    let metrics = Arc::new(tideline::metrics::Metrics::new());
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reload: tideline::daemon::Reload =
        Box::new(move || Config::load(path.as_deref(), &overrides).map_err(|e| e.to_string()));
    // The HTTP API: bound once here so a taken port or a refused address stops the start;
    // a reload binds again with the new settings.
    let first_listener = if config.http.enabled {
        Some(tideline::outputs::http::bind(&config.http).await?)
    } else {
        None
    };
    let first_listener = std::sync::Mutex::new(first_listener);
    let (api_store, api_metrics, api_ready) = (store.clone(), metrics.clone(), ready.clone());
    let serve_http = move |config: &Config, stop: tokio_util::sync::CancellationToken| {
        if !config.http.enabled {
            return None;
        }
        let mut state =
            tideline::outputs::http::ApiState::new(api_store.clone(), api_metrics.clone(), config);
        state.ready = api_ready.clone();
        let listener = first_listener.lock().ok().and_then(|mut l| l.take());
        let http = config.http.clone();
        Some(tokio::spawn(async move {
            let listener = match listener {
                Some(l) => l,
                None => match tideline::outputs::http::bind(&http).await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(error = %e, "The HTTP API cannot listen.");
                        return;
                    }
                },
            };
            if let Err(e) =
                tideline::outputs::http::serve(
                    listener,
                    state,
                    async move { stop.cancelled().await },
                )
                .await
            {
                tracing::error!(error = %e, "The HTTP API stopped.");
            }
        }))
    };
    tideline::daemon::run(
        config,
        signals,
        store,
        analyzer,
        tideline::daemon::Services { metrics, ready },
        reload,
        &serve_http,
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// `tideline watch`: one pass over each named watch folder.
async fn watch_once(config: &Config, names: &[String], format: SummaryFormat) -> Result<ExitCode> {
    let selected = tideline::watch::select(config, names)?;
    if selected.is_empty() {
        eprintln!(
            "No watch folders configured; add a [[watch]] table (config/example.toml shows one)."
        );
        return Ok(ExitCode::SUCCESS);
    }
    let store = open_store(config).await?;
    let analyzer = Arc::new(learn::analyzer_for(store.as_ref(), &config.pipeline).await?);
    let stop = tokio_util::sync::CancellationToken::new();
    let mut failed = false;
    let mut reports = Vec::new();
    for w in selected {
        let r = tideline::watch::scan(store.as_ref(), analyzer.clone(), config, w, &stop).await?;
        failed |= r
            .files
            .iter()
            .any(|f| matches!(f.result, tideline::watch::FileResult::Failed { .. }));
        if format == SummaryFormat::Json {
            reports.push(r);
        } else {
            println!("{r}");
            for f in &r.files {
                match &f.result {
                    tideline::watch::FileResult::Imported { report } => println!(
                        "  {}: {} read, {} new, {} updated, {} quarantined",
                        f.file, report.read, report.inserted, report.updated, report.quarantined
                    ),
                    tideline::watch::FileResult::Failed { error, attempt } => {
                        println!("  {}: failed (attempt {attempt}): {error}", f.file)
                    }
                }
            }
        }
    }
    if format == SummaryFormat::Json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `tideline sync`: each named connector once, until the end of its stream. Ctrl-C or
/// SIGTERM stops after the page in hand.
async fn sync_once(config: &Config, names: &[String], format: SummaryFormat) -> Result<ExitCode> {
    let selected = tideline::sync::select(config, names)?;
    if selected.is_empty() {
        eprintln!(
            "No connectors configured; add a [[connector]] table (config/example.toml shows one)."
        );
        return Ok(ExitCode::SUCCESS);
    }
    // Signals first: a SIGTERM while the model loads is a stop request too.
    let stop = tokio_util::sync::CancellationToken::new();
    {
        let stop = stop.clone();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = tokio::signal::ctrl_c() => {},
            }
            stop.cancel();
        });
    }
    let store = open_store(config).await?;
    let analyzer = Arc::new(learn::analyzer_for(store.as_ref(), &config.pipeline).await?);
    let metrics = Arc::new(tideline::metrics::Metrics::new());
    let mut failed = false;
    let mut reports = Vec::new();
    for c in selected {
        match tideline::sync::sync_connector(
            store.as_ref(),
            analyzer.clone(),
            config,
            c,
            metrics.clone(),
            stop.clone(),
        )
        .await
        {
            Ok(r) => {
                if format != SummaryFormat::Json {
                    println!("{r}");
                }
                reports.push(serde_json::to_value(&r)?);
            }
            Err(e) => {
                failed = true;
                eprintln!("error: {e}");
                reports.push(serde_json::json!({"connector": c.name, "error": e.to_string()}));
            }
        }
        if stop.is_cancelled() {
            break;
        }
    }
    if format == SummaryFormat::Json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn digest_command(
    config: &Config,
    preview: bool,
    recipient: Option<String>,
    out: Option<PathBuf>,
    at: Option<String>,
    format: Format,
) -> Result<ExitCode> {
    let now = match at {
        Some(t) => chrono::DateTime::parse_from_rfc3339(&t)
            .with_context(|| {
                format!("--at `{t}` is not an RFC 3339 instant; use e.g. 2026-03-30T09:00:00+02:00")
            })?
            .timestamp_millis(),
        None => now_ms(),
    };
    let store = open_store(config).await?;
    if preview {
        let (Some(recipient), Some(out)) = (recipient, out) else {
            bail!("--preview needs --recipient and --out");
        };
        let eml = tideline::digest::preview(store.as_ref(), config, &recipient, None, now).await?;
        std::fs::write(&out, eml).with_context(|| format!("cannot write {}", out.display()))?;
        eprintln!(
            "digest for {recipient} written to {} (an RFC 5322 message with text and HTML parts; not sent)",
            out.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let instance = tideline::daemon::instance_name(config);
    let reports =
        tideline::digest::send_due(store.as_ref(), config, recipient.as_deref(), &instance, now)
            .await?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&reports)?),
        Format::Text => {
            for r in &reports {
                println!("{r}");
            }
        }
    }
    let failed = reports
        .iter()
        .any(|r| matches!(r.outcome, tideline::digest::Outcome::Failed { .. }));
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

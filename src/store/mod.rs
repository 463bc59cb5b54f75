//! Storage: one [`Store`] trait, a SQLite implementation (the embedded default) and a
//! PostgreSQL implementation (fleets), each with its own `migrations/` folder, applied at
//! start. Both share their SQL where the dialects agree (see `sql.rs`).
//!
//! Writes of a batch (interactions, customers and identities, quarantined rows, progress)
//! happen in one transaction, so a crash at any point leaves either the whole batch or
//! none of it, and re-running an import converges on the same state.

mod crm;
mod pages;
mod postgres;
mod sql;
mod sqlite;

use crate::config::{Secret, redact_url};
use crate::model::{Identity, Interaction, Location};
use crate::pipeline::RowError;
use async_trait::async_trait;
use serde::Serialize;
use std::sync::Arc;

pub(crate) use crm::crm_error_line;
pub use crm::{
    CrmEntity, CrmItem, CrmLink, CrmOutcome, CrmParked, CrmPayload, CrmPerson, CrmResult,
    CrmSinkStatus, change_key, crm_key, interaction_key,
};
pub use pages::{
    ChangePageFilter, CustomerFilter, InteractionFilter, QuarantineFilter, RunSummary, SourceStatus,
};
pub use postgres::{PgStore, url_in_schema};
pub use sqlite::{SqliteStore, remove_database};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("database migration failed: {0}")]
    Migrate(String),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    #[error("stored data is not readable: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A row that could not be read, as it goes into quarantine: the error (place, field,
/// expected form, raw text) and how it was imported, so it can be replayed.
#[derive(Debug, Clone, Serialize)]
pub struct QuarantineEntry {
    pub source: String,
    pub preset: String,
    /// How it was imported (mapping path, location, time zone), for replay.
    pub options: serde_json::Value,
    #[serde(flatten)]
    pub error: RowError,
}

/// PostgreSQL refuses text with a NUL character (SQLite keeps it, then every reader
/// trips on it), so one NUL in an imported cell would fail the whole batch. Both backends
/// store U+FFFD in its place, in every text of the batch: the record is kept, and the
/// place of the odd byte stays visible.
pub fn without_nul(batch: &mut WriteBatch) {
    fn fix(s: &mut String) {
        if s.contains('\0') {
            *s = s.replace('\0', "\u{FFFD}");
        }
    }
    fn fix_opt(s: &mut Option<String>) {
        if let Some(s) = s {
            fix(s);
        }
    }
    for i in &mut batch.interactions {
        fix(&mut i.external_id);
        fix_opt(&mut i.parent_external_id);
        fix_opt(&mut i.author_name);
        fix_opt(&mut i.text);
        fix_opt(&mut i.status);
        fix_opt(&mut i.url);
        fix_opt(&mut i.location_id);
        fix(&mut i.raw);
        for id in &mut i.identities {
            fix(&mut id.value);
        }
    }
    for r in &mut batch.rejects {
        fix(&mut r.error.raw);
        fix(&mut r.error.message);
        fix(&mut r.error.origin);
        fix(&mut r.error.expected);
        fix_opt(&mut r.error.field);
    }
}

/// A quarantined row as stored.
#[derive(Debug, Clone, Serialize)]
pub struct QuarantineItem {
    pub id: i64,
    pub status: String,
    pub created_at_ms: i64,
    #[serde(flatten)]
    pub entry: QuarantineEntry,
}

/// Everything one batch writes, committed together.
#[derive(Debug, Default)]
pub struct WriteBatch {
    pub interactions: Vec<Interaction>,
    pub rejects: Vec<QuarantineEntry>,
    /// Quarantine rows that this batch resolved by replaying them.
    pub resolved_quarantine: Vec<i64>,
    /// The import run this batch belongs to, whose counters advance with it.
    pub import_run: Option<i64>,
    /// Records read for this batch (for the import run's counters).
    pub read: u64,
    /// A connector cursor to advance in the same transaction.
    pub cursor: Option<(String, String)>,
    /// The identity resolver's size cap (`identity.max_component_identities`; 0: the
    /// default).
    pub max_component: usize,
    /// An identity that would join more than this many otherwise separate customers is
    /// blocked (`identity.max_customers_per_identity`; 0: the default).
    pub max_customers_per_identity: usize,
}

/// What a batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BatchOutcome {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub quarantined: u64,
    pub new_customers: u64,
    pub merged_customers: u64,
    /// Links held back for an operator (new ones only).
    pub link_suggestions: u64,
    /// Identities blocked by this batch because they would have joined too many people.
    pub blocked_identities: u64,
}

impl std::ops::AddAssign for BatchOutcome {
    fn add_assign(&mut self, o: Self) {
        self.inserted += o.inserted;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
        self.quarantined += o.quarantined;
        self.new_customers += o.new_customers;
        self.merged_customers += o.merged_customers;
        self.link_suggestions += o.link_suggestions;
        self.blocked_identities += o.blocked_identities;
    }
}

/// An interaction as read back, with its store-assigned fields.
#[derive(Debug, Clone, Serialize)]
pub struct StoredInteraction {
    pub id: i64,
    pub customer_id: Option<String>,
    pub revision: i64,
    #[serde(flatten)]
    pub interaction: Interaction,
}

#[derive(Debug, Clone, Serialize)]
pub struct Customer {
    pub id: String,
    pub display_name: Option<String>,
    pub identities: Vec<Identity>,
}

/// A customer with how much they said and where.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerActivity {
    pub customer_id: String,
    pub display_name: Option<String>,
    pub interactions: i64,
    pub sources: i64,
}

/// A link the resolver held back: `shared` (a phone) would have joined `other`'s person to
/// whoever already has it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkSuggestion {
    pub shared: Identity,
    pub other: Identity,
    pub reason: String,
    pub first_seen_ms: i64,
    /// The customers on either side now.
    pub shared_customer: Option<String>,
    pub other_customer: Option<String>,
    /// In [0, 1], for weak evidence (`display_name`); strong-identity suggestions have none.
    pub score: Option<f64>,
    /// What the score rests on (display-name suggestions): the two interactions (source,
    /// external id, kind, time, name, location), the time gap, how many customers carry
    /// the name.
    pub evidence: Option<serde_json::Value>,
}

/// An identity blocked automatically: it would have joined more than the configured number
/// of otherwise separate customers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlockedIdentity {
    /// `kind:value`.
    pub identity: String,
    pub reason: String,
    pub customers: i64,
    pub records: i64,
    pub blocked_at_ms: i64,
    /// `blocked`, or `unblocked` by an operator (never blocked automatically again).
    pub status: String,
}

/// What a display-name pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NamePassOutcome {
    /// Interactions read (those with a name and a customer).
    pub read: u64,
    /// Suggestions written or re-scored.
    pub suggestions: u64,
}

/// A text whose satisfaction the customer stated with stars, NPS or CSAT.
#[derive(Debug, Clone, PartialEq)]
pub struct RatedText {
    pub id: i64,
    pub text: String,
    pub language: Option<String>,
    pub stars: Option<f64>,
    pub nps: Option<i64>,
    pub csat_satisfied: Option<bool>,
}

/// One run of adapting the sentiment model to this deployment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentimentModelRecord {
    pub id: i64,
    pub version: String,
    pub base_version: String,
    pub trained_at_ms: i64,
    #[serde(flatten)]
    pub report: crate::pipeline::sentiment::AdaptReport,
    /// The encoded model; empty in listings.
    #[serde(skip)]
    pub weights: Vec<u8>,
}

/// A new score for a stored interaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Rescore {
    pub id: i64,
    pub sentiment: Option<crate::model::Sentiment>,
    pub aspects: Vec<crate::pipeline::sentiment::AspectScore>,
}

/// The standard indicators of one location, each with its sample size.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LocationSummary {
    pub location_id: Option<String>,
    pub interactions: i64,
    pub reviews: i64,
    pub tickets: i64,
    pub survey_responses: i64,
    pub replies: i64,
    pub customers: i64,
    pub stars_n: i64,
    pub stars_mean: Option<f64>,
    pub nps_n: i64,
    pub promoters: i64,
    pub detractors: i64,
    pub csat_n: i64,
    pub csat_satisfied: i64,
    pub ces_n: i64,
    pub ces_agree: i64,
    pub sentiment_n: i64,
    pub sentiment_mean: Option<f64>,
    pub negative: i64,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
    /// (language, count), most frequent first.
    pub languages: Vec<(String, i64)>,
}

/// A change point (or an incident) as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeRecord {
    /// `location:<id>:<signal>`, `location:<id>/<channel>:<signal>` or `customer:<id>:<signal>`.
    pub series: String,
    /// `location` or `customer`.
    pub entity: String,
    pub entity_id: String,
    /// The source the series is limited to, if any.
    pub channel: Option<String>,
    /// `stars`, `sentiment`, `nps` or `outcome`.
    pub signal: String,
    /// Position in the series of the first observation after the change.
    pub index: i64,
    pub occurred_at_ms: i64,
    /// `up`, `down` or `change`.
    pub direction: String,
    pub before: f64,
    pub after: f64,
    pub confidence: f64,
    /// `watch`, `confirmed` or `incident`.
    pub status: String,
    pub n_before: i64,
    pub n_after: i64,
    /// `{"interactions": [{"id", "weight", ...}], "terms": [...]}`.
    pub evidence: serde_json::Value,
    pub detected_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredChange {
    pub id: i64,
    #[serde(flatten)]
    pub change: ChangeRecord,
}

/// The online detector state of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesState {
    pub series: String,
    /// JSON of `pipeline::detect::Online`.
    pub state: String,
    /// Time of the newest observation fed.
    pub last_ms: i64,
    pub observations: i64,
}

/// Everything one analysis pass writes, committed together with how far it read, so a
/// crash repeats the pass instead of losing or doubling its changes.
#[derive(Debug, Default)]
pub struct AnalysisWrite {
    pub states: Vec<SeriesState>,
    /// Series rebuilt from their whole history (late data): their old changes go first.
    pub rebuilt: Vec<String>,
    /// Confirmed changes and incidents; a repeat of a stored one is ignored.
    pub changes: Vec<ChangeRecord>,
    /// Per series, the change it is watching now (replaces the previous watch).
    pub watching: Vec<(String, Option<ChangeRecord>)>,
    /// The progress mark the pass started from; if another instance has moved it since,
    /// nothing is written (that instance did this work).
    pub from_id: i64,
    /// The highest interaction id read.
    pub last_id: i64,
    /// Customers whose series start over (merged or split; see
    /// [`Store::stale_customers`]), with the mark that was read: their stored series and
    /// changes go before `states` and `changes` are written, and the mark is removed
    /// unless a newer one replaced it.
    pub cleared: Vec<(String, i64)>,
}

/// Which stored changes to list.
#[derive(Debug, Clone, Default)]
pub struct ChangeFilter {
    /// (`location` | `customer`, id)
    pub entity: Option<(String, String)>,
    pub since_ms: Option<i64>,
    pub limit: Option<i64>,
}

/// A merge of two customers and its evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MergeRecord {
    pub from_customer: String,
    pub into_customer: String,
    /// The identity that joined them (automatic), or `a <-> b` (manual).
    pub identity: Option<String>,
    /// The interaction that carried it (automatic merges).
    pub source: Option<String>,
    pub external_id: Option<String>,
    /// `auto` or `manual`.
    pub kind: String,
    pub merged_at_ms: i64,
}

/// What an erasure removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ErasureOutcome {
    pub customers: u64,
    pub identities: u64,
    pub interactions: u64,
    pub quarantined: u64,
    pub suggestions: u64,
}

/// One person to erase: their customer id, and what to keep of them.
#[derive(Debug, Clone, Default)]
pub struct Erasure {
    pub customer_id: String,
    /// Keyed hashes of every identity, kept as tombstones.
    pub tombstones: Vec<String>,
    /// Keyed hash of the customer id, for the CRM sync's record.
    pub subject: String,
    /// Substrings that mark a quarantined raw row as theirs (emails in lower case, phones
    /// in the forms exports write them).
    pub quarantine_needles: Vec<String>,
}

/// A request to run one scheduled tick of a job.
#[derive(Debug, Clone)]
pub struct ClaimRequest<'a> {
    pub job: &'a str,
    /// The scheduled time of the tick (not when it fired).
    pub tick_ms: i64,
    pub instance: &'a str,
    pub now_ms: i64,
    /// How long the claim holds without a heartbeat.
    pub lease_ms: i64,
    /// A run for ticks missed while no instance was up.
    pub catch_up: bool,
}

/// What claiming a (job, tick) found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This instance runs the tick. `attempt` > 1: it took the tick over from a holder
    /// whose lease ran out.
    Run { attempt: i64 },
    /// The tick ran, or runs now, on the named instance.
    Taken { instance: String },
    /// The job is still running an earlier tick (here or elsewhere): this tick is skipped.
    Busy { instance: String, tick_ms: i64 },
}

/// One claimed (job, tick).
#[derive(Debug, Clone, Serialize)]
pub struct JobRun {
    pub job: String,
    pub tick_ms: i64,
    pub instance: String,
    /// `running`, `done`, `failed`, or `abandoned` (the holder stopped renewing its lease).
    pub state: String,
    pub catch_up: bool,
    pub attempts: i64,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub interactions: i64,
    pub customers: i64,
    pub identities: i64,
    pub quarantine_open: i64,
}

#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Records the configured locations (insert or update).
    async fn put_locations(&self, locations: &[Location]) -> Result<()>;
    async fn locations(&self) -> Result<Vec<Location>>;

    /// Writes one batch in one transaction. Interactions are upserted by
    /// (source, external_id): a known item with the same content hash is left alone, an
    /// edited one is updated and its revision bumped, an older copy of a newer stored
    /// item (by `updated_at`) does not overwrite it.
    async fn write_batch(&self, batch: WriteBatch) -> Result<BatchOutcome>;

    async fn start_import_run(
        &self,
        source: &str,
        preset: &str,
        origin: &str,
        file_hash: &str,
    ) -> Result<i64>;
    /// Ends a run: `done`, `stopped` (a stop request; resumes from the cursor) or
    /// `failed` with the error as the operator sees it (it never holds a secret).
    async fn finish_import_run(&self, id: i64, status: &str, error: Option<&str>) -> Result<()>;

    /// The latest runs of one source, newest first (connector health).
    async fn recent_runs(&self, source: &str, limit: i64) -> Result<Vec<RunSummary>>;

    /// The statuses of every import run of a file with this content hash (watch folders
    /// import each content once).
    async fn import_statuses(&self, file_hash: &str) -> Result<Vec<String>>;

    async fn cursor(&self, source: &str) -> Result<Option<String>>;

    /// Claims one tick of a scheduled job: one transaction that holds the job's lock row,
    /// so of any number of instances exactly one gets `Claim::Run` for a (job, tick), and
    /// no instance starts a job whose lease another holds.
    async fn claim_job(&self, req: &ClaimRequest<'_>) -> Result<Claim>;

    /// Extends the lease of a running claim. `false`: the claim is no longer this
    /// instance's (its lease ran out and another instance took the job).
    async fn renew_job_lease(
        &self,
        job: &str,
        tick_ms: i64,
        instance: &str,
        lease_until_ms: i64,
    ) -> Result<bool>;

    /// Records the end of a claimed run and releases the job's lease. `false`: the claim
    /// was no longer this instance's.
    async fn finish_job(
        &self,
        job: &str,
        tick_ms: i64,
        instance: &str,
        now_ms: i64,
        error: Option<&str>,
    ) -> Result<bool>;

    /// Claimed runs, newest tick first; one job or all.
    async fn job_runs(&self, job: Option<&str>, limit: i64) -> Result<Vec<JobRun>>;

    /// The customer an identity belongs to.
    async fn customer_by_identity(&self, identity: &Identity) -> Result<Option<String>>;
    async fn customer(&self, id: &str) -> Result<Option<Customer>>;
    /// The customer's interactions in time order.
    async fn timeline(&self, customer_id: &str) -> Result<Vec<StoredInteraction>>;
    /// Customers with the most sources and interactions.
    async fn busiest_customers(&self, limit: i64) -> Result<Vec<CustomerActivity>>;

    async fn location_summaries(&self) -> Result<Vec<LocationSummary>>;

    async fn quarantine(&self, status: Option<&str>) -> Result<Vec<QuarantineItem>>;
    /// Marks quarantined rows as dismissed or reopens them.
    async fn set_quarantine_status(&self, ids: &[i64], status: &str) -> Result<u64>;

    async fn counts(&self) -> Result<Counts>;

    /// Open link suggestions: scored ones by score (highest first), then the others, oldest
    /// first.
    async fn link_suggestions(&self) -> Result<Vec<LinkSuggestion>>;
    /// The display-name pass: keys the names of interactions stored since the last pass and
    /// suggests (never merges) links between customers who share a full name and spoke
    /// within `window_ms` of each other (see `pipeline::weak`). One query groups the new
    /// names' sightings; dismissed and unlinked pairs are not suggested again.
    async fn suggest_by_name(&self, window_ms: i64) -> Result<NamePassOutcome>;
    /// An operator's rejection of a link between the customers of two identities: open
    /// suggestions between them are closed as dismissed and the pair is never suggested
    /// again. `None` when an identity is unknown; the suggestions closed otherwise.
    async fn dismiss_suggestion(&self, a: &Identity, b: &Identity) -> Result<Option<u64>>;
    /// Identities blocked automatically, newest first.
    async fn blocked_identities(&self) -> Result<Vec<BlockedIdentity>>;
    /// An operator's unblock of an automatically blocked identity (`kind:value`): it joins
    /// people again from the next batch on and is never blocked automatically again.
    /// `false` when it was not blocked.
    async fn unblock_identity(&self, identity: &str) -> Result<bool>;
    /// Texts with stars, NPS or a CSAT answer (owner replies excluded), newest first.
    async fn rated_texts(&self, limit: i64) -> Result<Vec<RatedText>>;
    /// Records an adaptation run; returns its id.
    async fn save_sentiment_model(&self, model: &SentimentModelRecord) -> Result<i64>;
    /// Adaptation runs, newest first, without their weights.
    async fn sentiment_models(&self, limit: i64) -> Result<Vec<SentimentModelRecord>>;
    /// The newest adopted model, with its weights.
    async fn adopted_sentiment_model(&self) -> Result<Option<SentimentModelRecord>>;
    /// Texts not scored by `version`, by id after `after_id`: (id, text, language).
    async fn texts_to_rescore(
        &self,
        version: &str,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String, Option<String>)>>;
    /// Stores new scores; the interactions' content and revision stay as they are.
    async fn rescore(&self, scores: &[Rescore]) -> Result<u64>;

    /// How far change detection has read (an interaction id; 0 before the first pass).
    async fn analysis_progress(&self) -> Result<i64>;

    /// Stored interactions after the analysis progress mark (the detectors' queue).
    async fn analysis_backlog(&self) -> Result<i64>;
    /// Interactions with an id above `after_id`, by id.
    async fn interactions_after(&self, after_id: i64, limit: i64)
    -> Result<Vec<StoredInteraction>>;
    /// One location's or customer's interactions with `from_ms <= occurred_at < to_ms`,
    /// in time order.
    async fn entity_interactions(
        &self,
        entity: &str,
        id: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<StoredInteraction>>;
    async fn series_states(&self, series: &[String]) -> Result<Vec<SeriesState>>;
    /// Writes a pass's page in one transaction; `false` when the progress mark was no
    /// longer `write.from_id` (another daemon wrote this page first) and nothing was written.
    async fn save_analysis(&self, write: AnalysisWrite) -> Result<bool>;
    /// Customers merged or split since the last analysis pass (marked in the transaction
    /// that merged or split them), with the time of the mark; at most `limit`.
    async fn stale_customers(&self, limit: i64) -> Result<Vec<(String, i64)>>;
    /// Forgets every detector state and change, so the next pass reads all history again.
    async fn reset_analysis(&self) -> Result<()>;
    /// Stored changes, newest first.
    async fn changes(&self, filter: &ChangeFilter) -> Result<Vec<StoredChange>>;

    /// Removes a person in one transaction: their customer (and those merged into it),
    /// identities, interactions with their replies and comments, quarantined rows that name
    /// them, link suggestions, and every change and detector state (derived figures are
    /// rebuilt by the next analysis pass); keeps the tombstones and an erasure record.
    async fn erase(&self, erasure: &Erasure) -> Result<ErasureOutcome>;
    /// Merges into or out of a customer, oldest first.
    async fn merges_of(&self, customer_id: &str) -> Result<Vec<MergeRecord>>;
    /// An operator's link: merges the customers of two identities and records it; the
    /// link suggestion between them, if any, is closed. `None` when an identity is
    /// unknown; `(from, into)` otherwise (equal when they were one customer already).
    async fn link(&self, a: &Identity, b: &Identity) -> Result<Option<(String, String)>>;
    /// An operator's split: records that `a` and `b` are different people, then splits their
    /// customer along the recorded evidence (the identities each interaction carried, the
    /// manual links), cutting every link that would join the two sides. The side holding
    /// the customer's first identity keeps its id; every other side becomes (or becomes
    /// again) a customer of its own. Change detection starts over. `None` when the two
    /// identities are not one customer; the ids of the customers after the split otherwise.
    async fn unlink(&self, a: &Identity, b: &Identity) -> Result<Option<Vec<String>>>;
    /// Every tombstone hash.
    async fn tombstones(&self) -> Result<std::collections::HashSet<String>>;
    /// (source, external_id) of a customer's interactions and of the replies and comments
    /// that answer them: what an erasure removes.
    async fn erasable_items(&self, customer_id: &str) -> Result<Vec<(String, String)>>;

    /// Every interaction's (source, external_id, content_hash, customer_id), sorted; for
    /// tests and consistency checks.
    async fn fingerprint(&self) -> Result<Vec<(String, String, String, Option<String>)>>;

    // --- HTTP API reads ---
    /// A trivial query: the store answers (readiness).
    async fn ping(&self) -> Result<()>;
    /// One page of interactions matching the filter, by id ascending after `f.after_id`.
    async fn interactions_page(&self, f: &InteractionFilter) -> Result<Vec<StoredInteraction>>;
    /// One page of customers (not merged into another), by id ascending after `f.after`,
    /// with how much they said and from how many sources.
    async fn customers_page(&self, f: &CustomerFilter) -> Result<Vec<CustomerActivity>>;
    /// One page of changes matching the filter, by id descending before `f.before_id`.
    async fn changes_page(&self, f: &ChangePageFilter) -> Result<Vec<StoredChange>>;
    async fn change(&self, id: i64) -> Result<Option<StoredChange>>;
    /// One page of quarantined rows, by id ascending after `f.after_id`.
    async fn quarantine_page(&self, f: &QuarantineFilter) -> Result<Vec<QuarantineItem>>;
    /// Every source seen in runs, cursors, interactions or quarantine, by name.
    async fn sources_status(&self) -> Result<Vec<SourceStatus>>;

    // --- indicators ---
    /// What the indicators need of the interactions (owner replies excluded) that occurred
    /// in `[from_ms, until_ms)` and match the filter; tickets carry their support times.
    async fn indicator_rows(
        &self,
        f: &IndicatorFilter,
    ) -> Result<Vec<crate::pipeline::indicators::IndicatorRow>>;

    /// What a reputation report reads of the interactions (owner replies excluded) of one
    /// location (all when `None`) that occurred in `[from_ms, until_ms)`: kind, channel,
    /// scores, language, topics, and the first 600 characters of the text. Each carries
    /// the time of its first reply (a reply of the same location), whenever that came.
    async fn report_rows(
        &self,
        location_id: Option<&str>,
        from_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<ReportRow>>;

    // --- email digests ---
    /// Claims the digest of one (recipient, period) before sending it: one statement, so of
    /// any number of instances one wins. `Some(attempt)`: send it; `None`: it was sent, or
    /// another sender holds a live claim. A failed digest, or a claim whose lease ran out
    /// (a crashed sender), is taken again with `attempt` + 1.
    async fn claim_digest(&self, claim: &DigestClaim<'_>) -> Result<Option<i64>>;
    /// Ends a claim: sent (with the Message-ID) or failed (with the error). `false`: the
    /// claim was no longer this instance's.
    async fn finish_digest(&self, done: &DigestDone<'_>) -> Result<bool>;
    /// Digest sends, newest period first; one recipient or all.
    async fn digest_sends(&self, recipient: Option<&str>, limit: i64) -> Result<Vec<DigestSend>>;

    /// Registers a CRM sink. The first time, in the same transaction, every stored
    /// interaction and confirmed change is queued for it (the backfill): `Some(queued)`.
    /// `None`: it was registered before.
    async fn crm_register(&self, sink: &str, kind: &str) -> Result<Option<u64>>;
    /// Up to `limit` items of `sink` that are due, oldest first, each with the data as it
    /// is now. With `lease_ms`, they are held for this worker until then (another worker,
    /// or this one after a crash, gets them back only when it ran out); without, they are
    /// only read (`--dry-run`).
    async fn crm_lease(
        &self,
        sink: &str,
        limit: i64,
        lease_ms: Option<i64>,
    ) -> Result<Vec<CrmItem>>;
    /// Records what became of leased items: delivered ones leave the outbox (unless a newer
    /// version arrived meanwhile) and their links are kept; failures are retried later or,
    /// after `max_attempts` counted failures, parked; refused ones are parked.
    async fn crm_finish(
        &self,
        sink: &str,
        outcomes: &[CrmOutcome],
        max_attempts: i64,
    ) -> Result<()>;
    /// Remembers records a sink found or created outside an item's verdict (contacts). A
    /// link once marked `created` stays so.
    async fn crm_remember(&self, sink: &str, links: &[CrmLink]) -> Result<()>;
    /// Notes the end of a sync run of `sink` (its error, if it stopped on one).
    async fn crm_run_done(&self, sink: &str, error: Option<&str>) -> Result<()>;
    /// Every registered sink's outbox.
    async fn crm_status(&self) -> Result<Vec<CrmSinkStatus>>;
    /// Parked items, oldest first; one sink or all.
    async fn crm_parked(&self, sink: Option<&str>, limit: i64) -> Result<Vec<CrmParked>>;
    /// Puts parked items back in the queue (all of a sink, or the given ids): how many.
    async fn crm_retry(&self, sink: Option<&str>, ids: &[i64]) -> Result<u64>;
}

/// A claim of one digest: (recipient, cadence, period_start) is the key.
#[derive(Debug, Clone)]
pub struct DigestClaim<'a> {
    /// The recipient's address in lower case.
    pub recipient: &'a str,
    /// `day` or `week`.
    pub cadence: &'a str,
    /// Local dates (YYYY-MM-DD) in the recipient's zone, both included.
    pub period_start: &'a str,
    pub period_end: &'a str,
    pub instance: &'a str,
    pub now_ms: i64,
    /// How long the claim blocks others without being finished.
    pub lease_ms: i64,
}

/// How a claimed digest ended.
#[derive(Debug, Clone)]
pub struct DigestDone<'a> {
    pub recipient: &'a str,
    pub cadence: &'a str,
    pub period_start: &'a str,
    pub instance: &'a str,
    pub now_ms: i64,
    /// `Ok(message_id)` or `Err(error as the operator sees it)`.
    pub outcome: std::result::Result<&'a str, &'a str>,
}

/// One row of `digests_sent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DigestSend {
    pub recipient: String,
    pub cadence: String,
    pub period_start: String,
    pub period_end: String,
    /// `sending`, `sent` or `failed`.
    pub state: String,
    pub instance: String,
    pub attempts: i64,
    pub claimed_at_ms: i64,
    pub sent_at_ms: Option<i64>,
    pub message_id: Option<String>,
    pub error: Option<String>,
}

/// One interaction as a report reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportRow {
    pub id: i64,
    pub source: String,
    pub external_id: String,
    pub kind: String,
    pub occurred_at_ms: i64,
    pub location_id: Option<String>,
    pub author_name: Option<String>,
    /// The first 600 characters.
    pub text: Option<String>,
    pub language: Option<String>,
    pub sentiment: Option<f64>,
    pub sentiment_label: Option<String>,
    pub stars: Option<f64>,
    pub url: Option<String>,
    /// Topics the text talks about, with the sentiment toward each where clear.
    pub aspects: Vec<crate::pipeline::sentiment::AspectScore>,
    /// When the first reply to it was written (owner replies: response rate and time).
    pub replied_at_ms: Option<i64>,
}

/// Which interactions an indicator report reads.
#[derive(Debug, Clone, Default)]
pub struct IndicatorFilter {
    pub from_ms: i64,
    pub until_ms: i64,
    pub location_id: Option<String>,
    /// A source, a kind, or `source/kind`.
    pub channel: Option<String>,
    pub customer_id: Option<String>,
    /// Zendesk business-hour minutes instead of calendar minutes.
    pub business_hours: bool,
}

/// Connection settings beyond the URL.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub max_connections: u32,
    pub busy_timeout_secs: u64,
}

impl From<&crate::config::StorageConfig> for ConnectOptions {
    fn from(c: &crate::config::StorageConfig) -> Self {
        Self {
            max_connections: c.max_connections,
            busy_timeout_secs: c.busy_timeout_secs,
        }
    }
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            busy_timeout_secs: 5,
        }
    }
}

/// Opens the store the URL names and applies its migrations.
pub async fn connect(url: &Secret, opts: &ConnectOptions) -> Result<Arc<dyn Store>> {
    let u = url.expose();
    if u.starts_with("postgres://") || u.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect(url, opts).await?))
    } else if u.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url, opts).await?))
    } else {
        Err(StoreError::Connect {
            url: redact_url(u),
            message: "unsupported scheme; use sqlite://PATH or postgres://...".into(),
        })
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

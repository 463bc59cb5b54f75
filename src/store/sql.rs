//! The SQL both backends share. SQLite and PostgreSQL agree on `$n` parameters,
//! `ON CONFLICT ... DO UPDATE`, `excluded` and `RETURNING`, so the [`Store`] methods are
//! written once here and instantiated per backend by `impl_store!`. What differs (pool
//! setup, how a write transaction begins, migrations) lives in `sqlite.rs` and
//! `postgres.rs`.
//!
//! [`Store`]: super::Store

/// Columns of `interactions` in the order the upsert binds them.
pub(super) const INTERACTION_COLUMNS: &str = "source, external_id, kind, parent_external_id, \
    occurred_at_ms, updated_at_ms, location_id, customer_id, author_name, identities, text, \
    language, language_confidence, stars, nps, csat, csat_scale, csat_satisfied, ces, \
    ces_scale, ces_agrees, status, sentiment, sentiment_label, sentiment_confidence, \
    sentiment_model, aspects, url, raw, content_hash, revision, first_seen_ms, last_changed_ms";

/// Binds per interaction row; the statement size stays under both backends' limits.
pub(super) const ROWS_PER_STATEMENT: usize = 500;

/// A report's reads (`indicator_rows`, `report_rows`) go through their window in
/// consecutive time slices of at least this long (a fortnight), at most
/// [`REPORT_SLICES`] of them: each slice is one plain range on an index, and the driver
/// holds one slice's rows at a time besides the converted ones.
pub(super) const REPORT_SLICE_MS: i64 = 14 * 86_400_000;
pub(super) const REPORT_SLICES: i128 = 64;

/// `[from_ms, until_ms)` cut into consecutive slices, in time order.
pub(super) fn report_slices(from_ms: i64, until_ms: i64) -> Vec<(i64, i64)> {
    let span = i128::from(until_ms) - i128::from(from_ms);
    if span <= 0 {
        return Vec::new();
    }
    let width = i128::from(REPORT_SLICE_MS).max((span + REPORT_SLICES - 1) / REPORT_SLICES);
    let mut out = Vec::new();
    let mut lo = i128::from(from_ms);
    while lo < i128::from(until_ms) {
        let hi = (lo + width).min(i128::from(until_ms));
        out.push((lo as i64, hi as i64));
        lo = hi;
    }
    out
}

pub(super) const UPSERT_TAIL: &str = " ON CONFLICT (source, external_id) DO UPDATE SET \
    kind = excluded.kind, parent_external_id = excluded.parent_external_id, \
    occurred_at_ms = excluded.occurred_at_ms, updated_at_ms = excluded.updated_at_ms, \
    location_id = excluded.location_id, customer_id = excluded.customer_id, \
    author_name = excluded.author_name, identities = excluded.identities, text = excluded.text, \
    language = excluded.language, language_confidence = excluded.language_confidence, \
    stars = excluded.stars, nps = excluded.nps, csat = excluded.csat, \
    csat_scale = excluded.csat_scale, csat_satisfied = excluded.csat_satisfied, \
    ces = excluded.ces, ces_scale = excluded.ces_scale, ces_agrees = excluded.ces_agrees, \
    status = excluded.status, sentiment = excluded.sentiment, \
    sentiment_label = excluded.sentiment_label, \
    sentiment_confidence = excluded.sentiment_confidence, \
    sentiment_model = excluded.sentiment_model, aspects = excluded.aspects, url = excluded.url, raw = excluded.raw, \
    content_hash = excluded.content_hash, revision = interactions.revision + 1, \
    last_changed_ms = excluded.last_changed_ms \
    WHERE interactions.content_hash <> excluded.content_hash \
    AND (interactions.updated_at_ms IS NULL OR excluded.updated_at_ms IS NULL \
         OR excluded.updated_at_ms >= interactions.updated_at_ms) \
    RETURNING id, revision";

pub(super) const SELECT_INTERACTION: &str = "SELECT id, customer_id, revision, source, \
    external_id, kind, parent_external_id, occurred_at_ms, updated_at_ms, location_id, \
    author_name, identities, text, language, language_confidence, stars, nps, csat, \
    csat_scale, csat_satisfied, ces, ces_scale, ces_agrees, status, sentiment, \
    sentiment_label, sentiment_confidence, sentiment_model, aspects, url, raw, content_hash \
    FROM interactions";

pub(super) const SELECT_MODEL: &str = "SELECT id, version, base_version, trained_at_ms, \
    examples, trained_on, held_out, base_accuracy, base_macro_f1, adapted_accuracy, \
    adapted_macro_f1, adopted";

pub(super) const LOCATION_SUMMARY: &str = "SELECT location_id, \
    SUM(CASE WHEN kind <> 'reply' THEN 1 ELSE 0 END) AS n, \
    SUM(CASE WHEN kind = 'review' THEN 1 ELSE 0 END) AS reviews, \
    SUM(CASE WHEN kind = 'ticket' THEN 1 ELSE 0 END) AS tickets, \
    SUM(CASE WHEN kind = 'survey_response' THEN 1 ELSE 0 END) AS surveys, \
    SUM(CASE WHEN kind = 'reply' THEN 1 ELSE 0 END) AS replies, \
    COUNT(DISTINCT customer_id) AS customers, \
    COUNT(stars) AS stars_n, AVG(stars) AS stars_mean, \
    COUNT(nps) AS nps_n, \
    SUM(CASE WHEN nps >= 9 THEN 1 ELSE 0 END) AS promoters, \
    SUM(CASE WHEN nps <= 6 THEN 1 ELSE 0 END) AS detractors, \
    COUNT(csat_satisfied) AS csat_n, \
    SUM(CASE WHEN csat_satisfied = 1 THEN 1 ELSE 0 END) AS csat_sat, \
    COUNT(ces_agrees) AS ces_n, \
    SUM(CASE WHEN ces_agrees = 1 THEN 1 ELSE 0 END) AS ces_agree, \
    SUM(CASE WHEN kind <> 'reply' AND sentiment IS NOT NULL THEN 1 ELSE 0 END) AS sent_n, \
    AVG(CASE WHEN kind <> 'reply' THEN sentiment END) AS sent_mean, \
    SUM(CASE WHEN kind <> 'reply' AND sentiment_label = 'negative' THEN 1 ELSE 0 END) AS negative, \
    MIN(occurred_at_ms) AS first_ms, MAX(occurred_at_ms) AS last_ms \
    FROM interactions GROUP BY location_id ORDER BY location_id";

/// Merging customer `$2` into `$1`: its identities and interactions move, its row points on.
pub(super) const MERGE_CUSTOMER: [&str; 3] = [
    "UPDATE identities SET customer_id = $1 WHERE customer_id = $2",
    "UPDATE interactions SET customer_id = $1 WHERE customer_id = $2",
    "UPDATE customers SET merged_into = $1 WHERE id = $2",
];

/// Everything change detection derives; emptied when the next pass must read all history
/// again (`reset_analysis`, an erasure: locations lose interactions too).
pub(super) const ANALYSIS_TABLES: [&str; 4] = [
    "changes",
    "series_state",
    "analysis_progress",
    "stale_customers",
];

/// A value bound to a statement built at run time (the HTTP API's filters).
pub(super) enum Arg {
    Int(i64),
    Real(f64),
    Text(String),
}

/// A `WHERE` clause built condition by condition, numbering the `$n` parameters as it goes,
/// so a filter that is not given costs nothing in the plan (no `$1 IS NULL OR ...`, which
/// keeps both planners off the index).
#[derive(Default)]
pub(super) struct Conditions {
    pub sql: String,
    pub args: Vec<Arg>,
}

impl Conditions {
    /// Adds `AND <cond>`, where `?` in `cond` stands for the value's parameter.
    pub fn and(&mut self, cond: &str, arg: Arg) {
        self.args.push(arg);
        let p = format!("${}", self.args.len());
        self.sql.push_str(if self.sql.is_empty() {
            " WHERE "
        } else {
            " AND "
        });
        self.sql.push_str(&cond.replace('?', &p));
    }

    pub fn and_text(&mut self, cond: &str, v: &Option<String>) {
        if let Some(v) = v {
            self.and(cond, Arg::Text(v.clone()));
        }
    }

    /// `occurred_at_ms` in `[from, to)`, each bound optional.
    pub fn and_period(&mut self, from_ms: Option<i64>, to_ms: Option<i64>) {
        if let Some(v) = from_ms {
            self.and("occurred_at_ms >= ?", Arg::Int(v));
        }
        if let Some(v) = to_ms {
            self.and("occurred_at_ms < ?", Arg::Int(v));
        }
    }

    /// The next parameter's placeholder, for `LIMIT`.
    pub fn push(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }
}

pub(super) const SELECT_CHANGE: &str = "SELECT id, series, entity, entity_id, channel, signal, \
    idx, occurred_at_ms, direction, before_value, after_value, confidence, status, n_before, \
    n_after, evidence, detected_at_ms FROM changes";

pub(super) const SELECT_QUARANTINE: &str = "SELECT id, source, preset, origin, line, field, \
    expected, message, raw, options, status, created_at_ms FROM quarantine";

/// Writes the body of `impl Store` for a backend struct with a `pool` field and a
/// `begin_write` method.
macro_rules! impl_store {
    ($name:ident, $db:ty, $backend:literal) => {
        use $crate::model::{
            Ces, Csat, Identity, IdentityKind, Interaction, InteractionKind, Location, Sentiment,
            SentimentLabel,
        };
        use $crate::pipeline::identify;
        use $crate::store::sql::*;
        use $crate::store::*;
        use sqlx::Row;
        use std::collections::HashMap;

        fn model_from_row(r: &<$db as sqlx::Database>::Row) -> Result<SentimentModelRecord> {
            Ok(SentimentModelRecord {
                id: r.try_get("id")?,
                version: r.try_get("version")?,
                base_version: r.try_get("base_version")?,
                trained_at_ms: r.try_get("trained_at_ms")?,
                report: crate::pipeline::sentiment::AdaptReport {
                    examples: r.try_get::<i64, _>("examples")? as usize,
                    trained_on: r.try_get::<i64, _>("trained_on")? as usize,
                    held_out: r.try_get::<i64, _>("held_out")? as usize,
                    base_accuracy: r.try_get("base_accuracy")?,
                    base_macro_f1: r.try_get("base_macro_f1")?,
                    adapted_accuracy: r.try_get("adapted_accuracy")?,
                    adapted_macro_f1: r.try_get("adapted_macro_f1")?,
                    adopted: r.try_get::<i64, _>("adopted")? == 1,
                },
                weights: r.try_get::<Option<Vec<u8>>, _>("weights")?.unwrap_or_default(),
            })
        }

        /// The CSAT answer of an interaction row (`csat`, `csat_scale`, `csat_satisfied`).
        fn csat_of(row: &<$db as sqlx::Database>::Row) -> Result<Option<Csat>> {
            Ok(match row.try_get::<Option<f64>, _>("csat")? {
                Some(value) => Some(Csat {
                    value,
                    scale: row.try_get::<Option<String>, _>("csat_scale")?.unwrap_or_default(),
                    satisfied: row.try_get::<Option<i64>, _>("csat_satisfied")? == Some(1),
                }),
                None => None,
            })
        }

        /// The CES answer of an interaction row (`ces`, `ces_scale`, `ces_agrees`).
        fn ces_of(row: &<$db as sqlx::Database>::Row) -> Result<Option<Ces>> {
            Ok(match row.try_get::<Option<f64>, _>("ces")? {
                Some(value) => Some(Ces {
                    value,
                    scale: row.try_get::<Option<String>, _>("ces_scale")?.unwrap_or_default(),
                    agrees: row.try_get::<Option<i64>, _>("ces_agrees")? == Some(1),
                }),
                None => None,
            })
        }

        /// Aspects as JSON, `NULL` when the text mentions none.
        fn aspects_json(a: &[crate::pipeline::sentiment::AspectScore]) -> Option<String> {
            (!a.is_empty()).then(|| serde_json::to_string(a).expect("aspects serialize"))
        }

        /// The customer an identity key (`kind:value`) belongs to now.
        async fn customer_of_key(
            conn: &mut <$db as sqlx::Database>::Connection,
            key: &str,
        ) -> Result<Option<String>> {
            let Some((kind, value)) = key.split_once(':') else {
                return Ok(None);
            };
            Ok(sqlx::query_scalar(
                "SELECT customer_id FROM identities WHERE kind = $1 AND value = $2",
            )
            .bind(kind)
            .bind(value)
            .fetch_optional(&mut *conn)
            .await?)
        }

        /// The strong identities as a JSON array of `kind:value` keys; the name identity
        /// is the `author_name` column and is not stored twice.
        fn strong_identity_keys(ids: &[Identity]) -> String {
            let keys: Vec<String> = ids
                .iter()
                .filter(|i| i.kind.is_strong())
                .map(Identity::key)
                .collect();
            serde_json::to_string(&keys).expect("strings")
        }

        /// `head (v1, v2, ...) tail`: one statement over a chunk of values (`head` ends
        /// with `IN`).
        fn in_list<'t, T>(
            head: impl Into<String>,
            values: impl IntoIterator<Item = T>,
            tail: &str,
        ) -> sqlx::QueryBuilder<$db>
        where
            T: sqlx::Encode<'t, $db> + sqlx::Type<$db>,
        {
            let mut qb = sqlx::QueryBuilder::<$db>::new(head);
            qb.push(" (");
            let mut list = qb.separated(", ");
            for v in values {
                list.push_bind(v);
            }
            qb.push(")");
            qb.push(tail);
            qb
        }

        /// Marks customers whose series the next analysis pass must rebuild (a merge, a
        /// split), in the caller's transaction.
        async fn mark_stale(
            conn: &mut <$db as sqlx::Database>::Connection,
            customers: &[&String],
            now: i64,
        ) -> Result<()> {
            for c in customers {
                sqlx::query(
                    "INSERT INTO stale_customers (customer_id, marked_ms) VALUES ($1, $2) \
                     ON CONFLICT (customer_id) DO UPDATE SET marked_ms = excluded.marked_ms",
                )
                .bind(c.as_str())
                .bind(now)
                .execute(&mut *conn)
                .await?;
            }
            Ok(())
        }

        /// Queues a customer's whole history for the CRM sinks again (they gained an email,
        /// or another customer was merged into them); upserts by key duplicate nothing.
        async fn crm_requeue_customer(
            conn: &mut <$db as sqlx::Database>::Connection,
            customer: &str,
            now: i64,
        ) -> Result<()> {
            sqlx::query(
                "INSERT INTO crm_outbox (sink, entity, entity_key, op, next_attempt_ms, enqueued_ms) \
                 SELECT s.name, 'interaction', CAST(i.id AS TEXT), 'upsert', $2, $2 \
                 FROM interactions i CROSS JOIN crm_sinks s WHERE i.customer_id = $1 \
                 ON CONFLICT (sink, entity, entity_key, op) DO UPDATE SET \
                 generation = crm_outbox.generation + 1, next_attempt_ms = excluded.next_attempt_ms, \
                 attempts = 0, parked_at_ms = NULL, last_error = NULL",
            )
            .bind(customer)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        fn opt_bool(v: Option<bool>) -> Option<i64> {
            v.map(i64::from)
        }

        /// Removes a delivered outbox item, unless a newer version of the same record was
        /// queued while it was on the way: then it only loses its lease and goes again.
        async fn crm_done(
            conn: &mut <$db as sqlx::Database>::Connection,
            o: &CrmOutcome,
        ) -> Result<()> {
            let gone = sqlx::query("DELETE FROM crm_outbox WHERE id = $1 AND generation = $2")
                .bind(o.id)
                .bind(o.generation)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            if gone == 0 {
                sqlx::query(
                    "UPDATE crm_outbox SET leased_until_ms = NULL, uncertain = 0 WHERE id = $1",
                )
                .bind(o.id)
                .execute(&mut *conn)
                .await?;
            }
            Ok(())
        }

        /// Queues `keys` of `entity` for every registered sink, in the caller's
        /// transaction. A record already waiting gets a new generation (and leaves the
        /// parking lot: its new version may be acceptable).
        async fn crm_enqueue(
            conn: &mut <$db as sqlx::Database>::Connection,
            sinks: &[String],
            entity: &str,
            keys: &[String],
            now: i64,
        ) -> Result<()> {
            if sinks.is_empty() || keys.is_empty() {
                return Ok(());
            }
            let mut keys: Vec<&String> = keys.iter().collect();
            keys.sort_unstable();
            keys.dedup();
            let rows: Vec<(&String, &String)> = sinks
                .iter()
                .flat_map(|s| keys.iter().map(move |k| (s, *k)))
                .collect();
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO crm_outbox (sink, entity, entity_key, op, next_attempt_ms, enqueued_ms) ",
                );
                qb.push_values(chunk, |mut b, (sink, key)| {
                    b.push_bind(sink.as_str())
                        .push_bind(entity)
                        .push_bind(key.as_str())
                        .push_bind("upsert")
                        .push_bind(now)
                        .push_bind(now);
                });
                qb.push(
                    " ON CONFLICT (sink, entity, entity_key, op) DO UPDATE SET \
                     generation = crm_outbox.generation + 1, next_attempt_ms = excluded.next_attempt_ms, \
                     attempts = 0, parked_at_ms = NULL, last_error = NULL",
                );
                qb.build().execute(&mut *conn).await?;
            }
            Ok(())
        }

        /// Keeps a link: the newest record id and customer, and `created` once it was.
        async fn crm_link(
            conn: &mut <$db as sqlx::Database>::Connection,
            sink: &str,
            l: &CrmLink,
            now: i64,
        ) -> Result<()> {
            sqlx::query(
                "INSERT INTO crm_links (sink, entity, crm_key, customer_id, remote_id, created, synced_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (sink, entity, crm_key) DO UPDATE SET \
                 remote_id = COALESCE(excluded.remote_id, crm_links.remote_id), \
                 customer_id = COALESCE(excluded.customer_id, crm_links.customer_id), \
                 created = CASE WHEN excluded.created = 1 THEN 1 ELSE crm_links.created END, \
                 synced_ms = excluded.synced_ms",
            )
            .bind(sink)
            .bind(l.entity.as_str())
            .bind(&l.crm_key)
            .bind(&l.customer_id)
            .bind(&l.remote_id)
            .bind(i64::from(l.created))
            .bind(now)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        async fn crm_sinks(conn: &mut <$db as sqlx::Database>::Connection) -> Result<Vec<String>> {
            Ok(sqlx::query_scalar("SELECT name FROM crm_sinks ORDER BY name")
                .fetch_all(&mut *conn)
                .await?)
        }

        fn row_to_interaction(row: &<$db as sqlx::Database>::Row) -> Result<StoredInteraction> {
            let kind: String = row.try_get("kind")?;
            let kind = InteractionKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown kind `{kind}`")))?;
            let identities: String = row.try_get("identities")?;
            let keys: Vec<String> = serde_json::from_str(&identities)
                .map_err(|e| StoreError::Corrupt(format!("identities: {e}")))?;
            let author_name: Option<String> = row.try_get("author_name")?;
            let mut identities: Vec<Identity> =
                keys.iter().filter_map(|k| Identity::from_key(k)).collect();
            if let Some(n) = &author_name {
                identities.push(Identity::new(IdentityKind::Name, n.clone()));
            }
            identities.sort();
            let csat = csat_of(&row)?;
            let ces = ces_of(&row)?;
            let sentiment = match row.try_get::<Option<f64>, _>("sentiment")? {
                Some(score) => Some(Sentiment {
                    score,
                    label: row
                        .try_get::<Option<String>, _>("sentiment_label")?
                        .as_deref()
                        .and_then(SentimentLabel::parse)
                        .unwrap_or(SentimentLabel::Neutral),
                    confidence: row
                        .try_get::<Option<f64>, _>("sentiment_confidence")?
                        .unwrap_or(0.0),
                    model: row
                        .try_get::<Option<String>, _>("sentiment_model")?
                        .unwrap_or_default(),
                }),
                None => None,
            };
            Ok(StoredInteraction {
                id: row.try_get("id")?,
                customer_id: row.try_get("customer_id")?,
                revision: row.try_get("revision")?,
                interaction: Interaction {
                    source: row.try_get("source")?,
                    external_id: row.try_get("external_id")?,
                    kind,
                    parent_external_id: row.try_get("parent_external_id")?,
                    occurred_at_ms: row.try_get("occurred_at_ms")?,
                    updated_at_ms: row.try_get("updated_at_ms")?,
                    location_id: row.try_get("location_id")?,
                    author_name,
                    identities,
                    text: row.try_get("text")?,
                    language: row.try_get("language")?,
                    language_confidence: row.try_get("language_confidence")?,
                    stars: row.try_get("stars")?,
                    nps: row.try_get("nps")?,
                    csat,
                    ces,
                    status: row.try_get("status")?,
                    sentiment,
                    aspects: row
                        .try_get::<Option<String>, _>("aspects")?
                        .and_then(|j| serde_json::from_str(&j).ok())
                        .unwrap_or_default(),
                    url: row.try_get("url")?,
                    raw: row.try_get("raw")?,
                    content_hash: row.try_get("content_hash")?,
                },
            })
        }

        #[async_trait::async_trait]
        impl Store for $name {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn put_locations(&self, locations: &[Location]) -> Result<()> {
                let mut tx = self.begin_write().await?;
                for l in locations {
                    sqlx::query(
                        "INSERT INTO locations (id, name, timezone, country, language, aliases) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET \
                         name = excluded.name, timezone = excluded.timezone, \
                         country = excluded.country, language = excluded.language, \
                         aliases = excluded.aliases",
                    )
                    .bind(&l.id)
                    .bind(&l.name)
                    .bind(&l.timezone)
                    .bind(&l.country)
                    .bind(&l.language)
                    .bind(serde_json::to_string(&l.aliases).expect("strings"))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn locations(&self) -> Result<Vec<Location>> {
                let rows = sqlx::query(
                    "SELECT id, name, timezone, country, language, aliases FROM locations ORDER BY id",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        let aliases: String = r.try_get("aliases")?;
                        Ok(Location {
                            id: r.try_get("id")?,
                            name: r.try_get("name")?,
                            timezone: r.try_get("timezone")?,
                            country: r.try_get("country")?,
                            language: r.try_get("language")?,
                            aliases: serde_json::from_str(&aliases).unwrap_or_default(),
                        })
                    })
                    .collect()
            }

            async fn write_batch(&self, mut batch: WriteBatch) -> Result<BatchOutcome> {
                without_nul(&mut batch);
                let now = now_ms();
                let mut out = BatchOutcome::default();
                let mut tx = self.begin_write().await?;

                // 0. Identities blocked automatically (shared by too many people) join
                // nobody, like the configured blocked values; one an operator unblocked is
                // exempt from the rule.
                let mut auto_blocked: std::collections::HashSet<Identity> = Default::default();
                let mut exempt: std::collections::HashSet<Identity> = Default::default();
                for r in sqlx::query("SELECT identity, status FROM blocked_identities")
                    .fetch_all(&mut *tx)
                    .await?
                {
                    let key: String = r.try_get("identity")?;
                    let status: String = r.try_get("status")?;
                    if let Some(id) = Identity::from_key(&key) {
                        if status == "blocked" {
                            auto_blocked.insert(id);
                        } else {
                            exempt.insert(id);
                        }
                    }
                }
                if !auto_blocked.is_empty() {
                    for i in &mut batch.interactions {
                        i.identities.retain(|x| !auto_blocked.contains(x));
                    }
                }

                // 1. Customers: exact matches of strong identities.
                let id_lists: Vec<&[Identity]> = batch
                    .interactions
                    .iter()
                    .map(|i| i.identities.as_slice())
                    .collect();
                let mut wanted: Vec<&Identity> = id_lists
                    .iter()
                    .copied()
                    .flatten()
                    .filter(|i| i.kind.is_strong())
                    .collect();
                wanted.sort();
                wanted.dedup();
                let mut known: HashMap<Identity, String> = HashMap::new();
                // One query per kind, so the (kind, value) primary key serves the lookup.
                for kind in [IdentityKind::Email, IdentityKind::Phone, IdentityKind::Platform] {
                    let values: Vec<&str> = wanted
                        .iter()
                        .filter(|i| i.kind == kind)
                        .map(|i| i.value.as_str())
                        .collect();
                    for (value, customer) in Self::find_identities(&mut tx, kind, &values).await? {
                        known.insert(Identity::new(kind, value), customer);
                    }
                }
                // An identity that would join more than N otherwise separate customers is
                // blocked from now on (recorded with its counts), and this batch already
                // resolves without it.
                let max_shared = if batch.max_customers_per_identity == 0 {
                    identify::DEFAULT_MAX_CUSTOMERS_PER_IDENTITY
                } else {
                    batch.max_customers_per_identity
                };
                // A customer this batch would extend, who already holds more identities
                // than one identity may join people, brings their history into the count:
                // a shared inbox that joined people over several batches is caught too.
                let extended = identify::extended_customers(&id_lists, &known);
                let mut crowded: std::collections::BTreeSet<String> = Default::default();
                let extended: Vec<&String> = extended.iter().collect();
                for chunk in extended.chunks(ROWS_PER_STATEMENT) {
                    let mut qb = in_list(
                        "SELECT customer_id, COUNT(*) AS n FROM identities WHERE customer_id IN",
                        chunk.iter().map(|c| c.as_str()),
                        " GROUP BY customer_id",
                    );
                    for r in qb.build().fetch_all(&mut *tx).await? {
                        if r.try_get::<i64, _>("n")? as usize > max_shared {
                            crowded.insert(r.try_get("customer_id")?);
                        }
                    }
                }
                let shared = if crowded.is_empty() {
                    identify::shared_identities(&id_lists, &known, max_shared, &exempt)
                } else {
                    // The batch's lists borrowed, the history's owned.
                    let mut lists: Vec<std::borrow::Cow<[Identity]>> =
                        id_lists.iter().map(|l| std::borrow::Cow::Borrowed(*l)).collect();
                    let crowded_list: Vec<&String> = crowded.iter().collect();
                    for chunk in crowded_list.chunks(ROWS_PER_STATEMENT) {
                        let mut qb = in_list(
                            "SELECT identities FROM interactions WHERE customer_id IN",
                            chunk.iter().map(|c| c.as_str()),
                            "",
                        );
                        for r in qb.build().fetch_all(&mut *tx).await? {
                            let keys: String = r.try_get("identities")?;
                            let ids: Vec<Identity> = serde_json::from_str::<Vec<String>>(&keys)
                                .unwrap_or_default()
                                .iter()
                                .filter_map(|k| Identity::from_key(k))
                                .filter(|i| !auto_blocked.contains(i))
                                .collect();
                            if ids.len() > 1 {
                                lists.push(std::borrow::Cow::Owned(ids));
                            }
                        }
                    }
                    // Their identities count by the history's records, not as one customer.
                    let known_rest: HashMap<Identity, String> = known
                        .iter()
                        .filter(|(_, c)| !crowded.contains(*c))
                        .map(|(i, c)| (i.clone(), c.clone()))
                        .collect();
                    identify::shared_identities(&lists, &known_rest, max_shared, &exempt)
                };
                if !shared.is_empty() {
                    for h in &shared {
                        out.blocked_identities += sqlx::query(
                            "INSERT INTO blocked_identities (identity, reason, customers, records, blocked_at_ms) \
                             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (identity) DO NOTHING",
                        )
                        .bind(h.identity.key())
                        .bind(format!(
                            "would join {} otherwise separate customers ({} records); more than identity.max_customers_per_identity = {max_shared}",
                            h.customers, h.records
                        ))
                        .bind(h.customers as i64)
                        .bind(h.records as i64)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    }
                    // The value itself is not logged: it may be a person's.
                    tracing::warn!(
                        count = shared.len(),
                        "identities shared by more than {max_shared} customers were blocked; see `tideline customers blocked`"
                    );
                    let drop: std::collections::HashSet<Identity> =
                        shared.into_iter().map(|h| h.identity).collect();
                    for i in &mut batch.interactions {
                        i.identities.retain(|x| !drop.contains(x));
                    }
                }
                let id_lists: Vec<&[Identity]> = batch
                    .interactions
                    .iter()
                    .map(|i| i.identities.as_slice())
                    .collect();
                // What the household rule needs of the customers already known.
                let mut facts: HashMap<String, identify::CustomerFacts> = HashMap::new();
                // Only customers reached through a phone can be on the far side of the
                // household rule; customers a batch would merge are looked up for the size
                // cap in a second round.
                let mut want: Vec<String> = known
                    .iter()
                    .filter(|(id, _)| id.kind == IdentityKind::Phone)
                    .map(|(_, c)| c.clone())
                    .collect();
                let max_component = if batch.max_component == 0 {
                    identify::DEFAULT_MAX_COMPONENT
                } else {
                    batch.max_component
                };
                // Customers an operator split apart stay apart.
                let mut limits = identify::Limits {
                    max_component,
                    apart: Vec::new(),
                };
                let unlinks = sqlx::query("SELECT identity_a, identity_b FROM unlinks")
                    .fetch_all(&mut *tx)
                    .await?;
                for r in unlinks {
                    let mut pair = Vec::new();
                    for col in ["identity_a", "identity_b"] {
                        let key: String = r.try_get(col)?;
                        let Some((kind, value)) = key.split_once(':') else {
                            continue;
                        };
                        let c: Option<String> = sqlx::query_scalar(
                            "SELECT customer_id FROM identities WHERE kind = $1 AND value = $2",
                        )
                        .bind(kind)
                        .bind(value)
                        .fetch_optional(&mut *tx)
                        .await?;
                        pair.extend(c);
                    }
                    if let [a, b] = pair.as_slice()
                        && a != b
                    {
                        limits.apart.push((a.clone(), b.clone()));
                    }
                }
                let mut round = 0;
                let resolution = loop {
                    want.sort();
                    want.dedup();
                    want.retain(|c| !facts.contains_key(c));
                    for chunk in want.chunks(ROWS_PER_STATEMENT) {
                        let mut qb = in_list(
                            "SELECT c.id, c.display_name, EXISTS (SELECT 1 FROM identities i \
                             WHERE i.customer_id = c.id AND i.kind IN ('email', 'platform')) AS anchored, \
                             (SELECT COUNT(*) FROM identities i WHERE i.customer_id = c.id) AS n \
                             FROM customers c WHERE c.id IN",
                            chunk.iter().map(|c| c.as_str()),
                            "",
                        );
                        for r in qb.build().fetch_all(&mut *tx).await? {
                            facts.insert(
                                r.try_get("id")?,
                                identify::CustomerFacts {
                                    display_name: r.try_get("display_name")?,
                                    anchored: r.try_get::<bool, _>("anchored")?,
                                    identities: r.try_get::<i64, _>("n")? as usize,
                                },
                            );
                        }
                    }
                    let r = identify::resolve_with(&id_lists, &known, &facts, &limits);
                    round += 1;
                    want = r
                        .merges
                        .iter()
                        .flat_map(|(a, b)| [a.clone(), b.clone()])
                        .filter(|c| !facts.contains_key(c))
                        .collect();
                    if round == 2 || want.is_empty() {
                        break r;
                    }
                };
                let mut first_name: HashMap<&str, &str> = HashMap::new();
                for (i, a) in batch.interactions.iter().zip(&resolution.assignments) {
                    if let (Some(a), Some(n)) = (a, i.author_name.as_deref()) {
                        first_name.entry(a.as_str()).or_insert(n);
                    }
                }
                let new_customers: Vec<&String> = resolution.new_customers.keys().collect();
                for chunk in new_customers.chunks(ROWS_PER_STATEMENT) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO customers (id, display_name, created_at_ms) ",
                    );
                    qb.push_values(chunk, |mut b, cid| {
                        b.push_bind(cid.as_str())
                            .push_bind(first_name.get(cid.as_str()).copied())
                            .push_bind(now);
                    });
                    qb.push(" ON CONFLICT (id) DO NOTHING");
                    out.new_customers += qb.build().execute(&mut *tx).await?.rows_affected();
                }
                for (from, into) in &resolution.merges {
                    for sql in MERGE_CUSTOMER {
                        sqlx::query(sql).bind(into).bind(from).execute(&mut *tx).await?;
                    }
                    // The evidence: a record of this batch that carries one of `from`'s
                    // identities beside one that is not (the bridge), else any record of it.
                    let evidence = batch
                        .interactions
                        .iter()
                        .find_map(|i| {
                            let strong: Vec<&Identity> =
                                i.identities.iter().filter(|x| x.kind.is_strong()).collect();
                            let has_from = strong.iter().any(|x| known.get(*x) == Some(from));
                            let bridge = strong.iter().find(|x| known.get(**x) != Some(from));
                            match (has_from, bridge) {
                                (true, Some(b)) => Some((b.key(), i)),
                                _ => None,
                            }
                        })
                        .or_else(|| {
                            batch.interactions.iter().find_map(|i| {
                                i.identities
                                    .iter()
                                    .find(|x| known.get(*x) == Some(from))
                                    .map(|x| (x.key(), i))
                            })
                        });
                    sqlx::query(
                        "INSERT INTO merges (from_customer, into_customer, identity, source, \
                         external_id, kind, merged_at_ms) VALUES ($1, $2, $3, $4, $5, 'auto', $6)",
                    )
                    .bind(from)
                    .bind(into)
                    .bind(evidence.as_ref().map(|e| e.0.clone()))
                    .bind(evidence.as_ref().map(|e| e.1.source.clone()))
                    .bind(evidence.as_ref().map(|e| e.1.external_id.clone()))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    mark_stale(&mut *tx, &[from, into], now).await?;
                    out.merged_customers += 1;
                }
                let size_reason = format!(
                    "size cap: joining them would make one customer of more than {max_component} identities"
                );
                let held = [
                    (&resolution.kept_apart, "kept apart: an operator unlinked these customers"),
                    (&resolution.capped, size_reason.as_str()),
                    (
                        &resolution.suggestions,
                        "shared phone: the records carry different first names and their own emails or ids",
                    ),
                ];
                for (pairs, reason) in held {
                    for (x, y) in pairs {
                        out.link_suggestions += sqlx::query(
                            "INSERT INTO link_suggestions (identity_a, identity_b, reason, first_seen_ms) \
                             VALUES ($1, $2, $3, $4) ON CONFLICT (identity_a, identity_b) DO NOTHING",
                        )
                        .bind(x.key())
                        .bind(y.key())
                        .bind(reason)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    }
                }
                let new_identities: Vec<(&Identity, &String)> =
                    resolution.new_identities.iter().collect();
                for chunk in new_identities.chunks(ROWS_PER_STATEMENT) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO identities (kind, value, customer_id, first_seen_ms) ",
                    );
                    qb.push_values(chunk, |mut b, (identity, cid)| {
                        b.push_bind(identity.kind.as_str())
                            .push_bind(identity.value.as_str())
                            .push_bind(cid.as_str())
                            .push_bind(now);
                    });
                    qb.push(
                        " ON CONFLICT (kind, value) DO UPDATE SET customer_id = excluded.customer_id",
                    );
                    qb.build().execute(&mut *tx).await?;
                }

                // 2. Interactions: multi-row upserts. The last copy of a key in a batch wins.
                // What is new or changed is queued for the CRM sinks in this transaction.
                let crm_sinks = crm_sinks(&mut *tx).await?;
                let mut crm_keys: Vec<String> = Vec::new();
                let mut last_of: HashMap<(&str, &str), usize> = HashMap::new();
                for (k, i) in batch.interactions.iter().enumerate() {
                    last_of.insert((i.source.as_str(), i.external_id.as_str()), k);
                }
                let rows: Vec<(&Interaction, Option<&String>)> = batch
                    .interactions
                    .iter()
                    .zip(&resolution.assignments)
                    .enumerate()
                    .filter(|(k, (i, _))| {
                        last_of[&(i.source.as_str(), i.external_id.as_str())] == *k
                    })
                    .map(|(_, (i, a))| (i, a.as_ref()))
                    .collect();
                for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                        "INSERT INTO interactions ({INTERACTION_COLUMNS}) "
                    ));
                    qb.push_values(chunk, |mut b, (i, customer)| {
                        b.push_bind(i.source.as_str())
                            .push_bind(i.external_id.as_str())
                            .push_bind(i.kind.as_str())
                            .push_bind(i.parent_external_id.as_deref())
                            .push_bind(i.occurred_at_ms)
                            .push_bind(i.updated_at_ms)
                            .push_bind(i.location_id.as_deref())
                            .push_bind(customer.map(|c| c.as_str()))
                            .push_bind(i.author_name.as_deref())
                            .push_bind(strong_identity_keys(&i.identities))
                            .push_bind(i.text.as_deref())
                            .push_bind(i.language.as_deref())
                            .push_bind(i.language_confidence)
                            .push_bind(i.stars)
                            .push_bind(i.nps)
                            .push_bind(i.csat.as_ref().map(|c| c.value))
                            .push_bind(i.csat.as_ref().map(|c| c.scale.as_str()))
                            .push_bind(opt_bool(i.csat.as_ref().map(|c| c.satisfied)))
                            .push_bind(i.ces.as_ref().map(|c| c.value))
                            .push_bind(i.ces.as_ref().map(|c| c.scale.as_str()))
                            .push_bind(opt_bool(i.ces.as_ref().map(|c| c.agrees)))
                            .push_bind(i.status.as_deref())
                            .push_bind(i.sentiment.as_ref().map(|s| s.score))
                            .push_bind(i.sentiment.as_ref().map(|s| s.label.as_str()))
                            .push_bind(i.sentiment.as_ref().map(|s| s.confidence))
                            .push_bind(i.sentiment.as_ref().map(|s| s.model.as_str()))
                            .push_bind(aspects_json(&i.aspects))
                            .push_bind(i.url.as_deref())
                            .push_bind(i.raw.as_str())
                            .push_bind(i.content_hash.as_str())
                            .push_bind(1_i64)
                            .push_bind(now)
                            .push_bind(now);
                    });
                    qb.push(UPSERT_TAIL);
                    let changed = qb.build().fetch_all(&mut *tx).await?;
                    let mut inserted = 0u64;
                    for row in &changed {
                        if row.try_get::<i64, _>("revision")? == 1 {
                            inserted += 1;
                        }
                        if !crm_sinks.is_empty() {
                            crm_keys.push(row.try_get::<i64, _>("id")?.to_string());
                        }
                    }
                    out.inserted += inserted;
                    out.updated += changed.len() as u64 - inserted;
                    out.unchanged += (chunk.len() - changed.len()) as u64;
                }
                // Duplicates of a key inside the batch count as unchanged re-reads.
                out.unchanged += (batch.interactions.len() - rows.len()) as u64;
                crm_enqueue(&mut *tx, &crm_sinks, "interaction", &crm_keys, now).await?;
                // A customer who gained an email, or into whom another was merged, goes to
                // the CRMs again with their whole history: what was skipped for want of an
                // email now has one, and a merged person's notes move to one contact
                // (upserts by key: nothing is duplicated).
                if !crm_sinks.is_empty() {
                    let mut again: Vec<&String> = resolution
                        .new_identities
                        .iter()
                        .filter(|(id, c)| {
                            id.kind == IdentityKind::Email
                                && !resolution.new_customers.contains_key(*c)
                        })
                        .map(|(_, c)| c)
                        .chain(resolution.merges.iter().map(|(_, into)| into))
                        .collect();
                    again.sort();
                    again.dedup();
                    for c in again {
                        crm_requeue_customer(&mut *tx, c, now).await?;
                    }
                }

                // 3. Quarantine, replays, progress.
                for q in &batch.rejects {
                    let r = &q.error;
                    let raw_hash = hex::encode(
                        &<sha2::Sha256 as sha2::Digest>::digest(r.raw.as_bytes())[..16],
                    );
                    sqlx::query(
                        "INSERT INTO quarantine (source, preset, origin, line, field, expected, \
                         message, raw, raw_hash, options, status, created_at_ms) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'open', $11) \
                         ON CONFLICT (source, origin, line, raw_hash) DO UPDATE SET \
                         field = excluded.field, expected = excluded.expected, \
                         message = excluded.message, options = excluded.options",
                    )
                    .bind(&q.source)
                    .bind(&q.preset)
                    .bind(&r.origin)
                    .bind(r.line.map(|l| l as i64).unwrap_or(0))
                    .bind(&r.field)
                    .bind(&r.expected)
                    .bind(&r.message)
                    .bind(&r.raw)
                    .bind(raw_hash)
                    .bind(q.options.to_string())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    out.quarantined += 1;
                }
                for id in &batch.resolved_quarantine {
                    sqlx::query(
                        "UPDATE quarantine SET status = 'replayed', resolved_at_ms = $1 WHERE id = $2",
                    )
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
                if let Some(run) = batch.import_run {
                    sqlx::query(
                        "UPDATE import_runs SET read_count = read_count + $1, \
                         inserted = inserted + $2, updated = updated + $3, \
                         unchanged = unchanged + $4, quarantined = quarantined + $5 WHERE id = $6",
                    )
                    .bind(batch.read as i64)
                    .bind(out.inserted as i64)
                    .bind(out.updated as i64)
                    .bind(out.unchanged as i64)
                    .bind(out.quarantined as i64)
                    .bind(run)
                    .execute(&mut *tx)
                    .await?;
                }
                if let Some((source, cursor)) = &batch.cursor {
                    sqlx::query(
                        "INSERT INTO sync_cursors (source, cursor, updated_at_ms) VALUES ($1, $2, $3) \
                         ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor, \
                         updated_at_ms = excluded.updated_at_ms",
                    )
                    .bind(source)
                    .bind(cursor)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                self.after_write();
                Ok(out)
            }

            async fn start_import_run(
                &self,
                source: &str,
                preset: &str,
                origin: &str,
                file_hash: &str,
            ) -> Result<i64> {
                let mut tx = self.begin_write().await?;
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO import_runs (source, preset, origin, file_hash, started_at_ms) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(source)
                .bind(preset)
                .bind(origin)
                .bind(file_hash)
                .bind(now_ms())
                .fetch_one(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(id)
            }

            async fn import_statuses(&self, file_hash: &str) -> Result<Vec<String>> {
                Ok(sqlx::query_scalar("SELECT status FROM import_runs WHERE file_hash = $1 ORDER BY id")
                    .bind(file_hash)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn finish_import_run(
                &self,
                id: i64,
                status: &str,
                error: Option<&str>,
            ) -> Result<()> {
                // Bounded: an error names a request and a message, not a whole body.
                let error = error.map(|e| $crate::outputs::one_line(e, 2000));
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "UPDATE import_runs SET status = $1, finished_at_ms = $2, error = $3 WHERE id = $4",
                )
                    .bind(status)
                    .bind(now_ms())
                    .bind(error)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn recent_runs(&self, source: &str, limit: i64) -> Result<Vec<RunSummary>> {
                let rows = sqlx::query(
                    "SELECT id, status, started_at_ms, finished_at_ms, read_count, inserted, \
                     updated, quarantined, error FROM import_runs WHERE source = $1 \
                     ORDER BY id DESC LIMIT $2",
                )
                .bind(source)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(row_to_run).collect()
            }

            async fn cursor(&self, source: &str) -> Result<Option<String>> {
                Ok(
                    sqlx::query_scalar("SELECT cursor FROM sync_cursors WHERE source = $1")
                        .bind(source)
                        .fetch_optional(&self.pool)
                        .await?,
                )
            }

            async fn claim_job(&self, req: &ClaimRequest<'_>) -> Result<Claim> {
                let mut tx = self.begin_claim(req.job).await?;
                let lock = sqlx::query(
                    "SELECT instance, tick_ms, lease_until_ms FROM job_locks WHERE job = $1",
                )
                .bind(req.job)
                .fetch_one(&mut *tx)
                .await?;
                let holder: Option<String> = lock.try_get("instance")?;
                let held_tick: Option<i64> = lock.try_get("tick_ms")?;
                let lease_until: i64 = lock.try_get("lease_until_ms")?;
                let live = holder.is_some() && lease_until > req.now_ms;
                let run = sqlx::query(
                    "SELECT instance, state, attempts FROM job_runs WHERE job = $1 AND tick_ms = $2",
                )
                .bind(req.job)
                .bind(req.tick_ms)
                .fetch_optional(&mut *tx)
                .await?;
                let attempt = match run {
                    Some(r) => {
                        let state: String = r.try_get("state")?;
                        let instance: String = r.try_get("instance")?;
                        if state != "running" || (live && held_tick == Some(req.tick_ms)) {
                            return Ok(Claim::Taken { instance });
                        }
                        if live {
                            return Ok(Claim::Busy {
                                instance: holder.unwrap_or_default(),
                                tick_ms: held_tick.unwrap_or_default(),
                            });
                        }
                        // The holder of this very tick stopped renewing its lease: take it over.
                        let attempts: i64 = r.try_get("attempts")?;
                        sqlx::query(
                            "UPDATE job_runs SET instance = $3, attempts = $4, started_at_ms = $5 \
                             WHERE job = $1 AND tick_ms = $2",
                        )
                        .bind(req.job)
                        .bind(req.tick_ms)
                        .bind(req.instance)
                        .bind(attempts + 1)
                        .bind(req.now_ms)
                        .execute(&mut *tx)
                        .await?;
                        attempts + 1
                    }
                    None => {
                        if live {
                            return Ok(Claim::Busy {
                                instance: holder.unwrap_or_default(),
                                tick_ms: held_tick.unwrap_or_default(),
                            });
                        }
                        sqlx::query(
                            "INSERT INTO job_runs (job, tick_ms, instance, state, catch_up, attempts, started_at_ms) \
                             VALUES ($1, $2, $3, 'running', $4, 1, $5)",
                        )
                        .bind(req.job)
                        .bind(req.tick_ms)
                        .bind(req.instance)
                        .bind(i64::from(req.catch_up))
                        .bind(req.now_ms)
                        .execute(&mut *tx)
                        .await?;
                        1
                    }
                };
                // A previous holder whose lease ran out left its run unfinished: say so.
                if let (Some(h), Some(t)) = (&holder, held_tick) {
                    if t != req.tick_ms {
                        sqlx::query(
                            "UPDATE job_runs SET state = 'abandoned', finished_at_ms = $4, \
                             error = 'the instance stopped renewing its lease' \
                             WHERE job = $1 AND tick_ms = $2 AND instance = $3 AND state = 'running'",
                        )
                        .bind(req.job)
                        .bind(t)
                        .bind(h)
                        .bind(req.now_ms)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                sqlx::query(
                    "UPDATE job_locks SET instance = $2, tick_ms = $3, lease_until_ms = $4 WHERE job = $1",
                )
                .bind(req.job)
                .bind(req.instance)
                .bind(req.tick_ms)
                .bind(req.now_ms + req.lease_ms)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Claim::Run { attempt })
            }

            async fn renew_job_lease(
                &self,
                job: &str,
                tick_ms: i64,
                instance: &str,
                lease_until_ms: i64,
            ) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE job_locks SET lease_until_ms = $4 \
                     WHERE job = $1 AND tick_ms = $2 AND instance = $3",
                )
                .bind(job)
                .bind(tick_ms)
                .bind(instance)
                .bind(lease_until_ms)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn finish_job(
                &self,
                job: &str,
                tick_ms: i64,
                instance: &str,
                now_ms: i64,
                error: Option<&str>,
            ) -> Result<bool> {
                let mut tx = self.begin_claim(job).await?;
                let ran = sqlx::query(
                    "UPDATE job_runs SET state = $4, finished_at_ms = $5, error = $6 \
                     WHERE job = $1 AND tick_ms = $2 AND instance = $3 AND state = 'running'",
                )
                .bind(job)
                .bind(tick_ms)
                .bind(instance)
                .bind(if error.is_some() { "failed" } else { "done" })
                .bind(now_ms)
                .bind(error)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE job_locks SET instance = NULL, lease_until_ms = 0 \
                     WHERE job = $1 AND tick_ms = $2 AND instance = $3",
                )
                .bind(job)
                .bind(tick_ms)
                .bind(instance)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(ran.rows_affected() == 1)
            }

            async fn job_runs(&self, job: Option<&str>, limit: i64) -> Result<Vec<JobRun>> {
                let rows = sqlx::query(
                    "SELECT job, tick_ms, instance, state, catch_up, attempts, started_at_ms, \
                     finished_at_ms, error FROM job_runs WHERE ($1 IS NULL OR job = $1) \
                     ORDER BY tick_ms DESC, job LIMIT $2",
                )
                .bind(job)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(JobRun {
                            job: r.try_get("job")?,
                            tick_ms: r.try_get("tick_ms")?,
                            instance: r.try_get("instance")?,
                            state: r.try_get("state")?,
                            catch_up: r.try_get::<i64, _>("catch_up")? == 1,
                            attempts: r.try_get("attempts")?,
                            started_at_ms: r.try_get("started_at_ms")?,
                            finished_at_ms: r.try_get("finished_at_ms")?,
                            error: r.try_get("error")?,
                        })
                    })
                    .collect()
            }

            async fn customer_by_identity(&self, identity: &Identity) -> Result<Option<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT customer_id FROM identities WHERE kind = $1 AND value = $2",
                )
                .bind(identity.kind.as_str())
                .bind(&identity.value)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn customer(&self, id: &str) -> Result<Option<Customer>> {
                let Some(row) = sqlx::query(
                    "SELECT id, display_name, merged_into FROM customers WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                else {
                    return Ok(None);
                };
                if let Some(into) = row.try_get::<Option<String>, _>("merged_into")? {
                    return Box::pin(self.customer(&into)).await;
                }
                let rows = sqlx::query(
                    "SELECT kind, value FROM identities WHERE customer_id = $1 ORDER BY kind, value",
                )
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
                let mut identities = Vec::new();
                for r in rows {
                    let kind: String = r.try_get("kind")?;
                    if let Some(kind) = IdentityKind::parse(&kind) {
                        identities.push(Identity::new(kind, r.try_get::<String, _>("value")?));
                    }
                }
                Ok(Some(Customer {
                    id: row.try_get("id")?,
                    display_name: row.try_get("display_name")?,
                    identities,
                }))
            }

            async fn timeline(&self, customer_id: &str) -> Result<Vec<StoredInteraction>> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{SELECT_INTERACTION} WHERE customer_id = $1 ORDER BY occurred_at_ms, id"
                )))
                .bind(customer_id)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(row_to_interaction).collect()
            }

            async fn busiest_customers(&self, limit: i64) -> Result<Vec<CustomerActivity>> {
                let rows = sqlx::query(
                    "SELECT c.id, c.display_name, COUNT(*) AS n, COUNT(DISTINCT i.source) AS sources \
                     FROM customers c JOIN interactions i ON i.customer_id = c.id \
                     WHERE c.merged_into IS NULL \
                     GROUP BY c.id, c.display_name ORDER BY sources DESC, n DESC, c.id LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(CustomerActivity {
                            customer_id: r.try_get("id")?,
                            display_name: r.try_get("display_name")?,
                            interactions: r.try_get("n")?,
                            sources: r.try_get("sources")?,
                        })
                    })
                    .collect()
            }

            async fn location_summaries(&self) -> Result<Vec<LocationSummary>> {
                let rows = sqlx::query(LOCATION_SUMMARY).fetch_all(&self.pool).await?;
                let mut out = Vec::new();
                for r in rows {
                    out.push(LocationSummary {
                        location_id: r.try_get("location_id")?,
                        interactions: r.try_get::<Option<i64>, _>("n")?.unwrap_or(0),
                        reviews: r.try_get::<Option<i64>, _>("reviews")?.unwrap_or(0),
                        tickets: r.try_get::<Option<i64>, _>("tickets")?.unwrap_or(0),
                        survey_responses: r.try_get::<Option<i64>, _>("surveys")?.unwrap_or(0),
                        replies: r.try_get::<Option<i64>, _>("replies")?.unwrap_or(0),
                        customers: r.try_get("customers")?,
                        stars_n: r.try_get("stars_n")?,
                        stars_mean: r.try_get("stars_mean")?,
                        nps_n: r.try_get("nps_n")?,
                        promoters: r.try_get::<Option<i64>, _>("promoters")?.unwrap_or(0),
                        detractors: r.try_get::<Option<i64>, _>("detractors")?.unwrap_or(0),
                        csat_n: r.try_get("csat_n")?,
                        csat_satisfied: r.try_get::<Option<i64>, _>("csat_sat")?.unwrap_or(0),
                        ces_n: r.try_get("ces_n")?,
                        ces_agree: r.try_get::<Option<i64>, _>("ces_agree")?.unwrap_or(0),
                        sentiment_n: r.try_get::<Option<i64>, _>("sent_n")?.unwrap_or(0),
                        sentiment_mean: r.try_get("sent_mean")?,
                        negative: r.try_get::<Option<i64>, _>("negative")?.unwrap_or(0),
                        first_ms: r.try_get("first_ms")?,
                        last_ms: r.try_get("last_ms")?,
                        languages: vec![],
                    });
                }
                let langs = sqlx::query(
                    "SELECT location_id, language, COUNT(*) AS n FROM interactions \
                     WHERE language IS NOT NULL AND kind <> 'reply' \
                     GROUP BY location_id, language ORDER BY n DESC, language",
                )
                .fetch_all(&self.pool)
                .await?;
                for r in langs {
                    let loc: Option<String> = r.try_get("location_id")?;
                    if let Some(s) = out.iter_mut().find(|s| s.location_id == loc) {
                        s.languages.push((r.try_get("language")?, r.try_get("n")?));
                    }
                }
                Ok(out)
            }

            async fn quarantine(&self, status: Option<&str>) -> Result<Vec<QuarantineItem>> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{SELECT_QUARANTINE} WHERE ($1 IS NULL OR status = $1) ORDER BY id"
                )))
                .bind(status)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(row_to_quarantine).collect()
            }

            async fn set_quarantine_status(&self, ids: &[i64], status: &str) -> Result<u64> {
                let mut tx = self.begin_write().await?;
                let mut n = 0;
                for id in ids {
                    n += sqlx::query(
                        "UPDATE quarantine SET status = $1, resolved_at_ms = $2 WHERE id = $3",
                    )
                    .bind(status)
                    .bind(now_ms())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
                tx.commit().await?;
                Ok(n)
            }

            async fn suggest_by_name(&self, window_ms: i64) -> Result<NamePassOutcome> {
                use crate::pipeline::weak;
                use std::collections::{BTreeMap, HashSet};
                const PAGE: i64 = 20_000;
                let now = now_ms();
                let mut out = NamePassOutcome::default();
                let mut tx = self.begin_write().await?;
                // 1. Key the names written since the last pass ('' when not a full name).
                let mark: i64 =
                    sqlx::query_scalar("SELECT COALESCE(MAX(interaction_id), 0) FROM name_keys")
                        .fetch_one(&mut *tx)
                        .await?;
                let mut touched: Vec<String> = Vec::new();
                let mut last = mark;
                loop {
                    let rows = sqlx::query(
                        "SELECT id, author_name, occurred_at_ms FROM interactions WHERE id > $1 \
                         AND author_name IS NOT NULL AND customer_id IS NOT NULL ORDER BY id LIMIT $2",
                    )
                    .bind(last)
                    .bind(PAGE)
                    .fetch_all(&mut *tx)
                    .await?;
                    let mut keyed: Vec<(i64, String, i64)> = Vec::with_capacity(rows.len());
                    for r in &rows {
                        let name: String = r.try_get("author_name")?;
                        let key = weak::name_key(&name).unwrap_or_default();
                        if !key.is_empty() {
                            touched.push(key.clone());
                        }
                        keyed.push((r.try_get("id")?, key, r.try_get("occurred_at_ms")?));
                    }
                    let Some(&(max_id, _, _)) = keyed.last() else {
                        break;
                    };
                    last = max_id;
                    out.read += keyed.len() as u64;
                    for chunk in keyed.chunks(ROWS_PER_STATEMENT) {
                        let mut qb = sqlx::QueryBuilder::<$db>::new(
                            "INSERT INTO name_keys (interaction_id, name_key, occurred_at_ms) ",
                        );
                        qb.push_values(chunk, |mut b, (id, key, at)| {
                            b.push_bind(*id).push_bind(key.as_str()).push_bind(*at);
                        });
                        qb.push(" ON CONFLICT (interaction_id) DO NOTHING");
                        qb.build().execute(&mut *tx).await?;
                    }
                }
                touched.sort();
                touched.dedup();
                // 2. How many customers carry each new name, in one grouped query per chunk;
                // a name on one customer suggests nothing, a common one nothing either.
                let mut candidates: Vec<(String, usize)> = Vec::new();
                for chunk in touched.chunks(ROWS_PER_STATEMENT) {
                    let mut qb = in_list(
                        "SELECT n.name_key, COUNT(DISTINCT i.customer_id) AS c FROM name_keys n \
                         JOIN interactions i ON i.id = n.interaction_id WHERE n.name_key IN",
                        chunk.iter().map(|k| k.as_str()),
                        " GROUP BY n.name_key",
                    );
                    for r in qb.build().fetch_all(&mut *tx).await? {
                        let c = r.try_get::<i64, _>("c")? as usize;
                        if (2..=weak::MAX_CUSTOMERS_PER_NAME).contains(&c) {
                            candidates.push((r.try_get("name_key")?, c));
                        }
                    }
                }
                if candidates.is_empty() {
                    tx.commit().await?;
                    return Ok(out);
                }
                // 3. Pairs an operator dismissed or unlinked, and the open display-name
                // suggestions, by the customers they join now.
                let mut excluded: HashSet<(String, String)> = HashSet::new();
                let mut open: HashMap<(String, String), (String, String)> = HashMap::new();
                let pairs = sqlx::query(
                    "SELECT identity_a, identity_b, status FROM link_suggestions \
                     WHERE status <> 'open' OR reason = 'display_name' \
                     UNION ALL SELECT identity_a, identity_b, 'unlinked' FROM unlinks",
                )
                .fetch_all(&mut *tx)
                .await?;
                for r in pairs {
                    let (a, b, status): (String, String, String) =
                        (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
                    let ca = customer_of_key(&mut *tx, &a).await?;
                    let cb = customer_of_key(&mut *tx, &b).await?;
                    let (Some(ca), Some(cb)) = (ca, cb) else { continue };
                    let pair = if ca <= cb { (ca, cb) } else { (cb, ca) };
                    if status == "open" {
                        open.insert(pair, (a, b));
                    } else {
                        excluded.insert(pair);
                    }
                }
                // 4. The sightings of the candidate names, scored pair by pair.
                let counts: HashMap<String, usize> = candidates.iter().cloned().collect();
                let mut by_key: BTreeMap<String, Vec<weak::Sighting>> = BTreeMap::new();
                for chunk in candidates.chunks(ROWS_PER_STATEMENT) {
                    let mut qb = in_list(
                        "SELECT n.interaction_id, n.name_key, i.customer_id, i.identities, i.source, \
                         i.external_id, i.kind, i.author_name, i.location_id, i.occurred_at_ms \
                         FROM name_keys n JOIN interactions i ON i.id = n.interaction_id \
                         WHERE i.customer_id IS NOT NULL AND n.name_key IN",
                        chunk.iter().map(|(k, _)| k.as_str()),
                        " ORDER BY n.interaction_id",
                    );
                    for r in qb.build().fetch_all(&mut *tx).await? {
                        let ids: String = r.try_get("identities")?;
                        let Some(identity) = serde_json::from_str::<Vec<String>>(&ids)
                            .ok()
                            .and_then(|v| v.into_iter().next())
                        else {
                            continue;
                        };
                        by_key.entry(r.try_get("name_key")?).or_default().push(weak::Sighting {
                            interaction_id: r.try_get("interaction_id")?,
                            customer_id: r.try_get("customer_id")?,
                            identity,
                            source: r.try_get("source")?,
                            external_id: r.try_get("external_id")?,
                            kind: r.try_get("kind")?,
                            name: r.try_get::<Option<String>, _>("author_name")?.unwrap_or_default(),
                            location_id: r.try_get("location_id")?,
                            occurred_at_ms: r.try_get("occurred_at_ms")?,
                        });
                    }
                }
                for (key, sightings) in &by_key {
                    for sug in weak::suggest(sightings, counts[key], window_ms, mark, &excluded) {
                        let pair = (sug.a.customer_id.clone(), sug.b.customer_id.clone());
                        // One row per pair of customers: an open one is re-scored.
                        let (ka, kb) = match open.get(&pair) {
                            Some(k) => k.clone(),
                            None if sug.a.identity <= sug.b.identity => {
                                (sug.a.identity.clone(), sug.b.identity.clone())
                            }
                            None => (sug.b.identity.clone(), sug.a.identity.clone()),
                        };
                        let evidence = serde_json::json!({
                            "name_key": key,
                            "customers_with_name": sug.customers_with_name,
                            "gap_ms": sug.gap_ms,
                            "window_ms": window_ms,
                            "a": sug.a,
                            "b": sug.b,
                        });
                        out.suggestions += sqlx::query(
                            "INSERT INTO link_suggestions (identity_a, identity_b, reason, first_seen_ms, score, evidence) \
                             VALUES ($1, $2, 'display_name', $3, $4, $5) \
                             ON CONFLICT (identity_a, identity_b) DO UPDATE SET score = excluded.score, \
                             evidence = excluded.evidence WHERE link_suggestions.status = 'open' \
                             AND link_suggestions.reason = 'display_name' \
                             AND (link_suggestions.score IS NULL OR link_suggestions.score < excluded.score)",
                        )
                        .bind(&ka)
                        .bind(&kb)
                        .bind(now)
                        .bind(sug.score)
                        .bind(evidence.to_string())
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                        open.insert(pair, (ka, kb));
                    }
                }
                tx.commit().await?;
                Ok(out)
            }

            async fn dismiss_suggestion(&self, a: &Identity, b: &Identity) -> Result<Option<u64>> {
                let mut tx = self.begin_write().await?;
                let (Some(ca), Some(cb)) = (
                    customer_of_key(&mut *tx, &a.key()).await?,
                    customer_of_key(&mut *tx, &b.key()).await?,
                ) else {
                    return Ok(None);
                };
                let mut n = 0;
                let rows = sqlx::query(
                    "SELECT identity_a, identity_b FROM link_suggestions WHERE status = 'open'",
                )
                .fetch_all(&mut *tx)
                .await?;
                for r in rows {
                    let (x, y): (String, String) = (r.try_get(0)?, r.try_get(1)?);
                    let cx = customer_of_key(&mut *tx, &x).await?;
                    let cy = customer_of_key(&mut *tx, &y).await?;
                    let hit = (cx.as_ref() == Some(&ca) && cy.as_ref() == Some(&cb))
                        || (cx.as_ref() == Some(&cb) && cy.as_ref() == Some(&ca));
                    if hit {
                        n += sqlx::query(
                            "UPDATE link_suggestions SET status = 'dismissed' \
                             WHERE identity_a = $1 AND identity_b = $2",
                        )
                        .bind(&x)
                        .bind(&y)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    }
                }
                // The pair itself, so that no later pass suggests it again.
                let (ka, kb) = if a.key() <= b.key() { (a.key(), b.key()) } else { (b.key(), a.key()) };
                sqlx::query(
                    "INSERT INTO link_suggestions (identity_a, identity_b, reason, first_seen_ms, status) \
                     VALUES ($1, $2, 'dismissed by an operator', $3, 'dismissed') \
                     ON CONFLICT (identity_a, identity_b) DO UPDATE SET status = 'dismissed'",
                )
                .bind(&ka)
                .bind(&kb)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Some(n))
            }

            async fn blocked_identities(&self) -> Result<Vec<BlockedIdentity>> {
                let rows = sqlx::query(
                    "SELECT identity, reason, customers, records, blocked_at_ms, status \
                     FROM blocked_identities ORDER BY blocked_at_ms DESC, identity",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(BlockedIdentity {
                            identity: r.try_get("identity")?,
                            reason: r.try_get("reason")?,
                            customers: r.try_get("customers")?,
                            records: r.try_get("records")?,
                            blocked_at_ms: r.try_get("blocked_at_ms")?,
                            status: r.try_get("status")?,
                        })
                    })
                    .collect()
            }

            async fn unblock_identity(&self, identity: &str) -> Result<bool> {
                let mut tx = self.begin_write().await?;
                let n = sqlx::query(
                    "UPDATE blocked_identities SET status = 'unblocked' \
                     WHERE identity = $1 AND status = 'blocked'",
                )
                .bind(identity)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(n > 0)
            }

            async fn link_suggestions(&self) -> Result<Vec<LinkSuggestion>> {
                let rows = sqlx::query(
                    "SELECT identity_a, identity_b, reason, first_seen_ms, score, evidence \
                     FROM link_suggestions WHERE status = 'open' \
                     ORDER BY CASE WHEN score IS NULL THEN 1 ELSE 0 END, score DESC, \
                     first_seen_ms, identity_a, identity_b",
                )
                .fetch_all(&self.pool)
                .await?;
                // Each side's customer by (kind, value), which the identities key indexes.
                let mut owner: HashMap<String, Option<String>> = HashMap::new();
                let mut out = Vec::new();
                for r in rows {
                    let a: String = r.try_get("identity_a")?;
                    let b: String = r.try_get("identity_b")?;
                    let (Some(shared), Some(other)) = (Identity::from_key(&a), Identity::from_key(&b)) else {
                        continue;
                    };
                    for id in [&shared, &other] {
                        if !owner.contains_key(&id.key()) {
                            let c: Option<String> = sqlx::query_scalar(
                                "SELECT customer_id FROM identities WHERE kind = $1 AND value = $2",
                            )
                            .bind(id.kind.as_str())
                            .bind(&id.value)
                            .fetch_optional(&self.pool)
                            .await?;
                            owner.insert(id.key(), c);
                        }
                    }
                    out.push(LinkSuggestion {
                        shared_customer: owner[&shared.key()].clone(),
                        other_customer: owner[&other.key()].clone(),
                        shared,
                        other,
                        reason: r.try_get("reason")?,
                        first_seen_ms: r.try_get("first_seen_ms")?,
                        score: r.try_get("score")?,
                        evidence: r
                            .try_get::<Option<String>, _>("evidence")?
                            .and_then(|e| serde_json::from_str(&e).ok()),
                    });
                }
                Ok(out)
            }

            async fn rated_texts(&self, limit: i64) -> Result<Vec<RatedText>> {
                let rows = sqlx::query(
                    "SELECT id, text, language, stars, nps, csat_satisfied FROM interactions \
                     WHERE kind <> 'reply' AND text IS NOT NULL \
                     AND (stars IS NOT NULL OR nps IS NOT NULL OR csat_satisfied IS NOT NULL) \
                     ORDER BY occurred_at_ms DESC, id DESC LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(RatedText {
                            id: r.try_get("id")?,
                            text: r.try_get("text")?,
                            language: r.try_get("language")?,
                            stars: r.try_get("stars")?,
                            nps: r.try_get("nps")?,
                            csat_satisfied: r
                                .try_get::<Option<i64>, _>("csat_satisfied")?
                                .map(|v| v == 1),
                        })
                    })
                    .collect()
            }

            async fn save_sentiment_model(&self, m: &SentimentModelRecord) -> Result<i64> {
                let mut tx = self.begin_write().await?;
                let r = &m.report;
                let row = sqlx::query(
                    "INSERT INTO sentiment_models (version, base_version, trained_at_ms, \
                     examples, trained_on, held_out, base_accuracy, base_macro_f1, \
                     adapted_accuracy, adapted_macro_f1, adopted, weights) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
                )
                .bind(&m.version)
                .bind(&m.base_version)
                .bind(m.trained_at_ms)
                .bind(r.examples as i64)
                .bind(r.trained_on as i64)
                .bind(r.held_out as i64)
                .bind(r.base_accuracy)
                .bind(r.base_macro_f1)
                .bind(r.adapted_accuracy)
                .bind(r.adapted_macro_f1)
                .bind(i64::from(r.adopted))
                .bind(&m.weights)
                .fetch_one(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(row.try_get("id")?)
            }

            async fn sentiment_models(&self, limit: i64) -> Result<Vec<SentimentModelRecord>> {
                let sql = format!("{SELECT_MODEL}, NULL AS weights FROM sentiment_models ORDER BY id DESC LIMIT $1");
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(model_from_row).collect()
            }

            async fn adopted_sentiment_model(&self) -> Result<Option<SentimentModelRecord>> {
                let sql = format!("{SELECT_MODEL}, weights FROM sentiment_models WHERE adopted = 1 ORDER BY id DESC LIMIT 1");
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(model_from_row).transpose()
            }

            async fn texts_to_rescore(
                &self,
                version: &str,
                after_id: i64,
                limit: i64,
            ) -> Result<Vec<(i64, String, Option<String>)>> {
                let rows = sqlx::query(
                    "SELECT id, text, language FROM interactions WHERE id > $1 \
                     AND text IS NOT NULL AND (sentiment_model IS NULL OR sentiment_model <> $2) \
                     ORDER BY id LIMIT $3",
                )
                .bind(after_id)
                .bind(version)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get("id")?, r.try_get("text")?, r.try_get("language")?)))
                    .collect()
            }

            async fn rescore(&self, scores: &[Rescore]) -> Result<u64> {
                let mut tx = self.begin_write().await?;
                let mut n = 0;
                for s in scores {
                    n += sqlx::query(
                        "UPDATE interactions SET sentiment = $1, sentiment_label = $2, \
                         sentiment_confidence = $3, sentiment_model = $4, aspects = $5 WHERE id = $6",
                    )
                    .bind(s.sentiment.as_ref().map(|x| x.score))
                    .bind(s.sentiment.as_ref().map(|x| x.label.as_str()))
                    .bind(s.sentiment.as_ref().map(|x| x.confidence))
                    .bind(s.sentiment.as_ref().map(|x| x.model.as_str()))
                    .bind(aspects_json(&s.aspects))
                    .bind(s.id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
                tx.commit().await?;
                Ok(n)
            }

            async fn counts(&self) -> Result<Counts> {
                let row = sqlx::query(
                    "SELECT (SELECT COUNT(*) FROM interactions) AS i, \
                     (SELECT COUNT(*) FROM customers WHERE merged_into IS NULL) AS c, \
                     (SELECT COUNT(*) FROM identities) AS d, \
                     (SELECT COUNT(*) FROM quarantine WHERE status = 'open') AS q",
                )
                .fetch_one(&self.pool)
                .await?;
                Ok(Counts {
                    interactions: row.try_get("i")?,
                    customers: row.try_get("c")?,
                    identities: row.try_get("d")?,
                    quarantine_open: row.try_get("q")?,
                })
            }

            async fn analysis_progress(&self) -> Result<i64> {
                let row = sqlx::query("SELECT last_id FROM analysis_progress WHERE name = 'changes'")
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(match row {
                    Some(r) => r.try_get("last_id")?,
                    None => 0,
                })
            }

            async fn analysis_backlog(&self) -> Result<i64> {
                Ok(sqlx::query_scalar(
                    "SELECT COUNT(*) FROM interactions WHERE id > \
                     COALESCE((SELECT last_id FROM analysis_progress WHERE name = 'changes'), 0)",
                )
                .fetch_one(&self.pool)
                .await?)
            }

            async fn interactions_after(&self, after_id: i64, limit: i64) -> Result<Vec<StoredInteraction>> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{SELECT_INTERACTION} WHERE id > $1 ORDER BY id LIMIT $2"
                )))
                .bind(after_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(row_to_interaction).collect()
            }

            async fn entity_interactions(
                &self,
                entity: &str,
                id: &str,
                from_ms: i64,
                to_ms: i64,
            ) -> Result<Vec<StoredInteraction>> {
                let column = match entity {
                    "location" => "location_id",
                    "customer" => "customer_id",
                    other => return Err(StoreError::Corrupt(format!("unknown entity {other:?}"))),
                };
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{SELECT_INTERACTION} WHERE {column} = $1 AND occurred_at_ms >= $2 \
                     AND occurred_at_ms < $3 ORDER BY occurred_at_ms, id"
                )))
                .bind(id)
                .bind(from_ms)
                .bind(to_ms)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(row_to_interaction).collect()
            }

            async fn series_states(&self, series: &[String]) -> Result<Vec<SeriesState>> {
                let mut out = Vec::new();
                for chunk in series.chunks(500) {
                    let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
                    let sql = format!(
                        "SELECT series, state, last_ms, observations FROM series_state WHERE series IN ({})",
                        marks.join(", ")
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for s in chunk {
                        q = q.bind(s);
                    }
                    for r in q.fetch_all(&self.pool).await? {
                        out.push(SeriesState {
                            series: r.try_get("series")?,
                            state: r.try_get("state")?,
                            last_ms: r.try_get("last_ms")?,
                            observations: r.try_get("observations")?,
                        });
                    }
                }
                Ok(out)
            }

            async fn save_analysis(&self, w: AnalysisWrite) -> Result<bool> {
                let now = now_ms();
                // Writers hold one lock (BEGIN IMMEDIATE / the advisory lock), so the mark
                // read here cannot move before this transaction commits.
                let mut tx = self.begin_write().await?;
                let mark: Option<i64> =
                    sqlx::query_scalar("SELECT last_id FROM analysis_progress WHERE name = 'changes'")
                        .fetch_optional(&mut *tx)
                        .await?;
                if mark.unwrap_or(0) != w.from_id {
                    tx.rollback().await?;
                    return Ok(false);
                }
                let crm_sinks = crm_sinks(&mut *tx).await?;
                let mut crm_keys: Vec<String> = Vec::new();
                for (customer, marked_ms) in &w.cleared {
                    // Their changes go; a CRM that holds one is told through the outbox.
                    if !crm_sinks.is_empty() {
                        let old = sqlx::query(
                            "SELECT series, idx FROM changes WHERE entity = 'customer' \
                             AND entity_id = $1 AND status IN ('confirmed', 'incident')",
                        )
                        .bind(customer)
                        .fetch_all(&mut *tx)
                        .await?;
                        for r in old {
                            let series: String = r.try_get("series")?;
                            let idx: i64 = r.try_get("idx")?;
                            crm_keys.push(format!("{series}#{idx}"));
                        }
                    }
                    sqlx::query("DELETE FROM changes WHERE entity = 'customer' AND entity_id = $1")
                        .bind(customer)
                        .execute(&mut *tx)
                        .await?;
                    let prefix = format!("customer:{customer}:");
                    sqlx::query(
                        "DELETE FROM series_state WHERE substr(series, 1, length($1)) = $1",
                    )
                    .bind(&prefix)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "DELETE FROM stale_customers WHERE customer_id = $1 AND marked_ms <= $2",
                    )
                    .bind(customer)
                    .bind(marked_ms)
                    .execute(&mut *tx)
                    .await?;
                }
                for s in &w.rebuilt {
                    // A rebuilt series may lose a change a CRM holds: each goes through the
                    // outbox again, which takes back what no longer exists.
                    if !crm_sinks.is_empty() {
                        let old: Vec<i64> = sqlx::query_scalar(
                            "SELECT idx FROM changes WHERE series = $1 AND status IN ('confirmed', 'incident')",
                        )
                        .bind(s)
                        .fetch_all(&mut *tx)
                        .await?;
                        crm_keys.extend(old.into_iter().map(|i| format!("{s}#{i}")));
                    }
                    sqlx::query("DELETE FROM changes WHERE series = $1")
                        .bind(s)
                        .execute(&mut *tx)
                        .await?;
                }
                for s in &w.states {
                    sqlx::query(
                        "INSERT INTO series_state (series, state, last_ms, observations, updated_at_ms) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (series) DO UPDATE SET \
                         state = excluded.state, last_ms = excluded.last_ms, \
                         observations = excluded.observations, updated_at_ms = excluded.updated_at_ms",
                    )
                    .bind(&s.series)
                    .bind(&s.state)
                    .bind(s.last_ms)
                    .bind(s.observations)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                let insert = |c: &ChangeRecord| {
                    sqlx::query(
                        "INSERT INTO changes (series, entity, entity_id, channel, signal, idx, \
                         occurred_at_ms, direction, before_value, after_value, confidence, status, \
                         n_before, n_after, evidence, detected_at_ms) VALUES ($1, $2, $3, $4, $5, \
                         $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
                         ON CONFLICT (series, idx, status) DO NOTHING",
                    )
                    .bind(c.series.clone())
                    .bind(c.entity.clone())
                    .bind(c.entity_id.clone())
                    .bind(c.channel.clone())
                    .bind(c.signal.clone())
                    .bind(c.index)
                    .bind(c.occurred_at_ms)
                    .bind(c.direction.clone())
                    .bind(c.before)
                    .bind(c.after)
                    .bind(c.confidence)
                    .bind(c.status.clone())
                    .bind(c.n_before)
                    .bind(c.n_after)
                    .bind(c.evidence.to_string())
                    .bind(c.detected_at_ms)
                };
                for (series, current) in &w.watching {
                    sqlx::query("DELETE FROM changes WHERE series = $1 AND status = 'watch'")
                        .bind(series)
                        .execute(&mut *tx)
                        .await?;
                    if let Some(c) = current {
                        insert(c).execute(&mut *tx).await?;
                    }
                }
                for c in &w.changes {
                    let added = insert(c).execute(&mut *tx).await?.rows_affected();
                    if added == 1 && !crm_sinks.is_empty() && c.status != "watch" {
                        crm_keys.push(format!("{}#{}", c.series, c.index));
                    }
                }
                crm_enqueue(&mut *tx, &crm_sinks, "change", &crm_keys, now).await?;
                sqlx::query(
                    "INSERT INTO analysis_progress (name, last_id, updated_at_ms) VALUES ('changes', $1, $2) \
                     ON CONFLICT (name) DO UPDATE SET last_id = excluded.last_id, updated_at_ms = excluded.updated_at_ms",
                )
                .bind(w.last_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn stale_customers(&self, limit: i64) -> Result<Vec<(String, i64)>> {
                let rows = sqlx::query(
                    "SELECT customer_id, marked_ms FROM stale_customers ORDER BY customer_id LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get("customer_id")?, r.try_get("marked_ms")?)))
                    .collect()
            }

            async fn reset_analysis(&self) -> Result<()> {
                let mut tx = self.begin_write().await?;
                for table in ANALYSIS_TABLES {
                    sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn changes(&self, f: &ChangeFilter) -> Result<Vec<StoredChange>> {
                let mut sql = format!("{SELECT_CHANGE} WHERE 1 = 1");
                let mut n = 0;
                let mut mark = || {
                    n += 1;
                    format!("${n}")
                };
                if f.entity.is_some() {
                    let (a, b) = (mark(), mark());
                    sql.push_str(&format!(" AND entity = {a} AND entity_id = {b}"));
                }
                if f.since_ms.is_some() {
                    sql.push_str(&format!(" AND occurred_at_ms >= {}", mark()));
                }
                sql.push_str(" ORDER BY occurred_at_ms DESC, id DESC");
                if f.limit.is_some() {
                    sql.push_str(&format!(" LIMIT {}", mark()));
                }
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                if let Some((e, id)) = &f.entity {
                    q = q.bind(e.clone()).bind(id.clone());
                }
                if let Some(s) = f.since_ms {
                    q = q.bind(s);
                }
                if let Some(l) = f.limit {
                    q = q.bind(l);
                }
                let rows = q.fetch_all(&self.pool).await?;
                rows.iter().map(row_to_change).collect()
            }

            async fn erase(&self, e: &Erasure) -> Result<ErasureOutcome> {
                let now = now_ms();
                let mut out = ErasureOutcome::default();
                let mut tx = self.begin_write().await?;
                // The customer and every customer merged into it, however deep.
                let mut ids = vec![e.customer_id.clone()];
                let mut frontier = ids.clone();
                while let Some(id) = frontier.pop() {
                    let rows = sqlx::query("SELECT id FROM customers WHERE merged_into = $1")
                        .bind(&id)
                        .fetch_all(&mut *tx)
                        .await?;
                    for r in rows {
                        let child: String = r.try_get("id")?;
                        if !ids.contains(&child) {
                            ids.push(child.clone());
                            frontier.push(child);
                        }
                    }
                }
                let mut keys: Vec<String> = Vec::new();
                for id in &ids {
                    for r in sqlx::query("SELECT kind, value FROM identities WHERE customer_id = $1")
                        .bind(id)
                        .fetch_all(&mut *tx)
                        .await?
                    {
                        let kind: String = r.try_get("kind")?;
                        let value: String = r.try_get("value")?;
                        keys.push(format!("{kind}:{value}"));
                    }
                    // What the CRM sinks hold of this person is taken back: their queued
                    // upserts go, and every record a sink received becomes a delete (a
                    // contact only if Tideline created it).
                    let gone: Vec<i64> = sqlx::query_scalar(
                        "SELECT id FROM interactions WHERE customer_id = $1 UNION \
                         SELECT c.id FROM interactions c JOIN interactions p ON p.source = c.source \
                         AND p.external_id = c.parent_external_id WHERE p.customer_id = $1",
                    )
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
                    for chunk in gone.chunks(ROWS_PER_STATEMENT) {
                        let mut qb = in_list(
                            "DELETE FROM crm_outbox WHERE entity = 'interaction' AND op = 'upsert' \
                             AND entity_key IN",
                            chunk.iter().map(|g| g.to_string()),
                            "",
                        );
                        qb.build().execute(&mut *tx).await?;
                    }
                    sqlx::query(
                        "INSERT INTO crm_outbox (sink, entity, entity_key, op, remote_id, crm_key, \
                         next_attempt_ms, enqueued_ms) SELECT sink, entity, crm_key, 'delete', remote_id, \
                         crm_key, $2, $2 FROM crm_links WHERE customer_id = $1 \
                         AND (entity <> 'customer' OR created = 1) \
                         ON CONFLICT (sink, entity, entity_key, op) DO NOTHING",
                    )
                    .bind(id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    // The links go now: the delete items carry what the sinks need (their
                    // record ids; a webhook, the customer id it knows them by) until
                    // delivered, and nothing of the person is left after that.
                    sqlx::query("DELETE FROM crm_links WHERE customer_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    // Replies and comments that answer their interactions go with them.
                    out.interactions += sqlx::query(
                        "DELETE FROM interactions WHERE parent_external_id IS NOT NULL AND EXISTS ( \
                         SELECT 1 FROM interactions p WHERE p.customer_id = $1 \
                         AND p.source = interactions.source AND p.external_id = interactions.parent_external_id)",
                    )
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    out.interactions += sqlx::query("DELETE FROM interactions WHERE customer_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    sqlx::query("DELETE FROM merges WHERE from_customer = $1 OR into_customer = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    out.identities += sqlx::query("DELETE FROM identities WHERE customer_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                for k in &keys {
                    sqlx::query("DELETE FROM unlinks WHERE identity_a = $1 OR identity_b = $1")
                        .bind(k)
                        .execute(&mut *tx)
                        .await?;
                    out.suggestions += sqlx::query(
                        "DELETE FROM link_suggestions WHERE identity_a = $1 OR identity_b = $1",
                    )
                    .bind(k)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    sqlx::query("DELETE FROM blocked_identities WHERE identity = $1")
                        .bind(k)
                        .execute(&mut *tx)
                        .await?;
                }
                // The name keys of the interactions that went.
                sqlx::query(
                    "DELETE FROM name_keys WHERE NOT EXISTS \
                     (SELECT 1 FROM interactions i WHERE i.id = name_keys.interaction_id)",
                )
                .execute(&mut *tx)
                .await?;
                for needle in &e.quarantine_needles {
                    out.quarantined += sqlx::query(
                        "DELETE FROM quarantine WHERE LOWER(raw) LIKE $1 OR LOWER(message) LIKE $1",
                    )
                    .bind(format!("%{}%", needle.replace('%', "").replace('_', "")))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
                // Merged rows point at the survivor: delete from the leaves up.
                for id in ids.iter().rev() {
                    out.customers += sqlx::query("DELETE FROM customers WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                for table in ANALYSIS_TABLES {
                    sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                        .execute(&mut *tx)
                        .await?;
                }
                for h in &e.tombstones {
                    sqlx::query(
                        "INSERT INTO tombstones (hash, erased_at_ms) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING",
                    )
                    .bind(h)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query(
                    "INSERT INTO erasures (subject, identities, interactions, erased_at_ms) VALUES ($1, $2, $3, $4)",
                )
                .bind(&e.subject)
                .bind(out.identities as i64)
                .bind(out.interactions as i64)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(out)
            }

            async fn erasable_items(&self, customer_id: &str) -> Result<Vec<(String, String)>> {
                let rows = sqlx::query(
                    "SELECT source, external_id FROM interactions WHERE customer_id = $1 \
                     UNION SELECT c.source, c.external_id FROM interactions c JOIN interactions p \
                     ON p.source = c.source AND p.external_id = c.parent_external_id \
                     WHERE p.customer_id = $1",
                )
                .bind(customer_id)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get("source")?, r.try_get("external_id")?)))
                    .collect()
            }

            async fn tombstones(&self) -> Result<std::collections::HashSet<String>> {
                let rows = sqlx::query("SELECT hash FROM tombstones")
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(|r| Ok(r.try_get("hash")?)).collect()
            }

            async fn merges_of(&self, customer_id: &str) -> Result<Vec<MergeRecord>> {
                let rows = sqlx::query(
                    "SELECT from_customer, into_customer, identity, source, external_id, kind, merged_at_ms \
                     FROM merges WHERE into_customer = $1 OR from_customer = $1 ORDER BY merged_at_ms, id",
                )
                .bind(customer_id)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(MergeRecord {
                            from_customer: r.try_get("from_customer")?,
                            into_customer: r.try_get("into_customer")?,
                            identity: r.try_get("identity")?,
                            source: r.try_get("source")?,
                            external_id: r.try_get("external_id")?,
                            kind: r.try_get("kind")?,
                            merged_at_ms: r.try_get("merged_at_ms")?,
                        })
                    })
                    .collect()
            }

            async fn link(&self, a: &Identity, b: &Identity) -> Result<Option<(String, String)>> {
                let now = now_ms();
                let mut tx = self.begin_write().await?;
                let mut ids = Vec::new();
                for x in [a, b] {
                    let c: Option<String> = sqlx::query_scalar(
                        "SELECT customer_id FROM identities WHERE kind = $1 AND value = $2",
                    )
                    .bind(x.kind.as_str())
                    .bind(&x.value)
                    .fetch_optional(&mut *tx)
                    .await?;
                    match c {
                        Some(c) => ids.push(c),
                        None => return Ok(None),
                    }
                }
                let (mut into, mut from) = (ids[0].clone(), ids[1].clone());
                if from == into {
                    tx.rollback().await?;
                    return Ok(Some((into.clone(), into)));
                }
                // The smaller id survives, as for automatic merges.
                if from < into {
                    std::mem::swap(&mut from, &mut into);
                }
                for sql in MERGE_CUSTOMER {
                    sqlx::query(sql).bind(&into).bind(&from).execute(&mut *tx).await?;
                }
                sqlx::query(
                    "INSERT INTO merges (from_customer, into_customer, identity, kind, merged_at_ms) \
                     VALUES ($1, $2, $3, 'manual', $4)",
                )
                .bind(&from)
                .bind(&into)
                .bind(format!("{} <-> {}", a.key(), b.key()))
                .bind(now)
                .execute(&mut *tx)
                .await?;
                mark_stale(&mut *tx, &[&from, &into], now).await?;
                if !crm_sinks(&mut *tx).await?.is_empty() {
                    crm_requeue_customer(&mut *tx, &into, now).await?;
                }
                for (x, y) in [(a, b), (b, a)] {
                    sqlx::query(
                        "UPDATE link_suggestions SET status = 'linked' WHERE identity_a = $1 AND identity_b = $2",
                    )
                    .bind(x.key())
                    .bind(y.key())
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(Some((from, into)))
            }

            async fn unlink(&self, a: &Identity, b: &Identity) -> Result<Option<Vec<String>>> {
                let now = now_ms();
                let mut tx = self.begin_write().await?;
                let mut owners = Vec::new();
                for x in [a, b] {
                    let c: Option<String> = sqlx::query_scalar(
                        "SELECT customer_id FROM identities WHERE kind = $1 AND value = $2",
                    )
                    .bind(x.kind.as_str())
                    .bind(&x.value)
                    .fetch_optional(&mut *tx)
                    .await?;
                    owners.push(c);
                }
                let customer = match (&owners[0], &owners[1]) {
                    (Some(x), Some(y)) if x == y => x.clone(),
                    _ => return Ok(None),
                };
                let (ka, kb) = {
                    let (x, y) = (a.key(), b.key());
                    if x <= y { (x, y) } else { (y, x) }
                };
                sqlx::query(
                    "INSERT INTO unlinks (identity_a, identity_b, unlinked_at_ms) VALUES ($1, $2, $3) \
                     ON CONFLICT (identity_a, identity_b) DO NOTHING",
                )
                .bind(&ka)
                .bind(&kb)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                // The evidence: the customer's identities, what each interaction carried, the
                // manual links; every recorded unlink is a cut.
                let mut nodes: Vec<String> = Vec::new();
                for r in sqlx::query("SELECT kind, value FROM identities WHERE customer_id = $1 ORDER BY kind, value")
                    .bind(&customer)
                    .fetch_all(&mut *tx)
                    .await?
                {
                    let (k, v): (String, String) = (r.try_get("kind")?, r.try_get("value")?);
                    nodes.push(format!("{k}:{v}"));
                }
                let index: HashMap<&str, usize> =
                    nodes.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
                let items = sqlx::query(
                    "SELECT id, identities FROM interactions WHERE customer_id = $1 ORDER BY occurred_at_ms, id",
                )
                .bind(&customer)
                .fetch_all(&mut *tx)
                .await?;
                let mut edges: Vec<Vec<usize>> = Vec::new();
                let mut item_nodes: Vec<(i64, Option<usize>)> = Vec::new();
                for r in &items {
                    let keys: Vec<String> =
                        serde_json::from_str(&r.try_get::<String, _>("identities")?).unwrap_or_default();
                    let ns: Vec<usize> = keys.iter().filter_map(|k| index.get(k.as_str()).copied()).collect();
                    item_nodes.push((r.try_get("id")?, ns.first().copied()));
                    edges.push(ns);
                }
                for r in sqlx::query("SELECT identity FROM merges WHERE kind = 'manual' AND into_customer = $1")
                    .bind(&customer)
                    .fetch_all(&mut *tx)
                    .await?
                {
                    let text: Option<String> = r.try_get("identity")?;
                    if let Some((x, y)) = text.as_deref().and_then(|t| t.split_once(" <-> "))
                        && let (Some(&i), Some(&j)) = (index.get(x), index.get(y))
                    {
                        edges.push(vec![i, j]);
                    }
                }
                let mut cuts: Vec<(usize, usize)> = Vec::new();
                for r in sqlx::query("SELECT identity_a, identity_b FROM unlinks").fetch_all(&mut *tx).await? {
                    let (x, y): (String, String) = (r.try_get("identity_a")?, r.try_get("identity_b")?);
                    if let (Some(&i), Some(&j)) = (index.get(x.as_str()), index.get(y.as_str())) {
                        cuts.push((i, j));
                    }
                }
                let mut parent: Vec<usize> = (0..nodes.len()).collect();
                fn root(p: &mut [usize], mut x: usize) -> usize {
                    while p[x] != x {
                        p[x] = p[p[x]];
                        x = p[x];
                    }
                    x
                }
                for e in &edges {
                    for w in e.windows(2) {
                        let (ra, rb) = (root(&mut parent, w[0]), root(&mut parent, w[1]));
                        if ra == rb {
                            continue;
                        }
                        let joins_a_cut = cuts.iter().any(|&(i, j)| {
                            let (ri, rj) = (root(&mut parent, i), root(&mut parent, j));
                            (ri == ra && rj == rb) || (ri == rb && rj == ra)
                        });
                        if !joins_a_cut {
                            parent[ra] = rb;
                        }
                    }
                }
                // Which side keeps the id: the one holding the identity that created it.
                let keeper = nodes
                    .iter()
                    .position(|n| {
                        n.split_once(':')
                            .and_then(|(k, v)| IdentityKind::parse(k).map(|k| Identity::new(k, v)))
                            .is_some_and(|id| identify::customer_id_for(&id) == customer)
                    })
                    .map(|i| root(&mut parent, i))
                    .unwrap_or_else(|| root(&mut parent, index[a.key().as_str()]));
                let mut id_of_root: HashMap<usize, String> = HashMap::new();
                id_of_root.insert(keeper, customer.clone());
                let mut result = vec![customer.clone()];
                for i in 0..nodes.len() {
                    let r = root(&mut parent, i);
                    if id_of_root.contains_key(&r) {
                        continue;
                    }
                    // The side's smallest identity names it (nodes are sorted).
                    let (k, v) = nodes[i].split_once(':').unwrap_or(("", ""));
                    let Some(kind) = IdentityKind::parse(k) else { continue };
                    let new_id = identify::customer_id_for(&Identity::new(kind, v));
                    sqlx::query(
                        "INSERT INTO customers (id, display_name, created_at_ms) VALUES ($1, NULL, $2) \
                         ON CONFLICT (id) DO UPDATE SET merged_into = NULL",
                    )
                    .bind(&new_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "INSERT INTO merges (from_customer, into_customer, identity, kind, merged_at_ms) \
                         VALUES ($1, $2, $3, 'split', $4)",
                    )
                    .bind(&customer)
                    .bind(&new_id)
                    .bind(format!("{ka} -/- {kb}"))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    id_of_root.insert(r, new_id.clone());
                    result.push(new_id);
                }
                for (i, n) in nodes.iter().enumerate() {
                    let r = root(&mut parent, i);
                    let owner = &id_of_root[&r];
                    if *owner == customer {
                        continue;
                    }
                    let (k, v) = n.split_once(':').unwrap_or(("", ""));
                    sqlx::query("UPDATE identities SET customer_id = $1 WHERE kind = $2 AND value = $3")
                        .bind(owner)
                        .bind(k)
                        .bind(v)
                        .execute(&mut *tx)
                        .await?;
                }
                for (id, first) in &item_nodes {
                    let Some(first) = first else { continue };
                    let owner = &id_of_root[&root(&mut parent, *first)];
                    if *owner != customer {
                        sqlx::query("UPDATE interactions SET customer_id = $1 WHERE id = $2")
                            .bind(owner)
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                // Only the split customers' series start over; locations did not change.
                mark_stale(&mut *tx, &result.iter().collect::<Vec<_>>(), now).await?;
                tx.commit().await?;
                Ok(Some(result))
            }

            async fn fingerprint(&self) -> Result<Vec<(String, String, String, Option<String>)>> {
                let rows = sqlx::query(
                    "SELECT source, external_id, content_hash, customer_id FROM interactions \
                     ORDER BY source, external_id",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok((
                            r.try_get("source")?,
                            r.try_get("external_id")?,
                            r.try_get("content_hash")?,
                            r.try_get("customer_id")?,
                        ))
                    })
                    .collect()
            }

            // --- HTTP API reads ---
            async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn interactions_page(&self, f: &InteractionFilter) -> Result<Vec<StoredInteraction>> {
                let mut w = Conditions::default();
                w.and("id > ?", Arg::Int(f.after_id));
                // A customer's few rows are the cheapest way in. Without statistics SQLite
                // would rather seek the (location_id, id) or (source, id) index and walk
                // the whole location; `|| ''` keeps both planners off those two.
                let (source, location) = if f.customer.is_some() {
                    ("source || '' = ?", "location_id || '' = ?")
                } else {
                    ("source = ?", "location_id = ?")
                };
                w.and_text(source, &f.source);
                w.and_text(location, &f.location);
                w.and_text("language = ?", &f.language);
                w.and_text("kind = ?", &f.kind);
                w.and_text("customer_id = ?", &f.customer);
                w.and_text("sentiment_label = ?", &f.sentiment_label);
                if let Some(v) = f.sentiment_min {
                    w.and("sentiment >= ?", Arg::Real(v));
                }
                if let Some(v) = f.sentiment_max {
                    w.and("sentiment <= ?", Arg::Real(v));
                }
                w.and_period(f.from_ms, f.to_ms);
                let limit = w.push(Arg::Int(f.limit));
                let sql = format!("{SELECT_INTERACTION}{} ORDER BY id LIMIT {limit}", w.sql);
                let rows = bind_args(sqlx::query(sqlx::AssertSqlSafe(sql)), w.args)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(row_to_interaction).collect()
            }

            async fn customers_page(&self, f: &CustomerFilter) -> Result<Vec<CustomerActivity>> {
                let mut w = Conditions::default();
                w.sql.push_str(" WHERE c.merged_into IS NULL");
                w.and_text("c.id > ?", &f.after);
                // The subqueries go in by the customer's index; `|| ''` keeps the planner
                // from scanning the whole source or location once per customer instead.
                w.and_text(
                    "EXISTS (SELECT 1 FROM interactions s WHERE s.customer_id = c.id AND s.source || '' = ?)",
                    &f.source,
                );
                w.and_text(
                    "EXISTS (SELECT 1 FROM interactions l WHERE l.customer_id = c.id AND l.location_id || '' = ?)",
                    &f.location,
                );
                let limit = w.push(Arg::Int(f.limit));
                let sql = format!(
                    "SELECT c.id, c.display_name, \
                     (SELECT COUNT(*) FROM interactions i WHERE i.customer_id = c.id) AS n, \
                     (SELECT COUNT(DISTINCT i.source) FROM interactions i WHERE i.customer_id = c.id) AS sources \
                     FROM customers c{} ORDER BY c.id LIMIT {limit}",
                    w.sql
                );
                let rows = bind_args(sqlx::query(sqlx::AssertSqlSafe(sql)), w.args)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok(CustomerActivity {
                            customer_id: r.try_get("id")?,
                            display_name: r.try_get("display_name")?,
                            interactions: r.try_get("n")?,
                            sources: r.try_get("sources")?,
                        })
                    })
                    .collect()
            }

            async fn changes_page(&self, f: &ChangePageFilter) -> Result<Vec<StoredChange>> {
                let mut w = Conditions::default();
                if let Some(id) = f.before_id {
                    w.and("id < ?", Arg::Int(id));
                }
                w.and_text("entity = 'location' AND entity_id = ?", &f.location);
                w.and_text("entity = 'customer' AND entity_id = ?", &f.customer);
                w.and_text("signal = ?", &f.signal);
                w.and_text("status = ?", &f.status);
                w.and_period(f.from_ms, f.to_ms);
                let limit = w.push(Arg::Int(f.limit));
                let sql = format!("{SELECT_CHANGE}{} ORDER BY id DESC LIMIT {limit}", w.sql);
                let rows = bind_args(sqlx::query(sqlx::AssertSqlSafe(sql)), w.args)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(row_to_change).collect()
            }

            async fn change(&self, id: i64) -> Result<Option<StoredChange>> {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT_CHANGE} WHERE id = $1")))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(row_to_change).transpose()
            }

            async fn quarantine_page(&self, f: &QuarantineFilter) -> Result<Vec<QuarantineItem>> {
                let mut w = Conditions::default();
                w.and("id > ?", Arg::Int(f.after_id));
                w.and_text("status = ?", &f.status);
                w.and_text("source = ?", &f.source);
                let limit = w.push(Arg::Int(f.limit));
                let sql = format!("{SELECT_QUARANTINE}{} ORDER BY id LIMIT {limit}", w.sql);
                let rows = bind_args(sqlx::query(sqlx::AssertSqlSafe(sql)), w.args)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(row_to_quarantine).collect()
            }

            async fn sources_status(&self) -> Result<Vec<SourceStatus>> {
                let mut by: std::collections::BTreeMap<String, SourceStatus> = Default::default();
                fn entry(
                    by: &mut std::collections::BTreeMap<String, SourceStatus>,
                    source: String,
                ) -> &mut SourceStatus {
                    by.entry(source.clone()).or_insert_with(|| SourceStatus {
                        source,
                        ..Default::default()
                    })
                }
                for r in sqlx::query(
                    "SELECT source, COUNT(*) AS runs, \
                     SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed, \
                     MAX(CASE WHEN status = 'done' THEN finished_at_ms END) AS last_success, \
                     MAX(id) AS last_id FROM import_runs GROUP BY source",
                )
                .fetch_all(&self.pool)
                .await?
                {
                    let s = entry(&mut by, r.try_get("source")?);
                    s.runs = r.try_get("runs")?;
                    s.failed_runs = r.try_get::<Option<i64>, _>("failed")?.unwrap_or(0);
                    s.last_success_ms = r.try_get("last_success")?;
                    let last: i64 = r.try_get("last_id")?;
                    let run = sqlx::query(
                        "SELECT id, status, started_at_ms, finished_at_ms, read_count, inserted, \
                         updated, quarantined, error FROM import_runs WHERE id = $1",
                    )
                    .bind(last)
                    .fetch_one(&self.pool)
                    .await?;
                    s.last_run = Some(row_to_run(&run)?);
                }
                for r in sqlx::query("SELECT source, updated_at_ms FROM sync_cursors")
                    .fetch_all(&self.pool)
                    .await?
                {
                    entry(&mut by, r.try_get("source")?).cursor_updated_ms =
                        Some(r.try_get("updated_at_ms")?);
                }
                for r in sqlx::query("SELECT source, COUNT(*) AS n FROM interactions GROUP BY source")
                    .fetch_all(&self.pool)
                    .await?
                {
                    entry(&mut by, r.try_get("source")?).interactions = r.try_get("n")?;
                }
                for r in sqlx::query(
                    "SELECT source, COUNT(*) AS n FROM quarantine WHERE status = 'open' GROUP BY source",
                )
                .fetch_all(&self.pool)
                .await?
                {
                    entry(&mut by, r.try_get("source")?).quarantine_open = r.try_get("n")?;
                }
                Ok(by.into_values().collect())
            }

            async fn claim_digest(&self, c: &DigestClaim<'_>) -> Result<Option<i64>> {
                // One statement: PostgreSQL makes a concurrent insert of the same key wait
                // for the first and then re-checks the WHERE on the committed row; SQLite
                // has one writer. Either way one claim wins.
                let attempt: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO digests_sent (recipient, cadence, period_start, period_end, state, \
                     instance, attempts, claimed_at_ms, lease_until_ms) \
                     VALUES ($1, $2, $3, $4, 'sending', $5, 1, $6, $7) \
                     ON CONFLICT (recipient, cadence, period_start) DO UPDATE SET \
                     state = 'sending', instance = excluded.instance, \
                     attempts = digests_sent.attempts + 1, claimed_at_ms = excluded.claimed_at_ms, \
                     lease_until_ms = excluded.lease_until_ms \
                     WHERE digests_sent.state = 'failed' \
                     OR (digests_sent.state = 'sending' AND digests_sent.lease_until_ms <= $6) \
                     RETURNING attempts",
                )
                .bind(c.recipient)
                .bind(c.cadence)
                .bind(c.period_start)
                .bind(c.period_end)
                .bind(c.instance)
                .bind(c.now_ms)
                .bind(c.now_ms + c.lease_ms)
                .fetch_optional(&self.pool)
                .await?;
                Ok(attempt)
            }

            async fn finish_digest(&self, d: &DigestDone<'_>) -> Result<bool> {
                let (state, message_id, error) = match d.outcome {
                    Ok(id) => ("sent", Some(id), None),
                    Err(e) => ("failed", None, Some(e)),
                };
                let done = sqlx::query(
                    "UPDATE digests_sent SET state = $5, sent_at_ms = $6, message_id = $7, error = $8 \
                     WHERE recipient = $1 AND cadence = $2 AND period_start = $3 AND instance = $4 \
                     AND state = 'sending'",
                )
                .bind(d.recipient)
                .bind(d.cadence)
                .bind(d.period_start)
                .bind(d.instance)
                .bind(state)
                .bind(d.outcome.is_ok().then_some(d.now_ms))
                .bind(message_id)
                .bind(error)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn digest_sends(
                &self,
                recipient: Option<&str>,
                limit: i64,
            ) -> Result<Vec<DigestSend>> {
                let rows = sqlx::query(
                    "SELECT recipient, cadence, period_start, period_end, state, instance, attempts, \
                     claimed_at_ms, sent_at_ms, message_id, error FROM digests_sent \
                     WHERE ($1 IS NULL OR recipient = $1) \
                     ORDER BY period_start DESC, recipient, cadence LIMIT $2",
                )
                .bind(recipient)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(DigestSend {
                            recipient: r.try_get("recipient")?,
                            cadence: r.try_get("cadence")?,
                            period_start: r.try_get("period_start")?,
                            period_end: r.try_get("period_end")?,
                            state: r.try_get("state")?,
                            instance: r.try_get("instance")?,
                            attempts: r.try_get("attempts")?,
                            claimed_at_ms: r.try_get("claimed_at_ms")?,
                            sent_at_ms: r.try_get("sent_at_ms")?,
                            message_id: r.try_get("message_id")?,
                            error: r.try_get("error")?,
                        })
                    })
                    .collect()
            }

            async fn crm_register(&self, sink: &str, kind: &str) -> Result<Option<u64>> {
                let now = now_ms();
                let mut tx = self.begin_write().await?;
                let added = sqlx::query(
                    "INSERT INTO crm_sinks (name, kind, registered_at_ms) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(sink)
                .bind(kind)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if added == 0 {
                    tx.rollback().await?;
                    return Ok(None);
                }
                // The backfill: the whole history, in the order it was stored.
                let mut queued = sqlx::query(
                    "INSERT INTO crm_outbox (sink, entity, entity_key, op, next_attempt_ms, enqueued_ms) \
                     SELECT $1, 'interaction', CAST(id AS TEXT), 'upsert', $2, $2 FROM interactions \
                     WHERE true ORDER BY id ON CONFLICT (sink, entity, entity_key, op) DO NOTHING",
                )
                .bind(sink)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                queued += sqlx::query(
                    "INSERT INTO crm_outbox (sink, entity, entity_key, op, next_attempt_ms, enqueued_ms) \
                     SELECT $1, 'change', series || '#' || CAST(idx AS TEXT), 'upsert', $2, $2 \
                     FROM changes WHERE status IN ('confirmed', 'incident') ORDER BY id \
                     ON CONFLICT (sink, entity, entity_key, op) DO NOTHING",
                )
                .bind(sink)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(Some(queued))
            }

            async fn crm_lease(
                &self,
                sink: &str,
                limit: i64,
                lease_ms: Option<i64>,
            ) -> Result<Vec<CrmItem>> {
                let now = now_ms();
                let mut tx = self.begin_write().await?;
                let rows = sqlx::query(
                    "SELECT id, generation, entity, entity_key, op, remote_id, crm_key, attempts, \
                     uncertain, leased_until_ms FROM crm_outbox WHERE sink = $1 AND parked_at_ms IS NULL \
                     AND next_attempt_ms <= $2 AND (leased_until_ms IS NULL OR leased_until_ms <= $2) \
                     ORDER BY id LIMIT $3",
                )
                .bind(sink)
                .bind(now)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
                struct Raw {
                    id: i64,
                    generation: i64,
                    entity: CrmEntity,
                    entity_key: String,
                    delete: bool,
                    remote_id: Option<String>,
                    crm_key: Option<String>,
                    attempts: i64,
                    uncertain: bool,
                }
                let mut raws = Vec::with_capacity(rows.len());
                for r in &rows {
                    let entity: String = r.try_get("entity")?;
                    let leased: Option<i64> = r.try_get("leased_until_ms")?;
                    raws.push(Raw {
                        id: r.try_get("id")?,
                        generation: r.try_get("generation")?,
                        entity: CrmEntity::parse(&entity).ok_or_else(|| {
                            StoreError::Corrupt(format!("crm_outbox: unknown entity `{entity}`"))
                        })?,
                        entity_key: r.try_get("entity_key")?,
                        delete: r.try_get::<String, _>("op")? == "delete",
                        remote_id: r.try_get("remote_id")?,
                        crm_key: r.try_get("crm_key")?,
                        attempts: r.try_get("attempts")?,
                        // A lease that ran out: its worker died or hung mid-delivery.
                        uncertain: r.try_get::<i64, _>("uncertain")? == 1 || leased.is_some(),
                    });
                }
                if let Some(lease) = lease_ms {
                    for chunk in raws.chunks(ROWS_PER_STATEMENT) {
                        let mut qb = sqlx::QueryBuilder::<$db>::new(
                            "UPDATE crm_outbox SET uncertain = CASE WHEN leased_until_ms IS NULL \
                             THEN uncertain ELSE 1 END, leased_until_ms = ",
                        );
                        qb.push_bind(now + lease);
                        qb.push(" WHERE id IN (");
                        let mut list = qb.separated(", ");
                        for r in chunk {
                            list.push_bind(r.id);
                        }
                        qb.push(")");
                        qb.build().execute(&mut *tx).await?;
                    }
                }
                // The data as it is now.
                let ids: Vec<i64> = raws
                    .iter()
                    .filter(|r| r.entity == CrmEntity::Interaction && !r.delete)
                    .filter_map(|r| r.entity_key.parse().ok())
                    .collect();
                let mut interactions: HashMap<i64, StoredInteraction> = HashMap::new();
                for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                    let mut qb = in_list(
                        format!("{SELECT_INTERACTION} WHERE id IN"),
                        chunk.iter().copied(),
                        "",
                    );
                    for row in qb.build().fetch_all(&mut *tx).await? {
                        let i = row_to_interaction(&row)?;
                        interactions.insert(i.id, i);
                    }
                }
                let mut changes: HashMap<String, StoredChange> = HashMap::new();
                for r in raws.iter().filter(|r| r.entity == CrmEntity::Change && !r.delete) {
                    let Some((series, idx)) = r.entity_key.rsplit_once('#') else {
                        continue;
                    };
                    let Ok(idx) = idx.parse::<i64>() else {
                        continue;
                    };
                    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "{SELECT_CHANGE} WHERE series = $1 AND idx = $2 \
                         AND status IN ('confirmed', 'incident') ORDER BY status LIMIT 1"
                    )))
                    .bind(series)
                    .bind(idx)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some(row) = row {
                        changes.insert(r.entity_key.clone(), row_to_change(&row)?);
                    }
                }
                let mut wanted: Vec<&str> = interactions
                    .values()
                    .filter_map(|i| i.customer_id.as_deref())
                    .chain(
                        changes
                            .values()
                            .filter(|c| c.change.entity == "customer")
                            .map(|c| c.change.entity_id.as_str()),
                    )
                    .collect();
                wanted.sort_unstable();
                wanted.dedup();
                let mut people: HashMap<String, CrmPerson> = HashMap::new();
                for chunk in wanted.chunks(ROWS_PER_STATEMENT) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT c.id, c.display_name, (SELECT MIN(i.value) FROM identities i \
                         WHERE i.customer_id = c.id AND i.kind = 'email') AS email, \
                         (SELECT l.remote_id FROM crm_links l WHERE l.sink = ",
                    );
                    qb.push_bind(sink);
                    qb.push(
                        " AND l.entity = 'customer' AND l.crm_key = c.id) AS contact_id \
                         FROM customers c WHERE c.id IN (",
                    );
                    let mut list = qb.separated(", ");
                    for c in chunk {
                        list.push_bind(*c);
                    }
                    qb.push(")");
                    for row in qb.build().fetch_all(&mut *tx).await? {
                        let id: String = row.try_get("id")?;
                        people.insert(
                            id.clone(),
                            CrmPerson {
                                customer_id: id,
                                display_name: row.try_get("display_name")?,
                                email: row.try_get("email")?,
                                contact_id: row.try_get("contact_id")?,
                            },
                        );
                    }
                }
                let mut items = Vec::with_capacity(raws.len());
                for r in raws {
                    let (crm_key, payload) = if r.delete {
                        (r.crm_key.clone().unwrap_or(r.entity_key.clone()), CrmPayload::Delete)
                    } else {
                        match r.entity {
                            CrmEntity::Interaction => {
                                match r.entity_key.parse::<i64>().ok().and_then(|id| interactions.remove(&id)) {
                                    Some(i) => {
                                        let person = i
                                            .customer_id
                                            .as_ref()
                                            .and_then(|c| people.get(c))
                                            .cloned();
                                        (
                                            interaction_key(&i.interaction.source, &i.interaction.external_id),
                                            CrmPayload::Interaction {
                                                interaction: Box::new(i),
                                                person,
                                            },
                                        )
                                    }
                                    None => (r.entity_key.clone(), CrmPayload::Gone),
                                }
                            }
                            CrmEntity::Change => {
                                let (series, idx) = r
                                    .entity_key
                                    .rsplit_once('#')
                                    .map(|(s, i)| (s, i.parse::<i64>().unwrap_or(-1)))
                                    .unwrap_or((r.entity_key.as_str(), -1));
                                let key = change_key(series, idx);
                                match changes.remove(&r.entity_key) {
                                    Some(c) => {
                                        let person = (c.change.entity == "customer")
                                            .then(|| people.get(&c.change.entity_id).cloned())
                                            .flatten();
                                        (
                                            key,
                                            CrmPayload::Change {
                                                change: Box::new(c),
                                                person,
                                            },
                                        )
                                    }
                                    None => {
                                        // A rebuilt series no longer has it: take it back
                                        // if the sink received it.
                                        let remote: Option<Option<String>> = sqlx::query_scalar(
                                            "SELECT remote_id FROM crm_links WHERE sink = $1 \
                                             AND entity = 'change' AND crm_key = $2",
                                        )
                                        .bind(sink)
                                        .bind(&key)
                                        .fetch_optional(&mut *tx)
                                        .await?;
                                        match remote {
                                            Some(remote_id) => {
                                                items.push(CrmItem {
                                                    id: r.id,
                                                    generation: r.generation,
                                                    entity: r.entity,
                                                    crm_key: key,
                                                    remote_id,
                                                    attempts: r.attempts,
                                                    uncertain: r.uncertain,
                                                    payload: CrmPayload::Delete,
                                                });
                                                continue;
                                            }
                                            None => (key, CrmPayload::Gone),
                                        }
                                    }
                                }
                            }
                            CrmEntity::Customer => (r.entity_key.clone(), CrmPayload::Gone),
                        }
                    };
                    items.push(CrmItem {
                        id: r.id,
                        generation: r.generation,
                        entity: r.entity,
                        crm_key,
                        remote_id: r.remote_id,
                        attempts: r.attempts,
                        uncertain: r.uncertain,
                        payload,
                    });
                }
                if lease_ms.is_some() {
                    tx.commit().await?;
                } else {
                    tx.rollback().await?;
                }
                Ok(items)
            }

            async fn crm_finish(
                &self,
                sink: &str,
                outcomes: &[CrmOutcome],
                max_attempts: i64,
            ) -> Result<()> {
                let now = now_ms();
                let mut tx = self.begin_write().await?;
                let (mut delivered, mut skipped) = (0i64, 0i64);
                for o in outcomes {
                    let row = sqlx::query(
                        "SELECT entity, entity_key, op FROM crm_outbox WHERE id = $1",
                    )
                    .bind(o.id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(row) = row else { continue };
                    let entity: String = row.try_get("entity")?;
                    let entity_key: String = row.try_get("entity_key")?;
                    let op: String = row.try_get("op")?;
                    match &o.result {
                        CrmResult::Delivered { links } => {
                            delivered += 1;
                            // An interaction erased while its delivery was on the way: take
                            // it back instead of remembering it.
                            let erased = entity == "interaction"
                                && op == "upsert"
                                && match entity_key.parse::<i64>() {
                                    Ok(id) => sqlx::query_scalar::<_, i64>(
                                        "SELECT id FROM interactions WHERE id = $1",
                                    )
                                    .bind(id)
                                    .fetch_optional(&mut *tx)
                                    .await?
                                    .is_none(),
                                    Err(_) => false,
                                };
                            for l in links {
                                if op == "delete" {
                                    sqlx::query(
                                        "DELETE FROM crm_links WHERE sink = $1 AND entity = $2 AND crm_key = $3",
                                    )
                                    .bind(sink)
                                    .bind(l.entity.as_str())
                                    .bind(&l.crm_key)
                                    .execute(&mut *tx)
                                    .await?;
                                } else if erased && l.entity == CrmEntity::Interaction {
                                    sqlx::query(
                                        "INSERT INTO crm_outbox (sink, entity, entity_key, op, remote_id, \
                                         crm_key, next_attempt_ms, enqueued_ms) \
                                         VALUES ($1, $2, $3, 'delete', $4, $3, $5, $5) \
                                         ON CONFLICT (sink, entity, entity_key, op) DO NOTHING",
                                    )
                                    .bind(sink)
                                    .bind(l.entity.as_str())
                                    .bind(&l.crm_key)
                                    .bind(&l.remote_id)
                                    .bind(now)
                                    .execute(&mut *tx)
                                    .await?;
                                } else {
                                    crm_link(&mut *tx, sink, l, now).await?;
                                }
                            }
                            crm_done(&mut *tx, o).await?;
                        }
                        CrmResult::Skipped { .. } => {
                            skipped += 1;
                            crm_done(&mut *tx, o).await?;
                        }
                        CrmResult::Retry {
                            error,
                            at_ms,
                            counts,
                            uncertain,
                        } => {
                            let add = i64::from(*counts);
                            sqlx::query(
                                "UPDATE crm_outbox SET attempts = attempts + $2, next_attempt_ms = $3, \
                                 leased_until_ms = NULL, last_error = $4, \
                                 uncertain = CASE WHEN $5 = 1 THEN 1 ELSE uncertain END, \
                                 parked_at_ms = CASE WHEN attempts + $2 >= $6 THEN $7 ELSE NULL END \
                                 WHERE id = $1",
                            )
                            .bind(o.id)
                            .bind(add)
                            .bind(*at_ms)
                            .bind(crm_error_line(error))
                            .bind(i64::from(*uncertain))
                            .bind(max_attempts)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                        }
                        CrmResult::Park { error } => {
                            sqlx::query(
                                "UPDATE crm_outbox SET attempts = attempts + 1, leased_until_ms = NULL, \
                                 last_error = $2, parked_at_ms = $3 WHERE id = $1",
                            )
                            .bind(o.id)
                            .bind(crm_error_line(error))
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                        }
                    }
                }
                sqlx::query(
                    "UPDATE crm_sinks SET delivered = delivered + $2, skipped = skipped + $3 WHERE name = $1",
                )
                .bind(sink)
                .bind(delivered)
                .bind(skipped)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn crm_remember(&self, sink: &str, links: &[CrmLink]) -> Result<()> {
                let now = now_ms();
                let mut tx = self.begin_write().await?;
                for l in links {
                    crm_link(&mut *tx, sink, l, now).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn crm_run_done(&self, sink: &str, error: Option<&str>) -> Result<()> {
                sqlx::query("UPDATE crm_sinks SET last_run_ms = $2, last_error = $3 WHERE name = $1")
                    .bind(sink)
                    .bind(now_ms())
                    .bind(error.map(crm_error_line))
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn crm_status(&self) -> Result<Vec<CrmSinkStatus>> {
                let rows = sqlx::query(
                    "SELECT s.name, s.kind, s.registered_at_ms, s.delivered, s.skipped, s.last_run_ms, \
                     s.last_error, \
                     (SELECT COUNT(*) FROM crm_outbox o WHERE o.sink = s.name AND o.parked_at_ms IS NULL) AS pending, \
                     (SELECT COUNT(*) FROM crm_outbox o WHERE o.sink = s.name AND o.parked_at_ms IS NULL \
                      AND o.next_attempt_ms <= $1 AND (o.leased_until_ms IS NULL OR o.leased_until_ms <= $1)) AS due, \
                     (SELECT COUNT(*) FROM crm_outbox o WHERE o.sink = s.name AND o.parked_at_ms IS NOT NULL) AS parked, \
                     (SELECT COUNT(*) FROM crm_links l WHERE l.sink = s.name) AS links, \
                     (SELECT MIN(o.enqueued_ms) FROM crm_outbox o WHERE o.sink = s.name AND o.parked_at_ms IS NULL) AS oldest, \
                     (SELECT MIN(CASE WHEN o.leased_until_ms > o.next_attempt_ms THEN o.leased_until_ms \
                      ELSE o.next_attempt_ms END) FROM crm_outbox o WHERE o.sink = s.name \
                      AND o.parked_at_ms IS NULL) AS next_attempt \
                     FROM crm_sinks s ORDER BY s.name",
                )
                .bind(now_ms())
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(CrmSinkStatus {
                            sink: r.try_get("name")?,
                            kind: r.try_get("kind")?,
                            registered_at_ms: r.try_get("registered_at_ms")?,
                            pending: r.try_get("pending")?,
                            due: r.try_get("due")?,
                            parked: r.try_get("parked")?,
                            links: r.try_get("links")?,
                            delivered: r.try_get("delivered")?,
                            skipped: r.try_get("skipped")?,
                            oldest_pending_ms: r.try_get("oldest")?,
                            next_attempt_ms: r.try_get("next_attempt")?,
                            last_run_ms: r.try_get("last_run_ms")?,
                            last_error: r.try_get("last_error")?,
                        })
                    })
                    .collect()
            }

            async fn crm_parked(&self, sink: Option<&str>, limit: i64) -> Result<Vec<CrmParked>> {
                let rows = sqlx::query(
                    "SELECT id, sink, entity, entity_key, op, attempts, last_error, parked_at_ms \
                     FROM crm_outbox WHERE parked_at_ms IS NOT NULL AND ($1 IS NULL OR sink = $1) \
                     ORDER BY id LIMIT $2",
                )
                .bind(sink)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(CrmParked {
                            id: r.try_get("id")?,
                            sink: r.try_get("sink")?,
                            entity: r.try_get("entity")?,
                            entity_key: r.try_get("entity_key")?,
                            op: r.try_get("op")?,
                            attempts: r.try_get("attempts")?,
                            last_error: r.try_get("last_error")?,
                            parked_at_ms: r.try_get("parked_at_ms")?,
                        })
                    })
                    .collect()
            }

            async fn crm_retry(&self, sink: Option<&str>, ids: &[i64]) -> Result<u64> {
                let now = now_ms();
                let mut tx = self.begin_write().await?;
                let sql = "UPDATE crm_outbox SET parked_at_ms = NULL, attempts = 0, \
                           next_attempt_ms = $1, last_error = NULL \
                           WHERE parked_at_ms IS NOT NULL AND ($2 IS NULL OR sink = $2)";
                let mut n = 0;
                if ids.is_empty() {
                    n += sqlx::query(sql)
                        .bind(now)
                        .bind(sink)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                } else {
                    for id in ids {
                        n += sqlx::query(sqlx::AssertSqlSafe(format!("{sql} AND id = $3")))
                            .bind(now)
                            .bind(sink)
                            .bind(*id)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                    }
                }
                tx.commit().await?;
                Ok(n)
            }

            async fn report_rows(
                &self,
                location_id: Option<&str>,
                from_ms: i64,
                until_ms: i64,
            ) -> Result<Vec<ReportRow>> {
                // Replies may come after the period: every reply since its start counts, for
                // the reviews of its own location.
                let mut replied: HashMap<(String, String, Option<String>), i64> = HashMap::new();
                // One text per case: `($2 IS NULL OR location_id = $2)` keeps the planner off
                // the (location_id, occurred_at_ms) index, a full scan per location.
                for r in sqlx::query(if location_id.is_some() {
                    "SELECT source, parent_external_id, location_id, MIN(occurred_at_ms) AS at \
                     FROM interactions WHERE location_id = $2 AND occurred_at_ms >= $1 \
                     AND kind = 'reply' AND parent_external_id IS NOT NULL \
                     GROUP BY source, parent_external_id, location_id"
                } else {
                    "SELECT source, parent_external_id, location_id, MIN(occurred_at_ms) AS at \
                     FROM interactions WHERE kind = 'reply' AND parent_external_id IS NOT NULL \
                     AND occurred_at_ms >= $1 AND $2 IS NULL \
                     GROUP BY source, parent_external_id, location_id"
                })
                .bind(from_ms)
                .bind(location_id)
                .fetch_all(&self.pool)
                .await?
                {
                    replied.insert(
                        (
                            r.try_get("source")?,
                            r.try_get("parent_external_id")?,
                            r.try_get("location_id")?,
                        ),
                        r.try_get("at")?,
                    );
                }
                // Slice by slice, in (occurred_at_ms, id) order, as in `indicator_rows`.
                let mut out = Vec::new();
                for (lo, hi) in report_slices(from_ms, until_ms) {
                    let rows = sqlx::query(if location_id.is_some() {
                        "SELECT id, source, external_id, kind, occurred_at_ms, location_id, author_name, \
                         substr(text, 1, 600) AS text, language, sentiment, sentiment_label, stars, url, \
                         aspects FROM interactions WHERE location_id = $3 AND kind <> 'reply' \
                         AND occurred_at_ms >= $1 AND occurred_at_ms < $2 \
                         ORDER BY occurred_at_ms, id"
                    } else {
                        "SELECT id, source, external_id, kind, occurred_at_ms, location_id, author_name, \
                         substr(text, 1, 600) AS text, language, sentiment, sentiment_label, stars, url, \
                         aspects FROM interactions WHERE kind <> 'reply' \
                         AND occurred_at_ms >= $1 AND occurred_at_ms < $2 \
                         AND $3 IS NULL ORDER BY occurred_at_ms, id"
                    })
                    .bind(lo)
                    .bind(hi)
                    .bind(location_id)
                    .fetch_all(&self.pool)
                    .await?;
                    for r in rows {
                        out.push({
                            let r = &r;
                            let source: String = r.try_get("source")?;
                            let external_id: String = r.try_get("external_id")?;
                            let aspects: Option<String> = r.try_get("aspects")?;
                            let location_id: Option<String> = r.try_get("location_id")?;
                            let replied_at_ms = replied
                                .get(&(source.clone(), external_id.clone(), location_id.clone()))
                                .copied();
                            ReportRow {
                                id: r.try_get("id")?,
                                kind: r.try_get("kind")?,
                                occurred_at_ms: r.try_get("occurred_at_ms")?,
                                location_id,
                                author_name: r.try_get("author_name")?,
                                text: r.try_get("text")?,
                                language: r.try_get("language")?,
                                sentiment: r.try_get("sentiment")?,
                                sentiment_label: r.try_get("sentiment_label")?,
                                stars: r.try_get("stars")?,
                                url: r.try_get("url")?,
                                aspects: aspects
                                    .and_then(|a| serde_json::from_str(&a).ok())
                                    .unwrap_or_default(),
                                replied_at_ms,
                                source,
                                external_id,
                            }
                        });
                    }
                }
                Ok(out)
            }

            // --- indicators ---
            async fn indicator_rows(
                &self,
                f: &IndicatorFilter,
            ) -> Result<Vec<$crate::pipeline::indicators::IndicatorRow>> {
                use $crate::pipeline::indicators::{ticket_times, IndicatorRow};
                // The location filter is written out when there is one, so the planner uses
                // the (location_id, occurred_at_ms) index instead of a full scan per location.
                // Slice by slice (`report_slices`), in (occurred_at_ms, id) order: a report of
                // every location reads hundreds of thousands of rows, and the driver's copy
                // of a slice is dropped once it is converted.
                let mut out = Vec::new();
                for (lo, hi) in report_slices(f.from_ms, f.until_ms) {
                    let rows = sqlx::query(if f.location_id.is_some() {
                        "SELECT source, external_id, kind, parent_external_id, occurred_at_ms, \
                         updated_at_ms, location_id, customer_id, stars, nps, csat, csat_scale, \
                         csat_satisfied, ces, ces_scale, ces_agrees, status, \
                         CASE WHEN kind = 'ticket' THEN raw END AS ticket_raw \
                         FROM interactions WHERE location_id = $3 AND kind <> 'reply' \
                         AND occurred_at_ms >= $1 AND occurred_at_ms < $2 \
                         AND ($4 IS NULL OR source = $4 OR kind = $4 OR source || '/' || kind = $4) \
                         AND ($5 IS NULL OR customer_id = $5) \
                         ORDER BY occurred_at_ms, id"
                    } else {
                        "SELECT source, external_id, kind, parent_external_id, occurred_at_ms, \
                         updated_at_ms, location_id, customer_id, stars, nps, csat, csat_scale, \
                         csat_satisfied, ces, ces_scale, ces_agrees, status, \
                         CASE WHEN kind = 'ticket' THEN raw END AS ticket_raw \
                         FROM interactions WHERE kind <> 'reply' \
                         AND occurred_at_ms >= $1 AND occurred_at_ms < $2 \
                         AND $3 IS NULL \
                         AND ($4 IS NULL OR source = $4 OR kind = $4 OR source || '/' || kind = $4) \
                         AND ($5 IS NULL OR customer_id = $5) \
                         ORDER BY occurred_at_ms, id"
                    })
                    .bind(lo)
                    .bind(hi)
                    .bind(f.location_id.as_deref())
                    .bind(f.channel.as_deref())
                    .bind(f.customer_id.as_deref())
                    .fetch_all(&self.pool)
                    .await?;
                    for row in rows {
                        let kind: String = row.try_get("kind")?;
                        let kind = InteractionKind::parse(&kind)
                            .ok_or_else(|| StoreError::Corrupt(format!("interaction kind `{kind}`")))?;
                        let csat = csat_of(&row)?;
                        let ces = ces_of(&row)?;
                        let occurred_at_ms: i64 = row.try_get("occurred_at_ms")?;
                        let updated_at_ms: Option<i64> = row.try_get("updated_at_ms")?;
                        let status: Option<String> = row.try_get("status")?;
                        let ticket = row.try_get::<Option<String>, _>("ticket_raw")?.map(|raw| {
                            ticket_times(
                                &raw,
                                occurred_at_ms,
                                updated_at_ms,
                                status.as_deref(),
                                f.business_hours,
                            )
                        });
                        out.push(IndicatorRow {
                            source: row.try_get("source")?,
                            external_id: row.try_get("external_id")?,
                            kind,
                            parent_external_id: row.try_get("parent_external_id")?,
                            occurred_at_ms,
                            updated_at_ms,
                            location_id: row.try_get("location_id")?,
                            customer_id: row.try_get("customer_id")?,
                            stars: row.try_get("stars")?,
                            nps: row.try_get("nps")?,
                            csat,
                            ces,
                            status,
                            ticket,
                        });
                    }
                }
                Ok(out)
            }
        }

        // --- HTTP API reads ---
        fn bind_args<'q>(
            mut q: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>,
            args: Vec<Arg>,
        ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments> {
            for a in args {
                q = match a {
                    Arg::Int(v) => q.bind(v),
                    Arg::Real(v) => q.bind(v),
                    Arg::Text(v) => q.bind(v),
                };
            }
            q
        }

        fn row_to_change(r: &<$db as sqlx::Database>::Row) -> Result<StoredChange> {
            let evidence: String = r.try_get("evidence")?;
            Ok(StoredChange {
                id: r.try_get("id")?,
                change: ChangeRecord {
                    series: r.try_get("series")?,
                    entity: r.try_get("entity")?,
                    entity_id: r.try_get("entity_id")?,
                    channel: r.try_get("channel")?,
                    signal: r.try_get("signal")?,
                    index: r.try_get("idx")?,
                    occurred_at_ms: r.try_get("occurred_at_ms")?,
                    direction: r.try_get("direction")?,
                    before: r.try_get("before_value")?,
                    after: r.try_get("after_value")?,
                    confidence: r.try_get("confidence")?,
                    status: r.try_get("status")?,
                    n_before: r.try_get("n_before")?,
                    n_after: r.try_get("n_after")?,
                    evidence: serde_json::from_str(&evidence)
                        .map_err(|e| StoreError::Corrupt(format!("change evidence: {e}")))?,
                    detected_at_ms: r.try_get("detected_at_ms")?,
                },
            })
        }

        fn row_to_run(r: &<$db as sqlx::Database>::Row) -> Result<RunSummary> {
            Ok(RunSummary {
                id: r.try_get("id")?,
                status: r.try_get("status")?,
                started_at_ms: r.try_get("started_at_ms")?,
                finished_at_ms: r.try_get("finished_at_ms")?,
                read: r.try_get("read_count")?,
                inserted: r.try_get("inserted")?,
                updated: r.try_get("updated")?,
                quarantined: r.try_get("quarantined")?,
                error: r.try_get("error")?,
            })
        }

        fn row_to_quarantine(r: &<$db as sqlx::Database>::Row) -> Result<QuarantineItem> {
            let options: String = r.try_get("options")?;
            let line: i64 = r.try_get("line")?;
            Ok(QuarantineItem {
                id: r.try_get("id")?,
                status: r.try_get("status")?,
                created_at_ms: r.try_get("created_at_ms")?,
                entry: QuarantineEntry {
                    source: r.try_get("source")?,
                    preset: r.try_get("preset")?,
                    options: serde_json::from_str(&options).unwrap_or(serde_json::Value::Null),
                    error: $crate::pipeline::RowError {
                        origin: r.try_get("origin")?,
                        line: (line > 0).then_some(line as u64),
                        field: r.try_get("field")?,
                        expected: r.try_get("expected")?,
                        message: r.try_get("message")?,
                        raw: r.try_get("raw")?,
                    },
                },
            })
        }
    };
}

pub(super) use impl_store;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_slices_cover_the_window_in_order() {
        let day = 86_400_000;
        assert!(report_slices(5, 5).is_empty());
        assert_eq!(report_slices(0, day), vec![(0, day)]);
        let s = report_slices(0, 180 * day);
        assert_eq!(s.len(), 13, "fortnights");
        assert_eq!((s[0].0, s[12].1), (0, 180 * day));
        assert!(s.windows(2).all(|w| w[0].1 == w[1].0));
        let all = report_slices(0, i64::MAX);
        assert_eq!(all.len() as i128, REPORT_SLICES);
        assert_eq!(all.last().unwrap().1, i64::MAX);
        assert_eq!(
            report_slices(i64::MIN, i64::MAX).len() as i128,
            REPORT_SLICES
        );
    }
}

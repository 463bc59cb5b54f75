//! PostgreSQL for fleets: several daemons share one database. Batch writes take a
//! transaction-scoped advisory lock so that two writers resolving the same new identity
//! cannot create two customers for it.

use crate::config::{Secret, redact_url};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// Advisory lock key that serializes identity resolution across writers.
const IDENTITY_LOCK: i64 = 0x7469_6465_6c69;

/// `base` with every connection's `search_path` set to `schema`, so one database can hold
/// several independent Tideline stores (tests, benchmarks).
pub fn url_in_schema(base: &Secret, schema: &str) -> Secret {
    let sep = if base.expose().contains('?') {
        '&'
    } else {
        '?'
    };
    Secret::new(format!(
        "{}{sep}options=-c%20search_path%3D{schema}",
        base.expose()
    ))
}

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: sqlx::PgPool,
}

impl PgStore {
    pub async fn connect(url: &Secret, opts: &ConnectOptions) -> Result<Self> {
        let u = url.expose();
        let connect_err = |message: String| StoreError::Connect {
            url: redact_url(u),
            message,
        };
        let options = PgConnectOptions::from_str(u).map_err(|e| connect_err(e.to_string()))?;
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections)
            .acquire_timeout(Duration::from_secs(opts.busy_timeout_secs.max(5)))
            .connect_with(options)
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        sqlx::migrate!("migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Migrate(e.to_string()))?;
        Ok(Self { pool })
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(IDENTITY_LOCK)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// A transaction that holds the job's lock row (`FOR UPDATE`) until it ends. Not the
    /// identity lock: a claim must not wait behind a large batch write.
    async fn begin_claim(&self, job: &str) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO job_locks (job) VALUES ($1) ON CONFLICT (job) DO NOTHING")
            .bind(job)
            .execute(&mut *tx)
            .await?;
        sqlx::query("SELECT job FROM job_locks WHERE job = $1 FOR UPDATE")
            .bind(job)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    fn after_write(&self) {}

    /// The customers of the given identity values of one kind, as (value, customer id):
    /// one array parameter, so the plan is the same for any batch and uses the key. (A
    /// long `IN` list of parameters made PostgreSQL scan the table.)
    async fn find_identities(
        tx: &mut sqlx::PgConnection,
        kind: crate::model::IdentityKind,
        values: &[&str],
    ) -> Result<Vec<(String, String)>> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        Ok(sqlx::query_as(
            "SELECT value, customer_id FROM identities WHERE kind = $1 AND value = ANY($2)",
        )
        .bind(kind.as_str())
        .bind(values)
        .fetch_all(&mut *tx)
        .await?)
    }
}

super::sql::impl_store!(PgStore, sqlx::Postgres, "postgres");

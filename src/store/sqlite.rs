//! The embedded default: one SQLite file in WAL mode. Writes begin with `BEGIN IMMEDIATE`
//! so a writer takes the lock up front instead of failing half-way on a busy database.

use crate::config::{Secret, redact_url};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Deletes a SQLite database file with its WAL and shared-memory files, for a fresh start
/// (the demo, the benchmark). A missing file is not an error.
pub fn remove_database(path: &std::path::Path) -> std::io::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let p = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: sqlx::SqlitePool,
    checkpointing: Arc<AtomicBool>,
}

impl SqliteStore {
    pub async fn connect(url: &Secret, opts: &ConnectOptions) -> Result<Self> {
        let u = url.expose();
        let connect_err = |message: String| StoreError::Connect {
            url: redact_url(u),
            message,
        };
        let options = SqliteConnectOptions::from_str(u)
            .map_err(|e| connect_err(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(opts.busy_timeout_secs))
            .foreign_keys(true)
            .page_size(8192)
            .pragma("cache_size", "-65536")
            .pragma("mmap_size", "268435456")
            .pragma("temp_store", "memory")
            // Checkpoints run in the background after writes (see `after_write`); this is
            // only the backstop that bounds the WAL (256 MiB) if they fall behind.
            .pragma("wal_autocheckpoint", "65536");
        if let Some(parent) = options.get_filename().parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| connect_err(format!("cannot create `{}`: {e}", parent.display())))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(opts.max_connections)
            .connect_with(options)
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        sqlx::migrate!("migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Migrate(e.to_string()))?;
        Ok(Self {
            pool,
            checkpointing: Arc::new(AtomicBool::new(false)),
        })
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// A transaction that owns the job's lock row: `BEGIN IMMEDIATE` already makes it the
    /// database's only writer.
    async fn begin_claim(&self, job: &str) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("INSERT INTO job_locks (job) VALUES ($1) ON CONFLICT (job) DO NOTHING")
            .bind(job)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// The customers of the given identity values of one kind, as (value, customer id).
    /// SQLite has no array parameters: the values go as one JSON array read by
    /// `json_each`, each looked up by the (kind, value) key.
    async fn find_identities(
        tx: &mut sqlx::SqliteConnection,
        kind: crate::model::IdentityKind,
        values: &[&str],
    ) -> Result<Vec<(String, String)>> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        // One statement with the values as one JSON array: a list of thousands of bound
        // placeholders costs more to bind and to look up in the statement cache than the
        // lookups themselves.
        let list = serde_json::to_string(values).unwrap_or_else(|_| "[]".into());
        Ok(sqlx::query_as(
            "SELECT value, customer_id FROM identities WHERE kind = $1 \
             AND value IN (SELECT value FROM json_each($2))",
        )
        .bind(kind.as_str())
        .bind(list)
        .fetch_all(&mut *tx)
        .await?)
    }

    /// Copies the WAL into the database on another connection, so the writer does not stall
    /// on checkpoint IO. A PASSIVE checkpoint never blocks writers or readers; one runs at a
    /// time, and a batch written meanwhile is picked up by the next one.
    fn after_write(&self) {
        if self.checkpointing.swap(true, Ordering::AcqRel) {
            return;
        }
        let pool = self.pool.clone();
        let flag = self.checkpointing.clone();
        tokio::spawn(async move {
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                tracing::warn!(error = %e, "Background WAL checkpoint failed; the next write retries.");
            }
            flag.store(false, Ordering::Release);
        });
    }
}

super::sql::impl_store!(SqliteStore, sqlx::Sqlite, "sqlite");

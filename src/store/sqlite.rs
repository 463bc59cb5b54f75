//! The embedded default: one SQLite file in WAL mode. Writes begin with `BEGIN IMMEDIATE`
//! so a writer takes the lock up front instead of failing half-way on a busy database.

use crate::config::{Secret, redact_url};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: sqlx::SqlitePool,
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
            .pragma("cache_size", "-16384")
            .pragma("wal_autocheckpoint", "16384");
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
        Ok(Self { pool })
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

super::sql::impl_store!(SqliteStore, sqlx::Sqlite, "sqlite");

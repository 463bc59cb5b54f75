//! Test helpers: databases on both backends, the app's pieces in-process, the binary.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use tideline::config::{Config, Overrides, Secret};
use tideline::pipeline::Analyzer;
use tideline::store::{self, ConnectOptions, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A store on a fresh database: a SQLite file in a temporary directory, or a new schema in
/// the PostgreSQL test database (dropped afterwards).
pub struct TestDb {
    pub store: Arc<dyn Store>,
    pub dir: tempfile::TempDir,
    schema: Option<String>,
    /// The store's own URL, for tests that inspect the database directly.
    pub url: Secret,
}

pub fn postgres_url() -> String {
    std::env::var("TIDELINE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

fn postgres_required() -> bool {
    std::env::var("TIDELINE_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

impl TestDb {
    /// `None` only when PostgreSQL is unreachable and not required (local runs); with
    /// TIDELINE_REQUIRE_POSTGRES=1 (CI) an unreachable server fails the test.
    pub async fn new(backend: Backend) -> Option<TestDb> {
        let dir = tempfile::tempdir().unwrap();
        match backend {
            Backend::Sqlite => {
                let url = Secret::new(format!("sqlite://{}", dir.path().join("t.db").display()));
                let store = store::connect(&url, &ConnectOptions::default())
                    .await
                    .unwrap();
                Some(TestDb {
                    store,
                    dir,
                    schema: None,
                    url,
                })
            }
            Backend::Postgres => {
                let base = postgres_url();
                let admin = match sqlx::PgPool::connect(&base).await {
                    Ok(p) => p,
                    Err(e) => {
                        if postgres_required() {
                            panic!(
                                "PostgreSQL is required (TIDELINE_REQUIRE_POSTGRES=1) but unreachable at {base}: {e}"
                            );
                        }
                        eprintln!("SKIPPED: PostgreSQL unreachable at {base}: {e}");
                        return None;
                    }
                };
                let schema = unique("t");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                    .execute(&admin)
                    .await
                    .unwrap();
                admin.close().await;
                let url = store::url_in_schema(&Secret::new(base), &schema);
                let store = store::connect(&url, &ConnectOptions::default())
                    .await
                    .unwrap();
                Some(TestDb {
                    store,
                    dir,
                    schema: Some(schema),
                    url,
                })
            }
        }
    }
}

impl TestDb {
    /// A second, independent connection pool on the same database: what another daemon
    /// of a fleet would hold.
    pub async fn another_store(&self) -> Arc<dyn Store> {
        store::connect(&self.url, &ConnectOptions::default())
            .await
            .unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(schema) = self.schema.take() {
            let base = postgres_url();
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(p) = sqlx::PgPool::connect(&base).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP SCHEMA {schema} CASCADE"
                        )))
                        .execute(&p)
                        .await;
                    }
                });
            })
            .join();
        }
    }
}

/// A configuration with the demo's locations.
pub fn demo_config() -> Config {
    Config::from_toml(
        include_str!("../../samples/demo/tideline.toml"),
        "demo",
        &Overrides::default(),
    )
    .unwrap()
}

pub fn analyzer(config: &Config) -> Arc<Analyzer> {
    use std::sync::OnceLock;
    static SHARED: OnceLock<Arc<Analyzer>> = OnceLock::new();
    SHARED
        .get_or_init(|| Arc::new(Analyzer::from_config(&config.pipeline)))
        .clone()
}

pub fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/demo")
}

/// The `tideline` binary built for these tests.
pub fn bin() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_tideline"));
    c.env_remove("TIDELINE_DATABASE_URL")
        .env_remove("TIDELINE_DATA_DIR")
        .env_remove("TIDELINE_CONFIG")
        .env_remove("RUST_LOG");
    c
}

/// Generates tests that run one async body on both backends.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = $crate::common::TestDb::new($crate::common::Backend::Sqlite).await {
                        super::$name(db).await
                    }
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = $crate::common::TestDb::new($crate::common::Backend::Postgres).await {
                        super::$name(db).await
                    }
                }
            )*
        }
    };
}

//! What the fake vendor servers share: binding on 127.0.0.1:0, secret files of mode 600,
//! the User-Agent check, one sync run.

use crate::common::{self, TestDb};
use axum::http::HeaderMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tideline::config::Config;
use tideline::metrics::Metrics;
use tideline::sync::{SyncError, SyncReport};

/// Serves `app` on 127.0.0.1:0; returns its base URL.
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// Writes a secret file of mode 600 and returns its path.
pub fn secret_file(dir: &Path, name: &str, value: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("{value}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// The request names us as `tideline/<version>`.
pub fn user_agent_ok(headers: &HeaderMap) -> bool {
    headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|u| u.starts_with("tideline/"))
}

pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Every stored interaction, in id order.
pub async fn stored(db: &TestDb) -> Vec<tideline::model::Interaction> {
    db.store
        .interactions_after(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.interaction)
        .collect()
}

/// The stored interaction with this external id; the test fails listing what is stored.
pub fn find<'a>(
    all: &'a [tideline::model::Interaction],
    id: &str,
) -> &'a tideline::model::Interaction {
    all.iter().find(|i| i.external_id == id).unwrap_or_else(|| {
        panic!(
            "{id} not stored: {:?}",
            all.iter().map(|i| &i.external_id).collect::<Vec<_>>()
        )
    })
}

/// Runs the configuration's first connector once.
pub async fn sync(
    db: &TestDb,
    config: &Config,
    metrics: Arc<Metrics>,
) -> Result<SyncReport, SyncError> {
    tideline::sync::sync_connector(
        db.store.as_ref(),
        common::analyzer(config),
        config,
        &config.connectors[0],
        metrics,
        Default::default(),
    )
    .await
}

/// Kills `tideline sync NAME` with SIGKILL (no chance to finish a page or roll back
/// cleanly) `rounds` times, each a different while after its first request to the fake
/// (`requests` counts them), calling `between` after each kill; then runs it to the end
/// twice (a walk resumed by the first ends where it began; what arrived while it was
/// interrupted comes with the next run, as with the daemon's next tick). The caller
/// asserts what is stored: every item once, none missing.
pub async fn kill_mid_sync(
    cfg: &Path,
    name: &str,
    requests: &std::sync::atomic::AtomicUsize,
    rounds: u64,
    mut between: impl FnMut(u64),
) {
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};
    for round in 0..rounds {
        let mut child = common::bin()
            .arg("--config")
            .arg(cfg)
            .args(["sync", name])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let seen = requests.load(Ordering::SeqCst);
        let started = Instant::now();
        while requests.load(Ordering::SeqCst) == seen {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "round {round}: no request"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis((round * 97) % 400)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        between(round);
    }
    for _ in 0..2 {
        let out = common::bin()
            .arg("--config")
            .arg(cfg)
            .args(["sync", name])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

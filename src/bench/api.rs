//! `tideline bench api`: a fresh SQLite store filled with generated interactions, the HTTP
//! API served on 127.0.0.1:0 in this process, and customer timelines requested by random
//! customer id at a given concurrency; latency percentiles and requests per second.

use super::BenchError;
use crate::config::{ApiToken, Config, Scope, Secret};
use crate::metrics::Metrics;
use crate::outputs::http::{self, ApiState, Tokens};
use crate::store::{self, ConnectOptions, CustomerFilter, StoreError, WriteBatch};
use crate::synth::Rng;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct ApiBenchOptions {
    pub interactions: u64,
    pub customers: u64,
    pub requests: u64,
    pub concurrency: usize,
    /// Requests before the measured ones (not counted).
    pub warmup: u64,
    /// Interactions per write batch.
    pub batch: usize,
    pub dir: PathBuf,
    pub seed: u64,
}

#[derive(Debug, Clone, Default)]
pub struct ApiBench {
    pub interactions: i64,
    pub customers: i64,
    pub fill_secs: f64,
    pub database_bytes: u64,
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub requests_per_sec: f64,
    /// Milliseconds.
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    /// Mean interactions per timeline returned.
    pub mean_items: f64,
}

const TOKEN: &str = "bench-api-token-0123456789abcdef";

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Fills the store (timed), then measures the timeline route.
pub async fn api(opts: &ApiBenchOptions, config: &Config) -> Result<ApiBench, BenchError> {
    let io = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| BenchError::Io { path, source }
    };
    std::fs::create_dir_all(&opts.dir).map_err(io(&opts.dir))?;
    let db = opts.dir.join("api.db");
    store::remove_database(&db).map_err(io(&db))?;
    let url = Secret::new(format!("sqlite://{}", db.display()));
    let store = store::connect(&url, &ConnectOptions::from(&config.storage)).await?;

    // Fill: generation on a blocking thread, one batch ahead of the writer.
    let started = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<crate::model::Interaction>>(2);
    let (n, customers, seed, batch) = (
        opts.interactions,
        opts.customers,
        opts.seed,
        opts.batch.max(1),
    );
    let generator = tokio::task::spawn_blocking(move || {
        let mut items = crate::synth::stored::interactions(n, customers, seed);
        loop {
            let chunk: Vec<_> = items.by_ref().take(batch).collect();
            if chunk.is_empty() || tx.blocking_send(chunk).is_err() {
                break;
            }
        }
    });
    while let Some(chunk) = rx.recv().await {
        store
            .write_batch(WriteBatch {
                interactions: chunk,
                max_component: config.identity.max_component_identities,
                max_customers_per_identity: config.identity.max_customers_per_identity,
                ..Default::default()
            })
            .await?;
    }
    let _ = generator.await;
    let fill_secs = started.elapsed().as_secs_f64();
    let counts = store.counts().await?;

    // Every customer id, to pick from.
    let mut ids: Vec<String> = Vec::with_capacity(counts.customers as usize);
    loop {
        let page = store
            .customers_page(&CustomerFilter {
                after: ids.last().cloned(),
                limit: 10_000,
                ..Default::default()
            })
            .await?;
        if page.is_empty() {
            break;
        }
        ids.extend(page.into_iter().map(|c| c.customer_id));
    }
    if ids.is_empty() {
        return Err(BenchError::Store(StoreError::Corrupt(
            "the benchmark store has no customers".into(),
        )));
    }

    let mut state = ApiState::new(store.clone(), Arc::new(Metrics::new()), config);
    state.tokens = Arc::new(Tokens::new(vec![ApiToken::new(
        "bench",
        Scope::Read,
        &Secret::new(TOKEN),
    )]));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(io(&opts.dir))?;
    let base = format!("http://{}", listener.local_addr().map_err(io(&opts.dir))?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(http::serve(listener, state, async move {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(opts.concurrency)
        .build()
        .map_err(|e| BenchError::Io {
            path: opts.dir.clone(),
            source: std::io::Error::other(e),
        })?;
    let ids = Arc::new(ids);
    let run = |requests: u64, seed: u64| {
        let remaining = Arc::new(AtomicU64::new(requests));
        let items = Arc::new(AtomicU64::new(0));
        let workers: Vec<_> = (0..opts.concurrency.max(1))
            .map(|w| {
                let (client, base, ids, remaining, items) = (
                    client.clone(),
                    base.clone(),
                    ids.clone(),
                    remaining.clone(),
                    items.clone(),
                );
                tokio::spawn(async move {
                    let mut rng = Rng::new(seed.wrapping_mul(1_000_003) + w as u64 + 1);
                    let mut latencies = Vec::new();
                    let mut errors = 0u64;
                    while remaining
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| r.checked_sub(1))
                        .is_ok()
                    {
                        let id = &ids[rng.below(ids.len() as u64) as usize];
                        let t = Instant::now();
                        let r = client
                            .get(format!("{base}/api/v1/customers/{id}/timeline"))
                            .bearer_auth(TOKEN)
                            .send()
                            .await;
                        let ok = match r {
                            Ok(r) if r.status().is_success() => match r.bytes().await {
                                Ok(body) => {
                                    // Count the items without a full parse: one `"external_id"` each.
                                    let n = body
                                        .windows(13)
                                        .filter(|w| *w == b"\"external_id\"")
                                        .count();
                                    items.fetch_add(n as u64, Ordering::Relaxed);
                                    true
                                }
                                Err(_) => false,
                            },
                            _ => false,
                        };
                        latencies.push(t.elapsed().as_secs_f64() * 1e3);
                        errors += u64::from(!ok);
                    }
                    (latencies, errors)
                })
            })
            .collect();
        async move {
            let mut all = Vec::with_capacity(requests as usize);
            let mut errors = 0;
            for w in workers {
                if let Ok((l, e)) = w.await {
                    all.extend(l);
                    errors += e;
                }
            }
            (all, errors, items.load(Ordering::Relaxed))
        }
    };
    let _ = run(opts.warmup, opts.seed ^ 0xabcd).await;
    let started = Instant::now();
    let (mut latencies, errors, items) = run(opts.requests, opts.seed).await;
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let _ = stop.send(());
    let _ = server.await;
    let database_bytes = ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", db.display())).ok())
        .map(|m| m.len())
        .sum();
    Ok(ApiBench {
        interactions: counts.interactions,
        customers: counts.customers,
        fill_secs,
        database_bytes,
        requests: latencies.len() as u64,
        errors,
        seconds,
        requests_per_sec: latencies.len() as f64 / seconds.max(1e-9),
        p50: percentile(&latencies, 50.0),
        p90: percentile(&latencies, 90.0),
        p99: percentile(&latencies, 99.0),
        max: latencies.last().copied().unwrap_or(0.0),
        mean_items: items as f64 / latencies.len().max(1) as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_run_answers_every_request() {
        let dir = tempfile::tempdir().unwrap();
        let opts = ApiBenchOptions {
            interactions: 2_000,
            customers: 100,
            requests: 200,
            concurrency: 4,
            warmup: 20,
            batch: 500,
            dir: dir.path().to_path_buf(),
            seed: 7,
        };
        let r = api(&opts, &Config::default()).await.unwrap();
        assert_eq!(r.interactions, 2_000);
        assert_eq!(r.customers, 100);
        assert_eq!((r.requests, r.errors), (200, 0));
        assert!((r.mean_items - 20.0).abs() < 5.0, "{r:?}");
        assert!(r.p50 <= r.p99 && r.p99 <= r.max);
    }
}

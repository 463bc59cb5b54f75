//! Tideline: pulls customer feedback from many sources, joins it into per-customer
//! timelines, scores it, and tells a business how its customers feel and when that
//! changed. See `ARCHITECTURE.md` for the map.

pub mod analyze;
pub mod bench;
pub mod config;
pub mod connectors;
pub mod daemon;
pub mod demo;
pub mod detect;
pub mod digest;
pub mod erasure;
pub mod ingest;
pub mod learn;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod outputs;
pub mod pipeline;
pub mod schedule;
pub mod score;
pub mod sinks;
pub mod store;
pub mod sync;
pub mod synth;
pub mod telemetry;
pub mod watch;

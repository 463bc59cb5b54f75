//! Connectors fetch feedback from where it lives. The contract:
//!
//! - A connector MUST NOT write the store. It yields source records and per-record
//!   rejects; the runner ([`crate::ingest`]) normalizes them and commits a batch's
//!   interactions, rejects and progress in one transaction.
//! - A malformed record MUST come back as a reject naming its place (file and line, or
//!   page and index), the field and the expected form; it never fails the batch.
//! - A connector MUST keep the record as read (the raw payload) so it can be replayed.
//!
//! Today: [`files`], the export-file importer. The API connectors (Google, social,
//! ticketing, surveys) are added as one module each plus one enum arm.

pub mod files;

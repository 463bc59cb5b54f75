//! Quarantined rows for a terminal. Their text comes from the data, so every part is put
//! on one line with control characters (terminal escapes) removed.

use super::one_line;
use crate::store::QuarantineItem;
use std::path::Path;

/// One row: id, status, place, field, what was wrong and what was expected.
/// `short_origin` shows the file name instead of the whole path.
pub fn render_line(q: &QuarantineItem, short_origin: bool) -> String {
    let e = &q.entry.error;
    let origin = if short_origin {
        Path::new(&e.origin)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| e.origin.clone())
    } else {
        e.origin.clone()
    };
    format!(
        "#{:<5} {:<9} {}:{} field {}: {} (expected {})",
        q.id,
        q.status,
        one_line(&origin, 200),
        e.line.map(|l| l.to_string()).unwrap_or_else(|| "-".into()),
        one_line(e.field.as_deref().unwrap_or("-"), 80),
        one_line(&e.message, 200),
        one_line(&e.expected, 200)
    )
}

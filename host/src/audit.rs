//! The audit log: who changed roles, tokens and plugins, what and when.
//!
//! Entries go to the shared [`AuditLog`] store (every replica's changes in
//! one log); administrators read and export it (`/api/admin/audit`,
//! `/admin/audit`). Recording never fails the change it records: a store
//! error is logged instead (the change itself already happened).

use std::sync::Arc;

use callboard_store::{AuditLog, access::AuditRow};
use serde_json::Value;

use crate::identity::Identity;

/// Records that `who` did `action` (`policy.publish`, `token.create`,
/// `plugin.install`, ...) to `target`, with `detail` (a JSON object, at
/// most 16 KiB; larger details are replaced by a note saying so).
pub async fn record(
    log: &Arc<dyn AuditLog>,
    who: &Identity,
    action: &str,
    target: &str,
    detail: Value,
) {
    let detail = if detail.is_object() {
        detail
    } else {
        serde_json::json!({ "value": detail })
    };
    let mut row = AuditRow {
        id: 0,
        at_ms: crate::auth::now_ms(),
        actor: who.name(),
        action: action.to_owned(),
        target: target.to_owned(),
        detail,
    };
    if serde_json::to_string(&row.detail).map_or(0, |s| s.len())
        > callboard_store::access::MAX_AUDIT_DETAIL_BYTES
    {
        row.detail =
            serde_json::json!({ "note": "the detail was larger than 16 KiB and is not kept" });
    }
    if let Err(e) = log.record(&row).await {
        tracing::error!(actor = %row.actor, action, target, "audit log: not recorded: {e}");
    }
}

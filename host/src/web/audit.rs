//! `/admin/tokens` and `/admin/audit` (being written).

use super::Web;

/// The routes, merged into the portal's router.
pub(super) fn routes(_web: &Web) -> axum::Router<Web> {
    axum::Router::new()
}

//! The retained state payload: the engine's snapshot plus the service's diagnostics.

use crate::core::Snapshot;
use crate::mqtt::render::{WallClock, render_state};
use serde::Serialize;

/// Service-level facts shown in the state next to the engine's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Diagnostics {
    /// Publishes and incoming messages shed under overload since start-up.
    pub(crate) shed: u64,
    /// A problem that is not a device fault (a failing save), `null` when there is none.
    pub(crate) problem: Option<Problem>,
}

/// A problem shown in the state until it goes away.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Machine-readable code, e.g. `save_failed`.
    pub(crate) code: &'static str,
    /// What went wrong.
    pub(crate) message: String,
}

/// The `{root}/state` payload: `render_state`'s object with the diagnostics appended as
/// further keys (render_state keeps the contract's key order; these come last).
pub(crate) fn render(
    snapshot: &Snapshot,
    clock: &WallClock,
    last_message: Option<&str>,
    diagnostics: &Diagnostics,
) -> String {
    let state = render_state(snapshot, clock, last_message);
    let extra = serde_json::to_string(diagnostics).unwrap_or_default();
    // Both are JSON objects: join `{..a..}` and `{..b..}` into `{..a..,..b..}`.
    match (state.strip_suffix('}'), extra.strip_prefix('{')) {
        (Some(head), Some(tail)) if head.len() > 1 && tail.len() > 1 => format!("{head},{tail}"),
        _ => state,
    }
}

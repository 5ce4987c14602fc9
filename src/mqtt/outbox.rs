//! What the link sends, in which order, and what it may shed: a pure outgoing queue.
//!
//! Three delivery classes (see [`Delivery`]). Retained topics (state, availability, discovery)
//! are latest-wins: a newer payload replaces the one still waiting, so the broker's copy always
//! converges to the truth and nothing retained is ever dropped. Critical messages (a stop's
//! event and response, lifecycle events) are never shed. Bulk messages (other events and
//! responses) are shed, and counted, when more than the bulk capacity wait.

/// How a publish is delivered when the broker is slower than we produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// Retained state, availability, discovery, images: never dropped, superseded per topic.
    Latest,
    /// A stop's event and response, lifecycle events: never shed.
    Critical,
    /// Other events and responses: shed (counted) under overload.
    Bulk,
}

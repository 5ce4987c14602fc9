//! What a publish may suffer under overload: its delivery class.

/// How a publish is treated when the broker or the link falls behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// Retained state, availability, discovery, image: never dropped, only superseded by a
    /// newer publish on the same topic.
    Latest,
    /// A stop's event and response, lifecycle events: never shed.
    Critical,
    /// Other events and responses: shed under overload, and counted.
    Bulk,
}

//! The topic layout of one device (DESIGN.md section 3).

/// Availability payload while the daemon is connected.
pub const PAYLOAD_ONLINE: &str = "online";
/// Availability payload as last will and before a clean exit.
pub const PAYLOAD_OFFLINE: &str = "offline";

/// Every topic the daemon publishes to or subscribes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// `{base_topic}/{device_id}`.
    pub(crate) root: String,
    /// `{root}/availability`: `online` / `offline`, retained.
    pub(crate) availability: String,
    /// `{root}/state`: JSON state, retained.
    pub(crate) state: String,
    /// `{root}/set`: incoming commands.
    pub(crate) set: String,
    /// `{root}/event`: JSON events, not retained.
    pub(crate) event: String,
    /// `{root}/response`: replies to commands that carried an id.
    pub(crate) response: String,
    /// `{root}/routine_image`: the SVG picture of the selected routine, retained.
    pub(crate) routine_image: String,
    /// `{discovery_prefix}/device/{device_id}/config`: Home Assistant device discovery, retained.
    pub(crate) discovery_config: String,
    /// `{discovery_prefix}/status`: Home Assistant's birth and will messages.
    pub(crate) ha_status: String,
}

impl Topics {
    /// The topics for one device; the arguments are used as given (the configuration makes them safe first).
    pub fn new(base_topic: &str, device_id: &str, discovery_prefix: &str) -> Topics {
        let root = format!("{base_topic}/{device_id}");
        Topics {
            availability: format!("{root}/availability"),
            state: format!("{root}/state"),
            set: format!("{root}/set"),
            event: format!("{root}/event"),
            response: format!("{root}/response"),
            routine_image: format!("{root}/routine_image"),
            discovery_config: format!("{discovery_prefix}/device/{device_id}/config"),
            ha_status: format!("{discovery_prefix}/status"),
            root,
        }
    }

    /// `{base_topic}/{device_id}`, under which every device topic sits.
    pub fn root(&self) -> &str {
        &self.root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_follow_the_contract() {
        let t = Topics::new("massaged", "den-pi", "homeassistant");
        assert_eq!(t.root, "massaged/den-pi");
        assert_eq!(t.availability, "massaged/den-pi/availability");
        assert_eq!(t.state, "massaged/den-pi/state");
        assert_eq!(t.set, "massaged/den-pi/set");
        assert_eq!(t.event, "massaged/den-pi/event");
        assert_eq!(t.response, "massaged/den-pi/response");
        assert_eq!(t.routine_image, "massaged/den-pi/routine_image");
        assert_eq!(t.discovery_config, "homeassistant/device/den-pi/config");
        assert_eq!(t.ha_status, "homeassistant/status");
    }
}

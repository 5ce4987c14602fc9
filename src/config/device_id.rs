//! The device id: configured, or the host name made safe for topics and unique ids.

/// Id used when neither the configuration nor the host name gives one.
pub const FALLBACK_DEVICE_ID: &str = "massaged";

/// Longest device id produced from a host name.
const MAX_ID_LEN: usize = 64;

/// Makes `raw` a topic-safe id: lower-case, every run of characters outside `[a-z0-9_-]`
/// becomes one `_`, no leading or trailing `_`, at most 64 characters; empty when nothing is left.
pub fn sanitize_device_id(raw: &str) -> String {
    let mut id = String::with_capacity(raw.len());
    let mut pending_separator = false;
    for c in raw.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
            if pending_separator && !id.is_empty() {
                id.push('_');
            }
            pending_separator = false;
            id.push(c);
        } else {
            pending_separator = true;
        }
    }
    let id = id.trim_matches('_');
    id.chars().take(MAX_ID_LEN).collect()
}

/// True when `id` is non-empty and only `[a-z0-9_-]`.
pub fn is_valid_device_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The id to use: the configured one, else the host name made safe, else [`FALLBACK_DEVICE_ID`].
pub fn resolve_device_id(configured: &str, hostname: Option<&str>) -> String {
    if !configured.is_empty() {
        return configured.to_owned();
    }
    hostname
        .map(sanitize_device_id)
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| FALLBACK_DEVICE_ID.to_owned())
}

/// The machine's host name, read from the files Linux keeps it in.
pub(crate) fn read_hostname() -> Option<String> {
    ["/etc/hostname", "/proc/sys/kernel/hostname"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|text| text.trim().to_owned())
        .find(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes_host_names() {
        assert_eq!(sanitize_device_id("raspberrypi"), "raspberrypi");
        assert_eq!(sanitize_device_id("Living-Room.lan\n"), "living-room_lan");
        assert_eq!(sanitize_device_id("my host  name"), "my_host_name");
        assert_eq!(sanitize_device_id("Küche"), "k_che");
        assert_eq!(sanitize_device_id("..pi.."), "pi");
        assert_eq!(sanitize_device_id("a+b#c/d"), "a_b_c_d");
        assert_eq!(sanitize_device_id("!!!"), "");
        assert_eq!(sanitize_device_id(&"x".repeat(100)).len(), 64);
    }

    #[test]
    fn sanitized_ids_are_valid_or_empty() {
        for raw in ["Pi", "a.b.c", "ÄÖÜ", "x y", "_lead", "", "日本"] {
            let id = sanitize_device_id(raw);
            assert!(
                id.is_empty() || is_valid_device_id(&id),
                "{raw:?} -> {id:?}"
            );
        }
    }

    #[test]
    fn configured_id_wins_then_host_name_then_fallback() {
        assert_eq!(resolve_device_id("chair", Some("pi")), "chair");
        assert_eq!(resolve_device_id("", Some("Pi.Local")), "pi_local");
        assert_eq!(resolve_device_id("", Some("???")), FALLBACK_DEVICE_ID);
        assert_eq!(resolve_device_id("", None), FALLBACK_DEVICE_ID);
    }
}

//! User routines as the TOML text the daemon's config and `massaged simulate` read, so tests
//! and benches name only what matters to them: the steps.

/// One step: (label, zone, technique, seconds).
pub type Step<'a> = (&'a str, &'a str, &'a str, u32);

/// A `[[routines]]` table with one `[[routines.steps]]` table per step; `step_keys` (TOML
/// lines such as `intensity = 100`) go into every step. `name` is written as it is, inside
/// double quotes: escape what TOML needs escaped.
pub fn routine_toml(
    id: &str,
    name: &str,
    description: &str,
    steps: &[Step],
    step_keys: &str,
) -> String {
    let mut text = format!(
        "[[routines]]\nid = \"{id}\"\nname = \"{name}\"\ndescription = \"{description}\"\n\n"
    );
    for (label, zone, technique, seconds) in steps {
        text.push_str(&format!(
            "[[routines.steps]]\nlabel = \"{label}\"\nzones = [\"{zone}\"]\n\
             technique = \"{technique}\"\nseconds = {seconds}\n{step_keys}\n"
        ));
    }
    text
}

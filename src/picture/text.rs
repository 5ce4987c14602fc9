//! The words in the picture and on the library page: clock times, step labels cut to the room
//! they have, and escaping.
//!
//! Escaping is the one thing an SVG crate would otherwise give; it lives here with its own
//! tests, because routine names and labels come from the user's config.

use crate::core::Step;

/// Longest text written, in characters; longer names and labels end in an ellipsis.
pub(super) const MAX_TEXT: usize = 100;

/// `m` or `m:ss`.
pub(super) fn clock(seconds: u64) -> String {
    if seconds % 60 == 0 {
        format!("{}", seconds / 60)
    } else {
        format!("{}:{:02}", seconds / 60, seconds % 60)
    }
}

/// `4 min` or `4 min 30 s`.
pub(super) fn clock_long(seconds: u64) -> String {
    match seconds % 60 {
        0 => format!("{} min", seconds / 60),
        s => format!("{} min {s} s", seconds / 60),
    }
}

/// The label over step `index`'s start with `room` characters before the next one: number,
/// technique and label; the number and technique; or the number alone. Not yet escaped.
pub(super) fn step_label(index: usize, step: &Step, room: usize) -> String {
    let short = format!("{} {}", index + 1, step.technique);
    let full = format!("{short}: {}", step.label);
    // A label cut to a few characters says nothing; below that, the technique alone.
    if full.chars().count() <= room || room >= short.chars().count() + 8 {
        full
    } else if short.chars().count() <= room {
        short
    } else {
        format!("{}", index + 1)
    }
}

/// The legend's line for a step: what it does, where, for how long, how hard and how fast.
/// Not yet escaped.
pub(super) fn step_summary(step: &Step) -> String {
    let zones: Vec<&str> = step.zones.iter().map(|z| z.as_str()).collect();
    format!(
        "{}: {} ({}; {}, {}%, {}/min)",
        step.technique,
        step.label,
        zones.join(" → "),
        clock(u64::from(step.seconds)),
        step.intensity,
        step.tempo
    )
}

/// Text made safe for XML content and attribute values: markup characters escaped, line
/// breaks and tabs turned into spaces, other characters XML 1.0 forbids dropped, and cut to
/// `max` characters.
pub(super) fn escape(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len());
    let count = text.chars().count();
    for (i, c) in text.chars().enumerate() {
        if i + 1 == max && count > max {
            out.push('…');
            break;
        }
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\r' | '\t' => out.push(' '),
            c if u32::from(c) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Technique, Zone};

    fn step() -> Step {
        Step {
            label: "Slow press".into(),
            zones: vec![Zone::Temples, Zone::Neck],
            technique: Technique::Press,
            seconds: 90,
            intensity: 80,
            tempo: 6,
        }
    }

    #[test]
    fn escape_makes_hostile_text_inert() {
        assert_eq!(
            escape("a<b>&\"c\"'d'\nline\ttab\r\u{1}", 100),
            "a&lt;b&gt;&amp;&quot;c&quot;&#39;d&#39; line tab "
        );
        assert_eq!(escape("abcdef", 4), "abc…");
        assert_eq!(escape("abcd", 4), "abcd");
    }

    #[test]
    fn clocks_show_seconds_only_when_there_are_some() {
        assert_eq!(clock(240), "4");
        assert_eq!(clock(270), "4:30");
        assert_eq!(clock(5), "0:05");
        assert_eq!(clock_long(240), "4 min");
        assert_eq!(clock_long(270), "4 min 30 s");
    }

    #[test]
    fn step_labels_shrink_to_the_room_they_have() {
        let step = step();
        let full = format!("3 {}: Slow press", step.technique);
        let short = format!("3 {}", step.technique);
        assert_eq!(step_label(2, &step, 100), full);
        // Room for the technique and eight more characters: the label, cut when written.
        assert_eq!(step_label(2, &step, short.len() + 8), full);
        assert_eq!(step_label(2, &step, short.len() + 7), short);
        assert_eq!(step_label(2, &step, short.len()), short);
        assert_eq!(step_label(2, &step, short.len() - 1), "3");
    }

    #[test]
    fn step_summary_says_where_how_long_how_hard_how_fast() {
        let step = step();
        assert_eq!(
            step_summary(&step),
            format!(
                "{}: Slow press (temples → neck; 1:30, 80%, 6/min)",
                step.technique
            )
        );
    }
}

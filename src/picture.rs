//! A session drawn as an SVG picture: one lane per zone, level over time, heat and the steps.
//!
//! The picture comes from the engine's own frames, run in virtual time, so it shows exactly
//! what the motors would do and is the same bytes on every run and every machine.
//!
//! The SVG is written by hand rather than with an SVG crate: the picture needs a handful of
//! elements (paths, rects, lines, text), so a crate would add a dependency for little code;
//! writing it here keeps the byte output under our control (integer coordinates, a fixed
//! element order), which the determinism check and the checked-in docs rely on. The one thing
//! a crate would otherwise give, escaping, is [`escape`] with its own tests.

use crate::core::engine::EngineError;
use crate::core::{
    Action, ChannelMap, Command, Engine, EngineConfig, EventKind, Frame, Rejection, Routine,
    Settings, Zone,
};
use crate::timeline::{Timeline, simulate};
use std::fmt::Write as _;
use std::time::Duration;

/// Why a picture could not be drawn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PictureError {
    /// The engine refused the configuration or the routine.
    #[error("cannot build the engine: {0}")]
    Engine(#[from] EngineError),
    /// The engine refused to start the session (e.g. minutes out of range).
    #[error("cannot start the session: {0}")]
    Rejected(#[from] Rejection),
}

/// Draws `routine` played for `minutes` at `intensity` percent (with heat if `heat`) on the
/// device described by `config`, as a standalone SVG document.
///
/// Pure: same inputs, same bytes. The relaxer guard plays no part (the picture shows what a
/// session would do, not whether today allows one). Cost: one simulated session at
/// `config.frame_hz`.
pub fn routine_svg(
    config: &EngineConfig,
    routine: &Routine,
    minutes: u32,
    intensity: u32,
    heat: bool,
) -> Result<String, PictureError> {
    let settings = Settings {
        routine: routine.id.clone(),
        intensity,
        minutes,
        heat,
        relaxer_date: None,
    };
    let engine = Engine::new(
        config.clone(),
        vec![routine.clone()],
        settings,
        Default::default(),
    )?;
    let start = Command {
        routine: Some(routine.id.clone()),
        minutes: Some(minutes),
        intensity: Some(intensity),
        heat: Some(heat),
        force: true,
        ..Command::action(Action::Start)
    };
    let timeline = simulate(engine, &start)?;
    Ok(timeline_svg(&timeline))
}

/// Total width of the picture in pixels.
const WIDTH: u64 = 800;
/// Left edge of the plot (zone names sit left of it).
const PLOT_X: u64 = 92;
/// Width of the plot in pixels.
const PLOT_W: u64 = 690;
/// Top of the first lane.
const LANES_Y: u64 = 70;
/// Height of one zone lane: left motors above its centre line, right motors below.
const LANE_H: u64 = 44;
/// Pixels from a lane's centre line to full level.
const HALF: u64 = 20;
/// Height of the heat lane.
const HEAT_H: u64 = 18;
/// Height of one legend row.
const ROW_H: u64 = 16;
/// Shortest time one plotted column covers; shorter columns would draw every wave of a
/// circle and make the picture large without making it clearer.
const MIN_BUCKET_MS: u64 = 3000;
/// Estimated width of one character at the 10 px label size, to decide whether a label fits.
const CHAR_W: u64 = 6;
/// Longest text written, in characters; longer names and labels end in an ellipsis.
const MAX_TEXT: usize = 100;

/// One lane: the zone's name and its motor slots split into the upper (left) and lower (right)
/// side.
struct Lane {
    zone: Zone,
    upper: Vec<usize>,
    lower: Vec<usize>,
}

fn lanes(channels: &ChannelMap) -> Vec<Lane> {
    Zone::ALL
        .iter()
        .filter_map(|&zone| {
            let slots = channels.zone(zone);
            if slots.is_empty() {
                return None;
            }
            let split = slots.len().div_ceil(2);
            Some(Lane {
                zone,
                upper: slots[..split].to_vec(),
                lower: slots[split..].to_vec(),
            })
        })
        .collect()
}

/// Per-column lowest and highest level of every slot.
struct Envelope {
    /// Pixels per column.
    column_px: u64,
    /// `[column][slot] = (min, max)`.
    columns: Vec<Vec<(u16, u16)>>,
}

fn envelope(frames: &[(Duration, Frame)], slots: usize, end: Duration) -> Envelope {
    let end_us = (end.as_micros() as u64).max(1);
    // Wide enough that one column covers MIN_BUCKET_MS, and at least one pixel.
    let column_px = (MIN_BUCKET_MS * 1000 * PLOT_W)
        .div_ceil(end_us)
        .clamp(1, PLOT_W);
    let count = PLOT_W.div_ceil(column_px);
    let time_at = |px: u64| px.min(PLOT_W) * end_us / PLOT_W;
    let mut current = vec![0u16; slots];
    let mut next = 0;
    let mut columns = Vec::with_capacity(count as usize);
    for column in 0..count {
        let start = time_at(column * column_px);
        let stop = time_at((column + 1) * column_px);
        let at = |i: usize| frames[i].0.as_micros() as u64;
        while next < frames.len() && at(next) <= start {
            copy_levels(&mut current, &frames[next].1);
            next += 1;
        }
        let mut range: Vec<(u16, u16)> = current.iter().map(|&l| (l, l)).collect();
        while next < frames.len() && at(next) < stop {
            copy_levels(&mut current, &frames[next].1);
            for (r, &l) in range.iter_mut().zip(&current) {
                *r = (r.0.min(l), r.1.max(l));
            }
            next += 1;
        }
        columns.push(range);
    }
    Envelope { column_px, columns }
}

fn copy_levels(current: &mut [u16], frame: &Frame) {
    for (c, &l) in current.iter_mut().zip(&frame.levels) {
        *c = l;
    }
}

/// Pixel x of an offset into the session.
fn x_of(at: Duration, end: Duration) -> u64 {
    let end_us = (end.as_micros() as u64).max(1);
    PLOT_X + (at.as_micros() as u64).min(end_us) * PLOT_W / end_us
}

/// Pixels for a level in permille.
fn height(level: u16, full: u64) -> u64 {
    (u64::from(level) * full + 500) / 1000
}

/// `m` or `m:ss`.
fn clock(seconds: u64) -> String {
    if seconds % 60 == 0 {
        format!("{}", seconds / 60)
    } else {
        format!("{}:{:02}", seconds / 60, seconds % 60)
    }
}

/// Text made safe for XML content and attribute values: markup characters escaped, line
/// breaks and tabs turned into spaces, other characters XML 1.0 forbids dropped, and cut to
/// `max` characters.
pub fn escape(text: &str, max: usize) -> String {
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

/// The area from a lane's centre line to `level(column)`, as an SVG path of horizontal and
/// vertical moves (only changes cost bytes). `down` draws below the line.
fn area_path(
    out: &mut String,
    envelope: &Envelope,
    centre: u64,
    down: bool,
    level: impl Fn(usize) -> u16,
) {
    let y = |l: u16| {
        let h = height(l, HALF);
        if down { centre + h } else { centre - h }
    };
    let x = |column: usize| (PLOT_X + column as u64 * envelope.column_px).min(PLOT_X + PLOT_W);
    let mut open: Option<u64> = None;
    for column in 0..=envelope.columns.len() {
        let here = if column < envelope.columns.len() {
            level(column)
        } else {
            0
        };
        let h = height(here, HALF);
        match (open, h > 0) {
            (None, true) => {
                let _ = write!(out, "M{} {}V{}", x(column), centre, y(here));
                open = Some(y(here));
            }
            (Some(last), true) if last != y(here) => {
                let _ = write!(out, "H{}V{}", x(column), y(here));
                open = Some(y(here));
            }
            (Some(_), false) => {
                let _ = write!(out, "H{}V{}Z", x(column), centre);
                open = None;
            }
            _ => {}
        }
    }
}

/// Draws a simulated session (see [`crate::timeline::simulate`]).
pub fn timeline_svg(timeline: &Timeline) -> String {
    let lanes = lanes(&timeline.channels);
    let heat_slot = timeline.channels.heat();
    let end = timeline.end.max(Duration::from_millis(1));
    let env = envelope(&timeline.frames, timeline.channels.count(), end);
    let lanes_bottom = LANES_Y + LANE_H * lanes.len() as u64;
    let plot_bottom = lanes_bottom + if heat_slot.is_some() { HEAT_H } else { 0 };
    let axis_y = plot_bottom + 4;
    let starts: Vec<(Duration, usize)> = timeline
        .events
        .iter()
        .filter(|(_, e)| matches!(e.kind, EventKind::Started | EventKind::Step))
        .filter_map(|(t, e)| Some((*t, e.step_index?)))
        .collect();
    let mut played: Vec<usize> = starts.iter().map(|&(_, i)| i).collect();
    played.sort_unstable();
    played.dedup();
    let legend_y = axis_y + 36;
    let height_px = legend_y + ROW_H * played.len() as u64 + 8;

    let routine = &timeline.routine;
    let mut out = String::with_capacity(4096);
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height_px}\" \
         viewBox=\"0 0 {WIDTH} {height_px}\" font-family=\"sans-serif\" font-size=\"11\">\n"
    );
    let settings = format!(
        "{} min at {}%, heat {}",
        timeline.minutes,
        timeline.intensity,
        if timeline.heat { "on" } else { "off" }
    );
    let _ = writeln!(
        out,
        "<title>{}: {settings}</title>",
        escape(&routine.name, MAX_TEXT)
    );
    let _ = writeln!(
        out,
        "<rect width=\"{WIDTH}\" height=\"{height_px}\" fill=\"#fff\"/>"
    );
    let _ = writeln!(
        out,
        "<text x=\"12\" y=\"24\" font-size=\"16\" font-weight=\"bold\">{}</text>",
        escape(&routine.name, MAX_TEXT)
    );
    let _ = writeln!(
        out,
        "<text x=\"12\" y=\"42\" fill=\"#555\">{} · {settings} · {} steps, {} per pass</text>",
        escape(&routine.id, MAX_TEXT),
        routine.steps.len(),
        clock(routine.duration().as_secs()),
    );

    // Lane backgrounds, centre lines and names.
    let _ = writeln!(out, "<g fill=\"#f4f6f8\">");
    for (i, _) in lanes.iter().enumerate() {
        let top = LANES_Y + LANE_H * i as u64;
        let _ = writeln!(
            out,
            "<rect x=\"{PLOT_X}\" y=\"{}\" width=\"{PLOT_W}\" height=\"{}\"/>",
            top + 1,
            LANE_H - 2
        );
    }
    if heat_slot.is_some() {
        let _ = writeln!(
            out,
            "<rect x=\"{PLOT_X}\" y=\"{}\" width=\"{PLOT_W}\" height=\"{}\"/>",
            lanes_bottom + 1,
            HEAT_H - 2
        );
    }
    let _ = writeln!(out, "</g>");
    let _ = writeln!(out, "<g fill=\"#333\">");
    for (i, lane) in lanes.iter().enumerate() {
        let centre = LANES_Y + LANE_H * i as u64 + LANE_H / 2;
        let _ = writeln!(
            out,
            "<text x=\"12\" y=\"{}\">{}</text>",
            centre + 4,
            lane.zone.as_str()
        );
        if !lane.lower.is_empty() {
            let _ = writeln!(
                out,
                "<text x=\"{}\" y=\"{}\" font-size=\"9\" fill=\"#777\">L</text>\
                 <text x=\"{}\" y=\"{}\" font-size=\"9\" fill=\"#777\">R</text>",
                PLOT_X - 12,
                centre - 6,
                PLOT_X - 12,
                centre + 13
            );
        }
    }
    if heat_slot.is_some() {
        let _ = writeln!(
            out,
            "<text x=\"12\" y=\"{}\">heat</text>",
            lanes_bottom + HEAT_H / 2 + 4
        );
    }
    let _ = writeln!(out, "</g>");

    // Levels: the lighter area reaches the highest level in each column, the darker one the
    // lowest, so the light fringe is how far the pressure pulses.
    let side = |slots: &[usize], column: usize, pick: fn((u16, u16)) -> u16| {
        slots
            .iter()
            .filter_map(|&s| env.columns[column].get(s).copied())
            .map(pick)
            .max()
            .unwrap_or(0)
    };
    for (pick, opacity) in [(|r: (u16, u16)| r.1, ".35"), (|r: (u16, u16)| r.0, ".5")]
        as [(fn((u16, u16)) -> u16, &str); 2]
    {
        let mut d = String::new();
        for (i, lane) in lanes.iter().enumerate() {
            let centre = LANES_Y + LANE_H * i as u64 + LANE_H / 2;
            area_path(&mut d, &env, centre, false, |c| side(&lane.upper, c, pick));
            area_path(&mut d, &env, centre, true, |c| side(&lane.lower, c, pick));
        }
        if !d.is_empty() {
            let _ = writeln!(
                out,
                "<path fill=\"#2563eb\" fill-opacity=\"{opacity}\" d=\"{d}\"/>"
            );
        }
    }
    let _ = writeln!(out, "<g stroke=\"#c5ccd4\">");
    for i in 0..lanes.len() {
        let centre = LANES_Y + LANE_H * i as u64 + LANE_H / 2;
        let _ = writeln!(
            out,
            "<line x1=\"{PLOT_X}\" y1=\"{centre}\" x2=\"{}\" y2=\"{centre}\"/>",
            PLOT_X + PLOT_W
        );
    }
    let _ = writeln!(out, "</g>");

    // Heat: a bar as high as the heater's level wherever it is on.
    if let Some(slot) = heat_slot {
        let _ = writeln!(out, "<g fill=\"#ea580c\">");
        let bottom = lanes_bottom + HEAT_H - 2;
        let bar = |column: usize| height(side(&[slot], column, |r| r.1), HEAT_H - 4);
        let mut column = 0;
        while column < env.columns.len() {
            let h = bar(column);
            let mut run = column + 1;
            while run < env.columns.len() && bar(run) == h {
                run += 1;
            }
            if h > 0 {
                let x = PLOT_X + column as u64 * env.column_px;
                let w = (PLOT_X + run as u64 * env.column_px).min(PLOT_X + PLOT_W) - x;
                let _ = writeln!(
                    out,
                    "<rect x=\"{x}\" y=\"{}\" width=\"{w}\" height=\"{h}\"/>",
                    bottom - h
                );
            }
            column = run;
        }
        let _ = writeln!(out, "</g>");
    }

    // Step boundaries, numbered; with the technique (and the label) where there is room.
    let _ = writeln!(out, "<g stroke=\"#64748b\" stroke-dasharray=\"3 3\">");
    for &(at, _) in &starts {
        let x = x_of(at, end);
        let _ = writeln!(
            out,
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{plot_bottom}\"/>",
            LANES_Y - 14
        );
    }
    let _ = writeln!(out, "</g>");
    let _ = writeln!(out, "<g font-size=\"10\" fill=\"#334155\">");
    for (n, &(at, index)) in starts.iter().enumerate() {
        let x = x_of(at, end);
        let next = starts
            .get(n + 1)
            .map_or(PLOT_X + PLOT_W, |&(t, _)| x_of(t, end));
        let room = (next.saturating_sub(x + 6) / CHAR_W) as usize;
        let Some(step) = routine.steps.get(index) else {
            continue;
        };
        let short = format!("{} {}", index + 1, step.technique);
        let full = format!("{short}: {}", step.label);
        let text = if full.chars().count() <= room {
            full
        } else if short.chars().count() <= room {
            short
        } else {
            format!("{}", index + 1)
        };
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\">{}</text>",
            x + 3,
            LANES_Y - 4,
            escape(&text, room.max(3))
        );
    }
    let _ = writeln!(out, "</g>");

    // Time axis in minutes.
    let end_s = end.as_secs_f64().ceil() as u64;
    let tick = [15, 30, 60, 120, 300, 600, 900, 1800, 3600]
        .into_iter()
        .find(|&t| end_s / t <= 10)
        .unwrap_or(3600);
    let _ = writeln!(
        out,
        "<g stroke=\"#333\"><line x1=\"{PLOT_X}\" y1=\"{axis_y}\" x2=\"{}\" y2=\"{axis_y}\"/>",
        PLOT_X + PLOT_W
    );
    let ticks: Vec<u64> = (0..)
        .map(|i| i * tick)
        .take_while(|&s| Duration::from_secs(s) <= end)
        .collect();
    for &s in &ticks {
        let x = x_of(Duration::from_secs(s), end);
        let _ = writeln!(
            out,
            "<line x1=\"{x}\" y1=\"{axis_y}\" x2=\"{x}\" y2=\"{}\"/>",
            axis_y + 4
        );
    }
    let _ = writeln!(out, "</g>");
    let _ = writeln!(out, "<g text-anchor=\"middle\" fill=\"#333\">");
    for &s in &ticks {
        let x = x_of(Duration::from_secs(s), end);
        let _ = writeln!(
            out,
            "<text x=\"{x}\" y=\"{}\">{}</text>",
            axis_y + 16,
            clock(s)
        );
    }
    let _ = writeln!(out, "</g>");
    let _ = writeln!(
        out,
        "<text x=\"12\" y=\"{}\" fill=\"#333\">minutes</text>",
        axis_y + 16
    );

    // Legend: every step that played, with what it does.
    let _ = writeln!(out, "<g fill=\"#333\">");
    for (row, &index) in played.iter().enumerate() {
        let Some(step) = routine.steps.get(index) else {
            continue;
        };
        let y = legend_y + ROW_H * row as u64;
        let zones: Vec<&str> = step.zones.iter().map(|z| z.as_str()).collect();
        let text = format!(
            "{}: {} ({}; {}, {}%, {}/min)",
            step.technique,
            step.label,
            zones.join(" → "),
            clock(u64::from(step.seconds)),
            step.intensity,
            step.tempo
        );
        let _ = writeln!(
            out,
            "<text x=\"12\" y=\"{y}\" font-weight=\"bold\">{}</text>\
             <text x=\"32\" y=\"{y}\">{}</text>",
            index + 1,
            escape(&text, MAX_TEXT + 20)
        );
    }
    let _ = writeln!(out, "</g>");
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::builtin_routines;

    fn builtin(id: &str) -> Routine {
        builtin_routines()
            .into_iter()
            .find(|r| r.id == id)
            .expect("built-in routine")
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
    fn same_inputs_give_the_same_bytes() {
        let config = EngineConfig::default();
        let routine = builtin("temple-circles");
        let a = routine_svg(&config, &routine, 4, 60, true).expect("draws");
        let b = routine_svg(&config, &routine, 4, 60, true).expect("draws");
        assert_eq!(a, b);
        assert!(a.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(a.ends_with("</svg>\n"));
        assert_ne!(
            a,
            routine_svg(&config, &routine, 4, 30, true).expect("draws")
        );
    }

    #[test]
    fn picture_shows_zones_steps_heat_and_minutes() {
        let routine = builtin("full-scalp");
        let svg = routine_svg(&EngineConfig::default(), &routine, 15, 60, true).expect("draws");
        for zone in Zone::ALL {
            assert!(svg.contains(&format!(">{zone}</text>")), "lane {zone}");
        }
        assert!(svg.contains(">heat</text>"));
        assert!(svg.contains("<g fill=\"#ea580c\">\n<rect"), "heat drawn");
        assert!(svg.contains(">minutes</text>"));
        assert!(svg.contains(">14</text>"), "axis in minutes up to the end");
        for step in &routine.steps {
            assert!(svg.contains(&escape(&step.label, 200)), "{}", step.label);
        }
        assert!(svg.len() < 16_000, "picture is {} bytes", svg.len());
    }

    #[test]
    fn hostile_names_stay_text() {
        let mut routine = builtin("pre-shampoo");
        routine.name = "</text><script>alert(\"x\" & 'y')</script>\nnext".into();
        routine.steps[0].label = "<b>&amp;\"'\n".into();
        let svg = routine_svg(&EngineConfig::default(), &routine, 3, 60, false).expect("draws");
        assert!(!svg.contains("<script"));
        assert!(!svg.contains("<b>"));
        assert!(svg.contains("&lt;/text&gt;&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)"));
        assert!(svg.contains("&lt;b&gt;&amp;amp;&quot;&#39;"));
        // Every `<` left opens one of the elements the picture writes.
        for tag in svg.split('<').skip(1) {
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            assert!(
                ["svg", "title", "rect", "text", "g", "path", "line"].contains(&name.as_str()),
                "unexpected element {name}"
            );
        }
    }

    #[test]
    fn out_of_range_minutes_are_an_error() {
        let routine = builtin("pre-shampoo");
        let err = routine_svg(&EngineConfig::default(), &routine, 999, 60, false).unwrap_err();
        assert!(matches!(err, PictureError::Rejected(_)), "{err}");
    }
}

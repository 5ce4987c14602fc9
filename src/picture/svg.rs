//! The markup: a laid-out session written as SVG elements, one band of the picture per
//! function, in the fixed order the bytes depend on.
//!
//! Positions come from [`Layout`] and words from `text`; this file only decides how they are
//! spelled as elements. Every element sits on a line of its own except where two belong
//! together (the L/R marks, a legend row's number and text, the axis line and its group),
//! which the checked-in pictures keep.

use super::layout::{HALF, LANES_Y, Layout, PLOT_W, PLOT_X, Rect, WIDTH, height};
use super::text::{MAX_TEXT, clock, escape, step_label, step_summary};
use crate::core::Routine;
use crate::timeline::Timeline;
use std::fmt::{self, Display, Write as _};
use std::time::Duration;

/// The SVG document for `timeline` laid out as `layout`.
pub(super) fn draw(timeline: &Timeline, layout: &Layout) -> String {
    let mut svg = Svg(String::with_capacity(4096));
    header(&mut svg, timeline, layout);
    lanes(&mut svg, layout);
    levels(&mut svg, layout);
    heat(&mut svg, layout);
    steps(&mut svg, &timeline.routine, layout);
    axis(&mut svg, layout);
    legend(&mut svg, &timeline.routine, layout);
    svg.0.push_str("</svg>\n");
    svg.0
}

/// A document being written, one line of markup at a time.
struct Svg(String);

impl Svg {
    /// Writes `markup` and ends the line.
    fn put(&mut self, markup: impl Display) {
        let _ = writeln!(self.0, "{markup}");
    }

    /// Writes `<g attributes>`, what `body` writes, and `</g>`, each on lines of their own.
    fn group(&mut self, attributes: &str, body: impl FnOnce(&mut Svg)) {
        self.put(format_args!("<g {attributes}>"));
        body(self);
        self.put("</g>");
    }
}

/// `<text x y style>content</text>`: `style` is any further attributes, each after a space;
/// `content` is already escaped.
struct Text<'a, C> {
    x: u64,
    y: u64,
    style: &'a str,
    content: C,
}

fn text<C: Display>(x: u64, y: u64, style: &str, content: C) -> Text<'_, C> {
    Text {
        x,
        y,
        style,
        content,
    }
}

impl<C: Display> Display for Text<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Text { x, y, style, .. } = self;
        write!(
            f,
            "<text x=\"{x}\" y=\"{y}\"{style}>{}</text>",
            self.content
        )
    }
}

/// `<line>` from (x1, y1) to (x2, y2).
struct Line {
    x1: u64,
    y1: u64,
    x2: u64,
    y2: u64,
}

impl Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Line { x1, y1, x2, y2 } = self;
        write!(f, "<line x1=\"{x1}\" y1=\"{y1}\" x2=\"{x2}\" y2=\"{y2}\"/>")
    }
}

/// A horizontal line across the whole plot at `y`.
fn across(y: u64) -> Line {
    Line {
        x1: PLOT_X,
        y1: y,
        x2: PLOT_X + PLOT_W,
        y2: y,
    }
}

/// A [`Rect`] written as `<rect>`, taking its fill from the enclosing group.
impl Display for Rect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Rect {
            x,
            y,
            width,
            height,
        } = self;
        write!(
            f,
            "<rect x=\"{x}\" y=\"{y}\" width=\"{width}\" height=\"{height}\"/>"
        )
    }
}

/// The root element, the title, a white background, and the routine's name and settings.
fn header(svg: &mut Svg, timeline: &Timeline, layout: &Layout) {
    let Layout { height, .. } = layout;
    svg.put(format_args!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\" font-size=\"11\">"
    ));
    let routine = &timeline.routine;
    let name = escape(&routine.name, MAX_TEXT);
    let settings = format!(
        "{} min at {}%, heat {}",
        timeline.minutes,
        timeline.intensity,
        if timeline.heat { "on" } else { "off" }
    );
    svg.put(format_args!("<title>{name}: {settings}</title>"));
    svg.put(format_args!(
        "<rect width=\"{WIDTH}\" height=\"{height}\" fill=\"#fff\"/>"
    ));
    svg.put(text(12, 24, " font-size=\"16\" font-weight=\"bold\"", name));
    svg.put(text(
        12,
        42,
        " fill=\"#555\"",
        format_args!(
            "{} · {settings} · {} steps, {} min per pass",
            escape(&routine.id, MAX_TEXT),
            routine.steps.len(),
            clock(routine.duration().as_secs()),
        ),
    ));
}

/// Lane backgrounds, then the zone names (with L and R where a zone has both sides) and the
/// heat lane's name.
fn lanes(svg: &mut Svg, layout: &Layout) {
    svg.group("fill=\"#f4f6f8\"", |svg| {
        for i in 0..layout.lanes.len() {
            svg.put(layout.lane_band(i));
        }
        if layout.heat_slot.is_some() {
            svg.put(layout.heat_band());
        }
    });
    svg.group("fill=\"#333\"", |svg| {
        for (i, lane) in layout.lanes.iter().enumerate() {
            let centre = layout.centre(i);
            svg.put(text(12, centre + 4, "", lane.zone.as_str()));
            if !lane.lower.is_empty() {
                let side = " font-size=\"9\" fill=\"#777\"";
                svg.put(format_args!(
                    "{}{}",
                    text(PLOT_X - 12, centre - 6, side, "L"),
                    text(PLOT_X - 12, centre + 13, side, "R")
                ));
            }
        }
        if layout.heat_slot.is_some() {
            svg.put(text(12, layout.heat_label_y(), "", "heat"));
        }
    });
}

/// Motor levels as areas around each lane's centre line, then the centre lines on top.
///
/// The lighter area reaches the highest level in each column, the darker one the lowest, so
/// the light fringe is how far the pressure pulses.
fn levels(svg: &mut Svg, layout: &Layout) {
    let env = &layout.envelope;
    for (pick, opacity) in [(|r: (u16, u16)| r.1, ".35"), (|r: (u16, u16)| r.0, ".5")]
        as [(fn((u16, u16)) -> u16, &str); 2]
    {
        let mut d = String::new();
        for (i, lane) in layout.lanes.iter().enumerate() {
            let centre = layout.centre(i);
            area_path(&mut d, layout, centre, false, |c| {
                env.side(&lane.upper, c, pick)
            });
            area_path(&mut d, layout, centre, true, |c| {
                env.side(&lane.lower, c, pick)
            });
        }
        if !d.is_empty() {
            svg.put(format_args!(
                "<path fill=\"#2563eb\" fill-opacity=\"{opacity}\" d=\"{d}\"/>"
            ));
        }
    }
    svg.group("stroke=\"#c5ccd4\"", |svg| {
        for i in 0..layout.lanes.len() {
            svg.put(across(layout.centre(i)));
        }
    });
}

/// The area from a lane's centre line to `level(column)`, as an SVG path of horizontal and
/// vertical moves (only changes cost bytes). `down` draws below the line.
fn area_path(
    out: &mut String,
    layout: &Layout,
    centre: u64,
    down: bool,
    level: impl Fn(usize) -> u16,
) {
    let env = &layout.envelope;
    let y = |l: u16| {
        let h = height(l, HALF);
        if down { centre + h } else { centre - h }
    };
    let x = |column: usize| env.column_x(column);
    let mut open: Option<u64> = None;
    for column in 0..=env.len() {
        let here = if column < env.len() { level(column) } else { 0 };
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

/// The heater's level as bars in the heat lane, where the device has a heater.
fn heat(svg: &mut Svg, layout: &Layout) {
    let Some(slot) = layout.heat_slot else {
        return;
    };
    svg.group("fill=\"#ea580c\"", |svg| {
        for bar in layout.heat_bars(slot) {
            svg.put(bar);
        }
    });
}

/// Step boundaries as dashed lines, then each numbered, with the technique (and the label)
/// where there is room.
fn steps(svg: &mut Svg, routine: &Routine, layout: &Layout) {
    svg.group("stroke=\"#64748b\" stroke-dasharray=\"3 3\"", |svg| {
        for &(at, _) in &layout.starts {
            let x = layout.x_of(at);
            svg.put(Line {
                x1: x,
                y1: LANES_Y - 14,
                x2: x,
                y2: layout.plot_bottom,
            });
        }
    });
    svg.group("font-size=\"10\" fill=\"#334155\"", |svg| {
        for (n, &(at, index)) in layout.starts.iter().enumerate() {
            let Some(step) = routine.steps.get(index) else {
                continue;
            };
            let room = layout.label_room(n);
            let label = escape(&step_label(index, step, room), room.max(3));
            svg.put(text(layout.x_of(at) + 3, LANES_Y - 4, "", label));
        }
    });
}

/// The time axis: its line and ticks, the tick times in minutes, and the unit.
fn axis(svg: &mut Svg, layout: &Layout) {
    let axis_y = layout.axis_y;
    let ticks: Vec<u64> = layout.ticks();
    let tick_x = |s: u64| layout.x_of(Duration::from_secs(s));
    // The axis line shares its line with the group's start tag.
    svg.put(format_args!("<g stroke=\"#333\">{}", across(axis_y)));
    for &s in &ticks {
        let x = tick_x(s);
        svg.put(Line {
            x1: x,
            y1: axis_y,
            x2: x,
            y2: axis_y + 4,
        });
    }
    svg.put("</g>");
    svg.group("text-anchor=\"middle\" fill=\"#333\"", |svg| {
        for &s in &ticks {
            svg.put(text(tick_x(s), axis_y + 16, "", clock(s)));
        }
    });
    svg.put(text(12, axis_y + 16, " fill=\"#333\"", "minutes"));
}

/// Legend: every step that played, numbered, with what it does.
fn legend(svg: &mut Svg, routine: &Routine, layout: &Layout) {
    svg.group("fill=\"#333\"", |svg| {
        for (row, &index) in layout.played.iter().enumerate() {
            let Some(step) = routine.steps.get(index) else {
                continue;
            };
            let y = layout.legend_row_y(row);
            svg.put(format_args!(
                "{}{}",
                text(12, y, " font-weight=\"bold\"", index + 1),
                text(32, y, "", escape(&step_summary(step), MAX_TEXT + 20))
            ));
        }
    });
}

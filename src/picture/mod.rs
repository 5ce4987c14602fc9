//! A session drawn as an SVG picture: one lane per zone, level over time, heat and the steps.
//!
//! The picture comes from the engine's own frames, run in virtual time, so it shows exactly
//! what the motors would do and is the same bytes on every run and every machine.
//!
//! The SVG is written by hand rather than with an SVG crate: the picture needs a handful of
//! elements (paths, rects, lines, text), so a crate would add a dependency for little code;
//! writing it here keeps the byte output under our control (integer coordinates, a fixed
//! element order), which the determinism check and the checked-in docs rely on. The one thing
//! a crate would otherwise give, escaping, is [`text::escape`] with its own tests.
//!
//! Here are the entry points; `layout` places everything (pure geometry and the level
//! envelope), `text` words it (clocks, labels, escaping), and `svg` writes the elements.

mod layout;
mod svg;
mod text;

use crate::core::engine::EngineError;
use crate::core::{Action, Command, Engine, EngineConfig, Rejection, Routine, Settings};
use crate::timeline::{Timeline, simulate_with};
use layout::{Envelope, EnvelopeBuilder, Layout};
use std::fmt::Write as _;
use std::time::Duration;
use text::clock_long;

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
/// `config.frame_hz` (two when the session does not end after `minutes`).
pub(crate) fn routine_svg(
    config: &EngineConfig,
    routine: &Routine,
    minutes: u32,
    intensity: u32,
    heat: bool,
) -> Result<String, PictureError> {
    let (engine, start) = session(config, routine, minutes, intensity, heat);
    draw_streamed(engine, &start, Duration::from_secs(u64::from(minutes) * 60))
}

/// A new engine with only `routine` and these settings, on every call, and the command that
/// starts the session (forced past the relaxer guard).
fn session<'a>(
    config: &'a EngineConfig,
    routine: &'a Routine,
    minutes: u32,
    intensity: u32,
    heat: bool,
) -> (impl Fn() -> Result<Engine, EngineError> + 'a, Command) {
    let settings = Settings {
        routine: routine.id.clone(),
        intensity,
        minutes,
        heat,
        relaxer_date: None,
    };
    let engine = move || {
        Engine::new(
            config.clone(),
            vec![routine.clone()],
            settings.clone(),
            Default::default(),
        )
    };
    let start = Command {
        routine: Some(routine.id.clone()),
        minutes: Some(minutes),
        intensity: Some(intensity),
        heat: Some(heat),
        force: true,
        ..Command::action(Action::Start)
    };
    (engine, start)
}

/// Draws the session `start` begins on a new `engine()`, its frames streamed into the
/// envelope rather than kept (the daemon draws on a blocking thread, and a kept session of
/// tens of thousands of frames stayed in that thread's malloc arena after it was freed).
/// The columns depend on where the session ends, so the first run assumes `expected`; a
/// session the engine ended elsewhere is run once more with the end it had.
fn draw_streamed(
    engine: impl Fn() -> Result<Engine, EngineError>,
    start: &Command,
    expected: Duration,
) -> Result<String, PictureError> {
    let streamed = |end: Duration| -> Result<(Timeline, Envelope), PictureError> {
        let engine = engine()?;
        let mut envelope = EnvelopeBuilder::new(engine.config().channels.count(), end);
        let timeline = simulate_with(engine, start, |at, frame| envelope.push(at, &frame))?;
        Ok((timeline, envelope.finish()))
    };
    let (mut timeline, mut envelope) = streamed(expected)?;
    let end = Layout::end(&timeline);
    if end != expected {
        (timeline, envelope) = streamed(end)?;
    }
    Ok(svg::draw(
        &timeline,
        &Layout::with_envelope(&timeline, envelope),
    ))
}

/// Intensity the library's pictures are drawn at (the default a new user starts with).
pub(crate) const LIBRARY_INTENSITY: u32 = 60;

/// The routine library as documentation: a Markdown page and one picture per routine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryDocs {
    /// `routines.md`: every routine's name, id, length, description and picture.
    pub markdown: String,
    /// `(file name, SVG)` per routine, the file named `<id>.svg`, for the `routines/` folder.
    pub pictures: Vec<(String, String)>,
}

/// Documents `routines`: each drawn for one pass (capped at the longest session) at
/// [`LIBRARY_INTENSITY`] without heat, linked from the page as `routines/<id>.svg`.
pub fn library_docs(
    config: &EngineConfig,
    routines: &[Routine],
) -> Result<LibraryDocs, PictureError> {
    let mut markdown = String::from(
        "# Routines\n\n\
         Every routine as a picture of one session: a lane per zone (left motors above the \
         line, right below; the light band is how far the pressure pulses, the dark core the \
         pressure that stays), the heater, and each step numbered at its start. Drawn at \
         60 % intensity from the engine's own frames.\n\n\
         Generated by `massaged --config /dev/null routines --markdown docs`; CI fails when a \
         routine changes without its picture. Your own routines from the config are drawn the \
         same way by `massaged simulate ROUTINE --format svg > routine.svg`.\n",
    );
    let mut pictures = Vec::with_capacity(routines.len());
    for routine in routines {
        let seconds = routine.duration().as_secs();
        let minutes = (seconds.div_ceil(60) as u32).clamp(1, config.max_session_minutes);
        let svg = routine_svg(config, routine, minutes, LIBRARY_INTENSITY, false)?;
        let file = format!("{}.svg", routine.id);
        let _ = write!(
            markdown,
            "\n## {}\n\n`{}` · {} · {} steps\n\n{}\n\n![{}](routines/{file})\n",
            routine.name,
            routine.id,
            clock_long(seconds),
            routine.steps.len(),
            routine.description,
            routine.name,
        );
        pictures.push((file, svg));
    }
    Ok(LibraryDocs { markdown, pictures })
}

/// Draws a simulated session (see [`crate::timeline::simulate`]).
pub fn timeline_svg(timeline: &Timeline) -> String {
    svg::draw(timeline, &Layout::new(timeline))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{builtin_routine as builtin, builtin_routines};
    use crate::core::Zone;
    use crate::timeline::simulate;
    use text::escape;

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
    fn streamed_pictures_are_the_pictures_of_the_kept_frames() {
        let config = EngineConfig::default();
        for routine in builtin_routines() {
            for (minutes, heat) in [(1, false), (7, true), (config.max_session_minutes, true)] {
                let streamed = routine_svg(&config, &routine, minutes, 45, heat).expect("draws");
                let (engine, start) = session(&config, &routine, minutes, 45, heat);
                let kept = simulate(engine().expect("engine"), &start).expect("simulates");
                let label = format!("{} {minutes} min", routine.id);
                assert_eq!(streamed, timeline_svg(&kept), "{label}");
            }
        }
    }

    #[test]
    fn a_session_that_ends_elsewhere_is_drawn_for_its_real_end() {
        let config = EngineConfig::default();
        let routine = builtin("temple-circles");
        let expected = routine_svg(&config, &routine, 4, 60, true).expect("draws");
        let (engine, start) = session(&config, &routine, 4, 60, true);
        for wrong in [Duration::from_secs(1), Duration::from_secs(3600)] {
            let drawn = draw_streamed(&engine, &start, wrong).expect("draws");
            assert_eq!(drawn, expected, "first run assumed {wrong:?}");
        }
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

//! Routine pictures drawn off the loop. When to draw one is the service's decision
//! (`Action::DrawPicture`); this only draws it on a blocking thread and hands it back.

use crate::core::{EngineConfig, Routine};
use crate::mqtt::routine_image::PictureKey;
use tokio::sync::mpsc;

/// A routine picture drawn off the loop, for the service's `Service::handle_picture`.
pub(super) type DrawnPicture = (PictureKey, Result<String, String>);

/// What the routine pictures are drawn from, and where they go when done.
pub(super) struct Pictures {
    config: EngineConfig,
    routines: Vec<Routine>,
    done: mpsc::Sender<DrawnPicture>,
}

impl Pictures {
    /// The drawer, and the receiver the loop takes the drawn pictures from.
    pub(super) fn new(
        config: EngineConfig,
        routines: Vec<Routine>,
    ) -> (Pictures, mpsc::Receiver<DrawnPicture>) {
        let (done, drawn) = mpsc::channel(2);
        let pictures = Pictures {
            config,
            routines,
            done,
        };
        (pictures, drawn)
    }

    /// Draws on a blocking thread: one simulated session is too slow for the loop.
    pub(super) fn draw(&self, key: PictureKey) {
        let Some(routine) = self.routines.iter().find(|r| r.id == key.routine).cloned() else {
            return;
        };
        let config = self.config.clone();
        let done = self.done.clone();
        tokio::task::spawn_blocking(move || {
            let drawn = crate::picture::routine_svg(
                &config,
                &routine,
                key.minutes,
                key.intensity,
                key.heat,
            )
            .map_err(|error| error.to_string());
            // The loop may have ended (shutdown): nothing is left to publish to.
            let _ = done.blocking_send((key, drawn));
        });
    }
}

//! The "Routine" picture for Home Assistant: drawn by the shell when the selection changed or a
//! republish is due, within [`PictureSchedule`]'s rate bound, and only while connected; a
//! picture of a superseded selection is dropped.

use super::{Action, Service};
use crate::mqtt::routine_image::{PictureKey, PictureSchedule};
use std::time::Instant;

impl Service {
    /// Asks the shell to draw the routine picture when the selection changed or a republish
    /// is due, within the picture's rate bound.
    pub(super) fn schedule_picture(&mut self, now: Instant) {
        let Some(picture) = self.picture.as_mut() else {
            return;
        };
        let settings = self.engine.settings();
        picture.select(PictureKey {
            routine: settings.routine.clone(),
            minutes: settings.minutes,
            intensity: settings.intensity,
            heat: settings.heat,
        });
        if !self.connected {
            return;
        }
        if let Some(key) = picture.poll_publish(now) {
            self.actions.push_back(Action::DrawPicture(key));
        }
    }

    /// When the next picture may be drawn; none while the broker is away.
    pub(super) fn picture_due(&self) -> Option<Instant> {
        self.picture
            .as_ref()
            .filter(|_| self.connected)
            .and_then(PictureSchedule::poll_timeout)
    }

    /// A picture the shell drew for `key`: published, retained, unless a newer selection
    /// superseded it meanwhile.
    pub(crate) fn handle_picture(&mut self, key: &PictureKey, drawn: Result<String, String>) {
        if self.picture.as_ref().and_then(PictureSchedule::published) != Some(key) {
            return;
        }
        match drawn {
            Ok(svg) => {
                self.publish_retained(self.topics.routine_image.clone(), svg.into_bytes());
            }
            Err(error) => {
                tracing::warn!(routine = %key.routine, %error, "could not draw the routine picture");
            }
        }
    }
}

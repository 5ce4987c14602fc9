//! The "Routine" image entity: a picture of the selected routine at the selected length,
//! intensity and heat, published retained as SVG on `{root}/routine_image`.
//!
//! `PictureSchedule` decides when to publish (pure, virtual-time tests): when the selection
//! changes, on (re)connect and on Home Assistant's birth, but never more often than once per
//! `min_interval`, so a dragged intensity slider costs one picture per interval, the last one.

use std::time::{Duration, Instant};

/// MIME type of the published picture (the image entity's `content_type`).
pub(crate) const CONTENT_TYPE: &str = "image/svg+xml";

/// Shortest time between two pictures by default.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_secs(2);

/// What the picture shows; a different key needs a new picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PictureKey {
    /// Routine id.
    pub(crate) routine: String,
    /// Session length in minutes.
    pub(crate) minutes: u32,
    /// User level in percent.
    pub(crate) intensity: u32,
    /// Whether the session heats.
    pub(crate) heat: bool,
}

/// When to publish the routine picture.
#[derive(Debug, Clone)]
pub(crate) struct PictureSchedule {
    min_interval: Duration,
    wanted: Option<PictureKey>,
    published: Option<PictureKey>,
    last_publish: Option<Instant>,
    /// Publish again even when unchanged (connect, Home Assistant birth).
    again: bool,
}

impl PictureSchedule {
    /// A schedule that publishes at most once per `min_interval`.
    pub fn new(min_interval: Duration) -> PictureSchedule {
        PictureSchedule {
            min_interval,
            wanted: None,
            published: None,
            last_publish: None,
            again: false,
        }
    }

    /// The current selection; call after every input (cheap when unchanged).
    pub(crate) fn select(&mut self, key: PictureKey) {
        if self.wanted.as_ref() != Some(&key) {
            self.wanted = Some(key);
        }
    }

    /// The broker connection is (re)established or Home Assistant came online: publish the
    /// current picture again, within the rate bound.
    pub(crate) fn republish(&mut self) {
        self.again = true;
    }

    /// The key last handed out by `poll_publish`: a picture drawn for another one is stale.
    pub(crate) fn published(&self) -> Option<&PictureKey> {
        self.published.as_ref()
    }

    fn pending(&self) -> bool {
        self.wanted.is_some() && (self.again || self.wanted != self.published)
    }

    /// When the next picture is due, if one is pending; `None` while nothing is to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.pending() {
            return None;
        }
        // Never published: due at once; the shell calls `poll_publish` after every input.
        self.last_publish.map(|at| at + self.min_interval)
    }

    /// The picture to publish now, if one is pending and the rate bound allows it.
    pub(crate) fn poll_publish(&mut self, now: Instant) -> Option<PictureKey> {
        if !self.pending() {
            return None;
        }
        if self
            .last_publish
            .is_some_and(|at| now.saturating_duration_since(at) < self.min_interval)
        {
            return None;
        }
        self.again = false;
        self.last_publish = Some(now);
        self.published = self.wanted.clone();
        self.wanted.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(intensity: u32) -> PictureKey {
        PictureKey {
            routine: "full-scalp".into(),
            minutes: 10,
            intensity,
            heat: false,
        }
    }

    #[test]
    fn the_first_selection_is_published_at_once_and_only_once() {
        let t0 = Instant::now();
        let mut schedule = PictureSchedule::new(MIN_INTERVAL);
        assert_eq!(schedule.poll_publish(t0), None, "nothing selected yet");
        schedule.select(key(60));
        assert_eq!(schedule.poll_publish(t0), Some(key(60)));
        schedule.select(key(60));
        assert_eq!(schedule.poll_publish(t0 + Duration::from_secs(60)), None);
        assert_eq!(
            schedule.poll_timeout(),
            None,
            "no timer while nothing changes"
        );
    }

    #[test]
    fn a_dragged_slider_costs_one_picture_per_interval_the_last_value() {
        let t0 = Instant::now();
        let mut schedule = PictureSchedule::new(MIN_INTERVAL);
        schedule.select(key(10));
        assert_eq!(schedule.poll_publish(t0), Some(key(10)));
        let mut published = Vec::new();
        // 40 changes over 2 s: one every 50 ms.
        for i in 1..=40u32 {
            let now = t0 + Duration::from_millis(50 * u64::from(i));
            schedule.select(key(10 + i));
            published.extend(schedule.poll_publish(now));
        }
        assert_eq!(
            published,
            vec![key(50)],
            "due at t0 + 2 s, with the value then"
        );
        schedule.select(key(77));
        let at = t0 + Duration::from_secs(2);
        assert_eq!(schedule.poll_timeout(), Some(at + MIN_INTERVAL));
        assert_eq!(
            schedule.poll_publish(at + MIN_INTERVAL - Duration::from_millis(1)),
            None
        );
        assert_eq!(schedule.poll_publish(at + MIN_INTERVAL), Some(key(77)));
    }

    #[test]
    fn birth_and_reconnect_republish_the_unchanged_picture() {
        let t0 = Instant::now();
        let mut schedule = PictureSchedule::new(MIN_INTERVAL);
        schedule.select(key(60));
        assert!(schedule.poll_publish(t0).is_some());
        schedule.republish();
        assert_eq!(schedule.poll_timeout(), Some(t0 + MIN_INTERVAL));
        assert_eq!(schedule.poll_publish(t0 + MIN_INTERVAL), Some(key(60)));
        assert_eq!(schedule.poll_publish(t0 + MIN_INTERVAL * 5), None);
    }

    #[test]
    fn changing_back_before_the_bound_publishes_nothing_new() {
        let t0 = Instant::now();
        let mut schedule = PictureSchedule::new(MIN_INTERVAL);
        schedule.select(key(60));
        assert!(schedule.poll_publish(t0).is_some());
        schedule.select(key(61));
        schedule.select(key(60));
        assert_eq!(schedule.poll_timeout(), None);
        assert_eq!(schedule.poll_publish(t0 + MIN_INTERVAL), None);
    }
}

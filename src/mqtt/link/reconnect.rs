//! The reconnect policy of the poll task: how long to wait after a connection or an attempt
//! ends, from which backoff, and whether a lost connection was a client-id takeover.
//!
//! A broker that closes us because another client connected with our client id (MQTT 5
//! reason "session taken over", or two closes in a row right after the ConnAck) is not fought
//! in a loop: it is warned about once and retried with a long backoff (10 s doubling to
//! 5 min). Pure: time comes in as an argument, the RNG at construction.

use super::backoff::Backoff;
use rumqttc::v5::mqttbytes::v5::DisconnectReasonCode;
use rumqttc::v5::{ConnectionError, StateError};
use std::time::Duration;
use tokio::time::Instant;

/// First delay after a client-id takeover; doubles up to [`TAKEOVER_BACKOFF_MAX`].
const TAKEOVER_BACKOFF_MIN: Duration = Duration::from_secs(10);
/// Longest delay after repeated client-id takeovers.
const TAKEOVER_BACKOFF_MAX: Duration = Duration::from_secs(300);
/// A connection the broker ends within this of its ConnAck counts as a quick close; two in a
/// row are taken for a client-id takeover when the broker does not say so (MQTT 5 reason
/// "session taken over"): it keeps accepting us and then drops us for the other client.
const QUICK_CLOSE: Duration = Duration::from_secs(3);
/// A connection that lasted this long resets the backoff; a broker that accepts and then drops
/// every connection at once keeps growing it instead of being hammered at `backoff_min`.
const STABLE_CONNECTION: Duration = Duration::from_secs(10);

/// Whether the broker closed us because another client connected with our client id.
pub(super) fn is_takeover(error: &ConnectionError) -> bool {
    matches!(
        error,
        ConnectionError::MqttState(StateError::ServerDisconnect {
            reason_code: DisconnectReasonCode::SessionTakenOver,
            ..
        })
    )
}

/// How a connection or an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    /// An attempt failed before any ConnAck: the broker is away or refused us.
    AttemptFailed,
    /// A connection that had been up was lost.
    Lost,
    /// A connection that had been up was taken over by another client with our client id;
    /// `first` when not yet warned about since the last stable connection.
    TakenOver {
        /// Whether this takeover deserves the warning (later ones are logged at debug).
        first: bool,
    },
}

/// What to do after an ending: report it as `ending`, then wait `delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Retry {
    pub(super) ending: Ending,
    pub(super) delay: Duration,
}

/// The poll task's reconnect state: the two backoffs and what the last connections looked like.
#[derive(Debug)]
pub(super) struct Reconnect {
    backoff: Backoff,
    takeover_backoff: Backoff,
    rng: fastrand::Rng,
    /// When the current connection got its ConnAck; `None` between connections.
    connected_since: Option<Instant>,
    /// Connections in a row that ended within [`QUICK_CLOSE`].
    quick_closes: u32,
    takeover_logged: bool,
}

impl Reconnect {
    /// Retrying with `backoff` normally and with the takeover backoff after a takeover,
    /// drawing jitter from `rng`.
    pub(super) fn new(backoff: Backoff, rng: fastrand::Rng) -> Reconnect {
        Reconnect {
            backoff,
            takeover_backoff: Backoff::new(TAKEOVER_BACKOFF_MIN, TAKEOVER_BACKOFF_MAX),
            rng,
            connected_since: None,
            quick_closes: 0,
            takeover_logged: false,
        }
    }

    /// The broker acknowledged a connection at `now`.
    pub(super) fn connected(&mut self, now: Instant) {
        self.connected_since = Some(now);
    }

    /// Delay before the next attempt when this one could not even start (TLS settings).
    pub(super) fn attempt_skipped(&mut self) -> Duration {
        self.backoff.next_delay(&mut self.rng)
    }

    /// The connection, or the attempt, ended at `now` with an error; `broker_says_takeover`
    /// when the broker gave "session taken over" as the reason ([`is_takeover`]).
    pub(super) fn ended(&mut self, now: Instant, broker_says_takeover: bool) -> Retry {
        let lasted = self
            .connected_since
            .take()
            .map(|since| now.saturating_duration_since(since));
        match lasted {
            Some(lasted) if lasted < QUICK_CLOSE => {
                self.quick_closes = self.quick_closes.saturating_add(1);
            }
            // A failed attempt (`None`): the broker is away, not another client.
            Some(_) | None => self.quick_closes = 0,
        }
        let takeover = broker_says_takeover || self.quick_closes >= 2;
        if lasted.is_some_and(|lasted| lasted >= STABLE_CONNECTION) {
            // The connection held: the next attempt starts from the floor, not from the
            // ceiling that the failures before this connection had reached.
            self.backoff.reset();
            if !takeover {
                self.takeover_backoff.reset();
                self.takeover_logged = false;
            }
        }
        let delay = if takeover {
            self.takeover_backoff.next_delay(&mut self.rng)
        } else {
            self.backoff.next_delay(&mut self.rng)
        };
        if lasted.is_none() {
            return Retry {
                ending: Ending::AttemptFailed,
                delay,
            };
        }
        let ending = if takeover {
            let first = !self.takeover_logged;
            self.takeover_logged = true;
            Ending::TakenOver { first }
        } else {
            Ending::Lost
        };
        Retry { ending, delay }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(30);

    fn reconnect() -> Reconnect {
        Reconnect::new(Backoff::new(MIN, MAX), fastrand::Rng::with_seed(5))
    }

    /// Connects at `at` and ends the connection `lasted` later.
    fn connection(reconnect: &mut Reconnect, at: &mut Instant, lasted: Duration) -> Retry {
        reconnect.connected(*at);
        *at += lasted;
        let retry = reconnect.ended(*at, false);
        *at += retry.delay;
        retry
    }

    #[test]
    fn the_broker_naming_a_takeover_gets_the_long_backoff_and_one_warning() {
        let mut reconnect = reconnect();
        let mut now = Instant::now();
        reconnect.connected(now);
        now += Duration::from_secs(60);
        let retry = reconnect.ended(now, true);
        assert_eq!(retry.ending, Ending::TakenOver { first: true });
        assert_eq!(retry.delay, TAKEOVER_BACKOFF_MIN);
        now += retry.delay;
        reconnect.connected(now);
        now += Duration::from_secs(60);
        let retry = reconnect.ended(now, true);
        // Stable connections do not end a takeover: warned once, the backoff keeps growing.
        assert_eq!(retry.ending, Ending::TakenOver { first: false });
        assert!(retry.delay >= TAKEOVER_BACKOFF_MIN && retry.delay <= 2 * TAKEOVER_BACKOFF_MIN);
    }

    #[test]
    fn two_quick_closes_in_a_row_are_a_takeover() {
        let mut reconnect = reconnect();
        let mut now = Instant::now();
        let quick = QUICK_CLOSE - Duration::from_millis(1);
        let retry = connection(&mut reconnect, &mut now, quick);
        assert_eq!(retry.ending, Ending::Lost);
        assert!(retry.delay < TAKEOVER_BACKOFF_MIN, "{retry:?}");
        let retry = connection(&mut reconnect, &mut now, quick);
        assert_eq!(retry.ending, Ending::TakenOver { first: true });
        assert!(retry.delay >= TAKEOVER_BACKOFF_MIN, "{retry:?}");
        let retry = connection(&mut reconnect, &mut now, quick);
        assert_eq!(retry.ending, Ending::TakenOver { first: false });
    }

    #[test]
    fn a_failed_attempt_or_a_longer_connection_breaks_a_run_of_quick_closes() {
        let mut reconnect = reconnect();
        let mut now = Instant::now();
        let quick = Duration::from_secs(1);
        connection(&mut reconnect, &mut now, quick);
        let failed = reconnect.ended(now, false);
        assert_eq!(failed.ending, Ending::AttemptFailed);
        assert!(failed.delay < TAKEOVER_BACKOFF_MIN, "{failed:?}");
        assert_eq!(
            connection(&mut reconnect, &mut now, quick).ending,
            Ending::Lost
        );
        assert_eq!(
            connection(&mut reconnect, &mut now, QUICK_CLOSE).ending,
            Ending::Lost
        );
        assert_eq!(
            connection(&mut reconnect, &mut now, quick).ending,
            Ending::Lost
        );
    }

    #[test]
    fn a_stable_connection_lost_normally_resets_the_takeover_state() {
        let mut reconnect = reconnect();
        let mut now = Instant::now();
        reconnect.connected(now);
        assert_eq!(
            reconnect.ended(now, true).ending,
            Ending::TakenOver { first: true }
        );
        let retry = connection(&mut reconnect, &mut now, STABLE_CONNECTION);
        assert_eq!(retry.ending, Ending::Lost);
        reconnect.connected(now);
        let retry = reconnect.ended(now, true);
        assert_eq!(retry.ending, Ending::TakenOver { first: true });
        assert_eq!(retry.delay, TAKEOVER_BACKOFF_MIN);
    }

    #[test]
    fn a_stable_connection_lost_retries_from_the_floor_not_from_earlier_failures() {
        let mut reconnect = reconnect();
        let mut now = Instant::now();
        for _ in 0..10 {
            let failed = reconnect.ended(now, false);
            assert_eq!(failed.ending, Ending::AttemptFailed);
            now += failed.delay;
        }
        let retry = connection(&mut reconnect, &mut now, Duration::from_secs(3600));
        assert_eq!(retry.ending, Ending::Lost);
        assert_eq!(
            retry.delay, MIN,
            "first retry after an hour online: {retry:?}"
        );
        // A connection that did not hold keeps growing the backoff from there.
        let retry = connection(&mut reconnect, &mut now, QUICK_CLOSE);
        assert!(retry.delay <= 2 * MIN, "{retry:?}");
    }

    #[test]
    fn only_session_taken_over_is_named_a_takeover() {
        let disconnect = |reason_code| {
            ConnectionError::MqttState(StateError::ServerDisconnect {
                reason_code,
                reason_string: None,
            })
        };
        assert!(is_takeover(&disconnect(
            DisconnectReasonCode::SessionTakenOver
        )));
        assert!(!is_takeover(&disconnect(
            DisconnectReasonCode::ServerShuttingDown
        )));
        let down = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(!is_takeover(&ConnectionError::Io(down)));
    }
}

//! The "Last message" the device shows: why the last command was refused, until the next
//! command is accepted. A refused press in Home Assistant is then never silent.

use crate::core::Rejection;

/// Home Assistant keeps at most 255 characters of a state.
const MAX_CHARS: usize = 255;

/// Policy for the state's `last_message` field (pure; the shell republishes the state when a
/// call returns `true`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LastMessage {
    message: Option<String>,
}

impl LastMessage {
    /// The message to show, `None` when the last command was accepted (or none came yet).
    pub(crate) fn get(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// A command was refused; returns whether the message changed (then republish the state).
    pub(crate) fn on_rejected(&mut self, rejection: &Rejection) -> bool {
        let message: String = rejection.message.chars().take(MAX_CHARS).collect();
        if self.message.as_deref() == Some(message.as_str()) {
            return false;
        }
        self.message = Some(message);
        true
    }

    /// A command was accepted; returns whether a message was cleared.
    pub(crate) fn on_accepted(&mut self) -> bool {
        self.message.take().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::RejectCode;

    fn guard() -> Rejection {
        Rejection::new(
            RejectCode::GuardActive,
            "relaxer guard: no massage within 3 days before the relaxer",
        )
    }

    #[test]
    fn a_refusal_shows_until_the_next_accepted_command() {
        let mut last = LastMessage::default();
        assert_eq!(last.get(), None);
        assert!(last.on_rejected(&guard()));
        assert_eq!(
            last.get(),
            Some("relaxer guard: no massage within 3 days before the relaxer")
        );
        assert!(last.on_accepted());
        assert_eq!(last.get(), None);
        assert!(!last.on_accepted(), "nothing to clear twice");
    }

    #[test]
    fn the_same_refusal_again_changes_nothing() {
        // A flood of identical refusals (rate_limited) must not become a flood of states.
        let mut last = LastMessage::default();
        assert!(last.on_rejected(&guard()));
        assert!(!last.on_rejected(&guard()));
        let other = Rejection::new(RejectCode::NotRunning, "pause needs a running session");
        assert!(last.on_rejected(&other));
        assert_eq!(last.get(), Some("pause needs a running session"));
    }

    #[test]
    fn long_messages_are_cut_to_what_home_assistant_keeps() {
        let mut last = LastMessage::default();
        last.on_rejected(&Rejection::new(RejectCode::UnknownRoutine, "é".repeat(300)));
        assert_eq!(last.get().map(|m| m.chars().count()), Some(255));
    }
}

//! Whether a command may be applied, and the relaxer guard: the engine's refusals.

use super::Engine;
use crate::core::command::{Action, Command, RejectCode, Rejection};
use crate::core::date::Date;
use crate::core::limits;
use crate::core::output::{GuardReason, SessionState};

impl Engine {
    /// Why the relaxer guard refuses starts, with `relaxer` as the relaxer date and
    /// `date_lost` telling whether the saved date was lost; `None` when it does not.
    pub(super) fn guard_with(&self, relaxer: Option<Date>, date_lost: bool) -> Option<GuardReason> {
        if date_lost {
            return Some(GuardReason::RelaxerDateLost);
        }
        let days = self.today?.days_until(relaxer?);
        (days >= 0 && days <= i64::from(self.config.guard_days_before))
            .then_some(GuardReason::RelaxerSoon)
    }

    /// The index of the routine `cmd` names, if any, or the reason `cmd` is refused.
    pub(super) fn validate(&self, cmd: &Command) -> Result<Option<usize>, Rejection> {
        let routine = match &cmd.routine {
            Some(name) => Some(self.find_routine(name).ok_or_else(|| {
                let shown: String = name.chars().take(64).collect();
                Rejection::new(
                    RejectCode::UnknownRoutine,
                    format!("no routine named '{shown}'"),
                )
            })?),
            None => None,
        };
        if let Some(intensity) = cmd.intensity
            && !limits::INTENSITY.contains(&intensity)
        {
            return Err(out_of_range("intensity", intensity, limits::INTENSITY));
        }
        let minutes = limits::session_minutes(self.config.max_session_minutes);
        if let Some(m) = cmd.minutes
            && !minutes.contains(&m)
        {
            return Err(out_of_range("minutes", m, minutes));
        }
        if cmd.heat == Some(true) && self.config.channels.heat().is_none() {
            return Err(Rejection::new(
                RejectCode::OutOfRange,
                "heat: this device has no heater channel",
            ));
        }
        self.validate_action(cmd)?;
        Ok(routine)
    }

    fn validate_action(&self, cmd: &Command) -> Result<(), Rejection> {
        let state = self.state();
        match cmd.action {
            None | Some(Action::Stop) | Some(Action::ClearFault) => Ok(()),
            Some(_) if state == SessionState::Fault => Err(Rejection::new(
                RejectCode::FaultActive,
                format!(
                    "in fault ({}); send clear_fault first",
                    self.fault.as_ref().map_or("", |f| f.code.as_str())
                ),
            )),
            Some(Action::Start) if state == SessionState::Idle && !cmd.force => {
                let relaxer = cmd.relaxer_date.unwrap_or(self.settings.relaxer_date);
                // Setting the relaxer date in the same command replaces the lost one.
                let lost = self.relaxer_date_lost && cmd.relaxer_date.is_none();
                match self.guard_with(relaxer, lost) {
                    None => Ok(()),
                    Some(GuardReason::RelaxerDateLost) => Err(Rejection::new(
                        RejectCode::GuardActive,
                        "relaxer guard: the saved relaxer date was lost; set relaxer_date again, \
                         or send \"force\": true to start anyway",
                    )),
                    Some(GuardReason::RelaxerSoon) => Err(Rejection::new(
                        RejectCode::GuardActive,
                        format!(
                            "relaxer guard: no massage within {} days before the relaxer on {}; send \"force\": true to start anyway",
                            self.config.guard_days_before,
                            relaxer.map(|d| d.to_string()).unwrap_or_default()
                        ),
                    )),
                }
            }
            Some(Action::Pause) if state != SessionState::Running => Err(Rejection::new(
                RejectCode::NotRunning,
                format!("pause needs a running session; state is {}", state.as_str()),
            )),
            Some(Action::Resume) if state != SessionState::Paused => Err(Rejection::new(
                RejectCode::NotRunning,
                format!("resume needs a paused session; state is {}", state.as_str()),
            )),
            Some(Action::Skip) if self.session.is_none() => Err(Rejection::new(
                RejectCode::NotRunning,
                "skip needs a running or paused session; state is idle",
            )),
            Some(_) => Ok(()),
        }
    }
}

fn out_of_range(field: &str, value: u32, range: std::ops::RangeInclusive<u32>) -> Rejection {
    Rejection::new(
        RejectCode::OutOfRange,
        format!(
            "{field} must be {}..={}, got {value}",
            range.start(),
            range.end()
        ),
    )
}

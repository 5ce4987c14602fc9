//! The signals that end the daemon, as one future (the shutdown trigger `run` takes).

use crate::service::Signal;
use std::future::Future;
use tokio::signal::unix::{SignalKind, signal};

/// Installs handlers for SIGTERM, SIGINT, SIGHUP and SIGQUIT now (so none of them kills the
/// process with its default action from here on); the future resolves with the first to arrive.
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = Signal>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut quit = signal(SignalKind::quit())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => Signal::Terminate,
            _ = int.recv() => Signal::Interrupt,
            _ = hup.recv() => Signal::Hangup,
            _ = quit.recv() => Signal::Quit,
        }
    })
}

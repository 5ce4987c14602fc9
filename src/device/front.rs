//! The device on a thread of its own, so a slow device (a serial line waiting for its
//! acknowledgement, PWM recovery waiting for sysfs) never delays MQTT, `stop` or signals.
//!
//! The loop hands over requests without waiting: the latest frame (a newer frame replaces one
//! not yet written: only the newest levels matter), a recovery, a heartbeat, closing. The
//! thread reports failures and the results of recovery and closing back through a channel.
//! After a failed write or heartbeat the thread zeroes every output it can at once, before
//! the service even hears of it.

use super::{DeviceError, Driver};
use super::{DriverKind, DriverSection};
use crate::core::Frame;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};

/// Longest wait in `Drop` for the thread to zero and release the device.
const DROP_GRACE: Duration = Duration::from_secs(1);

/// What the device thread reports.
#[derive(Debug)]
pub(crate) enum DeviceReport {
    /// A frame or heartbeat failed; the outputs were zeroed as far as possible.
    Failed(DeviceError),
    /// The result of [`Front::recover`].
    Recovered(Result<(), DeviceError>),
    /// The device was closed (outputs off and released); the thread has ended.
    Closed(Result<(), DeviceError>),
}

/// Requests waiting for the device thread; each kind is kept once, frames latest-wins.
#[derive(Debug, Default)]
struct Requests {
    frame: Option<Frame>,
    recover: bool,
    heartbeat: bool,
    close: bool,
}

impl Requests {
    fn is_empty(&self) -> bool {
        self.frame.is_none() && !self.recover && !self.heartbeat && !self.close
    }
}

#[derive(Debug, Default)]
struct Shared {
    requests: Mutex<Requests>,
    wake: Notify,
}

impl Shared {
    fn request(&self, change: impl FnOnce(&mut Requests)) {
        // A panic while holding this lock leaves plain data behind: keep using it.
        change(&mut self.requests.lock().unwrap_or_else(PoisonError::into_inner));
        self.wake.notify_one();
    }

    fn take(&self) -> Requests {
        std::mem::take(&mut self.requests.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The loop's handle on the device thread.
#[derive(Debug)]
pub(crate) struct Front {
    shared: Arc<Shared>,
    reports: mpsc::UnboundedReceiver<DeviceReport>,
    /// Signalled when the thread has dropped the driver.
    done: std::sync::mpsc::Receiver<()>,
    kind: DriverKind,
    closed: bool,
}

/// How often the loop must ask for a serial heartbeat; `None` for backends without one.
pub(crate) fn heartbeat_interval(section: &DriverSection) -> Option<Duration> {
    (section.kind == DriverKind::Serial)
        .then(|| Duration::from_millis(section.serial.heartbeat_ms.into()))
}

impl Front {
    /// Opens the configured backend on a new thread with every output at 0.
    pub async fn open(section: &DriverSection, slots: usize) -> Result<Front, DeviceError> {
        let shared = Arc::new(Shared::default());
        let (reports_tx, reports) = mpsc::unbounded_channel();
        let (opened_tx, opened) = oneshot::channel();
        let (done_tx, done) = std::sync::mpsc::channel();
        let section = section.clone();
        let thread_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("massaged-device".into())
            .spawn(move || {
                // The serial backend is async; the thread runs its own small runtime for it.
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(serve(
                        section,
                        slots,
                        thread_shared,
                        reports_tx,
                        opened_tx,
                    )),
                    Err(source) => {
                        let _ = opened_tx.send(Err(thread_error(source)));
                    }
                }
                let _ = done_tx.send(());
            })
            .map_err(thread_error)?;
        let kind = match opened.await {
            Ok(result) => result?,
            Err(_) => {
                return Err(thread_error(std::io::Error::other(
                    "the device thread ended while opening the device",
                )));
            }
        };
        Ok(Front {
            shared,
            reports,
            done,
            kind,
            closed: false,
        })
    }

    /// The backend's kind.
    pub(crate) fn kind(&self) -> DriverKind {
        self.kind
    }

    /// Hands the frame over; a frame not written yet is replaced.
    pub fn write(&self, frame: Frame) {
        self.shared.request(|r| r.frame = Some(frame));
    }

    /// Asks for a recovery; the result comes as [`DeviceReport::Recovered`].
    pub(crate) fn recover(&self) {
        self.shared.request(|r| r.recover = true);
    }

    /// Asks for a heartbeat (skipped when a frame goes out in the same turn).
    pub(crate) fn heartbeat(&self) {
        self.shared.request(|r| r.heartbeat = true);
    }

    /// The next report; `None` once the thread has ended.
    pub(crate) async fn report(&mut self) -> Option<DeviceReport> {
        self.reports.recv().await
    }

    /// Writes what is pending, then zeroes and releases the device; waits at most `grace`.
    pub async fn close(mut self, grace: Duration) -> Result<(), DeviceError> {
        self.closed = true;
        self.shared.request(|r| r.close = true);
        let closed = async {
            while let Some(report) = self.reports.recv().await {
                if let DeviceReport::Closed(result) = report {
                    return result;
                }
            }
            Ok(())
        };
        match tokio::time::timeout(grace, closed).await {
            Ok(result) => result,
            Err(_) => Err(thread_error(std::io::Error::other(
                "the device did not close in time",
            ))),
        }
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        // Unwinding (a panic in the loop) or an early return: the thread must still zero the
        // outputs before the process ends, and the process ends when main returns.
        self.shared.request(|r| r.close = true);
        let _ = self.done.recv_timeout(DROP_GRACE);
    }
}

fn thread_error(source: std::io::Error) -> DeviceError {
    DeviceError::Io {
        path: PathBuf::from("<device thread>"),
        source,
    }
}

/// The device thread: open, then serve requests until asked to close.
async fn serve(
    section: DriverSection,
    slots: usize,
    shared: Arc<Shared>,
    reports: mpsc::UnboundedSender<DeviceReport>,
    opened: oneshot::Sender<Result<DriverKind, DeviceError>>,
) {
    let mut driver = match Driver::open(&section, slots).await {
        Ok(driver) => driver,
        Err(error) => {
            let _ = opened.send(Err(error));
            return;
        }
    };
    if let Err(error) = driver.all_off().await {
        let _ = opened.send(Err(error));
        return;
    }
    if opened.send(Ok(driver.kind())).is_err() {
        return;
    }
    // A report nobody reads any more (the loop is gone) changes nothing here.
    let report = |report| {
        let _ = reports.send(report);
    };
    // Set after a failure zeroed the outputs: later failures of the same broken device do not
    // rewrite every output again.
    let mut zeroed_after_failure = false;
    loop {
        let requests = loop {
            let requests = shared.take();
            if !requests.is_empty() {
                break requests;
            }
            shared.wake.notified().await;
        };
        if requests.recover {
            let result = driver.recover().await;
            zeroed_after_failure &= result.is_err();
            report(DeviceReport::Recovered(result));
        }
        let mut wrote = false;
        if let Some(frame) = requests.frame {
            match driver.write(&frame).await {
                Ok(()) => {
                    wrote = true;
                    zeroed_after_failure = false;
                }
                Err(error) => fail(&mut driver, error, &mut zeroed_after_failure, &report).await,
            }
        }
        // A frame is a heartbeat too; a lost serial port has nothing to keep alive.
        if requests.heartbeat
            && !wrote
            && driver.heartbeat_due().is_some()
            && let Err(error) = driver.heartbeat().await
        {
            fail(&mut driver, error, &mut zeroed_after_failure, &report).await;
        }
        if requests.close {
            report(DeviceReport::Closed(driver.close().await));
            return;
        }
    }
}

/// Zeroes what can be zeroed (once per run of failures), then reports the failure.
async fn fail(
    driver: &mut Driver,
    error: DeviceError,
    zeroed: &mut bool,
    report: &impl Fn(DeviceReport),
) {
    if !*zeroed {
        *zeroed = true;
        if let Err(off) = driver.all_off().await {
            tracing::warn!(error = %off, "could not zero the outputs after the device failed");
        }
    }
    report(DeviceReport::Failed(error));
}

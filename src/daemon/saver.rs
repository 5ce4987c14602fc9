//! Saves state off the main loop, coalescing changes within the debounce delay.

use crate::store::{SavedState, Store};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Handle to the background saver task.
pub struct Saver {
    latest: watch::Sender<Option<SavedState>>,
    task: JoinHandle<()>,
}

impl Saver {
    /// Starts the task; nothing is written until the first `save`.
    pub fn spawn(store: Store, debounce: Duration) -> Saver {
        let (latest, mut changes) = watch::channel(None::<SavedState>);
        let task = tokio::spawn(async move {
            let mut open = true;
            while open {
                if changes.changed().await.is_err() {
                    break;
                }
                // Coalesce a burst of changes; a closed channel means "flush now".
                tokio::select! {
                    _ = tokio::time::sleep(debounce) => {}
                    _ = changes.closed_sender() => open = false,
                }
                let state = changes.borrow_and_update().clone();
                if let Some(state) = state {
                    write(&store, state).await;
                }
            }
            let last = changes.borrow().clone();
            if changes.has_changed().unwrap_or(true)
                && let Some(state) = last
            {
                write(&store, state).await;
            }
        });
        Saver { latest, task }
    }

    /// Schedules `state` to be written after the debounce delay.
    pub fn save(&self, state: SavedState) {
        self.latest.send_replace(Some(state));
    }

    /// Writes what is pending now and waits for it, at most `grace`.
    pub async fn finish(self, grace: Duration) {
        let Saver { latest, task } = self;
        drop(latest);
        if tokio::time::timeout(grace, task).await.is_err() {
            tracing::warn!("saving state took too long at shutdown");
        }
    }
}

async fn write(store: &Store, state: SavedState) {
    let store = store.clone();
    let result = tokio::task::spawn_blocking(move || store.save(&state)).await;
    match result {
        Ok(Ok(())) => tracing::debug!("state saved"),
        Ok(Err(error)) => tracing::warn!(%error, "could not save state; will retry on the next change"),
        Err(error) => tracing::warn!(%error, "state save task failed"),
    }
}

//! Saves state off the main loop, coalescing changes within the debounce delay.

use crate::store::{SavedState, Store};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Handle to the background saver task.
pub struct Saver {
    latest: mpsc::UnboundedSender<SavedState>,
    task: JoinHandle<()>,
}

impl Saver {
    /// Starts the task; nothing is written until the first `save`.
    pub fn spawn(store: Store, debounce: Duration) -> Saver {
        let (latest, mut changes) = mpsc::unbounded_channel::<SavedState>();
        let task = tokio::spawn(async move {
            while let Some(mut state) = changes.recv().await {
                let deadline = tokio::time::Instant::now() + debounce;
                // Later changes within the delay replace earlier ones; a closed channel flushes now.
                let closed = loop {
                    match tokio::time::timeout_at(deadline, changes.recv()).await {
                        Ok(Some(newer)) => state = newer,
                        Ok(None) => break true,
                        Err(_) => break false,
                    }
                };
                write(&store, state).await;
                if closed {
                    break;
                }
            }
        });
        Saver { latest, task }
    }

    /// Schedules `state` to be written after the debounce delay.
    pub fn save(&self, state: SavedState) {
        // The task only ends after the sender is dropped, so this cannot fail while `self` lives.
        let _ = self.latest.send(state);
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
    let path = store.path().display().to_string();
    let result = tokio::task::spawn_blocking(move || store.save(&state)).await;
    match result {
        Ok(Ok(())) => tracing::debug!(%path, "state saved"),
        Ok(Err(error)) => {
            tracing::warn!(%path, %error, "could not save state; will retry on the next change")
        }
        Err(error) => tracing::warn!(%path, %error, "state save task failed"),
    }
}

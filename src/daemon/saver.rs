//! Writes states off the loop, one at a time and in order, and reports each result.
//! When to save (debounce, retry) is the service's decision; this only does the writing.

use crate::store::{SavedState, Store};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Handle to the background writer task.
pub(crate) struct Saver {
    requests: mpsc::UnboundedSender<SavedState>,
    results: mpsc::UnboundedReceiver<Result<(), String>>,
    task: JoinHandle<()>,
}

impl Saver {
    /// Starts the task; nothing is written until the first `save`.
    pub(crate) fn spawn(store: Store) -> Saver {
        let (requests, mut pending) = mpsc::unbounded_channel::<SavedState>();
        let (results_tx, results) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Some(state) = pending.recv().await {
                let result = write(&store, state).await;
                // Nobody listening (shutting down) is fine: the write itself happened.
                let _ = results_tx.send(result);
            }
        });
        Saver {
            requests,
            results,
            task,
        }
    }

    /// Queues `state` for writing.
    pub fn save(&self, state: SavedState) {
        // The task only ends after the sender is dropped, so this cannot fail while `self` lives.
        let _ = self.requests.send(state);
    }

    /// The result of the oldest write not reported yet.
    pub(crate) async fn result(&mut self) -> Option<Result<(), String>> {
        self.results.recv().await
    }

    /// Finishes the queued writes, waiting at most `grace`.
    pub(crate) async fn finish(self, grace: Duration) {
        let Saver { requests, task, .. } = self;
        drop(requests);
        if tokio::time::timeout(grace, task).await.is_err() {
            tracing::warn!("saving state took too long at shutdown");
        }
    }
}

async fn write(store: &Store, state: SavedState) -> Result<(), String> {
    let store = store.clone();
    let path = store.path().display().to_string();
    match tokio::task::spawn_blocking(move || store.save(&state)).await {
        Ok(Ok(())) => {
            tracing::debug!(%path, "state saved");
            Ok(())
        }
        Ok(Err(error)) => Err(error.to_string()),
        Err(error) => Err(format!("state save task failed: {error}")),
    }
}

//! In-process MQTT broker (feature `embedded-broker`), so the daemon and the tests run on a
//! machine with no broker installed. See docs/embedded-broker.md for why this crate.
//!
//! The broker runs on its own OS thread with its own single-threaded tokio runtime: it works
//! from sync and async callers alike, and stopping it drops every task and socket it owns.

use mqtt5::broker::{
    BrokerConfig, BrokerShutdownHandle, MqttBroker, StorageBackendType, StorageConfig,
};
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::JoinHandle;

/// Log filter directive that keeps the broker's per-connection chatter out of the logs; add it
/// to the daemon's `EnvFilter`.
pub const QUIET_LOG_DIRECTIVE: &str = "mqtt5=warn";

/// Why the embedded broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The broker thread or its runtime could not be created.
    #[error("embedded mqtt broker: cannot start its thread: {0}")]
    Thread(#[source] std::io::Error),
    /// Binding or configuring the listener failed (address in use, not local, ...).
    #[error("embedded mqtt broker: cannot listen on {addr}: {message}")]
    Listen {
        /// Requested address.
        addr: SocketAddr,
        /// The broker's own explanation.
        message: String,
    },
    /// The broker thread ended before reporting its address.
    #[error("embedded mqtt broker on {0} stopped during start-up")]
    Crashed(SocketAddr),
}

/// A running in-process MQTT 3.1.1/5 broker: retained messages and wills in memory only,
/// anonymous clients allowed. Stopped when dropped.
pub struct EmbeddedBroker {
    local_addr: SocketAddr,
    shutdown: BrokerShutdownHandle,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedBroker {
    /// Starts a broker listening on `addr`; port 0 picks a free port (see [`Self::local_addr`]).
    ///
    /// Returns once the listener is bound, so clients may connect at once.
    pub fn start(addr: SocketAddr) -> Result<EmbeddedBroker, BrokerError> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("mqtt-broker".into())
            .spawn(move || run_broker(addr, ready_tx))
            .map_err(BrokerError::Thread)?;
        match ready_rx.recv() {
            Ok(Ok((local_addr, shutdown))) => Ok(EmbeddedBroker {
                local_addr,
                shutdown,
                thread: Some(thread),
            }),
            Ok(Err(error)) => {
                // The thread has returned or is about to; its result carries nothing more.
                let _ = thread.join();
                Err(error)
            }
            Err(_) => {
                let _ = thread.join();
                Err(BrokerError::Crashed(addr))
            }
        }
    }

    /// The address the broker listens on (the real port when started with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops the broker and waits until its listener and connections are closed, so the same
    /// port can be bound again at once. Idempotent.
    pub fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.shutdown.shutdown();
            if thread.join().is_err() {
                tracing::error!(addr = %self.local_addr, "embedded mqtt broker thread panicked");
            }
        }
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.stop();
    }
}

type Ready = Result<(SocketAddr, BrokerShutdownHandle), BrokerError>;

/// Body of the broker thread: bind, report, serve until shut down.
fn run_broker(addr: SocketAddr, ready: mpsc::Sender<Ready>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = ready.send(Err(BrokerError::Thread(error)));
            return;
        }
    };
    runtime.block_on(async move {
        let config = BrokerConfig::default()
            .with_bind_address(addr)
            // Memory only: a restarted broker starts empty, like `persistence false` in Mosquitto.
            .with_storage(
                StorageConfig::default()
                    .with_backend(StorageBackendType::Memory)
                    .with_persistence(false),
            )
            .with_sys_topics_enabled(false);
        let mut broker = match MqttBroker::with_config(config).await {
            Ok(broker) => broker,
            Err(error) => {
                let _ = ready.send(Err(BrokerError::Listen {
                    addr,
                    message: error.to_string(),
                }));
                return;
            }
        };
        let Some(local_addr) = broker.local_addr() else {
            let _ = ready.send(Err(BrokerError::Listen {
                addr,
                message: "no listener bound".into(),
            }));
            return;
        };
        let shutdown = broker.shutdown_handle();
        let mut serving = broker.ready_receiver();
        let run = broker.run();
        tokio::pin!(run);
        // Report only once `run` listens for the shutdown signal: a shutdown sent earlier
        // would be lost and `stop` would wait forever.
        tokio::select! {
            result = &mut run => {
                let message = match result {
                    Ok(()) => "stopped before serving".to_owned(),
                    Err(error) => error.to_string(),
                };
                let _ = ready.send(Err(BrokerError::Listen { addr, message }));
                return;
            }
            _ = serving.wait_for(|serving| *serving) => {}
        }
        if ready.send(Ok((local_addr, shutdown))).is_err() {
            return;
        }
        tracing::info!(addr = %local_addr, "embedded mqtt broker listening");
        if let Err(error) = run.await {
            tracing::error!(addr = %local_addr, %error, "embedded mqtt broker failed");
        }
    });
    // Dropping the runtime here drops every connection task and closes their sockets.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_reports_the_real_port_and_restarts_on_it() {
        let mut broker = EmbeddedBroker::start(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let addr = broker.local_addr();
        assert_ne!(addr.port(), 0);
        std::net::TcpStream::connect(addr).unwrap();
        broker.stop();
        assert!(std::net::TcpStream::connect(addr).is_err());
        let again = EmbeddedBroker::start(addr).unwrap();
        assert_eq!(again.local_addr(), addr);
    }

    #[test]
    fn busy_port_is_a_clear_error() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let error = EmbeddedBroker::start(addr).err().expect("port is taken");
        assert!(error.to_string().contains(&addr.to_string()), "{error}");
    }
}

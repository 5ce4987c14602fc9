//! In-process MQTT broker (feature `embedded-broker`), so the daemon and the tests run on a
//! machine with no broker installed. See docs/embedded-broker.md for why this crate.
//!
//! The broker runs on its own OS thread with its own single-threaded tokio runtime: it works
//! from sync and async callers alike, and stopping it drops every task and socket it owns.

use crate::config::{BrokerAccess, BrokerCredentials, ExposureError, embedded_broker};
use mqtt5::broker::auth::{AuthProvider, AuthResult, RateLimitedAuthProvider};
use mqtt5::broker::{
    BrokerConfig, BrokerShutdownHandle, MqttBroker, StorageBackendType, StorageConfig,
};
use mqtt5::packet::connect::ConnectPacket;
use mqtt5::protocol::v5::reason_codes::ReasonCode;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

/// Largest MQTT packet the broker accepts from any client: the largest the daemon's own client
/// can take in (the highest `mqtt.max_payload_bytes` plus the link's headroom). A bigger packet could never reach the daemon; it closes that client's connection
/// before the broker buffers it (the default would be 256 MiB, enough to get us OOM-killed).
pub(crate) const MAX_PACKET_BYTES: usize = (1 << 20) + crate::mqtt::link::PACKET_HEADROOM;

/// Retained messages kept at once: the daemon keeps three per device (availability, state,
/// discovery); the rest is room for other clients' topics, bounded.
const MAX_RETAINED_MESSAGES: usize = 1000;

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
    /// The address is not loopback and no login is configured.
    #[error(transparent)]
    Exposure(#[from] ExposureError),
}

/// A running in-process MQTT 3.1.1/5 broker: retained messages and wills in memory only;
/// anonymous clients on loopback, or one user with a password (see [`BrokerAccess`]); packets
/// up to [`MAX_PACKET_BYTES`]. Stopped when dropped.
pub struct EmbeddedBroker {
    local_addr: SocketAddr,
    shutdown: BrokerShutdownHandle,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedBroker {
    /// Starts a broker for anonymous clients on the loopback address `addr` (any other address
    /// is refused); port 0 picks a free port (see [`Self::local_addr`]).
    ///
    /// Returns once the listener is bound, so clients may connect at once.
    pub fn start(addr: SocketAddr) -> Result<EmbeddedBroker, BrokerError> {
        let access = BrokerAccess::new(addr, None, embedded_broker::DEFAULT_MAX_CLIENTS)?;
        EmbeddedBroker::start_with(access)
    }

    /// Starts a broker with the address, login and client limit of `access`.
    pub fn start_with(access: BrokerAccess) -> Result<EmbeddedBroker, BrokerError> {
        let addr = access.addr();
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("mqtt-broker".into())
            .spawn(move || run_broker(access, ready_tx))
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
fn run_broker(access: BrokerAccess, ready: mpsc::Sender<Ready>) {
    let addr = access.addr();
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
            .with_sys_topics_enabled(false)
            .with_max_clients(access.max_clients())
            .with_max_packet_size(MAX_PACKET_BYTES)
            .with_max_retained_messages(MAX_RETAINED_MESSAGES)
            .with_max_retained_message_size(MAX_PACKET_BYTES);
        // With a user, our provider replaces the default (allow all) before `run` accepts
        // the first connection.
        let broker = MqttBroker::with_config(config).await.map(|broker| {
            match access.credentials() {
                None => broker,
                Some(user) => {
                    let user: Arc<dyn AuthProvider> = Arc::new(OneUser(user.clone()));
                    // Five failed logins per address or user name in a minute lock it out.
                    broker.with_auth_provider(Arc::new(
                        RateLimitedAuthProvider::with_default_limits(user),
                    ))
                }
            }
        });
        let mut broker = match broker {
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

/// Accepts exactly one user name and password; everything else, anonymous clients included,
/// is refused with "bad user name or password". Authenticated clients may use every topic.
struct OneUser(BrokerCredentials);

impl OneUser {
    /// Publish and subscribe are allowed to the configured user only.
    fn is_the_user(&self, user: Option<&str>) -> bool {
        user == Some(self.0.username.as_str())
    }
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl AuthProvider for OneUser {
    fn authenticate<'a>(
        &'a self,
        connect: &'a ConnectPacket,
        client: SocketAddr,
    ) -> Boxed<'a, mqtt5::Result<AuthResult>> {
        let matches = connect.username.as_deref() == Some(self.0.username.as_str())
            && connect
                .password
                .as_deref()
                .is_some_and(|password| same_secret(password, self.0.password.as_bytes()));
        if !matches {
            tracing::warn!(%client, username = ?connect.username, "embedded mqtt broker: login refused");
        }
        Box::pin(async move {
            Ok(if matches {
                AuthResult::success_with_user(self.0.username.clone())
            } else {
                AuthResult::fail(ReasonCode::BadUsernameOrPassword)
            })
        })
    }

    fn authorize_publish<'a>(
        &'a self,
        _client_id: &str,
        user: Option<&'a str>,
        _topic: &'a str,
    ) -> Boxed<'a, bool> {
        Box::pin(async move { self.is_the_user(user) })
    }

    fn authorize_subscribe<'a>(
        &'a self,
        _client_id: &str,
        user: Option<&'a str>,
        _topic_filter: &'a str,
    ) -> Boxed<'a, bool> {
        Box::pin(async move { self.is_the_user(user) })
    }
}

/// Compares in time independent of where the first difference is, so response times do not
/// reveal how much of a guessed password was right.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let differing = given
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    given.len() == expected.len() && differing == 0
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
    fn secrets_compare_exactly() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(!same_secret(b"s3cre", b"s3cret"));
        assert!(!same_secret(b"s3cret!", b"s3cret"));
        assert!(!same_secret(b"S3cret", b"s3cret"));
        assert!(!same_secret(b"", b"s3cret"));
    }

    #[test]
    fn start_refuses_a_non_loopback_address() {
        let error = EmbeddedBroker::start(SocketAddr::from(([0, 0, 0, 0], 0)))
            .err()
            .expect("anonymous on every interface");
        assert!(error.to_string().contains("[embedded_broker]"), "{error}");
    }

    #[test]
    fn busy_port_is_a_clear_error() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let error = EmbeddedBroker::start(addr).err().expect("port is taken");
        assert!(error.to_string().contains(&addr.to_string()), "{error}");
    }
}

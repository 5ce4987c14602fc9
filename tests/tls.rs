//! `mqtts://` against a real Mosquitto TLS listener, with certificates made at test time.
//!
//! Needs `mosquitto`, `mosquitto_passwd` and `openssl` (RSA keys); runs only with
//! `MASSAGED_TEST_BROKER=mosquitto` or `MASSAGED_TEST_TLS=1` (`.ci/tls` sets both up) and
//! prints a notice otherwise.

#[allow(dead_code)]
mod support;

use massaged::mqtt::link::{LinkEvent, LinkOptions, start_link};
use massaged::mqtt::tls::TlsFiles;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::daemon::DaemonProcess;
use support::{TIMEOUT, free_loopback_addr, start_mosquitto};

const USER: &str = "massaged";
const PASSWORD: &str = "pw-7f3e1c";

/// Whether to run; prints why not when skipping.
fn enabled(test: &str) -> bool {
    let mosquitto = std::env::var("MASSAGED_TEST_BROKER").as_deref() == Ok("mosquitto");
    let tls = std::env::var("MASSAGED_TEST_TLS").as_deref() == Ok("1");
    if !(mosquitto || tls) {
        eprintln!(
            "SKIPPED {test}: needs Mosquitto; set MASSAGED_TEST_BROKER=mosquitto or MASSAGED_TEST_TLS=1 (.ci/tls)"
        );
    }
    mosquitto || tls
}

/// The kinds of client key tested for mutual TLS, each as the PEM format a user is likely to
/// have (what `openssl genpkey`, `openssl genrsa -traditional`, `openssl ecparam -genkey` and
/// rcgen write).
#[derive(Debug, Clone, Copy)]
enum ClientKey {
    /// ECDSA P-256, PKCS#8 (`BEGIN PRIVATE KEY`).
    EcdsaP256Pkcs8,
    /// ECDSA P-384, SEC1 (`BEGIN EC PRIVATE KEY`).
    EcdsaP384Sec1,
    /// RSA 2048, PKCS#8 (`BEGIN PRIVATE KEY`).
    Rsa2048Pkcs8,
    /// RSA 3072, PKCS#1 (`BEGIN RSA PRIVATE KEY`).
    Rsa3072Pkcs1,
}

impl ClientKey {
    /// File name stem of this kind's certificate and key in the [`Pki`] dir.
    fn stem(self) -> &'static str {
        match self {
            ClientKey::EcdsaP256Pkcs8 => "client-p256",
            ClientKey::EcdsaP384Sec1 => "client-p384-sec1",
            ClientKey::Rsa2048Pkcs8 => "client-rsa2048",
            ClientKey::Rsa3072Pkcs1 => "client-rsa3072-pkcs1",
        }
    }

    /// The PEM line the key file must start with (proves the format under test).
    fn pem_label(self) -> &'static str {
        match self {
            ClientKey::EcdsaP256Pkcs8 | ClientKey::Rsa2048Pkcs8 => "-----BEGIN PRIVATE KEY-----",
            ClientKey::EcdsaP384Sec1 => "-----BEGIN EC PRIVATE KEY-----",
            ClientKey::Rsa3072Pkcs1 => "-----BEGIN RSA PRIVATE KEY-----",
        }
    }

    /// A new key: (the key for rcgen to sign the certificate, the key file's PEM text).
    fn generate(self) -> (KeyPair, String) {
        match self {
            ClientKey::EcdsaP256Pkcs8 => {
                let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key");
                let pem = key.serialize_pem();
                (key, pem)
            }
            ClientKey::EcdsaP384Sec1 => {
                let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("P-384 key");
                let sec1 = openssl(&["ec"], &key.serialize_pem());
                (key, sec1)
            }
            // rcgen on ring cannot generate RSA keys; OpenSSL's command line does.
            ClientKey::Rsa2048Pkcs8 => {
                let pkcs8 = openssl(
                    &[
                        "genpkey",
                        "-algorithm",
                        "RSA",
                        "-pkeyopt",
                        "rsa_keygen_bits:2048",
                    ],
                    "",
                );
                let key = KeyPair::from_pem(&pkcs8).expect("load RSA key");
                (key, pkcs8)
            }
            ClientKey::Rsa3072Pkcs1 => {
                let pkcs8 = openssl(
                    &[
                        "genpkey",
                        "-algorithm",
                        "RSA",
                        "-pkeyopt",
                        "rsa_keygen_bits:3072",
                    ],
                    "",
                );
                let key = KeyPair::from_pem(&pkcs8).expect("load RSA key");
                (key, openssl(&["pkey", "-traditional"], &pkcs8))
            }
        }
    }
}

/// Runs `openssl ARGS` with `input` on stdin; returns its stdout.
fn openssl(args: &[&str], input: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run openssl (is it installed?)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write to openssl");
    let output = child.wait_with_output().expect("openssl output");
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("openssl writes PEM text")
}

/// A CA, a server certificate for 127.0.0.1/localhost, an ECDSA P-256 client certificate
/// (`client.pem`, `client.key`), and an unrelated CA, as PEM files in a temp dir; client
/// identities with other kinds of key on request ([`Pki::client_identity`]).
struct Pki {
    dir: tempfile::TempDir,
    ca: Issuer<'static, KeyPair>,
}

impl Pki {
    fn generate() -> Pki {
        let dir = tempfile::tempdir().expect("temp dir");
        let (ca_certificate, ca) = make_ca("massaged test CA");
        let (other_ca, _) = make_ca("some other CA");
        let pki = Pki { dir, ca };
        pki.write("ca.pem", &ca_certificate.pem());
        pki.write("other-ca.pem", &other_ca.pem());

        let server_key = KeyPair::generate().expect("server key");
        let mut server = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("server params");
        server
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server = server
            .signed_by(&server_key, &pki.ca)
            .expect("sign server cert");
        pki.write("server.pem", &server.pem());
        pki.write("server.key", &server_key.serialize_pem());

        let (cert, key) = pki.client_identity(ClientKey::EcdsaP256Pkcs8);
        copy(&cert, &pki.path("client.pem"));
        copy(&key, &pki.path("client.key"));
        pki
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).expect("write pem");
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Makes a client certificate (CN = the MQTT user) with a new key of `kind`, signed by
    /// the CA; returns the certificate and key files.
    fn client_identity(&self, kind: ClientKey) -> (PathBuf, PathBuf) {
        let (key, key_pem) = kind.generate();
        assert!(
            key_pem.starts_with(kind.pem_label()),
            "{kind:?}: {key_pem:.40}"
        );
        let mut client = CertificateParams::new(Vec::<String>::new()).expect("client params");
        client.distinguished_name.push(DnType::CommonName, USER);
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client = client.signed_by(&key, &self.ca).expect("sign client cert");
        let (cert_name, key_name) = (
            format!("{}.pem", kind.stem()),
            format!("{}.key", kind.stem()),
        );
        self.write(&cert_name, &client.pem());
        self.write(&key_name, &key_pem);
        (self.path(&cert_name), self.path(&key_name))
    }
}

fn make_ca(name: &str) -> (rcgen::Certificate, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let certificate = params.self_signed(&key).expect("self-sign CA");
    (certificate, Issuer::new(params, key))
}

/// Mosquitto with one TLS listener on a free loopback port, password required.
struct TlsBroker {
    child: Child,
    port: u16,
    /// Config and password file; removed on drop.
    _dir: tempfile::TempDir,
}

impl TlsBroker {
    fn start(pki: &Pki, require_client_cert: bool) -> TlsBroker {
        let dir = tempfile::tempdir().expect("temp dir");
        let passwords = dir.path().join("passwd");
        let status = Command::new("mosquitto_passwd")
            .arg("-c")
            .arg("-b")
            .arg(&passwords)
            .arg(USER)
            .arg(PASSWORD)
            .stdout(Stdio::null())
            .status()
            .expect("run mosquitto_passwd (is mosquitto installed?)");
        assert!(status.success(), "mosquitto_passwd failed");
        for _ in 0..5 {
            let addr = free_loopback_addr();
            let config = format!(
                "per_listener_settings false\nallow_anonymous false\npassword_file {passwd}\n\
                 persistence false\nlog_type all\n\
                 listener {port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n\
                 require_certificate {require_client_cert}\n",
                passwd = passwords.display(),
                port = addr.port(),
                ca = pki.path("ca.pem").display(),
                cert = pki.path("server.pem").display(),
                key = pki.path("server.key").display(),
            );
            match start_mosquitto(dir.path(), &config, addr) {
                Ok(child) => {
                    return TlsBroker {
                        child,
                        port: addr.port(),
                        _dir: dir,
                    };
                }
                Err(error) => eprintln!("mosquitto with TLS on {addr} failed, retrying: {error}"),
            }
        }
        panic!("could not start mosquitto with TLS");
    }

    fn url(&self) -> String {
        format!("mqtts://127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Link options for the test user against `broker`, trusting `ca`; `identity` is a client
/// certificate and key for mutual TLS.
fn link_options(
    broker: &TlsBroker,
    client_id: &str,
    ca: PathBuf,
    identity: Option<(PathBuf, PathBuf)>,
) -> LinkOptions {
    let mut options = LinkOptions::new("127.0.0.1", broker.port, client_id);
    options.username = Some(USER.into());
    options.password = Some(PASSWORD.into());
    let (client_cert, client_key) = identity.unzip();
    options.tls = Some(TlsFiles {
        ca_file: Some(ca),
        client_cert,
        client_key,
    });
    options.backoff_min = Duration::from_millis(50);
    options.backoff_max = Duration::from_millis(400);
    options
}

async fn wait_for(
    events: &mut massaged::mqtt::link::Events,
    wanted: impl Fn(&LinkEvent) -> bool,
) -> LinkEvent {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(event)) if wanted(&event) => return event,
            Ok(Some(_)) => {}
            Ok(None) => panic!("link task ended"),
            Err(_) => panic!("no matching link event within {TIMEOUT:?}"),
        }
    }
}

/// Lines of the daemon log that report a failed connection attempt.
fn failed_attempts(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|line| line.contains("mqtt connection attempt failed"))
        .collect()
}

/// Waits until the daemon has logged `count` failed attempts; returns them.
fn wait_failed_attempts(daemon: &DaemonProcess, count: usize) -> Vec<String> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let log = daemon.log();
        let lines = failed_attempts(&log);
        if lines.len() >= count {
            return lines.iter().map(|line| (*line).to_owned()).collect();
        }
        assert!(
            Instant::now() < deadline,
            "fewer than {count} failed attempts logged within {TIMEOUT:?}:\n{log}"
        );
        // The log is a file; there is no change notification to wait on.
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts the attempts are spaced by at least the daemon's backoff floor (100 ms): a retry
/// loop, not a busy loop.
fn assert_backoff_spacing(lines: &[String]) {
    let times: Vec<jiff::Timestamp> = lines
        .iter()
        .map(|line| {
            let stamp = line.split_whitespace().next().expect("timestamp");
            stamp.parse().expect("RFC 3339 timestamp at line start")
        })
        .collect();
    for pair in times.windows(2) {
        let gap = pair[1].duration_since(pair[0]);
        assert!(
            gap >= jiff::SignedDuration::from_millis(95),
            "attempts only {gap:?} apart: {lines:#?}"
        );
    }
}

fn assert_alive(daemon: &mut DaemonProcess) {
    assert_eq!(
        daemon.wait_exit(Duration::ZERO),
        None,
        "daemon exited:\n{}",
        daemon.log()
    );
}

/// A fresh PKI and a TLS broker on it (requiring client certificates when
/// `require_client_cert`), or `None` when TLS tests are not enabled for `test`.
fn tls_setup(test: &str, require_client_cert: bool) -> Option<(Pki, TlsBroker)> {
    if !enabled(test) {
        return None;
    }
    let pki = Pki::generate();
    let broker = TlsBroker::start(&pki, require_client_cert);
    Some((pki, broker))
}

/// The daemon's `[mqtt]` keys for the test user: `secret` (a `password` or `password_file`
/// line), the CA file and, for mutual TLS, a client certificate and key.
fn mqtt_keys(secret: &str, ca: &Path, identity: Option<(PathBuf, PathBuf)>) -> String {
    let mut keys = format!(
        "username = \"{USER}\"\n{secret}\nca_file = \"{}\"",
        ca.display()
    );
    if let Some((cert, key)) = identity {
        keys.push_str(&format!(
            "\nclient_cert = \"{}\"\nclient_key = \"{}\"",
            cert.display(),
            key.display()
        ));
    }
    keys
}

/// The `password` line of [`mqtt_keys`].
fn password(password: &str) -> String {
    format!("password = \"{password}\"")
}

/// Waits until the daemon has logged `count` failed attempts, the first naming `problem`;
/// checks they are spaced by the backoff and the daemon still runs. Returns them.
fn assert_retried(daemon: &mut DaemonProcess, count: usize, problem: &str) -> Vec<String> {
    let attempts = wait_failed_attempts(daemon, count);
    let first = &attempts[0];
    eprintln!("logged: {first}");
    assert!(first.contains(&format!("problem=\"{problem}\"")), "{first}");
    assert_backoff_spacing(&attempts);
    assert_alive(daemon);
    attempts
}

#[tokio::test]
async fn right_ca_connects() {
    let Some((pki, broker)) = tls_setup("right_ca_connects", false) else {
        return;
    };
    let options = link_options(&broker, "tls-ok", pki.path("ca.pem"), None);
    let (_publisher, mut events) = start_link(options);
    wait_for(&mut events, |event| *event == LinkEvent::Connected).await;
}

/// Connects with `kind`'s client identity to a broker that requires a client certificate.
async fn mutual_tls_connects_with(test: &str, kind: ClientKey) {
    let Some((pki, broker)) = tls_setup(test, true) else {
        return;
    };
    let client_id = format!("tls-{}", kind.stem());
    let identity = pki.client_identity(kind);
    let options = link_options(&broker, &client_id, pki.path("ca.pem"), Some(identity));
    let (_publisher, mut events) = start_link(options);
    wait_for(&mut events, |event| *event == LinkEvent::Connected).await;
}

/// One test per kind of client key, each named for it.
macro_rules! mutual_tls_tests {
    ($($test:ident: $kind:expr,)*) => {$(
        #[tokio::test]
        async fn $test() {
            mutual_tls_connects_with(stringify!($test), $kind).await;
        }
    )*};
}

mutual_tls_tests! {
    mutual_tls_with_an_ecdsa_p256_pkcs8_client_key: ClientKey::EcdsaP256Pkcs8,
    mutual_tls_with_an_ecdsa_p384_sec1_client_key: ClientKey::EcdsaP384Sec1,
    mutual_tls_with_an_rsa_2048_pkcs8_client_key: ClientKey::Rsa2048Pkcs8,
    mutual_tls_with_an_rsa_3072_pkcs1_client_key: ClientKey::Rsa3072Pkcs1,
}

#[tokio::test]
async fn mutual_tls_without_a_client_certificate_is_refused() {
    let Some((pki, broker)) = tls_setup("mutual_tls_without_a_client_certificate_is_refused", true)
    else {
        return;
    };
    let options = link_options(&broker, "tls-no-cert", pki.path("ca.pem"), None);
    let (_publisher, mut events) = start_link(options);
    // The link keeps retrying; it must never report a connection.
    let outcome = tokio::time::timeout(Duration::from_secs(2), async {
        wait_for(&mut events, |event| *event == LinkEvent::Connected).await
    })
    .await;
    assert!(outcome.is_err(), "connected without a client certificate");
}

#[test]
fn daemon_over_mqtts_publishes_online() {
    let Some((pki, broker)) = tls_setup("daemon_over_mqtts_publishes_online", false) else {
        return;
    };
    let password_file = pki.path("mqtt-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).expect("write password file");
    let secret = format!("password_file = \"{}\"", password_file.display());
    let keys = mqtt_keys(&secret, &pki.path("ca.pem"), None);
    let mut daemon = DaemonProcess::spawn_with_url(&broker.url(), &keys, "");
    wait_online(&pki, &broker, &daemon);
    assert_alive(&mut daemon);
    assert!(!daemon.log().contains(PASSWORD), "password in the log");
}

/// The whole daemon, configured as docs/tls.md says, with an RSA client key in the PKCS#1
/// format `openssl genrsa -traditional` writes.
#[test]
fn daemon_over_mutual_tls_with_an_rsa_client_key_publishes_online() {
    let test = "daemon_over_mutual_tls_with_an_rsa_client_key_publishes_online";
    let Some((pki, broker)) = tls_setup(test, true) else {
        return;
    };
    let identity = pki.client_identity(ClientKey::Rsa3072Pkcs1);
    let keys = mqtt_keys(&password(PASSWORD), &pki.path("ca.pem"), Some(identity));
    let mut daemon = DaemonProcess::spawn_with_url(&broker.url(), &keys, "");
    wait_online(&pki, &broker, &daemon);
    assert_alive(&mut daemon);
}

/// Waits until `daemon` publishes `online` on its availability topic, observed by a client
/// with the ECDSA client identity (so this works when the broker requires certificates).
fn wait_online(pki: &Pki, broker: &TlsBroker, daemon: &DaemonProcess) {
    let availability = daemon.topic("availability");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let identity = (pki.path("client.pem"), pki.path("client.key"));
        let mut options = link_options(broker, "tls-observer", pki.path("ca.pem"), Some(identity));
        options.subscriptions = vec![availability.clone()];
        let (_publisher, mut events) = start_link(options);
        wait_for(&mut events, |event| {
            matches!(event, LinkEvent::Message { topic, payload, .. }
                if *topic == availability && payload.as_ref() == b"online")
        })
        .await;
    });
}

#[test]
fn wrong_ca_is_a_clear_error_retried_with_backoff() {
    let Some((pki, broker)) = tls_setup("wrong_ca_is_a_clear_error_retried_with_backoff", false)
    else {
        return;
    };
    let keys = mqtt_keys(&password(PASSWORD), &pki.path("other-ca.pem"), None);
    let mut daemon = DaemonProcess::spawn_with_url(&broker.url(), &keys, "");
    let attempts = assert_retried(&mut daemon, 4, "tls_certificate_rejected");
    let first = &attempts[0];
    assert!(first.contains("WARN"), "{first}");
    assert!(first.contains("UnknownIssuer"), "{first}");
    assert!(!daemon.log().contains(PASSWORD), "password in the log");
}

#[test]
fn wrong_password_is_not_authorized_and_retried() {
    let Some((pki, broker)) = tls_setup("wrong_password_is_not_authorized_and_retried", false)
    else {
        return;
    };
    let keys = mqtt_keys(&password("not-the-password"), &pki.path("ca.pem"), None);
    let mut daemon = DaemonProcess::spawn_with_url(&broker.url(), &keys, "");
    assert_retried(&mut daemon, 3, "not_authorized");
    assert!(
        !daemon.log().contains("not-the-password"),
        "password in the log"
    );
}

#[test]
fn missing_client_certificate_file_is_named_and_retried() {
    let test = "missing_client_certificate_file_is_named_and_retried";
    let Some((pki, broker)) = tls_setup(test, true) else {
        return;
    };
    let missing = pki.path("no-such-client.pem");
    let identity = (missing.clone(), pki.path("client.key"));
    let keys = mqtt_keys(&password(PASSWORD), &pki.path("ca.pem"), Some(identity));
    let mut daemon = DaemonProcess::spawn_with_url(&broker.url(), &keys, "");
    let attempts = assert_retried(&mut daemon, 3, "tls_settings");
    assert!(
        attempts[0].contains(&format!("mqtt.client_cert {}", missing.display())),
        "{}",
        attempts[0]
    );
}

/// A file that exists only from now on is picked up by the next attempt: certificates are
/// read per connection attempt.
#[test]
fn certificate_file_appearing_later_is_used_on_the_next_attempt() {
    let test = "certificate_file_appearing_later_is_used_on_the_next_attempt";
    let Some((pki, broker)) = tls_setup(test, false) else {
        return;
    };
    let late_ca = pki.path("late-ca.pem");
    let keys = mqtt_keys(&password(PASSWORD), &late_ca, None);
    let daemon = DaemonProcess::spawn_with_url(&broker.url(), &keys, "");
    wait_failed_attempts(&daemon, 1);
    copy(&pki.path("ca.pem"), &late_ca);
    let deadline = Instant::now() + TIMEOUT;
    while !daemon.log().contains("mqtt connected") {
        assert!(
            Instant::now() < deadline,
            "never connected:\n{}",
            daemon.log()
        );
        // The log is a file; there is no change notification to wait on.
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).expect("copy file");
}

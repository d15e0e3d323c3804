//! HTTPS and `wss://` control links on `SSL_PORT`, with the certificate reloaded from
//! `SSL_CERT`/`SSL_KEY` when the files change (`SSL_CHECK_RELOAD_SECONDS`), for renewal without
//! a restart. A reload that fails keeps the certificate in use.

use crate::{Error, TlsConfig};
use rustls::{
    ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use std::{
    fmt, io,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{Semaphore, mpsc},
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};

/// A client gets this long to complete its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; more connections wait to be accepted.
const MAX_HANDSHAKES: usize = 256;

/// The certificate in use, and the files it came from.
pub(crate) struct Certificates {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' contents when last loaded (compared, not their times: a renewal within the
    /// file system's time resolution still counts).
    loaded: Mutex<(Vec<u8>, Vec<u8>)>,
}

impl fmt::Debug for Certificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificates")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

fn tls_error(path: &Path, what: impl fmt::Display) -> Error {
    Error::Tls(format!("{}: {what}", path.display()))
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| tls_error(path, e))
}

fn load(
    (cert, cert_pem): (&Path, &[u8]),
    (key, key_pem): (&Path, &[u8]),
) -> Result<Arc<CertifiedKey>, Error> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(cert, e))?;
    if chain.is_empty() {
        return Err(tls_error(cert, "no certificate in the file"));
    }
    let private = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| tls_error(key, e))?;
    let signing =
        rustls::crypto::ring::sign::any_supported_type(&private).map_err(|e| tls_error(key, e))?;
    let certified = CertifiedKey::new(chain, signing);
    // A key that does not match the certificate would fail every handshake: refuse it now.
    certified
        .keys_match()
        .map_err(|e| tls_error(key, format!("does not match {}: {e}", cert.display())))?;
    Ok(Arc::new(certified))
}

impl Certificates {
    pub(crate) fn load(config: &TlsConfig) -> Result<Self, Error> {
        let contents = (read(&config.cert)?, read(&config.key)?);
        let current = load((&config.cert, &contents.0), (&config.key, &contents.1))?;
        Ok(Self {
            cert: config.cert.clone(),
            key: config.key.clone(),
            current: RwLock::new(current),
            loaded: Mutex::new(contents),
        })
    }

    /// Reloads the files if either changed since the last load; `Ok(true)` if a new
    /// certificate is in use now.
    pub(crate) fn reload_if_changed(&self) -> Result<bool, Error> {
        let contents = (read(&self.cert)?, read(&self.key)?);
        let mut loaded = self
            .loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *loaded == contents {
            return Ok(false);
        }
        // A renewal may be half written: try again at the next check if it does not load.
        let fresh = load((&self.cert, &contents.0), (&self.key, &contents.1))?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
        *loaded = contents;
        Ok(true)
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = self
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Some(Arc::clone(&current))
    }
}

/// Accepts TCP connections and completes their TLS handshakes in tasks of their own, so a slow
/// client never holds up the others; serves them to axum in the order they finish.
pub(crate) struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub(crate) fn new(listener: TcpListener, certificates: Arc<Certificates>) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_cert_resolver(certificates);
        // Control links are WebSockets, which upgrade HTTP/1.1.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let (done, ready) = mpsc::channel(MAX_HANDSHAKES);
        tokio::spawn(accept(listener, acceptor, done));
        Ok(Self { ready, local })
    }
}

async fn accept(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    done: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = Arc::clone(&handshakes).acquire_owned().await else {
            return;
        };
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Usually out of file descriptors: give the handshakes in flight a chance.
                tracing::warn!(%error, "TLS accept failed");
                tokio::task::yield_now().await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        if done.is_closed() {
            return;
        }
        let acceptor = acceptor.clone();
        let finished = done.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    let _ = finished.send((stream, peer)).await;
                }
                Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
            drop(permit);
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The acceptor task ended (shutdown): nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests_tls {
    use super::*;

    fn write_certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf, Vec<u8>) {
        let generated = rcgen::generate_simple_self_signed(vec![name.to_owned()]).expect("made");
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, generated.cert.pem()).expect("written");
        std::fs::write(&key, generated.signing_key.serialize_pem()).expect("written");
        (cert, key, generated.cert.der().to_vec())
    }

    fn served(certificates: &Certificates) -> Vec<u8> {
        let current = certificates.current.read().expect("lock");
        current.cert[0].to_vec()
    }

    #[test]
    fn a_renewed_certificate_replaces_the_old_one_and_a_broken_one_does_not() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, key, first) = write_certificate(dir.path(), "first.example");
        let config = TlsConfig {
            port: 0,
            cert: cert.clone(),
            key: key.clone(),
            reload_check: None,
        };
        let certificates = Certificates::load(&config).expect("loaded");
        assert_eq!(served(&certificates), first);
        assert!(
            !certificates.reload_if_changed().expect("checked"),
            "unchanged"
        );

        let (_, _, second) = write_certificate(dir.path(), "second.example");
        assert!(certificates.reload_if_changed().expect("reloaded"));
        assert_eq!(served(&certificates), second);

        // Half a renewal: a certificate whose key is not there yet. The old pair stays.
        let third =
            rcgen::generate_simple_self_signed(vec!["third.example".to_owned()]).expect("made");
        std::fs::write(&cert, third.cert.pem()).expect("written");
        assert!(
            certificates.reload_if_changed().is_err(),
            "key does not match"
        );
        assert_eq!(served(&certificates), second);
        std::fs::write(&key, third.signing_key.serialize_pem()).expect("written");
        assert!(certificates.reload_if_changed().expect("reloaded"));
        assert_eq!(served(&certificates), third.cert.der().to_vec());
    }

    #[test]
    fn unusable_files_are_refused_at_start_with_their_name() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = TlsConfig {
            port: 0,
            cert: dir.path().join("missing.pem"),
            key: dir.path().join("missing-key.pem"),
            reload_check: None,
        };
        let error = Certificates::load(&config).expect_err("no files");
        assert!(error.to_string().contains("missing.pem"), "{error}");
        std::fs::write(&config.cert, "not a certificate").expect("written");
        std::fs::write(&config.key, "not a key").expect("written");
        assert!(Certificates::load(&config).is_err());
    }
}

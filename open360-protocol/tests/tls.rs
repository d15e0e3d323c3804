//! Services reaching the hub over `https://` (TLS in front of the hub, as operators deploy it),
//! trusting the hub's self-signed certificate through `SocketIoTransport::with_ca_file`.

use open360_protocol::{
    Hub, HubConfig, ServiceClient, SocketIoTransport, Transport, log::MemoryLog,
};
use serde_json::json;
use std::{net::SocketAddr, sync::Arc};
use tokio::net::{TcpListener, TcpStream};

/// Terminates TLS with `certificate` on a port of its own and forwards to `backend`.
async fn tls_in_front_of(
    backend: SocketAddr,
    certificate: &rcgen::CertifiedKey<rcgen::KeyPair>,
) -> SocketAddr {
    use tokio_rustls::rustls::{self, pki_types::PrivateKeyDer};
    let key = PrivateKeyDer::try_from(certificate.signing_key.serialize_der()).expect("a key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_no_client_auth()
        .with_single_cert(vec![certificate.cert.der().clone()], key)
        .expect("a server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if let Ok(mut hub) = TcpStream::connect(backend).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut hub).await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn services_reach_an_https_hub_with_its_certificate_and_not_without() {
    let mut config = HubConfig::default();
    config.listen = "127.0.0.1:0".parse().expect("address");
    let hub = Hub::bind(config, Arc::new(MemoryLog::new()))
        .await
        .expect("bound");
    let backend = hub.local_addr().expect("address");
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(hub.run(axum::Router::new(), async move {
        let _ = stopped.await;
    }));
    let certificate =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = dir.path().join("hub.pem");
    std::fs::write(&ca, certificate.cert.pem()).expect("written");
    let front = tls_in_front_of(backend, &certificate).await;
    let url = format!("https://localhost:{}", front.port());

    // The system's roots do not know a self-signed certificate: refused, not a panic.
    let untrusted = SocketIoTransport::new(url.clone(), None);
    let refused = untrusted.connect("web-api").await.expect_err("untrusted");
    assert!(refused.to_string().contains("certificate"), "{refused}");

    let trusted = || -> Arc<dyn Transport> {
        Arc::new(
            SocketIoTransport::new(url.clone(), None)
                .with_ca_file(&ca)
                .expect("a CA"),
        )
    };
    let web = ServiceClient::builder("web-api")
        .on("checkKeyExists", |question| async move {
            Ok(json!({ "exists": question.package.data["streamKey"] == "abc" }))
        })
        .start(trusted());
    let ingest = ServiceClient::builder("ingest-api").start(trusted());
    web.connected().await;
    ingest.connected().await;
    let reply = ingest
        .ask("web-api", "checkKeyExists", json!({ "streamKey": "abc" }))
        .await
        .expect("answered over TLS");
    assert_eq!(reply.package.data, json!({ "exists": true }));

    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").expect("written");
    let error = SocketIoTransport::new(url, None)
        .with_ca_file(&empty)
        .expect_err("no certificate");
    assert!(error.to_string().contains("no certificate"), "{error}");
}

//! The coordinator over TLS: the commands API on HTTPS and a control link on `wss://`, each
//! verified against the coordinator's own self-signed certificate.

use coordinator_core::{
    CommandsAuth, Coordinator, CoordinatorConfig, Secret, TlsConfig,
    peers::{Uplink, UplinkConfig, UplinkEvent},
    proto::LinkRole,
    store::MemoryStore,
};
use std::{sync::Arc, time::Duration};
use tokio::sync::watch;

#[tokio::test]
async fn https_commands_and_wss_control_links_use_the_configured_certificate() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, generated.cert.pem()).expect("written");
    let key = dir.path().join("key.pem");
    std::fs::write(&key, generated.signing_key.serialize_pem()).expect("written");

    let mut config = CoordinatorConfig::default();
    config.http_port = 0;
    config.bind_address = [127, 0, 0, 1].into();
    config.control_secret = Some(Secret::new("s"));
    config.commands_auth = Some(CommandsAuth::Bearer {
        token: Secret::new("t"),
    });
    config.tls = Some(TlsConfig {
        port: 0,
        cert: cert.clone(),
        key,
        reload_check: Some(Duration::from_secs(60)),
    });
    let coordinator = Coordinator::bind(config, Arc::new(MemoryStore::new()))
        .await
        .expect("bound");
    let port = coordinator
        .tls_local_addr()
        .expect("TLS configured")
        .expect("bound")
        .port();
    let (stop, stopping) = watch::channel(false);
    let mut stopped = stopping.clone();
    let running = tokio::spawn(coordinator.run(axum::Router::new(), async move {
        let _ = stopped.changed().await;
    }));

    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(generated.cert.pem().as_bytes()).expect("pem"),
        )
        .build()
        .expect("client");
    let capacity = client
        .get(format!("https://localhost:{port}/commands/capacity"))
        .bearer_auth("t")
        .send()
        .await
        .expect("answered over TLS");
    assert_eq!(capacity.status(), 200);
    // A client that does not trust the certificate gets nowhere.
    let untrusting = reqwest::Client::new()
        .get(format!("https://localhost:{port}/commands/capacity"))
        .send()
        .await;
    assert!(untrusting.is_err());

    let mut link = UplinkConfig::new(format!("wss://localhost:{port}"), Secret::new("s"));
    link.ca_file = Some(cert);
    let (_uplink, mut events) = Uplink::spawn(link, LinkRole::Encoder, stopping.clone());
    let opened = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("in time");
    assert_eq!(opened, Some(UplinkEvent::Connected));

    stop.send(true).expect("stopping");
    running.await.expect("joined").expect("served");
}

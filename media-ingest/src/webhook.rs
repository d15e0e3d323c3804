//! The key-verification webhook of the streaming coordinator's documentation: `POST` with an
//! empty body and the headers `x-streaming-channel`, `x-streaming-key`, `x-user-ip` and
//! `Authorization`; status 200 accepts, with options in `x-record`, `x-previews` and
//! `x-resolutions`; anything else refuses.

use crate::verify::{KeyVerifier, PublishOptions, PublishRequest, VerifiedKey, VerifyError};
use async_trait::async_trait;
use std::{net::IpAddr, sync::Once, time::Duration};

/// Asks an HTTP endpoint of the application whether a key may publish.
#[derive(Debug, Clone)]
pub struct WebhookVerifier {
    client: reqwest::Client,
    url: String,
    authorization: Option<String>,
}

impl WebhookVerifier {
    /// A verifier posting to `url`, sending `authorization` (a whole `Authorization` header
    /// value: `Basic …`, `Bearer …` or a custom one) when given. Requests give up after
    /// `timeout`; the server's own `verify_timeout` applies as well, whichever is shorter.
    pub fn new(
        url: impl Into<String>,
        authorization: Option<String>,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()?;
        Ok(Self {
            client,
            url: url.into(),
            authorization,
        })
    }
}

/// reqwest is built without a default rustls provider (one TLS stack in the workspace: ring);
/// without a process-wide provider its client would panic.
fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err means one is installed already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// `::ffff:127.0.0.1` is reported as `127.0.0.1`: applications expect the IPv4 form.
fn plain_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[async_trait]
impl KeyVerifier for WebhookVerifier {
    async fn verify(&self, request: &PublishRequest) -> Result<VerifiedKey, VerifyError> {
        let mut call = self
            .client
            .post(&self.url)
            .header("x-streaming-channel", &request.app)
            .header("x-streaming-key", &request.key)
            .header("x-user-ip", plain_ip(request.client.ip()).to_string())
            .header(reqwest::header::CONTENT_LENGTH, "0");
        if let Some(authorization) = &self.authorization {
            call = call.header(reqwest::header::AUTHORIZATION, authorization);
        }
        let response = call.send().await.map_err(|error| {
            // reqwest's message names the URL, never the key (which travels in a header).
            VerifyError::Unavailable(error.without_url().to_string())
        })?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            return Err(VerifyError::Denied(format!(
                "the verification webhook answered {status}"
            )));
        }
        // A header that is present but not text refuses, like any malformed option.
        let header = |name: &'static str| -> Result<Option<&str>, VerifyError> {
            response
                .headers()
                .get(name)
                .map(|value| {
                    value
                        .to_str()
                        .map_err(|_| VerifyError::Unavailable(format!("{name} is not text")))
                })
                .transpose()
        };
        let options = PublishOptions::from_webhook_headers(
            header("x-record")?,
            header("x-previews")?,
            header("x-resolutions")?,
        )
        .map_err(|error| VerifyError::Unavailable(error.to_string()))?;
        Ok(VerifiedKey::checked(options))
    }
}

#[cfg(test)]
mod tests_webhook {
    use super::*;

    #[test]
    fn mapped_addresses_are_reported_as_ipv4() {
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().expect("an address");
        assert_eq!(plain_ip(mapped).to_string(), "127.0.0.1");
        let v6: IpAddr = "2001:db8::1".parse().expect("an address");
        assert_eq!(plain_ip(v6), v6);
    }
}

//! The HTTPS client: reqwest over rustls, trusting exactly the clinic server's certificate
//! (the one the admin gave this PC when it joined). Certificate checks are never off, the
//! client speaks HTTPS only and follows no redirect (an answer that points elsewhere is an
//! error), and it reads no answer larger than `MAX_RESPONSE_BYTES`.

use std::time::Duration;

use clinic_sync_proto::*;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::Error;

pub struct Transport {
    base: String,
    token: Option<String>,
    http: reqwest::blocking::Client,
}

fn tls_config(cert_pem: &str) -> Result<rustls::ClientConfig, Error> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
        let c = c.map_err(|_| Error::BadCertificate)?;
        roots.add(c).map_err(|_| Error::BadCertificate)?;
    }
    if roots.is_empty() {
        return Err(Error::BadCertificate);
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|_| Error::BadCertificate)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

impl Transport {
    /// `server_url` is `https://host:port`; `cert_pem` the certificate to trust.
    pub fn new(server_url: &str, cert_pem: &str, token: Option<&str>) -> Result<Transport, Error> {
        if !server_url.starts_with("https://") {
            return Err(Error::NotHttps);
        }
        let http = reqwest::blocking::Client::builder()
            .tls_backend_preconfigured(tls_config(cert_pem)?)
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| Error::Network {
                message: e.to_string(),
            })?;
        Ok(Transport {
            base: server_url.trim_end_matches('/').to_string(),
            token: token.map(str::to_string),
            http,
        })
    }

    fn send<T: DeserializeOwned>(&self, rb: reqwest::blocking::RequestBuilder) -> Result<T, Error> {
        let body = self.send_raw(rb, MAX_RESPONSE_BYTES)?;
        serde_json::from_slice(&body).map_err(|e| Error::Network {
            message: format!("the server's answer was cut or malformed: {e}"),
        })
    }

    /// The answer's bytes (at most `cap`), or the server's error.
    fn send_raw(
        &self,
        rb: reqwest::blocking::RequestBuilder,
        cap: usize,
    ) -> Result<Vec<u8>, Error> {
        let rb = match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        };
        let resp = rb.send().map_err(|e| Error::Network {
            message: network_words(&e),
        })?;
        let status = resp.status();
        if status.is_redirection() {
            return Err(Error::Network {
                message: format!("the server answered {status}: this PC follows no redirect"),
            });
        }
        let body = read_capped(resp, cap)?;
        if status.is_success() {
            Ok(body)
        } else {
            match serde_json::from_slice::<ErrorBody>(&body) {
                // The words are the server's: kept short (the window shows its own for the code).
                Ok(e) => Err(Error::Server {
                    code: e.code,
                    message: e.message.chars().take(300).collect(),
                }),
                Err(_) => Err(Error::Network {
                    message: format!("the server answered {status}"),
                }),
            }
        }
    }

    fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, Error> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
    }

    fn get<T: DeserializeOwned>(&self, path: &str, q: &[(&str, String)]) -> Result<T, Error> {
        self.send(self.http.get(format!("{}{path}", self.base)).query(q))
    }

    pub fn join(&self, req: &JoinRequest) -> Result<JoinResponse, Error> {
        let joined: JoinResponse = self.post("/v1/join", req)?;
        if !clinic_sync_proto::is_join_response(&joined) {
            return Err(Error::ServerMisbehaves);
        }
        Ok(joined)
    }

    pub fn push(&self, req: &PushRequest) -> Result<PushResponse, Error> {
        self.post("/v1/push", req)
    }

    pub fn pull(&self, after: i64, limit: u32) -> Result<PullResponse, Error> {
        self.get(
            "/v1/pull",
            &[("after", after.to_string()), ("limit", limit.to_string())],
        )
    }

    pub fn snapshot(
        &self,
        after: Option<&str>,
        entity: Option<&str>,
        limit: u32,
    ) -> Result<SnapshotPage, Error> {
        let mut q = vec![("limit", limit.to_string())];
        if let Some(a) = after {
            q.push(("after", a.to_string()));
        }
        if let Some(e) = entity {
            q.push(("entity", e.to_string()));
        }
        self.get("/v1/snapshot", &q)
    }

    pub fn new_join_code(&self, req: &NewJoinCode) -> Result<JoinCode, Error> {
        self.post("/v1/join-codes", req)
    }

    pub fn devices(&self) -> Result<Vec<Device>, Error> {
        self.get("/v1/devices", &[])
    }

    pub fn revoke(&self, device_id: &str) -> Result<Device, Error> {
        self.post(&format!("/v1/devices/{device_id}/revoke"), &())
    }

    pub fn audit_heads(&self, device_id: &str) -> Result<Vec<HeadRecord>, Error> {
        self.get("/v1/audit-heads", &[("device", device_id.to_string())])
    }

    pub fn digest(&self) -> Result<String, Error> {
        self.get("/v1/digest", &[])
    }

    /// What the server holds of a device's blob; none if it was never announced.
    pub fn blob_info(&self, device: &str, id: &str) -> Result<Option<BlobInfo>, Error> {
        match self.get(&format!("/v1/devices/{device}/blobs/{id}"), &[]) {
            Ok(i) => Ok(Some(i)),
            Err(Error::Server {
                code: ErrorCode::NotFound,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Puts one sealed chunk of a blob of this PC's own, of `size` bytes.
    pub fn blob_put(
        &self,
        id: &str,
        size: u64,
        index: u32,
        chunk: Vec<u8>,
    ) -> Result<BlobInfo, Error> {
        self.send(
            self.http
                .put(format!("{}/v1/blobs/{id}/{index}", self.base))
                .query(&[("size", size.to_string())])
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(chunk),
        )
    }

    /// One sealed chunk of a device's blob (at most a chunk's length is read).
    pub fn blob_chunk(&self, device: &str, id: &str, index: u32) -> Result<Vec<u8>, Error> {
        self.send_raw(
            self.http.get(format!(
                "{}/v1/devices/{device}/blobs/{id}/{index}",
                self.base
            )),
            BLOB_CHUNK_BYTES + BLOB_SEAL_BYTES,
        )
    }
}

/// What went wrong on the way, in words for the header's "last error".
/// Reads an answer of at most `cap` bytes; a larger one is refused before it fills memory.
fn read_capped(body: impl std::io::Read, cap: usize) -> Result<Vec<u8>, Error> {
    use std::io::Read as _;
    let mut buf = Vec::new();
    body.take(cap as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::Network {
            message: match e.get_ref().and_then(|i| i.downcast_ref::<reqwest::Error>()) {
                Some(re) => network_words(re),
                None => e.to_string(),
            },
        })?;
    if buf.len() > cap {
        return Err(Error::Network {
            message: format!("the server's answer is larger than {} MiB", cap >> 20),
        });
    }
    Ok(buf)
}

fn network_words(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "the server did not answer in time".into()
    } else if e.is_connect() {
        let mut src: Option<&dyn std::error::Error> = Some(e);
        let mut text = String::new();
        while let Some(s) = src {
            text = s.to_string();
            src = s.source();
        }
        if text.contains("certificate") || text.contains("Certificate") {
            format!("the server's certificate is not the one this PC trusts ({text})")
        } else {
            format!("cannot reach the server ({text})")
        }
    } else {
        format!("the connection broke ({e})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_over_the_cap_is_refused_and_one_at_the_cap_read() {
        let at = vec![b'x'; 1000];
        assert_eq!(read_capped(&at[..], 1000).unwrap().len(), 1000);
        let over = vec![b'x'; 1001];
        match read_capped(&over[..], 1000) {
            Err(Error::Network { message }) => assert!(message.contains("larger"), "{message}"),
            other => panic!("{other:?}"),
        }
    }
}

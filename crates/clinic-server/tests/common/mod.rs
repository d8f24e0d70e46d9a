//! A real server on a loopback port with a self-signed certificate, and a client that
//! trusts exactly that certificate. (Shared with the load bench, which uses only part of it.)
#![allow(dead_code)]

pub mod pg;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use clinic_server::limit::RateLimiter;
use clinic_server::store::Store;
use clinic_server::{tls, AppState};
use clinic_sync_proto::{ErrorBody, ErrorCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The test clock: a fixed instant plus whatever a test adds.
#[derive(Clone, Default)]
pub struct TestClock(Arc<AtomicI64>);

impl TestClock {
    pub fn now(&self) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 10, 3, 0, 0).unwrap()
            + Duration::seconds(self.0.load(Ordering::SeqCst))
    }
    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(d.num_seconds(), Ordering::SeqCst);
    }
}

pub struct Server {
    pub addr: SocketAddr,
    pub cert: String,
    pub handle: clinic_server::net::Handle,
}

pub async fn start<S: Store>(store: S, clock: TestClock, limiter: RateLimiter) -> Server {
    start_with(store, clock, limiter, clinic_server::net::Limits::default()).await
}

pub async fn start_with<S: Store>(
    store: S,
    clock: TestClock,
    limiter: RateLimiter,
    limits: clinic_server::net::Limits,
) -> Server {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let (cert, key) = tls::self_signed(&names).unwrap();
    let mut state = AppState::new(store, limiter, Arc::new(move || clock.now()));
    state.limits = limits;
    let state = Arc::new(state);
    let (addr, handle, _task) = clinic_server::serve(
        state,
        "127.0.0.1:0".parse().unwrap(),
        tls::server_config(&cert, &key).unwrap(),
    )
    .await
    .unwrap();
    Server { addr, cert, handle }
}

pub fn generous() -> RateLimiter {
    RateLimiter::new(10_000.0, 100_000)
}

/// A client that trusts `cert_pem` and nothing else.
pub fn http(cert_pem: &str) -> reqwest::Client {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(cfg)
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

/// One device's view of the server.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub token: Option<String>,
}

impl Api {
    pub fn new(server: &Server) -> Api {
        Api {
            base: format!("https://localhost:{}", server.addr.port()),
            http: http(&server.cert),
            token: None,
        }
    }

    pub fn with_token(&self, token: &str) -> Api {
        Api {
            token: Some(token.to_string()),
            ..self.clone()
        }
    }

    async fn send<T: DeserializeOwned>(&self, rb: reqwest::RequestBuilder) -> Result<T, ErrorCode> {
        let rb = match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        };
        let resp = rb.send().await.expect("request failed");
        if resp.status().is_success() {
            Ok(resp.json().await.unwrap())
        } else {
            let e: ErrorBody = resp.json().await.unwrap();
            Err(e.code)
        }
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ErrorCode> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ErrorCode> {
        self.send(self.http.get(format!("{}{path}", self.base)).query(query))
            .await
    }
}

//! The server's certificate: PEM files given on the command line, or a self-signed one
//! made once in the data folder (the PCs are then told to trust that certificate; they
//! never turn certificate checks off).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A self-signed certificate for `names` (DNS names or IP addresses): (cert PEM, key PEM).
pub fn self_signed(names: &[String]) -> Result<(String, String), String> {
    let c = rcgen::generate_simple_self_signed(names.to_vec()).map_err(|e| e.to_string())?;
    Ok((c.cert.pem(), c.key_pair.serialize_pem()))
}

/// The names a self-signed certificate gets when none are given: `localhost`, this machine's
/// host name, every address of its network interfaces (loopback included), the address it
/// listens on if it is a particular one, and `extra` (the `--name`s).
pub fn default_names(listen: std::net::IpAddr, extra: &[String]) -> Vec<String> {
    let mut names = vec!["localhost".to_string()];
    if let Ok(h) = gethostname::gethostname().into_string() {
        if !h.is_empty() {
            names.push(h);
        }
    }
    if let Ok(ifs) = if_addrs::get_if_addrs() {
        names.extend(ifs.into_iter().map(|i| i.ip().to_string()));
    }
    if !listen.is_unspecified() {
        names.push(listen.to_string());
    }
    names.extend(extra.iter().cloned());
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

pub fn server_config(cert_pem: &str, key_pem: &str) -> Result<Arc<rustls::ServerConfig>, String> {
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| format!("key: {e}"))?;
    let cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(cfg))
}

/// The certificate and key in `dir` (`server.crt`, `server.key`), made self-signed for
/// `names` the first time.
pub fn load_or_make(dir: &Path, names: &[String]) -> Result<(String, String), String> {
    let (crt, key) = (dir.join("server.crt"), dir.join("server.key"));
    if !crt.exists() {
        let (c, k) = self_signed(names)?;
        write_private(&key, &k)?;
        std::fs::write(&crt, &c).map_err(|e| e.to_string())?;
        println!("made a self-signed certificate for: {}", names.join(", "));
    }
    let c = std::fs::read_to_string(&crt).map_err(|e| e.to_string())?;
    let k = std::fs::read_to_string(&key).map_err(|e| e.to_string())?;
    Ok((c, k))
}

fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(path).map_err(|e| e.to_string())?;
    f.write_all(text.as_bytes()).map_err(|e| e.to_string())
}

//! `clinicdesk-server`: the sync server.
//!
//!   clinicdesk-server serve [--data DIR | --database postgres://…] [--listen ADDR]
//!                           [--cert server.crt --key server.key] [--name HOST]…
//!                           [--clinic-name NAME] [--rate PER_SECOND] [--burst N]
//!                           [--max-connections N] [--max-per-address N]
//!                           [--blob-quota-gib N] [--memory-mib N]
//!   clinicdesk-server new-clinic NAME [--data DIR | --database postgres://…]
//!
//! With `--data` (the default, `./clinicdesk-server-data`) the server keeps an SQLite file
//! there, makes a self-signed certificate there unless `--cert`/`--key` are given, and on
//! first start creates a clinic and prints the join code for its first PC. The certificate
//! names `localhost`, this machine's host name and every address of its network interfaces,
//! plus each `--name` (a DNS name or address the PCs use to reach it); it is made once, so
//! give the names at the first start. `new-clinic` adds another clinic (a group of clinics on
//! one server) and prints its first code.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clinic_server::store::postgres::PgStore;
use clinic_server::store::sqlite::SqliteStore;
use clinic_server::store::Store;
use clinic_server::{bootstrap_clinic, limit::RateLimiter, tls, AppState};

struct Args {
    command: String,
    positional: Vec<String>,
    data: PathBuf,
    database: Option<String>,
    listen: SocketAddr,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    clinic_name: String,
    rate: f64,
    burst: u32,
    names: Vec<String>,
    max_connections: usize,
    max_per_address: usize,
    blob_quota_gib: u64,
    memory_mib: usize,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let command = it.next().unwrap_or_else(|| "serve".into());
    let mut a = Args {
        command,
        positional: vec![],
        data: PathBuf::from("clinicdesk-server-data"),
        database: None,
        listen: "127.0.0.1:8443".parse().map_err(|e| format!("{e}"))?,
        cert: None,
        key: None,
        clinic_name: "My clinic".into(),
        rate: 50.0,
        burst: 200,
        names: vec![],
        max_connections: clinic_server::net::Limits::default().max_connections,
        max_per_address: clinic_server::net::Limits::default().per_address,
        blob_quota_gib: clinic_server::DEFAULT_BLOB_QUOTA >> 30,
        memory_mib: clinic_server::DEFAULT_MEMORY_BYTES >> 20,
    };
    while let Some(arg) = it.next() {
        let mut val = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--data" => a.data = val()?.into(),
            "--database" => a.database = Some(val()?),
            "--listen" => a.listen = val()?.parse().map_err(|e| format!("--listen: {e}"))?,
            "--cert" => a.cert = Some(val()?.into()),
            "--key" => a.key = Some(val()?.into()),
            "--clinic-name" => a.clinic_name = val()?,
            "--rate" => a.rate = val()?.parse().map_err(|e| format!("--rate: {e}"))?,
            "--burst" => a.burst = val()?.parse().map_err(|e| format!("--burst: {e}"))?,
            "--name" => a.names.push(val()?),
            "--max-connections" => {
                a.max_connections = val()?
                    .parse()
                    .map_err(|e| format!("--max-connections: {e}"))?
            }
            "--max-per-address" => {
                a.max_per_address = val()?
                    .parse()
                    .map_err(|e| format!("--max-per-address: {e}"))?
            }
            "--memory-mib" => {
                a.memory_mib = val()?.parse().map_err(|e| format!("--memory-mib: {e}"))?
            }
            "--blob-quota-gib" => {
                a.blob_quota_gib = val()?
                    .parse()
                    .map_err(|e| format!("--blob-quota-gib: {e}"))?
            }
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            s => a.positional.push(s.to_string()),
        }
    }
    Ok(a)
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("clinicdesk-server: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let a = parse()?;
    std::fs::create_dir_all(&a.data).map_err(|e| format!("{}: {e}", a.data.display()))?;
    match &a.database {
        Some(url) => {
            let store = PgStore::connect(url, 16).await.map_err(|e| e.to_string())?;
            go(a, store, false).await
        }
        None => {
            let path = a.data.join("server.db");
            let fresh = !path.exists();
            let store = SqliteStore::open(&path).map_err(|e| e.to_string())?;
            go(a, store, fresh).await
        }
    }
}

async fn go<S: Store>(a: Args, store: S, fresh: bool) -> Result<(), String> {
    let now = chrono::Utc::now();
    match a.command.as_str() {
        "new-clinic" => {
            let name = a.positional.first().ok_or("new-clinic NAME")?;
            let (id, code) = bootstrap_clinic(&store, name, now)
                .await
                .map_err(|e| e.to_string())?;
            println!("clinic {name} ({id})\njoin code for its first PC: {code}");
            Ok(())
        }
        "serve" => {
            if fresh {
                let (id, code) = bootstrap_clinic(&store, &a.clinic_name, now)
                    .await
                    .map_err(|e| e.to_string())?;
                println!(
                    "new clinic {} ({id})\njoin code for its first PC (valid 7 days): {code}",
                    a.clinic_name
                );
            }
            let (cert, key) = match (&a.cert, &a.key) {
                (Some(c), Some(k)) => (
                    std::fs::read_to_string(c).map_err(|e| format!("{}: {e}", c.display()))?,
                    std::fs::read_to_string(k).map_err(|e| format!("{}: {e}", k.display()))?,
                ),
                (None, None) => {
                    let names = tls::default_names(a.listen.ip(), &a.names);
                    tls::load_or_make(&a.data, &names)?
                }
                _ => return Err("--cert and --key go together".into()),
            };
            let config = tls::server_config(&cert, &key)?;
            let mut state = AppState::new(
                store,
                RateLimiter::new(a.rate, a.burst),
                Arc::new(chrono::Utc::now),
            );
            state.limits.max_connections = a.max_connections;
            state.limits.per_address = a.max_per_address;
            state.blob_quota = a.blob_quota_gib << 30;
            state.set_memory(a.memory_mib << 20, std::time::Duration::from_secs(10));
            let state = Arc::new(state);
            // Each connection holds a file descriptor: take every one the system allows.
            raise_open_files_limit();
            let (addr, handle, task) = clinic_server::serve(state, a.listen, config)
                .await
                .map_err(|e| format!("{}: {e}", a.listen))?;
            println!("listening on https://{addr}");
            if a.cert.is_none() {
                println!(
                    "certificate (self-signed; give it to each PC to trust): {}",
                    a.data.join("server.crt").display()
                );
            }
            tokio::select! {
                r = task => r.map_err(|e| e.to_string())?.map_err(|e| e.to_string()),
                _ = tokio::signal::ctrl_c() => {
                    handle.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
                    Ok(())
                }
            }
        }
        other => Err(format!("unknown command {other} (serve, new-clinic)")),
    }
}

/// Raises this process's soft limit on open files to its hard limit (a connection is a file).
fn raise_open_files_limit() {
    #[cfg(unix)]
    unsafe {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

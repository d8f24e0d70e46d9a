//! A loopback TCP proxy for sync tests and the sync bench: TLS goes through it untouched; it
//! can stall or cut a connection after so many bytes, cut an answer, or carry bytes no faster
//! than a slow line. (The bench includes this file by path.)
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

/// A loopback TCP proxy in front of the server. TLS goes through it untouched; it can stall
/// a connection after so many bytes in either direction (the test then kills the server),
/// or cut it there.
pub struct Proxy {
    pub port: u16,
    /// Bytes client→server a connection may send before it stalls (-1: never).
    pub stall_up_after: Arc<AtomicI64>,
    /// Bytes server→client a connection may receive before it stalls (-1: never).
    pub stall_down_after: Arc<AtomicI64>,
    /// Cut instead of stall.
    pub cut: Arc<AtomicBool>,
    /// Cuts the answer to a request once the connection has sent more than this many bytes
    /// up (the request reached the server whole; its answer never arrives). -1: never.
    pub cut_answer_after_up: Arc<AtomicI64>,
    /// Set once a connection stalled or was cut.
    pub tripped: Arc<AtomicBool>,
    /// Bytes per second each connection may carry each way (a slow line); -1: unlimited.
    pub rate: Arc<AtomicI64>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = Proxy {
            port: listener.local_addr().unwrap().port(),
            stall_up_after: Arc::new(AtomicI64::new(-1)),
            stall_down_after: Arc::new(AtomicI64::new(-1)),
            cut: Arc::new(AtomicBool::new(false)),
            cut_answer_after_up: Arc::new(AtomicI64::new(-1)),
            tripped: Arc::new(AtomicBool::new(false)),
            rate: Arc::new(AtomicI64::new(-1)),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (up, down, cut, tripped, stop, answer, rate) = (
            p.stall_up_after.clone(),
            p.stall_down_after.clone(),
            p.cut.clone(),
            p.tripped.clone(),
            p.stop.clone(),
            p.cut_answer_after_up.clone(),
            p.rate.clone(),
        );
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                            let _ = client.shutdown(Shutdown::Both);
                            continue;
                        };
                        // Bytes this connection has sent up, for cutting its answers.
                        let uploaded = Arc::new(AtomicI64::new(0));
                        let conn = Conn {
                            cut: cut.clone(),
                            tripped: tripped.clone(),
                            uploaded: uploaded.clone(),
                            answer_after_up: answer.clone(),
                            rate: rate.clone(),
                        };
                        let c2 = conn.clone();
                        let (c_in, s_in) =
                            (client.try_clone().unwrap(), server.try_clone().unwrap());
                        let lim_up = up.clone();
                        std::thread::spawn(move || pump(c_in, server, lim_up, conn, true));
                        let lim_down = down.clone();
                        std::thread::spawn(move || pump(s_in, client, lim_down, c2, false));
                    }
                    Err(_) => std::thread::sleep(StdDuration::from_millis(5)),
                }
            }
        });
        p
    }

    pub fn calm(&self) {
        self.stall_up_after.store(-1, Ordering::SeqCst);
        self.stall_down_after.store(-1, Ordering::SeqCst);
        self.cut.store(false, Ordering::SeqCst);
        self.cut_answer_after_up.store(-1, Ordering::SeqCst);
        self.tripped.store(false, Ordering::SeqCst);
    }

    pub fn wait_tripped(&self) {
        let deadline = Instant::now() + StdDuration::from_secs(60);
        while !self.tripped.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "the proxy never tripped");
            std::thread::sleep(StdDuration::from_millis(5));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

#[derive(Clone)]
struct Conn {
    cut: Arc<AtomicBool>,
    tripped: Arc<AtomicBool>,
    uploaded: Arc<AtomicI64>,
    answer_after_up: Arc<AtomicI64>,
    rate: Arc<AtomicI64>,
}

fn pump(mut from: TcpStream, mut to: TcpStream, limit: Arc<AtomicI64>, conn: Conn, upward: bool) {
    let mut sent: i64 = 0;
    let mut buf = [0u8; 8192];
    // A slow line: each read's bytes are let through no faster than `rate` (an idle line
    // saves up nothing beyond one read).
    let mut line_free = Instant::now();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let rate = conn.rate.load(Ordering::SeqCst);
        if rate > 0 {
            line_free =
                line_free.max(Instant::now()) + StdDuration::from_secs_f64(n as f64 / rate as f64);
            if let Some(wait) = line_free.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let answer_after = conn.answer_after_up.load(Ordering::SeqCst);
        if !upward && answer_after >= 0 && conn.uploaded.load(Ordering::SeqCst) > answer_after {
            // The request went up whole; whatever the server sends now (its answer) is
            // dropped, then the connection is cut.
            conn.tripped.store(true, Ordering::SeqCst);
            let _ = from.set_read_timeout(Some(StdDuration::from_secs(2)));
            let mut sink = [0u8; 8192];
            while matches!(from.read(&mut sink), Ok(k) if k > 0) {}
            break;
        }
        let lim = limit.load(Ordering::SeqCst);
        let allowed = if lim >= 0 {
            (lim - sent).clamp(0, n as i64) as usize
        } else {
            n
        };
        if allowed > 0 && to.write_all(&buf[..allowed]).is_err() {
            break;
        }
        sent += allowed as i64;
        if upward {
            conn.uploaded.fetch_add(allowed as i64, Ordering::SeqCst);
        }
        if allowed < n {
            conn.tripped.store(true, Ordering::SeqCst);
            if conn.cut.load(Ordering::SeqCst) {
                break;
            }
            // Stalled: hold the connection until the other side goes away.
            let mut sink = [0u8; 8192];
            while matches!(from.read(&mut sink), Ok(k) if k > 0) {}
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

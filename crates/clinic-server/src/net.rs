//! The server's side of the network: accepting connections, TLS, HTTP/1.1, and every limit
//! that keeps a stranger on the open network from holding the server (see `Limits`).
//!
//! Each accepted connection is counted, in total and per address (an IPv6 address by its
//! /64, which one host holds whole), before anything else is spent on it. Over the address's
//! cap it is closed at once; over the total, the oldest connection that has not yet shown a
//! valid device token is closed to make room (`Proven`), so strangers holding connections
//! can't keep the clinics' PCs out. Its TLS handshake, each request's head
//! (and the wait for the next request on a kept-alive connection), each request's body, and
//! each request as a whole have deadlines; a connection that moves no byte either way for
//! `idle` is closed whatever it is doing. Nothing here reads a token or a body: that is the
//! router's business (`crate::router`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

/// How long each part of a connection may take, and how many connections are held.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The TLS handshake after the TCP connection opened.
    pub handshake: Duration,
    /// A request's head; also how long a kept-alive connection waits for its next request
    /// (hyper starts the same clock the moment the connection is idle).
    pub header: Duration,
    /// A request's whole body, from its head.
    pub body: Duration,
    /// A request from its head to its answer (the body and the work included).
    pub request: Duration,
    /// No byte in either direction for this long closes the connection whatever it is doing
    /// (an answer the client stopped reading, say). Longer than `request`.
    pub idle: Duration,
    /// Connections held at once, in all.
    pub max_connections: usize,
    /// Connections held at once from one address. A clinic behind one NAT address uses a
    /// couple per PC.
    pub per_address: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            handshake: Duration::from_secs(10),
            header: Duration::from_secs(15),
            body: Duration::from_secs(60),
            request: Duration::from_secs(120),
            idle: Duration::from_secs(130),
            max_connections: 4096,
            per_address: 128,
        }
    }
}

/// Stops a running server: at once, or after letting requests in flight finish.
#[derive(Clone)]
pub struct Handle {
    tx: Arc<watch::Sender<Stop>>,
    live: Arc<AtomicUsize>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Stop {
    Running,
    Graceful(Duration),
    Now,
}

impl Handle {
    fn new() -> Handle {
        Handle {
            tx: Arc::new(watch::channel(Stop::Running).0),
            live: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Closes the listener and every connection now.
    pub fn shutdown(&self) {
        let _ = self.tx.send(Stop::Now);
    }

    /// Closes the listener; connections finish their request in flight, for at most `grace`
    /// (10 s when none), then close.
    pub fn graceful_shutdown(&self, grace: Option<Duration>) {
        let _ = self
            .tx
            .send(Stop::Graceful(grace.unwrap_or(Duration::from_secs(10))));
    }

    /// Connections held now.
    pub fn connections(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }
}

/// Set on a connection (a request extension) once a request on it showed a valid device
/// token: such a connection is never closed to make room for another.
#[derive(Clone)]
pub struct Proven(pub Arc<AtomicBool>);

/// The key a connection counts under: its IPv4 address, or its IPv6 address's /64.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// The connections held: per address, and in the order they came with how to close them.
#[derive(Default)]
struct Held {
    per: HashMap<IpAddr, usize>,
    /// Oldest first: (id, shown a token, close it).
    order: std::collections::VecDeque<(u64, Arc<AtomicBool>, Arc<tokio::sync::Notify>)>,
    next_id: u64,
}

/// Counts a connection against the caps while it lives.
struct Slot {
    id: u64,
    key: IpAddr,
    held: Arc<Mutex<Held>>,
    live: Arc<AtomicUsize>,
    proven: Arc<AtomicBool>,
    close: Arc<tokio::sync::Notify>,
}

impl Slot {
    /// A place for a new connection from `ip`: none when its address has its fill; when the
    /// server is full, the oldest connection without a valid token yet is told to close.
    fn take(
        ip: IpAddr,
        held: &Arc<Mutex<Held>>,
        live: &Arc<AtomicUsize>,
        limits: &Limits,
    ) -> Option<Slot> {
        let key = address_key(ip);
        let mut h = held.lock().unwrap_or_else(|p| p.into_inner());
        if h.per.get(&key).copied().unwrap_or(0) >= limits.per_address {
            return None;
        }
        if live.load(Ordering::SeqCst) >= limits.max_connections {
            let victim = h
                .order
                .iter()
                .position(|(_, proven, _)| !proven.load(Ordering::Relaxed))?;
            let (_, _, close) = h.order.remove(victim)?;
            close.notify_one();
        }
        *h.per.entry(key).or_insert(0) += 1;
        h.next_id += 1;
        let (id, proven, close) = (
            h.next_id,
            Arc::new(AtomicBool::new(false)),
            Arc::new(tokio::sync::Notify::new()),
        );
        h.order.push_back((id, proven.clone(), close.clone()));
        live.fetch_add(1, Ordering::SeqCst);
        Some(Slot {
            id,
            key,
            held: held.clone(),
            live: live.clone(),
            proven,
            close,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut h = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = h.per.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                h.per.remove(&self.key);
            }
        }
        if let Some(i) = h.order.iter().position(|(id, _, _)| *id == self.id) {
            h.order.remove(i);
        }
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves `app` over TLS on `listener` until the handle stops it.
pub fn spawn(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    limits: Limits,
) -> (Handle, tokio::task::JoinHandle<std::io::Result<()>>) {
    let handle = Handle::new();
    let h = handle.clone();
    let task = tokio::spawn(async move { accept_loop(listener, tls, app, limits, h).await });
    (handle, task)
}

async fn accept_loop(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    limits: Limits,
    handle: Handle,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let held: Arc<Mutex<Held>> = Arc::default();
    let mut stop = handle.tx.subscribe();
    let limits = Arc::new(limits);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            // Out of file descriptors and the like: wait a moment rather than spin.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = Slot::take(peer.ip(), &held, &handle.live, &limits) else {
            drop(tcp); // over a cap: closed before a byte is read
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, app, limits, stop) = (
            acceptor.clone(),
            app.clone(),
            limits.clone(),
            handle.tx.subscribe(),
        );
        tokio::spawn(async move {
            let (proven, close) = (slot.proven.clone(), slot.close.clone());
            tokio::select! {
                _ = connection(tcp, peer, acceptor, app, limits, stop, Proven(proven)) => {}
                // Closed to make room: it had shown no token yet.
                _ = close.notified() => {}
            }
            drop(slot);
        });
    }
    // Stopping: gracefully, wait (bounded) for the connections to finish.
    let how = *stop.borrow();
    if let Stop::Graceful(grace) = how {
        let until = Instant::now() + grace;
        while handle.live.load(Ordering::SeqCst) > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}

async fn connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    app: Router,
    limits: Arc<Limits>,
    mut stop: watch::Receiver<Stop>,
    proven: Proven,
) {
    let started = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let io = Watched {
        inner: tcp,
        started,
        last: last.clone(),
    };
    let tls = match tokio::time::timeout(limits.handshake, acceptor.accept(io)).await {
        Ok(Ok(s)) => s,
        _ => return,
    };
    let svc_limits = limits.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let (app, limits, proven) = (app.clone(), svc_limits.clone(), proven.clone());
        async move {
            let (mut parts, body) = req.into_parts();
            parts.extensions.insert(ConnectInfo(peer));
            parts.extensions.insert(proven.clone());
            let body = axum::body::Body::new(Deadline::new(body, limits.body));
            let req = hyper::Request::from_parts(parts, body);
            match tokio::time::timeout(limits.request, app.oneshot(req)).await {
                Ok(Ok(resp)) => Ok::<_, Infallible>(resp),
                Ok(Err(never)) => match never {},
                Err(_) => Ok(crate::too_slow()),
            }
        }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header)
        .max_buf_size(64 * 1024);
    let conn = http.serve_connection(TokioIo::new(tls), service);
    tokio::pin!(conn);
    let mut graceful = false;
    loop {
        let idle_at = started + Duration::from_millis(last.load(Ordering::Relaxed)) + limits.idle;
        tokio::select! {
            _ = &mut conn => return,
            _ = tokio::time::sleep_until(idle_at.into()) => {
                let moved = started + Duration::from_millis(last.load(Ordering::Relaxed));
                if moved + limits.idle <= Instant::now() {
                    return; // nothing moved for `idle`: dropped
                }
            }
            changed = stop.changed(), if !graceful => {
                let how = *stop.borrow();
                match (changed, how) {
                    (Ok(()), Stop::Graceful(_)) => {
                        graceful = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    _ => return,
                }
            }
        }
    }
}

/// A stream that notes when a byte last moved (milliseconds since `started`).
struct Watched<T> {
    inner: T,
    started: Instant,
    last: Arc<AtomicU64>,
}

impl<T> Watched<T> {
    fn moved(&self) {
        self.last
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.moved();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.moved();
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A request body that must arrive whole by a deadline (a body sent a byte at a time is cut).
struct Deadline {
    inner: Incoming,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Deadline {
    fn new(inner: Incoming, within: Duration) -> Deadline {
        Deadline {
            inner,
            sleep: Box::pin(tokio::time::sleep(within)),
        }
    }
}

#[derive(Debug)]
struct BodyTooSlow;

impl std::fmt::Display for BodyTooSlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}
impl std::error::Error for BodyTooSlow {}

impl Body for Deadline {
    type Data = bytes::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if self.sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTooSlow))));
        }
        Pin::new(&mut self.inner)
            .poll_frame(cx)
            .map_err(|e| Box::new(e) as Self::Error)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

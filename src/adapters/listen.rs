//! Accepting connections, for both ports: the limits tonic and axum do not
//! offer, in one accept loop, and TLS when `[tls]` is configured.
//!
//! - **A cap on open connections per port.** The loop takes a slot before
//!   it accepts: at the cap, new connections wait in the kernel's backlog
//!   (no file descriptor, no CPU) until one closes (Go's
//!   `netutil.LimitListener` does the same).
//! - **A handshake deadline.** A connection that has not sent
//!   `handshake_bytes` within `handshake_timeout` is closed: idle sockets
//!   and slow handshakes cannot hold a slot for long. With TLS, the TLS
//!   handshake must finish within it (each in its own task, so a slow one
//!   delays nobody else), and then the deadline starts again for the
//!   decrypted bytes.
//! - **Backoff on accept errors.** `EMFILE` and friends repeat until a
//!   descriptor frees; retrying at once spins a core (seen at 119 % CPU).
//!   The loop sleeps 5 ms, doubling to 1 s, and logs once per streak.
//! - **A gauge** of open connections per port, and counters of what was
//!   refused (`authgate_protection_events_total`).
//!
//! The HTTP port is served here too (HTTP/1.1 with a header-read timeout
//! that also bounds idle keep-alive); the gRPC port hands [`Accepted`]s to
//! tonic, whose own settings (streams per connection, windows, keepalive,
//! request timeout) are set where the server is built, and whose requests pass
//! [`InFlightLayer`], the process-wide limit on requests being decoded or
//! decided.

use crate::keys::tls::{TlsStore, certificate_identity};
use crate::obs::metrics::Metrics;
use crate::obs::metrics::{Port, Protection};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// First and longest wait after a failed `accept`.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(5), Duration::from_secs(1));

/// The limits of one listening port.
#[derive(Debug, Clone, Copy)]
pub struct PortLimits {
    /// Which port (`grpc`, `http`): metrics label.
    pub port: Port,
    /// Open connections at most.
    pub max_connections: usize,
    /// Time a new connection has to send `handshake_bytes`.
    pub handshake_timeout: Duration,
    /// Bytes that count as a started handshake (the HTTP/2 preface is 24;
    /// one byte for HTTP/1.1, whose header timeout takes over).
    pub handshake_bytes: usize,
}

/// Accepts on `listener` within `limits`, with TLS from `tls` when given;
/// the stream of connections ends when the receiver is dropped (which also
/// closes the listening socket).
pub fn incoming(
    listener: TcpListener,
    limits: PortLimits,
    metrics: Arc<Metrics>,
    tls: Option<Arc<TlsStore>>,
) -> tokio_stream::wrappers::ReceiverStream<io::Result<Accepted>> {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(accept_loop(listener, limits, metrics, tls, tx));
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

async fn accept_loop(
    listener: TcpListener,
    limits: PortLimits,
    metrics: Arc<Metrics>,
    tls: Option<Arc<TlsStore>>,
    tx: mpsc::Sender<io::Result<Accepted>>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut backoff = ACCEPT_BACKOFF.0;
    let mut failing = false;
    loop {
        let permit = tokio::select! {
            () = tx.closed() => return,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                // The semaphore is never closed; end rather than spin.
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            () = tx.closed() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                if failing {
                    tracing::info!(port = limits.port.as_str(), "accepting connections again");
                }
                failing = false;
                backoff = ACCEPT_BACKOFF.0;
                // A response written in pieces must not wait for the
                // peer's delayed ACK (~40 ms).
                let _ = stream.set_nodelay(true);
                let conn = Conn::new(stream, peer, permit, limits, metrics.clone());
                match &tls {
                    None => {
                        if tx.send(Ok(Accepted::plain(conn, limits))).await.is_err() {
                            return;
                        }
                    }
                    Some(store) => {
                        let config = match limits.port {
                            Port::Grpc => store.grpc(),
                            Port::Http => store.http(),
                            Port::Webhook => store.webhook(),
                        };
                        tokio::spawn(tls_handshake(conn, config, limits, metrics.clone(), tx.clone()));
                    }
                }
            }
            Err(e) => {
                metrics.protection(Protection::AcceptError);
                if !failing {
                    tracing::warn!(port = limits.port.as_str(), error = %e, "accept failed (out of file descriptors?); backing off");
                }
                failing = true;
                drop(permit);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
            }
        }
    }
}

/// One accepted TCP connection: the socket and its slot under the port's
/// cap (freed on drop).
pub struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    _slot: OwnedSemaphorePermit,
    port: Port,
    metrics: Arc<Metrics>,
}

impl Conn {
    fn new(
        stream: TcpStream,
        peer: SocketAddr,
        slot: OwnedSemaphorePermit,
        limits: PortLimits,
        metrics: Arc<Metrics>,
    ) -> Self {
        metrics.connection(limits.port, 1);
        Self { stream, peer, _slot: slot, port: limits.port, metrics }
    }

    fn info(&self, certificate: Option<Arc<str>>) -> ConnInfo {
        ConnInfo { peer_ip: self.peer.ip().to_string().into(), certificate }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.metrics.connection(self.port, -1);
    }
}

impl AsyncRead for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Finishes a TLS handshake within the port's handshake deadline, in its
/// own task; a failed or slow one closes the connection (and frees its
/// slot) without a word to the server.
async fn tls_handshake(
    conn: Conn,
    config: Arc<rustls::ServerConfig>,
    limits: PortLimits,
    metrics: Arc<Metrics>,
    tx: mpsc::Sender<io::Result<Accepted>>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(conn)).await {
        Ok(Ok(tls)) => {
            let (conn, session) = tls.get_ref();
            // Only a certificate that chained to tls.client_ca_file gets here.
            let certificate =
                session.peer_certificates().and_then(|c| c.first()).and_then(|c| certificate_identity(c));
            let info = conn.info(certificate.map(Arc::from));
            let _ = tx.send(Ok(Accepted::new(Io::Tls(Box::new(tls)), info, limits))).await;
        }
        Ok(Err(e)) => {
            metrics.protection(Protection::TlsHandshakeFailed);
            tracing::debug!(port = limits.port.as_str(), error = %e, "TLS handshake failed");
        }
        Err(_) => metrics.protection(Protection::HandshakeTimeout),
    }
}

/// What is known of a connection: its peer and, over mutual TLS, the
/// caller its verified client certificate names. gRPC requests carry it as
/// an extension (tonic's connect info), HTTP requests too.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The TCP peer's address as text, made once per connection rather
    /// than on every request.
    pub peer_ip: Arc<str>,
    /// The client certificate's identity ([`certificate_identity`]).
    pub certificate: Option<Arc<str>>,
}

enum Io {
    Plain(Conn),
    Tls(Box<tokio_rustls::server::TlsStream<Conn>>),
}

/// A connection ready to serve (plaintext, or TLS after its handshake),
/// with the deadline for its first `handshake_bytes` of protocol.
pub struct Accepted {
    io: Io,
    info: ConnInfo,
    /// Until the protocol has started: its deadline and the bytes still owed.
    handshake: Option<(Pin<Box<tokio::time::Sleep>>, usize)>,
    metrics: Arc<Metrics>,
}

impl Accepted {
    fn plain(conn: Conn, limits: PortLimits) -> Self {
        let info = conn.info(None);
        Self::new(Io::Plain(conn), info, limits)
    }

    fn new(io: Io, info: ConnInfo, limits: PortLimits) -> Self {
        let metrics = match &io {
            Io::Plain(c) => c.metrics.clone(),
            Io::Tls(t) => t.get_ref().0.metrics.clone(),
        };
        let deadline = Box::pin(tokio::time::sleep(limits.handshake_timeout));
        Self { io, info, handshake: Some((deadline, limits.handshake_bytes)), metrics }
    }

    /// The peer and the caller's certificate identity.
    pub fn info(&self) -> &ConnInfo {
        &self.info
    }
}

impl AsyncRead for Accepted {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = match &mut this.io {
            Io::Plain(c) => Pin::new(c).poll_read(cx, buf),
            Io::Tls(t) => Pin::new(t.as_mut()).poll_read(cx, buf),
        };
        let Some((deadline, owed)) = &mut this.handshake else { return polled };
        match polled {
            Poll::Ready(Ok(())) => {
                *owed = owed.saturating_sub(buf.filled().len() - before);
                if *owed == 0 {
                    this.handshake = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.metrics.protection(Protection::HandshakeTimeout);
                    Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "handshake timeout")))
                }
                Poll::Pending => Poll::Pending,
            },
            other => other,
        }
    }
}

impl AsyncWrite for Accepted {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(c) => Pin::new(c).poll_write(cx, buf),
            Io::Tls(t) => Pin::new(t.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(c) => Pin::new(c).poll_flush(cx),
            Io::Tls(t) => Pin::new(t.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(c) => Pin::new(c).poll_shutdown(cx),
            Io::Tls(t) => Pin::new(t.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(c) => Pin::new(c).poll_write_vectored(cx, bufs),
            Io::Tls(t) => Pin::new(t.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    /// False on purpose. With vectored writes, h2 keeps any DATA frame of
    /// 256 bytes or more out of its write buffer and must flush before it
    /// buffers the next frame: every answer above that size (an Exchange
    /// token, an ext_authz answer with identity headers) cost its own
    /// `writev`, ~1.8 system calls per Check against 0.2 for a small
    /// answer, and most of the CPU that separated a Check from a no-op
    /// authorizer's. Without, h2 copies frames up to 1 KB into its buffer
    /// and writes many answers with one call (`docs/benchmarks.md`).
    fn is_write_vectored(&self) -> bool {
        false
    }
}

impl tonic::transport::server::Connected for Accepted {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

/// The HTTP port: HTTP/1.1 on every accepted connection, with
/// `header_timeout` for reading each request's head (which also closes
/// keep-alive connections idle that long), until `stop` resolves; then the
/// connections finish their current request and close.
pub async fn serve_http(
    connections: tokio_stream::wrappers::ReceiverStream<io::Result<Accepted>>,
    router: axum::Router,
    header_timeout: Duration,
    stop: impl Future<Output = ()>,
) {
    use tokio_stream::StreamExt;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(64 * 1024)
        .keep_alive(true);
    // Boxed so it can be dropped at shutdown: that closes the listening
    // socket at once, while connections in flight finish.
    let mut connections = Box::pin(connections);
    let mut stop = std::pin::pin!(stop);
    loop {
        let conn = tokio::select! {
            () = &mut stop => break,
            c = connections.next() => match c {
                Some(Ok(c)) => c,
                Some(Err(_)) => continue,
                None => break,
            },
        };
        // What is known of the connection (peer, caller certificate) rides
        // on each request as an extension; the router itself is shared (a
        // clone is a reference count), not rebuilt per connection.
        let info = conn.info().clone();
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(info.clone());
            tower::ServiceExt::oneshot(router.clone(), req)
        });
        let served = graceful.watch(builder.serve_connection(hyper_util::rt::TokioIo::new(conn), service));
        tokio::spawn(async move {
            // A connection ending in an error (timeout, reset) is the
            // client's business, not the server's.
            let _ = served.await;
        });
    }
    drop(connections);
    graceful.shutdown().await;
}

/// The process-wide limit on gRPC requests in flight: a request beyond it
/// is answered RESOURCE_EXHAUSTED at once, before its message is read. tonic
/// reserves a message's announced length as soon as its 5-byte prefix
/// arrives, so this bounds that memory at `limit × max_message_bytes`.
///
/// It also answers an oversize message with RESOURCE_EXHAUSTED (gRPC's code
/// for it, as in grpc-go and grpc-java) instead of tonic's OUT_OF_RANGE;
/// no handler of authgate's answers OUT_OF_RANGE.
#[derive(Clone)]
pub struct InFlightLayer {
    slots: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl InFlightLayer {
    /// At most `limit` requests at once.
    pub fn new(limit: usize, metrics: Arc<Metrics>) -> Self {
        Self { slots: Arc::new(Semaphore::new(limit)), metrics }
    }
}

impl<S> tower::Layer<S> for InFlightLayer {
    type Service = InFlight<S>;

    fn layer(&self, inner: S) -> InFlight<S> {
        InFlight { inner, layer: self.clone() }
    }
}

/// [`InFlightLayer`]'s service.
#[derive(Clone)]
pub struct InFlight<S> {
    inner: S,
    layer: InFlightLayer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for InFlight<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Send,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let Ok(slot) = self.layer.slots.clone().try_acquire_owned() else {
            self.layer.metrics.protection(Protection::InFlightLimit);
            let busy = tonic::Status::resource_exhausted("too many requests in flight; retry shortly");
            return Box::pin(std::future::ready(Ok(busy.into_http())));
        };
        let call = self.inner.call(req);
        Box::pin(async move {
            let mut resp = call.await?;
            drop(slot);
            // Trailers-only: a decode error (oversize message) is answered
            // before any body.
            let headers = resp.headers_mut();
            if headers.get("grpc-status").is_some_and(|v| v == "11") {
                headers.insert("grpc-status", http::HeaderValue::from_static("8"));
            }
            Ok(resp)
        })
    }
}

/// Raises the soft limit on open files to the hard limit (as Go's runtime
/// does at start), and warns when it is still below what the connection
/// caps need: both ports full plus upstream connections and files.
pub fn raise_descriptor_limit(max_connections: usize) {
    let needed = 2 * max_connections as u64 + 128;
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    let raised = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return;
        }
        if limit.rlim_cur < limit.rlim_max {
            let wanted = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
                limit = wanted;
            }
        }
        limit.rlim_cur
    };
    if raised < needed {
        tracing::warn!(
            open_files = raised,
            needed,
            "the open-file limit is below what server.max_connections needs; new connections may be refused (EMFILE) before the cap"
        );
    }
}

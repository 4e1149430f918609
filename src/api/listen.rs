//! The server's front door: accepts connections, speaks TLS when it has a certificate, and holds
//! the connection-level limits before a request reaches the router.
//!
//! - At most `max_connections` connections are served at once. One more is answered `503`
//!   with `Retry-After` and closed; a flood beyond as many again is closed unanswered, so it
//!   cannot cost a task per connection.
//! - A client has `request_timeout` to send a request's head, which may be at most
//!   `max_header_bytes` (hyper answers `431`); with TLS, the handshake must also finish in
//!   that time.
//! - With TLS, a connection whose first byte does not start a TLS handshake is plain HTTP on the
//!   HTTPS port: it is answered `400` in plain HTTP, naming the `https://` address to use.
//! - [`Front::run`] stops accepting when told to, then lets the connections in flight finish
//!   their request, at most for the drain time.
//!
//! HTTP/1.1 only: what OneForm's clients (Ruby, Python `requests`, FireEdge) speak.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use super::ApiError;
use crate::service::Error;
use crate::settings::{Server, Tls};

/// The first byte of every TLS connection: a handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// A listening socket and what every connection is served with.
pub struct Front {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    http: hyper::server::conn::http1::Builder,
    /// Connections being served.
    slots: Arc<Semaphore>,
    /// Connections being refused (answered 503).
    refusals: Arc<Semaphore>,
    limits: Server,
}

impl Front {
    /// Binds `limits.listen` and, with `limits.tls`, reads the certificate and key (a clear
    /// error for each way they can be wrong).
    pub async fn bind(limits: &Server) -> Result<Front, Error> {
        let tls = limits.tls.as_ref().map(acceptor).transpose()?;
        let listener = TcpListener::bind(&limits.listen).await.map_err(|e| {
            Error::invalid(format!(
                "cannot listen on {}: {e}; pick another address with --listen or FORMWORK_LISTEN",
                limits.listen
            ))
        })?;
        let address = listener.local_addr()?;
        if tls.is_none() && !address.ip().is_loopback() {
            tracing::warn!(%address, "serving plain HTTP beyond this machine: passwords cross the network in clear; give --tls-cert and --tls-key");
        }
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new()).header_read_timeout(limits.request_timeout).max_buf_size(limits.max_header_bytes);
        Ok(Front {
            listener,
            tls,
            http,
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            refusals: Arc::new(Semaphore::new(limits.max_connections)),
            limits: limits.clone(),
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        Ok(self.listener.local_addr()?)
    }

    /// `https://ADDR` or `http://ADDR`.
    pub fn url(&self) -> Result<String, Error> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        Ok(format!("{scheme}://{}", self.local_addr()?))
    }

    /// Serves `app` until `stop` resolves, then lets the connections in flight finish their
    /// request for at most `drain`.
    pub async fn run(self, app: axum::Router, stop: impl Future<Output = ()>, drain: Duration) {
        let graceful = GracefulShutdown::new();
        let url = self.url().unwrap_or_default();
        tokio::pin!(stop);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait rather than spin.
                        tracing::warn!(error = %e, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = &mut stop => break,
            };
            let _ = stream.set_nodelay(true);
            let connection = Connection {
                tls: self.tls.clone(),
                http: self.http.clone(),
                timeout: self.limits.request_timeout,
                watcher: graceful.watcher(),
                url: url.clone(),
                peer,
            };
            match self.slots.clone().try_acquire_owned() {
                Ok(slot) => {
                    let app = app.clone();
                    tokio::spawn(async move {
                        connection.serve(stream, app).await;
                        drop(slot);
                    });
                }
                Err(_) => match self.refusals.clone().try_acquire_owned() {
                    Ok(refusal) => {
                        let busy = busy(self.limits.max_connections);
                        tracing::warn!(%peer, max = self.limits.max_connections, "connection refused: too many");
                        tokio::spawn(async move {
                            connection.refuse(stream, busy).await;
                            drop(refusal);
                        });
                    }
                    Err(_) => drop(stream),
                },
            }
        }
        drop(self.listener);
        if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
            tracing::warn!("in-flight requests did not finish in time; stopping anyway");
        }
    }
}

/// One accepted connection.
struct Connection {
    tls: Option<TlsAcceptor>,
    http: hyper::server::conn::http1::Builder,
    timeout: Duration,
    watcher: Watcher,
    url: String,
    peer: SocketAddr,
}

impl Connection {
    /// Serves the connection's requests with `app`, each told who sent it (`ConnectInfo`).
    async fn serve(self, stream: TcpStream, app: axum::Router) {
        let peer = self.peer;
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let mut app = app.clone();
            async move { Ok::<_, Infallible>(tower_service::Service::call(&mut app, req).await.into_response()) }
        });
        match self.tls.clone() {
            None => self.http_over(stream, service).await,
            Some(tls) => match self.tls_first(&stream).await {
                Some(true) => match tokio::time::timeout(self.timeout, tls.accept(stream)).await {
                    Ok(Ok(stream)) => self.http_over(stream, service).await,
                    Ok(Err(e)) => tracing::debug!(peer = %self.peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(peer = %self.peer, "TLS handshake timed out"),
                },
                Some(false) => {
                    let message = format!("this port speaks HTTPS: use {}", self.url);
                    let refusal = Refusal { error: ApiError::new(StatusCode::BAD_REQUEST, message), retry_after: None };
                    self.http_over_once(stream, refusal.service()).await;
                }
                None => {}
            },
        }
    }

    /// Answers every request on the connection with `answer`, then closes it; with TLS, after
    /// the handshake (a TLS client could not read a plain answer).
    async fn refuse(self, stream: TcpStream, refusal: Refusal) {
        let service = refusal.service();
        match self.tls.clone() {
            None => self.http_over_once(stream, service).await,
            Some(tls) => match self.tls_first(&stream).await {
                Some(true) => {
                    if let Ok(Ok(stream)) = tokio::time::timeout(self.timeout, tls.accept(stream)).await {
                        self.http_over_once(stream, service).await;
                    }
                }
                Some(false) => self.http_over_once(stream, service).await,
                None => {}
            },
        }
    }

    /// Whether the client's first byte starts a TLS handshake; `None` if it sent nothing in
    /// time or closed.
    async fn tls_first(&self, stream: &TcpStream) -> Option<bool> {
        let mut first = [0u8; 1];
        match tokio::time::timeout(self.timeout, stream.peek(&mut first)).await {
            Ok(Ok(1)) => Some(first[0] == TLS_HANDSHAKE),
            _ => None,
        }
    }

    async fn http_over<I, S>(self, io: I, service: S)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        S: hyper::service::Service<Request<Incoming>, Response = Response, Error = Infallible> + Send + 'static,
        S::Future: Send + 'static,
    {
        let connection = self.http.serve_connection(TokioIo::new(io), service);
        if let Err(e) = self.watcher.watch(connection).await {
            tracing::debug!(peer = %self.peer, error = %e, "connection ended with an error");
        }
    }

    /// One answer, then the connection closes.
    async fn http_over_once<I, S>(&self, io: I, service: S)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        S: hyper::service::Service<Request<Incoming>, Response = Response, Error = Infallible> + Send + 'static,
        S::Future: Send + 'static,
    {
        let mut http = self.http.clone();
        http.keep_alive(false);
        let connection = http.serve_connection(TokioIo::new(io), service);
        let _ = tokio::time::timeout(self.timeout, connection).await;
    }
}

/// The answer to a connection beyond `max_connections`.
fn busy(max: usize) -> Refusal {
    let message =
        format!("formwork is serving its most connections at once ({max}, max_connections); try again shortly");
    Refusal { error: ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message), retry_after: Some(1) }
}

/// The one answer a refused connection gets.
struct Refusal {
    error: ApiError,
    retry_after: Option<u64>,
}

impl Refusal {
    /// A service answering every request with this refusal.
    fn service(
        self,
    ) -> impl hyper::service::Service<
        Request<Incoming>,
        Response = Response,
        Error = Infallible,
        Future = std::future::Ready<Result<Response, Infallible>>,
    > + Send
    + 'static {
        let status = self.error.status;
        let body = axum::body::Bytes::from(self.error.body().to_string());
        let retry_after = self.retry_after;
        hyper::service::service_fn(move |_req: Request<Incoming>| {
            let mut response = Response::new(axum::body::Body::from(body.clone()));
            *response.status_mut() = status;
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            if let Some(seconds) = retry_after {
                headers.insert(header::RETRY_AFTER, seconds.into());
            }
            std::future::ready(Ok(response))
        })
    }
}

/// The TLS acceptor for `files`: every way the files can be wrong is named.
fn acceptor(files: &Tls) -> Result<TlsAcceptor, Error> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str, path: &std::path::Path, why: String| {
        Error::invalid(format!(
            "TLS {what} {}: {why}; set tls_cert/tls_key (or --tls-cert/--tls-key) to PEM files",
            path.display()
        ))
    };
    let pem_error = |e: rustls::pki_types::pem::Error| match e {
        rustls::pki_types::pem::Error::Io(e) => format!("cannot read it: {e}"),
        other => format!("not valid PEM: {other}"),
    };
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| bad("certificate", &files.cert, pem_error(e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("certificate", &files.cert, pem_error(e)))?;
    if chain.is_empty() {
        return Err(bad("certificate", &files.cert, "it holds no CERTIFICATE block".into()));
    }
    if let Ok(meta) = std::fs::metadata(&files.key)
        && std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o077 != 0
    {
        tracing::warn!(key = %files.key.display(), "the TLS key may be read by other users; chmod 600 it");
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            bad("key", &files.key, "it holds no PRIVATE KEY block (PKCS#8, PKCS#1 or SEC1)".into())
        }
        other => bad("key", &files.key, pem_error(other)),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(Error::internal)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            Error::invalid(format!(
                "TLS key {} and certificate {} do not make a pair: {e}; give the key the certificate was made for",
                files.key.display(),
                files.cert.display()
            ))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

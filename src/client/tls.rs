//! HTTPS for the client. [`Connector`] is what hyper-util's pooled client connects through: TCP
//! from hyper-util's `HttpConnector` (connect timeout, no Nagle delay) and, for an `https://`
//! URI, a rustls handshake (ring provider, ALPN `http/1.1`) that checks the server's certificate
//! against the [`CaFile`] the config names, for the URI's host (a name or an IP address). A
//! handshake that fails is [`Refused`], worded for people: untrusted, another host's, expired,
//! or no TLS at all, with what to do.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::config::{CaFile, Config};
use crate::service::Error;

/// Largest CA file read: the system bundle of public CAs is about 200 KiB.
const MAX_CA_BYTES: u64 = 16 * 1024 * 1024;

/// What the pooled client's connect errors are boxed as.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What to do about a certificate the client does not accept.
const TRUST_ADVICE: &str =
    "set ONEFORM_CA_FILE to a PEM file holding the server's certificate or the CA that signed it";

/// Opens connections for the pooled client: plain TCP for `http://`, TLS over it for `https://`.
#[derive(Clone)]
pub struct Connector {
    tcp: HttpConnector,
    /// `None` when the config names no CA file (an `http://` server).
    tls: Option<Tls>,
}

/// The TLS side: the rustls client and, for messages, the file it trusts.
#[derive(Clone)]
struct Tls {
    connector: TlsConnector,
    ca_file: CaFile,
    /// The handshake's bound: a server that accepts TCP and never answers TLS must not hang
    /// the command until the request timeout.
    timeout: Duration,
}

impl Connector {
    /// The connector for `config`; reads its CA file, if any, so a wrong one is refused before
    /// any request.
    pub fn new(config: &Config) -> Result<Connector, Error> {
        let mut tcp = HttpConnector::new();
        // The scheme is ours to handle: `HttpConnector` would refuse `https://` URIs.
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(config.connect_timeout));
        tcp.set_nodelay(true);
        let tls = match &config.ca_file {
            Some(ca_file) => Some(Tls {
                connector: TlsConnector::from(Arc::new(client_config(ca_file)?)),
                ca_file: ca_file.clone(),
                timeout: config.connect_timeout,
            }),
            None => None,
        };
        Ok(Connector { tcp, tls })
    }
}

/// A rustls client that trusts exactly the certificates of `ca_file` and offers HTTP/1.1.
fn client_config(ca_file: &CaFile) -> Result<rustls::ClientConfig, Error> {
    let mut roots = rustls::RootCertStore::empty();
    let (added, _unusable) = roots.add_parsable_certificates(certificates(ca_file)?);
    if added == 0 {
        return Err(Error::invalid(format!(
            "the CA file {ca_file} holds no certificate rustls can use; {TRUST_ADVICE}"
        )));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(Error::internal)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Every `CERTIFICATE` block of the file; an unreadable file, broken PEM or no block at all is
/// an error naming the file and the setting that named it.
fn certificates(ca_file: &CaFile) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, Error> {
    use io::Read as _;
    use rustls::pki_types::pem::{self, PemObject};
    let mut text = Vec::new();
    std::fs::File::open(&ca_file.path)
        .and_then(|f| f.take(MAX_CA_BYTES).read_to_end(&mut text))
        .map_err(|e| Error::invalid(format!("cannot read the CA file {ca_file}: {e}")))?;
    let certificates = rustls::pki_types::CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, pem::Error>>()
        .map_err(|e| Error::invalid(format!("the CA file {ca_file} is not valid PEM: {e}; {TRUST_ADVICE}")))?;
    if certificates.is_empty() {
        return Err(Error::invalid(format!("the CA file {ca_file} holds no CERTIFICATE block; {TRUST_ADVICE}")));
    }
    Ok(certificates)
}

impl tower_service::Service<Uri> for Connector {
    type Response = Stream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.tcp.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let tcp = self.tcp.call(uri.clone());
        let tls = self.tls.clone();
        Box::pin(async move {
            let tcp = tcp.await?;
            if uri.scheme() != Some(&hyper::http::uri::Scheme::HTTPS) {
                return Ok(Stream::Plain(tcp));
            }
            let Some(tls) = tls else {
                return Err(format!("{uri} is HTTPS but no certificates to trust were given; {TRUST_ADVICE}").into());
            };
            tls.handshake(&uri, tcp.into_inner()).await
        })
    }
}

impl Tls {
    async fn handshake(&self, uri: &Uri, tcp: TcpStream) -> Result<Stream, BoxError> {
        let host = uri.host().unwrap_or_default();
        // An IPv6 host comes bracketed (`[::1]`); the certificate names the bare address.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(bare.to_string())
            .map_err(|e| format!("'{host}' cannot be checked against a certificate: {e}"))?;
        match tokio::time::timeout(self.timeout, self.connector.connect(name, tcp)).await {
            Ok(Ok(stream)) => Ok(Stream::Tls(Box::new(TokioIo::new(stream)))),
            Ok(Err(e)) => Err(Box::new(Refused::new(host, &self.ca_file, e))),
            Err(_) => {
                Err(format!("no TLS handshake with {host} within {}", crate::units::duration(self.timeout)).into())
            }
        }
    }
}

/// A TLS handshake that failed, said in words with what to do; rustls' own error is the source.
#[derive(Debug, thiserror::Error)]
#[error("{words}")]
pub struct Refused {
    words: String,
    source: io::Error,
}

impl Refused {
    fn new(host: &str, ca_file: &CaFile, source: io::Error) -> Refused {
        let rustls = source.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>());
        let words = match rustls {
            Some(error) => words(host, ca_file, error),
            None if source.kind() == io::ErrorKind::UnexpectedEof => {
                format!("{host} closed the connection during the TLS handshake; is it a TLS server?")
            }
            None => format!("the TLS handshake with {host} failed: {source}"),
        };
        Refused { words, source }
    }
}

/// What a rustls handshake error means for someone running the CLI.
fn words(host: &str, ca_file: &CaFile, error: &rustls::Error) -> String {
    use rustls::CertificateError as Cert;
    let rustls::Error::InvalidCertificate(cert) = error else {
        return match error {
            rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
                format!("{host} did not answer in TLS ({error}); if the server speaks plain HTTP, use an http:// URL")
            }
            _ => format!("the TLS handshake with {host} failed: {error}"),
        };
    };
    match cert {
        Cert::UnknownIssuer | Cert::BadSignature => format!(
            "the certificate of {host} is not trusted: no certificate in {ca_file} signed it ({error}); {TRUST_ADVICE}"
        ),
        Cert::NotValidForName | Cert::NotValidForNameContext { .. } => format!(
            "the certificate {host} presented names another host ({error}); use a URL with a host name the certificate holds, or {TRUST_ADVICE}"
        ),
        Cert::Expired | Cert::ExpiredContext { .. } => {
            format!("the certificate of {host} has expired ({error}); the server needs a new one")
        }
        Cert::NotValidYet | Cert::NotValidYetContext { .. } => {
            format!("the certificate of {host} is not valid yet ({error}); check this machine's clock")
        }
        _ => format!("the certificate of {host} is not accepted ({error}); {TRUST_ADVICE}"),
    }
}

/// A connection the pool reads and writes: plain TCP, or TLS over it.
pub enum Stream {
    Plain(TokioIo<TcpStream>),
    /// Boxed: a TLS session is a few kilobytes, a plain stream a few bytes.
    Tls(Box<TokioIo<TlsStream<TcpStream>>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        match self {
            Stream::Plain(tcp) => tcp.connected(),
            // Only HTTP/1.1 is offered, so there is no negotiated HTTP/2 to report.
            Stream::Tls(tls) => tls.inner().get_ref().0.connected(),
        }
    }
}

impl Read for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: ReadBufCursor<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(tls) => Pin::new(&mut **tls).poll_read(cx, buf),
        }
    }
}

impl Write for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(tls) => Pin::new(&mut **tls).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => Pin::new(&mut **tls).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(tls) => Pin::new(&mut **tls).poll_shutdown(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(tcp) => tcp.is_write_vectored(),
            Stream::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Stream::Tls(tls) => Pin::new(&mut **tls).poll_write_vectored(cx, bufs),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use tower_service::Service as _;

    use super::*;
    use crate::client::config::CaSource;
    use crate::client::{Config, Credentials};

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls").join(name)
    }

    fn oneform_ca_file(path: &Path) -> CaFile {
        CaFile { path: path.to_path_buf(), named_by: CaSource::OneformCaFile }
    }

    #[test]
    fn a_ca_file_that_cannot_be_used_is_named_with_its_variable() {
        let tmp = tempfile::tempdir().unwrap();
        let empty = tmp.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let broken = tmp.path().join("broken.pem");
        std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\nnot base64 !!\n").unwrap();
        let garbage = tmp.path().join("garbage.pem");
        std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
        let cases = [
            (tmp.path().join("missing.pem"), "cannot read the CA file"),
            (empty, "holds no CERTIFICATE block"),
            (fixture("key.pem"), "holds no CERTIFICATE block"),
            (broken, "is not valid PEM"),
            (garbage, "holds no certificate rustls can use"),
        ];
        for (path, says) in cases {
            let error = client_config(&oneform_ca_file(&path)).unwrap_err().to_string();
            assert!(error.contains(says), "{}: {error}", path.display());
            assert!(error.contains(&format!("{} (ONEFORM_CA_FILE)", path.display())), "{error}");
        }
        let system = CaFile { path: tmp.path().join("none.crt"), named_by: CaSource::System };
        let error = client_config(&system).unwrap_err().to_string();
        assert!(error.contains("none.crt (the system bundle)"), "{error}");
    }

    #[test]
    fn a_certificate_file_is_trusted_and_offers_http_1_1() {
        let config = client_config(&oneform_ca_file(&fixture("cert.pem"))).unwrap();
        assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
    }

    #[test]
    fn handshake_errors_are_said_in_words_with_what_to_do() {
        use rustls::CertificateError as Cert;
        let ca_file = oneform_ca_file(Path::new("/ca.pem"));
        let cases = [
            (rustls::Error::InvalidCertificate(Cert::UnknownIssuer), "is not trusted: no certificate in /ca.pem"),
            (rustls::Error::InvalidCertificate(Cert::NotValidForName), "names another host"),
            (rustls::Error::InvalidCertificate(Cert::Expired), "has expired"),
            (rustls::Error::InvalidCertificate(Cert::NotValidYet), "check this machine's clock"),
            (rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType), "did not answer in TLS"),
            (rustls::Error::DecryptError, "the TLS handshake with h failed"),
        ];
        for (error, says) in cases {
            let refused = Refused::new("h", &ca_file, io::Error::new(io::ErrorKind::InvalidData, error.clone()));
            let text = refused.to_string();
            assert!(text.contains(says) && text.contains(&error.to_string()), "{error:?}: {text}");
            let advises = text.contains("ONEFORM_CA_FILE");
            assert_eq!(
                advises,
                matches!(error, rustls::Error::InvalidCertificate(Cert::UnknownIssuer | Cert::NotValidForName)),
                "{text}"
            );
        }
        let eof = Refused::new("h", &ca_file, io::Error::from(io::ErrorKind::UnexpectedEof));
        assert!(eof.to_string().contains("closed the connection during the TLS handshake"), "{eof}");
    }

    /// A TLS server on `addr` (any loopback address) with the test certificate, which names
    /// 127.0.0.1 and localhost; each connection is held open until the client closes it.
    async fn tls_server(addr: &str) -> std::net::SocketAddr {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_file_iter(fixture("cert.pem")).unwrap().collect::<Result<Vec<_>, _>>();
        let key = PrivateKeyDer::from_pem_file(fixture("key.pem")).unwrap();
        let mut config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain.unwrap(), key)
                .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let local = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut stream) = acceptor.accept(tcp).await {
                        let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut [0u8; 1]).await;
                    }
                });
            }
        });
        local
    }

    #[tokio::test]
    async fn https_uris_get_a_handshake_for_their_host_and_http_uris_plain_tcp() {
        let mut config = Config::new("http://127.0.0.1:1", Credentials::new("u", "p")).unwrap();
        config.ca_file = Some(oneform_ca_file(&fixture("cert.pem")));
        let mut connector = Connector::new(&config).unwrap();
        let named = tls_server("127.0.0.1:0").await;

        let stream = connector.call(format!("https://{named}").parse().unwrap()).await.unwrap();
        let Stream::Tls(tls) = stream else { panic!("https:// gives a TLS stream") };
        assert_eq!(tls.inner().get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        let plain = connector.call(format!("http://{named}").parse().unwrap()).await.unwrap();
        assert!(matches!(plain, Stream::Plain(_)), "http:// gives plain TCP");

        // 127.0.0.2 is this machine too, but the certificate does not name it.
        let unnamed = tls_server("127.0.0.2:0").await;
        let error = connector.call(format!("https://{unnamed}").parse().unwrap()).await.err().unwrap();
        let refused = error.downcast_ref::<Refused>().unwrap_or_else(|| panic!("not refused: {error}"));
        let text = refused.to_string();
        assert!(text.contains("the certificate 127.0.0.2 presented names another host"), "{text}");
    }
}

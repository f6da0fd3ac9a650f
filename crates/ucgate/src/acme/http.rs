//! The HTTPS client instant-acme talks to the CA through: one connection
//! per request (an order is a handful of requests), verified with the
//! gateway's own TLS client configuration (`acme.ca_file`, else the
//! system's roots), so ACME trusts what every other TLS client here trusts.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http::header::HOST;
use http::{Request, Uri};
use hyper_util::rt::TokioIo;
use instant_acme::{BodyWrapper, BytesResponse, Error, HttpClient};
use rustls_pki_types::ServerName;

/// Connect, TLS and each response head are bounded by this.
const TIMEOUT: Duration = Duration::from_secs(30);

pub(super) struct AcmeHttp {
    tls: crate::tls::ClientTls,
}

impl AcmeHttp {
    pub(super) fn new(tls: &crate::tls::ClientTls) -> Self {
        AcmeHttp {
            tls: tls.with_alpn(&[b"http/1.1"]),
        }
    }
}

fn other(msg: String) -> Error {
    Error::Other(msg.into())
}

async fn send(
    tls: crate::tls::ClientTls,
    mut req: Request<BodyWrapper<Bytes>>,
) -> Result<BytesResponse, Error> {
    let uri = req.uri().clone();
    let host = uri
        .host()
        .ok_or_else(|| other(format!("the URL `{uri}` has no host")))?
        .to_string();
    if uri.scheme_str() != Some("https") {
        return Err(other(format!(
            "the CA gave a URL that is not https://: `{uri}`"
        )));
    }
    let port = uri.port_u16().unwrap_or(443);
    let bare = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let tcp = tokio::time::timeout(
        TIMEOUT,
        tokio::net::TcpStream::connect((bare.as_str(), port)),
    )
    .await
    .map_err(|_| other(format!("connecting to {host}:{port} timed out")))?
    .map_err(|e| other(format!("cannot connect to {host}:{port}: {e}")))?;
    let name = ServerName::try_from(bare.clone())
        .map_err(|e| other(format!("`{host}` is not a valid TLS server name: {e}")))?;
    let stream = tokio::time::timeout(TIMEOUT, tls.connector().connect(name, tcp))
        .await
        .map_err(|_| other(format!("the TLS handshake with {host}:{port} timed out")))?
        .map_err(|e| {
            let x = tls.explain(
                ucgate_proto::certs::Peer::AcmeServer,
                &format!("{host}:{port}"),
                &bare,
                &e,
            );
            other(format!("{x} (error: {})", x.detail))
        })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| other(format!("HTTP with {host}:{port}: {e}")))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let authority = uri.authority().map(|a| a.to_string()).unwrap_or(host);
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    *req.uri_mut() = path
        .parse::<Uri>()
        .map_err(|e| other(format!("bad path in `{uri}`: {e}")))?;
    if let Ok(v) = authority.parse() {
        req.headers_mut().insert(HOST, v);
    }
    let rsp = tokio::time::timeout(TIMEOUT, sender.send_request(req))
        .await
        .map_err(|_| other(format!("no answer from `{uri}` in {}s", TIMEOUT.as_secs())))?
        .map_err(|e| other(format!("request to `{uri}` failed: {e}")))?;
    Ok(BytesResponse::from(rsp))
}

impl HttpClient for AcmeHttp {
    fn request(
        &self,
        req: Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, Error>> + Send>> {
        Box::pin(send(self.tls.clone(), req))
    }
}

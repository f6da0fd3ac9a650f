//! The PROXY protocol header at the start of a connection from a trusted
//! load balancer (`server.proxy_protocol`): reading it (the rules are in
//! `ucgate_proto::proxy_protocol`) and handing the bytes read past it to
//! TLS or HTTP through [`Prefixed`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use ucgate_proto::proxy_protocol::{self, Header, Parse, ProxyError};

/// Why a connection that had to start with a header was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    /// No header, or a malformed one.
    #[error(transparent)]
    Invalid(#[from] ProxyError),
    /// The peer closed (or failed) before the header was complete.
    #[error("the connection ended before the PROXY protocol header was complete")]
    Ended,
}

impl Refusal {
    /// The `kind` of `ucgate_errors_total`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Refusal::Invalid(ProxyError::Missing) => "proxy_header_missing",
            Refusal::Invalid(_) => "proxy_header_invalid",
            Refusal::Ended => "proxy_header_incomplete",
        }
    }
}

/// Reads the header from `io`; the header and the bytes read after it.
pub(crate) async fn read<S: AsyncRead + Unpin>(io: &mut S) -> Result<(Header, Vec<u8>), Refusal> {
    let mut buf = Vec::with_capacity(256);
    loop {
        match proxy_protocol::parse(&buf) {
            Parse::Done(header, n) => return Ok((header, buf.split_off(n))),
            Parse::Invalid(e) => return Err(e.into()),
            Parse::Incomplete => {}
        }
        // The parser refuses a header longer than V2_MAX before it is
        // complete, so this loop reads at most that plus one read.
        match io.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return Err(Refusal::Ended),
            Ok(_) => {}
        }
    }
}

/// A stream with bytes already read from it put back in front.
pub(crate) struct Prefixed<S> {
    prefix: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    /// `inner`, whose next bytes are `prefix`.
    pub(crate) fn new(prefix: Vec<u8>, inner: S) -> Self {
        Prefixed {
            prefix,
            at: 0,
            inner,
        }
    }
}

impl<S> Prefixed<S> {
    /// The stream itself.
    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.at < this.prefix.len() {
            let n = (this.prefix.len() - this.at).min(buf.remaining());
            buf.put_slice(&this.prefix[this.at..this.at + n]);
            this.at += n;
            if this.at == this.prefix.len() {
                this.prefix = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn the_bytes_after_the_header_reach_the_reader() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            // In pieces, the header's end and the request in one write.
            a.write_all(b"PROXY TCP4 192.0.2.1 ").await.unwrap();
            tokio::task::yield_now().await;
            a.write_all(b"192.0.2.2 4000 443\r\nGET / HTTP/1.1\r\n")
                .await
                .unwrap();
            a.write_all(b"\r\n").await.unwrap();
        });
        let (h, rest) = read(&mut b).await.unwrap();
        assert!(
            matches!(h, Header::Proxied { source, .. } if source.to_string() == "192.0.2.1:4000")
        );
        let mut p = Prefixed::new(rest, b);
        let mut got = Vec::new();
        p.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"GET / HTTP/1.1\r\n\r\n");
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn refusals() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let e = read(&mut b).await.unwrap_err();
        assert_eq!(e.kind(), "proxy_header_missing");
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(b"PROXY TCP4 1.2.3.4").await.unwrap();
        drop(a);
        let e = read(&mut b).await.unwrap_err();
        assert_eq!(e.kind(), "proxy_header_incomplete");
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(b"PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n")
            .await
            .unwrap();
        let e = read(&mut b).await.unwrap_err();
        assert_eq!(e.kind(), "proxy_header_invalid");
    }
}

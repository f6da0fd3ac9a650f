//! The byte stream every client speaks over.

use tokio::io::{AsyncRead, AsyncWrite};

/// Any byte stream a client can speak over (TCP, TLS, TLS inside a tunnel).
pub trait AsyncReadWrite: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncReadWrite for T {}

/// A boxed byte stream.
pub type BoxStream = Box<dyn AsyncReadWrite>;

//! What `tcp-echo` and `ws-echo` share: the self-checking message format
//! and the per-connection driver over any byte transport.
//!
//! A message is `size` ASCII bytes: the connection id (8 hex digits), the
//! sequence number (16 hex digits), then a payload of letters derived from
//! both. The echoed bytes are a stream (the transport may split or merge
//! messages), cut back into messages by the fixed size, so corruption,
//! loss, duplication and reordering are all detected.

use std::future::Future;

use super::{Ctx, MsgReceiver, MsgSender, Pacer, Release, Tracker};

/// Bytes of the header (connection id and sequence number in hex).
pub const HEADER: usize = 24;

/// The message `seq` of connection `conn`, `size` bytes (at least [`HEADER`]).
pub fn encode(conn: u32, seq: u64, size: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(size);
    v.extend_from_slice(format!("{conn:08x}{seq:016x}").as_bytes());
    v.extend((HEADER..size).map(|i| payload_byte(conn, seq, i)));
    v
}

fn payload_byte(conn: u32, seq: u64, i: usize) -> u8 {
    let x = (conn as u64)
        .wrapping_mul(7)
        .wrapping_add(seq.wrapping_mul(13))
        .wrapping_add(i as u64);
    b'a' + (x % 26) as u8
}

/// Checks one received message of connection `conn`: its sequence number,
/// or why it is wrong (with the sequence number if the header was intact).
pub fn decode(msg: &[u8], conn: u32) -> Result<u64, (Option<u64>, String)> {
    let hex = |b: &[u8]| {
        std::str::from_utf8(b)
            .ok()
            .and_then(|s| u64::from_str_radix(s, 16).ok())
    };
    let (Some(c), Some(seq)) = (hex(&msg[..8]), hex(&msg[8..HEADER])) else {
        return Err((None, format!("unreadable header {:?}", preview(msg))));
    };
    if c != conn as u64 {
        return Err((
            None,
            format!("message of connection {c} on connection {conn}"),
        ));
    }
    for (i, b) in msg.iter().enumerate().skip(HEADER) {
        if *b != payload_byte(conn, seq, i) {
            return Err((
                Some(seq),
                format!("connection {conn} message {seq}: byte {i} differs"),
            ));
        }
    }
    Ok(seq)
}

fn preview(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(HEADER)]).into_owned()
}

/// The sending half of a transport.
pub trait Sink: Send {
    fn send(&mut self, data: Vec<u8>) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// Ends the sending direction (TCP FIN, WebSocket close).
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// The receiving half: `recv` must be cancel-safe.
pub trait Source: Send {
    /// The next bytes; `Ok(None)` when the peer closed.
    fn recv(&mut self) -> impl Future<Output = anyhow::Result<Option<Vec<u8>>>> + Send;
}

/// Sends message `seq` of connection `conn`.
pub struct EchoSender<S> {
    pub sink: S,
    pub conn: u32,
    pub size: usize,
}

impl<S: Sink> MsgSender for EchoSender<S> {
    async fn send(&mut self, seq: u64) -> anyhow::Result<()> {
        self.sink.send(encode(self.conn, seq, self.size)).await
    }
    async fn close(self) {
        self.sink.close().await
    }
}

/// Cuts the echoed stream back into messages and checks them.
pub struct EchoReceiver<R> {
    pub source: R,
    pub size: usize,
    pub buf: Vec<u8>,
}

impl<R: Source> MsgReceiver for EchoReceiver<R> {
    async fn recv(&mut self, t: &mut Tracker<'_>) -> anyhow::Result<bool> {
        let Some(bytes) = self.source.recv().await? else {
            return Ok(false);
        };
        self.buf.extend_from_slice(&bytes);
        let size = self.size;
        let whole = self.buf.len() / size * size;
        for msg in self.buf[..whole].chunks_exact(size) {
            match decode(msg, t.conn) {
                Ok(seq) => t.complete(seq),
                Err((seq, why)) => t.corrupted(seq, why),
            }
        }
        self.buf.drain(..whole);
        Ok(true)
    }
    async fn finish(&mut self) {
        while let Ok(Some(_)) = self.source.recv().await {}
    }
}

/// Runs one echo connection (see [`super::drive`]).
pub async fn drive<S: Sink, R: Source>(
    ctx: &Ctx,
    conn: u32,
    sink: S,
    source: R,
    pacer: Pacer,
    release: Release,
) {
    let size = ctx.size;
    super::drive(
        ctx,
        conn,
        EchoSender { sink, conn, size },
        EchoReceiver {
            source,
            size,
            buf: Vec::new(),
        },
        pacer,
        release,
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_and_corruption() {
        let m = encode(7, 42, 64);
        assert_eq!(m.len(), 64);
        assert_eq!(decode(&m, 7), Ok(42));
        let mut bad = m.clone();
        bad[40] ^= 1;
        assert_eq!(decode(&bad, 7).unwrap_err().0, Some(42));
        assert_eq!(decode(&m, 8).unwrap_err().0, None);
        assert!(std::str::from_utf8(&m).is_ok());
    }
}

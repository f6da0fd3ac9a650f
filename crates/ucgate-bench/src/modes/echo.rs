//! What `tcp-echo` and `ws-echo` share: the self-checking message format
//! and the per-connection driver over any byte transport.
//!
//! A message is `size` ASCII bytes: the connection id (8 hex digits), the
//! sequence number (16 hex digits), then a payload of letters derived from
//! both. The echoed bytes are a stream (the transport may split or merge
//! messages), cut back into messages by the fixed size, so corruption,
//! loss, duplication and reordering are all detected.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::{Matched, Pacer, Pending, Release};
use crate::stats::{Clock, Latency, Shared};

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

/// What every connection of a run shares.
pub struct Ctx {
    pub shared: Arc<Shared>,
    pub clock: Clock,
    pub size: usize,
}

/// Sends paced messages and checks their echo until the run is over and
/// every reply has come back (or the drain timeout passed).
pub async fn drive<S: Sink, R: Source>(
    ctx: &Ctx,
    conn: u32,
    mut sink: S,
    mut source: R,
    mut pacer: Pacer,
    release: Release,
) {
    let shared = &ctx.shared;
    let clock = ctx.clock;
    let size = ctx.size;
    let pending = Pending::default();
    let (done_tx, mut done_rx) = watch::channel(false);
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let mut latency = Latency::default();
    let sender = async {
        let mut seq = 0u64;
        loop {
            let t = tokio::select! {
                t = pacer.next() => t,
                _ = stop_rx.changed() => None,
            };
            let Some(t) = t else { break };
            pending.push(seq, t);
            if let Err(e) = sink.send(encode(conn, seq, size)).await {
                shared.error("send", format!("connection {conn}: {e:#}"));
                break;
            }
            seq += 1;
        }
        let _ = done_tx.send(true);
        sink
    };
    let receiver = async {
        let mut buf: Vec<u8> = Vec::new();
        let mut done = false;
        let complete = |seq: u64, shared: &Shared, latency: &mut Latency| {
            let now = Instant::now();
            let sent = match pending.take(seq) {
                Matched::InOrder(sent) => sent,
                Matched::Skipped { sent, missing } => {
                    shared.errors_n(
                        "lost",
                        missing,
                        format!("connection {conn}: {missing} message(s) missing before {seq}"),
                    );
                    for _ in 0..missing {
                        release.release();
                    }
                    sent
                }
                Matched::Unknown => {
                    shared.error(
                        "duplicated",
                        format!("connection {conn}: message {seq} again or out of order"),
                    );
                    return;
                }
            };
            release.release();
            if clock.counted(sent) {
                latency.record(now - sent);
                shared.message(size as u64);
            }
        };
        loop {
            if done && pending.is_empty() {
                break;
            }
            tokio::select! {
                r = source.recv() => match r {
                    Ok(Some(bytes)) => {
                        buf.extend_from_slice(&bytes);
                        let whole = buf.len() / size * size;
                        for msg in buf[..whole].chunks_exact(size) {
                            match decode(msg, conn) {
                                Ok(seq) => complete(seq, shared, &mut latency),
                                Err((seq, why)) => {
                                    shared.error("corrupted", why);
                                    if let Some(seq) = seq {
                                        let _ = pending.take(seq);
                                        release.release();
                                    }
                                }
                            }
                        }
                        buf.drain(..whole);
                    }
                    Ok(None) => {
                        if !done || !pending.is_empty() {
                            shared.error("unexpected_close", format!("connection {conn} closed by the peer"));
                        }
                        break;
                    }
                    Err(e) => {
                        shared.error("receive", format!("connection {conn}: {e:#}"));
                        break;
                    }
                },
                _ = done_rx.changed(), if !done => done = true,
                _ = tokio::time::sleep_until(clock.drain_until), if done => {
                    let n = pending.len() as u64;
                    shared.errors_n("lost", n, format!("connection {conn}: {n} message(s) never echoed"));
                    break;
                }
            }
        }
        let _ = stop_tx.send(true);
        source
    };
    let (sink, mut source) = tokio::join!(sender, receiver);
    shared.merge_latency(&latency);
    sink.close().await;
    // Let the peer finish closing (bounded); nothing after the run counts.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Ok(Some(_)) = source.recv().await {}
    })
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

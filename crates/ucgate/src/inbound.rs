//! Reading from a backend or an XMPP server in bursts, for the tunnel, the
//! XMPP WebSocket adapter and the BOSH actor alike: the first read of a
//! burst gets [`FIRST_READ`] bytes of room; a read that fills its room is
//! followed by reads that do not wait, up to the caller's chunk; what was
//! read is taken whole, with its storage. Where the socket's readiness is
//! awaited before room is made (plain TCP to a tunnel backend or an XMPP
//! server: `backend.rs`, `xmpp::server`) an idle connection holds no read
//! buffer at all; over TLS, `FIRST_READ` bytes.

use bytes::BytesMut;

/// Room for the first read of a burst.
pub(crate) const FIRST_READ: usize = 512;

/// One connection's read buffer.
#[derive(Default)]
pub(crate) struct Inbound {
    buf: BytesMut,
}

impl Inbound {
    /// The buffer, for a read that makes its own room.
    pub(crate) fn buf(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// The buffer with room for at least `first` more bytes (the first read
    /// of a burst).
    pub(crate) fn first(&mut self, first: usize) -> &mut BytesMut {
        if self.buf.capacity() - self.buf.len() < first {
            self.buf.reserve(first);
        }
        &mut self.buf
    }

    /// After a read that filled the buffer, reads on while `read` finds
    /// bytes already there (it must not wait: `None` when it would), up to
    /// `max` bytes in the buffer. An end of stream or an error met here is
    /// left for the next waiting read to report.
    pub(crate) fn read_on(
        &mut self,
        max: usize,
        mut read: impl FnMut(&mut BytesMut) -> Option<std::io::Result<usize>>,
    ) {
        while self.buf.len() == self.buf.capacity() && self.buf.len() < max {
            self.buf.reserve(max - self.buf.len());
            match read(&mut self.buf) {
                Some(Ok(k)) if k > 0 => {}
                _ => break,
            }
        }
    }

    /// Bytes read so far.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.buf.len()
    }

    /// Takes what was read together with its storage: a reader that makes
    /// room only once its socket is readable then holds no buffer between
    /// bursts. (Room kept for the next burst would share the taken bytes'
    /// allocation, and so keep it alive after they are consumed: about 500
    /// bytes per idle session, measured with heaptrack.)
    pub(crate) fn take_all(&mut self) -> BytesMut {
        std::mem::take(&mut self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that has `avail` bytes ready, then would block.
    fn source(
        avail: &mut usize,
    ) -> impl FnMut(&mut BytesMut) -> Option<std::io::Result<usize>> + '_ {
        move |b: &mut BytesMut| {
            if *avail == 0 {
                return None;
            }
            let n = (b.capacity() - b.len()).min(*avail);
            b.extend(std::iter::repeat_n(b'x', n));
            *avail -= n;
            Some(Ok(n))
        }
    }

    #[test]
    fn a_burst_is_read_up_to_the_chunk_and_taken_with_its_storage() {
        let mut i = Inbound::default();
        assert_eq!(i.buf().capacity(), 0, "nothing held before the first read");
        let mut avail = 20_000;
        let mut src = source(&mut avail);
        src(i.first(FIRST_READ));
        assert_eq!(i.len(), FIRST_READ);
        i.read_on(8192, &mut src);
        assert_eq!(i.len(), 8192, "read on without waiting, up to the chunk");
        let data = i.take_all();
        assert_eq!(data.len(), 8192);
        assert_eq!(i.buf().capacity(), 0, "the storage goes with the bytes");
        drop(data);
        // a short read does not read on
        let mut avail = 100;
        let mut src = source(&mut avail);
        src(i.first(FIRST_READ));
        i.read_on(8192, &mut src);
        assert_eq!(i.take_all().len(), 100);
    }

    #[test]
    fn take_all_leaves_no_storage_behind() {
        let mut i = Inbound::default();
        let mut avail = 100;
        let mut src = source(&mut avail);
        src(i.first(FIRST_READ));
        assert_eq!(i.take_all().len(), 100);
        assert_eq!(i.buf().capacity(), 0);
    }

    #[test]
    fn read_on_stops_at_the_end_of_what_is_there() {
        let mut i = Inbound::default();
        let mut avail = FIRST_READ + 300;
        let mut src = source(&mut avail);
        src(i.first(FIRST_READ));
        i.read_on(8192, &mut src);
        assert_eq!(i.take_all().len(), FIRST_READ + 300);
    }
}

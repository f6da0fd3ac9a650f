//! A BOSH session's mailbox: what the HTTP side hands the session's actor
//! (requests, unparseable requests, requests gone), bounded, in order.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, Notify};
use ucgate_proto::bosh::{Request, RequestId};

/// An answer: HTTP status, body, and the session's `content` type (XEP-0124
/// §7.1: the Content-Type for every response) when it has one.
pub(crate) type Reply = (u16, String, Option<String>);

/// What the HTTP side sends a session actor (always boxed, see [`Mailbox`],
/// so the size difference between the variants costs nothing).
#[allow(clippy::large_enum_variant)]
pub(crate) enum Command {
    /// A request for the session; the actor answers on `reply`.
    Request {
        req: Request,
        id: RequestId,
        reply: oneshot::Sender<Reply>,
        /// The body's size in bytes (for the access log).
        body_len: usize,
    },
    /// A request naming the session that could not be parsed: the session
    /// answers it with `condition` and ends (XEP-0124 §17).
    Bad {
        id: RequestId,
        condition: ucgate_proto::bosh::Condition,
        reply: oneshot::Sender<Reply>,
    },
    /// The HTTP client of a held request went away.
    Gone(RequestId),
}

/// Most commands a session's mailbox holds; more means a client far beyond
/// its `requests` limit (the session answers overactivity long before).
pub(crate) const MAILBOX_MAX: usize = 64;

/// A session's mailbox: what the HTTP side hands its actor. A mutex-guarded
/// queue and a wake-up rather than a tokio channel, which allocates room
/// for 32 items and two cache-line-padded halves up front (about 800
/// bytes) for every session, idle or not (docs/performance.md); an empty
/// mailbox holds no storage.
#[derive(Default)]
pub(crate) struct Mailbox {
    inner: Mutex<MailboxInner>,
    wake: Notify,
}

#[derive(Default)]
struct MailboxInner {
    queue: VecDeque<Box<Command>>,
    closed: bool,
}

impl Mailbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, MailboxInner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Queues a command. Refused once the actor has ended, or when
    /// [`MAILBOX_MAX`] commands wait and `force` is not set (`Gone` notices
    /// are always taken: each stands for a request already held).
    pub(crate) fn send(&self, cmd: Box<Command>, force: bool) -> Result<(), Refused> {
        {
            let mut g = self.lock();
            if g.closed {
                return Err(Refused::Closed);
            }
            if !force && g.queue.len() >= MAILBOX_MAX {
                return Err(Refused::Full);
            }
            g.queue.push_back(cmd);
        }
        self.wake.notify_one();
        Ok(())
    }

    /// The next command (for the actor). `None` once closed.
    pub(crate) async fn recv(&self) -> Option<Box<Command>> {
        loop {
            {
                let mut g = self.lock();
                if let Some(c) = g.queue.pop_front() {
                    if g.queue.is_empty() {
                        g.queue = VecDeque::new();
                    }
                    return Some(c);
                }
                if g.closed {
                    return None;
                }
            }
            // A command queued after the check above left a permit, so
            // this returns at once (Notify::notify_one).
            self.wake.notified().await;
        }
    }

    /// Refuses further commands and drops the queued ones (their requests
    /// learn that the session is gone when their reply channel closes).
    pub(crate) fn close(&self) {
        let queued = {
            let mut g = self.lock();
            g.closed = true;
            std::mem::take(&mut g.queue)
        };
        drop(queued);
    }
}

/// Why [`Mailbox::send`] refused a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The session has ended.
    Closed,
    /// [`MAILBOX_MAX`] commands are waiting.
    Full,
}

/// The actor's end of a mailbox: closes it when dropped, however the actor
/// ends.
pub(crate) struct Inbox(pub(crate) Arc<Mailbox>);

impl Drop for Inbox {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn gone(id: RequestId) -> Box<Command> {
        Box::new(Command::Gone(id))
    }

    fn id_of(c: Option<Box<Command>>) -> RequestId {
        match c.map(|c| *c) {
            Some(Command::Gone(id)) => id,
            _ => panic!("expected a Gone command"),
        }
    }

    #[tokio::test]
    async fn commands_arrive_in_order_and_wake_the_receiver() {
        let mb = Arc::new(Mailbox::default());
        let waiter = {
            let mb = Arc::clone(&mb);
            tokio::spawn(async move { id_of(mb.recv().await) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        mb.send(gone(7), false).unwrap();
        let got = tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .expect("the waiting receiver is woken")
            .unwrap();
        assert_eq!(got, 7);
        for i in 0..5 {
            mb.send(gone(i), false).unwrap();
        }
        for i in 0..5 {
            assert_eq!(id_of(mb.recv().await), i);
        }
    }

    #[tokio::test]
    async fn full_mailbox_refuses_except_forced_gone_notices() {
        let mb = Mailbox::default();
        for i in 0..MAILBOX_MAX as u64 {
            mb.send(gone(i), false).unwrap();
        }
        assert_eq!(mb.send(gone(999), false).unwrap_err(), Refused::Full);
        mb.send(gone(1000), true).expect("forced sends are taken");
        // 65 queued now: two must go before an unforced send fits again
        assert_eq!(id_of(mb.recv().await), 0);
        assert_eq!(mb.send(gone(1001), false).unwrap_err(), Refused::Full);
        assert_eq!(id_of(mb.recv().await), 1);
        mb.send(gone(1002), false)
            .expect("room again once below the limit");
    }

    #[tokio::test]
    async fn closing_refuses_sends_ends_recv_and_drops_what_was_queued() {
        let mb = Mailbox::default();
        let (tx, mut rx) = oneshot::channel::<Reply>();
        mb.send(
            Box::new(Command::Request {
                req: ucgate_proto::bosh::parse_request(
                    b"<body xmlns='http://jabber.org/protocol/httpbind' rid='1' sid='x'/>",
                    &ucgate_proto::xml::Limits::default(),
                )
                .unwrap(),
                id: 1,
                reply: tx,
                body_len: 0,
            }),
            false,
        )
        .unwrap();
        mb.close();
        assert_eq!(mb.send(gone(2), true).unwrap_err(), Refused::Closed);
        assert!(mb.recv().await.is_none());
        assert!(
            matches!(rx.try_recv(), Err(oneshot::error::TryRecvError::Closed)),
            "the queued request's reply channel is closed, so its HTTP side answers at once"
        );
    }

    #[tokio::test]
    async fn the_actors_inbox_closes_the_mailbox_when_dropped() {
        let mb = Arc::new(Mailbox::default());
        let inbox = Inbox(Arc::clone(&mb));
        mb.send(gone(1), false).unwrap();
        drop(inbox);
        assert_eq!(mb.send(gone(2), false).unwrap_err(), Refused::Closed);
        assert!(mb.recv().await.is_none());
    }
}

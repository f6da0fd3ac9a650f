//! The stream connection to the core (TCP or TLS): queued sends, the
//! connection opened in the background with a back-off, and the reader and
//! writer of every stream connection, ours or one the core opened.

use super::*;

impl SipRuntime {
    /// Queues a message on the stream connection to the core, starting a
    /// connection attempt when there is none.
    pub(super) fn link_send(
        &self,
        mut bytes: Vec<u8>,
        notice: Option<Notice>,
    ) -> Result<(), CoreError> {
        let mut link = self.link.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match &mut link.state {
                LinkState::Up(tx) => match tx.try_send(bytes) {
                    Ok(()) => return Ok(()),
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        self.count(Side::Backend, "tcp_queue_full");
                        return Err(CoreError::QueueFull);
                    }
                    Err(mpsc::error::TrySendError::Closed(b)) => {
                        bytes = b;
                        link.state = LinkState::Idle;
                    }
                },
                LinkState::Connecting(q) => {
                    if q.len() >= TCP_QUEUE {
                        self.count(Side::Backend, "tcp_queue_full");
                        return Err(CoreError::QueueFull);
                    }
                    q.push((bytes, notice));
                    return Ok(());
                }
                LinkState::Down { retry_at } if Instant::now() < *retry_at => {
                    self.count(Side::Backend, "core_unreachable");
                    return Err(CoreError::Unreachable);
                }
                LinkState::Down { .. } | LinkState::Idle => {
                    link.state = LinkState::Connecting(vec![(bytes, notice)]);
                    if let Some(rt) = self.me.upgrade() {
                        tokio::spawn(rt.connect_link());
                    }
                    return Ok(());
                }
            }
        }
    }

    /// One connection attempt to the core; on success the queued messages
    /// are written, on failure they are dropped (counted) and the link waits
    /// out its back-off.
    pub(super) async fn connect_link(self: Arc<Self>) {
        let started = Instant::now();
        let result = tokio::select! {
            r = tokio::time::timeout(self.connect_timeout, self.dial_core()) => match r {
                Ok(r) => r,
                Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out")),
            },
            _ = self.stop.cancelled() => return,
        };
        let mut link = self.link.lock().unwrap_or_else(|e| e.into_inner());
        let queued = match std::mem::replace(&mut link.state, LinkState::Idle) {
            LinkState::Connecting(q) => q,
            _ => Vec::new(),
        };
        match result {
            Ok(tx) => {
                self.sm.connects_ok.inc();
                tracing::info!(route = %self.route, core = %self.core_addr, ms = started.elapsed().as_millis() as u64, "connected to the SIP core");
                for (m, _) in queued {
                    if tx.try_send(m).is_err() {
                        self.count(Side::Backend, "tcp_queue_full");
                    }
                }
                link.state = LinkState::Up(tx);
                link.backoff = FIRST_BACKOFF;
            }
            Err(e) => {
                self.sm.connects_error.inc();
                let flows = self.flows.lock().unwrap_or_else(|e| e.into_inner());
                for (_, notice) in &queued {
                    self.count(Side::Backend, "core_unreachable");
                    if let Some((flow, answer)) = notice {
                        if let Some(tx) = flows.get(flow) {
                            let _ = tx.try_send(answer.clone());
                        }
                    }
                }
                drop(flows);
                tracing::warn!(route = %self.route, core = %self.core_addr, error = %e, retry_in_ms = link.backoff.as_millis() as u64, dropped = queued.len(), "connecting to the SIP core failed");
                link.state = LinkState::Down {
                    retry_at: Instant::now() + link.backoff,
                };
                link.backoff = (link.backoff * 2).min(MAX_BACKOFF);
            }
        }
    }

    /// Opens a TCP (and TLS) connection to the core and starts its tasks.
    pub(super) async fn dial_core(&self) -> std::io::Result<mpsc::Sender<Vec<u8>>> {
        let stream = TcpStream::connect(self.core_addr).await?;
        let _ = stream.set_nodelay(true);
        match &self.dial {
            Dial::Tcp => Ok(self.spawn_stream(stream, None)),
            Dial::Tls { client, name } => {
                match client.connector().connect(name.clone(), stream).await {
                    Ok(tls) => Ok(self.spawn_stream(tls, None)),
                    Err(e) => {
                        let expected = name.to_str();
                        let x = client.explain(
                            ucgate_proto::certs::Peer::SipCore { route: &self.route },
                            &self.core_addr.to_string(),
                            &expected,
                            &e,
                        );
                        tracing::warn!(route = %self.route, core = %self.core_addr, expected = %expected, error = %x.detail, "{x}");
                        Err(std::io::Error::other(x.message))
                    }
                }
            }
        }
    }

    /// Starts the reader and writer of a stream connection with the core.
    /// `permit`: the connection was opened by the core (it holds one of
    /// `sip.core_max_connections` and is closed after
    /// `sip.core_idle_timeout` without a byte either way); `None`: the
    /// gateway's own connection.
    pub(super) fn spawn_stream<S>(
        &self,
        stream: S,
        permit: Option<OwnedSemaphorePermit>,
    ) -> mpsc::Sender<Vec<u8>>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(TCP_QUEUE);
        let (mut rd, mut wr) = tokio::io::split(stream);
        let gauge = if permit.is_some() {
            self.sm.core_opened_active.clone()
        } else {
            self.sm.gateway_opened_active.clone()
        };
        let idle = permit.is_some().then_some(self.sip.core_idle_timeout);
        let last = Arc::new(AtomicU64::new(self.now_ms()));
        let epoch = self.epoch;
        let touch = {
            let last = Arc::clone(&last);
            move || last.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed)
        };
        let touch_w = touch.clone();
        // Either half ending (or the runtime stopping) ends both, so a
        // dropped connection is noticed and re-opened by the next send.
        let conn_stop = self.stop.child_token();
        let stop = conn_stop.clone();
        tokio::spawn(async move {
            let _end = stop.clone().drop_guard();
            loop {
                tokio::select! {
                    m = rx.recv() => match m {
                        Some(m) => {
                            if wr.write_all(&m).await.is_err() { break }
                            touch_w();
                        }
                        None => break,
                    },
                    _ = stop.cancelled() => break,
                }
            }
            let _ = wr.shutdown().await;
        });
        let me = self.weak_self();
        let reply = Reply::Stream(tx.clone());
        let max = self.limits.max_message;
        let stop = conn_stop;
        tokio::spawn(async move {
            let _end = stop.clone().drop_guard();
            let _permit = permit;
            let _active = crate::metrics::GaugeGuard::new(gauge);
            let mut split = StreamSplitter::new(max);
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let idle_at =
                    idle.map(|d| epoch + Duration::from_millis(last.load(Ordering::Relaxed)) + d);
                let n = tokio::select! {
                    r = rd.read(&mut buf) => match r { Ok(0) | Err(_) => break, Ok(n) => n },
                    _ = stop.cancelled() => break,
                    _ = async {
                        match idle_at {
                            Some(at) => tokio::time::sleep_until(at.into()).await,
                            None => std::future::pending().await,
                        }
                    } => {
                        // A write since the deadline was computed moves it.
                        let quiet = epoch.elapsed().saturating_sub(Duration::from_millis(last.load(Ordering::Relaxed)));
                        if idle.is_some_and(|d| quiet >= d) {
                            tracing::debug!("closing an idle connection from the SIP core");
                            break;
                        }
                        continue;
                    }
                };
                touch();
                split.push(&buf[..n]);
                loop {
                    match split.next_frame() {
                        Ok(None) => break,
                        Ok(Some(Frame::Message(m))) => {
                            let Some(rt) = me.upgrade() else { return };
                            rt.on_core_message(&m, &reply).await;
                        }
                        Ok(Some(Frame::Ping)) => {
                            if let Reply::Stream(tx) = &reply {
                                let _ = tx.try_send(PONG.to_vec());
                            }
                        }
                        Ok(Some(Frame::Pong)) => {}
                        Err(e) => {
                            if let Some(rt) = me.upgrade() {
                                rt.count(Side::Backend, "framing");
                                tracing::warn!(route = %rt.route, error = %e, "bad stream from the SIP core; closing the connection");
                            }
                            return;
                        }
                    }
                }
            }
        });
        tx
    }
}

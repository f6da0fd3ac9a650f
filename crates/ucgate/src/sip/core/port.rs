//! The core-facing port: the UDP socket and the TCP/TLS listener on one
//! port, who may use them (`sip.core_sources`), and what happens to each
//! message the core sends.

use super::*;

impl SipRuntime {
    pub(super) async fn udp_loop(self: Arc<Self>) {
        let mut buf = vec![0u8; 65_536];
        loop {
            let (n, from) = tokio::select! {
                r = self.udp.recv_from(&mut buf) => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::debug!(route = %self.route, error = %e, "UDP receive error");
                        continue;
                    }
                },
                _ = self.stop.cancelled() => return,
            };
            if !self.sources.contains(from.ip()) {
                self.refuse_source(from, "datagram");
                continue;
            }
            let data = &buf[..n];
            if data.iter().all(|b| *b == b'\r' || *b == b'\n') {
                continue; // keep-alive
            }
            self.on_core_message(data, &Reply::Udp(from)).await;
        }
    }

    /// Counts (and logs at debug level) traffic from an address that is not
    /// one of `sip.core_sources`.
    pub(super) fn refuse_source(&self, from: SocketAddr, what: &'static str) {
        self.count(Side::Backend, "sip_source_refused");
        tracing::debug!(route = %self.route, %from, what, "not from the SIP core's addresses: refused");
    }

    pub(super) async fn accept_loop(self: Arc<Self>, listener: TcpListener) {
        let name = format!("sip:{}", self.route);
        let mut listener = crate::accept::Acceptor::new(listener, &name, &self.metrics);
        loop {
            let Some((stream, peer)) = listener.next(&self.stop).await else {
                return;
            };
            if !self.sources.contains(peer.ip()) {
                self.refuse_source(peer, "connection");
                continue;
            }
            let Ok(permit) = Arc::clone(&self.core_conns).try_acquire_owned() else {
                self.count(Side::Backend, "sip_core_connection_limit");
                tracing::warn!(route = %self.route, limit = self.sip.core_max_connections, "too many connections from the SIP core; closing the new one");
                continue;
            };
            let _ = stream.set_nodelay(true);
            match &self.acceptor {
                None => {
                    self.spawn_stream(stream, Some(permit));
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    let me = Arc::clone(&self);
                    tokio::spawn(async move {
                        match tokio::time::timeout(ACCEPT_TLS_TIMEOUT, acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(tls)) => {
                                me.spawn_stream(tls, Some(permit));
                            }
                            Ok(Err(e)) => {
                                me.count(Side::Backend, "tls_handshake");
                                tracing::warn!(route = %me.route, error = %e, "TLS handshake with a connection from the SIP core failed");
                            }
                            Err(_) => me.count(Side::Backend, "tls_handshake"),
                        }
                    });
                }
            }
        }
    }

    /// One message from the core (a datagram or a stream frame).
    pub(super) async fn on_core_message(&self, data: &[u8], reply: &Reply) {
        // A datagram may carry octets after the body: discarded (§18.3).
        let parsed = match reply {
            Reply::Udp(_) => message::parse_datagram(data, &self.limits),
            Reply::Stream(_) => message::parse(data, &self.limits),
        };
        let msg = match parsed {
            Ok(m) => m,
            Err(e) => {
                self.count(Side::Backend, "sip_parse");
                if let Some(r) = edge::parse_error_response(data, &self.limits, &e, &self.key) {
                    self.answer(reply, r).await;
                }
                return;
            }
        };
        let cfg = self.edge();
        if msg.is_request() {
            self.sm.core_requests.inc();
        } else {
            self.sm.core_responses.inc();
        }
        let gone = match edge::from_core(&msg, &cfg) {
            FromCore::ToClient {
                flow,
                bytes,
                reply_key,
            } => {
                if let Some(key) = reply_key {
                    self.remember_reply(key, reply);
                }
                !self.to_flow(flow.flow_id, bytes)
            }
            // A flow of another node of the cluster, or of a previous start.
            FromCore::FlowGone => true,
            FromCore::Respond(r) => {
                self.answer(reply, r).await;
                false
            }
            FromCore::Drop(reason) => {
                self.count(Side::Backend, "sip_dropped");
                tracing::debug!(route = %self.route, reason, "message from the SIP core dropped");
                false
            }
        };
        if gone {
            self.sm.flow_gone.inc();
            if let Some(r) = edge::flow_gone_response(&msg, &cfg, self.sip.flow_gone == 480) {
                self.answer(reply, r).await;
            }
        }
    }

    pub(super) async fn answer(&self, reply: &Reply, bytes: Vec<u8>) {
        match reply {
            Reply::Udp(to) => {
                let _ = self.udp.send_to(&bytes, to).await;
            }
            Reply::Stream(tx) => {
                let _ = tx.try_send(bytes);
            }
        }
    }
}

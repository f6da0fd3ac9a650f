//! The WebSocket steps: handshake, the XMPP `<open/>` or SIP keepalives,
//! pings and the close.

use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use url::Url;

use super::args::Args;

use super::report::{failed, ms, Failed, Probe, SipReport, WsReport, XmppReport};
use super::text::{secs, xml_escape};

use crate::net::{self, BoxStream, Dialer};

const FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";

impl Probe {
    pub(super) async fn websocket(
        &mut self,
        dialer: &Dialer,
        url: &Url,
        args: &Args,
        domain: &str,
    ) -> Result<(), Failed> {
        let mut wr = WsReport {
            subprotocol_offered: args.subprotocol.clone(),
            ..WsReport::default()
        };
        let res = self
            .websocket_steps(dialer, url, args, domain, &mut wr)
            .await;
        self.report.websocket = Some(wr);
        res
    }

    async fn websocket_steps(
        &mut self,
        dialer: &Dialer,
        url: &Url,
        args: &Args,
        domain: &str,
        wr: &mut WsReport,
    ) -> Result<(), Failed> {
        let conn = self.connect(dialer, url).await?;
        let offered = args.subprotocol.as_deref();
        let t = Instant::now();
        let hs = tokio::time::timeout(
            self.timeout,
            net::websocket_handshake(conn.stream, url, offered),
        )
        .await;
        let (mut ws, resp) = match hs {
            Err(_) => {
                return Err(failed(
                    "handshake",
                    format!("no answer within {}", secs(self.timeout)),
                ))
            }
            Ok(Err(e)) => {
                let msg = match e.downcast_ref::<net::HandshakeError>() {
                    Some(h) => {
                        wr.status = h.status;
                        h.message.clone()
                    }
                    None => format!("{e:#}"),
                };
                return Err(failed("handshake", msg));
            }
            Ok(Ok(v)) => v,
        };
        let took = t.elapsed();
        wr.handshake_ms = Some(ms(took));
        wr.status = Some(resp.status);
        wr.subprotocol = resp.subprotocol.clone();
        let sub = match &wr.subprotocol {
            Some(s) => format!("subprotocol {s}"),
            None => "no subprotocol".into(),
        };
        self.line(
            "handshake",
            Some(took),
            &format!("HTTP {}, {sub}", resp.status),
        );
        match (offered, wr.subprotocol.as_deref()) {
            (Some(o), None) => self.warn(format!(
                "subprotocol {o:?} was offered but the server chose none"
            )),
            (Some(o), Some(c)) if !o.eq_ignore_ascii_case(c) => self.warn(format!(
                "subprotocol {o:?} was offered but the server chose {c:?}"
            )),
            _ => {}
        }
        let xmpp = offered.is_some_and(|s| s.eq_ignore_ascii_case("xmpp"));
        let sip = offered.is_some_and(|s| s.eq_ignore_ascii_case("sip"));
        if xmpp {
            let mut x = XmppReport {
                domain: domain.to_string(),
                ..XmppReport::default()
            };
            let r = self.xmpp_open(&mut ws, domain, &mut x).await;
            wr.xmpp = Some(x);
            r?;
        }
        if sip {
            let mut s = SipReport::default();
            let r = self.sip_keepalives(&mut ws, args.count, &mut s).await;
            wr.sip = Some(s);
            r?;
        }
        for i in 1..=args.count {
            let payload = format!("ucgate-bench {i}");
            let t = Instant::now();
            ws.send(Message::Ping(payload.clone().into_bytes().into()))
                .await
                .map_err(|e| failed("ping", format!("sending ping {i}: {e}")))?;
            let deadline = Instant::now() + self.timeout;
            loop {
                match next(&mut ws, deadline)
                    .await
                    .map_err(|e| failed("ping", format!("waiting for pong {i}: {e}")))?
                {
                    Message::Pong(p) if p.as_ref() == payload.as_bytes() => break,
                    _ => continue,
                }
            }
            let took = t.elapsed();
            wr.ping_ms.push(ms(took));
            self.line(&format!("ping {i}"), Some(took), "pong");
        }
        if !wr.ping_ms.is_empty() {
            let avg = wr.ping_ms.iter().sum::<f64>() / wr.ping_ms.len() as f64;
            wr.ping_avg_ms = Some((avg * 1e3).round() / 1e3);
        }
        if xmpp {
            let t = Instant::now();
            let closed = self.xmpp_close(&mut ws).await;
            if let Some(x) = wr.xmpp.as_mut() {
                x.closed = closed;
            }
            self.line(
                "xmpp close",
                Some(t.elapsed()),
                if closed {
                    "<close/> answered"
                } else {
                    "no <close/> from the server"
                },
            );
            if !closed {
                self.warn("the server did not answer <close/> with <close/>".into());
            }
        }
        let t = Instant::now();
        let code = self.close(&mut ws).await?;
        wr.close_ms = Some(ms(t.elapsed()));
        wr.close_code = code;
        let detail = match code {
            Some(c) => format!("1000 sent, {c} received"),
            None => "1000 sent, connection closed without a close frame".into(),
        };
        self.line("close", Some(t.elapsed()), &detail);
        Ok(())
    }

    async fn xmpp_open(
        &mut self,
        ws: &mut Ws,
        domain: &str,
        x: &mut XmppReport,
    ) -> Result<(), Failed> {
        let open = format!(
            "<open xmlns=\"{FRAMING}\" to=\"{}\" version=\"1.0\"/>",
            xml_escape(domain)
        );
        let t = Instant::now();
        ws.send(Message::Text(open.into()))
            .await
            .map_err(|e| failed("xmpp", format!("sending <open/>: {e}")))?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let text = match next(ws, deadline).await {
                Ok(Message::Text(t)) => t.as_str().to_string(),
                Ok(Message::Close(f)) => {
                    return Err(failed(
                        "xmpp",
                        format!(
                            "the server closed the WebSocket ({})",
                            close_text(f.as_ref())
                        ),
                    ))
                }
                Ok(_) => continue,
                Err(e) => {
                    let what = if x.open.is_none() {
                        "the server's <open/>"
                    } else {
                        "<stream:features>"
                    };
                    return Err(failed("xmpp", format!("waiting for {what}: {e}")));
                }
            };
            if x.open.is_none() && text.trim_start().starts_with("<open") {
                let took = t.elapsed();
                x.open_ms = Some(ms(took));
                x.open = Some(text.trim().to_string());
                self.line(
                    "xmpp open",
                    Some(took),
                    &format!("server <open/>: {}", text.trim()),
                );
            } else if text.contains("<stream:features")
                || text.trim_start().starts_with("<features")
            {
                let took = t.elapsed();
                x.features = true;
                x.features_ms = Some(ms(took));
                self.line("features", Some(took), "<stream:features> received");
                return Ok(());
            } else if text.contains("<stream:error") || text.trim_start().starts_with("<close") {
                return Err(failed(
                    "xmpp",
                    format!("the server ended the stream: {}", text.trim()),
                ));
            }
        }
    }

    /// Sends `<close/>`; true when the server answered with its `<close`
    /// (or closed the WebSocket).
    async fn xmpp_close(&mut self, ws: &mut Ws) -> bool {
        if ws
            .send(Message::Text(
                format!("<close xmlns=\"{FRAMING}\"/>").into(),
            ))
            .await
            .is_err()
        {
            return false;
        }
        let deadline = Instant::now() + self.timeout;
        loop {
            match next(ws, deadline).await {
                Ok(Message::Text(t)) if t.as_str().trim_start().starts_with("<close") => {
                    return true
                }
                Ok(Message::Close(_)) => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
    }

    async fn sip_keepalives(
        &mut self,
        ws: &mut Ws,
        count: u32,
        s: &mut SipReport,
    ) -> Result<(), Failed> {
        for i in 1..=count {
            let t = Instant::now();
            ws.send(Message::Text("\r\n\r\n".into()))
                .await
                .map_err(|e| failed("sip", format!("sending keepalive {i}: {e}")))?;
            let deadline = Instant::now() + self.timeout;
            loop {
                match next(ws, deadline).await {
                    Ok(Message::Text(t)) if t.as_str() == "\r\n" => break,
                    Ok(Message::Binary(b)) if b.as_ref() == b"\r\n" => break,
                    Ok(Message::Close(f)) => {
                        return Err(failed(
                            "sip",
                            format!(
                                "the server closed the WebSocket ({})",
                                close_text(f.as_ref())
                            ),
                        ))
                    }
                    Ok(_) => continue,
                    Err(e) => {
                        return Err(failed(
                            "sip",
                            format!("waiting for the \\r\\n answer to keepalive {i}: {e}"),
                        ))
                    }
                }
            }
            let took = t.elapsed();
            s.keepalive_ms.push(ms(took));
            self.line(
                &format!("keepalive {i}"),
                Some(took),
                "\\r\\n\\r\\n answered with \\r\\n",
            );
        }
        Ok(())
    }

    /// Sends a close frame with 1000 and waits for the server's; returns
    /// the server's code.
    async fn close(&mut self, ws: &mut Ws) -> Result<Option<u16>, Failed> {
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        let mut code = None;
        if let Err(e) = ws.close(Some(frame)).await {
            use tokio_tungstenite::tungstenite::Error as WsError;
            if !matches!(e, WsError::ConnectionClosed | WsError::AlreadyClosed) {
                return Err(failed("close", format!("sending the close frame: {e}")));
            }
        }
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            match tokio::time::timeout_at(deadline, ws.next()).await {
                Ok(Some(Ok(Message::Close(f)))) => code = f.map(|f| u16::from(f.code)).or(code),
                Ok(Some(Ok(_))) => continue,
                Ok(None) | Ok(Some(Err(_))) => return Ok(code),
                Err(_) => {
                    return Err(failed(
                        "close",
                        format!(
                            "no close frame from the server within {}",
                            secs(self.timeout)
                        ),
                    ))
                }
            }
        }
    }
}

type Ws = tokio_tungstenite::WebSocketStream<BoxStream>;

/// The next message before `deadline`, or why there is none.
async fn next(ws: &mut Ws, deadline: Instant) -> Result<Message, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(left, ws.next()).await {
        Err(_) => Err("timed out".into()),
        Ok(None) => Err("the connection closed".into()),
        Ok(Some(Err(e))) => Err(e.to_string()),
        Ok(Some(Ok(m))) => Ok(m),
    }
}

fn close_text(f: Option<&CloseFrame>) -> String {
    match f {
        Some(f) if f.reason.is_empty() => format!("code {}", u16::from(f.code)),
        Some(f) => format!("code {}: {}", u16::from(f.code), f.reason),
        None => "no close code".into(),
    }
}

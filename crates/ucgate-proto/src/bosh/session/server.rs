//! The server side's events: the stream opened, its elements, its
//! errors and its close.

use core::time::Duration;

use super::*;

/// True for a `<stream:error/>` element (namespace declared on it, as the
/// server side delivers namespace-complete elements).
fn is_stream_error(el: &[u8]) -> bool {
    let Ok(Some(tag)) = parse_start_tag(el) else {
        return false;
    };
    if tag.local() != "error" {
        return false;
    }
    let decl = match tag.prefix() {
        Some(p) => tag.attr(&format!("xmlns:{p}")),
        None => tag.attr("xmlns"),
    };
    decl == Some(NS_STREAMS)
}

impl Session {
    /// The server stream was opened (first time or after a restart):
    /// `authid` is its `id`, `from` its `from`. Both are passed to the
    /// client once, on the next response (`authid`, `from`; XEP-0124 §7.2,
    /// XEP-0206 §4).
    pub fn on_stream_open(
        &mut self,
        authid: String,
        from: Option<String>,
        now: Duration,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        if !self.stream.opened_once {
            self.stream.opened_once = true;
            if !authid.is_empty() {
                self.stream.pending_attrs.push(("authid", authid));
            }
            if let Some(f) = from.filter(|f| !f.is_empty()) {
                self.stream.pending_attrs.push(("from", f));
            }
        }
        self.flush(now, &mut out);
        out
    }

    /// One element from the server (stanza, features, SASL …), already
    /// namespace-complete. A `<stream:error/>` ends the session with
    /// `remote-stream-error`.
    pub fn on_server_element(&mut self, element: Vec<u8>, now: Duration) -> Vec<Action> {
        self.on_server_elements(vec![element], now)
    }

    /// Several elements received together: they are batched into one
    /// response when a request is held.
    pub fn on_server_elements(&mut self, elements: Vec<Vec<u8>>, now: Duration) -> Vec<Action> {
        self.server_elements(elements, true, now)
    }

    /// One element from the server known not to be a stream error (the
    /// translator reports those apart): queued without being read.
    pub fn on_server_stanza(&mut self, element: Vec<u8>, now: Duration) -> Vec<Action> {
        self.server_elements(vec![element], false, now)
    }

    fn server_elements(
        &mut self,
        elements: Vec<Vec<u8>>,
        check: bool,
        now: Duration,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        if self.ended || self.stream.server_gone {
            return out;
        }
        for el in elements {
            if check && is_stream_error(&el) {
                let xml = String::from_utf8_lossy(&el).into_owned();
                out.extend(self.on_server_error(Condition::RemoteStreamError(Some(xml)), now));
                return out;
            }
            if self.stream.awaiting_features {
                // The first element of a (re)started stream: the stream is
                // usable; client payloads held back until now go out.
                self.stream.awaiting_features = false;
                out.extend(self.stream.backlog.drain(..).map(Action::ToServer));
            }
            self.stream.pending_bytes += el.len();
            self.stream.queue.push_back(el);
        }
        self.flush(now, &mut out);
        out
    }

    /// The server side failed (`RemoteConnectionFailed`, `HostUnknown`,
    /// `HostGone`, `RemoteStreamError(Some(xml))`, `SystemShutdown`, …).
    /// Queued elements and the condition go to the oldest open request; if
    /// none is open they wait for the next request (or inactivity).
    pub fn on_server_error(&mut self, condition: Condition, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        if self.ended || self.stream.server_gone {
            return out;
        }
        self.stream.server_gone = true;
        self.stream.terminal = Some(Terminal::Error(condition));
        if self.has_open() {
            self.deliver_terminal(None, now, &mut out);
        }
        out
    }

    /// The server closed its stream (`</stream:stream>`): queued elements
    /// and `<body type='terminate'/>` go to the client like an error.
    pub fn on_server_close(&mut self, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        if self.ended || self.stream.server_gone {
            return out;
        }
        self.stream.server_gone = true;
        self.stream.terminal = Some(Terminal::Closed);
        if self.has_open() {
            self.deliver_terminal(None, now, &mut out);
        }
        out
    }
}

//! [`Editor`]: a modified copy of a message, untouched bytes copied exactly.

use std::ops::Range;

use super::lex::*;
use super::types::*;

/// Builds a modified copy of a [`Message`]: untouched bytes are copied
/// exactly; Content-Length is always made to match the body.
#[derive(Debug, Clone)]
pub struct Editor<'m, 'a> {
    msg: &'m Message<'a>,
    splices: Vec<(Range<usize>, Vec<u8>)>,
    top: Vec<u8>,
    bottom: Vec<u8>,
    removed: Vec<(usize, usize)>,
}

impl Editor<'_, '_> {
    /// Insert a header line right after the start line. Several calls
    /// appear in call order (first call on top).
    pub fn insert_top(&mut self, name: &str, value: &[u8]) -> &mut Self {
        self.top.extend_from_slice(name.as_bytes());
        self.top.extend_from_slice(b": ");
        self.top.extend_from_slice(value);
        self.top.extend_from_slice(b"\r\n");
        self
    }

    /// Insert a header line right after the start line, above every line
    /// inserted so far.
    pub fn prepend_top(&mut self, name: &str, value: &[u8]) -> &mut Self {
        let mut line = Vec::with_capacity(name.len() + value.len() + 4);
        line.extend_from_slice(name.as_bytes());
        line.extend_from_slice(b": ");
        line.extend_from_slice(value);
        line.extend_from_slice(b"\r\n");
        line.extend_from_slice(&self.top);
        self.top = line;
        self
    }

    /// Append a header line after the last header.
    pub fn append(&mut self, name: &str, value: &[u8]) -> &mut Self {
        self.bottom.extend_from_slice(name.as_bytes());
        self.bottom.extend_from_slice(b": ");
        self.bottom.extend_from_slice(value);
        self.bottom.extend_from_slice(b"\r\n");
        self
    }

    /// Replace the bytes of `span` (a span of the original message, e.g. a
    /// header value, one list value or the Request-URI).
    pub fn replace(&mut self, span: Range<usize>, with: &[u8]) -> &mut Self {
        self.splices.push((span, with.to_vec()));
        self
    }

    /// Remove a whole header line (with its continuation lines).
    pub fn remove_line(&mut self, header: usize) -> &mut Self {
        let line = self.msg.headers[header].line.clone();
        self.splices.push((line, Vec::new()));
        self
    }

    /// Remove one value of a list header, with its comma; the whole line
    /// goes when all its values are removed. Several values of one line
    /// may be removed.
    pub fn remove_value(&mut self, v: &Value) -> &mut Self {
        if !self.removed.contains(&(v.header, v.index)) {
            self.removed.push((v.header, v.index));
        }
        self
    }

    fn removal_splices(&mut self) {
        let mut headers: Vec<usize> = self.removed.iter().map(|(h, _)| *h).collect();
        headers.sort_unstable();
        headers.dedup();
        for h in headers {
            let all = split_commas(self.msg.bytes, self.msg.headers[h].value.clone());
            let gone: Vec<bool> = (0..all.len())
                .map(|i| self.removed.contains(&(h, i)))
                .collect();
            if gone.iter().all(|g| *g) {
                self.splices
                    .push((self.msg.headers[h].line.clone(), Vec::new()));
                continue;
            }
            // Trailing run of removed values: cut from the end of the last
            // kept value. Others: cut up to the start of the next value.
            let last_kept = gone.iter().rposition(|g| !*g).expect("one kept");
            if last_kept + 1 < all.len() {
                self.splices
                    .push((all[last_kept].end..all[all.len() - 1].end, Vec::new()));
            }
            for i in 0..last_kept {
                if gone[i] {
                    self.splices
                        .push((all[i].start..all[i + 1].start, Vec::new()));
                }
            }
        }
    }

    /// Produce the edited message (start line, headers, body per
    /// Content-Length; bytes after the body are not copied). A
    /// Content-Length header matching the body is always present.
    pub fn finish(mut self) -> Vec<u8> {
        self.removal_splices();
        let m = self.msg;
        let body_len = m.body.len();
        let cl: Vec<usize> = m.named(Known::CONTENT_LENGTH).map(|(i, _)| i).collect();
        match cl.first() {
            Some(&first) => {
                if m.content_length != Some(body_len) || m.length_error.is_some() {
                    self.splices.push((
                        m.headers[first].value.clone(),
                        body_len.to_string().into_bytes(),
                    ));
                    for &other in &cl[1..] {
                        self.splices
                            .push((m.headers[other].line.clone(), Vec::new()));
                    }
                }
            }
            None => {
                let len = body_len.to_string();
                self.append("Content-Length", len.as_bytes());
            }
        }
        let top = std::mem::take(&mut self.top);
        let bottom = std::mem::take(&mut self.bottom);
        self.splices.push((m.headers_start..m.headers_start, top));
        self.splices.push((m.headers_end..m.headers_end, bottom));
        // Stable: inserts at the same position keep their order, and an
        // insert at the start of a line goes before that line's removal.
        self.splices.sort_by_key(|(r, _)| (r.start, r.end));
        let mut out = Vec::with_capacity(m.body.end - m.start + 256);
        let mut pos = m.start;
        for (r, with) in &self.splices {
            if r.start < pos {
                // Overlapping edit (e.g. a value inside a removed line): the
                // earlier, wider edit wins.
                continue;
            }
            out.extend_from_slice(&m.bytes[pos..r.start]);
            out.extend_from_slice(with);
            pos = r.end;
        }
        out.extend_from_slice(&m.bytes[pos..m.body.end]);
        out
    }
}

impl<'a> Message<'a> {
    /// Start an edit of this message.
    pub fn edit(&self) -> Editor<'_, 'a> {
        Editor {
            msg: self,
            splices: Vec::new(),
            top: Vec::new(),
            bottom: Vec::new(),
            removed: Vec::new(),
        }
    }
}

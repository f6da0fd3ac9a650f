//! BOSH request `<body/>` parsing and response rendering
//! (`ucgate_proto::bosh::body`).
//!
//! Input: a limits byte, then the HTTP request body.
//!
//! Invariants, for a body that parses: every payload is a standalone
//! element the strict checker accepts (namespace-complete, as the server
//! will get it); rendering the payloads into a response `<body/>` and
//! parsing that gives back the same payloads and attribute values (the
//! renderer escapes what the parser unescapes); `peek_sid` finds the same
//! `sid`; a `route` that parses renders back to itself; each payload's
//! handed-on start tag is the one its bytes have.

use crate::input::Input;
use ucgate_proto::bosh::body::render_body;
use ucgate_proto::bosh::{parse_request, parse_response, peek_sid, Route};
use ucgate_proto::xml::tag::ParsedElement;
use ucgate_proto::xml::validate::check_element;
use ucgate_proto::xml::Limits;

/// The target body.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let sel = input.u8();
    let limits = Limits {
        max_bytes: [1024, 64 * 1024][usize::from(sel & 1)],
        max_depth: usize::from(sel >> 1 & 0xf) + 1,
        max_attributes: 64,
    };
    let body = input.rest();
    let peeked = peek_sid(body);
    let Ok(req) = parse_request(body, &limits) else {
        return;
    };
    assert_eq!(peeked, req.sid, "peek_sid disagrees with parse_request");
    let loose = Limits {
        max_bytes: usize::MAX,
        max_depth: usize::MAX,
        max_attributes: usize::MAX,
    };
    for p in &req.payload {
        let text = std::str::from_utf8(p).expect("payloads are UTF-8");
        if let Err(e) = check_element(text, &loose) {
            panic!("payload {text:?} is not a standalone element: {e}");
        }
        // the start tag handed on with it is the one its bytes have
        let reparsed = ParsedElement::parse(p.bytes.clone()).expect("its start tag parses");
        assert_eq!(p.tag, reparsed.tag, "stale start tag for {text:?}");
    }
    let mut attrs = vec![("rid", req.rid.to_string())];
    if let Some(sid) = &req.sid {
        attrs.push(("sid", sid.clone()));
    }
    if let Some(from) = &req.from {
        attrs.push(("from", from.clone()));
    }
    let payload: Vec<Vec<u8>> = req.payload.iter().map(|p| p.bytes.clone()).collect();
    let rendered = render_body(&attrs, &payload, false);
    let resp = match parse_response(rendered.as_bytes(), &loose) {
        Ok(r) => r,
        Err(e) => panic!("rendered body {rendered:?} does not parse: {e}"),
    };
    assert_eq!(
        resp.payload, req.payload,
        "payloads changed in {rendered:?}"
    );
    for (name, value) in &attrs {
        assert_eq!(resp.attr(name), Some(value.as_str()), "attribute {name}");
    }
    if let Some(route) = req.route.as_deref().and_then(Route::parse) {
        let host = if route.host.contains(':') {
            format!("[{}]", route.host)
        } else {
            route.host.clone()
        };
        let again = format!("{}:{host}:{}", route.proto, route.port);
        assert_eq!(Route::parse(&again), Some(route));
    }
}

//! XEP-0156 (Discovering Alternative XMPP Connection Methods) §3: the
//! host-meta documents that tell a web client, from the domain alone, where
//! the XMPP WebSocket (RFC 7395) and BOSH (XEP-0206) endpoints are.
//!
//! * [`xrd`]: `/.well-known/host-meta`, RFC 6415 XRD (`application/xrd+xml`);
//! * [`jrd`]: `/.well-known/host-meta.json`, RFC 6415 JRD (`application/json`).
//!
//! Links are rendered in a fixed order (WebSocket, then BOSH) and only for
//! the URLs given; with neither the documents hold no links. URLs are
//! escaped, never validated here (configuration validates them).

/// `rel` of the WebSocket link (XEP-0156 §3).
pub const REL_WEBSOCKET: &str = "urn:xmpp:alt-connections:websocket";
/// `rel` of the BOSH link (XEP-0156 §3).
pub const REL_BOSH: &str = "urn:xmpp:alt-connections:xbosh";

fn links<'a>(websocket: Option<&'a str>, bosh: Option<&'a str>) -> Vec<(&'static str, &'a str)> {
    [(REL_WEBSOCKET, websocket), (REL_BOSH, bosh)]
        .into_iter()
        .filter_map(|(rel, href)| href.map(|h| (rel, h)))
        .collect()
}

/// The XRD document (`/.well-known/host-meta`, `application/xrd+xml`).
pub fn xrd(websocket: Option<&str>, bosh: Option<&str>) -> String {
    let mut out = String::from(
        "<?xml version='1.0' encoding='utf-8'?><XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>",
    );
    for (rel, href) in links(websocket, bosh) {
        out.push_str("<Link rel=\"");
        out.push_str(rel);
        out.push_str("\" href=\"");
        xml_attr_escape(href, &mut out);
        out.push_str("\"/>");
    }
    out.push_str("</XRD>");
    out
}

/// The JRD document (`/.well-known/host-meta.json`, `application/json`).
pub fn jrd(websocket: Option<&str>, bosh: Option<&str>) -> String {
    let mut out = String::from("{\"links\":[");
    for (i, (rel, href)) in links(websocket, bosh).into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"rel\":\"");
        out.push_str(rel);
        out.push_str("\",\"href\":\"");
        json_escape(href, &mut out);
        out.push_str("\"}");
    }
    out.push_str("]}");
    out
}

/// Escapes text for a double- or single-quoted XML attribute value. Tab, LF
/// and CR become character references (attribute-value normalisation would
/// turn them into spaces); characters XML 1.0 cannot carry at all become
/// U+FFFD.
fn xml_attr_escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

/// Escapes text for a JSON string (RFC 8259 §7).
fn json_escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WS: &str = "wss://chat.example.org/xmpp-websocket";
    const BOSH: &str = "https://chat.example.org/http-bind";

    #[test]
    fn xrd_with_both_links() {
        assert_eq!(
            xrd(Some(WS), Some(BOSH)),
            "<?xml version='1.0' encoding='utf-8'?>\
             <XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\
             <Link rel=\"urn:xmpp:alt-connections:websocket\" href=\"wss://chat.example.org/xmpp-websocket\"/>\
             <Link rel=\"urn:xmpp:alt-connections:xbosh\" href=\"https://chat.example.org/http-bind\"/>\
             </XRD>"
        );
    }

    #[test]
    fn xrd_with_one_or_no_link() {
        assert_eq!(
            xrd(Some(WS), None),
            "<?xml version='1.0' encoding='utf-8'?>\
             <XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\
             <Link rel=\"urn:xmpp:alt-connections:websocket\" href=\"wss://chat.example.org/xmpp-websocket\"/>\
             </XRD>"
        );
        assert!(!xrd(None, Some(BOSH)).contains("websocket"));
        assert!(xrd(None, Some(BOSH)).contains("xbosh"));
        assert_eq!(
            xrd(None, None),
            "<?xml version='1.0' encoding='utf-8'?><XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'></XRD>"
        );
    }

    #[test]
    fn jrd_with_links() {
        assert_eq!(
            jrd(Some(WS), Some(BOSH)),
            "{\"links\":[\
             {\"rel\":\"urn:xmpp:alt-connections:websocket\",\"href\":\"wss://chat.example.org/xmpp-websocket\"},\
             {\"rel\":\"urn:xmpp:alt-connections:xbosh\",\"href\":\"https://chat.example.org/http-bind\"}\
             ]}"
        );
        assert_eq!(
            jrd(None, Some(BOSH)),
            "{\"links\":[{\"rel\":\"urn:xmpp:alt-connections:xbosh\",\"href\":\"https://chat.example.org/http-bind\"}]}"
        );
        assert_eq!(jrd(None, None), "{\"links\":[]}");
    }

    #[test]
    fn xml_escaping() {
        let x = xrd(Some("wss://h/x?a=1&b=\"2\"<'3'>\t\n\r\u{1}é"), None);
        assert!(
            x.contains(
                "href=\"wss://h/x?a=1&amp;b=&quot;2&quot;&lt;&apos;3&apos;&gt;&#9;&#10;&#13;\u{FFFD}é\"/>"
            ),
            "{x}"
        );
    }

    #[test]
    fn json_escaping() {
        let j = jrd(Some("wss://h/\"q\"\\x\n\r\t\u{1}é</script>"), None);
        assert!(
            j.contains("\"href\":\"wss://h/\\\"q\\\"\\\\x\\n\\r\\t\\u0001é</script>\"}"),
            "{j}"
        );
    }
}

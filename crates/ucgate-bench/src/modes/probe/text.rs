//! How values are written in the report and in the XML the probe sends.

use std::time::Duration;

use crate::net::TlsInfo;

pub(super) fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

pub(super) fn tls_summary(info: &TlsInfo) -> String {
    format!(
        "{}, {}, ALPN {}",
        info.version,
        info.cipher_suite,
        info.alpn.as_deref().unwrap_or("none")
    )
}

pub(super) fn snippet(text: &str) -> String {
    let t: String = text.trim().chars().take(300).collect();
    if t.is_empty() {
        "(empty body)".into()
    } else {
        t
    }
}

pub(super) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

pub(super) fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&apos;", "'")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(xml_escape("a<'&\">"), "a&lt;&apos;&amp;&quot;&gt;");
        assert_eq!(xml_unescape(&xml_escape("a<'&\">")), "a<'&\">");
    }
}

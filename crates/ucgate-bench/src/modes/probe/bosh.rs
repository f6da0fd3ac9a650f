//! The BOSH steps: session creation, features and terminate.

use std::time::{Duration, Instant};

use url::Url;

use super::report::{failed, ms, BoshReport, Failed, Probe};
use super::text::{secs, snippet, xml_escape, xml_unescape};

use crate::net::Dialer;

const HTTPBIND: &str = "http://jabber.org/protocol/httpbind";
/// The BOSH `wait` the probe asks for, in seconds.
const BOSH_WAIT: u64 = 10;

impl Probe {
    pub(super) async fn bosh(
        &mut self,
        dialer: &Dialer,
        url: &Url,
        domain: &str,
    ) -> Result<(), Failed> {
        let mut b = BoshReport {
            domain: domain.to_string(),
            rid: initial_rid(),
            ..BoshReport::default()
        };
        let res = self.bosh_steps(dialer, url, &mut b).await;
        self.report.bosh = Some(b);
        res
    }

    async fn bosh_steps(
        &mut self,
        dialer: &Dialer,
        url: &Url,
        b: &mut BoshReport,
    ) -> Result<(), Failed> {
        use http_body_util::{BodyExt, Full};
        let conn = self.connect(dialer, url).await?;
        let (mut sender, driver) = hyper::client::conn::http1::handshake::<_, Full<bytes::Bytes>>(
            hyper_util::rt::TokioIo::new(conn.stream),
        )
        .await
        .map_err(|e| failed("http", format!("HTTP/1.1 over the connection: {e}")))?;
        let driver = tokio::spawn(driver);
        let limit = self.timeout + Duration::from_secs(BOSH_WAIT);
        let authority = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
            None => url.host_str().unwrap_or("").to_string(),
        };
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let mut post =
            async |step: &'static str, body: String| -> Result<(u16, String, Duration), Failed> {
                let req = hyper::Request::post(target.as_str())
                    .header(hyper::header::HOST, authority.as_str())
                    .header(hyper::header::CONTENT_TYPE, "text/xml; charset=utf-8")
                    .header(
                        hyper::header::USER_AGENT,
                        concat!("ucgate-bench/", env!("CARGO_PKG_VERSION")),
                    )
                    .body(Full::new(bytes::Bytes::from(body)))
                    .map_err(|e| failed(step, e.to_string()))?;
                let t = Instant::now();
                let exchange = async {
                    sender.ready().await?;
                    let resp = sender.send_request(req).await?;
                    let status = resp.status().as_u16();
                    let body = resp.into_body().collect().await?.to_bytes();
                    Ok::<_, hyper::Error>((status, String::from_utf8_lossy(&body).into_owned()))
                };
                match tokio::time::timeout(limit, exchange).await {
                    Ok(Ok((status, text))) => Ok((status, text, t.elapsed())),
                    Ok(Err(e)) => Err(failed(step, format!("HTTP request: {e}"))),
                    Err(_) => Err(failed(step, format!("no answer within {}", secs(limit)))),
                }
            };

        // session creation
        let create = format!(
            "<body content='text/xml; charset=utf-8' hold='1' rid='{}' to='{}' ver='1.6' wait='{BOSH_WAIT}' xml:lang='en' xmpp:version='1.0' xmlns='{HTTPBIND}' xmlns:xmpp='urn:xmpp:xbosh'/>",
            b.rid,
            xml_escape(&b.domain)
        );
        let (status, text, took) = post("session", create).await?;
        b.status = Some(status);
        b.session_ms = Some(ms(took));
        if status != 200 {
            return Err(failed(
                "session",
                format!("HTTP {status}: {}", snippet(&text)),
            ));
        }
        let attrs = body_attrs(&text).ok_or_else(|| {
            failed(
                "session",
                format!("no <body/> in the answer: {}", snippet(&text)),
            )
        })?;
        let get = |n: &str| attrs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        if get("type").as_deref() == Some("terminate") {
            let cond = get("condition").unwrap_or_else(|| "no condition".into());
            return Err(failed(
                "session",
                format!("the gateway terminated the session: {cond}"),
            ));
        }
        b.sid = get("sid");
        b.wait = get("wait");
        b.hold = get("hold");
        b.requests = get("requests");
        b.inactivity = get("inactivity");
        b.polling = get("polling");
        b.ver = get("ver");
        let Some(sid) = b.sid.clone() else {
            return Err(failed("session", format!("no sid in {}", snippet(&text))));
        };
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        self.line(
            "session",
            Some(took),
            &format!(
                "HTTP {status}, sid {sid}, wait {}, hold {}, requests {}, inactivity {}, polling {}, ver {}",
                show(&b.wait),
                show(&b.hold),
                show(&b.requests),
                show(&b.inactivity),
                show(&b.polling),
                show(&b.ver)
            ),
        );

        // stream features: in the creation answer, or in the next one
        let mut rid = b.rid;
        if has_features(&text) {
            b.features = true;
            b.features_ms = Some(ms(took));
            self.line(
                "features",
                Some(took),
                "<stream:features> in the session creation answer",
            );
        } else {
            rid += 1;
            let (status, text, took) = post(
                "features",
                format!(
                    "<body rid='{rid}' sid='{}' xmlns='{HTTPBIND}'/>",
                    xml_escape(&sid)
                ),
            )
            .await?;
            if status != 200 {
                return Err(failed(
                    "features",
                    format!("HTTP {status}: {}", snippet(&text)),
                ));
            }
            if !has_features(&text) {
                return Err(failed(
                    "features",
                    format!(
                        "no <stream:features> in the second answer either: {}",
                        snippet(&text)
                    ),
                ));
            }
            b.features = true;
            b.features_ms = Some(ms(took));
            self.line(
                "features",
                Some(took),
                "<stream:features> in the next answer",
            );
        }

        // terminate
        rid += 1;
        let (status, text, took) = post(
            "terminate",
            format!("<body rid='{rid}' sid='{}' type='terminate' xmlns='{HTTPBIND}'><presence type='unavailable' xmlns='jabber:client'/></body>", xml_escape(&sid)),
        )
        .await?;
        b.terminate_ms = Some(ms(took));
        b.terminate_status = Some(status);
        if status != 200 {
            return Err(failed(
                "terminate",
                format!("HTTP {status}: {}", snippet(&text)),
            ));
        }
        let kind = body_attrs(&text)
            .and_then(|a| a.into_iter().find(|(k, _)| k == "type").map(|(_, v)| v))
            .map(|t| format!(", type {t}"))
            .unwrap_or_default();
        self.line("terminate", Some(took), &format!("HTTP {status}{kind}"));
        driver.abort();
        Ok(())
    }
}

fn has_features(text: &str) -> bool {
    text.contains("<stream:features") || text.contains("<features")
}

/// The attributes of the first `<body …>` start tag of a BOSH answer.
fn body_attrs(text: &str) -> Option<Vec<(String, String)>> {
    let start = text.find("<body")?;
    let mut s = &text[start + 5..];
    if !s.starts_with(|c: char| c.is_whitespace() || c == '>' || c == '/') {
        return None;
    }
    let mut attrs = Vec::new();
    loop {
        s = s.trim_start();
        if s.is_empty() || s.starts_with('>') || s.starts_with("/>") {
            return Some(attrs);
        }
        let eq = s.find('=')?;
        let name = s[..eq].trim().to_string();
        s = s[eq + 1..].trim_start();
        let quote = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
        let end = s[1..].find(quote)? + 1;
        attrs.push((name, xml_unescape(&s[1..end])));
        s = &s[end + 1..];
    }
}

/// A random-enough first rid (XEP-0124 §7: large, unpredictable, with room
/// to grow below 2^53).
fn initial_rid() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mix =
        nanos.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(std::process::id()).rotate_left(32);
    (mix >> 24) + 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bosh_body_attributes() {
        let a = body_attrs("<body xmlns='http://jabber.org/protocol/httpbind' sid=\"s&amp;1\" wait='10'\n requests='2'><stream:features/></body>").unwrap();
        assert_eq!(a[1], ("sid".to_string(), "s&1".to_string()));
        assert_eq!(a[2], ("wait".to_string(), "10".to_string()));
        assert_eq!(a[3], ("requests".to_string(), "2".to_string()));
        assert_eq!(body_attrs("<body/>").unwrap(), vec![]);
        assert!(body_attrs("<bodyx a='1'/>").is_none());
        assert!(body_attrs("<html>").is_none());
        assert!(body_attrs("<body a=1>").is_none());
    }

    #[test]
    fn rid_fits_in_53_bits_with_room() {
        let r = initial_rid();
        assert!((1_000_000..(1 << 41)).contains(&r), "{r}");
    }
}

//! The Grafana dashboard (contrib/grafana/ucgate.json) and the Prometheus
//! alert rules (contrib/prometheus/) ask only for what the gateway exports:
//! every metric name and label in their PromQL is checked against
//! `/metrics` after traffic on every route kind, and the rules and their
//! unit tests pass `promtool` (Debian's `prometheus` package).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::traffic::{self, Family};

fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn repo_file(rel: &str) -> String {
    let p = repo_path(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

const ALERTS: &str = "contrib/prometheus/ucgate-alerts.yml";
const ALERT_TESTS: &str = "contrib/prometheus/ucgate-alerts.test.yml";
const DASHBOARD: &str = "contrib/grafana/ucgate.json";

/// Labels Prometheus adds to every scraped series (not the gateway's).
const TARGET_LABELS: &[&str] = &["instance", "job"];

/// PromQL functions and aggregations the files may use.
const FUNCTIONS: &[&str] = &[
    "sum",
    "max",
    "min",
    "avg",
    "count",
    "topk",
    "bottomk",
    "rate",
    "irate",
    "increase",
    "delta",
    "histogram_quantile",
    "time",
    "absent",
    "clamp_min",
    "clamp_max",
    "label_values",
    "vector",
    "scalar",
    "abs",
    "round",
];
/// Words that take a label list in parentheses.
const GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
/// Other keywords.
const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "inf", "nan"];

/// A label matcher: (name, operator, value).
type Matcher = (String, String, String);

/// What one expression uses.
#[derive(Debug, Default)]
struct Uses {
    /// (metric as written, label matchers (name, op, value))
    selectors: Vec<(String, Vec<Matcher>)>,
    /// label names in by/without/on/ignoring/group_left/group_right
    grouping: Vec<String>,
    functions: Vec<String>,
}

/// A small PromQL reader: enough to find every selector, label matcher,
/// grouping label and function of an expression. Strings and range
/// brackets are skipped; it panics on what it cannot read.
fn uses(expr: &str) -> Uses {
    let b: Vec<char> = expr.chars().collect();
    let mut u = Uses::default();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_whitespace() {
            *i += 1;
        }
    };
    let ident = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && (b[*i].is_ascii_alphanumeric() || b[*i] == '_' || b[*i] == ':') {
            *i += 1;
        }
        b[start..*i].iter().collect::<String>()
    };
    let string = |i: &mut usize| {
        let q = b[*i];
        *i += 1;
        let mut s = String::new();
        while *i < b.len() && b[*i] != q {
            if b[*i] == '\\' {
                *i += 1;
            }
            s.push(b[*i]);
            *i += 1;
        }
        assert!(*i < b.len(), "unterminated string in {expr}");
        *i += 1;
        s
    };
    while i < b.len() {
        let c = b[i];
        if c.is_whitespace() || "()+-*/%^,=!<>".contains(c) {
            i += 1;
        } else if c == '"' || c == '\'' || c == '`' {
            string(&mut i);
        } else if c == '[' {
            while i < b.len() && b[i] != ']' {
                i += 1;
            }
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let word = ident(&mut i);
            let mut j = i;
            skip_ws(&mut j);
            let next = b.get(j).copied();
            if GROUPING.contains(&word.as_str()) {
                if next == Some('(') {
                    let close = j + b[j..].iter().position(|&c| c == ')').unwrap();
                    let list: String = b[j + 1..close].iter().collect();
                    u.grouping.extend(
                        list.split(',')
                            .map(|l| l.trim().to_string())
                            .filter(|l| !l.is_empty()),
                    );
                    i = close + 1;
                }
            } else if KEYWORDS.contains(&word.as_str()) {
            } else if next == Some('(') || FUNCTIONS.contains(&word.as_str()) {
                // (`sum by (…) (…)`: an aggregation before its grouping)
                u.functions.push(word);
            } else {
                let mut matchers = Vec::new();
                if next == Some('{') {
                    i = j + 1;
                    loop {
                        skip_ws(&mut i);
                        if b[i] == '}' {
                            i += 1;
                            break;
                        }
                        if b[i] == ',' {
                            i += 1;
                            continue;
                        }
                        let name = ident(&mut i);
                        skip_ws(&mut i);
                        let op_start = i;
                        while "=!~".contains(b[i]) {
                            i += 1;
                        }
                        let op: String = b[op_start..i].iter().collect();
                        skip_ws(&mut i);
                        assert!(!name.is_empty() && !op.is_empty(), "bad matcher in {expr}");
                        matchers.push((name, op, string(&mut i)));
                    }
                }
                u.selectors.push((word, matchers));
            }
        } else {
            panic!("unexpected `{c}` in {expr}");
        }
    }
    u
}

/// The `expr:` values of a rules file (inline, or `|` blocks), and how
/// many rules it has.
fn rule_exprs(yaml: &str) -> (Vec<String>, usize) {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        let t = l.trim_start();
        if let Some(v) = t.strip_prefix("expr:") {
            let v = v.trim();
            if v == "|" || v == ">" {
                let indent = l.len() - t.len();
                let mut block = Vec::new();
                while i + 1 < lines.len() {
                    let n = lines[i + 1];
                    let ni = n.len() - n.trim_start().len();
                    if !n.trim().is_empty() && ni <= indent {
                        break;
                    }
                    block.push(n.trim());
                    i += 1;
                }
                out.push(block.join(" "));
            } else {
                out.push(v.to_string());
            }
        }
        i += 1;
    }
    let rules = lines
        .iter()
        .filter(|l| {
            let t = l.trim_start();
            t.starts_with("- alert:") || t.starts_with("- record:")
        })
        .count();
    (out, rules)
}

/// Every query of the dashboard: panel targets and template variables.
fn dashboard_exprs(json: &serde_json::Value) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x) {
                        ("expr", serde_json::Value::String(s)) => out.push(s.clone()),
                        ("query", serde_json::Value::Object(q)) => {
                            if let Some(serde_json::Value::String(s)) = q.get("query") {
                                out.push(s.clone());
                            }
                        }
                        _ => walk(x, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(json, &mut out);
    out
}

/// The family a selector's metric belongs to, and whether it is a
/// histogram's `_bucket` (which has `le`).
fn family_of<'f>(
    metric: &str,
    families: &'f BTreeMap<String, Family>,
) -> Option<(&'f str, &'f Family, bool)> {
    if let Some((n, f)) = families.get_key_value(metric) {
        return (f.kind != "histogram").then_some((n.as_str(), f, false));
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = metric.strip_suffix(suffix) {
            if let Some((n, f)) = families.get_key_value(base) {
                return (f.kind == "histogram").then_some((n.as_str(), f, suffix == "_bucket"));
            }
        }
    }
    None
}

/// Families that appear only after events this test cannot cause
/// in-process (a SIGHUP, an ACME order, a TLS handshake): checked against `metrics::FAMILIES` and the labels
/// docs/metrics.md lists (tests/docs_and_metrics.rs checks those against
/// the binary wherever it can).
const NOT_SCRAPED: &[(&str, &str)] = &[
    ("ucgate_tls_reloads_total", "counter"),
    ("ucgate_config_reloads_total", "counter"),
    ("ucgate_acme_orders_total", "counter"),
    ("ucgate_tls_handshake_seconds", "histogram"),
];

/// Checks every expression; returns the problems found.
fn check(
    source: &str,
    exprs: &[String],
    families: &BTreeMap<String, Family>,
    doc: &str,
    used: &mut BTreeSet<String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for e in exprs {
        // Grafana's `label_values(SELECTOR, LABEL)`: LABEL must be the selector's
        let mut u = match e
            .strip_prefix("label_values(")
            .and_then(|s| s.strip_suffix(')'))
            .and_then(|s| s.rsplit_once(','))
        {
            Some((selector, label)) => {
                let mut u = uses(selector);
                u.grouping.push(label.trim().to_string());
                u
            }
            None => uses(e),
        };
        u.functions.retain(|f| f != "label_values");
        let mut labels_in_expr: BTreeSet<String> = BTreeSet::new();
        let mut bucket = false;
        for f in &u.functions {
            if !FUNCTIONS.contains(&f.as_str()) {
                problems.push(format!("{source}: unknown function `{f}` in {e}"));
            }
        }
        for (metric, matchers) in &u.selectors {
            let (family, labels, is_bucket): (String, BTreeSet<String>, bool) = match family_of(
                metric, families,
            ) {
                Some((n, f, b)) => (n.to_string(), f.labels.keys().cloned().collect(), b),
                None => {
                    let base = metric
                        .strip_suffix("_bucket")
                        .or(metric.strip_suffix("_count"))
                        .or(metric.strip_suffix("_sum"));
                    let known = NOT_SCRAPED
                        .iter()
                        .find(|(n, k)| *n == metric || (*k == "histogram" && Some(*n) == base));
                    let documented = known
                        .filter(|f| ucgate::metrics::FAMILIES.contains(f))
                        .and_then(|(n, _)| Some((n, traffic::documented_labels(doc, n)?)));
                    match documented {
                        Some((n, labels)) => (
                            n.to_string(),
                            labels.into_iter().collect(),
                            metric.ends_with("_bucket"),
                        ),
                        _ => {
                            problems.push(format!(
                                    "{source}: `{metric}` is not a metric the gateway exports (in: {e})"
                                ));
                            continue;
                        }
                    }
                }
            };
            used.insert(family.clone());
            bucket |= is_bucket;
            labels_in_expr.extend(labels.iter().cloned());
            for (name, op, value) in matchers {
                let ok = labels.contains(name)
                    || TARGET_LABELS.contains(&name.as_str())
                    || (name == "le" && is_bucket);
                if !ok {
                    problems.push(format!(
                        "{source}: `{metric}` has no label `{name}` (it has {labels:?}) in: {e}"
                    ));
                    continue;
                }
                // fixed values must be ones the docs list
                let fixed = !matches!(name.as_str(), "route" | "instance" | "job" | "le")
                    && !value.contains('$');
                if fixed {
                    let alternatives: Vec<&str> = if op.ends_with('~') {
                        value.split('|').collect()
                    } else {
                        vec![value.as_str()]
                    };
                    for a in alternatives {
                        if !doc.contains(&format!("`{a}`")) {
                            problems.push(format!(
                                "{source}: `{name}=\"{a}\"` on `{metric}` is not a documented value (docs/metrics.md) in: {e}"
                            ));
                        }
                    }
                }
            }
        }
        for g in &u.grouping {
            let ok = labels_in_expr.contains(g)
                || TARGET_LABELS.contains(&g.as_str())
                || (g == "le" && bucket);
            if !ok {
                problems.push(format!(
                    "{source}: grouping by `{g}`, a label none of the metrics has, in: {e}"
                ));
            }
        }
    }
    problems
}

fn promtool(args: &[&str], dir: &Path) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool: {e} (install Debian's `prometheus` package: scripts/install-deps)")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[test]
fn the_reader_finds_metrics_labels_and_grouping() {
    let u = uses(
        r#"sum by (instance, route) (rate(ucgate_errors_total{side="backend", kind=~"a|b"}[5m])) / on (instance) group_left ucgate_limit{name='x'} > 0.8 and time() - 14 * 86400"#,
    );
    assert_eq!(
        u.selectors,
        [
            (
                "ucgate_errors_total".to_string(),
                vec![
                    ("side".into(), "=".into(), "backend".into()),
                    ("kind".into(), "=~".into(), "a|b".into())
                ]
            ),
            (
                "ucgate_limit".to_string(),
                vec![("name".into(), "=".into(), "x".into())]
            ),
        ]
    );
    assert_eq!(u.grouping, ["instance", "route", "instance"]);
    assert_eq!(u.functions, ["sum", "rate", "time"]);
    let (exprs, rules) = rule_exprs(
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n      - alert: B\n        expr: |\n          a\n            / b\n        for: 5m\n",
    );
    assert_eq!((exprs, rules), (vec!["up == 0".into(), "a / b".into()], 2));
}

#[tokio::test]
async fn dashboard_and_alert_queries_use_only_exported_metrics_and_labels() {
    let busy = traffic::busy_gateway().await;
    let families = traffic::families(&busy.metrics);
    let doc = repo_file("docs/metrics.md");
    let (alerts, rules) = rule_exprs(&repo_file(ALERTS));
    assert_eq!(alerts.len(), rules, "one expr per rule in {ALERTS}");
    assert!(rules >= 10, "{rules} rules");
    let dashboard: serde_json::Value =
        serde_json::from_str(&repo_file(DASHBOARD)).expect("the dashboard is JSON");
    let queries = dashboard_exprs(&dashboard);
    assert!(queries.len() >= 20, "{queries:?}");
    let mut used = BTreeSet::new();
    let mut problems = check(ALERTS, &alerts, &families, &doc, &mut used);
    problems.extend(check(DASHBOARD, &queries, &families, &doc, &mut used));
    assert!(problems.is_empty(), "{problems:#?}\n{}", busy.metrics);
    // the checks bit: the files cover the families that matter
    for f in [
        "ucgate_errors_total",
        "ucgate_ready",
        "ucgate_limit",
        "ucgate_connections_active",
        "ucgate_bosh_sessions_active",
        "ucgate_tls_reloads_total",
        "ucgate_acme_cert_expiry_timestamp_seconds",
        "ucgate_sip_core_connects_total",
    ] {
        assert!(used.contains(f), "{f} is used by no query");
    }
    // and a wrong name or label is caught
    let wrong = [
        "rate(ucgate_error_total[5m])".to_string(),
        "sum by (side) (ucgate_ready)".to_string(),
        "ucgate_errors_total{side=\"backed\"}".to_string(),
        "ucgate_ready_bucket".to_string(),
        // (a family the traffic does not produce: its documented labels)
        "ucgate_tls_reloads_total{listener=\"main\"}".to_string(),
    ];
    let found = check("wrong", &wrong, &families, &doc, &mut BTreeSet::new());
    assert_eq!(found.len(), 5, "{found:#?}");
}

#[test]
fn promtool_accepts_the_rules_their_unit_tests_and_the_dashboard_queries() {
    let out = promtool(&["check", "rules", ALERTS], &repo_path(""));
    assert!(out.contains("SUCCESS"), "{out}");
    let out = promtool(
        &["test", "rules", "ucgate-alerts.test.yml"],
        &repo_path("contrib/prometheus"),
    );
    assert!(out.contains("SUCCESS"), "{out}");
    assert!(repo_path(ALERT_TESTS).exists());
    // the dashboard's queries as recording rules, Grafana's variables
    // replaced: promtool parses each
    let dashboard: serde_json::Value = serde_json::from_str(&repo_file(DASHBOARD)).unwrap();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (n, q) in dashboard_exprs(&dashboard)
        .iter()
        .filter(|q| !q.starts_with("label_values("))
        .enumerate()
    {
        let q = q
            .replace("$__rate_interval", "5m")
            .replace("$instance", ".+")
            .replace("$route", ".+");
        rules.push_str(&format!(
            "      - record: dashboard:q{n}\n        expr: {}\n",
            serde_json::Value::String(q)
        ));
    }
    let dir = std::env::temp_dir().join(format!("ucgate-dashboard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("dashboard.yml"), rules).unwrap();
    let out = promtool(&["check", "rules", "dashboard.yml"], &dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn the_dashboard_is_well_formed() {
    let d: serde_json::Value = serde_json::from_str(&repo_file(DASHBOARD)).unwrap();
    assert_eq!(d["uid"], "ucgate");
    assert!(d["schemaVersion"].as_u64().unwrap() >= 36);
    let vars: Vec<&str> = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    for v in ["datasource", "instance", "route"] {
        assert!(vars.contains(&v), "variable {v} missing: {vars:?}");
    }
    // every $variable a query names is defined (or Grafana's own)
    for q in dashboard_exprs(&d) {
        for part in q.split('$').skip(1) {
            let name: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(
                vars.contains(&name.as_str()) || name == "__rate_interval",
                "${name} is not a dashboard variable: {q}"
            );
        }
    }
    let panels = d["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    let mut boxes: Vec<(u64, u64, u64, u64, String)> = Vec::new();
    for p in panels {
        let title = p["title"].as_str().unwrap().to_string();
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "id of {title} reused"
        );
        let g = &p["gridPos"];
        let (x, y, w, h) = (
            g["x"].as_u64().unwrap(),
            g["y"].as_u64().unwrap(),
            g["w"].as_u64().unwrap(),
            g["h"].as_u64().unwrap(),
        );
        assert!(x + w <= 24 && w > 0 && h > 0, "{title}: {g}");
        for (bx, by, bw, bh, other) in &boxes {
            let apart = x + w <= *bx || *bx + bw <= x || y + h <= *by || *by + bh <= y;
            assert!(apart, "{title} overlaps {other}");
        }
        boxes.push((x, y, w, h, title.clone()));
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title} has no query");
        let refs: BTreeSet<&str> = targets
            .iter()
            .map(|t| t["refId"].as_str().unwrap())
            .collect();
        assert_eq!(refs.len(), targets.len(), "{title}: refIds repeat");
    }
}

//! A strict parser of the Prometheus text exposition format 0.0.4, for checking what
//! `xdptcp serve --metrics` writes (used by the runtime's metrics unit tests and its veth test).
//!
//! Stricter than the format: every family needs one `# HELP` and one `# TYPE` line, both
//! before its samples; a family's samples are contiguous; no other comments, no empty lines,
//! no timestamps; no series twice; counters end in `_total`. Metric and label names, label
//! escapes (`\\`, `\"`, `\n`) and values are checked as the format defines them.

use std::collections::HashSet;

/// Why a text was refused: the line and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PromError(pub String);

impl From<String> for PromError {
    fn from(s: String) -> Self {
        PromError(s)
    }
}

impl From<&str> for PromError {
    fn from(s: &str) -> Self {
        PromError(s.to_string())
    }
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Labels,
    pub value: f64,
}

/// A family's `# HELP` (unescaped) and `# TYPE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    pub name: String,
    pub help: String,
    pub kind: String,
}

#[derive(Debug, Clone, Default)]
pub struct Exposition {
    pub families: Vec<Family>,
    pub samples: Vec<Sample>,
}

impl Exposition {
    /// The value of the series `name` with exactly these labels (any order).
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut want: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        want.sort();
        self.samples
            .iter()
            .find(|s| {
                let mut have = s.labels.clone();
                have.sort();
                s.name == name && have == want
            })
            .map(|s| s.value)
    }

    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.name == name)
    }
}

pub fn valid_metric_name(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

pub fn valid_label_name(n: &str) -> bool {
    let mut c = n.chars();
    !n.starts_with("__")
        && matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

fn unescape_help(s: &str) -> Result<String, PromError> {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                x => return Err(format!("bad escape \\{x:?} in HELP").into()),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Label pairs in line order, unescaped.
type Labels = Vec<(String, String)>;

/// `{a="x",b="y"}` after the metric name; returns the labels and the rest of the line.
fn parse_labels(s: &str) -> Result<(Labels, &str), PromError> {
    let mut labels = Vec::new();
    let mut rest = s.strip_prefix('{').ok_or("expected {")?;
    if let Some(r) = rest.strip_prefix('}') {
        return Ok((labels, r));
    }
    loop {
        let eq = rest.find('=').ok_or("label without =")?;
        let name = &rest[..eq];
        if !valid_label_name(name) {
            return Err(format!("bad label name {name:?}").into());
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value without \"")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    x => return Err(format!("bad escape {x:?} in a label value").into()),
                },
                Some((_, '\n')) => return Err("raw newline in a label value".into()),
                Some((_, c)) => value.push(c),
            }
        };
        if labels.iter().any(|(n, _)| n == name) {
            return Err(format!("label {name} twice").into());
        }
        labels.push((name.to_string(), value));
        rest = &rest[end + 1..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
            if let Some(r) = rest.strip_prefix('}') {
                return Ok((labels, r));
            }
        } else if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        } else {
            return Err("expected , or } after a label".into());
        }
    }
}

fn parse_value(s: &str) -> Result<f64, PromError> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| PromError(format!("bad value {s:?}"))),
    }
}

/// Parses `text` strictly; `Err` names the line and the problem.
pub fn parse_strict(text: &str) -> Result<Exposition, PromError> {
    if !text.ends_with('\n') {
        return Err("the exposition must end with a newline".into());
    }
    let mut e = Exposition::default();
    let mut helps: Vec<(String, String)> = Vec::new();
    let mut types: Vec<(String, String)> = Vec::new();
    let mut done: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut series: HashSet<String> = HashSet::new();
    for (i, line) in text[..text.len() - 1].split('\n').enumerate() {
        let err = |m: PromError| PromError(format!("line {}: {m}: {line:?}", i + 1));
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest
                .split_once(' ')
                .ok_or_else(|| err("HELP without text".into()))?;
            if !valid_metric_name(name)
                || helps.iter().any(|(n, _)| n == name)
                || done.contains(name)
            {
                return Err(err("bad or repeated HELP".into()));
            }
            helps.push((name.into(), unescape_help(help).map_err(err)?));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest
                .split_once(' ')
                .ok_or_else(|| err("TYPE without type".into()))?;
            if !valid_metric_name(name)
                || types.iter().any(|(n, _)| n == name)
                || done.contains(name)
            {
                return Err(err("bad or repeated TYPE".into()));
            }
            if !matches!(
                kind,
                "counter" | "gauge" | "untyped" | "histogram" | "summary"
            ) {
                return Err(err(format!("unknown type {kind:?}").into()));
            }
            if kind == "counter" && !name.ends_with("_total") {
                return Err(err("a counter without _total".into()));
            }
            if kind != "counter" && name.ends_with("_total") {
                return Err(err("_total on a non-counter".into()));
            }
            types.push((name.into(), kind.into()));
        } else if line.starts_with('#') || line.is_empty() {
            return Err(err("comment or empty line".into()));
        } else {
            let end = line
                .find(['{', ' '])
                .ok_or_else(|| err("sample without value".into()))?;
            let name = &line[..end];
            if !valid_metric_name(name) {
                return Err(err(format!("bad metric name {name:?}").into()));
            }
            let (labels, rest) = if line[end..].starts_with('{') {
                parse_labels(&line[end..]).map_err(err)?
            } else {
                (Vec::new(), &line[end..])
            };
            let v = rest
                .strip_prefix(' ')
                .ok_or_else(|| err("expected one space before the value".into()))?;
            if v.contains(' ') {
                return Err(err("timestamps or trailing fields".into()));
            }
            let value = parse_value(v).map_err(err)?;
            let kind = types
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, k)| k.clone());
            if kind.is_none() || !helps.iter().any(|(n, _)| n == name) {
                return Err(err("sample before its HELP and TYPE".into()));
            }
            if current.as_deref() != Some(name) {
                if done.contains(name) {
                    return Err(err("family samples are not contiguous".into()));
                }
                if let Some(c) = current.take() {
                    done.insert(c);
                }
                current = Some(name.to_string());
            }
            let mut key_labels = labels.clone();
            key_labels.sort();
            if !series.insert(format!("{name}{key_labels:?}")) {
                return Err(err("series twice".into()));
            }
            e.samples.push(Sample {
                name: name.into(),
                labels,
                value,
            });
        }
    }
    for (name, kind) in types {
        let help = helps
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, h)| h.clone())
            .ok_or_else(|| format!("family {name} without HELP"))?;
        e.families.push(Family { name, help, kind });
    }
    if helps.len() != e.families.len() {
        return Err("a HELP without TYPE".into());
    }
    Ok(e)
}

//! From the TOML text and the `TENANTWATCH__…` variables to [`RawConfig`],
//! with every key that does not fit reported, not just the first.
//!
//! The file becomes a `config::Value` tree (numbers TOML cannot hold are
//! reported by key and left out), the variables are merged over it by the
//! config crate, and the tree is read [strictly](super::strict). Serde stops
//! at the first bad key, so each one is reported, removed, and the rest read
//! again until what remains fits; validation then runs on that, and type
//! errors, unknown keys and validation problems come out in one list. A key a
//! variable set is reported with the variable's name.

use std::collections::{BTreeMap, BTreeSet};

use config::{Map, Value, ValueKind};
use serde::Deserialize;
use toml_de::de::{DeTable, DeValue};

use super::raw::RawConfig;
use super::strict::{dotted, ErrorKind, ReadError, Step, Strict};
use super::validate::Problems;
use super::ENV_PREFIX;

/// Where keys came from and which were already reported, so [`Problems`]
/// names the variable behind a key and says nothing more about one that was
/// left out.
#[derive(Debug, Default)]
pub(super) struct Keys {
    /// Dotted key (as the config crate derives it) → the variable that set it.
    env: BTreeMap<String, String>,
    /// Keys reported and left out of the tree.
    refused: BTreeSet<String>,
}

impl Keys {
    /// The keys `TENANTWATCH__…` variables set, derived as the config crate
    /// does: lower case, prefix dropped, `__` for `.`.
    pub(super) fn from_env<'a>(vars: impl IntoIterator<Item = &'a String>) -> Self {
        let prefix = format!("{}__", ENV_PREFIX.to_lowercase());
        let env = vars
            .into_iter()
            .filter_map(|var| {
                let lower = var.to_lowercase();
                let key = lower.strip_prefix(&prefix)?.replace("__", ".");
                Some((key, var.clone()))
            })
            .collect();
        Self {
            env,
            refused: BTreeSet::new(),
        }
    }

    /// The variable that set `key` or something under it.
    pub(super) fn var_for(&self, key: &str) -> Option<&str> {
        self.env
            .get(key)
            .or_else(|| {
                self.env
                    .iter()
                    .find(|(k, _)| is_under(k, key))
                    .map(|(_, v)| v)
            })
            .map(String::as_str)
    }

    /// True when `key`, or a key it is under, was reported and left out.
    pub(super) fn refused(&self, key: &str) -> bool {
        self.refused.iter().any(|r| key == r || is_under(key, r))
    }
}

/// True when `key` lies inside `parent` (`a.b` and `a[0]` inside `a`).
fn is_under(key: &str, parent: &str) -> bool {
    key.strip_prefix(parent)
        .is_some_and(|rest| rest.starts_with(['.', '[']))
}

/// Keys whose value must not appear in a message.
fn is_secret(key: &str) -> bool {
    key.rsplit('.').next() == Some("client_secret")
}

/// Reports `key` as `msg` and marks it left out.
fn refuse(p: &mut Problems, key: &str, msg: impl std::fmt::Display) {
    p.push(key, msg);
    p.1.refused.insert(key.to_string());
}

/// Problems found before the tree is read, as (key, message).
pub(super) type KeyProblems = Vec<(String, String)>;

/// Parses the file into a tree. A syntax error ends it (the TOML error names
/// line and column); a number too large for TOML is reported by key and left out.
pub(super) fn parse_file(
    text: &str,
) -> Result<(Map<String, Value>, KeyProblems), toml_de::de::Error> {
    let doc = DeTable::parse(text)?.into_inner();
    let mut problems = Vec::new();
    let tree = table(doc, "", &mut problems);
    Ok((tree, problems))
}

fn table(t: DeTable<'_>, prefix: &str, problems: &mut KeyProblems) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in t {
        let k = k.into_inner().into_owned();
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if let Some(v) = value(v.into_inner(), &key, problems) {
            out.insert(k, v);
        }
    }
    out
}

fn value(v: DeValue<'_>, key: &str, problems: &mut KeyProblems) -> Option<Value> {
    let kind = match v {
        DeValue::String(s) => ValueKind::String(s.into_owned()),
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => ValueKind::I64(n),
            Err(_) => {
                problems.push((
                    key.to_string(),
                    format!(
                        "{} is out of range: TOML numbers go from {} to {}",
                        i.as_str(),
                        i64::MIN,
                        i64::MAX
                    ),
                ));
                return None;
            }
        },
        DeValue::Float(f) => match f.as_str().parse::<f64>() {
            Ok(x) if x.is_finite() || f.as_str().contains("inf") => ValueKind::Float(x),
            _ => {
                problems.push((key.to_string(), format!("{} is out of range", f.as_str())));
                return None;
            }
        },
        DeValue::Boolean(b) => ValueKind::Boolean(b),
        // As the config crate reads them: a date is a string to whatever key gets it.
        DeValue::Datetime(d) => ValueKind::String(d.to_string()),
        DeValue::Array(items) => ValueKind::Array(
            items
                .into_iter()
                .enumerate()
                .filter_map(|(i, v)| value(v.into_inner(), &format!("{key}[{i}]"), problems))
                .collect(),
        ),
        DeValue::Table(t) => ValueKind::Table(table(t, key, problems)),
    };
    Some(Value::new(None, kind))
}

/// The parsed file as a config source, so the variables merge over it the way
/// they always have.
#[derive(Debug, Clone)]
struct Parsed(Map<String, Value>);

impl config::Source for Parsed {
    fn clone_into_box(&self) -> Box<dyn config::Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<Map<String, Value>, config::ConfigError> {
        Ok(self.0.clone())
    }
}

/// The file's tree with the `TENANTWATCH__…` variables in `env` merged over
/// it. Values stay strings: the reader parses what a key needs, so a secret
/// such as `0123` is not turned into the number 123.
pub(super) fn merge(
    file: Map<String, Value>,
    env: Map<String, String>,
) -> Result<Map<String, Value>, config::ConfigError> {
    use config::Source;
    config::Config::builder()
        .add_source(Parsed(file))
        .add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .source(Some(env)),
        )
        .build()?
        .collect()
}

/// Reads `tree` into the raw shape, reporting each key that does not fit in
/// `p` and reading on without it. `None` only when a reported key could not
/// be found to remove, which would otherwise repeat forever.
pub(super) fn read(mut tree: Map<String, Value>, p: &mut Problems) -> Option<RawConfig> {
    // Each round removes a key, so the count of values bounds the rounds.
    for _ in 0..=count(&tree) {
        let whole = Value::new(None, ValueKind::Table(tree.clone()));
        match RawConfig::deserialize(Strict(whole)) {
            Ok(raw) => return Some(raw),
            Err(e) => {
                let removed = remove(&mut tree, &e.path);
                report(p, e);
                if !removed {
                    return None;
                }
            }
        }
    }
    None
}

fn report(p: &mut Problems, e: ReadError) {
    let key = dotted(&e.path);
    match e.kind {
        ErrorKind::Unknown { takes } => {
            let parent = &e.path[..e.path.len().saturating_sub(1)];
            let takes = match parent.last() {
                None => format!("the sections are {}", takes.join(", ")),
                Some(Step::Index(_)) => {
                    let list = dotted(&parent[..parent.len() - 1]);
                    format!("[[{list}]] takes {}", takes.join(", "))
                }
                Some(Step::Key(_)) => format!("[{}] takes {}", dotted(parent), takes.join(", ")),
            };
            let what = if parent.is_empty() { "section" } else { "key" };
            let line = match p.1.var_for(&key) {
                Some(var) => format!("{var} sets unknown {what} {key}; {takes}"),
                None => format!("{key}: unknown {what}; {takes}"),
            };
            p.0.push(line);
            p.1.refused.insert(key);
        }
        ErrorKind::Mismatch {
            expected,
            shown,
            kind,
        } => {
            let got = if is_secret(&key) {
                format!("{kind} (not shown: the key holds a secret)")
            } else {
                shown
            };
            refuse(p, &key, format!("expected {expected}, got {got}"));
        }
        ErrorKind::Other(m) => refuse(p, &key, m),
    }
}

/// Marks the problems [`parse_file`] found as reported.
pub(super) fn report_file_problems(p: &mut Problems, problems: KeyProblems) {
    for (key, msg) in problems {
        refuse(p, &key, msg);
    }
}

fn count(tree: &Map<String, Value>) -> usize {
    fn values(v: &Value) -> usize {
        1 + match &v.kind {
            ValueKind::Table(t) => t.values().map(values).sum(),
            ValueKind::Array(a) => a.iter().map(values).sum(),
            _ => 0,
        }
    }
    tree.values().map(values).sum()
}

/// Removes the key `path` ends in. A path ending inside a list removes the
/// whole list: dropping one element would shift the indices later problems
/// are reported by.
fn remove(table: &mut Map<String, Value>, path: &[Step]) -> bool {
    match path {
        [Step::Key(k), rest @ ..] if rest.iter().all(|s| matches!(s, Step::Index(_))) => {
            table.remove(k).is_some()
        }
        [Step::Key(k), rest @ ..] => table.get_mut(k).is_some_and(|v| remove_in(v, rest)),
        _ => false,
    }
}

fn remove_in(v: &mut Value, path: &[Step]) -> bool {
    match (&mut v.kind, path) {
        (ValueKind::Array(items), [Step::Index(i), rest @ ..]) => {
            items.get_mut(*i).is_some_and(|v| remove_in(v, rest))
        }
        (ValueKind::Table(t), _) => remove(t, path),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str, env: &[(&str, &str)]) -> (Option<RawConfig>, Vec<String>) {
        let env: Map<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (file, found) = parse_file(text).unwrap();
        let mut p = Problems(Vec::new(), Keys::from_env(env.keys()));
        report_file_problems(&mut p, found);
        let raw = read(merge(file, env).unwrap(), &mut p);
        (raw, p.0)
    }

    #[test]
    fn every_bad_key_is_reported_and_the_rest_still_read() {
        let (raw, lines) = problems(
            "[server]\nlisten = 9464\nlistn = \"x\"\n[collection]\nconcurrency = \"many\"\nmax_series = -1\nmax_pages = 5\n",
            &[],
        );
        assert_eq!(
            lines,
            [
                "collection.concurrency: expected a whole number, 0 or more, got \"many\"",
                "collection.max_series: expected a whole number, 0 or more, got -1",
                "server.listen: expected a string, got 9464",
                "server.listn: unknown key; [server] takes listen, web_config_file, max_requests, header_read_timeout, idle_timeout, max_connections",
            ]
        );
        let raw = raw.unwrap();
        assert_eq!(raw.collection.max_pages, Some(5));
        assert_eq!(raw.collection.concurrency, None);
    }

    #[test]
    fn a_variable_is_named_for_the_key_it_set() {
        let (_, lines) = problems(
            "",
            &[
                ("TENANTWATCH__SERVER__LISTN", "x"),
                ("TENANTWATCH__COLLECTION__MAX_SERIES", "-5"),
                ("TENANTWATCH__NOPE__KEY", "1"),
            ],
        );
        assert_eq!(
            lines,
            [
                "TENANTWATCH__COLLECTION__MAX_SERIES sets collection.max_series: expected a whole number, 0 or more, got \"-5\"",
                "TENANTWATCH__NOPE__KEY sets unknown section nope; the sections are cloud, partner, store, partners, server, collection, rotation, tenants, collectors, log, secrets, consent",
                "TENANTWATCH__SERVER__LISTN sets unknown key server.listn; [server] takes listen, web_config_file, max_requests, header_read_timeout, idle_timeout, max_connections",
            ]
        );
    }

    #[test]
    fn a_number_toml_cannot_hold_is_named_by_key() {
        let (raw, lines) = problems("[collection]\nmax_series = 99999999999999999999\n", &[]);
        assert_eq!(
            lines,
            ["collection.max_series: 99999999999999999999 is out of range: TOML numbers go from -9223372036854775808 to 9223372036854775807"]
        );
        assert!(raw.is_some());
    }

    #[test]
    fn a_secret_of_the_wrong_type_is_not_echoed() {
        let (_, lines) = problems("[partner]\nclient_secret = 123456789\n", &[]);
        assert_eq!(
            lines,
            ["partner.client_secret: expected a string, got a number (not shown: the key holds a secret)"]
        );
    }

    #[test]
    fn a_numeric_looking_secret_from_the_environment_stays_text() {
        let (raw, lines) = problems("", &[("TENANTWATCH__PARTNER__CLIENT_SECRET", "0123")]);
        assert!(lines.is_empty(), "{lines:?}");
        let secret = raw.unwrap().partner.unwrap().client_secret;
        assert_eq!(secret.as_deref(), Some("0123"));
    }

    #[test]
    fn bad_list_elements_and_keys_in_arrays_of_tables_name_their_place() {
        let (_, lines) = problems(
            "[tenants]\nstatic = [\"a\", 2, 3]\n[[collectors.resource_graph.queries]]\nname = \"x\"\nnme = \"y\"\n",
            &[],
        );
        assert_eq!(
            lines,
            [
                "collectors.resource_graph.queries[0].nme: unknown key; [[collectors.resource_graph.queries]] takes name, query, value_column, label_columns, help",
                "tenants.static[1]: expected a string, got 2",
            ]
        );
    }
}

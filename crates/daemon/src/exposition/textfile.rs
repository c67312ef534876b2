//! Counters kept in a Prometheus text file for node_exporter's textfile
//! collector: how a command that runs outside the daemon (`tenantwatch
//! consent customers`) exports what it did. Each run reads the file's
//! current values, adds its own and replaces the file in one rename, so the
//! series only ever grow, as a counter's must.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::exposition::text::{Body, Chunk, GaugeText};

/// Largest file read back; a counter family of a few results is far smaller.
const MAX_FILE: u64 = 1024 * 1024;

/// Adds one to `name{label="…"}` for each of `results` in the file at `path`
/// (created when missing), keeping the values already there.
pub fn add_counts<'a>(
    path: &Path,
    name: &str,
    help: &str,
    label: &str,
    results: impl IntoIterator<Item = &'a str>,
) -> io::Result<()> {
    let mut counts = match std::fs::metadata(path) {
        Ok(m) if m.len() > MAX_FILE => {
            return Err(io::Error::other(format!(
                "larger than {MAX_FILE} bytes; not a counter file of ours"
            )))
        }
        Ok(_) => read_counts(&std::fs::read_to_string(path)?, name, label),
        Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(e),
    };
    for r in results {
        *counts.entry(r.to_string()).or_insert(0.0) += 1.0;
    }
    let head = Chunk::new(
        name.to_string(),
        &format!("# HELP {name} {help}\n# TYPE {name} counter\n"),
    );
    let mut samples = GaugeText::new(name, "", &[label], false);
    for (value, n) in &counts {
        samples.add(&[value], *n);
    }
    let mut pieces = vec![Arc::new(head)];
    pieces.extend(samples.done().map(Arc::new));
    // The textfile collector may read at any moment: write aside, then rename.
    let tmp = path.with_extension("prom.tmp");
    std::fs::write(&tmp, Body(pieces).plain())?;
    std::fs::rename(&tmp, path)
}

/// The values of `name{label="…"}` in a text exposition; other lines are ignored.
fn read_counts(text: &str, name: &str, label: &str) -> BTreeMap<String, f64> {
    let prefix = format!("{name}{{{label}=\"");
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let (value, tail) = rest.split_once("\"}")?;
            let n = tail.trim().parse::<f64>().ok()?;
            Some((value.to_string(), n))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_accumulate_across_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("consent.prom");
        add_counts(
            &path,
            "x_total",
            "Help.",
            "result",
            ["created", "failed", "created"],
        )
        .unwrap();
        add_counts(&path, "x_total", "Help.", "result", ["created"]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("# TYPE x_total counter\n"), "{text}");
        assert!(text.contains("x_total{result=\"created\"} 3\n"), "{text}");
        assert!(text.contains("x_total{result=\"failed\"} 1\n"), "{text}");
    }
}

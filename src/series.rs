//! A collector's samples for one tenant, stored compactly between runs.
//!
//! Collectors hand over [`Sample`]s with a `String` per label value, which is
//! convenient to build but costs about 230 bytes a sample: at 5,000 tenants
//! the kept findings were the largest part of the daemon's memory. Here each
//! distinct label value is stored once per tenant and collector (the tenant id
//! alone repeats in every sample), and a sample is a row of indices and its value.

use std::sync::Arc;

use crate::collector::{Family, Sample};
use crate::exposition::{Chunk, GaugeText};

/// Samples grouped by family (in first-seen order), labels interned. Four
/// allocations whatever the size: at 30,000 sets (5,000 tenants, six
/// collectors) each allocation more costs about a megabyte.
#[derive(Debug, Default, PartialEq)]
pub struct SeriesSet {
    families: Box<[Run]>,
    /// Distinct label values, end to end.
    text: Box<str>,
    /// Where each distinct value ends in `text`; then, per sample, the index
    /// of each of its label values in the family's label order.
    ints: Box<[u32]>,
    values: Box<[f64]>,
}

/// One family's rows (rows are grouped by family).
#[derive(Debug, PartialEq)]
struct Run {
    family: Arc<Family>,
    /// Where its rows end in `values`.
    end: u32,
    /// Where its first row's label indices start in `ints` (families differ in width).
    labels_at: u32,
}

impl SeriesSet {
    /// Stores `samples`, keeping their order within each family.
    pub fn new(samples: &[Sample]) -> Self {
        let mut families: Vec<Arc<Family>> = Vec::new();
        let mut of_sample: Vec<usize> = Vec::with_capacity(samples.len());
        for s in samples {
            let i = match families.iter().position(|f| Arc::ptr_eq(f, &s.family)) {
                Some(i) => i,
                None => {
                    families.push(s.family.clone());
                    families.len() - 1
                }
            };
            of_sample.push(i);
        }
        let mut order: Vec<usize> = (0..samples.len()).collect();
        // Stable: samples keep the collector's order within a family.
        order.sort_by_key(|&i| of_sample[i]);

        let mut index: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
        let (mut text, mut text_ends) = (String::new(), Vec::new());
        let mut labels = Vec::new();
        let mut values = Vec::with_capacity(samples.len());
        let mut runs: Vec<(u32, u32)> = vec![(0, 0); families.len()];
        for (n, &i) in order.iter().enumerate() {
            let s = &samples[i];
            if n == 0 || of_sample[order[n - 1]] != of_sample[i] {
                runs[of_sample[i]].1 = labels.len() as u32;
            }
            for k in 0..s.family.labels.len() {
                let v = s.labels.get(k).map(String::as_str).unwrap_or("");
                let id = *index.entry(v).or_insert_with(|| {
                    text.push_str(v);
                    text_ends.push(text.len() as u32);
                    (text_ends.len() - 1) as u32
                });
                labels.push(id);
            }
            values.push(s.value);
            runs[of_sample[i]].0 = values.len() as u32;
        }
        let distinct = text_ends.len() as u32;
        let mut ints = text_ends;
        ints.extend_from_slice(&labels);
        let families: Vec<Run> = families
            .into_iter()
            .zip(runs)
            .map(|(family, (end, labels_at))| Run {
                family,
                end,
                labels_at: labels_at + distinct,
            })
            .collect();
        Self {
            families: families.into(),
            text: text.into(),
            ints: ints.into(),
            values: values.into(),
        }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The families present, in first-seen order.
    pub fn families(&self) -> impl Iterator<Item = &Arc<Family>> {
        self.families.iter().map(|r| &r.family)
    }

    fn value_text(&self, id: u32) -> &str {
        let id = id as usize;
        let start = if id == 0 {
            0
        } else {
            self.ints[id - 1] as usize
        };
        &self.text[start..self.ints[id] as usize]
    }

    /// Calls `f` with each sample of the family named `name`: label values in
    /// the family's order, and the value.
    pub fn for_each_in(&self, name: &str, mut f: impl FnMut(&[&str], f64)) {
        let Some(fi) = self.families.iter().position(|r| r.family.name == name) else {
            return;
        };
        let run = &self.families[fi];
        let width = run.family.labels.len();
        let start = if fi == 0 {
            0
        } else {
            self.families[fi - 1].end as usize
        };
        let mut at = run.labels_at as usize;
        let mut row: Vec<&str> = Vec::with_capacity(width);
        for s in start..run.end as usize {
            row.clear();
            row.extend(
                self.ints[at..at + width]
                    .iter()
                    .map(|&id| self.value_text(id)),
            );
            at += width;
            f(&row, self.values[s]);
        }
    }

    /// Every sample back as [`Sample`]s, families in first-seen order.
    #[cfg(test)]
    pub fn samples(&self) -> Vec<Sample> {
        let mut out = Vec::with_capacity(self.len());
        for fam in self.families() {
            self.for_each_in(&fam.name, |labels, value| {
                out.push(Sample {
                    family: fam.clone(),
                    labels: labels.iter().map(|l| l.to_string()).collect(),
                    value,
                })
            });
        }
        out
    }
}

/// Encodes the families in `sets` (one collector's tenants) as exposition
/// pieces, one family at a time so a single compressor is alive: the pieces
/// are served until the collector's next run, so they get a slower, tighter
/// compression than the per-publish ones.
pub fn encode(sets: &[&SeriesSet]) -> Vec<Chunk> {
    let mut families: std::collections::BTreeMap<&str, &Arc<Family>> = Default::default();
    for set in sets {
        for f in set.families() {
            families.entry(f.name.as_str()).or_insert(f);
        }
    }
    let mut out = Vec::with_capacity(families.len() * 2);
    for (name, fam) in families {
        let labels: Vec<&str> = fam.labels.iter().map(String::as_str).collect();
        let mut text =
            GaugeText::new(name, &fam.help, &labels, false).level(flate2::Compression::default());
        for set in sets {
            set.for_each_in(name, |l, v| text.add(l, v));
        }
        if let Some(samples) = text.done() {
            out.push(GaugeText::header(name, &fam.help));
            out.push(samples);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(f: &Arc<Family>, labels: &[&str], value: f64) -> Sample {
        Sample {
            family: f.clone(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            value,
        }
    }

    #[test]
    fn round_trips_samples_grouped_by_family_in_order() {
        let a = Family::new("a", "", &["tenant_id", "sku"]);
        let b = Family::new("b", "", &["tenant_id"]);
        let c = Family::new("c", "", &[]);
        let input = vec![
            sample(&a, &["t", "E5"], 1.0),
            sample(&b, &["t"], 2.0),
            sample(&a, &["t", "E3"], 3.0),
            sample(&c, &[], f64::NAN),
            sample(&a, &["t", ""], 4.0),
            sample(&b, &["t\"x"], -0.5),
        ];
        let set = SeriesSet::new(&input);
        assert_eq!(set.len(), 6);
        let names: Vec<&str> = set.families().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        let back = set.samples();
        let order = [0, 2, 4, 1, 5, 3];
        for (got, &i) in back.iter().zip(&order) {
            assert_eq!(got.family.name, input[i].family.name);
            assert_eq!(got.labels, input[i].labels);
            assert_eq!(got.value.to_bits(), input[i].value.to_bits());
        }
        let mut seen = Vec::new();
        set.for_each_in("b", |l, v| seen.push((l.join("|"), v)));
        assert_eq!(seen, [("t".to_string(), 2.0), ("t\"x".to_string(), -0.5)]);
        set.for_each_in("missing", |_, _| panic!("no such family"));
    }

    #[test]
    fn repeated_label_values_are_stored_once() {
        let f = Family::new("f", "", &["tenant_id", "service"]);
        let tenant = "0142711d-3cc0-4ce1-aa2f-e84b8e8c5282";
        let input: Vec<Sample> = (0..100)
            .map(|i| sample(&f, &[tenant, ["Exchange", "Teams"][i % 2]], i as f64))
            .collect();
        let set = SeriesSet::new(&input);
        assert_eq!(
            set.text.len(),
            tenant.len() + "Exchange".len() + "Teams".len()
        );
        assert_eq!(set.samples(), input);
        assert!(SeriesSet::new(&[]).is_empty());
    }

    use proptest::prelude::*;

    proptest! {
        /// Whatever the widths and values, each family's samples come back
        /// as given and in order.
        #[test]
        fn any_samples_round_trip_per_family(
            rows in proptest::collection::vec(
                (0usize..4, proptest::collection::vec("[a-c\"\\\\]{0,3}", 0..4), any::<f64>()),
                0..60,
            ),
        ) {
            let fams: Vec<Arc<Family>> = (0..4)
                .map(|i| {
                    let labels: Vec<String> = (0..i).map(|k| format!("l{k}")).collect();
                    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
                    Family::new(&format!("f{i}"), "", &labels)
                })
                .collect();
            let input: Vec<Sample> = rows
                .iter()
                .map(|(f, labels, v)| {
                    let mut labels = labels.clone();
                    labels.resize(*f, String::new());
                    Sample { family: fams[*f].clone(), labels, value: *v }
                })
                .collect();
            let set = SeriesSet::new(&input);
            prop_assert_eq!(set.len(), input.len());
            for fam in &fams {
                let want: Vec<(Vec<String>, u64)> = input
                    .iter()
                    .filter(|s| s.family.name == fam.name)
                    .map(|s| (s.labels.clone(), s.value.to_bits()))
                    .collect();
                let mut got = Vec::new();
                set.for_each_in(&fam.name, |l, v| {
                    got.push((l.iter().map(|x| x.to_string()).collect::<Vec<_>>(), v.to_bits()))
                });
                prop_assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn encodes_each_family_once_across_tenants() {
        use std::io::Read;
        let f = Family::new("m_b", "B.", &["tenant_id", "x"]);
        let g = Family::new("m_a", "A.", &["tenant_id"]);
        let set = |t: &str| {
            SeriesSet::new(&[
                sample(&f, &[t, "1"], 1.0),
                sample(&g, &[t], 2.0),
                sample(&f, &[t, "2"], 3.0),
            ])
        };
        let (t1, t2, empty) = (set("t1"), set("t2"), SeriesSet::default());
        let chunks: Vec<Arc<Chunk>> = encode(&[&t1, &t2, &empty])
            .into_iter()
            .map(Arc::new)
            .collect();
        let mut text = String::new();
        flate2::read::GzDecoder::new(&crate::exposition::Exposition(chunks).gzip()[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(
            text,
            "# HELP m_a A.\n# TYPE m_a gauge\nm_a{tenant_id=\"t1\"} 2\nm_a{tenant_id=\"t2\"} 2\n\
             # HELP m_b B.\n# TYPE m_b gauge\nm_b{tenant_id=\"t1\",x=\"1\"} 1\nm_b{tenant_id=\"t1\",x=\"2\"} 3\n\
             m_b{tenant_id=\"t2\",x=\"1\"} 1\nm_b{tenant_id=\"t2\",x=\"2\"} 3\n"
        );
    }
}

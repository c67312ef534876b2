//! A collector's samples for one tenant, stored compactly between runs.
//!
//! Collectors hand over [`Sample`]s with a `String` per label value, which is
//! convenient to build but costs about 230 bytes a sample: at 5,000 tenants
//! the kept findings were the largest part of the daemon's memory. Here a
//! set is one shared buffer: each distinct label value stored once (the
//! tenant id, which repeats in every sample, not at all: the caller knows it),
//! a sample a row of the narrowest indices that fit, and the family list
//! shared by every tenant whose samples have the same families.

use std::sync::{Arc, Mutex, OnceLock};

use tenantwatch_common::sync::lock;

use crate::exposition::text::{Chunk, GaugeText};
use crate::model::{Family, Sample};

/// Samples grouped by family (in first-seen order), labels interned, in one
/// allocation: at 30,000 sets (5,000 tenants, six collectors) every
/// allocation per set costs about a megabyte. Cloning shares it.
#[derive(Debug, Clone)]
pub struct SeriesSet {
    families: Arc<[Arc<Family>]>,
    /// Header, then per family the end of its rows, values, the end of each
    /// distinct label value in the text, label indices, the text. See [`View`].
    data: Arc<[u8]>,
}

impl Default for SeriesSet {
    fn default() -> Self {
        // Shared: failed tenants keep an empty set and should not pay for one each.
        static EMPTY: OnceLock<SeriesSet> = OnceLock::new();
        EMPTY
            .get_or_init(|| SeriesSet::new("", &[], &FamilyLists::default()))
            .clone()
    }
}

/// Index of the tenant id among label values; stored values start at 1.
const TENANT: u32 = 0;
const HEADER: usize = 4 * 4;

/// The family lists seen so far, so sets with the same families share one.
/// Tenants of one collector mostly have the same few lists; past `MAX_LISTS`
/// distinct ones a set just keeps its own.
#[derive(Default)]
pub struct FamilyLists(Mutex<Vec<Arc<[Arc<Family>]>>>);

const MAX_LISTS: usize = 256;

impl FamilyLists {
    fn intern(&self, families: Vec<Arc<Family>>) -> Arc<[Arc<Family>]> {
        let mut lists = lock(&self.0);
        let same = |l: &Arc<[Arc<Family>]>| {
            l.len() == families.len() && l.iter().zip(&families).all(|(a, b)| Arc::ptr_eq(a, b))
        };
        if let Some(l) = lists.iter().find(|l| same(l)) {
            return l.clone();
        }
        let list: Arc<[Arc<Family>]> = families.into();
        if lists.len() < MAX_LISTS {
            lists.push(list.clone());
        }
        list
    }
}

/// Bytes per index: the narrowest that holds `max`.
fn width_for(max: usize) -> usize {
    match max {
        0..=0xff => 1,
        0x100..=0xffff => 2,
        _ => 4,
    }
}

fn put(out: &mut Vec<u8>, width: usize, v: u32) {
    out.extend_from_slice(&v.to_le_bytes()[..width]);
}

fn get(bytes: &[u8], width: usize, i: usize) -> u32 {
    let mut b = [0u8; 4];
    b[..width].copy_from_slice(&bytes[i * width..(i + 1) * width]);
    u32::from_le_bytes(b)
}

/// The sections of a set's buffer.
struct View<'a> {
    /// Where each family's rows end, as sample counts.
    ends: &'a [u8],
    values: &'a [u8],
    text_ends: &'a [u8],
    text_width: usize,
    cells: &'a [u8],
    cell_width: usize,
    text: &'a str,
}

impl SeriesSet {
    /// Stores `samples` of `tenant`, keeping their order within each family;
    /// `lists` shares family lists between sets.
    pub fn new(tenant: &str, samples: &[Sample], lists: &FamilyLists) -> Self {
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
        index.insert(tenant, TENANT);
        let (mut text, mut text_ends) = (String::new(), Vec::new());
        let mut cells: Vec<u32> = Vec::new();
        let mut ends = vec![0u32; families.len()];
        for (n, &i) in order.iter().enumerate() {
            let s = &samples[i];
            for k in 0..s.family.labels.len() {
                let v = s.labels.get(k).map(String::as_str).unwrap_or("");
                let id = *index.entry(v).or_insert_with(|| {
                    text.push_str(v);
                    text_ends.push(text.len());
                    text_ends.len() as u32
                });
                cells.push(id);
            }
            ends[of_sample[i]] = n as u32 + 1;
        }
        let (text_width, cell_width) = (width_for(text.len()), width_for(text_ends.len()));
        let size = HEADER
            + 4 * ends.len()
            + 8 * samples.len()
            + text_width * text_ends.len()
            + cell_width * cells.len()
            + text.len();
        let mut data = Vec::with_capacity(size);
        for v in [samples.len(), text_ends.len(), cells.len(), text.len()] {
            put(&mut data, 4, v as u32);
        }
        for e in ends {
            put(&mut data, 4, e);
        }
        for &i in &order {
            data.extend_from_slice(&samples[i].value.to_le_bytes());
        }
        for e in text_ends {
            put(&mut data, text_width, e as u32);
        }
        for c in cells {
            put(&mut data, cell_width, c);
        }
        data.extend_from_slice(text.as_bytes());
        debug_assert_eq!(data.len(), size);
        Self {
            families: lists.intern(families),
            data: data.into(),
        }
    }

    fn header(&self, i: usize) -> usize {
        get(&self.data[..HEADER], 4, i) as usize
    }

    fn view(&self) -> View<'_> {
        let (n, distinct, cells, text_len) = (
            self.header(0),
            self.header(1),
            self.header(2),
            self.header(3),
        );
        let (text_width, cell_width) = (width_for(text_len), width_for(distinct));
        let rest = &self.data[HEADER..];
        let (ends, rest) = rest.split_at(4 * self.families.len());
        let (values, rest) = rest.split_at(8 * n);
        let (text_ends, rest) = rest.split_at(text_width * distinct);
        let (cells, text) = rest.split_at(cell_width * cells);
        View {
            ends,
            values,
            text_ends,
            text_width,
            cells,
            cell_width,
            // Built from `&str`s end to end, so always valid.
            text: std::str::from_utf8(text).unwrap_or_default(),
        }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.header(0)
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held by this set alone (the family list is shared).
    #[cfg(test)]
    pub fn heap_bytes(&self) -> usize {
        self.data.len()
    }

    /// The families present, in first-seen order.
    pub fn families(&self) -> impl Iterator<Item = &Arc<Family>> {
        self.families.iter()
    }

    /// Calls `f` with each sample of the family named `name`: label values in
    /// the family's order (`tenant` where it was the set's tenant), and the value.
    pub fn for_each_in(&self, tenant: &str, name: &str, mut f: impl FnMut(&[&str], f64)) {
        let Some(fi) = self.families.iter().position(|fam| fam.name == name) else {
            return;
        };
        let v = self.view();
        let end_of = |i: usize| get(v.ends, 4, i) as usize;
        // Rows are grouped by family in list order; earlier families' cells come first.
        let (mut start, mut at) = (0, 0);
        for (i, fam) in self.families.iter().enumerate().take(fi) {
            at += (end_of(i) - start) * fam.labels.len();
            start = end_of(i);
        }
        let width = self.families[fi].labels.len();
        let value_text = |id: u32| -> &str {
            if id == TENANT {
                return tenant;
            }
            let i = id as usize - 1;
            let from = if i == 0 {
                0
            } else {
                get(v.text_ends, v.text_width, i - 1) as usize
            };
            v.text
                .get(from..get(v.text_ends, v.text_width, i) as usize)
                .unwrap_or_default()
        };
        let mut row: Vec<&str> = Vec::with_capacity(width);
        for s in start..end_of(fi) {
            row.clear();
            row.extend((at..at + width).map(|c| value_text(get(v.cells, v.cell_width, c))));
            at += width;
            let mut b = [0u8; 8];
            b.copy_from_slice(&v.values[8 * s..8 * s + 8]);
            f(&row, f64::from_le_bytes(b));
        }
    }

    /// Every sample back as [`Sample`]s, families in first-seen order.
    #[cfg(test)]
    pub fn samples(&self, tenant: &str) -> Vec<Sample> {
        let mut out = Vec::with_capacity(self.len());
        for fam in self.families() {
            self.for_each_in(tenant, &fam.name, |labels, value| {
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

/// Encodes the families in `sets` (one collector's tenants of `partner`,
/// each with its tenant id) as exposition pieces, one family at a time so a
/// single compressor is alive: the pieces are served until the collector's
/// next run, so they get a slower, tighter compression than the per-publish
/// ones. Every sample ends with the `partner` label.
pub fn encode(partner: &str, sets: &[(&str, &SeriesSet)]) -> Vec<Chunk> {
    let mut families: std::collections::BTreeMap<&str, &Arc<Family>> = Default::default();
    for (_, set) in sets {
        for f in set.families() {
            families.entry(f.name.as_str()).or_insert(f);
        }
    }
    let mut out = Vec::with_capacity(families.len() * 2);
    for (name, fam) in families {
        let labels: Vec<&str> = fam.labels.iter().map(String::as_str).collect();
        let mut text = GaugeText::shared(name, &fam.help, &labels)
            .level(flate2::Compression::default())
            .with_label("partner", partner);
        for (tenant, set) in sets {
            set.for_each_in(tenant, name, |l, v| text.add(l, v));
        }
        out.extend(text.split());
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
        let set = SeriesSet::new("t", &input, &FamilyLists::default());
        assert_eq!(set.len(), 6);
        let names: Vec<&str> = set.families().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        let back = set.samples("t");
        let order = [0, 2, 4, 1, 5, 3];
        for (got, &i) in back.iter().zip(&order) {
            assert_eq!(got.family.name, input[i].family.name);
            assert_eq!(got.labels, input[i].labels);
            assert_eq!(got.value.to_bits(), input[i].value.to_bits());
        }
        let mut seen = Vec::new();
        set.for_each_in("t", "b", |l, v| seen.push((l.join("|"), v)));
        assert_eq!(seen, [("t".to_string(), 2.0), ("t\"x".to_string(), -0.5)]);
        set.for_each_in("t", "missing", |_, _| panic!("no such family"));
    }

    #[test]
    fn repeated_label_values_are_stored_once() {
        let f = Family::new("f", "", &["tenant_id", "service"]);
        let tenant = "0142711d-3cc0-4ce1-aa2f-e84b8e8c5282";
        let input: Vec<Sample> = (0..100)
            .map(|i| sample(&f, &[tenant, ["Exchange", "Teams"][i % 2]], i as f64))
            .collect();
        let set = SeriesSet::new(tenant, &input, &FamilyLists::default());
        // The tenant id is not stored; two short values, one byte per index.
        let text = "Exchange".len() + "Teams".len();
        assert_eq!(set.heap_bytes(), HEADER + 4 + 100 * 8 + 2 + 100 * 2 + text);
        assert_eq!(set.samples(tenant), input);
        assert!(SeriesSet::default().is_empty());
        assert!(SeriesSet::new(tenant, &[], &FamilyLists::default()).is_empty());
    }

    #[test]
    fn many_distinct_values_widen_the_indices() {
        let f = Family::new("f", "", &["tenant_id", "id", "other"]);
        for n in [255usize, 256, 70_000] {
            let input: Vec<Sample> = (0..n)
                .map(|i| sample(&f, &["t", &format!("v{i}"), "same"], i as f64))
                .collect();
            let set = SeriesSet::new("t", &input, &FamilyLists::default());
            assert_eq!(set.samples("t"), input, "{n} values");
        }
    }

    #[test]
    fn sets_with_the_same_families_share_one_list() {
        let (a, b) = (
            Family::new("a", "", &["tenant_id"]),
            Family::new("b", "", &[]),
        );
        let lists = FamilyLists::default();
        let one = SeriesSet::new(
            "t1",
            &[sample(&a, &["t1"], 1.0), sample(&b, &[], 2.0)],
            &lists,
        );
        let two = SeriesSet::new(
            "t2",
            &[sample(&a, &["t2"], 3.0), sample(&b, &[], 4.0)],
            &lists,
        );
        let other = SeriesSet::new("t3", &[sample(&b, &[], 5.0)], &lists);
        assert!(Arc::ptr_eq(&one.families, &two.families));
        assert!(!Arc::ptr_eq(&one.families, &other.families));
        assert_eq!(one.samples("t1")[0].labels, ["t1"]);
        assert_eq!(two.samples("t2")[0].labels, ["t2"]);
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
            let set = SeriesSet::new("a", &input, &FamilyLists::default());
            prop_assert_eq!(set.len(), input.len());
            for fam in &fams {
                let want: Vec<(Vec<String>, u64)> = input
                    .iter()
                    .filter(|s| s.family.name == fam.name)
                    .map(|s| (s.labels.clone(), s.value.to_bits()))
                    .collect();
                let mut got = Vec::new();
                set.for_each_in("a", &fam.name, |l, v| {
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
        let lists = FamilyLists::default();
        let set = |t: &str| {
            SeriesSet::new(
                t,
                &[
                    sample(&f, &[t, "1"], 1.0),
                    sample(&g, &[t], 2.0),
                    sample(&f, &[t, "2"], 3.0),
                ],
                &lists,
            )
        };
        let (t1, t2, empty) = (set("t1"), set("t2"), SeriesSet::default());
        let chunks: Vec<Arc<Chunk>> =
            encode("default", &[("t1", &t1), ("t2", &t2), ("t3", &empty)])
                .into_iter()
                .map(Arc::new)
                .collect();
        let mut text = String::new();
        flate2::read::GzDecoder::new(&crate::exposition::Body(chunks).gzip()[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(
            text,
            "# HELP m_a A.\n# TYPE m_a gauge\nm_a{tenant_id=\"t1\",partner=\"default\"} 2\nm_a{tenant_id=\"t2\",partner=\"default\"} 2\n\
             # HELP m_b B.\n# TYPE m_b gauge\nm_b{tenant_id=\"t1\",x=\"1\",partner=\"default\"} 1\nm_b{tenant_id=\"t1\",x=\"2\",partner=\"default\"} 3\n\
             m_b{tenant_id=\"t2\",x=\"1\",partner=\"default\"} 1\nm_b{tenant_id=\"t2\",x=\"2\",partner=\"default\"} 3\n"
        );
    }
}

//! Exposition text, the one way it is written here: [`GaugeText`] for gauge
//! families, [`registry_families`] for the live registry's counters and
//! histograms, each ending up as [`Chunk`]s joined into a [`Body`].
//!
//! The `/metrics` body is kept as pre-encoded pieces: each metric family's exposition
//! text kept next to its deflate stream, so a scrape only concatenates what
//! changed since the last one instead of re-encoding every tenant.
//!
//! At thousands of tenants the text runs to tens of megabytes; Prometheus asks
//! for gzip, so each piece is compressed once, ended with a sync flush (byte
//! aligned, not final), and a response is one gzip member: header, the pieces'
//! deflate data in order, an empty final block, and the CRC-32 combined from
//! the pieces' own (RFC 1951 §3.2.3 and RFC 1952).

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use flate2::write::DeflateEncoder;
use flate2::{Compression, Crc};

/// Text is handed to the compressor in pieces this large, so a family of
/// 5,000 tenants never sits in memory as plain text.
const FEED: usize = 64 * 1024;

/// One family's text (or a run of its samples), compressed.
pub struct Chunk {
    /// Family name; pieces are served in name order.
    pub name: String,
    /// True for a piece holding only the family's HELP/TYPE lines, which go
    /// first and only once when several sources contribute samples.
    pub header: bool,
    deflated: Bytes,
    crc: Crc,
    /// Moves a CRC past this piece's text, for joining CRCs per scrape.
    shift: u32,
}

/// Compresses text as it is written; [`Packer::finish`] ends with a sync
/// flush (byte aligned, no final block) so pieces can follow one another.
struct Packer {
    enc: DeflateEncoder<Vec<u8>>,
    crc: Crc,
}

impl Packer {
    fn new(level: Compression) -> Self {
        Self {
            enc: DeflateEncoder::new(Vec::new(), level),
            crc: Crc::new(),
        }
    }

    fn feed(&mut self, text: &str) {
        self.crc.update(text.as_bytes());
        // Writing to a Vec cannot fail.
        let _ = self.enc.write_all(text.as_bytes());
    }

    fn finish(mut self, name: String) -> Chunk {
        let _ = self.enc.flush();
        let mut deflated = std::mem::take(self.enc.get_mut());
        // Served until the next run: no growth slack kept with it.
        deflated.shrink_to_fit();
        Chunk::from_parts(name, Bytes::from(deflated), self.crc)
    }
}

/// Pieces rebuilt often (every scrape or publish) use the fast level: the
/// text is repetitive enough that level 1 already shrinks it ~10x.
const FAST: Compression = Compression::new(1);

/// Text up to this size is stored rather than compressed: setting up a
/// compressor (a few hundred KiB zeroed) cost more than the bytes saved, and
/// the live counters are encoded at every scrape.
const STORE_BELOW: usize = 16 * 1024;

impl Chunk {
    /// Compresses `text` once; it is served from here on.
    pub fn new(name: String, text: &str) -> Self {
        if text.len() < STORE_BELOW {
            return Self::stored(name, text);
        }
        let mut p = Packer::new(FAST);
        p.feed(text);
        p.finish(name)
    }

    /// `text` as stored (uncompressed) deflate blocks (RFC 1951 §3.2.4): a
    /// byte-aligned header, the length and its complement, the bytes.
    fn stored(name: String, text: &str) -> Self {
        let mut crc = Crc::new();
        crc.update(text.as_bytes());
        let mut out = Vec::with_capacity(text.len() + 5 * (text.len() / 0xffff + 1));
        for block in text.as_bytes().chunks(0xffff) {
            // Not final, type 00; `chunks` bounds the length to 16 bits.
            let len = block.len() as u16;
            out.push(0);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&(!len).to_le_bytes());
            out.extend_from_slice(block);
        }
        Self::from_parts(name, Bytes::from(out), crc)
    }

    fn from_parts(name: String, deflated: Bytes, crc: Crc) -> Self {
        Chunk {
            name,
            header: false,
            deflated,
            shift: crc_combine::operator(u64::from(crc.amount())),
            crc,
        }
    }
}

/// A whole `/metrics` body: pieces in name order.
#[derive(Default)]
pub struct Body(pub Vec<Arc<Chunk>>);

/// The families of a `prometheus` registry (the live counters and
/// histograms), each encoded by the crate's own text encoder into a piece.
pub fn registry_families(registry: &prometheus::Registry) -> Vec<Arc<Chunk>> {
    let encoder = prometheus::TextEncoder::new();
    let mut chunks = Vec::new();
    for family in registry.gather() {
        let mut text = String::new();
        match encoder.encode_utf8(std::slice::from_ref(&family), &mut text) {
            Ok(()) => chunks.push(Arc::new(Chunk::new(family.name().to_string(), &text))),
            Err(e) => {
                tracing::error!(error = %e, family = family.name(), "cannot encode metrics")
            }
        }
    }
    chunks
}

/// gzip header: magic, deflate, no flags, no mtime, no extra flags, OS unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
/// A final, empty block with fixed Huffman codes, after a sync flush.
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

/// Pieces smaller than this are copied together into one part per scrape;
/// larger ones are sent from the cache as they are.
const COALESCE_BELOW: usize = 16 * 1024;

impl Body {
    /// The body as one gzip member, in parts that share the cached data.
    /// Only small pieces (headers, live counters) are copied, into one part
    /// per run of them: a hundred tiny writes per scrape cost more than the copy.
    pub fn gzip_parts(&self) -> Vec<Bytes> {
        let mut out = Vec::with_capacity(self.0.len() + 2);
        let mut small: Vec<u8> = GZIP_HEADER.to_vec();
        let (mut crc, mut len) = (0u32, 0u32);
        for c in &self.0 {
            crc = crc_combine::combine(crc, c.crc.sum(), c.shift);
            // ISIZE is the length modulo 2^32 (RFC 1952).
            len = len.wrapping_add(c.crc.amount());
            if c.deflated.len() < COALESCE_BELOW {
                small.extend_from_slice(&c.deflated);
                continue;
            }
            if !small.is_empty() {
                out.push(Bytes::from(std::mem::take(&mut small)));
            }
            out.push(c.deflated.clone());
        }
        small.extend_from_slice(&FINAL_BLOCK);
        small.extend_from_slice(&crc.to_le_bytes());
        small.extend_from_slice(&len.to_le_bytes());
        out.push(Bytes::from(small));
        out
    }

    /// The gzip body in one buffer.
    pub fn gzip(&self) -> Vec<u8> {
        self.gzip_parts().concat()
    }

    /// Length of the plain text, in bytes.
    pub fn plain_len(&self) -> u64 {
        self.0.iter().map(|c| u64::from(c.crc.amount())).sum()
    }

    /// The plain text in one buffer (tests, the textfile writer): a scrape
    /// streams it with [`Body::plain_windows`] instead.
    pub fn plain(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(usize::try_from(self.plain_len()).unwrap_or(0));
        for window in self.plain_windows() {
            out.extend_from_slice(&window);
        }
        out
    }

    /// The plain text, inflated from the cached pieces a window at a time as
    /// it is sent: a scraper that does not take gzip costs one window and an
    /// inflater, not a copy of the whole text (100 MB at 10,000 tenants).
    pub fn plain_windows(self) -> PlainWindows {
        PlainWindows {
            chunks: self.0.into(),
            at: 0,
            inflater: flate2::Decompress::new(false),
        }
    }
}

/// The plain text of a [`Body`], 64 KiB at a time.
pub struct PlainWindows {
    chunks: std::collections::VecDeque<Arc<Chunk>>,
    /// How much of the first chunk's deflate data has been inflated.
    at: usize,
    /// One raw-deflate stream across the pieces: each ends with a sync
    /// flush, so their data joined is one stream.
    inflater: flate2::Decompress,
}

impl Iterator for PlainWindows {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        let mut out = Vec::with_capacity(FEED);
        while out.len() < out.capacity() {
            let Some(chunk) = self.chunks.front() else {
                break;
            };
            let input = &chunk.deflated[self.at..];
            if input.is_empty() {
                self.chunks.pop_front();
                self.at = 0;
                continue;
            }
            let (before_in, before_out) = (self.inflater.total_in(), out.len());
            let status =
                self.inflater
                    .decompress_vec(input, &mut out, flate2::FlushDecompress::Sync);
            let consumed = (self.inflater.total_in() - before_in) as usize;
            self.at += consumed;
            // Our own well-formed data: an error or a stall is a bug, and
            // ends the text where it happened rather than looping.
            if let Err(e) = status {
                tracing::error!(error = %e, "cannot inflate the metrics body");
                self.chunks.clear();
            } else if consumed == 0 && out.len() == before_out {
                tracing::error!("the metrics body stopped inflating");
                self.chunks.clear();
            }
        }
        (!out.is_empty()).then(|| Bytes::from(out))
    }
}

/// CRC-32 (IEEE, reflected) combination with the operator precomputed per
/// piece, after zlib's `crc32_combine_gen`/`crc32_combine_op`: crc32fast's
/// `combine` squares 32x32 bit matrices for every bit of the length, about
/// 10 µs a piece, and a scrape joins a hundred pieces.
mod crc_combine {
    const POLY: u32 = 0xedb8_8320;

    /// a(x) * b(x) modulo the CRC polynomial (bit-reflected; `a` not zero).
    fn multmodp(a: u32, mut b: u32) -> u32 {
        let (mut m, mut p) = (1u32 << 31, 0u32);
        loop {
            if a & m != 0 {
                p ^= b;
                if a & (m - 1) == 0 {
                    return p;
                }
            }
            m >>= 1;
            b = if b & 1 != 0 { (b >> 1) ^ POLY } else { b >> 1 };
        }
    }

    /// The operator that moves a CRC past `len` bytes: x^(8 len) mod p(x).
    pub fn operator(len: u64) -> u32 {
        // x^(2^k) for k = 3.. (bytes to bits), squared as the length's bits are read.
        let mut power = 1u32 << 30; // x^1
        for _ in 0..3 {
            power = multmodp(power, power);
        }
        let (mut n, mut p) = (len, 1u32 << 31); // x^0
        while n != 0 {
            if n & 1 != 0 {
                p = multmodp(power, p);
            }
            n >>= 1;
            power = multmodp(power, power);
        }
        p
    }

    /// The CRC of A followed by B, from A's CRC, B's CRC and B's operator.
    pub fn combine(crc_a: u32, crc_b: u32, op_b: u32) -> u32 {
        multmodp(op_b, crc_a) ^ crc_b
    }
}

/// Escapes as the Prometheus text format (and the `prometheus` crate) does:
/// `\` and newline always, `"` in label values.
fn escape(out: &mut String, v: &str, quote: bool) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            _ => out.push(c),
        }
    }
}

/// Writes one gauge family's text directly, with no intermediate protobuf
/// structures: at 5,000 tenants those were most of a scrape's allocations.
pub struct GaugeText {
    name: String,
    labels: Vec<String>,
    text: String,
    samples: usize,
    level: Compression,
    /// Made at the first flush: a compressor holds a few hundred KiB, so a
    /// family that fits in one feed never has one waiting while it is filled.
    packer: Option<Packer>,
    /// `name="value"` written after every sample's own labels.
    constant: Option<(String, String)>,
    /// HELP kept for a header piece of its own ([`GaugeText::shared`]).
    help: Option<String>,
}

impl GaugeText {
    /// A family with HELP and TYPE lines; `header` false leaves them out (a
    /// continuation piece of a family already started).
    pub fn new(name: &str, help: &str, labels: &[&str], header: bool) -> Self {
        let mut text = String::new();
        if header {
            if !help.is_empty() {
                text.push_str("# HELP ");
                text.push_str(name);
                text.push(' ');
                escape(&mut text, help, false);
                text.push('\n');
            }
            let _ = writeln!(text, "# TYPE {name} gauge");
        }
        Self {
            name: name.to_string(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            text,
            samples: 0,
            level: FAST,
            packer: None,
            constant: None,
            help: None,
        }
    }

    /// A family other sources add samples to (each partner its own): its
    /// HELP/TYPE lines become a piece of their own ([`GaugeText::split`]),
    /// written once however many sources there are.
    pub fn shared(name: &str, help: &str, labels: &[&str]) -> Self {
        let mut g = Self::new(name, help, labels, false);
        g.help = Some(help.to_string());
        g
    }

    /// Writes `name="value"` after every sample's own labels: the label
    /// that tells this source's samples from another's (`partner`).
    pub fn with_label(mut self, name: &str, value: &str) -> Self {
        self.constant = Some((name.to_string(), value.to_string()));
        self
    }

    /// Compresses at `level` instead of the fast default.
    pub fn level(mut self, level: Compression) -> Self {
        self.level = level;
        self
    }

    fn flush(&mut self) {
        let level = self.level;
        self.packer
            .get_or_insert_with(|| Packer::new(level))
            .feed(&self.text);
        self.text.clear();
    }

    /// Adds one sample; `values` follow the label names' order.
    pub fn add(&mut self, values: &[&str], value: f64) {
        self.samples += 1;
        self.text.push_str(&self.name);
        let mut sep = '{';
        let constant = self.constant.iter().map(|(n, v)| (n, v.as_str()));
        for (n, v) in self
            .labels
            .iter()
            .zip(values.iter().copied())
            .chain(constant)
        {
            self.text.push(sep);
            self.text.push_str(n);
            self.text.push_str("=\"");
            escape(&mut self.text, v, true);
            self.text.push('"');
            sep = ',';
        }
        if sep == ',' {
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
        if self.text.len() >= FEED {
            self.flush();
        }
    }

    /// Just the HELP/TYPE lines, as a piece of their own (for a family whose
    /// samples come in several pieces).
    pub fn header(name: &str, help: &str) -> Chunk {
        let g = Self::new(name, help, &[], true);
        let mut c = Chunk::new(g.name, &g.text);
        c.header = true;
        c
    }

    /// A [`GaugeText::shared`] family finished: its header piece and its
    /// samples, for `sort_pieces` to merge with other sources' pieces;
    /// nothing when it has no samples.
    pub fn split(mut self) -> Vec<Chunk> {
        let (name, help) = (self.name.clone(), self.help.take().unwrap_or_default());
        match self.done() {
            Some(samples) => vec![Self::header(&name, &help), samples],
            None => Vec::new(),
        }
    }

    /// The finished piece; an empty family is left out rather than printed
    /// with HELP/TYPE and no samples.
    pub fn done(mut self) -> Option<Chunk> {
        if self.samples == 0 {
            return None;
        }
        self.flush();
        self.packer.take().map(|p| p.finish(self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn joined_crcs_match_the_crc_of_the_whole_text() {
        let pieces: Vec<Vec<u8>> = (0..40)
            .map(|i| (0..(i * 997 % 5000)).map(|k| (k * 31 + i) as u8).collect())
            .collect();
        let mut whole = Crc::new();
        let mut joined = 0u32;
        for p in &pieces {
            whole.update(p);
            let mut c = Crc::new();
            c.update(p);
            joined = crc_combine::combine(joined, c.sum(), crc_combine::operator(p.len() as u64));
        }
        assert_eq!(joined, whole.sum());
        assert_eq!(
            crc_combine::operator(0),
            1 << 31,
            "x^0: an empty piece changes nothing"
        );
    }

    #[test]
    fn gzip_body_decompresses_to_the_plain_body() {
        let mut e = Body::default();
        for i in 0..50 {
            let mut g =
                GaugeText::new(&format!("m_{i:02}"), "help \\ text\n", &["tenant_id"], true);
            for t in 0..3000 {
                g.add(&[&format!("tenant-{t}")], (t * i) as f64 / 7.0);
            }
            e.0.push(Arc::new(g.done().unwrap()));
        }
        e.0.push(Arc::new(Chunk::new("z".into(), "")));
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&e.gzip()[..])
            .read_to_end(&mut out)
            .unwrap();
        let windows: Vec<Bytes> = Body(e.0.clone()).plain_windows().collect();
        assert!(windows.len() > 10 && windows.iter().all(|w| w.len() <= FEED));
        assert_eq!(out, windows.concat());
        assert_eq!(out.len() as u64, e.plain_len());
        assert!(e.gzip().len() * 5 < out.len());
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("# HELP m_00 help \\\\ text\\n\n# TYPE m_00 gauge\nm_00{tenant_id=\"tenant-0\"} 0\n"), "{}", &text[..200]);
        assert_eq!(
            text.lines().filter(|l| l.starts_with("m_49{")).count(),
            3000
        );
        // Small pieces are stored, large ones compressed; both join into one stream.
        let small = Chunk::new("a".into(), "x 1\n");
        let big = "y".repeat(200_000);
        let mixed = Body(vec![
            Arc::new(small),
            Arc::new(Chunk::new("b".into(), &big)),
            Arc::new(Chunk::stored("c".into(), &big)),
        ]);
        let mut out = String::new();
        flate2::read::GzDecoder::new(&mixed.gzip()[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, format!("x 1\n{big}{big}"));
        assert_eq!(
            Body(mixed.0.clone()).plain(),
            format!("x 1\n{big}{big}").into_bytes()
        );
        assert!(mixed.0[1].deflated.len() < 10_000 && mixed.0[2].deflated.len() > 200_000);
        let empty = Body::default();
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&empty.gzip()[..])
            .read_to_end(&mut out)
            .unwrap();
        assert!(out.is_empty());
        assert_eq!(empty.plain_windows().count(), 0);
    }
}

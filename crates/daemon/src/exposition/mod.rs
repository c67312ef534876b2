//! Everything between collected data and the `/metrics` text: the compact
//! per-tenant sample store collectors' results are kept in ([`series`]), the
//! families the daemon exports about itself ([`families`]), the one text
//! writer with its pre-compressed pieces ([`text`]), counters in a file for
//! node_exporter's textfile collector ([`textfile`]), the latest published
//! snapshot and the body built from it ([`publisher`]), and the low-priority
//! thread encoding runs on ([`encoder`]).
//!
//! A scrape never encodes tenants: collectors' families are encoded when a
//! collector's results change, the daemon's own when a snapshot is published.

pub mod encoder;
pub mod families;
pub mod publisher;
pub mod series;
pub mod text;
pub mod textfile;

pub use publisher::Publisher;
pub use text::{Body, Chunk, GaugeText};

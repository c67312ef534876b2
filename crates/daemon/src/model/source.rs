//! The sources tenants are discovered from.

/// A discovery source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// Partner Center `/v1/customers`.
    PartnerCenter,
    /// GDAP `delegatedAdminRelationships` (active ones).
    Gdap,
    /// The `[tenants] static` list.
    Static,
}

impl Source {
    /// Label value and config name.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::PartnerCenter => "partner_center",
            Source::Gdap => "gdap",
            Source::Static => "static",
        }
    }

    /// Parses a config name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "partner_center" => Some(Source::PartnerCenter),
            "gdap" => Some(Source::Gdap),
            "static" => Some(Source::Static),
            _ => None,
        }
    }
}

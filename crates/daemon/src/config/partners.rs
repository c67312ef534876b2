//! Several partners in one config: each `[[partners]]` entry as settings of
//! its own ([`Settings::views`]), and the one a command was asked for
//! ([`Settings::select`]).

use super::{PartnerProfile, Settings};

/// `--partner` named no partner of the config, or several partners and no `--partner`.
#[derive(Debug, thiserror::Error)]
pub enum PartnerChoiceError {
    /// The name is not a partner of the config.
    #[error("no partner named {name:?} in the config; its partners are {}", .names.join(", "))]
    Unknown {
        /// The name asked for.
        name: String,
        /// The config's partner names.
        names: Vec<String>,
    },
    /// The command acts on one partner and the config has several.
    #[error("the config has {} partners ({}); pass --partner NAME", .names.len(), .names.join(", "))]
    Ambiguous {
        /// The config's partner names.
        names: Vec<String>,
    },
}

impl Settings {
    /// Every partner's name, in config order.
    pub fn partner_names(&self) -> Vec<String> {
        std::iter::once(self.partner_name.clone())
            .chain(self.other_partners.iter().map(|p| p.name.clone()))
            .collect()
    }

    /// Settings for each partner, in config order; each has no other partners.
    pub fn views(&self) -> Vec<Settings> {
        let mut first = self.clone();
        first.other_partners.clear();
        let mut out = vec![first.clone()];
        for p in &self.other_partners {
            out.push(first.with_partner(p));
        }
        out
    }

    /// These settings with `p` as the partner.
    fn with_partner(&self, p: &PartnerProfile) -> Settings {
        Settings {
            partner_name: p.name.clone(),
            partner: p.app.clone(),
            store: p.store.clone(),
            rotation: p.rotation.clone(),
            tenants: p.tenants.clone(),
            other_partners: Vec::new(),
            ..self.clone()
        }
    }

    /// The partner named `name`; with no name, the only partner there is.
    pub fn select(&self, name: Option<&str>) -> Result<Settings, PartnerChoiceError> {
        let names = self.partner_names();
        match name {
            None if self.other_partners.is_empty() => Ok(self.clone()),
            None => Err(PartnerChoiceError::Ambiguous { names }),
            Some(n) => self
                .views()
                .into_iter()
                .find(|v| v.partner_name == n)
                .ok_or_else(|| PartnerChoiceError::Unknown {
                    name: n.to_string(),
                    names,
                }),
        }
    }

    /// The partners `name` picks: that one, or every partner without a name.
    pub fn select_or_all(&self, name: Option<&str>) -> Result<Vec<Settings>, PartnerChoiceError> {
        match name {
            None => Ok(self.views()),
            Some(_) => self.select(name).map(|s| vec![s]),
        }
    }
}

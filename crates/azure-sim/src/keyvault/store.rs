//! The vault's contents: every version of every secret, with the
//! attributes a caller may set. Names are case-insensitive, versions are
//! 32 hex digits and never change once written, as in Key Vault.

use std::collections::BTreeMap;

use serde::Deserialize;

/// One version of a secret.
#[derive(Debug, Clone)]
pub(super) struct SecretVersion {
    pub(super) version: String,
    pub(super) value: String,
    pub(super) content_type: Option<String>,
    pub(super) tags: Option<BTreeMap<String, String>>,
    pub(super) enabled: bool,
    pub(super) nbf: Option<i64>,
    pub(super) exp: Option<i64>,
    pub(super) created: i64,
    pub(super) updated: i64,
}

/// A secret: its name as first written and its versions, oldest first.
#[derive(Debug, Clone)]
pub(super) struct SecretEntry {
    pub(super) name: String,
    pub(super) versions: Vec<SecretVersion>,
}

/// The vault's contents. Names are case-insensitive, as in Key Vault.
#[derive(Debug, Default)]
pub(super) struct Vault {
    pub(super) secrets: BTreeMap<String, SecretEntry>,
}

/// Attributes a caller may set.
#[derive(Debug, Default, Clone, Deserialize)]
pub(super) struct AttributesIn {
    pub(super) enabled: Option<bool>,
    pub(super) nbf: Option<i64>,
    pub(super) exp: Option<i64>,
}

/// The body of a set (`PUT`).
#[derive(Debug, Deserialize)]
pub(super) struct SetParams {
    pub(super) value: Option<String>,
    #[serde(rename = "contentType")]
    pub(super) content_type: Option<String>,
    pub(super) tags: Option<BTreeMap<String, String>>,
    pub(super) attributes: Option<AttributesIn>,
}

/// The body of an update (`PATCH`).
#[derive(Debug, Deserialize)]
pub(super) struct UpdateParams {
    #[serde(rename = "contentType")]
    pub(super) content_type: Option<String>,
    pub(super) tags: Option<BTreeMap<String, String>>,
    pub(super) attributes: Option<AttributesIn>,
}

impl Vault {
    /// Adds a new version of a secret; returns its version id.
    pub fn set(&mut self, name: &str, value: &str, content_type: Option<&str>, now: i64) -> String {
        self.set_full(
            name,
            SetParams {
                value: Some(value.into()),
                content_type: content_type.map(str::to_string),
                tags: None,
                attributes: None,
            },
            now,
        )
        .version
        .clone()
    }

    /// Adds a version with everything a `PUT` may carry.
    pub(super) fn set_full(&mut self, name: &str, p: SetParams, now: i64) -> &SecretVersion {
        let attrs = p.attributes.unwrap_or_default();
        let entry = self
            .secrets
            .entry(name.to_ascii_lowercase())
            .or_insert_with(|| SecretEntry {
                name: name.into(),
                versions: Vec::new(),
            });
        entry.versions.push(SecretVersion {
            version: uuid::Uuid::new_v4().simple().to_string(),
            value: p.value.unwrap_or_default(),
            content_type: p.content_type,
            tags: p.tags,
            enabled: attrs.enabled.unwrap_or(true),
            nbf: attrs.nbf,
            exp: attrs.exp,
            created: now,
            updated: now,
        });
        let last = entry.versions.len() - 1;
        &entry.versions[last]
    }

    /// The value of the newest version of a secret.
    pub fn latest_value(&self, name: &str) -> Option<String> {
        self.entry(name)
            .and_then(|e| e.versions.last())
            .map(|v| v.value.clone())
    }

    /// The newest version of a secret: (name as created, version id, value, updated).
    pub fn latest_version(&self, name: &str) -> Option<(String, String, String, i64)> {
        let e = self.entry(name)?;
        let v = e.versions.last()?;
        Some((
            e.name.clone(),
            v.version.clone(),
            v.value.clone(),
            v.updated,
        ))
    }

    /// A secret by name, any case.
    pub(super) fn entry(&self, name: &str) -> Option<&SecretEntry> {
        self.secrets.get(&name.to_ascii_lowercase())
    }

    /// A secret by name, any case, to update.
    pub(super) fn entry_mut(&mut self, name: &str) -> Option<&mut SecretEntry> {
        self.secrets.get_mut(&name.to_ascii_lowercase())
    }
}

impl SecretEntry {
    /// A version by id (any case), or the newest; with its index.
    pub(super) fn find(&self, version: Option<&str>) -> Option<(usize, &SecretVersion)> {
        match version {
            None => self
                .versions
                .len()
                .checked_sub(1)
                .map(|i| (i, &self.versions[i])),
            Some(v) => self
                .versions
                .iter()
                .enumerate()
                .find(|(_, x)| x.version.eq_ignore_ascii_case(v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_32_hex_and_names_case_insensitive() {
        let mut v = Vault::default();
        let a = v.set("My-Secret", "1", None, 10);
        let b = v.set("my-secret", "2", None, 11);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(v.latest_value("MY-SECRET").as_deref(), Some("2"));
        let e = v.entry("my-secret").unwrap();
        assert_eq!(e.name, "My-Secret");
        assert_eq!(e.find(Some(&a)).unwrap().1.value, "1");
        assert!(e.find(Some("0000")).is_none());
    }
}

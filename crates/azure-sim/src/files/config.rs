//! The tenantwatch config the simulator writes for itself (`--write-config`),
//! and the atomic file writes used for it, the CA and the secret files.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::errors::SimError;

/// Everything the config points at.
pub(crate) struct ConfigInputs<'a> {
    pub login: &'a str,
    pub graph: &'a str,
    pub arm: &'a str,
    pub partner_center: &'a str,
    pub keyvault: &'a str,
    pub ca_file: &'a Path,
    /// Every partner, partner 0 first: one is written as `[partner]` and
    /// `[store]`, several as `[[partners]]` entries.
    pub partners: Vec<PartnerInputs>,
    pub identity_tenant_id: &'a str,
    pub identity_client_id: &'a str,
    pub identity_secret_file: &'a Path,
    pub listen: Option<&'a str>,
    /// Admin API origin, named in a comment (not a tenantwatch key).
    pub admin: &'a str,
    /// Managed identity origin, named in a comment.
    pub managed_identity: &'a str,
    /// Certificate files, named in comments for `kind = "certificate"`.
    pub identity_certificate: &'a Path,
    pub partner_certificate: &'a Path,
    /// Federated token file, named in a comment for `kind = "workload_identity"`.
    pub federated_token_file: &'a Path,
}

/// One partner's app and vault secret.
pub(crate) struct PartnerInputs {
    /// The `[[partners]]` name.
    pub name: String,
    pub tenant_id: String,
    pub client_id: String,
    pub secret_file: PathBuf,
    pub secret_name: String,
}

#[derive(Serialize)]
struct ConfigFile {
    cloud: Cloud,
    #[serde(skip_serializing_if = "Option::is_none")]
    partner: Option<Partner>,
    #[serde(skip_serializing_if = "Option::is_none")]
    store: Option<Store>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<Server>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    partners: Vec<PartnerEntry>,
}

#[derive(Serialize)]
struct PartnerEntry {
    name: String,
    #[serde(flatten)]
    app: Partner,
    store: Store,
}

#[derive(Serialize)]
struct Cloud {
    name: &'static str,
    login: String,
    graph: String,
    arm: String,
    partner_center: String,
    ca_file: PathBuf,
}

#[derive(Serialize, Clone)]
struct Partner {
    tenant_id: String,
    client_id: String,
    client_secret_file: PathBuf,
}

#[derive(Serialize)]
struct Store {
    kind: &'static str,
    keyvault: KeyVault,
}

#[derive(Serialize)]
struct KeyVault {
    url: String,
    secret_name: String,
    identity: Identity,
}

#[derive(Serialize)]
struct Identity {
    kind: &'static str,
    tenant_id: String,
    client_id: String,
    client_secret_file: PathBuf,
}

#[derive(Serialize)]
struct Server {
    listen: String,
}

/// The TOML text of the config. Secrets are referenced by file, never inlined.
pub(crate) fn render(i: &ConfigInputs<'_>) -> Result<String, SimError> {
    let app = |p: &PartnerInputs| Partner {
        tenant_id: p.tenant_id.clone(),
        client_id: p.client_id.clone(),
        client_secret_file: p.secret_file.clone(),
    };
    let store = |p: &PartnerInputs| Store {
        kind: "keyvault",
        keyvault: KeyVault {
            url: i.keyvault.into(),
            secret_name: p.secret_name.clone(),
            identity: Identity {
                kind: "client_secret",
                tenant_id: i.identity_tenant_id.into(),
                client_id: i.identity_client_id.into(),
                client_secret_file: i.identity_secret_file.into(),
            },
        },
    };
    let (partner, partners) = match i.partners.as_slice() {
        [one] => (Some(one), Vec::new()),
        several => (
            None,
            several
                .iter()
                .map(|p| PartnerEntry {
                    name: p.name.clone(),
                    app: app(p),
                    store: store(p),
                })
                .collect(),
        ),
    };
    let cfg = ConfigFile {
        cloud: Cloud {
            name: "custom",
            login: i.login.into(),
            graph: i.graph.into(),
            arm: i.arm.into(),
            partner_center: i.partner_center.into(),
            ca_file: i.ca_file.into(),
        },
        partner: partner.map(app),
        store: partner.map(store),
        server: i.listen.map(|l| Server { listen: l.into() }),
        partners,
    };
    let header = format!(
        "# Written by `tenantwatch sim`: a custom cloud pointing at the simulator.\n\
         # Secrets live in the *_file paths (mode 0600), not here.\n\
         #\n\
         # Simulator admin API (plain HTTP, loopback; see docs/simulator.md): {admin}\n\
         # Managed identity: IMDS {mi}/metadata/identity/oauth2/token (AZURE_POD_IDENTITY_AUTHORITY_HOST={mi}),\n\
         #   App Service IDENTITY_ENDPOINT={mi}/msi/token (IDENTITY_HEADER in identity-header)\n\
         # Certificate credentials: identity {icert}, partner {pcert}\n\
         # Workload identity token file: {fed}\n\n",
        admin = i.admin,
        mi = i.managed_identity,
        icert = i.identity_certificate.display(),
        pcert = i.partner_certificate.display(),
        fed = i.federated_token_file.display(),
    );
    Ok(format!("{header}{}", toml::to_string(&cfg)?))
}

/// Writes `contents` to `path` via a temporary file and rename, so readers
/// never see a half-written file; `mode` applies on Unix.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), SimError> {
    let io = |source| SimError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    // A stale temp file would keep its old permissions through `create`.
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partner(k: usize) -> PartnerInputs {
        PartnerInputs {
            name: format!("partner-{k}"),
            tenant_id: format!("pt{k}"),
            client_id: format!("pc{k}"),
            secret_file: PathBuf::from(format!("/s/partner-client-secret-{k}")),
            secret_name: format!("tenantwatch-refresh-token-{k}"),
        }
    }

    /// Several partners: a `[[partners]]` entry each, with its own app,
    /// secret file and vault secret, and no single-partner sections.
    #[test]
    fn several_partners_are_partners_entries() {
        let mut i = inputs(None);
        i.partners = (0..3).map(partner).collect();
        let text = render(&i).unwrap();
        let v: toml::Value = toml::from_str(&text).unwrap();
        assert!(v.get("partner").is_none() && v.get("store").is_none());
        let entries = v["partners"].as_array().unwrap();
        assert_eq!(entries.len(), 3);
        for (k, e) in entries.iter().enumerate() {
            assert_eq!(e["name"].as_str(), Some(format!("partner-{k}").as_str()));
            assert_eq!(e["tenant_id"].as_str(), Some(format!("pt{k}").as_str()));
            assert_eq!(e["client_id"].as_str(), Some(format!("pc{k}").as_str()));
            assert_eq!(
                e["client_secret_file"].as_str(),
                Some(format!("/s/partner-client-secret-{k}").as_str())
            );
            assert_eq!(
                e["store"]["keyvault"]["secret_name"].as_str(),
                Some(format!("tenantwatch-refresh-token-{k}").as_str())
            );
            assert_eq!(
                e["store"]["keyvault"]["identity"]["client_id"].as_str(),
                Some("ic")
            );
        }
    }

    fn inputs(listen: Option<&'static str>) -> ConfigInputs<'static> {
        ConfigInputs {
            login: "https://127.0.0.1:1",
            graph: "https://127.0.0.1:3",
            arm: "https://127.0.0.1:4",
            partner_center: "https://127.0.0.1:5",
            keyvault: "https://127.0.0.1:2",
            ca_file: Path::new("/s/ca.pem"),
            partners: vec![partner(0)],
            identity_tenant_id: "it",
            identity_client_id: "ic",
            identity_secret_file: Path::new("/s/keyvault-client-secret"),
            listen,
            admin: "http://127.0.0.1:7",
            managed_identity: "http://127.0.0.1:6",
            identity_certificate: Path::new("/s/identity-certificate.pem"),
            partner_certificate: Path::new("/s/partner-certificate.pem"),
            federated_token_file: Path::new("/s/federated-token"),
        }
    }

    #[test]
    fn config_has_the_contract_keys() {
        let text = render(&inputs(Some("127.0.0.1:9000"))).unwrap();
        let v: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(v["cloud"]["name"].as_str(), Some("custom"));
        assert_eq!(v["cloud"]["login"].as_str(), Some("https://127.0.0.1:1"));
        assert_eq!(v["cloud"]["ca_file"].as_str(), Some("/s/ca.pem"));
        assert_eq!(
            v["partner"]["client_secret_file"].as_str(),
            Some("/s/partner-client-secret-0")
        );
        assert_eq!(v["store"]["kind"].as_str(), Some("keyvault"));
        assert_eq!(
            v["store"]["keyvault"]["url"].as_str(),
            Some("https://127.0.0.1:2")
        );
        assert_eq!(
            v["store"]["keyvault"]["identity"]["kind"].as_str(),
            Some("client_secret")
        );
        assert_eq!(v["server"]["listen"].as_str(), Some("127.0.0.1:9000"));
        assert!(text.contains("# Simulator admin API (plain HTTP, loopback; see docs/simulator.md): http://127.0.0.1:7"));
        let text = render(&inputs(None)).unwrap();
        let v: toml::Value = toml::from_str(&text).unwrap();
        assert!(v.get("server").is_none());
    }

    #[test]
    fn atomic_write_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("secret");
        write_atomic(&p, b"x", 0o600).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        write_atomic(&p, b"y", 0o600).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"y");
    }
}

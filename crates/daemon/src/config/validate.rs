//! The checks that turn a [`RawConfig`] into [`Settings`]: each problem is
//! collected with the key it concerns (and the variable that set it), after
//! those [`super::tree`] found reading the file, so all of them are reported
//! at once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use super::cloud::{Audiences, Cloud, CloudName};
use super::credential::{Certificate, ClientCredential};
use super::raw::*;
use super::tree::Keys;
use super::*;
use crate::support::files::Readers;
use crate::support::secret::{read_secret_file, SecretString};

/// Collects problems while validating so all of them are reported at once.
/// A key a `TENANTWATCH__…` variable set is reported with the variable's
/// name; one the reader already reported and left out is not reported again
/// (as "missing", say).
pub(super) struct Problems(pub(super) Vec<String>, pub(super) Keys);

impl Problems {
    pub(super) fn push(&mut self, key: &str, msg: impl std::fmt::Display) {
        if self.1.refused(key) {
            return;
        }
        match self.1.var_for(key) {
            Some(var) => self.0.push(format!("{var} sets {key}: {msg}")),
            None => self.0.push(format!("{key}: {msg}")),
        }
    }

    fn required<'a>(&mut self, key: &str, v: &'a Option<String>) -> Option<&'a str> {
        match v.as_deref().map(str::trim) {
            Some(s) if !s.is_empty() => Some(s),
            // A key inside an array of tables has no variable.
            _ if key.contains('[') => {
                self.push(key, "missing");
                None
            }
            _ => {
                let env = format!("{ENV_PREFIX}__{}", key.replace('.', "__").to_uppercase());
                self.push(key, format!("missing; set it in the file or with {env}"));
                None
            }
        }
    }

    fn https_url(&mut self, key: &str, v: &str) -> Option<Url> {
        match Url::parse(v) {
            Ok(u) if u.scheme() == "https" && u.host().is_some() => Some(u),
            Ok(_) => {
                self.push(key, format!("{v:?} must be an https:// URL"));
                None
            }
            Err(e) => {
                self.push(key, format!("{v:?} is not a URL ({e})"));
                None
            }
        }
    }
}

fn is_guid(s: &str) -> bool {
    crate::model::is_tenant_id(s)
}

/// The partner's own tenant may be named by its GUID or a verified domain.
fn valid_tenant(s: &str) -> bool {
    crate::model::is_tenant_id(s) || crate::model::is_domain(s)
}

impl RawConfig {
    /// Checks every key; `p` may hold problems found before (reading the
    /// tree), and any problem at all means no settings.
    pub(super) fn validate(
        self,
        mut p: Problems,
        base: &Path,
        azure_env: &AzureEnv,
    ) -> Result<Settings, Vec<String>> {
        let cloud = validate_cloud(&mut p, &self.cloud);
        let ca_file = self.cloud.ca_file.clone().map(|f| absolute(base, &f));
        if let Some(f) = &ca_file {
            check_ca_file(&mut p, f);
        }
        // Secret files others can read are refused, as the token file is,
        // unless the operator says they come from a Kubernetes secret volume.
        let readers = if self.secrets.allow_readable_by_others.unwrap_or(false) {
            Readers::Anyone
        } else {
            Readers::OwnerOnly
        };
        let files = SecretFiles {
            base,
            credentials: azure_env.get("CREDENTIALS_DIRECTORY").map(String::as_str),
            readers,
        };
        let rotation = validate_rotation(&mut p, "", &self.rotation);
        let tenants = validate_tenants(&mut p, "", &self.tenants);
        let partners = match &self.partners {
            None => {
                let partner = match &self.partner {
                    Some(raw) => validate_app(&mut p, "partner", raw, files),
                    None => {
                        p.push("partner", "section missing; it names the multi-tenant SAM application (tenant_id, client_id, client_secret_file)");
                        None
                    }
                };
                let store = validate_store(&mut p, "", self.store.as_ref(), azure_env, files);
                match (partner, store, &rotation, &tenants) {
                    (Some(app), Some(store), Some(rotation), Some(tenants)) => {
                        vec![PartnerProfile {
                            name: DEFAULT_PARTNER.to_string(),
                            app,
                            store,
                            rotation: rotation.clone(),
                            tenants: tenants.clone(),
                        }]
                    }
                    _ => Vec::new(),
                }
            }
            Some(list) => validate_partners(
                &mut p,
                &self,
                list,
                rotation.as_ref(),
                tenants.as_ref(),
                azure_env,
                files,
            ),
        };
        let listen = self.server.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen = match listen.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                p.push(
                    "server.listen",
                    format!("{listen:?} is not IP:PORT (e.g. 127.0.0.1:9464 or [::]:9464)"),
                );
                None
            }
        };
        let web = self.server.web_config_file.as_ref().and_then(|f| {
            load_web_config(&absolute(base, f))
                .map_err(|e| p.push("server.web_config_file", e.to_string()))
                .ok()
        });
        let connections = validate_connections(&mut p, &self.server);
        let collection = validate_collection(&mut p, &self.collection);
        let (collectors, custom_queries) = match &collection {
            Some(c) => validate_collectors(&mut p, &self.collectors, c),
            None => Default::default(),
        };
        let log = validate_log(&mut p, &self.log);
        let consent = validate_consent(&mut p, &self.consent);
        let mut partners = partners.into_iter();
        match (cloud, partners.next(), listen, connections, collection, log) {
            (
                Some(cloud),
                Some(first),
                Some(listen),
                Some((header_read_timeout, idle_timeout, max_connections)),
                Some(collection),
                Some(log),
            ) if p.0.is_empty() => Ok(Settings {
                cloud,
                ca_file,
                partner_name: first.name,
                partner: first.app,
                store: first.store,
                server: ServerSettings {
                    listen,
                    web,
                    max_requests: self.server.max_requests.unwrap_or(DEFAULT_MAX_SCRAPES),
                    header_read_timeout,
                    idle_timeout,
                    max_connections,
                },
                collection,
                rotation: first.rotation,
                tenants: first.tenants,
                collectors,
                custom_queries,
                log,
                consent,
                other_partners: partners.collect(),
            }),
            _ => Err(p.0),
        }
    }
}

/// At most this many `[[partners]]`: each runs its own discovery, collectors
/// and rotation, and a generated config with thousands is a mistake.
pub const MAX_PARTNERS: usize = 100;

/// A name fit for a label value, a command-line argument and a log line.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Where a store keeps its token, for telling two apart: a file's path with
/// `.` and repeated separators gone and its directory resolved (symlinks,
/// `..`) when it exists, so two spellings of one file are one store.
fn store_key(s: &StoreSettings) -> String {
    match s {
        StoreSettings::File { path } => {
            let plain: PathBuf = path.components().collect();
            let resolved = plain
                .parent()
                .and_then(|dir| std::fs::canonicalize(dir).ok())
                .zip(plain.file_name())
                .map(|(dir, name)| dir.join(name));
            resolved.unwrap_or(plain).display().to_string()
        }
        kv => kv.location(),
    }
}

/// `[[partners]]`: each entry's name, app and store, its rotation and tenants
/// (the top-level sections' when it has none), and what no two may share.
fn validate_partners(
    p: &mut Problems,
    raw: &RawConfig,
    list: &[RawPartner],
    rotation: Option<&RotationSettings>,
    tenants: Option<&DiscoverySettings>,
    env: &AzureEnv,
    files: SecretFiles<'_>,
) -> Vec<PartnerProfile> {
    if raw.partner.is_some() {
        p.push(
            "partner",
            "a config has [[partners]] entries or one [partner] section, not both; move it into a [[partners]] entry with a name",
        );
    }
    if raw.store.is_some() {
        p.push(
            "store",
            "each [[partners]] entry has its own store ([partners.store]); move this one into its entry",
        );
    }
    if list.is_empty() {
        p.push(
            "partners",
            "is empty; add a [[partners]] entry, or use one [partner] section",
        );
    }
    if list.len() > MAX_PARTNERS {
        p.push(
            "partners",
            format!("{} entries; at most {MAX_PARTNERS}", list.len()),
        );
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    let mut stores: Vec<(String, usize)> = Vec::new();
    let mut apps: Vec<((String, String), usize)> = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let at = format!("partners[{i}].");
        let name = entry.name.as_deref().unwrap_or_default();
        if !plain_name(name) {
            p.push(
                &format!("{at}name"),
                format!("{name:?} must be 1–64 letters, digits, '_', '-' or '.' (it is the partner label)"),
            );
        } else if names.contains(&name) {
            p.push(&format!("{at}name"), format!("{name:?} is used twice"));
        }
        names.push(name);
        let app = validate_app(p, &format!("partners[{i}]"), &entry.app(), files);
        if let Some(a) = &app {
            let key = (
                a.tenant_id.to_ascii_lowercase(),
                a.client_id.to_ascii_lowercase(),
            );
            match apps.iter().find(|(k, _)| *k == key) {
                // Its pacing budgets and tokens would count twice against one app's limits.
                Some((_, j)) => p.push(
                    &format!("{at}client_id"),
                    format!("the same SAM app in the same partner tenant as partners[{j}]; one entry per app and partner tenant"),
                ),
                None => apps.push((key, i)),
            }
        }
        let store = validate_store(p, &at, entry.store.as_ref(), env, files);
        if let Some(s) = &store {
            let location = store_key(s);
            // Two partners rotating one secret would each overwrite the
            // other's token: the loser's is gone for good.
            match stores.iter().find(|(l, _)| *l == location) {
                Some((_, j)) => p.push(
                    &format!("{at}store"),
                    format!("{location} is partners[{j}]'s store too; every partner needs its own secret or file"),
                ),
                None => stores.push((location, i)),
            }
        }
        let rotation = match &entry.rotation {
            Some(r) => validate_rotation(p, &at, r),
            None => rotation.cloned(),
        };
        let tenants = match &entry.tenants {
            Some(t) => validate_tenants(p, &at, t),
            None => tenants.cloned(),
        };
        if let (Some(app), Some(store), Some(rotation), Some(tenants)) =
            (app, store, rotation, tenants)
        {
            out.push(PartnerProfile {
                name: name.to_string(),
                app,
                store,
                rotation,
                tenants,
            });
        }
    }
    out
}

/// `server.header_read_timeout`, `server.idle_timeout` and `server.max_connections`.
fn validate_connections(p: &mut Problems, raw: &RawServer) -> Option<(Duration, Duration, usize)> {
    let duration = |p: &mut Problems, key: &str, v: &Option<String>, default: Duration| match v {
        // A zero timeout would close every connection at once; say so plainly.
        Some(v) if humantime::parse_duration(v).is_ok_and(|d| d.is_zero()) => {
            p.push(key, format!("{v:?} must be above 0"));
            None
        }
        Some(v) => parse_duration(p, key, Some(v), ""),
        None => Some(default),
    };
    let header = duration(
        p,
        "server.header_read_timeout",
        &raw.header_read_timeout,
        DEFAULT_HEADER_READ_TIMEOUT,
    );
    let idle = duration(
        p,
        "server.idle_timeout",
        &raw.idle_timeout,
        DEFAULT_IDLE_TIMEOUT,
    );
    let max = raw.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
    if max == 0 || max > MAX_MAX_CONNECTIONS {
        p.push(
            "server.max_connections",
            format!("{max} must be between 1 and {MAX_MAX_CONNECTIONS}"),
        );
        return None;
    }
    Some((header?, idle?, max))
}

fn absolute(base: &Path, f: &Path) -> PathBuf {
    if f.is_absolute() {
        f.to_path_buf()
    } else {
        base.join(f)
    }
}

fn check_ca_file(p: &mut Problems, f: &Path) {
    // A device such as /dev/zero would be read forever.
    if !f.is_file() {
        p.push("cloud.ca_file", format!("{} is not a file", f.display()));
        return;
    }
    match crate::support::files::read_capped(f, crate::support::files::DOCUMENT_LIMIT) {
        Ok(pem) => {
            use rustls::pki_types::{pem::PemObject, CertificateDer};
            let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem).collect();
            if certs.is_empty() || certs.iter().any(|c| c.is_err()) {
                p.push(
                    "cloud.ca_file",
                    format!("{} holds no PEM certificate", f.display()),
                );
            }
        }
        Err(e) => p.push("cloud.ca_file", format!("cannot read {}: {e}", f.display())),
    }
}

fn validate_cloud(p: &mut Problems, raw: &RawCloud) -> Option<Cloud> {
    let name_s = raw.name.as_deref().unwrap_or("public");
    let Some(name) = CloudName::parse(name_s) else {
        p.push(
            "cloud.name",
            format!("unknown cloud {name_s:?}; expected public, usgov, china or custom"),
        );
        return None;
    };
    let known = name.known();
    let mut endpoint = |key: &str, v: &Option<String>, default: &str| -> Option<Url> {
        let full = format!("cloud.{key}");
        match (name, v) {
            (CloudName::Custom, None) => {
                p.push(&full, "missing; a custom cloud names every endpoint");
                None
            }
            (_, Some(v)) => p.https_url(&full, v),
            (_, None) => Url::parse(default).ok(),
        }
    };
    let login = endpoint("login", &raw.login, known.login);
    let graph = endpoint("graph", &raw.graph, known.graph);
    let arm = endpoint("arm", &raw.arm, known.arm);
    let partner_center = endpoint("partner_center", &raw.partner_center, known.partner_center);
    if let Some(l) = &login {
        if l.path() != "/" {
            p.push(
                "cloud.login",
                format!("{l} must be a bare origin (the tenant goes in the first path segment)"),
            );
        }
    }
    let a = &raw.audiences;
    let pick = |v: &Option<String>, d: &str| v.clone().unwrap_or_else(|| d.to_string());
    let audiences = Audiences {
        graph: pick(&a.graph, known.audiences[0]),
        arm: pick(&a.arm, known.audiences[1]),
        partner_center: pick(&a.partner_center, known.audiences[2]),
        keyvault: pick(&a.keyvault, known.audiences[3]),
    };
    let client_capabilities = match &raw.client_capabilities {
        None => crate::config::cloud::DEFAULT_CLIENT_CAPABILITIES
            .iter()
            .map(|c| c.to_string())
            .collect(),
        Some(caps) => {
            // They travel inside a JSON claims request: plain tokens only.
            for c in caps {
                if c.is_empty()
                    || !c
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
                {
                    p.push(
                        "cloud.client_capabilities",
                        format!(
                            "{:?} is not a capability name (letters, digits, - and _; Microsoft's only one is cp1)",
                            crate::support::scrub::upstream(c)
                        ),
                    );
                }
            }
            caps.clone()
        }
    };
    Some(Cloud {
        name,
        login: login?,
        graph: graph?,
        arm: arm?,
        partner_center: partner_center?,
        audiences,
        client_capabilities,
    })
}

/// Where a relative `*_file` path points: into systemd's
/// `$CREDENTIALS_DIRECTORY` when it is set (so `LoadCredential=` works
/// unchanged), else next to the config file — as `ca_file` and every other
/// relative path, so `tenantwatch consent --config /etc/tenantwatch/…` finds
/// the secrets whatever directory it is run from.
fn secret_path(files: &SecretFiles<'_>, f: &Path) -> PathBuf {
    if f.is_absolute() {
        return f.to_path_buf();
    }
    match files.credentials.filter(|d| !d.is_empty()) {
        Some(dir) => Path::new(dir).join(f),
        None => files.base.join(f),
    }
}

/// How secret files are found and who else may read them.
#[derive(Clone, Copy)]
struct SecretFiles<'a> {
    /// The config file's directory.
    base: &'a Path,
    /// `$CREDENTIALS_DIRECTORY`, if set.
    credentials: Option<&'a str>,
    /// Whether other users may read them.
    readers: Readers,
}

/// Environment the Azure SDKs read for identities (`AZURE_CLIENT_ID` …); config wins.
pub(super) type AzureEnv = std::collections::HashMap<String, String>;

fn tenant_and_client<'a>(
    p: &mut Problems,
    section: &str,
    raw: &'a RawApp,
    env: &'a AzureEnv,
) -> (Option<String>, Option<String>) {
    let tenant = raw
        .tenant_id
        .clone()
        .or_else(|| env.get("AZURE_TENANT_ID").cloned());
    let tenant_id = p
        .required(&format!("{section}.tenant_id"), &tenant)
        .map(str::to_string);
    if let Some(t) = &tenant_id {
        if !valid_tenant(t) {
            p.push(
                &format!("{section}.tenant_id"),
                format!("{t:?} is neither a GUID nor a domain name"),
            );
        }
    }
    let client = raw
        .client_id
        .clone()
        .or_else(|| env.get("AZURE_CLIENT_ID").cloned());
    let client_id = p
        .required(&format!("{section}.client_id"), &client)
        .map(str::to_string);
    if let Some(c) = &client_id {
        if !is_guid(c) {
            p.push(
                &format!("{section}.client_id"),
                format!("{c:?} is not an application (client) id GUID"),
            );
        }
    }
    (tenant_id, client_id)
}

/// Secret or certificate, exactly one.
fn secret_or_certificate(
    p: &mut Problems,
    section: &str,
    raw: &RawApp,
    files: SecretFiles<'_>,
) -> Option<ClientCredential> {
    let given = [
        raw.client_secret_file.is_some(),
        raw.client_secret.is_some(),
        raw.certificate_file.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if given > 1 {
        p.push(
            &format!("{section}.client_secret"),
            "set exactly one of client_secret_file, client_secret or certificate_file",
        );
        return None;
    }
    if let Some(f) = &raw.certificate_file {
        return match Certificate::from_pem_file(
            &format!("{section}.certificate_file"),
            &secret_path(&files, f),
            files.readers,
        ) {
            Ok(c) => Some(ClientCredential::Certificate(std::sync::Arc::new(c))),
            Err(e) => {
                p.0.push(e.to_string());
                None
            }
        };
    }
    match (&raw.client_secret_file, &raw.client_secret) {
        (Some(f), _) => {
            match read_secret_file(
                &format!("{section}.client_secret_file"),
                &secret_path(&files, f),
                files.readers,
            ) {
                Ok(s) => Some(ClientCredential::Secret(s)),
                Err(e) => {
                    p.0.push(e.to_string());
                    None
                }
            }
        }
        (None, Some(s)) if !s.trim().is_empty() => {
            crate::support::scrub::remember(s.trim());
            Some(ClientCredential::Secret(SecretString::from(
                s.trim().to_string(),
            )))
        }
        _ => {
            let env = format!(
                "{ENV_PREFIX}__{}__CLIENT_SECRET",
                section.replace('.', "__").to_uppercase()
            );
            p.push(
                &format!("{section}.client_secret_file"),
                format!("missing; point it at a file holding the client secret (or set certificate_file, or {env})"),
            );
            None
        }
    }
}

fn validate_app(
    p: &mut Problems,
    section: &str,
    raw: &RawApp,
    files: SecretFiles<'_>,
) -> Option<PartnerApp> {
    for (key, set) in [
        ("kind", raw.kind.is_some()),
        ("federated_token_file", raw.federated_token_file.is_some()),
        ("authority", raw.authority.is_some()),
        ("endpoint", raw.endpoint.is_some()),
    ] {
        if set {
            p.push(&format!("{section}.{key}"), "not a key of this section");
        }
    }
    let none = AzureEnv::new();
    let (tenant_id, client_id) = tenant_and_client(p, section, raw, &none);
    let credential = secret_or_certificate(p, section, raw, files);
    Some(PartnerApp {
        tenant_id: tenant_id?,
        client_id: client_id?,
        credential: credential?,
    })
}

fn validate_identity(
    p: &mut Problems,
    at: &str,
    raw: &RawApp,
    env: &AzureEnv,
    files: SecretFiles<'_>,
) -> Option<ServiceIdentity> {
    let section = &format!("{at}store.keyvault.identity");
    let key = |k: &str| format!("{section}.{k}");
    let authority = raw
        .authority
        .clone()
        .or_else(|| env.get("AZURE_AUTHORITY_HOST").cloned())
        .and_then(|a| p.https_url(&key("authority"), &a));
    match raw.kind.as_deref().unwrap_or("client_secret") {
        kind @ ("client_secret" | "certificate") => {
            if kind == "certificate" && raw.certificate_file.is_none() {
                p.push(
                    &key("certificate_file"),
                    "missing; a PEM file with the certificate and its RSA private key",
                );
                return None;
            }
            let (tenant_id, client_id) = tenant_and_client(p, section, raw, env);
            let credential = secret_or_certificate(p, section, raw, files);
            Some(ServiceIdentity::App {
                app: PartnerApp {
                    tenant_id: tenant_id?,
                    client_id: client_id?,
                    credential: credential?,
                },
                authority,
            })
        }
        "workload_identity" => {
            let (tenant_id, client_id) = tenant_and_client(p, section, raw, env);
            let file = raw
                .federated_token_file
                .clone()
                .or_else(|| env.get("AZURE_FEDERATED_TOKEN_FILE").map(PathBuf::from));
            let Some(file) = file else {
                p.push(&key("federated_token_file"), "missing; set it or AZURE_FEDERATED_TOKEN_FILE (the workload identity webhook sets it)");
                return None;
            };
            Some(ServiceIdentity::App {
                app: PartnerApp {
                    tenant_id: tenant_id?,
                    client_id: client_id?,
                    credential: ClientCredential::FederatedTokenFile(secret_path(&files, &file)),
                },
                authority,
            })
        }
        "managed_identity" => {
            let client_id = raw
                .client_id
                .clone()
                .or_else(|| env.get("AZURE_CLIENT_ID").cloned());
            let endpoint = match (
                &raw.endpoint,
                env.get("IDENTITY_ENDPOINT"),
                env.get("IDENTITY_HEADER"),
            ) {
                (Some(e), _, _) => ManagedIdentityEndpoint::Imds(url_any(p, &key("endpoint"), e)?),
                (None, Some(e), Some(h)) => ManagedIdentityEndpoint::AppService {
                    endpoint: url_any(p, "IDENTITY_ENDPOINT", e)?,
                    header: {
                        crate::support::scrub::remember(h);
                        SecretString::from(h.clone())
                    },
                },
                _ => {
                    let imds = env
                        .get("AZURE_POD_IDENTITY_AUTHORITY_HOST")
                        .map(|h| {
                            format!("{}/metadata/identity/oauth2/token", h.trim_end_matches('/'))
                        })
                        .unwrap_or_else(|| IMDS_ENDPOINT.to_string());
                    ManagedIdentityEndpoint::Imds(url_any(p, &key("endpoint"), &imds)?)
                }
            };
            Some(ServiceIdentity::ManagedIdentity {
                client_id,
                endpoint,
            })
        }
        other => {
            p.push(
                &key("kind"),
                format!("unknown {other:?}; expected client_secret, certificate, managed_identity or workload_identity"),
            );
            None
        }
    }
}

/// Managed-identity endpoints are plain HTTP on a link-local or loopback address.
fn url_any(p: &mut Problems, key: &str, v: &str) -> Option<Url> {
    match Url::parse(v) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u),
        _ => {
            p.push(key, format!("{v:?} is not an http(s) URL"));
            None
        }
    }
}

fn validate_store(
    p: &mut Problems,
    at: &str,
    raw: Option<&RawStore>,
    env: &AzureEnv,
    files: SecretFiles<'_>,
) -> Option<StoreSettings> {
    let Some(raw) = raw else {
        p.push(
            &format!("{at}store"),
            "section missing; set kind = \"keyvault\" (with [store.keyvault]) or \"file\"",
        );
        return None;
    };
    match raw.kind.as_deref().unwrap_or("keyvault") {
        "keyvault" => {
            let Some(kv) = &raw.keyvault else {
                p.push(
                    &format!("{at}store.keyvault"),
                    "section missing (url, secret_name, [store.keyvault.identity])",
                );
                return None;
            };
            let url = p
                .required(&format!("{at}store.keyvault.url"), &kv.url)
                .and_then(|u| p.https_url(&format!("{at}store.keyvault.url"), u));
            let name = p.required(&format!("{at}store.keyvault.secret_name"), &kv.secret_name);
            if let Some(n) = name {
                // Key Vault's own rule for secret names (SetSecret in the REST spec).
                if n.len() > 127 || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    p.push(
                        &format!("{at}store.keyvault.secret_name"),
                        format!("{n:?} must be 1-127 characters of 0-9, a-z, A-Z and -"),
                    );
                }
            }
            let identity = match &kv.identity {
                Some(id) => validate_identity(p, at, id, env, files),
                None => {
                    p.push(&format!("{at}store.keyvault.identity"), "section missing; it names who reads the vault (kind, tenant_id, client_id, client_secret_file)");
                    None
                }
            };
            Some(StoreSettings::KeyVault {
                url: url?,
                secret_name: name?.to_string(),
                identity: Box::new(identity?),
            })
        }
        "file" => {
            let path = raw.file.as_ref().and_then(|f| f.path.clone());
            match path {
                Some(path) => Some(StoreSettings::File {
                    path: absolute(files.base, &path),
                }),
                None => {
                    p.push(
                        &format!("{at}store.file.path"),
                        "missing; the file that holds the refresh token",
                    );
                    None
                }
            }
        }
        other => {
            p.push(
                &format!("{at}store.kind"),
                format!("unknown store {other:?}; expected keyvault or file"),
            );
            None
        }
    }
}

fn valid_cron(p: &mut Problems, key: &str, schedule: &str) {
    let ok = tokio_cron_scheduler::Job::new_async(schedule, |_, _| Box::pin(async {})).is_ok();
    if !ok {
        p.push(
            key,
            format!("{schedule:?} is not a cron expression with seconds (e.g. \"0 */5 * * * *\")"),
        );
    }
}

fn validate_tenants(
    p: &mut Problems,
    at: &str,
    raw: &RawTenants,
) -> Option<crate::config::DiscoverySettings> {
    use crate::config::Shard;
    use crate::model::Source;
    let mut sources = Vec::new();
    for s in raw
        .sources
        .clone()
        .unwrap_or_else(|| vec!["partner_center".into()])
    {
        match Source::parse(&s) {
            Some(src) if !sources.contains(&src) => sources.push(src),
            Some(_) => {}
            None => p.push(
                &format!("{at}tenants.sources"),
                format!("unknown source {s:?}; expected partner_center, gdap or static"),
            ),
        }
    }
    if sources.is_empty() {
        p.push(&format!("{at}tenants.sources"), "names no source");
    }
    let static_tenants = raw.static_tenants.clone().unwrap_or_default();
    for t in &static_tenants {
        if !is_guid(t) {
            p.push(
                &format!("{at}tenants.static"),
                format!("{t:?} is not a tenant id GUID"),
            );
        }
    }
    if sources.contains(&Source::Static) && static_tenants.is_empty() {
        p.push(
            &format!("{at}tenants.static"),
            "the static source is on but the list is empty",
        );
    }
    let shard = match raw.shard.as_deref() {
        None => None,
        Some("auto") => {
            let host = crate::support::host::hostname();
            match raw.shard_count {
                Some(n) => match Shard::from_hostname(&host, n) {
                    Some(s) => Some(s),
                    None => {
                        p.push(
                            &format!("{at}tenants.shard"),
                            format!("\"auto\" needs a hostname ending in -N below shard_count {n}; this host is {host:?}"),
                        );
                        None
                    }
                },
                None => {
                    p.push(
                        &format!("{at}tenants.shard_count"),
                        "missing; \"auto\" sharding needs the replica count",
                    );
                    None
                }
            }
        }
        Some(s) => match Shard::parse(s) {
            Some(s) => Some(s),
            None => {
                p.push(
                    &format!("{at}tenants.shard"),
                    format!("{s:?} is not \"i/n\" with 0 <= i < n, or \"auto\""),
                );
                None
            }
        },
    };
    let schedule = raw
        .schedule
        .clone()
        .unwrap_or_else(|| DEFAULT_DISCOVERY_SCHEDULE.to_string());
    valid_cron(p, &format!("{at}tenants.schedule"), &schedule);
    let mut gdap_required_roles = Vec::new();
    for r in raw.gdap_required_roles.iter().flatten() {
        match crate::model::role_id(r) {
            Some(id) if !gdap_required_roles.contains(&id) => gdap_required_roles.push(id),
            Some(_) => {}
            None => p.push(
                &format!("{at}tenants.gdap_required_roles"),
                format!(
                    "{r:?} is neither a role definition id (GUID) nor a built-in role name tenantwatch knows (e.g. \"Global Reader\"); use the role's template id"
                ),
            ),
        }
    }
    if !gdap_required_roles.is_empty() && !sources.contains(&Source::Gdap) {
        p.push(
            &format!("{at}tenants.gdap_required_roles"),
            "needs the gdap source in tenants.sources: roles are read from the GDAP relationships",
        );
    }
    let mut groups: Vec<crate::config::TenantGroup> = Vec::new();
    for (i, g) in raw.groups.iter().flatten().enumerate() {
        let key = format!("{at}tenants.groups[{i}]");
        let name = g.name.clone().unwrap_or_default();
        // A label value for routing: short, plain, and never the fallback.
        if !plain_name(&name) {
            p.push(
                &format!("{key}.name"),
                format!("{name:?} must be 1–64 letters, digits, '_', '-' or '.'"),
            );
        } else if name == crate::config::NO_GROUP {
            p.push(
                &format!("{key}.name"),
                format!("\"{name}\" is the group of tenants no entry matches; pick another name"),
            );
        } else if groups.iter().any(|o| o.name == name) {
            p.push(&format!("{key}.name"), format!("{name:?} is used twice"));
        }
        let include = g.include.clone().unwrap_or_default();
        if include.is_empty() {
            p.push(
                &format!("{key}.include"),
                "missing or empty; use [\"*\"] for every tenant",
            );
        }
        groups.push(crate::config::TenantGroup {
            name,
            include,
            exclude: g.exclude.clone().unwrap_or_default(),
        });
    }
    Some(crate::config::DiscoverySettings {
        sources,
        static_tenants,
        include: raw.include.clone().unwrap_or_default(),
        exclude: raw.exclude.clone().unwrap_or_default(),
        shard,
        schedule,
        gdap_required_roles,
        groups,
    })
}

type Collectors = (
    std::collections::BTreeMap<String, CollectorSettings>,
    Vec<crate::config::CustomQuery>,
);

fn validate_collectors(
    p: &mut Problems,
    raw: &std::collections::BTreeMap<String, RawCollector>,
    defaults: &CollectionSettings,
) -> Collectors {
    let mut out = std::collections::BTreeMap::new();
    for name in raw.keys() {
        if !crate::config::COLLECTORS.contains(&name.as_str()) {
            p.push(
                &format!("collectors.{name}"),
                format!(
                    "unknown collector; expected one of {}",
                    crate::config::COLLECTORS.join(", ")
                ),
            );
        }
    }
    let mut queries = Vec::new();
    for name in crate::config::COLLECTORS {
        let r = raw.get(*name);
        let key = |k: &str| format!("collectors.{name}.{k}");
        let schedule = r.and_then(|r| r.schedule.clone()).unwrap_or_else(|| {
            crate::config::default_schedule(name)
                .map_or_else(|| defaults.schedule.clone(), str::to_string)
        });
        valid_cron(p, &key("schedule"), &schedule);
        let timeout = match r.and_then(|r| r.timeout.as_deref()) {
            Some(t) => parse_duration(p, &key("timeout"), Some(t), "60s")
                .unwrap_or(defaults.tenant_timeout),
            None => defaults.tenant_timeout,
        };
        if let Some(qs) = r.and_then(|r| r.queries.as_ref()) {
            if *name != "resource_graph" {
                p.push(&key("queries"), "only resource_graph takes queries");
            }
            for (i, q) in qs.iter().enumerate() {
                let qk = |k: &str| format!("collectors.{name}.queries[{i}].{k}");
                let qname = p.required(&qk("name"), &q.name).map(str::to_string);
                if let Some(n) = &qname {
                    if n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                        p.push(&qk("name"), format!("{n:?} must be letters, digits and _ (it becomes tenantwatch_azure_query_{n})"));
                    }
                }
                let query = p.required(&qk("query"), &q.query).map(str::to_string);
                let value_column = p
                    .required(&qk("value_column"), &q.value_column)
                    .map(str::to_string);
                for l in &q.label_columns {
                    // tenant_id and partner are on every sample already; a
                    // second one would make Prometheus refuse the scrape.
                    if l.is_empty()
                        || l == "tenant_id"
                        || l == "partner"
                        || l.starts_with("__")
                        || !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        || l.starts_with(|c: char| c.is_ascii_digit())
                    {
                        p.push(
                            &qk("label_columns"),
                            format!("{l:?} is not a usable label name"),
                        );
                    }
                }
                if let (Some(name), Some(query), Some(value_column)) = (qname, query, value_column)
                {
                    queries.push(crate::config::CustomQuery {
                        help: q
                            .help
                            .clone()
                            .unwrap_or_else(|| format!("Custom Resource Graph query {name}.")),
                        name,
                        query,
                        value_column,
                        label_columns: q.label_columns.clone(),
                    });
                }
            }
        }
        out.insert(
            name.to_string(),
            CollectorSettings {
                enabled: r
                    .and_then(|r| r.enabled)
                    .unwrap_or(!crate::config::OFF_BY_DEFAULT.contains(name)),
                schedule,
                timeout,
            },
        );
    }
    (out, queries)
}

fn validate_rotation(p: &mut Problems, at: &str, raw: &RawRotation) -> Option<RotationSettings> {
    let schedule = raw
        .schedule
        .clone()
        .unwrap_or_else(|| DEFAULT_ROTATION_SCHEDULE.to_string());
    valid_cron(p, &format!("{at}rotation.schedule"), &schedule);
    let rotate_after = parse_duration(
        p,
        &format!("{at}rotation.rotate_after"),
        raw.rotate_after.as_deref(),
        "7d",
    )?;
    if rotate_after > Duration::from_secs(60 * 24 * 3600) {
        p.push(
            &format!("{at}rotation.rotate_after"),
            "must be well under the refresh token's 90-day lifetime (at most 60d)",
        );
    }
    Some(RotationSettings {
        enabled: raw.enabled.unwrap_or(true),
        schedule,
        rotate_after,
    })
}

fn validate_collection(p: &mut Problems, raw: &RawCollection) -> Option<CollectionSettings> {
    let schedule = raw
        .schedule
        .clone()
        .unwrap_or_else(|| DEFAULT_SCHEDULE.to_string());
    valid_cron(p, "collection.schedule", &schedule);
    let concurrency = raw.concurrency.unwrap_or(16);
    if concurrency == 0 || concurrency > 10_000 {
        p.push(
            "collection.concurrency",
            format!("{concurrency} must be between 1 and 10000"),
        );
    }
    let timeout = parse_duration(
        p,
        "collection.tenant_timeout",
        raw.tenant_timeout.as_deref(),
        "60s",
    );
    let request_timeout = match (raw.request_timeout.as_deref(), timeout) {
        // Default: room for a hung request plus a retry inside the tenant's budget.
        (None, Some(t)) => Some(DEFAULT_REQUEST_TIMEOUT.min(t / 2)),
        (None, None) => None,
        (Some(v), t) => {
            let r = parse_duration(p, "collection.request_timeout", Some(v), "20s")?;
            match t {
                Some(t) if r > t => {
                    p.push(
                        "collection.request_timeout",
                        format!("{v} is longer than collection.tenant_timeout; a hung request would fail the collector instead of being retried"),
                    );
                    None
                }
                _ if r.is_zero() => {
                    p.push("collection.request_timeout", "must be above 0");
                    None
                }
                _ => Some(r),
            }
        }
    };
    let mut limits = crate::config::ApiLimits::default();
    let mut bounded = |key: &str, v: Option<usize>, slot: &mut usize, max: usize| {
        if let Some(v) = v {
            if v == 0 || v > max {
                p.push(key, format!("{v} must be between 1 and {max}"));
            } else {
                *slot = v;
            }
        }
    };
    bounded(
        "collection.max_requests",
        raw.max_requests,
        &mut limits.global,
        10_000,
    );
    bounded(
        "collection.max_requests_per_tenant",
        raw.max_requests_per_tenant,
        &mut limits.per_tenant,
        1_000,
    );
    bounded(
        "collection.max_pages",
        raw.max_pages,
        &mut limits.max_pages,
        100_000,
    );
    let mut max_series = 10_000;
    bounded(
        "collection.max_series",
        raw.max_series,
        &mut max_series,
        10_000_000,
    );
    if let Some(on) = raw.pacing {
        limits.pacing.enabled = on;
    }
    if let Some(share) = raw.api_budget_share {
        if share.is_finite() && share > 0.0 && share <= 1.0 {
            limits.pacing.budget_share = share;
        } else {
            p.push(
                "collection.api_budget_share",
                format!("{share} must be above 0 and at most 1"),
            );
        }
    }
    if let Some(n) = raw.graph_app_limit {
        if n == 0 {
            p.push("collection.graph_app_limit", "must be above 0");
        } else {
            limits.pacing.graph_app_limit = n;
        }
    }
    if let Some(n) = raw.partner_center_limit {
        if n == 0 {
            p.push("collection.partner_center_limit", "must be above 0");
        } else {
            limits.pacing.partner_center_limit = n;
        }
    }
    Some(CollectionSettings {
        schedule,
        concurrency,
        tenant_timeout: timeout?,
        request_timeout: request_timeout?,
        limits,
        max_series,
    })
}

fn parse_duration(p: &mut Problems, key: &str, v: Option<&str>, default: &str) -> Option<Duration> {
    let s = v.unwrap_or(default);
    match humantime::parse_duration(s) {
        Ok(d) if !d.is_zero() => Some(d),
        _ => {
            p.push(
                key,
                format!("{s:?} is not a duration like \"30s\" or \"5m\""),
            );
            None
        }
    }
}

/// `[consent]`: the grants `tenantwatch consent customers` pushes; each
/// scope a permission name (Partner Center joins them with commas).
fn validate_consent(p: &mut Problems, raw: &RawConsent) -> ConsentSettings {
    let mut scopes = |key: &str, given: &Option<Vec<String>>, default: &[&str]| -> Vec<String> {
        let list = given
            .clone()
            .unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect());
        if list.is_empty() {
            p.push(key, "must name at least one permission");
        }
        for s in &list {
            if s.is_empty() || s.contains([',', ' ']) || !s.is_ascii() {
                p.push(
                    key,
                    format!("{s:?} is not one permission name (e.g. Directory.Read.All)"),
                );
            }
        }
        list
    };
    let graph_scopes = scopes(
        "consent.graph_scopes",
        &raw.graph_scopes,
        &crate::config::DEFAULT_CONSENT_GRAPH_SCOPES,
    );
    let arm_scopes = scopes(
        "consent.arm_scopes",
        &raw.arm_scopes,
        &["user_impersonation"],
    );
    let display_name = raw
        .display_name
        .clone()
        .unwrap_or_else(|| "tenantwatch".to_string());
    if display_name.trim().is_empty() {
        p.push("consent.display_name", "must not be empty");
    }
    ConsentSettings {
        display_name,
        graph_scopes,
        arm_scopes,
    }
}

fn validate_log(p: &mut Problems, raw: &RawLog) -> Option<LogSettings> {
    let format = match raw.format.as_deref().unwrap_or("text") {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            p.push("log.format", format!("{other:?}; expected text or json"));
            return None;
        }
    };
    let level = raw.level.clone().unwrap_or_else(|| "info".to_string());
    if let Err(e) = check_log_filter(&level) {
        p.push("log.level", e);
        return None;
    }
    Some(LogSettings { format, level })
}

//! A simulated Microsoft public cloud — Entra ID token endpoint, Key Vault,
//! Microsoft Graph, Azure Resource Manager and Partner Center — faithful
//! enough that Microsoft's own client libraries (msal, azure-identity,
//! azure-keyvault-secrets) work against it. Each service has its own HTTPS
//! origin, served with a CA the simulator generates and writes to disk.
//!
//! Besides the HTTPS services it runs two plain-HTTP loopback listeners: the
//! managed identity endpoint (IMDS and App Service paths) and an admin API
//! for scripts. docs/simulator.md describes every endpoint.
//!
//! Start it with [`Sim::start`]; stop it with [`SimHandle::shutdown`] (or by
//! dropping every clone of the handle, which cancels the servers without
//! waiting for them).
//!
//! It serves one partner tenant by default and up to a hundred with
//! [`SimOptions::partners`], each with its own SAM app, admin, refresh token
//! and customers (neighbouring partners share some); every API answers for
//! the partner the caller's token is for. The single-partner accessors
//! describe partner 0; [`SimHandle::partner`] the others.
//!
//! # Layout
//!
//! One folder or file per simulated service, above the state they share;
//! no module imports one that imports it back (`.ci/layers`).
//!
//! The services, each with its own router, state, error bodies and fault
//! answers:
//! - `entra/`: Entra ID, the login origin (token endpoint and every grant,
//!   `/authorize` + PKCE, device code, client secrets and assertions,
//!   workload identity federation, discovery, AADSTS errors) and the
//!   managed identity endpoint; what it remembers is `entra/state.rs`
//! - `keyvault/`: Key Vault secrets; the stored versions are `store.rs`
//! - `graph/`: Microsoft Graph v1.0 (directory, Microsoft 365, GDAP, apps)
//! - `arm/`: Azure Resource Manager subscriptions, `arm/cost_management.rs`
//!   (Cost Management's query) and `arm/resource_graph/` (Resource Graph),
//!   both served on ARM's origin
//! - `partner_center.rs`: Partner Center's customer list
//!
//! Around them:
//! - `server/`: binding, TLS and plain-HTTP accept loops, and
//!   `instrument.rs`, which records each request, adds latency and applies
//!   injected faults before the service sees it
//! - `admin/`: the plain-HTTP admin API for scripts
//! - `files/`: the state directory (CA, secrets, certificates, the rotated
//!   federated token) and the tenantwatch config the simulator writes
//! - `truth.rs`: the ground truth tests compare the daemon's metrics with
//! - `cli.rs`: `tenantwatch sim`
//!
//! What they share:
//! - `state.rs`: the state every service reads (world, clock, signer,
//!   request log, faults, latency, removed customers, issued secrets)
//! - `world.rs`: the seeded directory (partners, customers, apps, admins);
//!   `estate/`: what each tenant owns (licences, Azure resources, GDAP)
//! - `faults.rs`: the fault registry; `limits.rs`: Microsoft's published
//!   throttling limits as buckets; `requests.rs`: the request log;
//!   `service.rs`: the names of the services they count by
//! - `bearer.rs`: how resources validate Entra's access tokens;
//!   `resources.rs`: the resource APIs, their audiences and scopes;
//!   `jwt.rs`: the token signer and parser
//! - `http.rs`: request parsing and JSON responses; `clock.rs`: the
//!   simulated clock and Microsoft's time formats; `errors.rs`: [`SimError`]
//!
//! Tests sit beside what they exercise (`tests.rs` or a `tests/` folder);
//! `test_support.rs` holds what the end-to-end ones share.

mod admin;
mod arm;
mod bearer;
mod cae;
mod cli;
mod clock;
mod entra;
mod errors;
mod estate;
mod faults;
mod files;
mod graph;
mod http;
mod jwt;
mod keyvault;
mod limits;
mod partner_center;
mod requests;
mod resources;
mod server;
mod service;
mod state;
mod truth;
mod world;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use tenantwatch_common::sync::lock;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use cli::{run_cli, SimArgs};
pub use errors::SimError;
pub use faults::Fault;
pub use limits::Limit;
pub use requests::RequestRecord;
pub use service::Service;
pub use truth::{
    AccessAssignmentTruth, AdvisorCount, AppTruth, CredentialTruth, DirectorySubscriptionTruth,
    GdapTruth, GroundTruth, HealthCount, LicenseTruth, PartnerTruth, ResourceCount, RoleTruth,
    ServiceTruth, SubscriptionTruth, TenantTruth, ThrottledTruth,
};
pub use world::{SimPartner, SimTenant};

use arm::resource_graph::ResourceGraph;
use entra::state::{Credentials, Entra};
use files::StateFiles;
use state::{Origins, SimState};

/// Seed used when none is given, so default runs are reproducible.
pub const DEFAULT_SEED: u64 = 20_250_101;

/// Name of the Key Vault secret holding the partner's refresh token
/// (partner 0's when there are several).
pub const SECRET_NAME: &str = "tenantwatch-refresh-token";

/// Most partners one simulator serves (`--partners`).
pub const MAX_PARTNERS: usize = 100;
/// Most customers the simulator generates, every partner's together.
pub const MAX_CUSTOMERS: usize = 100_000;

/// Name of the Key Vault secret holding partner `k`'s refresh token:
/// [`SECRET_NAME`] for partner 0, `{SECRET_NAME}-{k}` for the others (one
/// vault holds them all).
pub fn partner_secret_name(k: usize) -> String {
    match k {
        0 => SECRET_NAME.to_string(),
        k => format!("{SECRET_NAME}-{k}"),
    }
}

const CA_FILE: &str = "ca.pem";

/// How to start the simulator.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Number of customer tenants of each partner (default 25).
    pub tenants: usize,
    /// Number of partner tenants (default 1, at most [`MAX_PARTNERS`]).
    /// Partner k has customers `k·(T−S)+1 ..= k·(T−S)+T` (T = `tenants`,
    /// S = T/10), so neighbouring partners share S customers.
    pub partners: usize,
    /// Seed for tenant ids, names and domains.
    pub seed: u64,
    /// Address of the login origin. Port 0 gives every service a random
    /// port; port P gives login P, keyvault P+1, graph P+2, arm P+3,
    /// partner center P+4, and on loopback the managed identity endpoint
    /// P+5 and the admin API P+6.
    pub listen: SocketAddr,
    /// Where `ca.pem` and the secret files go; empty means a new directory
    /// under the system temp dir (left in place after shutdown).
    pub state_dir: PathBuf,
    /// Delay injected before every request is answered.
    pub latency: Duration,
    /// Rows per Resource Graph page (default 4, so most tenants' data
    /// takes three pages or more; `$top` can only lower it).
    pub resource_graph_page_size: usize,
    /// Fixed access-token lifetime; `None` gives Entra's (3300–3599 s).
    pub access_token_lifetime: Option<Duration>,
    /// An all-green estate: no licence, subscription, service-health, GDAP
    /// or app-credential trouble (the default has some of each, for alerts
    /// and the status page to show).
    pub healthy: bool,
    /// Enforce Microsoft's published throttling limits (default off;
    /// docs/simulator.md lists them).
    pub limits: bool,
    /// Multiplies every published limit (default 1; 0.01 makes them small
    /// enough for a test).
    pub limit_scale: f64,
}

/// Resource Graph rows per page unless [`SimOptions`] says otherwise.
pub const DEFAULT_RESOURCE_GRAPH_PAGE_SIZE: usize = 4;

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            tenants: 25,
            partners: 1,
            seed: DEFAULT_SEED,
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            state_dir: PathBuf::new(),
            latency: Duration::ZERO,
            access_token_lifetime: None,
            resource_graph_page_size: DEFAULT_RESOURCE_GRAPH_PAGE_SIZE,
            healthy: false,
            limits: false,
            limit_scale: 1.0,
        }
    }
}

/// Entry point: `Sim::start(options)`.
pub struct Sim;

impl Sim {
    /// Binds every service, writes the CA and secret files, seeds the vault
    /// with a valid refresh token for each partner, and starts serving.
    pub async fn start(opts: SimOptions) -> Result<SimHandle, SimError> {
        let partners = opts.partners;
        if !(1..=MAX_PARTNERS).contains(&partners) {
            return Err(SimError::InvalidOption(format!(
                "partners must be 1 to {MAX_PARTNERS}, not {partners}"
            )));
        }
        // Every partner's window of customers is generated once: bounded so
        // a typo cannot overflow or ask for millions of estates.
        if world::customer_count(opts.tenants, partners) > MAX_CUSTOMERS {
            return Err(SimError::InvalidOption(format!(
                "{partners} partners of {} customers each make more than {MAX_CUSTOMERS} customers",
                opts.tenants
            )));
        }
        let state_dir = files::prepare_state_dir(&opts.state_dir)?;
        let listeners = server::bind_all(opts.listen).await?;
        let mut addrs = Vec::with_capacity(listeners.len());
        for (l, requested) in &listeners {
            let addr = l.local_addr().map_err(|source| SimError::Bind {
                addr: *requested,
                source,
            })?;
            addrs.push(addr);
        }
        let origins = Origins {
            login: server::origin(addrs[0]),
            keyvault: server::origin(addrs[1]),
            graph: server::origin(addrs[2]),
            arm: server::origin(addrs[3]),
            partner_center: server::origin(addrs[4]),
            managed_identity: server::plain_origin(addrs[5]),
            admin: server::plain_origin(addrs[6]),
        };

        let pki = server::tls::generate()?;
        let ca_file = state_dir.join(CA_FILE);
        files::config::write_atomic(&ca_file, pki.ca_pem.as_bytes(), 0o644)?;

        // Key generation is CPU-bound; keep it off the async workers.
        let keys = tokio::task::spawn_blocking(entra::keys::key_set)
            .await
            .map_err(|e| SimError::Crypto(e.to_string()))??;
        let creds = Credentials {
            identity_cert: entra::certs::AppCertificate::issue(
                &keys.identity,
                "tenantwatch vault reader",
            )?,
            partner_cert: entra::certs::AppCertificate::issue(&keys.partner, "tenantwatch SAM")?,
            issuer: entra::federation::Issuer::new(&origins.login, keys.federation),
            identity_header: uuid::Uuid::new_v4().to_string(),
        };

        let mut world = world::World::with_partners(opts.seed, opts.tenants, partners);
        let start = chrono::Utc::now().timestamp();
        let mut estate = estate::Estate::generate(
            &world,
            start,
            &creds.partner_cert.thumbprint_hex(),
            &creds.identity_cert.thumbprint_hex(),
        );
        if opts.healthy {
            world.heal();
            estate.heal(start);
        }
        let state = Arc::new(SimState::new(world, estate, origins, opts.latency));
        state.limits.configure(opts.limits, opts.limit_scale);
        let entra = Arc::new(Entra::new(state.clone(), creds));
        entra.set_token_lifetime(opts.access_token_lifetime);
        let now = state.clock.now_unix();
        let keyvault = Arc::new(keyvault::KeyVault::new(state.clone()));
        for p in &state.world.partners {
            let rt = entra::user_tokens::issue_consent_refresh_token(&entra, p);
            keyvault.set(&partner_secret_name(p.index), &rt, now);
        }
        let resource_graph = Arc::new(ResourceGraph::new(opts.resource_graph_page_size));

        let files = StateFiles::new(&state_dir);
        files.write(&entra)?;

        let cancel = CancellationToken::new();
        let routers: [(Router, Service); 5] = [
            (entra::router(entra.clone()), Service::Token),
            (keyvault::router(keyvault.clone()), Service::KeyVault),
            (graph::router(state.clone()), Service::Graph),
            (
                arm::router(arm::Arm {
                    sim: state.clone(),
                    resource_graph: resource_graph.clone(),
                }),
                Service::Arm,
            ),
            (
                partner_center::router(state.clone(), entra.clone()),
                Service::PartnerCenter,
            ),
        ];
        let mut listeners = listeners.into_iter().map(|(l, _)| l);
        let mut tasks: Vec<JoinHandle<()>> = listeners
            .by_ref()
            .take(5)
            .zip(routers)
            .map(|(listener, (router, service))| {
                let router = server::instrument::instrument(router, state.clone(), service);
                server::tls::serve(listener, pki.acceptor.clone(), router, cancel.clone())
            })
            .collect();
        if let (Some(mi), Some(adm)) = (listeners.next(), listeners.next()) {
            let mi_router = server::instrument::instrument(
                entra::managed_identity::router(entra.clone()),
                state.clone(),
                Service::ManagedIdentity,
            );
            tasks.push(server::plain::serve(mi, mi_router, cancel.clone()));
            tasks.push(server::plain::serve(
                adm,
                admin::router(admin::Admin {
                    sim: state.clone(),
                    entra: entra.clone(),
                    keyvault: keyvault.clone(),
                }),
                cancel.clone(),
            ));
        }
        tasks.push(files::refresh_federated_token(
            entra.clone(),
            files.federated_token.clone(),
            cancel.clone(),
        ));
        tracing::info!(
            login = %state.origins.login,
            keyvault = %state.origins.keyvault,
            graph = %state.origins.graph,
            arm = %state.origins.arm,
            partner_center = %state.origins.partner_center,
            managed_identity = %state.origins.managed_identity,
            admin = %state.origins.admin,
            tenants = opts.tenants,
            partners,
            "simulated Microsoft cloud started"
        );
        Ok(SimHandle {
            inner: Arc::new(Inner {
                state,
                entra,
                keyvault,
                resource_graph,
                ca_file,
                ca_pem: pki.ca_pem,
                state_dir,
                files,
                cancel,
                tasks: Mutex::new(tasks),
            }),
        })
    }
}

/// A running simulator. Cheap to clone; all methods take `&self` except
/// [`SimHandle::shutdown`].
#[derive(Clone)]
pub struct SimHandle {
    inner: Arc<Inner>,
}

struct Inner {
    state: Arc<SimState>,
    entra: Arc<Entra>,
    keyvault: Arc<keyvault::KeyVault>,
    resource_graph: Arc<ResourceGraph>,
    ca_file: PathBuf,
    ca_pem: String,
    state_dir: PathBuf,
    files: StateFiles,
    cancel: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

// Deliberately lists no secrets.
impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let o = &self.inner.state.origins;
        f.debug_struct("SimHandle")
            .field("login", &o.login)
            .field("keyvault", &o.keyvault)
            .field("graph", &o.graph)
            .field("arm", &o.arm)
            .field("partner_center", &o.partner_center)
            .field("managed_identity", &o.managed_identity)
            .field("admin", &o.admin)
            .field("state_dir", &self.inner.state_dir)
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    fn state(&self) -> &SimState {
        &self.inner.state
    }

    /// Login origin, bare (`https://127.0.0.1:P`): msal takes the first path
    /// segment of an authority as the tenant.
    pub fn login_url(&self) -> String {
        self.state().origins.login.clone()
    }

    /// Key Vault origin root (the vault URL).
    pub fn keyvault_url(&self) -> String {
        self.state().origins.keyvault.clone()
    }

    /// Microsoft Graph origin.
    pub fn graph_url(&self) -> String {
        self.state().origins.graph.clone()
    }

    /// Azure Resource Manager origin.
    pub fn arm_url(&self) -> String {
        self.state().origins.arm.clone()
    }

    /// Partner Center origin.
    pub fn partner_center_url(&self) -> String {
        self.state().origins.partner_center.clone()
    }

    /// Path of the CA certificate (PEM) every service's certificate chains to.
    pub fn ca_file(&self) -> &Path {
        &self.inner.ca_file
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.inner.ca_pem.clone()
    }

    /// Directory holding the CA and secret files.
    pub fn state_dir(&self) -> &Path {
        &self.inner.state_dir
    }

    /// The partner's tenant id (partner 0's).
    pub fn partner_tenant_id(&self) -> String {
        self.state().world.default_partner().tenant.id.clone()
    }

    /// Client id of the partner's multi-tenant SAM app (partner 0's).
    pub fn partner_client_id(&self) -> String {
        self.state()
            .world
            .default_partner()
            .sam_app
            .client_id
            .clone()
    }

    /// Client secret of the SAM app (partner 0's).
    pub fn partner_client_secret(&self) -> String {
        self.state().world.default_partner().sam_app.secret.clone()
    }

    /// How many partner tenants the simulator serves.
    pub fn partner_count(&self) -> usize {
        self.state().world.partners.len()
    }

    /// Partner `k` (0 is the one the single-partner accessors describe):
    /// its tenant, SAM app, secret file, vault secret and customers now.
    pub fn partner(&self, k: usize) -> Option<SimPartner> {
        let s = self.state();
        let p = s.world.partner(k)?;
        let tenants = |ts: Vec<&world::Tenant>| -> Vec<SimTenant> {
            ts.into_iter().map(world::Tenant::sim_tenant).collect()
        };
        Some(SimPartner {
            index: k,
            tenant_id: p.tenant.id.clone(),
            client_id: p.sam_app.client_id.clone(),
            client_secret: p.sam_app.secret.clone(),
            client_secret_file: self.inner.files.partner_secret_of(k),
            secret_name: partner_secret_name(k),
            customers: tenants(s.pc_customers(k)),
            gdap_only: tenants(s.gdap_only_tenants(k)),
        })
    }

    /// Tenant of the single-tenant service identity that reads Key Vault
    /// (the partner's tenant, where MSPs register it).
    pub fn identity_tenant_id(&self) -> String {
        self.state().world.identity_app.home_tenant.clone()
    }

    /// Client id of the service identity.
    pub fn identity_client_id(&self) -> String {
        self.state().world.identity_app.client_id.clone()
    }

    /// Client secret of the service identity.
    pub fn identity_client_secret(&self) -> String {
        self.state().world.identity_app.secret.clone()
    }

    /// Name of the vault secret pre-seeded with a valid partner refresh token
    /// (partner 0's; [`partner_secret_name`] names the others').
    pub fn secret_name(&self) -> String {
        SECRET_NAME.to_string()
    }

    /// The newest value of a vault secret (e.g. to see which refresh token
    /// the daemon stored last).
    pub fn stored_secret(&self, name: &str) -> Option<String> {
        self.inner.keyvault.latest_value(name)
    }

    /// The customer tenants Partner Center lists now, in its order
    /// (partner 0's).
    pub fn customers(&self) -> Vec<SimTenant> {
        self.state()
            .pc_customers(0)
            .into_iter()
            .map(world::Tenant::sim_tenant)
            .collect()
    }

    /// Requests a service received, for one tenant or (`None`) all. For
    /// [`Service::Token`] the tenant is the one in the path (domains resolved
    /// to ids); for resources it is the presented token's `tid`. Agrees
    /// with [`SimHandle::requests`].
    pub fn request_count(&self, service: Service, tenant: Option<&str>) -> u64 {
        self.state().request_count(service, tenant)
    }

    /// Every request received, in arrival order (the newest 200 000), with
    /// the tenant attributed as for [`SimHandle::request_count`].
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state().requests.records()
    }

    /// 429s the throttling limits sent, per limit (injected throttle
    /// faults not included).
    pub fn throttled(&self) -> Vec<ThrottledTruth> {
        truth::throttled(self.state())
    }

    /// 429s the throttling limits of `service` sent.
    pub fn throttled_count(&self, service: Service) -> u64 {
        self.throttled()
            .iter()
            .filter(|t| t.service == service)
            .map(|t| t.count)
            .sum()
    }

    /// Switches the published throttling limits on or off and sets their
    /// scale; every bucket starts full again.
    pub fn set_limits(&self, enabled: bool, scale: f64) {
        self.state().limits.configure(enabled, scale);
    }

    /// What every API reports for every tenant at the sim's current time.
    pub fn ground_truth(&self) -> GroundTruth {
        truth::build(self.state())
    }

    /// The next `count` requests to `service` (any tenant) get `fault`,
    /// then it answers normally again. A `Hang` so consumed lasts until
    /// [`SimHandle::clear_faults`] or the client gives up.
    pub fn inject_fault_next(&self, service: Service, fault: Fault, count: usize) {
        self.state().faults.set_next(service, fault, count);
    }

    /// Every request to `service` for one tenant gets `fault` until
    /// [`SimHandle::clear_tenant_faults`]: resource requests whose token
    /// `tid` is the tenant, token requests whose path names it. `tenant_id`
    /// may also be a verified domain.
    pub fn inject_tenant_fault(&self, tenant_id: &str, service: Service, fault: Fault) {
        let id = self.tenant_key(tenant_id);
        self.state().faults.set_tenant(&id, service, fault);
    }

    /// Removes every fault of a tenant; requests it holds hung complete.
    pub fn clear_tenant_faults(&self, tenant_id: &str) {
        let id = self.tenant_key(tenant_id);
        self.state().faults.clear_tenant(&id);
    }

    /// Takes a customer out of Partner Center and ends its GDAP
    /// relationships (they disappear from the list), for every partner that
    /// has it; they can no longer get tokens for it (AADSTS50020). Works for
    /// GDAP-only tenants too.
    pub fn remove_customer(&self, tenant_id: &str) {
        let id = self.tenant_key(tenant_id);
        self.state().remove_customer(&id);
    }

    /// Rows per Resource Graph page.
    pub fn resource_graph_page_size(&self) -> usize {
        self.inner.resource_graph.page_size
    }

    /// Pages the built-in Resource Graph query takes for a tenant (at least
    /// one, even when it has no rows).
    pub fn resource_graph_pages(&self, tenant_id: &str) -> usize {
        arm::resource_graph::builtin_pages(
            self.state(),
            &self.inner.resource_graph,
            &self.tenant_key(tenant_id),
        )
    }

    /// Every client secret, refresh token, access token, id token and vault
    /// secret value the simulator issued or holds, for leak checks.
    pub fn issued_secrets(&self) -> Vec<String> {
        self.state().issued_secrets()
    }

    /// Fixes the lifetime of access tokens issued from now on (`None`: Entra's),
    /// CAE tokens included unless `set_cae_token_lifetime` fixed theirs.
    pub fn set_access_token_lifetime(&self, d: Option<Duration>) {
        self.inner.entra.set_token_lifetime(d);
    }

    /// Sets the delay injected before every response.
    pub fn set_latency(&self, d: Duration) {
        self.state().set_latency(d);
    }

    /// Makes token requests at `/{tenant}/…` fail with AADSTS `aadsts` (the
    /// status and `error` value Entra uses for that code).
    /// `tenant_id` may also be a verified domain.
    pub fn inject_token_error(&self, tenant_id: &str, aadsts: u32) {
        let id = self.tenant_key(tenant_id);
        self.inner.entra.set_token_error(&id, aadsts);
    }

    /// Undoes [`SimHandle::inject_token_error`] and
    /// [`SimHandle::inject_token_throttle`] for a tenant.
    pub fn clear_token_error(&self, tenant_id: &str) {
        let id = self.tenant_key(tenant_id);
        self.inner.entra.clear_token_error(&id);
    }

    /// A tenant's id when `key` names a simulated tenant (id or domain).
    fn tenant_key(&self, key: &str) -> String {
        self.state()
            .world
            .tenant(key)
            .map_or_else(|| key.to_string(), |t| t.id.clone())
    }

    /// Moves the simulated clock forward (token lifetimes, 90-day refresh
    /// token inactivity, secret timestamps).
    pub fn advance_clock(&self, by: Duration) {
        self.state().clock.advance(by);
    }

    /// Writes a tenantwatch config for a `custom` cloud pointing at this
    /// simulator; `listen` becomes `[server] listen` when given. One partner
    /// is a `[partner]` section; several are `[[partners]]` entries named
    /// `partner-0`, `partner-1`, ….
    pub fn write_config(&self, path: &Path, listen: Option<&str>) -> Result<(), SimError> {
        let s = self.state();
        let o = &s.origins;
        let partners = s
            .world
            .partners
            .iter()
            .enumerate()
            .map(|(k, p)| files::config::PartnerInputs {
                name: format!("partner-{k}"),
                tenant_id: p.tenant.id.clone(),
                client_id: p.sam_app.client_id.clone(),
                secret_file: self.inner.files.partner_secret_of(k),
                secret_name: partner_secret_name(k),
            })
            .collect();
        let text = files::config::render(&files::config::ConfigInputs {
            login: &o.login,
            graph: &o.graph,
            arm: &o.arm,
            partner_center: &o.partner_center,
            keyvault: &o.keyvault,
            ca_file: &self.inner.ca_file,
            partners,
            identity_tenant_id: &s.world.identity_app.home_tenant,
            identity_client_id: &s.world.identity_app.client_id,
            identity_secret_file: &self.inner.files.identity_secret,
            listen,
            admin: &o.admin,
            managed_identity: &o.managed_identity,
            identity_certificate: &self.inner.files.identity_cert,
            partner_certificate: &self.inner.files.partner_cert,
            federated_token_file: &self.inner.files.federated_token,
        })?;
        files::config::write_atomic(path, text.as_bytes(), 0o644)
    }

    /// Current simulated time, unix seconds.
    pub fn now(&self) -> i64 {
        self.state().clock.now_unix()
    }

    /// Revokes every partner-admin refresh token issued so far (AADSTS50173
    /// from now on), as an admin's "Revoke sessions" or a password reset
    /// does. Tokens from a later consent (authorization code, device code)
    /// work. Partner 0's admin; [`SimHandle::revoke_partner_refresh_tokens`]
    /// for another.
    pub fn revoke_refresh_tokens(&self) {
        self.revoke_partner_refresh_tokens(0);
    }

    /// [`SimHandle::revoke_refresh_tokens`] for partner `k`'s admin only;
    /// the other partners' tokens keep working. `false` if there is no
    /// partner `k`.
    pub fn revoke_partner_refresh_tokens(&self, k: usize) -> bool {
        match self.state().world.partner(k) {
            Some(p) => {
                self.inner.entra.revoke_refresh_tokens(&p.admin.oid);
                true
            }
            None => false,
        }
    }

    /// A critical event in one tenant that leaves refresh tokens valid (a
    /// Conditional Access policy change): Graph and ARM answer its CAE tokens
    /// issued before now with a claims challenge. (`revoke_refresh_tokens`
    /// is a critical event for the revoked admin, in every tenant.)
    pub fn cae_event(&self, tenant_id: &str) {
        let now = self.state().clock.now_unix();
        self.state().cae.event(Some(tenant_id), now);
    }

    /// Fixes the lifetime of CAE access tokens (`None`: Entra's 20–28 h).
    pub fn set_cae_token_lifetime(&self, d: Option<Duration>) {
        self.inner.entra.set_cae_token_lifetime(d);
    }

    /// Makes the next interactive sign-in (authorization code or device
    /// code) complete without MFA: its tokens, and every token redeemed from
    /// its refresh token, carry `amr: ["pwd"]`, which Partner Center refuses.
    pub fn next_sign_in_without_mfa(&self) {
        self.inner.entra.next_sign_in_without_mfa();
    }

    /// Whether the token endpoint would accept this refresh token now
    /// (known, not revoked, not past 90 days of inactivity).
    pub fn refresh_token_valid(&self, rt: &str) -> bool {
        entra::user_tokens::check_refresh_token(&self.inner.entra, rt).is_ok()
    }

    /// Expires an app's client secret: using it answers AADSTS7000222
    /// (401 `invalid_client`). Unknown client ids are ignored.
    pub fn expire_client_secret(&self, client_id: &str) {
        if let Some(app) = self.state().world.app(client_id) {
            self.inner.entra.expire_secret(&app.client_id);
        }
    }

    /// Makes a service answer every request with `fault`, for `window` of
    /// real time or (`None`) until [`SimHandle::clear_faults`]. Faulted
    /// requests are still counted. `Throttle` answers with the service's
    /// real 429 body and `Retry-After`; `Hang` holds requests open until
    /// the fault ends.
    pub fn inject_fault(&self, service: Service, fault: Fault, window: Option<Duration>) {
        self.state().faults.set(service, fault, window);
    }

    /// `fraction` (0..=1) of the requests to `service` get `fault`, evenly
    /// spread and counted rather than drawn (0.05: every 20th request), until
    /// [`SimHandle::clear_faults`]. One rate per kind of fault (status,
    /// throttle, hang); a new one replaces the kind's, `0.0` removes it. A
    /// `Hang` so given lasts until `clear_faults` or the client gives up.
    pub fn inject_fault_rate(&self, service: Service, fault: Fault, fraction: f64) {
        self.state().faults.set_rate(service, fault, fraction);
    }

    /// Removes a service's fault, and pending [`SimHandle::inject_fault_next`]
    /// and [`SimHandle::inject_fault_rate`] ones.
    pub fn clear_faults(&self, service: Service) {
        self.state().faults.clear(service);
    }

    /// Makes token requests at `/{tenant}/…` answer 429 with this
    /// `Retry-After` (plain-text body, as Entra's throttling does). Cleared
    /// by [`SimHandle::clear_token_error`].
    pub fn inject_token_throttle(&self, tenant_id: &str, retry_after_secs: u64) {
        let id = self.tenant_key(tenant_id);
        self.inner.entra.set_token_throttle(&id, retry_after_secs);
    }

    /// Approves a pending device code as if the partner admin had entered
    /// `user_code` at the verification page; `false` if no such pending code.
    pub fn approve_device_code(&self, user_code: &str) -> bool {
        let now = self.now();
        self.inner.entra.device_codes.decide(user_code, true, now)
    }

    /// Declines a pending device code (`authorization_declined` on the next poll).
    pub fn deny_device_code(&self, user_code: &str) -> bool {
        let now = self.now();
        self.inner.entra.device_codes.decide(user_code, false, now)
    }

    /// PEM file (certificate, then PKCS#8 RSA-2048 private key; mode 0600)
    /// registered as a credential of the service identity app.
    pub fn identity_certificate(&self) -> PathBuf {
        self.inner.files.identity_cert.clone()
    }

    /// The same for the multi-tenant SAM (partner) app.
    pub fn partner_certificate(&self) -> PathBuf {
        self.inner.files.partner_cert.clone()
    }

    /// Upper-case hex SHA-1 thumbprint of [`SimHandle::identity_certificate`],
    /// as the portal shows it (msal's `thumbprint`).
    pub fn identity_certificate_thumbprint(&self) -> String {
        self.inner.entra.creds.identity_cert.thumbprint_hex()
    }

    /// Upper-case hex SHA-1 thumbprint of [`SimHandle::partner_certificate`].
    pub fn partner_certificate_thumbprint(&self) -> String {
        self.inner.entra.creds.partner_cert.thumbprint_hex()
    }

    /// `http://127.0.0.1:P/metadata/identity/oauth2/token`: IMDS. Its origin
    /// is what azure-identity's `AZURE_POD_IDENTITY_AUTHORITY_HOST` takes.
    pub fn imds_url(&self) -> String {
        format!(
            "{}/metadata/identity/oauth2/token",
            self.state().origins.managed_identity
        )
    }

    /// `(IDENTITY_ENDPOINT, IDENTITY_HEADER)` of the App Service managed
    /// identity endpoint (same listener as IMDS).
    pub fn app_service_identity(&self) -> (String, String) {
        let s = self.state();
        (
            format!("{}/msi/token", s.origins.managed_identity),
            self.inner.entra.creds.identity_header.clone(),
        )
    }

    /// A fresh Kubernetes service-account token (RS256, `iss` the simulated
    /// OIDC issuer, `sub` `system:serviceaccount:tenantwatch:tenantwatch`,
    /// `aud` `api://AzureADTokenExchange`, valid an hour of wall-clock time)
    /// that the service identity's federated credential trusts.
    pub fn federated_token(&self) -> String {
        files::new_federated_token(&self.inner.entra).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "sim: cannot sign a federated token");
            String::new()
        })
    }

    /// File holding a current federated token (refreshed every 10 minutes),
    /// for `AZURE_FEDERATED_TOKEN_FILE`.
    pub fn federated_token_file(&self) -> PathBuf {
        self.inner.files.federated_token.clone()
    }

    /// `iss` of federated tokens (the issuer URL of the federated credential).
    pub fn federation_issuer(&self) -> String {
        self.inner.entra.creds.issuer.url().to_string()
    }

    /// Plain-HTTP admin API origin on loopback (`http://127.0.0.1:P`).
    pub fn admin_url(&self) -> String {
        self.state().origins.admin.clone()
    }

    /// Stops every service and waits for the accept loops to end. Other
    /// clones of the handle stop working too.
    pub async fn shutdown(self) {
        self.inner.cancel.cancel();
        let tasks = std::mem::take(&mut *lock(&self.inner.tasks));
        for t in tasks {
            let _ = t.await;
        }
    }
}

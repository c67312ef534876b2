//! A simulated Microsoft public cloud — Entra ID token endpoint, Key Vault,
//! Microsoft Graph, Azure Resource Manager and Partner Center — faithful
//! enough that Microsoft's own client libraries (msal, azure-identity,
//! azure-keyvault-secrets) work against it. Each service has its own HTTPS
//! origin, served with a CA the simulator generates and writes to disk.
//!
//! Start it with [`Sim::start`]; stop it with [`SimHandle::shutdown`] (or by
//! dropping every clone of the handle, which cancels the servers without
//! waiting for them).

mod arm;
mod bearer;
mod cli;
mod clock;
mod config_file;
mod data;
mod entra;
mod errors;
mod graph;
mod http;
mod jwt;
mod keyvault;
mod partner_center;
mod resources;
mod state;
mod tls;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use cli::{run_cli, SimArgs};
pub use data::SimTenant;
pub use errors::SimError;

use state::{lock, Origins, SimState};

/// Seed used when none is given, so default runs are reproducible.
pub const DEFAULT_SEED: u64 = 20_250_101;

/// Name of the Key Vault secret holding the partner's refresh token.
pub const SECRET_NAME: &str = "tenantwatch-refresh-token";

const PARTNER_SECRET_FILE: &str = "partner-client-secret";
const IDENTITY_SECRET_FILE: &str = "keyvault-client-secret";
const CA_FILE: &str = "ca.pem";

/// How to start the simulator.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Number of customer tenants (default 25).
    pub tenants: usize,
    /// Seed for tenant ids, names and domains.
    pub seed: u64,
    /// Address of the login origin. Port 0 gives every service a random
    /// port; port P gives login P, keyvault P+1, graph P+2, arm P+3 and
    /// partner center P+4.
    pub listen: SocketAddr,
    /// Where `ca.pem` and the secret files go; empty means a new directory
    /// under the system temp dir (left in place after shutdown).
    pub state_dir: PathBuf,
    /// Delay injected before every request is answered.
    pub latency: Duration,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            tenants: 25,
            seed: DEFAULT_SEED,
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            state_dir: PathBuf::new(),
            latency: Duration::ZERO,
        }
    }
}

/// One of the simulated services, for request counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// The Entra ID token endpoint (and discovery documents).
    Token,
    /// Key Vault secrets.
    KeyVault,
    /// Microsoft Graph.
    Graph,
    /// Azure Resource Manager.
    Arm,
    /// Partner Center.
    PartnerCenter,
}

/// Entry point: `Sim::start(options)`.
pub struct Sim;

impl Sim {
    /// Binds every service, writes the CA and secret files, seeds the vault
    /// with a valid partner refresh token, and starts serving.
    pub async fn start(opts: SimOptions) -> Result<SimHandle, SimError> {
        let state_dir = prepare_state_dir(&opts.state_dir)?;
        let listeners = bind_all(opts.listen).await?;
        let mut addrs = Vec::with_capacity(listeners.len());
        for (l, requested) in &listeners {
            let addr = l.local_addr().map_err(|source| SimError::Bind {
                addr: *requested,
                source,
            })?;
            addrs.push(addr);
        }
        let origins = Origins {
            login: origin(addrs[0]),
            keyvault: origin(addrs[1]),
            graph: origin(addrs[2]),
            arm: origin(addrs[3]),
            partner_center: origin(addrs[4]),
        };

        let pki = tls::generate()?;
        let ca_file = state_dir.join(CA_FILE);
        config_file::write_atomic(&ca_file, pki.ca_pem.as_bytes(), 0o644)?;

        let world = data::World::generate(opts.seed, opts.tenants);
        let state = Arc::new(SimState::new(
            world,
            origins,
            keyvault::Vault::default(),
            opts.latency,
        ));
        let rt = entra::issue_consent_refresh_token(&state);
        let now = state.clock.now_unix();
        lock(&state.vault).set(SECRET_NAME, &rt, None, now);

        let partner_secret_file = state_dir.join(PARTNER_SECRET_FILE);
        let identity_secret_file = state_dir.join(IDENTITY_SECRET_FILE);
        config_file::write_atomic(
            &partner_secret_file,
            state.world.sam_app.secret.as_bytes(),
            0o600,
        )?;
        config_file::write_atomic(
            &identity_secret_file,
            state.world.identity_app.secret.as_bytes(),
            0o600,
        )?;

        let cancel = CancellationToken::new();
        let routers: [(Router, Service); 5] = [
            (entra::router(state.clone()), Service::Token),
            (keyvault::router(state.clone()), Service::KeyVault),
            (graph::router(state.clone()), Service::Graph),
            (arm::router(state.clone()), Service::Arm),
            (
                partner_center::router(state.clone()),
                Service::PartnerCenter,
            ),
        ];
        let tasks = listeners
            .into_iter()
            .zip(routers)
            .map(|((listener, _), (router, service))| {
                let router = http::instrument(router, state.clone(), service);
                tls::serve(listener, pki.acceptor.clone(), router, cancel.clone())
            })
            .collect();
        tracing::info!(
            login = %state.origins.login,
            keyvault = %state.origins.keyvault,
            graph = %state.origins.graph,
            arm = %state.origins.arm,
            partner_center = %state.origins.partner_center,
            tenants = opts.tenants,
            "simulated Microsoft cloud started"
        );
        Ok(SimHandle {
            inner: Arc::new(Inner {
                state,
                ca_file,
                ca_pem: pki.ca_pem,
                state_dir,
                partner_secret_file,
                identity_secret_file,
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
    ca_file: PathBuf,
    ca_pem: String,
    state_dir: PathBuf,
    partner_secret_file: PathBuf,
    identity_secret_file: PathBuf,
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

    /// The partner's tenant id.
    pub fn partner_tenant_id(&self) -> String {
        self.state().world.partner.id.clone()
    }

    /// Client id of the partner's multi-tenant SAM app.
    pub fn partner_client_id(&self) -> String {
        self.state().world.sam_app.client_id.clone()
    }

    /// Client secret of the SAM app.
    pub fn partner_client_secret(&self) -> String {
        self.state().world.sam_app.secret.clone()
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

    /// Name of the vault secret pre-seeded with a valid partner refresh token.
    pub fn secret_name(&self) -> String {
        SECRET_NAME.to_string()
    }

    /// The newest value of a vault secret (e.g. to see which refresh token
    /// the daemon stored last).
    pub fn stored_secret(&self, name: &str) -> Option<String> {
        lock(&self.state().vault).latest_value(name)
    }

    /// The customer tenants, in Partner Center order.
    pub fn customers(&self) -> Vec<SimTenant> {
        self.state().world.sim_tenants()
    }

    /// Requests a service received, for one tenant or (`None`) all. For
    /// [`Service::Token`] the tenant is the one in the path (domains resolved
    /// to ids); for resources it is the presented token's `tid`.
    pub fn request_count(&self, service: Service, tenant: Option<&str>) -> u64 {
        self.state().request_count(service, tenant)
    }

    /// Every client secret, refresh token, access token, id token and vault
    /// secret value the simulator issued or holds, for leak checks.
    pub fn issued_secrets(&self) -> Vec<String> {
        self.state().issued_secrets()
    }

    /// Sets the delay injected before every response.
    pub fn set_latency(&self, d: Duration) {
        self.state().set_latency(d);
    }

    /// Makes token requests at `/{tenant}/…` fail with AADSTS `aadsts` (the
    /// status and `error` value Entra uses for that code).
    pub fn inject_token_error(&self, tenant_id: &str, aadsts: u32) {
        self.state().set_token_error(tenant_id, aadsts);
    }

    /// Undoes [`SimHandle::inject_token_error`] for a tenant.
    pub fn clear_token_error(&self, tenant_id: &str) {
        self.state().clear_token_error(tenant_id);
    }

    /// Moves the simulated clock forward (token lifetimes, 90-day refresh
    /// token inactivity, secret timestamps).
    pub fn advance_clock(&self, by: Duration) {
        self.state().clock.advance(by);
    }

    /// Writes a tenantwatch config for a `custom` cloud pointing at this
    /// simulator; `listen` becomes `[server] listen` when given.
    pub fn write_config(&self, path: &Path, listen: Option<&str>) -> Result<(), SimError> {
        let s = self.state();
        let o = &s.origins;
        let partner = s.world.partner.id.clone();
        let text = config_file::render(&config_file::ConfigInputs {
            login: &o.login,
            graph: &o.graph,
            arm: &o.arm,
            partner_center: &o.partner_center,
            keyvault: &o.keyvault,
            ca_file: &self.inner.ca_file,
            partner_tenant_id: &partner,
            partner_client_id: &s.world.sam_app.client_id,
            partner_secret_file: &self.inner.partner_secret_file,
            identity_tenant_id: &s.world.identity_app.home_tenant,
            identity_client_id: &s.world.identity_app.client_id,
            identity_secret_file: &self.inner.identity_secret_file,
            secret_name: SECRET_NAME,
            listen,
        })?;
        config_file::write_atomic(path, text.as_bytes(), 0o644)
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

fn prepare_state_dir(requested: &Path) -> Result<PathBuf, SimError> {
    let dir = if requested.as_os_str().is_empty() {
        std::env::temp_dir().join(format!(
            "tenantwatch-sim-{}-{}",
            std::process::id(),
            data::random_token(8).to_ascii_lowercase()
        ))
    } else {
        requested.to_path_buf()
    };
    let io = |source| SimError::Io {
        path: dir.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    if requested.as_os_str().is_empty() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
    }
    dir.canonicalize().map_err(io)
}

/// Binds the five services: all on random ports for port 0, otherwise on
/// consecutive ports starting at the requested one.
async fn bind_all(listen: SocketAddr) -> Result<Vec<(TcpListener, SocketAddr)>, SimError> {
    let base = listen.port();
    if base != 0 && base > u16::MAX - 4 {
        return Err(SimError::InvalidOption(format!(
            "listen port {base} leaves no room for the four service ports after it"
        )));
    }
    let mut out = Vec::with_capacity(5);
    for i in 0..5u16 {
        let addr = SocketAddr::new(listen.ip(), if base == 0 { 0 } else { base + i });
        let l = TcpListener::bind(addr)
            .await
            .map_err(|source| SimError::Bind { addr, source })?;
        out.push((l, addr));
    }
    Ok(out)
}

/// `https://host:port` for a bound address; wildcard binds are reached via
/// loopback, which the server certificate covers.
fn origin(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => format!("https://127.0.0.1:{}", addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => {
            format!("https://[{}]:{}", Ipv6Addr::LOCALHOST, addr.port())
        }
        IpAddr::V4(ip) => format!("https://{ip}:{}", addr.port()),
        IpAddr::V6(ip) => format!("https://[{ip}]:{}", addr.port()),
    }
}

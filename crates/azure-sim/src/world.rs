//! The simulated directory: partner tenants, customer tenants, apps, the
//! partner admins and Azure subscriptions, all derived from one seed so every
//! run with the same seed sees the same ids and names.
//!
//! There are one or more partners ([`Partner`]), each with its own tenant,
//! multi-tenant SAM app, admin agent and GDAP-only tenant. Customers are
//! generated once, by index, and each partner owns a window of them
//! ([`World::with_partners`]); neighbouring windows overlap, so a shared
//! customer is one tenant listed by two partners. Partner 0 is the partner a
//! single-partner simulator has always had.

use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;

use rand::distributions::{Alphanumeric, Distribution, Uniform};
use rand::Rng;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// A customer tenant as the rest of the project sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimTenant {
    /// Directory (tenant) id, a GUID.
    pub tenant_id: String,
    /// Company name, e.g. "Contoso Ltd 07".
    pub name: String,
    /// Default (initial) domain, `….onmicrosoft.com`.
    pub domain: String,
}

/// A partner tenant as the rest of the project sees it
/// ([`crate::SimHandle::partner`]).
#[derive(Clone, PartialEq, Eq)]
pub struct SimPartner {
    /// Position among the partners; 0 is the one a single-partner simulator
    /// has, and the number in the names of the others' secrets and files.
    pub index: usize,
    /// The partner's directory (tenant) id.
    pub tenant_id: String,
    /// Client id of its multi-tenant SAM app.
    pub client_id: String,
    /// The SAM app's client secret (left out of `Debug`).
    pub client_secret: String,
    /// File in the state directory holding that secret.
    pub client_secret_file: PathBuf,
    /// Key Vault secret pre-seeded with its refresh token.
    pub secret_name: String,
    /// Its Partner Center customers now, in Partner Center order.
    pub customers: Vec<SimTenant>,
    /// Tenants it reaches through GDAP only.
    pub gdap_only: Vec<SimTenant>,
}

// Deliberately leaves the client secret out.
impl std::fmt::Debug for SimPartner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimPartner")
            .field("index", &self.index)
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("client_secret_file", &self.client_secret_file)
            .field("secret_name", &self.secret_name)
            .field("customers", &self.customers)
            .field("gdap_only", &self.gdap_only)
            .finish()
    }
}

/// One Azure subscription of a tenant.
#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    pub id: String,
    pub display_name: String,
    pub state: &'static str,
}

/// A tenant with everything the services need about it.
#[derive(Debug, Clone)]
pub(crate) struct Tenant {
    pub id: String,
    pub name: String,
    pub domain: String,
    pub created: String,
    pub subscriptions: Vec<Subscription>,
    /// What it is to the partners, so its partners follow from arithmetic
    /// rather than from a list kept per customer.
    pub kind: TenantKind,
}

/// A tenant's place in the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TenantKind {
    /// Partner `k`'s own tenant.
    Partner(usize),
    /// The customer at this position of [`World::customers`] (customer
    /// `pos + 1` in names).
    Customer(usize),
    /// Partner `k`'s GDAP-only tenant.
    GdapOnly(usize),
}

/// One partner: its tenant, its multi-tenant SAM app, the admin agent who
/// consented to it, and which customers it has.
pub(crate) struct Partner {
    /// Position in [`World::partners`].
    pub index: usize,
    pub tenant: Tenant,
    pub sam_app: App,
    pub admin: User,
    /// Its Partner Center customers: `World::customers[customers]`, in
    /// Partner Center order.
    pub customers: Range<usize>,
}

/// An app registration with one client secret.
pub(crate) struct App {
    pub client_id: String,
    pub name: String,
    pub secret: String,
    /// Home tenant; single-tenant apps work nowhere else.
    pub home_tenant: String,
    pub multi_tenant: bool,
}

/// The partner's admin agent who consented to the SAM app.
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub oid: String,
    pub upn: String,
    pub name: String,
}

/// Everything fixed at start-up.
pub(crate) struct World {
    pub seed: u64,
    /// Never empty; partner 0 first.
    pub partners: Vec<Partner>,
    /// Every partner's Partner Center customers, each once, by index (each
    /// partner's are a window of this, [`Partner::customers`]).
    pub customers: Vec<Tenant>,
    /// One per partner, by partner index: a tenant the partner reaches
    /// through an active GDAP relationship although Partner Center does not
    /// list it (e.g. a customer of an indirect reseller), so discovery must
    /// reconcile the two sources.
    pub gdap_only: Vec<Tenant>,
    /// The single-tenant app that reads Key Vault, registered in partner
    /// 0's tenant: one vault holds every partner's refresh token.
    pub identity_app: App,
    /// Every tenant by lower-case id and by lower-case domain: Graph and ARM
    /// look the caller's tenant up on every request, and a scan of 10,000
    /// customers per request was CPU the benchmark's daemon shares.
    index: HashMap<String, TenantKind>,
}

const COMPANIES: &[&str] = &[
    "Contoso",
    "Fabrikam",
    "Northwind Traders",
    "Adventure Works",
    "Tailspin Toys",
    "Wide World Importers",
    "Litware",
    "Proseware",
    "Woodgrove Bank",
    "Alpine Ski House",
    "Coho Winery",
    "Lucerne Publishing",
    "Trey Research",
    "Fourth Coffee",
    "Humongous Insurance",
    "Blue Yonder Airlines",
    "Relecloud",
    "VanArsdel",
    "Wingtip Toys",
    "Datum Corporation",
];

/// Names of partners after the first (which keeps "Tailwind Cloud
/// Partners"); none is a customer company, so domains never collide.
const PARTNERS: &[&str] = &[
    "Southridge IT Services",
    "Bellows Managed Services",
    "First Up Consultants",
    "Munson Cloud Services",
    "Consolidated IT Partners",
];

const SUFFIXES: &[&str] = &["Ltd", "Inc", "GmbH", "BV", "LLC", "plc"];

const SUBSCRIPTION_NAMES: &[&str] = &["Azure plan", "Production", "Dev/Test"];

impl World {
    /// Builds the directory of one partner with `tenants` customers. Ids and
    /// names come from `seed`; client secrets are random per call.
    #[cfg(test)]
    pub fn generate(seed: u64, tenants: usize) -> Self {
        Self::with_partners(seed, tenants, 1)
    }

    /// Builds the directory of `partners` partners (at least one) with
    /// `tenants` customers each. Partner `k` has customers `k·(T−S)+1 ..=
    /// k·(T−S)+T` (T = `tenants`, S = T/10), so neighbouring partners share
    /// S customers and partner 0 has customers 1..=T.
    pub fn with_partners(seed: u64, tenants: usize, partners: usize) -> Self {
        let partners = partners.max(1);
        let step = window_step(tenants);
        let unique = customer_count(tenants, partners);
        let partners: Vec<Partner> = (0..partners)
            .map(|k| partner(seed, k, k * step..k * step + tenants))
            .collect();
        let customers = (1..=unique).map(|i| customer(seed, i)).collect();
        let gdap_only = (0..partners.len())
            .map(|k| gdap_only_tenant(seed, k))
            .collect();
        let identity_app = App {
            client_id: guid(seed, "app/identity"),
            name: "tenantwatch vault reader".into(),
            secret: client_secret(),
            home_tenant: partners[0].tenant.id.clone(),
            multi_tenant: false,
        };
        let mut world = Self {
            seed,
            partners,
            customers,
            gdap_only,
            identity_app,
            index: HashMap::new(),
        };
        world.index = world.build_index();
        world
    }

    /// [`World::index`]; the first tenant with a key keeps it, as a scan in
    /// [`World::all_tenants`] order would find it.
    fn build_index(&self) -> HashMap<String, TenantKind> {
        let mut index = HashMap::new();
        for t in self.all_tenants() {
            for key in [&t.id, &t.domain] {
                index.entry(key.to_ascii_lowercase()).or_insert(t.kind);
            }
        }
        index
    }

    /// The tenant a [`TenantKind`] names.
    fn by_kind(&self, kind: TenantKind) -> Option<&Tenant> {
        match kind {
            TenantKind::Partner(k) => self.partners.get(k).map(|p| &p.tenant),
            TenantKind::Customer(pos) => self.customers.get(pos),
            TenantKind::GdapOnly(k) => self.gdap_only.get(k),
        }
    }

    /// Every subscription `Enabled`, for an all-green estate
    /// ([`crate::SimOptions::healthy`]).
    pub fn heal(&mut self) {
        let tenants = self
            .partners
            .iter_mut()
            .map(|p| &mut p.tenant)
            .chain(&mut self.customers)
            .chain(&mut self.gdap_only);
        for t in tenants {
            for s in &mut t.subscriptions {
                s.state = "Enabled";
            }
        }
    }

    /// The tenant whose id or verified domain is `key` (case-insensitive).
    pub fn tenant(&self, key: &str) -> Option<&Tenant> {
        let kind = *self.index.get(&key.to_ascii_lowercase())?;
        self.by_kind(kind)
    }

    /// The tenant whose id (not domain) is `id` (case-insensitive).
    fn tenant_by_id(&self, id: &str) -> Option<&Tenant> {
        self.tenant(id).filter(|t| t.id.eq_ignore_ascii_case(id))
    }

    /// The partners, then the customers, then the GDAP-only tenants.
    pub fn all_tenants(&self) -> impl Iterator<Item = &Tenant> {
        self.partners
            .iter()
            .map(|p| &p.tenant)
            .chain(&self.customers)
            .chain(&self.gdap_only)
    }

    /// The app with this client id.
    pub fn app(&self, client_id: &str) -> Option<&App> {
        self.partners
            .iter()
            .map(|p| &p.sam_app)
            .chain(std::iter::once(&self.identity_app))
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    }

    /// Partner 0: the one a single-partner simulator has, and the one the
    /// simulator's single-partner interfaces describe.
    pub fn default_partner(&self) -> &Partner {
        // `with_partners` makes at least one.
        &self.partners[0]
    }

    /// Partner `k`.
    pub fn partner(&self, k: usize) -> Option<&Partner> {
        self.partners.get(k)
    }

    /// The partner whose tenant this is (id, any case).
    pub fn partner_by_tenant(&self, tenant_id: &str) -> Option<&Partner> {
        self.partners
            .iter()
            .find(|p| p.tenant.id.eq_ignore_ascii_case(tenant_id))
    }

    /// The partner whose admin agent this is (object id, any case).
    pub fn partner_by_admin(&self, oid: &str) -> Option<&Partner> {
        self.partners
            .iter()
            .find(|p| p.admin.oid.eq_ignore_ascii_case(oid))
    }

    /// The partner an app is registered with: the SAM app's own partner, or
    /// for the service identity the partner whose tenant it lives in.
    pub fn partner_of_app(&self, app: &App) -> &Partner {
        self.partner_by_tenant(&app.home_tenant)
            .unwrap_or_else(|| self.default_partner())
    }

    /// Whether `client_id` is some partner's multi-tenant SAM app.
    pub fn is_sam_app(&self, client_id: &str) -> bool {
        self.partners
            .iter()
            .any(|p| p.sam_app.client_id.eq_ignore_ascii_case(client_id))
    }

    /// Partner `k`'s Partner Center customers, in Partner Center order.
    pub fn customers_of(&self, k: usize) -> &[Tenant] {
        self.partner(k)
            .and_then(|p| self.customers.get(p.customers.clone()))
            .unwrap_or_default()
    }

    /// Partner `k`'s GDAP-only tenant.
    pub fn gdap_only_of(&self, k: usize) -> Option<&Tenant> {
        self.gdap_only.get(k)
    }

    /// The indices of the partners that have `t` as a customer (Partner
    /// Center or GDAP-only); empty for a partner's own tenant.
    pub fn partners_of(&self, t: &Tenant) -> Range<usize> {
        match t.kind {
            TenantKind::Partner(_) => 0..0,
            TenantKind::GdapOnly(k) => k..k + 1,
            TenantKind::Customer(pos) => {
                let tenants = self.customers_of(0).len();
                let step = window_step(tenants);
                // Partner k has positions k·step .. k·step + tenants.
                let first = if pos < tenants {
                    0
                } else {
                    (pos - tenants) / step + 1
                };
                let last = (pos / step).min(self.partners.len() - 1);
                first..last + 1
            }
        }
    }

    /// Whether some partner has delegated admin in `tenant_id`: a Partner
    /// Center customer or a GDAP-only tenant.
    pub fn is_customer(&self, tenant_id: &str) -> bool {
        self.tenant_by_id(tenant_id)
            .is_some_and(|t| matches!(t.kind, TenantKind::Customer(_) | TenantKind::GdapOnly(_)))
    }

    /// Whether partner `k` has delegated admin in `tenant_id`: one of its
    /// Partner Center customers or its GDAP-only tenant.
    pub fn is_customer_of(&self, k: usize, tenant_id: &str) -> bool {
        self.tenant_by_id(tenant_id)
            .is_some_and(|t| self.partners_of(t).contains(&k))
    }

    /// Object id of an app's service principal in a tenant.
    pub fn service_principal_oid(&self, client_id: &str, tenant_id: &str) -> String {
        guid(self.seed, &format!("sp/{client_id}/{tenant_id}"))
    }

    /// The customer list as Partner Center orders it.
    #[cfg(test)]
    pub fn sim_tenants(&self) -> Vec<SimTenant> {
        self.customers.iter().map(Tenant::sim_tenant).collect()
    }
}

impl Tenant {
    /// How the rest of the project sees it.
    pub fn sim_tenant(&self) -> SimTenant {
        SimTenant {
            tenant_id: self.id.clone(),
            name: self.name.clone(),
            domain: self.domain.clone(),
        }
    }
}

/// How many distinct customers `partners` partners of `tenants` customers
/// each have: where the last window ends (none without tenants); saturates
/// rather than overflows, so callers can bound it.
pub(crate) fn customer_count(tenants: usize, partners: usize) -> usize {
    match tenants {
        0 => 0,
        t => partners
            .saturating_sub(1)
            .saturating_mul(window_step(t))
            .saturating_add(t),
    }
}

/// How far apart neighbouring partners' customer windows start: `T − T/10`,
/// so they share T/10 customers; at least 1, so customer positions always
/// divide into partners.
fn window_step(tenants: usize) -> usize {
    (tenants - tenants / 10).max(1)
}

/// Partner `k` with the customers at `customers`. Partner 0 keeps the ids,
/// names and labels a single-partner simulator has always had.
fn partner(seed: u64, k: usize, customers: Range<usize>) -> Partner {
    let (id, name, domain, created, subscription) = if k == 0 {
        (
            guid(seed, "tenant/partner"),
            "Tailwind Cloud Partners".to_string(),
            "tailwindpartners.onmicrosoft.com".to_string(),
            "2019-03-12T09:15:00Z".to_string(),
            guid(seed, "subscription/partner/0"),
        )
    } else {
        let base = PARTNERS[(k - 1) % PARTNERS.len()];
        let slug: String = base
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        let n = stream(seed, &format!("partner/{k}"));
        (
            guid(seed, &format!("tenant/partner/{k}")),
            format!("{base} {k:02}"),
            format!("{slug}{k:02}.onmicrosoft.com"),
            format!("2019-{:02}-{:02}T09:15:00Z", 1 + n % 12, 1 + (n >> 8) % 28),
            guid(seed, &format!("subscription/partner/{k}/0")),
        )
    };
    let label = |what: &str| {
        if k == 0 {
            what.to_string()
        } else {
            format!("{what}/{k}")
        }
    };
    let admin = User {
        oid: guid(seed, &label("user/admin")),
        upn: format!("admin@{domain}"),
        name: "Partner Admin Agent".into(),
    };
    let sam_app = App {
        client_id: guid(seed, &label("app/sam")),
        name: "tenantwatch SAM".into(),
        secret: client_secret(),
        home_tenant: id.clone(),
        multi_tenant: true,
    };
    Partner {
        index: k,
        tenant: Tenant {
            id,
            name,
            domain,
            created,
            subscriptions: vec![Subscription {
                id: subscription,
                display_name: "Partner Shared Services".into(),
                state: "Enabled",
            }],
            kind: TenantKind::Partner(k),
        },
        sam_app,
        admin,
        customers,
    }
}

fn customer(seed: u64, i: usize) -> Tenant {
    let n = stream(seed, &format!("customer/{i}"));
    let base = COMPANIES[(n % COMPANIES.len() as u64) as usize];
    let suffix = SUFFIXES[((n >> 16) % SUFFIXES.len() as u64) as usize];
    let slug: String = base
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    let id = guid(seed, &format!("tenant/customer/{i}"));
    let sub_count = ((n >> 24) % 4) as usize;
    let subscriptions = subscriptions(seed, &i.to_string(), n, sub_count);
    let day = 1 + (n >> 40) % 28;
    let month = 1 + (n >> 48) % 12;
    Tenant {
        id,
        name: format!("{base} {suffix} {i:02}"),
        domain: format!("{slug}{i:02}.onmicrosoft.com"),
        created: format!("2021-{month:02}-{day:02}T10:30:06Z"),
        subscriptions,
        kind: TenantKind::Customer(i - 1),
    }
}

/// The tenant only GDAP lists for partner `k`. Its name is not one
/// Partner Center customers are given, so it never collides with one.
/// Partner 0's keeps the labels it has always had.
fn gdap_only_tenant(seed: u64, k: usize) -> Tenant {
    let number = k + 1;
    let n = stream(seed, &format!("gdap-only/{number}"));
    let (name, domain, key) = if k == 0 {
        (
            "Graphic Design Institute".to_string(),
            "graphicdesigninstitute.onmicrosoft.com".to_string(),
            "gdap-only".to_string(),
        )
    } else {
        (
            format!("Graphic Design Institute {k:02}"),
            format!("graphicdesigninstitute{k:02}.onmicrosoft.com"),
            format!("gdap-only/{number}"),
        )
    };
    Tenant {
        id: guid(seed, &format!("tenant/gdap-only/{number}")),
        name,
        domain,
        created: "2022-05-17T08:12:40Z".into(),
        // Two subscriptions so its ARM and Resource Graph data is not empty.
        subscriptions: subscriptions(seed, &key, n, 2),
        kind: TenantKind::GdapOnly(k),
    }
}

/// `count` subscriptions of the tenant `key` (labels as before, so ids are
/// stable across versions), in states drawn from `n`.
fn subscriptions(seed: u64, key: &str, n: u64, count: usize) -> Vec<Subscription> {
    (0..count)
        .map(|k| Subscription {
            id: guid(seed, &format!("subscription/{key}/{k}")),
            display_name: SUBSCRIPTION_NAMES[k % SUBSCRIPTION_NAMES.len()].into(),
            // Mostly healthy, with the odd disabled or warned one to alert on.
            state: match (n >> (32 + k * 4)) % 16 {
                0 => "Disabled",
                1 => "Warned",
                2 => "PastDue",
                _ => "Enabled",
            },
        })
        .collect()
}

/// 64 pseudo-random bits for a label under a seed.
pub(crate) fn stream(seed: u64, label: &str) -> u64 {
    let d = Sha256::new()
        .chain_update(seed.to_le_bytes())
        .chain_update(label.as_bytes())
        .finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_le_bytes(b)
}

/// A version-4-shaped GUID derived from a seed and a label.
pub(crate) fn guid(seed: u64, label: &str) -> String {
    let d = Sha256::new()
        .chain_update(seed.to_le_bytes())
        .chain_update(b"guid/")
        .chain_update(label.as_bytes())
        .finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    uuid::Builder::from_random_bytes(b)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// A client secret in the shape Entra issues (`xxx8Q~` + 34 characters).
pub(crate) fn client_secret() -> String {
    let mut rng = rand::thread_rng();
    let head: String = (&mut rng)
        .sample_iter(Alphanumeric)
        .take(3)
        .map(char::from)
        .collect();
    const TAIL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.~-";
    let pick = Uniform::from(0..TAIL.len());
    let tail: String = (0..34)
        .map(|_| char::from(TAIL[pick.sample(&mut rng)]))
        .collect();
    format!("{head}8Q~{tail}")
}

/// Random url-safe characters, for opaque tokens.
pub(crate) fn random_token(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `id` is in partner `k`'s windows, by the lists themselves
    /// (what `partners_of` and `is_customer_of` compute by arithmetic).
    fn in_window(w: &World, k: usize, id: &str) -> bool {
        w.customers_of(k)
            .iter()
            .chain(w.gdap_only_of(k))
            .any(|c| c.id == id)
    }

    #[test]
    fn same_seed_same_directory() {
        let a = World::generate(7, 30);
        let b = World::generate(7, 30);
        assert_eq!(a.sim_tenants(), b.sim_tenants());
        assert_eq!(a.default_partner().tenant.id, b.default_partner().tenant.id);
        assert_eq!(
            a.default_partner().sam_app.client_id,
            b.default_partner().sam_app.client_id
        );
        let c = World::generate(8, 30);
        assert_ne!(a.sim_tenants(), c.sim_tenants());
    }

    #[test]
    fn names_domains_and_ids_are_unique_and_well_formed() {
        let w = World::generate(1, 120);
        let t = w.sim_tenants();
        assert_eq!(t.len(), 120);
        let mut domains: Vec<_> = t.iter().map(|t| t.domain.clone()).collect();
        domains.sort();
        domains.dedup();
        assert_eq!(domains.len(), 120);
        for x in &t {
            assert!(uuid::Uuid::parse_str(&x.tenant_id).is_ok());
            assert!(x.domain.ends_with(".onmicrosoft.com"));
        }
        assert!(t[6].name.ends_with(" 07"));
    }

    #[test]
    fn lookup_by_id_or_domain() {
        let w = World::generate(1, 3);
        let c = &w.customers[1];
        assert_eq!(w.tenant(&c.domain.to_uppercase()).unwrap().id, c.id);
        assert_eq!(w.tenant(&c.id).unwrap().id, c.id);
        assert!(w.tenant("nope.onmicrosoft.com").is_none());
        assert!(w.is_customer(&c.id));
        assert!(!w.is_customer(&w.default_partner().tenant.id));
    }

    #[test]
    fn one_partner_keeps_the_single_partner_ids() {
        let w = World::with_partners(4, 5, 1);
        let p = w.default_partner();
        assert_eq!(p.tenant.id, guid(4, "tenant/partner"));
        assert_eq!(p.sam_app.client_id, guid(4, "app/sam"));
        assert_eq!(p.admin.oid, guid(4, "user/admin"));
        assert_eq!(p.tenant.domain, "tailwindpartners.onmicrosoft.com");
        assert_eq!(w.gdap_only.len(), 1);
        assert_eq!(w.gdap_only[0].id, guid(4, "tenant/gdap-only/1"));
        assert_eq!(w.gdap_only[0].name, "Graphic Design Institute");
        assert_eq!(w.customers_of(0).len(), 5);
        assert_eq!(w.customers.len(), 5);
        assert_eq!(w.identity_app.home_tenant, p.tenant.id);
    }

    #[test]
    fn partners_share_a_tenth_of_their_customers_with_neighbours() {
        let w = World::with_partners(4, 10, 3);
        // Windows 1..=10, 10..=19, 19..=28.
        assert_eq!(w.customers.len(), 28);
        let ids =
            |k: usize| -> Vec<String> { w.customers_of(k).iter().map(|t| t.id.clone()).collect() };
        assert_eq!(
            ids(0),
            World::generate(4, 10)
                .sim_tenants()
                .iter()
                .map(|t| t.tenant_id.clone())
                .collect::<Vec<_>>()
        );
        for k in 0..3 {
            assert_eq!(ids(k).len(), 10);
            assert_eq!(w.customers_of(k)[0].id, w.customers[k * 9].id);
        }
        let shared = |a: usize, b: usize| ids(a).iter().filter(|id| ids(b).contains(id)).count();
        assert_eq!(shared(0, 1), 1);
        assert_eq!(shared(1, 2), 1);
        assert_eq!(shared(0, 2), 0);
        // Every tenant's partners, by arithmetic, agree with the windows.
        for t in &w.customers {
            let by_window: Vec<usize> = (0..3).filter(|k| in_window(&w, *k, &t.id)).collect();
            assert_eq!(
                w.partners_of(t).collect::<Vec<_>>(),
                by_window,
                "{}",
                t.name
            );
        }
        for (k, g) in w.gdap_only.iter().enumerate() {
            assert_eq!(w.partners_of(g).collect::<Vec<_>>(), vec![k]);
            assert!(w.is_customer_of(k, &g.id));
        }
        assert!(w.partners_of(&w.partners[2].tenant).next().is_none());
    }

    #[test]
    fn partners_of_agrees_with_the_windows_at_every_size() {
        for tenants in [0, 1, 2, 9, 10, 11, 19, 20] {
            for partners in [1, 2, 3, 100] {
                let w = World::with_partners(4, tenants, partners);
                assert_eq!(
                    w.customers.len(),
                    customer_count(tenants, partners),
                    "T={tenants} P={partners}"
                );
                for k in 0..partners {
                    assert_eq!(
                        w.customers_of(k).len(),
                        tenants,
                        "T={tenants} P={partners} k={k}"
                    );
                }
                for t in &w.customers {
                    let by_window: Vec<usize> =
                        (0..partners).filter(|k| in_window(&w, *k, &t.id)).collect();
                    assert!(!by_window.is_empty(), "{} has no partner", t.name);
                    for k in 0..partners {
                        assert_eq!(
                            w.is_customer_of(k, &t.id.to_uppercase()),
                            by_window.contains(&k)
                        );
                    }
                    assert_eq!(
                        w.tenant(&t.domain.to_uppercase()).map(|x| &x.id),
                        Some(&t.id)
                    );
                    // A domain is not an id.
                    assert!(!w.is_customer_of(by_window[0], &t.domain));
                    assert_eq!(
                        w.partners_of(t).collect::<Vec<_>>(),
                        by_window,
                        "T={tenants} P={partners} {}",
                        t.name
                    );
                }
            }
        }
        assert_eq!(customer_count(usize::MAX, 3), usize::MAX);
        assert_eq!(customer_count(10, 3), 28);
    }

    #[test]
    fn partners_have_distinct_tenants_apps_admins_and_domains() {
        let w = World::with_partners(4, 3, 7);
        let mut seen = std::collections::HashSet::new();
        for p in &w.partners {
            for v in [
                &p.tenant.id,
                &p.tenant.domain,
                &p.tenant.name,
                &p.sam_app.client_id,
                &p.admin.oid,
                &p.admin.upn,
            ] {
                assert!(seen.insert(v.clone()), "{v} twice");
            }
            assert_eq!(
                w.partner_by_tenant(&p.tenant.id.to_uppercase())
                    .map(|x| x.index),
                Some(p.index)
            );
            assert_eq!(
                w.partner_by_admin(&p.admin.oid).map(|x| x.index),
                Some(p.index)
            );
            assert_eq!(w.partner_of_app(&p.sam_app).index, p.index);
            assert!(w.is_sam_app(&p.sam_app.client_id));
            assert_eq!(
                w.tenant(&p.tenant.domain).map(|t| t.id.clone()),
                Some(p.tenant.id.clone())
            );
        }
        for g in &w.gdap_only {
            assert!(seen.insert(g.domain.clone()), "{} twice", g.domain);
        }
        assert_eq!(
            w.partner(1).map(|p| p.tenant.id.clone()),
            Some(guid(4, "tenant/partner/1"))
        );
        assert!(w.partner(7).is_none());
        assert!(!w.is_sam_app(&w.identity_app.client_id));
        assert_eq!(w.partner_of_app(&w.identity_app).index, 0);
        // A single customer per partner: nothing shared, still a window each.
        let one = World::with_partners(4, 1, 3);
        assert_eq!(one.customers.len(), 3);
        assert_eq!(
            one.partners_of(&one.customers[2]).collect::<Vec<_>>(),
            vec![2]
        );
        // No customers at all: no customer tenants, whatever the partners.
        assert!(World::with_partners(4, 0, 3).customers.is_empty());
    }

    #[test]
    fn secrets_look_like_entra_secrets() {
        let s = client_secret();
        assert_eq!(s.len(), 40);
        assert_eq!(&s[3..6], "8Q~");
    }
}

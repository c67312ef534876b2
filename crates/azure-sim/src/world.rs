//! The simulated directory: partner tenant, customer tenants, apps, the
//! partner admin and Azure subscriptions, all derived from one seed so every
//! run with the same seed sees the same ids and names.

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
    pub partner: Tenant,
    /// Partner Center customers, in Partner Center order.
    pub customers: Vec<Tenant>,
    /// Tenants the partner reaches through an active GDAP relationship
    /// although Partner Center does not list them (e.g. a customer of an
    /// indirect reseller): discovery must reconcile the two sources.
    pub gdap_only: Vec<Tenant>,
    pub sam_app: App,
    pub identity_app: App,
    pub admin: User,
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

const SUFFIXES: &[&str] = &["Ltd", "Inc", "GmbH", "BV", "LLC", "plc"];

const SUBSCRIPTION_NAMES: &[&str] = &["Azure plan", "Production", "Dev/Test"];

impl World {
    /// Builds the directory for `tenants` customers. Ids and names come from
    /// `seed`; client secrets are random per call.
    pub fn generate(seed: u64, tenants: usize) -> Self {
        let partner_id = guid(seed, "tenant/partner");
        let partner = Tenant {
            id: partner_id.clone(),
            name: "Tailwind Cloud Partners".into(),
            domain: "tailwindpartners.onmicrosoft.com".into(),
            created: "2019-03-12T09:15:00Z".into(),
            subscriptions: vec![Subscription {
                id: guid(seed, "subscription/partner/0"),
                display_name: "Partner Shared Services".into(),
                state: "Enabled",
            }],
        };
        let customers = (1..=tenants).map(|i| customer(seed, i)).collect();
        let gdap_only = vec![gdap_only_tenant(seed)];
        let admin = User {
            oid: guid(seed, "user/admin"),
            upn: format!("admin@{}", partner.domain),
            name: "Partner Admin Agent".into(),
        };
        let sam_app = App {
            client_id: guid(seed, "app/sam"),
            name: "tenantwatch SAM".into(),
            secret: client_secret(),
            home_tenant: partner_id.clone(),
            multi_tenant: true,
        };
        let identity_app = App {
            client_id: guid(seed, "app/identity"),
            name: "tenantwatch vault reader".into(),
            secret: client_secret(),
            home_tenant: partner_id,
            multi_tenant: false,
        };
        Self {
            seed,
            partner,
            customers,
            gdap_only,
            sam_app,
            identity_app,
            admin,
        }
    }

    /// Every subscription `Enabled`, for an all-green estate
    /// ([`crate::SimOptions::healthy`]).
    pub fn heal(&mut self) {
        let tenants = std::iter::once(&mut self.partner)
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
        self.all_tenants()
            .find(|t| t.id.eq_ignore_ascii_case(key) || t.domain.eq_ignore_ascii_case(key))
    }

    /// The partner, then the customers, then the GDAP-only tenants.
    pub fn all_tenants(&self) -> impl Iterator<Item = &Tenant> {
        std::iter::once(&self.partner)
            .chain(&self.customers)
            .chain(&self.gdap_only)
    }

    /// The app with this client id.
    pub fn app(&self, client_id: &str) -> Option<&App> {
        [&self.sam_app, &self.identity_app]
            .into_iter()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    }

    /// Whether the partner has delegated admin in `tenant_id`: a Partner
    /// Center customer or a GDAP-only tenant.
    pub fn is_customer(&self, tenant_id: &str) -> bool {
        self.customers
            .iter()
            .chain(&self.gdap_only)
            .any(|c| c.id.eq_ignore_ascii_case(tenant_id))
    }

    /// Object id of an app's service principal in a tenant.
    pub fn service_principal_oid(&self, client_id: &str, tenant_id: &str) -> String {
        guid(self.seed, &format!("sp/{client_id}/{tenant_id}"))
    }

    /// The customer list as Partner Center orders it.
    #[cfg(test)]
    pub fn sim_tenants(&self) -> Vec<SimTenant> {
        self.customers
            .iter()
            .map(|t| SimTenant {
                tenant_id: t.id.clone(),
                name: t.name.clone(),
                domain: t.domain.clone(),
            })
            .collect()
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
    }
}

/// The tenant only GDAP lists. Its name is not one Partner Center
/// customers are given, so it never collides with one.
fn gdap_only_tenant(seed: u64) -> Tenant {
    let n = stream(seed, "gdap-only/1");
    Tenant {
        id: guid(seed, "tenant/gdap-only/1"),
        name: "Graphic Design Institute".into(),
        domain: "graphicdesigninstitute.onmicrosoft.com".into(),
        created: "2022-05-17T08:12:40Z".into(),
        // Two subscriptions so its ARM and Resource Graph data is not empty.
        subscriptions: subscriptions(seed, "gdap-only", n, 2),
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

    #[test]
    fn same_seed_same_directory() {
        let a = World::generate(7, 30);
        let b = World::generate(7, 30);
        assert_eq!(a.sim_tenants(), b.sim_tenants());
        assert_eq!(a.partner.id, b.partner.id);
        assert_eq!(a.sam_app.client_id, b.sam_app.client_id);
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
        assert!(!w.is_customer(&w.partner.id));
    }

    #[test]
    fn secrets_look_like_entra_secrets() {
        let s = client_secret();
        assert_eq!(s.len(), 40);
        assert_eq!(&s[3..6], "8Q~");
    }
}

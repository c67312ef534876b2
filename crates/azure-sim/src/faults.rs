//! Injected service faults — a status code, throttling, or a hang — in four
//! scopes: every request to a service for a window of real time, the next N
//! requests to a service, every request for one tenant, or a fixed fraction
//! of a service's requests. This is the registry the admin API and
//! [`crate::SimHandle`] write and [`crate::server::instrument`] consults on
//! every request; what a service answers under a fault is its own
//! `fault_response`, next to its other error bodies.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use tenantwatch_common::sync::lock;

use crate::service::Service;

/// A fault a service can be made to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and the service's error body for it (5xx:
    /// unavailable; other codes get a generic body).
    Status(u16),
    /// Answer 429 with `Retry-After` and the service's throttling body.
    Throttle {
        /// Seconds put in `Retry-After` (and in messages that quote it).
        retry_after_secs: u64,
    },
    /// Accept the request and answer nothing until the fault is lifted
    /// (then serve it normally) or the client gives up.
    Hang,
}

/// How often a hung request checks whether its fault has been lifted.
const HANG_POLL: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Copy)]
struct Active {
    fault: Fault,
    /// Real-time end of the window; `None` until cleared.
    until: Option<Instant>,
}

/// What lifts the fault that holds a hung request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lift {
    /// The service's windowed fault ends or is cleared.
    Window(Service),
    /// The tenant's fault for the service is cleared.
    Tenant(String, Service),
    /// [`Faults::clear`] is called for the service (a consumed "next"
    /// fault has nothing else to wait for).
    Clear(Service, u64),
}

/// A fault given to a fixed fraction of a service's requests.
#[derive(Debug, Clone, Copy)]
struct Rate {
    fault: Fault,
    /// The fraction in millionths, so the counting below is exact.
    per_million: u64,
    /// Accumulated share of a fault, in millionths; each time it reaches a
    /// million a request gets the fault. Counting instead of drawing random
    /// numbers makes the pattern exact and repeatable: 5% is every 20th request.
    owed: u64,
}

const MILLION: u64 = 1_000_000;

/// Whether two faults are the same kind (a rate per kind per service).
fn same_kind(a: Fault, b: Fault) -> bool {
    std::mem::discriminant(&a) == std::mem::discriminant(&b)
}

/// The faults currently injected.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// Per service, for a window or until cleared.
    active: Mutex<HashMap<Service, Active>>,
    /// Per service: the fault and how many more requests get it.
    next: Mutex<HashMap<Service, (Fault, usize)>>,
    /// Per lower-case tenant id and service.
    tenants: Mutex<HashMap<(String, Service), Fault>>,
    /// Per service: faults given to a fraction of its requests.
    rates: Mutex<HashMap<Service, Vec<Rate>>>,
    /// Bumped by every clear, so requests hung by a "next" or rate fault end.
    clears: Mutex<HashMap<Service, u64>>,
}

impl Faults {
    /// Replaces the service's windowed fault; `window` of `None` means
    /// until cleared.
    pub fn set(&self, service: Service, fault: Fault, window: Option<Duration>) {
        let until = window.map(|w| Instant::now() + w);
        lock(&self.active).insert(service, Active { fault, until });
    }

    /// Removes the service's windowed, pending "next" and rate faults and
    /// ends requests a "next" or rate hang holds.
    pub fn clear(&self, service: Service) {
        lock(&self.active).remove(&service);
        lock(&self.next).remove(&service);
        lock(&self.rates).remove(&service);
        *lock(&self.clears).entry(service).or_default() += 1;
    }

    /// The next `count` requests to the service get `fault` (replacing any
    /// pending ones); `0` cancels.
    pub fn set_next(&self, service: Service, fault: Fault, count: usize) {
        let mut next = lock(&self.next);
        if count == 0 {
            next.remove(&service);
        } else {
            next.insert(service, (fault, count));
        }
    }

    /// `fraction` (0..=1) of the service's requests get `fault`, evenly
    /// spread (0.05: every 20th), replacing the rate of a fault of the same
    /// kind (status, throttle, hang); `0` removes it. Several kinds may be
    /// set at once; each counts every request.
    pub fn set_rate(&self, service: Service, fault: Fault, fraction: f64) {
        let mut rates = lock(&self.rates);
        let list = rates.entry(service).or_default();
        list.retain(|r| !same_kind(r.fault, fault));
        let per_million = (fraction.clamp(0.0, 1.0) * MILLION as f64).round() as u64;
        if per_million > 0 {
            list.push(Rate {
                fault,
                per_million,
                owed: 0,
            });
        }
    }

    /// The rate fault, if any, this request of the service gets.
    fn rate_fault(&self, service: Service) -> Option<Fault> {
        let mut rates = lock(&self.rates);
        let mut hit = None;
        for r in rates.get_mut(&service)?.iter_mut() {
            r.owed += r.per_million;
            // A kind due on a request another kind took stays owed and takes
            // the next one, so 5% and 1% together really give 6%.
            if r.owed >= MILLION && hit.is_none() {
                r.owed -= MILLION;
                hit = Some(r.fault);
            }
        }
        hit
    }

    /// Every request to the service for `tenant_id` gets `fault` until
    /// [`Faults::clear_tenant`].
    pub fn set_tenant(&self, tenant_id: &str, service: Service, fault: Fault) {
        lock(&self.tenants).insert((tenant_id.to_ascii_lowercase(), service), fault);
    }

    /// Removes every fault of a tenant (and ends its hung requests).
    pub fn clear_tenant(&self, tenant_id: &str) {
        let key = tenant_id.to_ascii_lowercase();
        lock(&self.tenants).retain(|(t, _), _| *t != key);
    }

    /// The service's windowed fault if one is in force now; expired
    /// windows are dropped.
    pub fn current(&self, service: Service) -> Option<Fault> {
        let mut map = lock(&self.active);
        match map.get(&service) {
            Some(a) if a.until.is_some_and(|u| Instant::now() >= u) => {
                map.remove(&service);
                None
            }
            Some(a) => Some(a.fault),
            None => None,
        }
    }

    /// The fault for one request, if any, and what would lift it. The most
    /// specific scope wins: the tenant's, then a pending "next" (which this
    /// consumes), then the service's window, then a rate fault.
    pub fn decide(&self, service: Service, tenant: Option<&str>) -> Option<(Fault, Lift)> {
        if let Some(t) = tenant {
            let key = (t.to_ascii_lowercase(), service);
            if let Some(f) = lock(&self.tenants).get(&key) {
                return Some((*f, Lift::Tenant(key.0, service)));
            }
        }
        {
            let mut next = lock(&self.next);
            if let Some((fault, left)) = next.get_mut(&service) {
                let fault = *fault;
                *left -= 1;
                if *left == 0 {
                    next.remove(&service);
                }
                let epoch = lock(&self.clears).get(&service).copied().unwrap_or(0);
                return Some((fault, Lift::Clear(service, epoch)));
            }
        }
        if let Some(f) = self.current(service) {
            return Some((f, Lift::Window(service)));
        }
        let fault = self.rate_fault(service)?;
        let epoch = lock(&self.clears).get(&service).copied().unwrap_or(0);
        Some((fault, Lift::Clear(service, epoch)))
    }

    /// Whether the fault behind `lift` still holds a hung request.
    fn holds(&self, lift: &Lift) -> bool {
        match lift {
            Lift::Window(s) => self.current(*s) == Some(Fault::Hang),
            Lift::Tenant(t, s) => lock(&self.tenants).get(&(t.clone(), *s)) == Some(&Fault::Hang),
            Lift::Clear(s, epoch) => lock(&self.clears).get(s).copied().unwrap_or(0) == *epoch,
        }
    }

    /// Waits until the fault behind `lift` is lifted. The caller's future
    /// is dropped if the client gives up or the server stops.
    pub async fn hang(&self, lift: &Lift) {
        while self.holds(lift) {
            tokio::time::sleep(HANG_POLL).await;
        }
    }
}

/// The `code` Azure services use in fault bodies for common 5xx statuses.
pub(crate) fn server_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        500 => "InternalServerError",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        504 => "GatewayTimeout",
        s if s >= 500 => "ServiceUnavailable",
        _ => "BadRequest",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_codes() {
        assert_eq!(
            server_code(StatusCode::SERVICE_UNAVAILABLE),
            "ServiceUnavailable"
        );
        assert_eq!(server_code(StatusCode::BAD_GATEWAY), "BadGateway");
    }

    #[test]
    fn windows_expire_and_clear_removes() {
        let f = Faults::default();
        f.set(Service::Graph, Fault::Status(503), None);
        assert_eq!(f.current(Service::Graph), Some(Fault::Status(503)));
        assert_eq!(f.current(Service::Arm), None);
        f.clear(Service::Graph);
        assert_eq!(f.current(Service::Graph), None);
        f.set(Service::Arm, Fault::Hang, Some(Duration::ZERO));
        assert_eq!(f.current(Service::Arm), None);
    }

    #[test]
    fn next_faults_are_used_up() {
        let f = Faults::default();
        f.set_next(Service::Arm, Fault::Status(500), 2);
        assert_eq!(
            f.decide(Service::Arm, None).map(|d| d.0),
            Some(Fault::Status(500))
        );
        assert_eq!(f.decide(Service::Graph, None), None);
        assert_eq!(
            f.decide(Service::Arm, Some("t")).map(|d| d.0),
            Some(Fault::Status(500))
        );
        assert_eq!(f.decide(Service::Arm, None), None);
    }

    #[test]
    fn tenant_faults_only_hit_that_tenant_and_win() {
        let f = Faults::default();
        f.set(Service::Graph, Fault::Status(503), None);
        f.set_tenant("ABC", Service::Graph, Fault::Hang);
        assert_eq!(
            f.decide(Service::Graph, Some("abc")).map(|d| d.0),
            Some(Fault::Hang)
        );
        assert_eq!(
            f.decide(Service::Graph, Some("other")).map(|d| d.0),
            Some(Fault::Status(503))
        );
        assert_eq!(f.decide(Service::Arm, Some("abc")), None);
        f.clear_tenant("Abc");
        f.clear(Service::Graph);
        assert_eq!(f.decide(Service::Graph, Some("abc")), None);
    }

    #[test]
    fn rate_faults_hit_an_exact_evenly_spread_share() {
        let f = Faults::default();
        f.set_rate(Service::Graph, Fault::Status(503), 0.05);
        f.set_rate(Service::Graph, Fault::Hang, 0.01);
        let got: Vec<_> = (0..1000)
            .map(|_| f.decide(Service::Graph, Some("t")).map(|d| d.0))
            .collect();
        let count = |x: Fault| got.iter().filter(|g| **g == Some(x)).count();
        // Every 100th request is due both: the first kind set takes it, the
        // other the request after.
        assert_eq!(count(Fault::Status(503)), 50);
        assert_eq!(count(Fault::Hang), 9);
        assert_eq!(got[19], Some(Fault::Status(503)));
        assert_eq!(got[18], None);
        assert_eq!(got[99], Some(Fault::Status(503)));
        assert_eq!(got[100], Some(Fault::Hang));
        assert_eq!(
            f.decide(Service::Arm, None),
            None,
            "other services untouched"
        );
        // Replacing a kind keeps the other; a fraction of 0 removes it.
        f.set_rate(Service::Graph, Fault::Status(500), 0.5);
        f.set_rate(Service::Graph, Fault::Hang, 0.0);
        let n = (0..10)
            .filter(|_| f.decide(Service::Graph, None).is_some())
            .count();
        assert_eq!(n, 5);
        f.clear(Service::Graph);
        assert!((0..100).all(|_| f.decide(Service::Graph, None).is_none()));
    }

    #[test]
    fn tenant_and_window_faults_win_over_rates() {
        let f = Faults::default();
        f.set_rate(Service::Token, Fault::Status(503), 1.0);
        f.set_tenant("t", Service::Token, Fault::Status(400));
        assert_eq!(
            f.decide(Service::Token, Some("t")).map(|d| d.0),
            Some(Fault::Status(400))
        );
        f.set(Service::Token, Fault::Status(502), None);
        assert_eq!(
            f.decide(Service::Token, Some("u")).map(|d| d.0),
            Some(Fault::Status(502))
        );
    }

    #[tokio::test]
    async fn rate_hangs_end_when_cleared() {
        let f = std::sync::Arc::new(Faults::default());
        f.set_rate(Service::Arm, Fault::Hang, 1.0);
        let (_, lift) = f.decide(Service::Arm, None).unwrap();
        let g = f.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            g.clear(Service::Arm);
        });
        tokio::time::timeout(Duration::from_secs(2), f.hang(&lift))
            .await
            .expect("the hang ends with the clear");
    }

    #[tokio::test]
    async fn hang_ends_with_its_window() {
        let f = Faults::default();
        f.set(
            Service::Token,
            Fault::Hang,
            Some(Duration::from_millis(120)),
        );
        let started = Instant::now();
        let (_, lift) = f.decide(Service::Token, None).unwrap();
        f.hang(&lift).await;
        assert!(started.elapsed() >= Duration::from_millis(100));
    }

    #[tokio::test]
    async fn hangs_end_when_their_fault_is_cleared() {
        let f = std::sync::Arc::new(Faults::default());
        f.set_next(Service::Graph, Fault::Hang, 1);
        f.set_tenant("t", Service::Arm, Fault::Hang);
        let (_, next) = f.decide(Service::Graph, None).unwrap();
        let (_, tenant) = f.decide(Service::Arm, Some("t")).unwrap();
        let g = f.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            g.clear(Service::Graph);
            g.clear_tenant("t");
        });
        tokio::time::timeout(Duration::from_secs(2), async {
            f.hang(&next).await;
            f.hang(&tenant).await;
        })
        .await
        .expect("both hangs end");
    }
}

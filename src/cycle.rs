//! One collection cycle: read the refresh token, discover tenants, run every
//! collector for every tenant with bounded concurrency, and build a new snapshot.
//!
//! Each tenant runs under its own timeout, so a slow or failing tenant delays
//! nobody else beyond that bound and shows up as its own `tenant_up 0`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use reqwest::Client;
use tokio::sync::Semaphore;
use tokio::task::{JoinError, JoinSet};

use crate::broker::{BrokerError, TokenBroker};
use crate::cloud::{Api, Cloud};
use crate::collector::{CollectError, Collector, Tenant, TenantContext};
use crate::config::CollectionSettings;
use crate::metrics::Metrics;
use crate::snapshot::{unix_now, CollectorStatus, DiscoveryStatus, Snapshot, TenantStatus};

/// Everything a cycle needs; built once by the daemon.
pub struct Collection {
    /// Shared HTTP client.
    pub http: Client,
    /// Endpoints.
    pub cloud: Cloud,
    /// Token cache.
    pub broker: Arc<TokenBroker>,
    /// Metrics and the published snapshot.
    pub metrics: Arc<Metrics>,
    /// Registered collectors.
    pub collectors: Vec<Box<dyn Collector>>,
    /// Concurrency and timeouts.
    pub settings: CollectionSettings,
    /// The partner's own tenant, where Partner Center tokens are minted.
    pub partner_tenant: String,
}

impl Collection {
    /// Runs one cycle and publishes its snapshot.
    pub async fn run_cycle(self: &Arc<Self>) {
        let started = Instant::now();
        let previous = self.metrics.snapshot();
        self.load_refresh_token().await;
        let (tenants, discovery) = self.discover(&previous).await;
        let keep: HashSet<String> = tenants.iter().map(|t| t.tenant_id.clone()).collect();
        self.broker.retain_tenants(&keep);

        // One task per tenant, at most `concurrency` alive at once: owned data
        // (Arc clones) keeps tasks independent, and dropping the JoinSet on
        // shutdown aborts whatever is still running.
        let permits = Arc::new(Semaphore::new(self.settings.concurrency));
        let mut tasks = JoinSet::new();
        let mut statuses: Vec<TenantStatus> = Vec::with_capacity(tenants.len());
        for tenant in tenants {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let (this, previous) = (self.clone(), previous.clone());
            tasks.spawn(async move {
                let _permit = permit;
                this.collect_tenant(&tenant, &previous).await
            });
            while let Some(done) = tasks.try_join_next() {
                push_status(&mut statuses, done);
            }
        }
        while let Some(done) = tasks.join_next().await {
            push_status(&mut statuses, done);
        }
        statuses.sort_by(|a, b| a.tenant_id.cmp(&b.tenant_id));
        let up = statuses.iter().filter(|s| s.up).count();
        let elapsed = started.elapsed().as_secs_f64();
        tracing::info!(
            tenants = statuses.len(),
            up,
            seconds = format!("{elapsed:.2}"),
            "collection cycle finished"
        );
        self.metrics.publish(Snapshot {
            tenants: statuses,
            cycle_finished: Some(unix_now()),
            cycle_seconds: Some(elapsed),
            discovery,
        });
    }

    /// Re-reads the store each cycle so a new consent or another replica's rotation is picked up.
    async fn load_refresh_token(&self) {
        match self.broker.load_from_store().await {
            Ok(true) => tracing::info!(
                version = self
                    .broker
                    .current_token()
                    .map(|t| t.version)
                    .unwrap_or_default(),
                "using the refresh token from {}",
                self.broker.store().describe()
            ),
            Ok(false) => {}
            Err(e) if self.broker.has_refresh_token() => {
                tracing::warn!(error = %e, "cannot re-read the refresh token; keeping the one in memory")
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the refresh token; no tenant can be collected")
            }
        }
    }

    async fn discover(&self, previous: &Snapshot) -> (Vec<Tenant>, DiscoveryStatus) {
        let listed = crate::collector::with_token(
            &self.broker,
            &self.partner_tenant,
            Api::PartnerCenter,
            |token| async move {
                crate::partner_center::list_customers(
                    &self.http,
                    &self.cloud.partner_center,
                    &token,
                )
                .await
            },
        )
        .await;
        match listed {
            Ok(customers) => {
                let mut seen = HashSet::new();
                let tenants = customers
                    .into_iter()
                    .filter(|c| seen.insert(c.tenant_id.clone()))
                    .map(|c| Tenant {
                        tenant_id: c.tenant_id,
                        name: c.name,
                        domain: c.domain,
                    })
                    .collect();
                (
                    tenants,
                    DiscoveryStatus {
                        ok: true,
                        last_success: Some(unix_now()),
                    },
                )
            }
            Err(e) => {
                // Keep watching the tenants we knew rather than dropping every series.
                tracing::error!(error = %e, known = previous.tenants.len(), "tenant discovery failed; keeping the previous tenant list");
                let tenants = previous
                    .tenants
                    .iter()
                    .map(|t| Tenant {
                        tenant_id: t.tenant_id.clone(),
                        name: t.name.clone(),
                        domain: t.domain.clone(),
                    })
                    .collect();
                (
                    tenants,
                    DiscoveryStatus {
                        ok: false,
                        last_success: previous.discovery.last_success,
                    },
                )
            }
        }
    }

    async fn collect_tenant(&self, tenant: &Tenant, previous: &Snapshot) -> TenantStatus {
        let before = previous.tenant(&tenant.tenant_id);
        let mut status = TenantStatus {
            tenant_id: tenant.tenant_id.clone(),
            name: before
                .map(|b| b.name.clone())
                .unwrap_or_else(|| tenant.name.clone()),
            domain: before
                .map(|b| b.domain.clone())
                .unwrap_or_else(|| tenant.domain.clone()),
            up: true,
            token_error: None,
            collectors: BTreeMap::new(),
        };
        let ctx = TenantContext {
            tenant,
            broker: &self.broker,
            http: &self.http,
            cloud: &self.cloud,
        };
        let deadline = tokio::time::Instant::now() + self.settings.tenant_timeout;
        for c in &self.collectors {
            let name = c.name();
            let last = before
                .and_then(|b| b.collectors.get(name))
                .and_then(|s| s.last_success);
            let timer = Instant::now();
            let result = tokio::time::timeout_at(deadline, c.collect(&ctx)).await;
            self.metrics
                .collector_duration
                .with_label_values(&[name])
                .observe(timer.elapsed().as_secs_f64());
            let ok = match result {
                Ok(Ok(findings)) => {
                    if let Some(n) = findings.name.filter(|n| !n.is_empty()) {
                        status.name = n;
                    }
                    if let Some(d) = findings.domain.filter(|d| !d.is_empty()) {
                        status.domain = d;
                    }
                    true
                }
                Ok(Err(CollectError::Token(e @ BrokerError::PartnerDown(_)))) => {
                    // The broker already said this once for every tenant.
                    status.token_error = Some(e.class());
                    tracing::debug!(tenant = %tenant.tenant_id, collector = name, error = %e, "collector skipped");
                    false
                }
                Ok(Err(e)) => {
                    if let CollectError::Token(BrokerError::Token(t)) = &e {
                        status.token_error = Some(t.class);
                        tracing::warn!(tenant = %tenant.tenant_id, collector = name, reason = %t.class, advice = t.class.advice(), error = %e, "collector failed");
                    } else {
                        if let CollectError::Token(b) = &e {
                            status.token_error = Some(b.class());
                        }
                        tracing::warn!(tenant = %tenant.tenant_id, collector = name, error = %e, "collector failed");
                    }
                    false
                }
                Err(_) => {
                    tracing::warn!(tenant = %tenant.tenant_id, collector = name, timeout = ?self.settings.tenant_timeout, "collector timed out");
                    false
                }
            };
            self.metrics
                .collector_runs
                .with_label_values(&[name, if ok { "success" } else { "failure" }])
                .inc();
            status.up &= ok;
            status.collectors.insert(
                name,
                CollectorStatus {
                    ok,
                    last_success: if ok { Some(unix_now()) } else { last },
                },
            );
        }
        status
    }
}

fn push_status(statuses: &mut Vec<TenantStatus>, done: Result<TenantStatus, JoinError>) {
    match done {
        Ok(s) => statuses.push(s),
        // A panic in one tenant's task must not take the cycle down; it is a bug to report.
        Err(e) if e.is_panic() => tracing::error!(error = %e, "a tenant collection task panicked"),
        Err(_) => {}
    }
}

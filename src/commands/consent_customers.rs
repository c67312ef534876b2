//! `tenantwatch consent customers`: pushes the SAM app's consent (its Graph
//! and ARM grants from `[consent]`) into chosen customers through Partner
//! Center's application consents, as the partner's admin agent, and proves
//! each with a freshly minted token. The daemon never does this by itself:
//! an operator decides, after `check` or the status page named the tenants.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::task::JoinSet;

use tenantwatch_daemon::config::{Settings, DEFAULT_CONFIG_PATH};
use tenantwatch_daemon::daemon::Components;
use tenantwatch_daemon::model::Api;
use tenantwatch_daemon::outbound::client::ApiError;
use tenantwatch_daemon::outbound::partner_center::{
    create_application_consent, list_customers, ApplicationConsent, ConsentOutcome, Customer,
};
use tenantwatch_daemon::tokens::broker::{BrokerError, TokenBroker};

use crate::commands::{choose, clean, load, report, EXIT_CONFIG, EXIT_FAILURE};

/// `tenantwatch consent customers`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["tenant", "all_missing"])))]
pub struct Args {
    /// Config file (TOML).
    #[arg(long, short, default_value = DEFAULT_CONFIG_PATH, env = "TENANTWATCH_CONFIG")]
    pub config: PathBuf,
    /// The [[partners]] entry whose customers and SAM app to use.
    #[arg(long, value_name = "NAME", env = "TENANTWATCH_PARTNER")]
    pub partner: Option<String>,
    /// A customer tenant id to push the consent into (repeatable).
    #[arg(long, value_name = "ID")]
    pub tenant: Vec<String>,
    /// Every Partner Center customer whose token fails with
    /// consent_required or app_not_in_tenant.
    #[arg(long)]
    pub all_missing: bool,
    /// Show what would be done; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Add this run's results to a Prometheus text file (node_exporter's
    /// textfile collector) as tenantwatch_consent_push_total{result}.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
}

/// Longest customer name or message shown in a cell.
const MAX_CELL: usize = 60;

/// What happened in one customer; the `result` label of the metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// The consent was created and a token now works.
    Created,
    /// Partner Center had it already and a token works.
    AlreadyConsented,
    /// The tokens worked before; nothing was sent.
    Skipped,
    /// `--dry-run`: nothing was sent.
    DryRun,
    /// The create failed, or the token still fails after it.
    Failed,
}

impl Outcome {
    /// The metric's `result` label value.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::AlreadyConsented => "already_consented",
            Outcome::Skipped => "skipped",
            Outcome::DryRun => "dry_run",
            Outcome::Failed => "failed",
        }
    }
}

/// The consent push failed before it reached any customer.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// Building the clients failed.
    #[error(transparent)]
    Setup(#[from] tenantwatch_daemon::daemon::DaemonError),
    /// The refresh token could not be read.
    #[error("the refresh token could not be read: {0}")]
    Store(#[from] tenantwatch_daemon::store::StoreError),
    /// No Partner Center token for the partner.
    #[error("no Partner Center token for the partner: {source}; {advice}")]
    PartnerToken {
        #[source]
        source: BrokerError,
        advice: &'static str,
    },
    /// The customer list could not be read.
    #[error("Partner Center's customer list could not be read: {0}")]
    Customers(#[source] ApiError),
    /// A `--tenant` is not one of the partner's customers.
    #[error("not a customer of this partner in Partner Center: {0}; nothing was changed")]
    NotCustomers(String),
    /// The metrics file could not be written.
    #[error("cannot write {path}: {source}")]
    MetricsFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One customer's line of the table.
struct Row {
    customer: Customer,
    before: String,
    action: String,
    after: String,
    outcome: Outcome,
}

/// Runs the push: exit 0 when every chosen customer ends with a working
/// token (or `--dry-run`), 1 when any failed, 2 for a bad config or id.
pub async fn run(args: Args, log: crate::commands::LogOptions) -> ExitCode {
    // Ids are checked before anything is read or sent.
    let bad: Vec<&String> = args
        .tenant
        .iter()
        .filter(|t| !tenantwatch_daemon::model::is_tenant_id(t))
        .collect();
    if !bad.is_empty() {
        crate::warn_user!(
            "error: --tenant takes a tenant id (a GUID such as 00000000-0000-0000-0000-000000000000), not {}",
            bad.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ")
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    let settings = match load(&args.config, log).and_then(|s| choose(&s, args.partner.as_deref())) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match push(&settings, &args).await {
        Ok(rows) => {
            print_table(&rows, args.dry_run);
            if rows.iter().any(|r| r.outcome == Outcome::Failed) {
                ExitCode::from(EXIT_FAILURE)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            report(&e.into());
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// How a tenant's tokens fare: `Ok` when Graph and ARM both mint, else the
/// first failure.
async fn mint(broker: &TokenBroker, tenant: &str) -> Result<(), BrokerError> {
    for api in [Api::Graph, Api::Arm] {
        broker.invalidate(tenant, api).await;
        broker.redeem(tenant, api).await?;
    }
    Ok(())
}

fn describe(r: &Result<(), BrokerError>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => e.class().as_str().into(),
    }
}

fn needs_consent(r: &Result<(), BrokerError>) -> bool {
    matches!(r, Err(e) if e.class().consent_push_fixes())
}

/// Text from outside for one cell: cleaned, on one line, bounded.
fn cell(text: &str) -> String {
    let one_line = clean(text).replace('\n', " ");
    if one_line.chars().count() > MAX_CELL {
        let cut: String = one_line.chars().take(MAX_CELL - 1).collect();
        format!("{cut}…")
    } else {
        one_line
    }
}

async fn push(settings: &Settings, args: &Args) -> Result<Vec<Row>, PushError> {
    let c = Components::build(settings)?;
    c.broker.load_from_store().await?;
    let partner = settings.partner.tenant_id.clone();
    let pc_token = c
        .broker
        .token(&partner, Api::PartnerCenter)
        .await
        .map_err(|source| PushError::PartnerToken {
            advice: source.class().advice(),
            source,
        })?;
    let api = Arc::new(c.api(settings));
    let customers = list_customers(&api, &partner, &settings.cloud.partner_center, &pc_token)
        .await
        .map_err(PushError::Customers)?;
    // The chosen customers, each once; an id Partner Center does not list
    // stops the run before anything changes.
    let chosen: Vec<Customer> = if args.all_missing {
        customers
            .into_iter()
            .filter(|t| {
                tenantwatch_daemon::collect::scope::in_scope(
                    &settings.tenants,
                    &t.tenant_id,
                    &t.domain,
                )
            })
            .collect()
    } else {
        let mut wanted: Vec<String> = args.tenant.iter().map(|t| t.to_ascii_lowercase()).collect();
        wanted.sort();
        wanted.dedup();
        let unknown: Vec<&String> = wanted
            .iter()
            .filter(|w| {
                !customers
                    .iter()
                    .any(|t| t.tenant_id.eq_ignore_ascii_case(w))
            })
            .collect();
        if !unknown.is_empty() {
            return Err(PushError::NotCustomers(
                unknown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            ));
        }
        customers
            .into_iter()
            .filter(|t| wanted.contains(&t.tenant_id.to_ascii_lowercase()))
            .collect()
    };
    let consent = ApplicationConsent::new(&settings.partner.client_id, &settings.consent);
    let permits = Arc::new(tokio::sync::Semaphore::new(settings.collection.concurrency));
    let mut tasks = JoinSet::new();
    for customer in chosen {
        let (broker, api, permits, consent) = (
            c.broker.clone(),
            api.clone(),
            permits.clone(),
            consent.clone(),
        );
        let (pc_base, partner, pc_token) = (
            settings.cloud.partner_center.clone(),
            partner.clone(),
            pc_token.clone(),
        );
        let (all_missing, dry_run) = (args.all_missing, args.dry_run);
        tasks.spawn(async move {
            let _p = permits.acquire_owned().await;
            let id = customer.tenant_id.clone();
            let before = mint(&broker, &id).await;
            // --all-missing acts only where a consent is what is missing.
            if all_missing && !needs_consent(&before) {
                return None;
            }
            let before_text = describe(&before);
            let row = |action: String, after: String, outcome| Row {
                customer: customer.clone(),
                before: before_text.clone(),
                action,
                after,
                outcome,
            };
            if before.is_ok() {
                return Some(row(
                    "none (tokens work)".into(),
                    "ok".into(),
                    Outcome::Skipped,
                ));
            }
            if dry_run {
                return Some(row(
                    "would create consent".into(),
                    "-".into(),
                    Outcome::DryRun,
                ));
            }
            let action = match create_application_consent(
                &api, &partner, &pc_base, &pc_token, &id, &consent,
            )
            .await
            {
                Ok(ConsentOutcome::Created) => "created consent",
                Ok(ConsentOutcome::AlreadyExists) => "already consented",
                Err(e) => {
                    let why = match &e {
                        ApiError::Status {
                            status,
                            code,
                            message,
                            ..
                        } => {
                            format!("HTTP {status} {code}: {message}")
                        }
                        other => other.to_string(),
                    };
                    tracing::warn!(tenant = %id, error = %e, "consent push failed");
                    return Some(row(
                        format!("failed: {}", cell(&why)),
                        "-".into(),
                        Outcome::Failed,
                    ));
                }
            };
            // The proof: a token minted now, not one cached from before.
            let after = mint(&broker, &id).await;
            let outcome = match (&after, action) {
                (Err(_), _) => Outcome::Failed,
                (Ok(()), "created consent") => Outcome::Created,
                (Ok(()), _) => Outcome::AlreadyConsented,
            };
            Some(row(action.into(), describe(&after), outcome))
        });
    }
    let mut rows = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Ok(Some(row)) = done {
            rows.push(row);
        }
    }
    rows.sort_by(|a, b| a.customer.name.cmp(&b.customer.name));
    if let Some(path) = &args.metrics_file {
        tenantwatch_daemon::exposition::textfile::add_counts(
            path,
            "tenantwatch_consent_push_total",
            "Customers tenantwatch consent customers acted on, by result.",
            "result",
            rows.iter().map(|r| r.outcome.label()),
        )
        .map_err(|source| PushError::MetricsFile {
            path: path.clone(),
            source,
        })?;
    }
    Ok(rows)
}

fn print_table(rows: &[Row], dry_run: bool) {
    if rows.is_empty() {
        crate::say!("no customer needs the consent");
        return;
    }
    let header = ["CUSTOMER", "NAME", "BEFORE", "ACTION", "AFTER"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                cell(&r.customer.tenant_id),
                cell(&r.customer.name),
                r.before.clone(),
                r.action.clone(),
                r.after.clone(),
            ]
        })
        .collect();
    crate::commands::print_columns(header, &cells);
    let failed = rows.iter().filter(|r| r.outcome == Outcome::Failed).count();
    crate::say!(
        "\n{} customer(s): {failed} failed{}",
        rows.len(),
        if dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        }
    );
}

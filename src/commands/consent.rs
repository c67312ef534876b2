//! `tenantwatch consent`: the one interactive step of the Secure Application Model.
//! An admin agent signs in (with MFA) through the authorization-code flow with PKCE
//! and a loopback callback, or the device-code flow on a headless server; the
//! refresh token it yields is checked and written to the store.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use std::process::ExitCode;

use tenantwatch_common::time::unix_now;
use tenantwatch_daemon::auth::entra::{Redeemed, TokenError};
use tenantwatch_daemon::config::{Settings, DEFAULT_CONFIG_PATH};
use tenantwatch_daemon::daemon::Components;
use tenantwatch_daemon::model::{Api, StoredToken, REFRESH_TOKEN_LIFETIME};
use tenantwatch_daemon::store::{NewToken, Source};
use tenantwatch_daemon::support::secret::{ExposeSecret, SecretString};

use crate::commands::{choose, exit, load, when};

/// `tenantwatch consent`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    /// `customers`: push the SAM app's consent into customer tenants instead.
    #[command(subcommand)]
    pub action: Option<Action>,
    /// Config file (TOML).
    #[arg(long, short, default_value = DEFAULT_CONFIG_PATH, env = "TENANTWATCH_CONFIG")]
    pub config: PathBuf,
    /// The [[partners]] entry whose admin signs in and whose store gets the token.
    #[arg(long, value_name = "NAME", env = "TENANTWATCH_PARTNER")]
    pub partner: Option<String>,
    /// Use the device-code flow (for servers without a browser).
    #[arg(long)]
    pub device_code: bool,
    /// Callback port on 127.0.0.1 (default: the first free one in 8400-8999).
    #[arg(long)]
    pub port: Option<u16>,
    /// How long to wait for the sign-in, e.g. 10m.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
    /// Store the token even if the sign-in did not use MFA (Graph and ARM
    /// work; Partner Center refuses it, so `partner_center` discovery fails).
    #[arg(long)]
    pub allow_without_mfa: bool,
}

/// What `tenantwatch consent` does besides the sign-in.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Push the SAM app's consent (Graph and ARM grants from [consent]) into
    /// customers through Partner Center, as an admin agent.
    Customers(crate::commands::consent_customers::Args),
}

/// Ports tried for the callback when none is given, as Partner-Center-PowerShell does.
pub const CALLBACK_PORTS: std::ops::RangeInclusive<u16> = 8400..=8999;

/// How the admin signs in.
#[derive(Debug, Clone)]
pub struct ConsentOptions {
    /// Device-code flow instead of a browser redirect.
    pub device_code: bool,
    /// Callback port; `None` picks a free one in [`CALLBACK_PORTS`].
    pub port: Option<u16>,
    /// How long to wait for the sign-in.
    pub timeout: Duration,
    /// Store a token whose sign-in did not use MFA.
    pub allow_without_mfa: bool,
}

/// What consent stored, and what it could tell about the sign-in.
#[derive(Debug)]
pub struct Consented {
    /// The stored version.
    pub stored: StoredToken,
    /// Whether the sign-in used MFA (`amr` contains `mfa`); `None` when the
    /// access token could not be read.
    pub mfa: Option<bool>,
}

/// Consent failed; nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    /// Building the clients failed.
    #[error(transparent)]
    Setup(#[from] tenantwatch_daemon::daemon::DaemonError),
    /// No callback port could be bound.
    #[error("cannot listen for the sign-in callback on 127.0.0.1:{port}: {source}")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    /// The sign-in returned an error (user cancelled, consent denied, …).
    #[error("sign-in failed: {error}: {description}")]
    SignIn { error: String, description: String },
    /// The token endpoint refused.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// No refresh token came back (the app lacks `offline_access`).
    #[error("Entra ID returned no refresh token; add the offline_access permission to the app")]
    NoRefreshToken,
    /// The sign-in did not complete in time.
    #[error("no sign-in within {0:?}")]
    Timeout(Duration),
    /// The device code expired or was declined.
    #[error("device code flow ended: {0}")]
    DeviceCode(String),
    /// The sign-in did not use MFA, so Partner Center would refuse every call.
    #[error("the sign-in did not use MFA (the access token's amr claim has no \"mfa\"), so Partner Center refuses every App+User call made with it (enforced since 2026-04-01); nothing was stored. Run `tenantwatch consent` again and complete MFA, or pass --allow-without-mfa to store it anyway (Graph and ARM accept it; Partner Center discovery will fail with mfa_claim_missing)")]
    WithoutMfa,
    /// The new token could not be stored.
    #[error("the new refresh token could not be stored: {0}")]
    Store(#[from] tenantwatch_daemon::store::StoreError),
    /// Interrupted.
    #[error("interrupted")]
    Cancelled,
}

/// PKCE verifier and its S256 challenge (RFC 7636 §4).
pub fn pkce() -> (SecretString, String) {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let verifier = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    (SecretString::from(verifier), challenge)
}

fn random_state() -> String {
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs in, stores the refresh token and prints its version and expiry.
pub async fn run(args: Args, log: crate::commands::LogOptions) -> ExitCode {
    if let Some(Action::Customers(a)) = args.action {
        return crate::commands::consent_customers::run(a, log).await;
    }
    let settings = load(&args.config, log).and_then(|s| choose(&s, args.partner.as_deref()));
    match settings {
        Ok(settings) => exit(consent(settings, args).await),
        Err(code) => code,
    }
}

async fn consent(settings: Settings, args: Args) -> anyhow::Result<()> {
    let shutdown = crate::signals::on_signals()?;
    let opts = ConsentOptions {
        device_code: args.device_code,
        port: args.port,
        timeout: args.timeout,
        allow_without_mfa: args.allow_without_mfa,
    };
    let done = sign_in(&settings, &opts, shutdown, |msg| {
        use std::io::Write;
        println!("{msg}");
        let _ = std::io::stdout().flush();
    })
    .await?;
    let mfa = match done.mfa {
        Some(true) => "yes",
        Some(false) => "NO (stored because of --allow-without-mfa; Partner Center will refuse it)",
        None => "unknown (the access token could not be read)",
    };
    println!(
        "signed in; the refresh token works and is stored\n  version  {}\n  expires  {} (if not used)\n  MFA      {mfa}",
        done.stored.version,
        when(done.stored.expires)
    );
    Ok(())
}

/// Runs the sign-in, verifies the token (it works, and its sign-in used MFA
/// unless `allow_without_mfa`) and stores it. `say` receives what the user must see.
pub async fn sign_in(
    settings: &Settings,
    opts: &ConsentOptions,
    shutdown: CancellationToken,
    say: impl Fn(&str),
) -> Result<Consented, ConsentError> {
    let c = Components::build(settings)?;
    let app = &settings.partner;
    let scope = format!(
        "{} offline_access openid profile",
        settings.cloud.audiences.scope(Api::PartnerCenter)
    );
    let redeemed = if opts.device_code {
        device_code_flow(&c, settings, &scope, opts, &shutdown, &say).await?
    } else {
        browser_flow(&c, settings, &scope, opts, &shutdown, &say).await?
    };
    let issued_by_entra = redeemed.server_time;
    let refresh = redeemed.refresh_token.ok_or(ConsentError::NoRefreshToken)?;
    // Prove the token works before it replaces anything.
    let check = c
        .tokens
        .redeem_refresh_token(
            app,
            &app.tenant_id,
            &settings.cloud.audiences.scope(Api::PartnerCenter),
            Api::PartnerCenter.label(),
            &refresh,
        )
        .await?;
    // Partner Center reads `amr` from this very token; the payload is read
    // for that one claim and dropped with the token.
    let mfa = tenantwatch_daemon::support::jwt::amr_has_mfa(check.access.secret.expose_secret());
    drop(check);
    if mfa == Some(false) && !opts.allow_without_mfa {
        return Err(ConsentError::WithoutMfa);
    }
    let issued_at = issued_by_entra.unwrap_or(unix_now() as i64);
    let stored = c
        .broker
        .store()
        .save(&NewToken {
            value: &refresh,
            issued_at,
            expires: issued_at + REFRESH_TOKEN_LIFETIME.as_secs() as i64,
            source: Source::Consent,
        })
        .await?;
    Ok(Consented { stored, mfa })
}

#[derive(serde::Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

type CallbackResult = Result<SecretString, ConsentError>;

#[derive(Clone)]
struct CallbackState {
    expected_state: String,
    tx: mpsc::Sender<CallbackResult>,
}

async fn callback(State(s): State<CallbackState>, Query(q): Query<Callback>) -> Html<&'static str> {
    // Only the redirect carrying our own `state` counts; anything else is ignored.
    if q.state.as_deref() != Some(s.expected_state.as_str()) {
        return Html(
            "<h1>tenantwatch</h1><p>This request does not belong to the sign-in in progress.</p>",
        );
    }
    let result = match (q.code, q.error) {
        (Some(code), None) => {
            tenantwatch_daemon::support::scrub::remember(&code);
            Ok(SecretString::from(code))
        }
        (_, error) => Err(ConsentError::SignIn {
            error: error.unwrap_or_else(|| "no_code".into()),
            description: q.error_description.unwrap_or_default(),
        }),
    };
    let ok = result.is_ok();
    let _ = s.tx.try_send(result);
    if ok {
        Html("<h1>tenantwatch</h1><p>Signed in. You can close this window and return to the terminal.</p>")
    } else {
        Html("<h1>tenantwatch</h1><p>Sign-in failed; see the terminal.</p>")
    }
}

async fn bind(port: Option<u16>) -> Result<tokio::net::TcpListener, ConsentError> {
    let loopback = |p| SocketAddr::from((Ipv4Addr::LOCALHOST, p));
    if let Some(p) = port {
        return tokio::net::TcpListener::bind(loopback(p))
            .await
            .map_err(|source| ConsentError::Bind { port: p, source });
    }
    let mut last = None;
    for p in CALLBACK_PORTS {
        match tokio::net::TcpListener::bind(loopback(p)).await {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(ConsentError::Bind {
        port: *CALLBACK_PORTS.end(),
        source: last.unwrap_or_else(|| std::io::Error::other("no port")),
    })
}

async fn browser_flow(
    c: &Components,
    settings: &Settings,
    scope: &str,
    opts: &ConsentOptions,
    shutdown: &CancellationToken,
    say: &impl Fn(&str),
) -> Result<Redeemed, ConsentError> {
    let listener = bind(opts.port).await?;
    let port = listener
        .local_addr()
        .map_err(|source| ConsentError::Bind { port: 0, source })?
        .port();
    let redirect = format!("http://localhost:{port}");
    let (verifier, challenge) = pkce();
    tenantwatch_daemon::support::scrub::remember(verifier.expose_secret());
    let state = random_state();
    let (tx, mut rx) = mpsc::channel(1);
    let router = Router::new()
        .route("/", get(callback))
        .with_state(CallbackState {
            expected_state: state.clone(),
            tx,
        });
    let server_stop = CancellationToken::new();
    let serve =
        axum::serve(listener, router).with_graceful_shutdown(server_stop.clone().cancelled_owned());
    let server = tokio::spawn(async move { serve.await });
    let url = c
        .tokens
        .authorize_url(&settings.partner, scope, &redirect, &state, &challenge);
    say(&format!(
        "Open this URL in a browser and sign in as a Partner Center admin agent (with MFA):\n\n  {url}\n\nWaiting for the sign-in on {redirect} …"
    ));
    let code = tokio::select! {
        r = rx.recv() => r.unwrap_or(Err(ConsentError::Cancelled)),
        _ = tokio::time::sleep(opts.timeout) => Err(ConsentError::Timeout(opts.timeout)),
        _ = shutdown.cancelled() => Err(ConsentError::Cancelled),
    };
    server_stop.cancel();
    let _ = server.await;
    let code = code?;
    Ok(c.tokens
        .authorization_code(&settings.partner, scope, &code, &redirect, &verifier)
        .await?)
}

async fn device_code_flow(
    c: &Components,
    settings: &Settings,
    scope: &str,
    opts: &ConsentOptions,
    shutdown: &CancellationToken,
    say: &impl Fn(&str),
) -> Result<Redeemed, ConsentError> {
    let dc = c.tokens.device_code(&settings.partner, scope).await?;
    tenantwatch_daemon::support::scrub::remember(dc.device_code.expose_secret());
    say(&if dc.message.is_empty() {
        format!(
            "To sign in, open {} and enter the code {}",
            dc.verification_uri, dc.user_code
        )
    } else {
        // Entra's sentence, shown as received only once cleaned.
        crate::commands::clean(&dc.message)
    });
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(dc.expires_in).min(opts.timeout);
    let mut interval = Duration::from_secs(dc.interval.max(1));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = tokio::time::sleep_until(deadline) => return Err(ConsentError::Timeout(opts.timeout)),
            _ = shutdown.cancelled() => return Err(ConsentError::Cancelled),
        }
        match c
            .tokens
            .device_code_poll(&settings.partner, scope, &dc.device_code)
            .await
        {
            Ok(r) => return Ok(r),
            Err(e) => match e.error.as_deref() {
                Some("authorization_pending") => {}
                // RFC 8628 §3.5: slow down by 5 seconds.
                Some("slow_down") => interval = interval.saturating_add(Duration::from_secs(5)),
                Some(
                    other @ ("expired_token" | "authorization_declined" | "bad_verification_code"),
                ) => return Err(ConsentError::DeviceCode(other.to_string())),
                _ => return Err(e.into()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenantwatch_daemon::support::secret::ExposeSecret;

    #[test]
    fn pkce_challenge_is_s256_of_verifier() {
        let (v, c) = pkce();
        let v = v.expose_secret();
        assert!(v.len() >= 43 && v.len() <= 128);
        let expect =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes()));
        assert_eq!(c, expect);
        // RFC 7636 appendix B test vector.
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(
            b"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        ));
        assert_eq!(b, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }
}

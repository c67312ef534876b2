//! What clients read before asking for a token: the OpenID configuration
//! (v2 and v1) and key set of each tenant, and the discovery document and
//! key set of the simulated Kubernetes issuer that workload identity trusts.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::authority::{resolve, Authority};
use super::errors::error_ctx;
use super::state::Entra;
use super::token::Flavor;
use crate::http;
use crate::state::SimState;

/// The Kubernetes issuer's OpenID configuration.
pub(super) async fn federation_discovery(State(entra): State<Arc<Entra>>) -> Response {
    http::json(StatusCode::OK, &entra.creds.issuer.discovery(), &[])
}

/// The Kubernetes issuer's signing keys.
pub(super) async fn federation_jwks(State(entra): State<Arc<Entra>>) -> Response {
    http::json(StatusCode::OK, &entra.creds.issuer.jwks(), &[])
}

/// `/{tenant}/v2.0/.well-known/openid-configuration`.
pub(super) async fn openid_v2(
    State(entra): State<Arc<Entra>>,
    Path(tenant): Path<String>,
) -> Response {
    discovery(&entra.sim, &tenant, Flavor::V2)
}

/// `/{tenant}/.well-known/openid-configuration`.
pub(super) async fn openid_v1(
    State(entra): State<Arc<Entra>>,
    Path(tenant): Path<String>,
) -> Response {
    discovery(&entra.sim, &tenant, Flavor::V1)
}

fn discovery(state: &SimState, seg: &str, flavor: Flavor) -> Response {
    let login = &state.origins.login;
    let (tid, issuer_tid, region) = match resolve(state, seg) {
        Ok(Authority::Tenant(t)) => (t.id.clone(), t.id.clone(), json!("NA")),
        // The multi-tenant documents keep a `{tenantid}` placeholder in the issuer.
        Ok(Authority::Multi(m)) => (m, "{tenantid}".to_string(), Value::Null),
        Err(e) => {
            let ctx = error_ctx(state, http::new_id(), None);
            return http::json(e.status, &e.body(&ctx), &[]);
        }
    };
    let graph_host = state
        .origins
        .graph
        .trim_start_matches("https://")
        .to_string();
    let doc = match flavor {
        Flavor::V2 => json!({
            "token_endpoint": format!("{login}/{tid}/oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{login}/{tid}/discovery/v2.0/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": format!("{login}/{issuer_tid}/v2.0"),
            "request_uri_parameter_supported": false,
            "userinfo_endpoint": format!("{}/oidc/userinfo", state.origins.graph),
            "authorization_endpoint": format!("{login}/{tid}/oauth2/v2.0/authorize"),
            "device_authorization_endpoint": format!("{login}/{tid}/oauth2/v2.0/devicecode"),
            "http_logout_supported": true,
            "frontchannel_logout_supported": true,
            "end_session_endpoint": format!("{login}/{tid}/oauth2/v2.0/logout"),
            "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
            "kerberos_endpoint": format!("{login}/{tid}/kerberos"),
            "tenant_region_scope": region,
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": graph_host,
            "rbac_url": "https://pas.windows.net",
        }),
        Flavor::V1 => json!({
            "token_endpoint": format!("{login}/{tid}/oauth2/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{login}/common/discovery/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "http_logout_supported": true,
            "frontchannel_logout_supported": true,
            "end_session_endpoint": format!("{login}/{tid}/oauth2/logout"),
            "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
            "scopes_supported": ["openid"],
            "issuer": format!("https://sts.windows.net/{issuer_tid}/"),
            "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce", "email", "given_name", "family_name", "nickname"],
            "microsoft_multi_refresh_token": true,
            "check_session_iframe": format!("{login}/{tid}/oauth2/checksession"),
            "userinfo_endpoint": format!("{login}/{tid}/openid/userinfo"),
            "kerberos_endpoint": format!("{login}/{tid}/kerberos"),
            "tenant_region_scope": region,
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": graph_host,
            "rbac_url": "https://pas.windows.net",
        }),
    };
    http::json(StatusCode::OK, &doc, &[])
}

/// A key set naming the sim's key id. The sim signs with HMAC, so the RSA
/// modulus here is a placeholder: clients fetch this but nothing verifies it.
pub(super) async fn jwks(State(entra): State<Arc<Entra>>) -> Response {
    let state = &*entra.sim;
    let kid = state.signer.kid();
    let mut modulus = Vec::with_capacity(256);
    for i in 0u8..8 {
        modulus.extend_from_slice(&Sha256::new().chain_update(kid).chain_update([i]).finalize());
    }
    let doc = json!({
        "keys": [{
            "kty": "RSA",
            "use": "sig",
            "kid": kid,
            "x5t": kid,
            "n": URL_SAFE_NO_PAD.encode(&modulus),
            "e": "AQAB",
        }]
    });
    http::json(StatusCode::OK, &doc, &[])
}

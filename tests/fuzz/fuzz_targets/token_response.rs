//! Token-endpoint responses: any status and body must give tokens or a
//! `TokenError` naming the tenant, and never echo the access token.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use tenantwatch_daemon::auth::entra::parse_token_response;
use tenantwatch_fuzz::{response, TENANT};

fuzz_target!(|data: &[u8]| {
    let r = response(data);
    let url = "https://login.test/fuzz-tenant-0001/oauth2/v2.0/token";
    match parse_token_response(
        TENANT,
        "scope",
        url,
        r.status,
        &r.headers,
        r.body,
        Instant::now(),
    ) {
        Ok(_) => assert!(r.status.is_success()),
        Err(e) => {
            assert_eq!(e.tenant, TENANT);
            assert_eq!(e.status, Some(r.status.as_u16()));
            let _ = e.to_string();
        }
    }
});

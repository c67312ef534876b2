//! Key Vault Get/Set Secret responses (secret bundles and error bodies).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tenantwatch_daemon::outbound::client::ApiError;
use tenantwatch_daemon::store::keyvault::parse_secret_response;
use tenantwatch_fuzz::{assert_names, response, TENANT};

fuzz_target!(|data: &[u8]| {
    let r = response(data);
    let url = "https://vault.test/secrets/refresh-token/?api-version=7.6";
    match parse_secret_response(TENANT, url, r.status, &r.headers, r.body) {
        Ok(b) => {
            assert!(r.status.is_success());
            let _ = b.version();
        }
        Err(e) => {
            assert_names(&e.to_string(), "keyvault");
            // A success body holds the secret; its text must not reach the error.
            if let ApiError::Decode { snippet, .. } = &e {
                assert!(!snippet.contains("value"), "{snippet}");
            }
        }
    }
});

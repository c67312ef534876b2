//! Config: TOML text (and, after a NUL byte, `KEY=VALUE` environment lines)
//! through the daemon's own load-and-validate path.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tenantwatch_daemon::config::{ConfigError, Settings};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (toml, env) = text.split_once('\0').unwrap_or((text, ""));
    let env: Vec<(String, String)> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let path = Path::new("/nonexistent/fuzz/tenantwatch.toml");
    match Settings::from_toml(toml, path, env) {
        Ok(_) => {}
        Err(ConfigError::Parse { path: p, .. }) | Err(ConfigError::Invalid { path: p, .. }) => {
            assert_eq!(p, path)
        }
        Err(other) => panic!("unexpected error kind: {other:?}"),
    }
});

//! Bad configuration: the binary must refuse to start, exit 2, and say which key is wrong.

use std::path::Path;
use std::process::Command;

use crate::helpers::bin;

fn run_with(config: &Path, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(bin());
    cmd.args(["run", "--config"])
        .arg(config)
        .args(["--listen", "127.0.0.1:0"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("binary runs");
    crate::helpers::record_output(&String::from_utf8_lossy(&out.stdout));
    crate::helpers::record_output(&String::from_utf8_lossy(&out.stderr));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const GOOD: &str = r#"
[cloud]
name = "public"
[partner]
tenant_id = "11111111-1111-1111-1111-111111111111"
client_id = "22222222-2222-2222-2222-222222222222"
client_secret_file = "SECRET"
[store]
kind = "keyvault"
[store.keyvault]
url = "https://myvault.vault.azure.net"
secret_name = "tenantwatch-refresh-token"
[store.keyvault.identity]
kind = "client_secret"
tenant_id = "11111111-1111-1111-1111-111111111111"
client_id = "33333333-3333-3333-3333-333333333333"
client_secret_file = "SECRET"
"#;

fn write(dir: &Path, body: &str) -> std::path::PathBuf {
    let secret = dir.join("secret");
    std::fs::write(&secret, "not-a-real-secret\n").unwrap();
    let p = dir.join("tenantwatch.toml");
    std::fs::write(&p, body.replace("SECRET", &secret.display().to_string())).unwrap();
    p
}

fn expect_config_error(body: &str, env: &[(&str, &str)], needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), body);
    let (code, stderr) = run_with(&p, env);
    assert_eq!(code, Some(2), "exit code; stderr:\n{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "expected {n:?} in:\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !stderr.contains("not-a-real-secret"),
        "secret echoed: {stderr}"
    );
}

#[test]
fn missing_file() {
    let (code, stderr) = run_with(Path::new("/nonexistent/tenantwatch.toml"), &[]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("/nonexistent/tenantwatch.toml not found"),
        "{stderr}"
    );
    assert!(stderr.contains("--config"), "{stderr}");
}

#[test]
fn bad_toml_names_the_line() {
    expect_config_error(
        &format!("{GOOD}\n[server\nlisten = 1\n"),
        &[],
        &["TOML", "line"],
    );
}

#[test]
fn unknown_cloud() {
    expect_config_error(
        &GOOD.replace("name = \"public\"", "name = \"mars\""),
        &[],
        &[
            "cloud.name: unknown cloud \"mars\"",
            "public, usgov, china or custom",
        ],
    );
}

#[test]
fn missing_secret_file_and_missing_secret() {
    expect_config_error(
        &GOOD.replacen(
            "client_secret_file = \"SECRET\"",
            "client_secret_file = \"/nonexistent/secret\"",
            1,
        ),
        &[],
        &["partner.client_secret_file: cannot read secret file /nonexistent/secret"],
    );
    expect_config_error(
        &GOOD.replacen("client_secret_file = \"SECRET\"\n", "", 1),
        &[],
        &[
            "partner.client_secret_file: missing",
            "TENANTWATCH__PARTNER__CLIENT_SECRET",
        ],
    );
}

#[test]
fn bad_url() {
    expect_config_error(
        &GOOD.replace("https://myvault.vault.azure.net", "myvault"),
        &[],
        &["store.keyvault.url: \"myvault\" is not a URL"],
    );
    expect_config_error(
        &GOOD.replace("name = \"public\"", "name = \"custom\"\nlogin = \"http://127.0.0.1:1\"\ngraph = \"https://g\"\narm = \"https://a\"\npartner_center = \"https://p\""),
        &[],
        &["cloud.login: \"http://127.0.0.1:1\" must be an https:// URL"],
    );
}

#[test]
fn env_override_is_validated_too() {
    expect_config_error(
        GOOD,
        &[("TENANTWATCH__SERVER__LISTEN", "nowhere")],
        &["server.listen: \"nowhere\""],
    );
}

#[test]
fn several_problems_reported_at_once() {
    let body = GOOD
        .replace("name = \"public\"", "name = \"mars\"")
        .replace(
            "secret_name = \"tenantwatch-refresh-token\"",
            "secret_name = \"bad name!\"",
        );
    expect_config_error(&body, &[], &["cloud.name", "store.keyvault.secret_name"]);
}

#[test]
fn a_directory_as_config_is_named_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = run_with(dir.path(), &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{} is a directory", dir.path().display())),
        "{stderr}"
    );
    assert!(!stderr.contains("not found"), "{stderr}");
}

#[test]
fn unknown_key_from_the_environment_names_the_variable() {
    expect_config_error(
        GOOD,
        &[("TENANTWATCH__SERVER__LISTN", "0.0.0.0:9464")],
        &["TENANTWATCH__SERVER__LISTN sets unknown key server.listn; [server] takes listen"],
    );
}

#[test]
fn numbers_out_of_range_name_their_key() {
    expect_config_error(
        &format!("{GOOD}[collection]\nmax_series = 99999999999999999999\nmax_pages = -1\nconcurrency = 1.5\n"),
        &[],
        &[
            "collection.max_series: 99999999999999999999 is out of range",
            "collection.max_pages: expected a whole number, 0 or more, got -1",
            "collection.concurrency: expected a whole number, 0 or more, got 1.5",
        ],
    );
    expect_config_error(
        GOOD,
        &[
            ("TENANTWATCH__COLLECTION__MAX_SERIES", "-5"),
            ("TENANTWATCH__SERVER__MAX_REQUESTS", "99999999999999999999"),
            ("TENANTWATCH__COLLECTION__MAX_PAGES", "0"),
        ],
        &[
            "TENANTWATCH__COLLECTION__MAX_SERIES sets collection.max_series: expected a whole number, 0 or more, got \"-5\"",
            "TENANTWATCH__SERVER__MAX_REQUESTS sets server.max_requests: expected a whole number, 0 or more, got \"99999999999999999999\"",
            "TENANTWATCH__COLLECTION__MAX_PAGES sets collection.max_pages: 0 must be between 1 and 100000",
        ],
    );
}

#[test]
fn type_errors_unknown_keys_and_invalid_values_reported_together() {
    let body = GOOD
        .replace("name = \"public\"", "name = \"mars\"")
        .replace("secret_name = ", "secretname = ")
        + "[collection]\nconcurrency = \"many\"\n[rotation]\nenabled = 1\n";
    expect_config_error(
        &body,
        &[("TENANTWATCH__LOG__FORMT", "json")],
        &[
            "collection.concurrency: expected a whole number, 0 or more, got \"many\"",
            "rotation.enabled: expected true or false, got 1",
            "store.keyvault.secretname: unknown key; [store.keyvault] takes url, secret_name, identity",
            "TENANTWATCH__LOG__FORMT sets unknown key log.formt",
            "cloud.name: unknown cloud \"mars\"",
            "store.keyvault.secret_name: missing",
        ],
    );
}

#[test]
fn a_secret_of_the_wrong_type_is_named_but_not_shown() {
    let body = GOOD.replacen(
        "client_secret_file = \"SECRET\"",
        "client_secret = 8675309123",
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = run_with(&write(dir.path(), &body), &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("partner.client_secret: expected a string, got a number"),
        "{stderr}"
    );
    assert!(!stderr.contains("8675309123"), "secret echoed: {stderr}");
}

#[test]
fn a_log_level_that_is_no_level_is_exit_2_naming_the_key() {
    expect_config_error(
        &format!("{GOOD}[log]\nlevel = \"warning\"\n"),
        &[],
        &[
            "log.level: \"warning\" is not a level",
            "trace, debug, info, warn, error, off",
        ],
    );
    expect_config_error(
        GOOD,
        &[("RUST_LOG", "warning")],
        &["RUST_LOG: \"warning\" is not a level"],
    );
    expect_config_error(
        GOOD,
        &[("RUST_LOG", "info,tenantwatch_daemon=verbose")],
        &["RUST_LOG: \"tenantwatch_daemon=verbose\" has level \"verbose\""],
    );
    // Valid filters pass: the only problem left is the one planted.
    let dir = tempfile::tempdir().unwrap();
    let body = format!("{GOOD}[log]\nlevel = \"tenantwatch_daemon=debug,info\"\n")
        .replace("name = \"public\"", "name = \"mars\"");
    let (code, stderr) = run_with(&write(dir.path(), &body), &[("RUST_LOG", "off")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("cloud.name"), "{stderr}");
    assert!(
        !stderr.contains("log.level") && !stderr.contains("RUST_LOG"),
        "{stderr}"
    );
}

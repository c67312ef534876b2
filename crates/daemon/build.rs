//! Captures what `tenantwatch_build_info{version,revision,rustc}` reports:
//! the git revision the daemon was built from and the compiler's version.
//! Without git (a source tarball, a build container without `.git`)
//! `TENANTWATCH_REVISION` names the revision, else it is `unknown`.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=TENANTWATCH_REVISION");
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let revision = std::env::var("TENANTWATCH_REVISION")
        .ok()
        .filter(|r| !r.trim().is_empty())
        .or_else(|| git(&dir, &["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    watch_git(&dir);
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            // "rustc 1.95.0 (59807616e 2026-04-14)" -> "1.95.0"
            String::from_utf8(o.stdout)
                .ok()?
                .split_whitespace()
                .nth(1)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=TENANTWATCH_REVISION={}", clean(&revision));
    println!(
        "cargo:rustc-env=TENANTWATCH_RUSTC={}",
        clean(&rustc_version)
    );
}

/// `git ARGS` in `dir`, trimmed, if git is there and answers.
fn git(dir: &str, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// Rebuild when HEAD moves: the HEAD file, the branch it names, packed refs.
fn watch_git(dir: &str) {
    let Some(git_dir) = git(dir, &["rev-parse", "--absolute-git-dir"]) else {
        return;
    };
    let common = git(dir, &["rev-parse", "--git-common-dir"])
        .map(|c| Path::new(dir).join(c))
        .unwrap_or_else(|| Path::new(&git_dir).to_path_buf());
    println!("cargo:rerun-if-changed={git_dir}/HEAD");
    println!(
        "cargo:rerun-if-changed={}",
        common.join("packed-refs").display()
    );
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        println!("cargo:rerun-if-changed={}", common.join(branch).display());
    }
}

/// A label value: printable ASCII without quotes or backslashes.
fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\\'))
        .take(64)
        .collect()
}

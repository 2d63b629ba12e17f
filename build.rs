//! Build-time facts for `--version` and the build_info metric: which commit and which target.
//!
//! Sets `SESSION_PROXY_GIT_COMMIT` (12-digit short hash, or "unknown") and `SESSION_PROXY_TARGET`
//! for `env!`. A bug report that quotes `--version` then says exactly what was built.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // Builds without the repository (a Docker build context leaves .git out, a source tarball
    // has none) can still name their commit: `SESSION_PROXY_GIT_COMMIT=abc123 cargo build`.
    println!("cargo:rerun-if-env-changed=SESSION_PROXY_GIT_COMMIT");
    let given = std::env::var("SESSION_PROXY_GIT_COMMIT")
        .ok()
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    let commit = given
        .or_else(from_git)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=SESSION_PROXY_GIT_COMMIT={commit}");
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo:rustc-env=SESSION_PROXY_TARGET={target}");
}

/// The short hash of HEAD, when this crate is the top of a git checkout and git runs.
fn from_git() -> Option<String> {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    // Only this crate's own repository: built inside another checkout's tree (vendored, or a
    // copied build context under target/ as tests/dockerfile.py makes), git would answer with
    // the enclosing repository's commit, which says nothing about this source.
    let top = git(&dir, &["rev-parse", "--show-toplevel"])?;
    if !same_dir(Path::new(&top), &dir) {
        return None;
    }
    let commit = git(&dir, &["rev-parse", "--short=12", "HEAD"])?;
    // Rerun when HEAD moves, not on every build: HEAD changes on checkout, the branch's ref on
    // commit. A packed ref (after `git gc`) has no file of its own until the next commit writes
    // one, which only the reflog notices; so the reflog is watched too. Only existing files are
    // named: cargo treats a missing one as changed and would rerun every time.
    let mut watch = vec!["HEAD".to_owned(), "logs/HEAD".to_owned()];
    if let Some(branch) = git(&dir, &["symbolic-ref", "-q", "HEAD"]) {
        watch.push(branch);
        watch.push("packed-refs".to_owned());
    }
    for name in watch {
        if let Some(path) = git(&dir, &["rev-parse", "--git-path", &name]) {
            let path = dir.join(path);
            if path.is_file() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    Some(commit)
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

//! The documentation names only what exists: every `KUMA_*` / `ATOLL_*` environment variable
//! the Markdown pages mention is read somewhere in the code, and every repository path and
//! relative link they give is a file or directory. A page promising a variable nobody reads
//! sends an operator after a setting that does nothing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The documentation: README.md and docs/*.md, as (path, text).
fn pages() -> Vec<(PathBuf, String)> {
    let mut paths = vec![root().join("README.md")];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            paths.push(path);
        }
    }
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect()
}

/// All Rust source of the workspace but this file (whose examples must not count),
/// concatenated. Tests count: some variables are read by them (`ATOLL_GUI_SCREENSHOTS`).
fn code() -> String {
    let this = Path::new(file!()).file_name().unwrap_or_default();
    let mut out = String::new();
    let mut stack: Vec<PathBuf> = [
        "shared",
        "zone",
        "global",
        "cli",
        "proto",
        "e2e",
        "terraform-provider",
    ]
    .iter()
    .map(|d| root().join(d))
    .collect();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && !(path.ends_with(this) && path.parent().is_some_and(|p| p.ends_with("tests")))
            {
                out.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    out
}

/// Variable names (`KUMA_…`, `ATOLL_…`) in `text`. A family written `KUMA_STORE_POSTGRES_*`
/// comes out as its prefix `KUMA_STORE_POSTGRES`.
fn variables(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut found = BTreeSet::new();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        let starts = (rest.starts_with(b"KUMA_") || rest.starts_with(b"ATOLL_"))
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'));
        if !starts {
            i += 1;
            continue;
        }
        let len = rest
            .iter()
            .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || **b == b'_')
            .count();
        // ASCII only, so a whole `str`.
        let name = String::from_utf8_lossy(&rest[..len]);
        let name = name.trim_end_matches('_');
        if name.contains('_') && name.len() > "KUMA_".len() {
            found.insert(name.to_string());
        }
        i += len.max(1);
    }
    found
}

/// Repository paths in backticks (`deploy/quickstart.sh`, `e2e/tests/kds.rs`) and relative
/// Markdown link targets (`(crosszone.md#modes)`), resolved against the root or the page.
fn paths(page: &Path, text: &str) -> BTreeSet<PathBuf> {
    const TOP: [&str; 9] = [
        "deploy/", "docs/", "e2e/", "shared/", "zone/", "global/", "cli/", "proto/", "fuzz/",
    ];
    let mut found = BTreeSet::new();
    for (n, quoted) in text.split('`').enumerate() {
        let quoted = quoted.trim_start_matches("./");
        if n % 2 == 1
            && TOP.iter().any(|t| quoted.starts_with(t))
            && !quoted.contains(char::is_whitespace)
            && !quoted.contains(['*', '<', '{', '$'])
        {
            let clean = quoted.split(['#', ':']).next().unwrap_or(quoted);
            found.insert(root().join(clean));
        }
    }
    for link in text.split("](").skip(1) {
        let target = link.split(')').next().unwrap_or_default();
        let target = target.split('#').next().unwrap_or_default();
        if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        found.insert(page.parent().unwrap().join(target));
    }
    found
}

#[test]
fn every_documented_environment_variable_is_read_by_the_code() {
    let code = code();
    let mut documented = BTreeSet::new();
    let mut missing = Vec::new();
    for (page, text) in pages() {
        for name in variables(&text) {
            if !code.contains(&name) {
                missing.push(format!("{}: {name}", page.display()));
            }
            documented.insert(name);
        }
    }
    // Not vacuous: the pages do document the configuration.
    assert!(
        documented.len() >= 60,
        "only {} variables found in the docs: {documented:?}",
        documented.len()
    );
    for known in [
        "KUMA_ZONE_INGRESS_ADVERTISED_ADDRESS",
        "KUMA_MULTIZONE_GLOBAL_KDS_HOSTNAMES",
        "KUMA_DP_SERVER_HOSTNAMES",
        "ATOLL_API_TOKEN",
    ] {
        assert!(documented.contains(known), "{known} not found in the docs");
    }
    assert!(
        missing.is_empty(),
        "documented but not in the code:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_documented_repository_path_and_link_exists() {
    let mut checked = 0;
    let mut missing = Vec::new();
    for (page, text) in pages() {
        for path in paths(&page, &text) {
            checked += 1;
            if !path.exists() {
                missing.push(format!("{}: {}", page.display(), path.display()));
            }
        }
    }
    assert!(checked >= 50, "only {checked} paths and links found");
    assert!(
        missing.is_empty(),
        "documented but missing:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_checks_find_what_they_look_for() {
    let text = "Set `KUMA_FOO_BAR=1` or KUMA_STORE_POSTGRES_* but not XKUMA_NO or KUMA_, see \
                `deploy/nowhere.sh` and [x](missing.md#a), [y](https://example.com).";
    assert_eq!(
        variables(text),
        BTreeSet::from([
            "KUMA_FOO_BAR".to_string(),
            "KUMA_STORE_POSTGRES".to_string()
        ])
    );
    let page = root().join("docs/page.md");
    assert_eq!(
        paths(&page, text),
        BTreeSet::from([
            root().join("deploy/nowhere.sh"),
            root().join("docs/missing.md")
        ])
    );
    assert!(!code().contains("KUMA_FOO_BAR"));
}

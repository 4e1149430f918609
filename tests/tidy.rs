//! Conventions checked mechanically (rust-analyzer's "tidy" idea): every source file says what
//! it owns, nothing unfinished is committed, no shell is spawned, and the README's two commands
//! and CI's entry point stay in step.

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
        .map(|e| e.path().to_path_buf())
        .collect()
}

#[test]
fn every_source_file_opens_with_a_module_doc() {
    for file in rust_files("src").into_iter().chain(rust_files("tests")).chain(rust_files("benches")) {
        let text = fs::read_to_string(&file).unwrap();
        assert!(text.starts_with("//!"), "{} must open with a `//!` paragraph saying what it owns", file.display());
    }
}

#[test]
fn nothing_unfinished_or_shell_spawning() {
    let banned = [
        ["todo", "!("].concat(),
        ["unimplemented", "!("].concat(),
        ["#[", "ignore]"].concat(),
        ["\"sh\"", ", \"-c\""].concat(),
    ];
    for file in rust_files("src").into_iter().chain(rust_files("tests")) {
        let text = fs::read_to_string(&file).unwrap();
        for word in &banned {
            assert!(!text.contains(word.as_str()), "{} contains {word}", file.display());
        }
    }
}

#[test]
fn readme_starts_with_the_two_commands_and_ci_runs_the_test_one() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    let head: String = readme.lines().take(12).collect::<Vec<_>>().join("\n");
    assert!(head.contains("scripts/demo"), "README must start with the demo command");
    assert!(head.contains("scripts/test"), "README must start with the test command");
    let ci = fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(ci.contains("scripts/test"), ".ci/run must run the README's test command");
}

/// Modules below the service layer, which the command layer must not reach.
const BELOW_SERVICE: &[&str] = &["store", "stages", "one", "onesim", "exec", "engine", "render"];

/// Every place a source text names a module below the service layer, as `crate::x` or inside a
/// `use crate::{…}` group.
fn reaches_below_service(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for module in BELOW_SERVICE {
            let direct = format!("crate::{module}");
            let direct_hit = code
                .match_indices(&direct)
                .any(|(at, _)| !code[at + direct.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_'));
            let grouped = code.contains("crate::{")
                && code.split(['{', ',', '}']).any(|part| part.trim().split("::").next() == Some(module));
            if direct_hit || grouped {
                found.push(format!("line {}: {}", n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn the_command_layer_the_api_and_the_client_reach_nothing_below_the_service() {
    assert_eq!(reaches_below_service("use crate::store::Store;").len(), 1, "the check must catch a direct path");
    assert_eq!(reaches_below_service("use crate::{service, exec::Cmd};").len(), 1, "and a grouped one");
    assert!(reaches_below_service("use crate::service::{Operation, State};").is_empty());
    assert!(reaches_below_service("use crate::settings::Settings; // crate::store is below").is_empty());
    let files = rust_files("src/cli");
    assert!(files.len() >= 5, "src/cli must be found ({} files)", files.len());
    let api = rust_files("src/api");
    assert!(api.len() >= 5, "src/api must be found ({} files)", api.len());
    let client = rust_files("src/client");
    assert!(client.len() >= 5, "src/client must be found ({} files)", client.len());
    for file in files.into_iter().chain(api).chain(client) {
        let text = fs::read_to_string(&file).unwrap();
        let found = reaches_below_service(&text);
        assert!(found.is_empty(), "{} reaches below the service layer: {found:#?}", file.display());
    }
}

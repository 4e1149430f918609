//! Snapshots (insta) of the human output of `driver show`, `provider show`, `provision show` and
//! `provision list`, run through the `formwork` binary with the fake tools of tests/fakes. What
//! differs between runs is filtered: record ids (`#`), times (`YYYY-MM-DD hh:mm:ss`), the
//! repository and home paths, and process ids. In a fresh home ids have one digit, so each
//! placeholder in a table is as wide as what it hides and the snapshots show the real alignment.
//!
//! The snapshots live in tests/snapshots/. A missing or different snapshot fails the test under
//! plain `cargo test` (insta also writes a `.snap.new` beside it, except in CI); review and
//! accept a change with `cargo insta review`, or by renaming the `.snap.new` file.

mod common;

use common::{Home, Run};
use serde_json::{Value, json};

/// Filters for what varies between runs, common to every snapshot.
fn settings(home: &Home) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", "YYYY-MM-DD hh:mm:ss");
    settings.add_filter(&regex::escape(env!("CARGO_MANIFEST_DIR")), "[REPO]");
    settings.add_filter(&regex::escape(&home.tmp.path().display().to_string()), "[HOME]");
    settings.add_filter(r"running in process \d+", "running in process [PID]");
    settings
}

/// Asserts `run` succeeded and snapshots its stdout, with `filters` (regex, replacement) on top
/// of the common ones; the command is the snapshot's description.
fn snapshot(home: &Home, name: &str, args: &[&str], filters: &[(&str, &str)]) {
    let text = home.run(args).ok().stdout();
    let mut settings = settings(home);
    let words: Vec<&str> = args.iter().map(|a| if a.parse::<i64>().is_ok() { "#" } else { a }).collect();
    settings.set_description(format!("formwork {}", words.join(" ")));
    settings.set_omit_expression(true);
    for (regex, replacement) in filters {
        settings.add_filter(regex, *replacement);
    }
    settings.bind(|| insta::assert_snapshot!(name, text));
}

#[test]
fn driver_show() {
    let home = Home::with_builtin();
    snapshot(&home, "driver_show_sim", &["driver", "show", "sim"], &[]);
}

fn create(home: &Home, values: Value) -> Run {
    home.run_with_stdin(&["--json", "provision", "create", "sim", "--values", "-"], Some(&values.to_string()))
}

/// A provider with one provision taken through its lifecycle to RUNNING (hosts, OpenNebula
/// objects, tags, historic) and one that failed in APPLYING, so the list shows two states.
#[test]
fn provider_and_provision_views() {
    let home = Home::with_fakes();
    let values = json!({"api_token": "canary-s3cret"}).to_string();
    let provider = home.run_with_stdin(&["--json", "provider", "create", "sim", "--values", "-"], Some(&values));
    let provider = provider.ok().json()["id"].to_string();
    let running = create(&home, json!({"oneform_hosts": 2, "oneform_public_ips": 1, "oneform_tags": {"team": "a"}}));
    let running = running.ok().json();
    assert_eq!(running["state"], "RUNNING");
    home.scenario(json!({"fail_host": 0}));
    let failed = create(&home, json!({"oneform_hosts": 1}));
    assert_eq!(failed.code(), 1, "{}", failed.stderr());

    snapshot(
        &home,
        "provider_show",
        &["provider", "show", &provider],
        &[(r"(?m)^PROVIDER \d+$", "PROVIDER #"), (r"(?m)^PROVISIONS( +)\d+, \d+$", "PROVISIONS${1}#, #")],
    );
    snapshot(
        &home,
        "provision_show_running",
        &["provision", "show", &running["id"].to_string()],
        &[
            (r"(?m)^PROVISION \d+$", "PROVISION #"),
            (r"(?m)^PROVIDER( +)\d+$", "PROVIDER${1}#"),
            (r"\(provision_\d+\)", "(provision_#)"),
        ],
    );
    snapshot(&home, "provision_list", &["provision", "list"], &[(r"(?m)^\d+( +)", "#${1}")]);
}

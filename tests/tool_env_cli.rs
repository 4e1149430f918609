//! `tool_env` through the `formwork` binary with the fake tools (tests/fakes), which record
//! the environment they were given and print the variables the scenario names: what a site
//! lists reaches every Terraform and Ansible run, in the foreground, from a background formwork
//! and under `formwork serve`; what it does not list does not; a sensitive value is never
//! written down.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::Home;
use common::server::Server;
use serde_json::{Value, json};

/// A proxy URL with a password in it: what `sensitive` is for.
const PROXY: &str = "http://op:pr0xy-s3cret-77@proxy.example:3128";
const NO_PROXY: &str = "10.0.0.0/8,.internal";
/// In formwork's environment, in no `tool_env`: it must reach no tool.
const UNLISTED: &str = "unlisted-s3cret-99";
const MASK: &str = "********";
/// What the fake tools print, `NAME=value`, when they were given it.
const PRINTED: [&str; 5] = ["HTTPS_PROXY", "NO_PROXY", "TF_LOG", "SSL_CERT_FILE", "FORMWORK_TEST_SECRET_X"];

const TOOL_ENV: &str = "{pass: [HTTPS_PROXY, NO_PROXY, SSL_CERT_FILE], set: {TF_LOG: DEBUG}, sensitive: [HTTPS_PROXY]}";

/// A home with the fakes and a site's environment: a proxy with a password, `NO_PROXY`, and a
/// variable formwork holds but no `tool_env` lists (`SSL_CERT_FILE`, listed, is not set). The
/// tools print every one of them they get.
fn site() -> Home {
    let mut home = Home::with_fakes();
    for (name, value) in [("HTTPS_PROXY", PROXY), ("NO_PROXY", NO_PROXY), ("FORMWORK_TEST_SECRET_X", UNLISTED)] {
        home.env.push((name.into(), value.into()));
    }
    home.scenario(json!({"print_env": PRINTED}));
    home
}

fn provider(home: &Home) {
    let values = json!({"api_token": "tok-123456"}).to_string();
    home.run_with_stdin(&["provider", "create", "sim", "--values", "-"], Some(&values)).ok();
}

/// Polls (bounded) until `state` answers `want`, and returns the last answer.
fn wait_for(want: &str, state: impl Fn() -> Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let now = state();
        if now == want || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn with_config_file(mut home: Home, text: &str) -> Home {
    let config = home.tmp.path().join("config.yaml");
    std::fs::write(&config, text).unwrap();
    home.env.push(("FORMWORK_CONFIG".into(), config.display().to_string()));
    home
}

fn create(home: &Home, detach: bool) -> common::Run {
    let mut args = vec!["--json", "provision", "create", "sim", "--values", "-"];
    if detach {
        args.push("--detach");
    }
    home.run_with_stdin(&args, Some(r#"{"oneform_hosts": 3}"#))
}

/// Each call's first word (`init`, `state`, `ansible-playbook`) and the environment it got.
fn calls(home: &Home) -> Vec<(String, Value)> {
    let word = |c: &Value| match c["tool"].as_str().unwrap() {
        "terraform" => c["argv"][0].as_str().unwrap().to_string(),
        tool => tool.to_string(),
    };
    home.calls().iter().map(|c| (word(c), c["env"].clone())).collect()
}

/// Every call got the listed variables that formwork's environment holds and the fixed one,
/// and nothing else of the site's.
fn assert_site_env(calls: &[(String, Value)]) {
    for (word, env) in calls {
        assert_eq!(env["HTTPS_PROXY"], PROXY, "{word}: {env}");
        assert_eq!(env["NO_PROXY"], NO_PROXY, "{word}: {env}");
        assert_eq!(env["TF_LOG"], "DEBUG", "{word}: {env}");
        assert!(env.get("SSL_CERT_FILE").is_none(), "{word}: a listed name formwork lacks is not set: {env}");
        assert!(env.get("FORMWORK_TEST_SECRET_X").is_none(), "{word}: an unlisted variable reached a tool: {env}");
        assert_eq!(env["TF_IN_AUTOMATION"].is_string(), word != "ansible-playbook", "{word}: formwork's own stay");
    }
}

/// The provision log, as `provision logs` prints it and as the file holds it, shows the
/// proxy masked and the rest as given.
fn assert_log_masked(home: &Home) {
    let printed = home.run(&["provision", "logs", "1", "--all"]).ok().stdout();
    assert!(printed.contains(&format!("HTTPS_PROXY={MASK}")), "{printed}");
    assert!(printed.contains(&format!("NO_PROXY={NO_PROXY}")), "{printed}");
    assert!(printed.contains("TF_LOG=DEBUG"), "{printed}");
    let file = std::fs::read_to_string(home.data_dir().join("logs/1.log")).unwrap();
    for text in [printed, file] {
        assert!(!text.contains("pr0xy-s3cret"), "the proxy's password is in the log:\n{text}");
        assert!(!text.contains(UNLISTED), "{text}");
    }
}

#[test]
fn listed_variables_reach_every_tool_run_and_a_sensitive_one_is_never_logged() {
    let home = with_config_file(site(), &format!("tool_env: {TOOL_ENV}\n"));
    provider(&home);
    // A proxy that refuses: Terraform names it, password and all, on stderr.
    let refused = format!("Error: proxyconnect tcp: dial {PROXY}: connection refused");
    home.scenario(json!({"print_env": PRINTED, "fail_plan": refused}));
    let failed = create(&home, false);
    assert_eq!(failed.code(), 1, "{}", failed.stderr());
    assert!(
        failed.stderr().contains(&format!("proxyconnect tcp: dial {MASK}: connection refused")),
        "{}",
        failed.stderr()
    );
    let retried = home.run(&["--json", "provision", "retry", "1"]).ok();
    assert_eq!(retried.json()["state"], "RUNNING");
    let host = retried.json()["one_objects"]["hosts"][1]["id"].as_i64().unwrap().to_string();
    let down = home.run(&["--json", "provision", "del-host", "1", "--ids", &host]).ok();
    let done = home.run(&["--json", "provision", "deprovision", "1"]).ok();
    assert_eq!(done.json()["state"], "DONE");

    let calls = calls(&home);
    let mut words: Vec<&str> = calls.iter().map(|(w, _)| w.as_str()).collect();
    words.sort_unstable();
    words.dedup();
    assert_eq!(words, ["ansible-playbook", "apply", "destroy", "init", "plan", "state"], "every kind of tool run");
    assert_site_env(&calls);
    assert_log_masked(&home);
    for run in [&failed, &retried, &down, &done] {
        for text in [run.stdout(), run.stderr()] {
            assert!(!text.contains("pr0xy-s3cret") && !text.contains(UNLISTED), "{text}");
        }
    }
}

#[test]
fn a_background_formwork_gives_its_tools_what_the_environment_setting_lists() {
    let mut home = site();
    home.env.push(("FORMWORK_TOOL_ENV".into(), TOOL_ENV.into()));
    provider(&home);
    let out = create(&home, true).ok().json();
    let pid = out["pid"].as_u64().expect("the background process's pid");
    let state = wait_for("RUNNING", || home.run(&["--json", "provision", "show", "1"]).ok().json()["state"].clone());
    assert_eq!(state, "RUNNING");
    assert!(home.calls().iter().all(|c| c["ppid"] == pid), "the background process ran the tools");
    let calls = calls(&home);
    assert_eq!(calls.len(), 4, "init, plan, apply, ansible-playbook: {calls:?}");
    assert_site_env(&calls);
    assert_log_masked(&home);
}

#[test]
fn formwork_serve_gives_its_tools_what_tool_env_lists() {
    let mut home = with_config_file(site(), &format!("tool_env: {TOOL_ENV}\n"));
    let auth = home.tmp.path().join("one_auth");
    std::fs::write(&auth, "oneadmin:pw-admin\n").unwrap();
    std::fs::set_permissions(&auth, std::fs::Permissions::from_mode(0o600)).unwrap();
    home.env.push(("ONE_AUTH".into(), auth.display().to_string()));
    let server = Server::start(&home);
    let admin = server.client("oneadmin", "pw-admin");
    let provider = admin
        .post("/api/v1/providers", &json!({"driver": "sim", "connection_values": {"api_token": "tok-123456"}}))
        .expect(201)
        .json();
    let provider: i64 = provider["DOCUMENT"]["ID"].as_str().unwrap().parse().unwrap();
    let body = json!({"driver": "sim", "deployment_type": "sim_cluster", "provider_id": provider,
        "name": "proxied", "user_inputs_values": {"oneform_hosts": 1}});
    let created = admin.post("/api/v1/provisions", &body).expect(201).json();
    let path = format!("/api/v1/provisions/{}", created["DOCUMENT"]["ID"].as_str().unwrap());
    let state = wait_for("RUNNING", || {
        admin.get(&path).expect(200).json()["DOCUMENT"]["TEMPLATE"]["PROVISION_BODY"]["state"].clone()
    });
    assert_eq!(state, "RUNNING", "{}", server.log());
    assert!(home.calls().iter().all(|c| c["ppid"] == server.pid()), "the server ran the tools");
    let calls = calls(&home);
    assert_eq!(calls.len(), 4, "init, plan, apply, ansible-playbook: {calls:?}");
    assert_site_env(&calls);
    let served = admin.get(&format!("{path}/logs")).expect(200).text();
    assert!(served.contains(&format!("HTTPS_PROXY={MASK}")), "{served}");
    for text in [served, server.log(), server.stdout()] {
        assert!(!text.contains("pr0xy-s3cret") && !text.contains(UNLISTED), "{text}");
    }
}

#[test]
fn without_tool_env_tools_get_none_of_the_sites_variables() {
    let home = site();
    provider(&home);
    assert_eq!(create(&home, false).ok().json()["state"], "RUNNING");
    for (word, env) in calls(&home) {
        for name in ["HTTPS_PROXY", "NO_PROXY", "TF_LOG", "FORMWORK_TEST_SECRET_X"] {
            assert!(env.get(name).is_none(), "{word} got {name}: {env}");
        }
    }
}

#[test]
fn a_bad_tool_env_is_refused_naming_the_key_and_the_fix() {
    let home = with_config_file(Home::with_fakes(), "tool_env: {pass: [HTTPS_PROXY, PATH]}\n");
    home.run(&["provision", "list"])
        .fails_with("`tool_env.pass`: formwork gives its tools PATH itself; remove it from tool_env");
    let mut home = Home::with_fakes();
    home.env.push(("FORMWORK_TOOL_ENV".into(), "{set: {'TF LOG': DEBUG}}".into()));
    home.run(&["provision", "list"]).fails_with("FORMWORK_TOOL_ENV: set: 'TF LOG' is not a variable name");
}

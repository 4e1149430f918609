//! CONFIGURING_PROVISION: a fresh private copy of the driver's Ansible folder, the deployment
//! template rendered into a static inventory with OneForm's variables only (sensitive values
//! redacted, as OneForm's inventory plugin sees them; every value tagged `!unsafe`, see
//! [`crate::render`]), OneForm's extra variables in a 0600 file (never on the command line, its
//! strings `!unsafe` too) removed when the stage ends, `ansible-playbook` with the driver's ansible.cfg, and finally
//! OneForm's host force-update. A failure names the hosts the play recap shows as failed or
//! unreachable.
//!
//! OneForm runs the play on every host at each scale-up, so its cost grows with the provision.
//! A driver that declares `scale-up-configures: new-hosts` gets a scale-up's play limited
//! (`--limit`) to the front-end group and the hosts the scale-up added; everything else runs
//! the whole play.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Value, json};

use super::{Job, Real, Tools, fail, one_progress, work};
use crate::driver::capabilities::ScaleUp;
use crate::engine::{Ctx, Outcome, Params, StageError, owner};
use crate::exec::{Capture, Cmd, Stream, Tee};
use crate::one::{self, OneApi};
use crate::render;

/// OneForm's default `onedeploy_tags`.
pub const DEFAULT_TAGS: &str = "stage2,stage3,network";

/// The playbook's extra variables, in the provision's Ansible directory while the stage runs:
/// YAML, every string tagged `!unsafe`, since Ansible templates the strings of an extra-vars
/// file.
pub const EXTRA_VARS_FILE: &str = "extra_vars.yaml";

pub async fn run<A: OneApi>(real: &Real<A>, job: &Job, ctx: &mut Ctx<'_>) -> Result<Outcome, StageError> {
    let dir = job.dir.join("ansible");
    work::fresh_copy(&job.driver.system_path.join("ansible"), &dir)?;
    let version = real.one.system_version().await.map_err(fail)?;
    let inventory = write_inventory(real, job, ctx, &dir, &version)?;
    let addresses = host_addresses(&inventory);
    // A session that reads only this provision, closed when the stage ends.
    let form = real.tools.form.as_ref().map(|api| api.open(ctx.provision.id));
    let extra = extra_vars(ctx.provision.id, &version, &real.frontend_ip, form.as_deref());
    // It holds the session playbooks read the API with: gone when the stage ends.
    let extra = render::unsafe_yaml(&extra).map_err(StageError::failed)?;
    let _extra = work::SecretFile::write(&dir.join(EXTRA_VARS_FILE), extra.as_bytes())?;
    let body = &ctx.provision.body;
    let tags = body.onedeploy_tags.as_deref().filter(|t| !t.is_empty()).unwrap_or(DEFAULT_TAGS);
    let mut cmd = playbook_cmd(&real.tools, &dir, &job.roles, tags, &job.secrets, form.as_deref());
    if job.driver.capabilities.scale_up == ScaleUp::NewHosts
        && let Some(limit) = scale_up_limit(ctx, &inventory)
    {
        ctx.log.info(&format!("Configuring only the front-end and the new hosts: {}", limit.join(", ")));
        cmd = cmd.args(["--limit".to_string(), limit.join(",")]);
    }
    playbook(&cmd, ctx, &addresses).await?;
    let objects = one_progress::objects(ctx)?;
    let mut progress = |objects: &one::OneObjects, event: &one::Event| one_progress::checkpoint(ctx, objects, event);
    one::force_update_hosts(&real.one, &objects, &mut progress).await.map_err(fail)?;
    Ok(Outcome::ConfiguringProvision { hosts: objects.hosts.len() })
}

fn write_inventory<A>(
    real: &Real<A>,
    job: &Job,
    ctx: &Ctx<'_>,
    dir: &std::path::Path,
    version: &str,
) -> Result<Value, StageError> {
    let body = &ctx.provision.body;
    let deployment = job.driver.deployment(Some(&body.deployment_file)).map_err(fail)?;
    let shown = body.to_redacted_value();
    let facts = render::Facts { version: version.to_owned(), frontend_ip: real.frontend_ip.clone() };
    let inventory =
        render::inventory(&deployment.source, ctx.provision.id, &shown, &facts).map_err(StageError::failed)?;
    work::write_private(&dir.join("inventory.yaml"), inventory.to_yaml().map_err(StageError::failed)?.as_bytes())?;
    Ok(inventory.value)
}

/// The `--limit` of a scale-up's play, logged; `None` runs the whole play.
fn scale_up_limit(ctx: &mut Ctx<'_>, inventory: &Value) -> Option<Vec<String>> {
    match limit(&ctx.operation.params, ctx.provision.body.hosts(), inventory) {
        Ok(limit) => limit,
        Err(why) => {
            ctx.log.note(crate::exec::Severity::Warning, &format!("{why}; running the whole play"));
            None
        }
    }
}

/// The hosts a scale-up's play is limited to: the `frontend` group (when the inventory has
/// one) and the inventory names of the hosts the scale-up added (`hosts` whose id it did not
/// record as there before), found by their addresses. `Ok(None)` when this is not a scale-up
/// or it has no record of the hosts before it; an error when a new host is not in the
/// inventory or cannot be named safely in a host pattern, since limiting the play then could
/// leave a host unconfigured.
fn limit(params: &Params, hosts: &[Value], inventory: &Value) -> Result<Option<Vec<String>>, String> {
    let Params::Scale { hosts_before: Some(before), .. } = params else {
        return Ok(None);
    };
    let new = hosts.iter().filter(|h| !h["id"].as_i64().is_some_and(|id| before.contains(&id)));
    let addresses = host_addresses(inventory);
    let mut limit = Vec::new();
    for host in new {
        let address = host["name"].as_str().unwrap_or_default();
        let mut names: Vec<&String> = addresses.iter().filter(|(_, a)| *a == address).map(|(n, _)| n).collect();
        names.sort();
        if names.is_empty() {
            return Err(format!("new host {address} is not in the inventory"));
        }
        if let Some(name) = names.iter().find(|n| !is_plain_pattern(n)) {
            return Err(format!(
                "new host {address} is named '{name}' in the inventory, which is not a plain host name"
            ));
        }
        limit.extend(names.into_iter().cloned());
    }
    limit.sort();
    limit.dedup();
    if inventory.get("frontend").is_some() {
        limit.insert(0, "frontend".to_string());
    }
    Ok((!limit.is_empty()).then_some(limit))
}

/// A host name Ansible reads as itself in a comma-separated `--limit` (no pattern operators,
/// wildcards, ranges or regexes).
fn is_plain_pattern(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['@', '~'])
        && !name.chars().any(|c| c.is_whitespace() || matches!(c, ',' | '!' | '&' | '*' | '?' | '[' | ']'))
}

/// The REST API formwork serves (`formwork serve`), given to playbooks as OneForm gives its
/// own: `form_server` and `one_auth`, with which OneForm's inventory plugin reads the
/// provision back (spec §2.9).
#[derive(Clone)]
pub struct FormServer {
    /// Base URL of the API, e.g. `http://127.0.0.1:13013`.
    pub url: String,
    /// A session `user:token`, split at the first ':' into Basic-auth user and password by
    /// the plugin. A secret: masked in every line Ansible prints, and kept out of `Debug`.
    pub session: String,
}

impl FormServer {
    /// What to mask: the session, and its password part on its own (a tool may print the
    /// Basic-auth password it was given).
    fn secrets(&self) -> impl Iterator<Item = String> + '_ {
        let password = self.session.split_once(':').map(|(_, password)| password.to_owned());
        std::iter::once(self.session.clone()).chain(password)
    }
}

impl std::fmt::Debug for FormServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FormServer").field("url", &self.url).field("session", &"<hidden>").finish()
    }
}

/// OneForm's extra variables (`provision_id, form_server, version, one_server, one_auth`);
/// `form_server` and `one_auth` only when formwork serves its REST API, since without it there
/// is nothing for them to reach.
fn extra_vars(provision_id: i64, version: &str, one_server: &str, form: Option<&FormServer>) -> Value {
    let mut extra = json!({"provision_id": provision_id, "version": version, "one_server": one_server});
    if let Some(form) = form {
        extra["form_server"] = json!(form.url);
        extra["one_auth"] = json!(form.session);
    }
    extra
}

/// `ansible-playbook` in the private copy `dir` of the driver's Ansible folder, with the extra
/// variables from their file, the driver's ansible.cfg, its roles before the shared ones, and
/// every secret (the session included) masked.
fn playbook_cmd(
    tools: &Tools,
    dir: &Path,
    shared_roles: &Path,
    tags: &str,
    secrets: &[String],
    form: Option<&FormServer>,
) -> Cmd {
    tools
        .cmd(&tools.ansible_playbook, dir)
        .args(["-i", "inventory.yaml", "site.yaml", "--tags", tags, "-e", "@extra_vars.yaml"])
        .env("ANSIBLE_CONFIG", dir.join("ansible.cfg").display().to_string())
        .env("ANSIBLE_ROLES_PATH", format!("{}:{}", dir.join("roles").display(), shared_roles.display()))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
        .env("LANG", "C.UTF-8")
        .env("LC_ALL", "C.UTF-8")
        .secrets(secrets.iter().cloned())
        .secrets(form.into_iter().flat_map(FormServer::secrets))
}

/// Inventory host name → its `ansible_host`, over every group (`<group>.hosts.<name>`).
fn host_addresses(inventory: &Value) -> HashMap<String, String> {
    let groups = inventory.as_object().into_iter().flat_map(|g| g.values());
    let hosts = groups.filter_map(|group| group["hosts"].as_object()).flatten();
    hosts.filter_map(|(name, vars)| Some((name.clone(), vars["ansible_host"].as_str()?.to_owned()))).collect()
}

/// Runs the playbook; a failure names the failed hosts with their addresses and what Ansible
/// said about each (its `fatal:` lines are on stdout, not stderr).
async fn playbook(cmd: &Cmd, ctx: &mut Ctx<'_>, addresses: &HashMap<String, String>) -> Result<(), StageError> {
    ctx.log.info(&format!("Running {}", cmd.display()));
    let mut capture = Capture::default();
    let mut tee = Tee { first: &mut *ctx.log, second: &mut capture };
    let at = owner::ToolRun {
        provision_id: ctx.provision.id,
        operation_id: ctx.operation.id,
        epoch: ctx.operation.epoch,
        state: None,
    };
    let result = owner::run_tool(cmd, &mut tee, ctx.cancel, ctx.store, at).await;
    let stdout = capture.stream(Stream::Stdout);
    let label = |host: &str| match addresses.get(host) {
        Some(address) if address != host => format!("{host} ({address})"),
        _ => host.to_owned(),
    };
    match result {
        Ok(_) => {
            for (host, counts) in recap(&stdout) {
                ctx.log.progress(&format!("configured {}: {}", label(host), counts.join(" ")));
            }
            Ok(())
        }
        Err(e) => {
            let failed: Vec<String> = failed_hosts(&stdout).into_iter().map(label).collect();
            let mut error = StageError::from(e);
            if !failed.is_empty() {
                let mut said = fatal_messages(&stdout);
                said.dedup();
                let said = if said.is_empty() { String::new() } else { format!(": {}", said.join("; ")) };
                error.message = format!("failed hosts: {}{said} ({})", failed.join(", "), error.message);
            }
            Err(error)
        }
    }
}

/// `[host] msg` of every `fatal: [host]: FAILED! => {…"msg": …}` line (or the line itself).
fn fatal_messages(stdout: &[&str]) -> Vec<String> {
    stdout
        .iter()
        .filter_map(|line| line.strip_prefix("fatal: "))
        .map(|rest| {
            let host = rest.split(':').next().unwrap_or_default();
            let msg = rest
                .split_once("=> ")
                .and_then(|(_, json)| serde_json::from_str::<Value>(json).ok())
                .and_then(|v| v["msg"].as_str().map(str::to_owned));
            match msg {
                Some(msg) => format!("{host} {msg}"),
                None => rest.to_owned(),
            }
        })
        .collect()
}

/// The PLAY RECAP lines: each host with its `name=count` fields.
fn recap<'a>(stdout: &[&'a str]) -> Vec<(&'a str, Vec<&'a str>)> {
    let lines = stdout.iter().skip_while(|l| !l.starts_with("PLAY RECAP"));
    lines
        .filter_map(|line| line.split_once(" : "))
        .map(|(host, counts)| (host.trim(), counts.split_whitespace().collect()))
        .collect()
}

/// Hosts whose PLAY RECAP line shows `failed` or `unreachable` above zero.
fn failed_hosts<'a>(stdout: &[&'a str]) -> Vec<&'a str> {
    let bad = |c: &&str| matches!(c.split_once('='), Some(("failed" | "unreachable", n)) if n != "0");
    recap(stdout).into_iter().filter(|(_, counts)| counts.iter().any(bad)).map(|(host, _)| host).collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    use serde_json::json;

    use super::{FormServer, Tools, extra_vars, playbook_cmd};
    use crate::exec::{self, Cancel, Masker, ProvisionLog, mask::MASK};
    use crate::stages::work;

    const TOKEN: &str = "t0ken-s3cret-4242";

    fn form() -> FormServer {
        FormServer { url: "http://127.0.0.1:13013".into(), session: format!("alice:{TOKEN}") }
    }

    fn tools(ansible_playbook: std::path::PathBuf) -> Tools {
        Tools {
            terraform: "terraform".into(),
            ansible_playbook,
            env: Default::default(),
            tool_env: Default::default(),
            plugin_cache: "cache".into(),
            terraform_config: None,
            stage_timeout: Duration::from_secs(30),
            grace: Duration::from_secs(1),
            lock_timeout: Duration::from_secs(1),
            form: None,
        }
    }

    #[test]
    fn form_server_and_session_are_extra_vars_only_when_serving() {
        let served = extra_vars(7, "7.0.0", "10.0.0.1", Some(&form()));
        let want = json!({"provision_id": 7, "version": "7.0.0", "one_server": "10.0.0.1",
            "form_server": "http://127.0.0.1:13013", "one_auth": format!("alice:{TOKEN}")});
        assert_eq!(served, want);
        let cli = extra_vars(7, "7.0.0", "10.0.0.1", None);
        assert_eq!(cli, json!({"provision_id": 7, "version": "7.0.0", "one_server": "10.0.0.1"}));
        let debug = format!("{:?}", form());
        assert!(debug.contains("http://127.0.0.1:13013") && !debug.contains(TOKEN), "{debug}");
    }

    /// A playbook that prints its extra variables and the Basic-auth password it would send:
    /// the file holds the session, the provision log shows neither it nor the password.
    #[tokio::test]
    async fn the_session_reaches_the_playbook_but_not_the_provision_log() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ansible");
        work::make_private_dir(&dir).unwrap();
        let extra = extra_vars(3, "7.0.0", "127.0.0.1", Some(&form()));
        work::write_private(&dir.join("extra_vars.json"), extra.to_string().as_bytes()).unwrap();
        let mode = std::fs::metadata(dir.join("extra_vars.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let script = tmp.path().join("ansible-playbook");
        let text = format!(
            "#!/bin/sh\nwhile IFS= read -r l || [ -n \"$l\" ]; do echo \"$l\"; done < extra_vars.json\necho 'password={TOKEN}'\n"
        );
        std::fs::write(&script, text).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
        let cmd = playbook_cmd(&tools(script), &dir, tmp.path(), "stage2", &[], Some(&form()));
        assert!(!cmd.display().contains(TOKEN));

        let log_path = tmp.path().join("provision.log");
        let mut log = ProvisionLog::open(&log_path, Masker::default()).unwrap();
        exec::run(&cmd, &mut log, &Cancel::new()).await.unwrap();
        drop(log);
        let logged = std::fs::read_to_string(&log_path).unwrap();
        assert!(logged.contains(r#""form_server":"http://127.0.0.1:13013""#), "{logged}");
        assert!(logged.contains(&format!(r#""one_auth":"{MASK}""#)), "{logged}");
        assert!(logged.contains(&format!("password={MASK}")), "{logged}");
        assert!(!logged.contains(TOKEN), "{logged}");
    }

    /// Both kinds of tool run get the site's variables and mask its sensitive ones, and every
    /// other variable they get is one `tool_env` may not name (else a site's value would lose).
    #[test]
    fn tool_env_reaches_terraform_and_ansible_and_owned_names_are_formworks_alone() {
        let tool_env = crate::stages::ToolEnv::parse(&json!({"pass": ["HTTPS_PROXY", "SSL_CERT_FILE"],
            "set": {"TF_LOG": "DEBUG"}, "sensitive": ["HTTPS_PROXY"]}))
        .unwrap()
        .with_values_from(&[("HTTPS_PROXY".to_string(), "http://u:pw-77@proxy".to_string())].into());
        let mut tools = tools("ansible-playbook".into());
        tools.tool_env = tool_env;
        tools.terraform_config = Some("/etc/terraformrc".into());
        tools.env = [("PATH", "/bin"), ("HOME", "/home/op")].map(|(k, v)| (k.to_string(), v.to_string())).into();
        let dir = std::path::Path::new("/work/1");
        let commands = [
            tools.terraform(dir, &["apply", "-input=false"], &[]),
            playbook_cmd(&tools, dir, dir, "stage2", &[], Some(&form())),
        ];
        for cmd in commands {
            let env = cmd.get_env();
            assert_eq!(env.get("HTTPS_PROXY").map(String::as_str), Some("http://u:pw-77@proxy"), "{env:?}");
            assert_eq!(env.get("TF_LOG").map(String::as_str), Some("DEBUG"));
            assert!(!env.contains_key("SSL_CERT_FILE"), "a name formwork's environment lacks is not set");
            assert_eq!(cmd.masker().mask("via http://u:pw-77@proxy"), format!("via {MASK}"));
            let others: Vec<&String> =
                env.keys().filter(|k| !["HTTPS_PROXY", "TF_LOG"].contains(&k.as_str())).collect();
            assert!(!others.is_empty());
            for name in others {
                assert!(crate::stages::tool_env::OWNED.contains(&name.as_str()), "{name} is not in tool_env::OWNED");
            }
        }
    }

    #[test]
    fn recap_names_failed_and_unreachable_hosts() {
        let out = [
            "TASK [x] ***",
            "fatal: [n2]: FAILED! => {}",
            "PLAY RECAP *********",
            "n1                         : ok=3    changed=1    unreachable=0    failed=0    skipped=0",
            "n2                         : ok=1    changed=0    unreachable=0    failed=1    skipped=0",
            "n3                         : ok=0    changed=0    unreachable=1    failed=0    skipped=0",
        ];
        assert_eq!(super::failed_hosts(&out), vec!["n2", "n3"]);
        assert_eq!(super::fatal_messages(&out), vec!["[n2]: FAILED! => {}"]);
        let said = [r#"fatal: [n4]: FAILED! => {"changed": false, "msg": "10.0.0.5 is not a directory"}"#];
        assert_eq!(super::fatal_messages(&said), vec!["[n4] 10.0.0.5 is not a directory"]);
    }

    #[test]
    fn a_scale_up_is_limited_to_the_front_end_and_the_new_hosts() {
        use crate::engine::{Params, ScaleTarget};
        let inventory = json!({"all": {"vars": {}}, "frontend": {"hosts": {"f1": {"ansible_host": "127.0.0.1"}}},
            "node": {"hosts": {"n1": {"ansible_host": "10.0.0.10"}, "n2": {"ansible_host": "10.0.0.11"},
                               "n3": {"ansible_host": "10.0.0.12"}, "n4": {"ansible_host": "10.0.0.13"}}}});
        let hosts = [
            json!({"id": 4, "name": "10.0.0.10"}),
            json!({"id": 5, "name": "10.0.0.11"}),
            json!({"id": 9, "name": "10.0.0.12"}),
            json!({"id": 8, "name": "10.0.0.13"}),
        ];
        let set = ScaleTarget { oneform_hosts: Some(4), oneform_onprem_hosts: None };
        let scale = |before: Option<Vec<i64>>| Params::Scale { set: set.clone(), hosts_before: before };
        let limited = super::limit(&scale(Some(vec![4, 5])), &hosts, &inventory).unwrap();
        assert_eq!(limited, Some(vec!["frontend".to_string(), "n3".into(), "n4".into()]));
        assert_eq!(super::limit(&scale(None), &hosts, &inventory), Ok(None), "no record: the whole play");
        assert_eq!(super::limit(&Params::None, &hosts, &inventory), Ok(None), "not a scale-up: the whole play");

        let no_frontend = json!({"node": inventory["node"].clone()});
        assert_eq!(super::limit(&scale(Some(vec![4, 5, 9])), &hosts, &no_frontend), Ok(Some(vec!["n4".into()])));
        assert_eq!(super::limit(&scale(Some(vec![4, 5, 9, 8])), &hosts, &no_frontend), Ok(None));

        let missing = super::limit(
            &scale(Some(vec![4])),
            &hosts[..2],
            &json!({"node": {"hosts": {"n1": {"ansible_host": "10.0.0.10"}}}}),
        );
        assert_eq!(missing, Err("new host 10.0.0.11 is not in the inventory".into()));
        let odd = json!({"node": {"hosts": {"web[1]": {"ansible_host": "10.0.0.11"}}}});
        let err = super::limit(&scale(Some(vec![4])), &hosts[..2], &odd).unwrap_err();
        assert!(err.contains("'web[1]'"), "{err}");
    }

    #[test]
    fn plain_host_names_only() {
        for name in ["n1", "10.0.0.1", "fe80::1", "host-a.example_b"] {
            assert!(super::is_plain_pattern(name), "{name}");
        }
        for name in ["", "a,b", "!n1", "&n1", "n*", "n?", "n[1:2]", "~n.*", "@file", "a b"] {
            assert!(!super::is_plain_pattern(name), "{name}");
        }
    }

    #[test]
    fn inventory_hosts_map_to_their_addresses() {
        let inventory = serde_json::json!({"all": {"vars": {}}, "frontend": {"hosts": {"f1": {"ansible_host": "1.2.3.4"}}},
            "node": {"hosts": {"n1": {"ansible_host": "10.0.0.1"}, "n2": {}}}});
        let map = super::host_addresses(&inventory);
        assert_eq!((map["f1"].as_str(), map["n1"].as_str(), map.len()), ("1.2.3.4", "10.0.0.1", 2));
    }
}

//! Terraform as the stages use it: commands with formwork's fixed flags and environment
//! (`-input=false`, `-no-color`, `TF_IN_AUTOMATION`, `CHECKPOINT_DISABLE`, a shared plugin
//! cache), reading `provisioned_hosts` from the state, and finding the resource addresses of
//! hosts for a targeted destroy (OneForm's rule, spec §2.8).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::terraform_ui::JsonUi;
use super::work;
use crate::engine::{Ctx, Log, StageError, owner};
use crate::exec::Cmd;

/// Where the tools are and how they run; resolved once from settings.
#[derive(Debug, Clone)]
pub struct Tools {
    pub terraform: PathBuf,
    pub ansible_playbook: PathBuf,
    /// The variables children may inherit (PATH, HOME, …); everything else is explicit.
    pub env: HashMap<String, String>,
    /// What the site adds to every tool run (`tool_env`): a proxy, a CA bundle, `TF_LOG`.
    pub tool_env: super::ToolEnv,
    /// Shared by every provision so re-init (scale up) does not download providers again.
    pub plugin_cache: PathBuf,
    /// A Terraform CLI config (e.g. a provider mirror for offline use), if configured.
    pub terraform_config: Option<PathBuf>,
    pub stage_timeout: Duration,
    pub grace: Duration,
    /// `-lock-timeout` of every command that takes the state lock.
    pub lock_timeout: Duration,
    /// The REST API this process serves, passed to playbooks as `form_server`/`one_auth`
    /// (a session of their own); `None` for the CLI, whose playbooks get neither.
    pub form: Option<super::FormApi>,
}

/// One provisioned host as `outputs.tf` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    pub instance_id: String,
    pub instance_ip: String,
}

impl Tools {
    /// `program` in `dir` with what every tool run gets: `PATH` and `HOME`, the site's
    /// `tool_env` (its sensitive values masked), the stage timeout and the grace period.
    /// Formwork's own variables, set after this, are names `tool_env` may not hold.
    pub fn cmd(&self, program: &Path, dir: &Path) -> Cmd {
        Cmd::new(program)
            .cwd(dir)
            .envs(self.tool_env.vars())
            .pass_path_and_home(&self.env)
            .timeout(self.stage_timeout)
            .grace(self.grace)
            .secrets(self.tool_env.secrets())
    }

    /// A Terraform command in `dir` with `args`, masking `secrets` in everything it prints.
    /// Commands that take the state lock (plan, apply, destroy, state mv) get `-lock-timeout`
    /// right after the subcommand.
    pub fn terraform(&self, dir: &Path, args: &[&str], secrets: &[String]) -> Cmd {
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let at = match args.first().map(String::as_str) {
            Some("plan" | "apply" | "destroy") => Some(1),
            Some("state") if args.get(1).is_some_and(|a| a == "mv" || a == "rm") => Some(2),
            _ => None,
        };
        if let Some(at) = at {
            args.insert(at, format!("-lock-timeout={}s", self.lock_timeout.as_secs()));
        }
        let mut cmd = self
            .cmd(&self.terraform, dir)
            .args(args)
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_PLUGIN_CACHE_DIR", self.plugin_cache.display().to_string())
            .secrets(secrets.iter().cloned());
        if let Some(config) = &self.terraform_config {
            cmd = cmd.env("TF_CLI_CONFIG_FILE", config.display().to_string());
        }
        cmd
    }
}

/// Runs a Terraform command into the provision log through [`JsonUi`] (so `-json` output reads
/// as plain text there, with progress steps); a failure says what Terraform reported, and a
/// cancellation is reported as such.
pub async fn run(cmd: &Cmd, ctx: &mut Ctx<'_>) -> Result<(), StageError> {
    ctx.log.info(&format!("Running {}", cmd.display()));
    let mut ui = JsonUi::new(&mut *ctx.log);
    let state = Some(std::path::Path::new(super::work::STATE_FILE));
    let at = owner::ToolRun {
        provision_id: ctx.provision.id,
        operation_id: ctx.operation.id,
        epoch: ctx.operation.epoch,
        state,
    };
    let result = owner::run_tool(cmd, &mut ui, ctx.cancel, ctx.store, at).await;
    let reported = ui.failure();
    result.map(|_| ()).map_err(|e| {
        let mut error = StageError::from(e);
        if let (Some(reported), false) = (reported, error.cancelled) {
            error.message = format!("{reported} ({})", error.message);
        }
        error
    })
}

/// Where Terraform writes a state it could not write to `terraform.tfstate` (a full disk, a
/// lost permission) "to allow for recovery": then the newest state, in clear, is only there.
pub const ERRORED_STATE_FILE: &str = "errored.tfstate";

/// Takes the state Terraform could not persist (`errored.tfstate`, if it is a state) as the
/// directory's state: it replaces `terraform.tfstate`, so the stage saves it to the store (sealed)
/// and later commands build on it, and no clear copy outlives the stage. Returns whether there
/// was one; a file that is not a state is left alone.
pub fn adopt_errored_state(dir: &Path) -> Result<bool, StageError> {
    let errored = dir.join(ERRORED_STATE_FILE);
    match std::fs::read_to_string(&errored) {
        Ok(text) if is_state(&text) => {
            let state = dir.join(work::STATE_FILE);
            std::fs::rename(&errored, &state).map_err(|e| work::io_error("move", &errored, e))?;
            work::make_private(&state)?;
            Ok(true)
        }
        Ok(_) => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(work::io_error("read", &errored, e)),
    }
}

/// [`adopt_errored_state`], said in the provision's log.
pub fn recover_errored_state(dir: &Path, log: &mut dyn Log) -> Result<(), StageError> {
    if adopt_errored_state(dir)? {
        log.info(&format!(
            "Terraform could not write terraform.tfstate and left the newest state in {ERRORED_STATE_FILE}: formwork keeps it as the provision's state"
        ));
    }
    Ok(())
}

fn is_state(text: &str) -> bool {
    serde_json::from_str::<Value>(text).is_ok_and(|v| v.is_object())
}

/// Reads `terraform.tfstate` in `dir`: `None` when there is none, or when what is there is not
/// a state (empty or not JSON: a process other than Terraform made it, or a write was cut
/// short), which must never be saved over the last good one.
pub fn read_state(dir: &Path) -> Result<Option<String>, StageError> {
    let path = dir.join(work::STATE_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text).filter(|text| is_state(text))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(work::io_error("read", &path, e)),
    }
}

/// `outputs.provisioned_hosts.value` of a state, as OneForm reads it.
pub fn provisioned_hosts(state: &str) -> Result<Vec<Provisioned>, StageError> {
    let state: Value =
        serde_json::from_str(state).map_err(|e| StageError::failed(format!("terraform.tfstate is not JSON: {e}")))?;
    let Some(value) = state.pointer("/outputs/provisioned_hosts/value") else {
        return Ok(vec![]);
    };
    let items = value
        .as_array()
        .ok_or_else(|| StageError::failed("output `provisioned_hosts` must be a list of {instance_id, instance_ip}"))?;
    items
        .iter()
        .map(|h| {
            let text = |key: &str| match &h[key] {
                Value::String(s) if !s.is_empty() => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                _ => Err(StageError::failed(format!("a `provisioned_hosts` entry has no `{key}`: {h}"))),
            };
            Ok(Provisioned { instance_id: text("instance_id")?, instance_ip: text("instance_ip")? })
        })
        .collect()
}

/// Resource addresses whose instance attributes (or `triggers`) hold `resource_id`, for
/// `terraform destroy -target=…` (OneForm's search over `tfstate.resources[*].instances[*]`).
pub fn addresses_of(state: &str, resource_id: &str) -> Vec<String> {
    let Ok(state) = serde_json::from_str::<Value>(state) else {
        return vec![];
    };
    let mut found = Vec::new();
    for resource in state["resources"].as_array().into_iter().flatten() {
        if resource["mode"] == "data" {
            continue;
        }
        let base = base_address(resource);
        let instances = resource["instances"].as_array().cloned().unwrap_or_default();
        for (i, instance) in instances.iter().enumerate() {
            if !holds(&instance["attributes"], resource_id) {
                continue;
            }
            let address = match &instance["index_key"] {
                Value::String(key) => format!("{base}[\"{key}\"]"),
                Value::Number(n) => format!("{base}[{n}]"),
                _ if instances.len() > 1 => format!("{base}[{i}]"),
                _ => base.clone(),
            };
            found.push(address);
        }
    }
    found
}

/// `terraform state mv` moves that make every `count` resource's indices contiguous again
/// (`0..n`): each index at or past `n` fills the lowest hole. Resources keyed by strings
/// (`for_each`) or without keys are left alone.
pub fn compaction_moves(state: &str) -> Vec<(String, String)> {
    let Ok(state) = serde_json::from_str::<Value>(state) else {
        return vec![];
    };
    let mut moves = Vec::new();
    for resource in state["resources"].as_array().into_iter().flatten() {
        if resource["mode"] == "data" {
            continue;
        }
        let instances = resource["instances"].as_array().cloned().unwrap_or_default();
        let Some(mut keys) = instances.iter().map(|i| i["index_key"].as_u64()).collect::<Option<Vec<u64>>>() else {
            continue;
        };
        keys.sort_unstable();
        let n = keys.len() as u64;
        let mut holes = (0..n).filter(|k| !keys.contains(k));
        let base = base_address(resource);
        for from in keys.iter().filter(|k| **k >= n) {
            if let Some(to) = holes.next() {
                moves.push((format!("{base}[{from}]"), format!("{base}[{to}]")));
            }
        }
    }
    moves
}

/// `[module.].type.name` of a state resource, without an index.
fn base_address(resource: &Value) -> String {
    match resource["module"].as_str() {
        Some(module) => format!("{module}.{}.{}", text(&resource["type"]), text(&resource["name"])),
        None => format!("{}.{}", text(&resource["type"]), text(&resource["name"])),
    }
}

fn holds(attributes: &Value, wanted: &str) -> bool {
    let matches = |v: &Value| v.as_str() == Some(wanted);
    attributes.as_object().is_some_and(|a| a.values().any(matches))
        || attributes["triggers"].as_object().is_some_and(|t| t.values().any(matches))
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_state_terraform_could_not_persist_replaces_the_state_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!adopt_errored_state(dir.path()).unwrap(), "none there");
        std::fs::write(dir.path().join("terraform.tfstate"), r#"{"serial": 1}"#).unwrap();
        std::fs::write(dir.path().join(ERRORED_STATE_FILE), "{\"serial\": ").unwrap();
        assert!(!adopt_errored_state(dir.path()).unwrap(), "a cut-short file is not a state");
        assert_eq!(read_state(dir.path()).unwrap().as_deref(), Some(r#"{"serial": 1}"#));
        std::fs::write(dir.path().join(ERRORED_STATE_FILE), r#"{"serial": 2}"#).unwrap();
        assert!(adopt_errored_state(dir.path()).unwrap());
        assert_eq!(read_state(dir.path()).unwrap().as_deref(), Some(r#"{"serial": 2}"#));
        assert!(!dir.path().join(ERRORED_STATE_FILE).exists(), "no clear copy is left behind");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("terraform.tfstate")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn only_a_json_object_is_read_as_a_state() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_state(dir.path()).unwrap(), None, "no file");
        for not_a_state in ["", "  \n", "{\"version\": 4, \"resources\": [", "[]"] {
            std::fs::write(dir.path().join("terraform.tfstate"), not_a_state).unwrap();
            assert_eq!(read_state(dir.path()).unwrap(), None, "{not_a_state:?}");
        }
        std::fs::write(dir.path().join("terraform.tfstate"), "{\"version\": 4}").unwrap();
        assert_eq!(read_state(dir.path()).unwrap().as_deref(), Some("{\"version\": 4}"));
    }

    #[test]
    fn provisioned_hosts_are_read_from_the_state() {
        let state = json!({"outputs": {"provisioned_hosts": {"value": [
            {"instance_id": "i-1", "instance_ip": "10.0.0.1"}, {"instance_id": 7, "instance_ip": "10.0.0.2"}]}}});
        let hosts = provisioned_hosts(&state.to_string()).unwrap();
        assert_eq!(hosts[1], Provisioned { instance_id: "7".into(), instance_ip: "10.0.0.2".into() });
        assert!(provisioned_hosts(r#"{"outputs": {}}"#).unwrap().is_empty());
        let bad = json!({"outputs": {"provisioned_hosts": {"value": [{"instance_ip": "x"}]}}});
        assert!(provisioned_hosts(&bad.to_string()).unwrap_err().message.contains("no `instance_id`"));
    }

    #[test]
    fn target_addresses_follow_oneforms_rule() {
        let state = json!({"resources": [
            {"mode": "managed", "type": "sim_host", "name": "host", "instances": [
                {"index_key": 0, "attributes": {"id": "h-0"}}, {"index_key": 1, "attributes": {"id": "h-1"}}]},
            {"mode": "managed", "type": "null_resource", "name": "node", "instances": [
                {"index_key": "10.0.0.5", "attributes": {"triggers": {"instance_id": "10.0.0.5"}}}]},
            {"module": "module.host[0]", "mode": "managed", "type": "aws_instance", "name": "this", "instances": [
                {"attributes": {"id": "i-9"}}]},
            {"mode": "data", "type": "sim_image", "name": "img", "instances": [{"attributes": {"id": "h-1"}}]}
        ]});
        let state = state.to_string();
        assert_eq!(addresses_of(&state, "h-1"), vec!["sim_host.host[1]"]);
        assert_eq!(addresses_of(&state, "10.0.0.5"), vec!["null_resource.node[\"10.0.0.5\"]"]);
        assert_eq!(addresses_of(&state, "i-9"), vec!["module.host[0].aws_instance.this"]);
        assert!(addresses_of(&state, "nope").is_empty());
    }

    #[test]
    fn compaction_fills_the_holes_of_count_resources_only() {
        let state = json!({"resources": [
            {"mode": "managed", "type": "sim_host", "name": "host", "instances": [
                {"index_key": 0}, {"index_key": 3}, {"index_key": 2}, {"index_key": 5}]},
            {"mode": "managed", "type": "sim_host", "name": "whole", "instances": [{"index_key": 0}, {"index_key": 1}]},
            {"mode": "managed", "type": "null_resource", "name": "node", "instances": [{"index_key": "a"}]},
            {"mode": "managed", "type": "sim_ip", "name": "one", "instances": [{}]}
        ]});
        assert_eq!(
            compaction_moves(&state.to_string()),
            [("sim_host.host[5]".to_owned(), "sim_host.host[1]".to_owned())],
            "4 instances: 0, 2, 3 stay; 5 fills 1"
        );
        assert!(compaction_moves("not json").is_empty());
    }
}

//! What a site adds to its tools' environment (`tool_env`): variables passed through from
//! formwork's own environment (a proxy, a CA bundle, `TF_LOG`) and fixed `NAME=value` pairs,
//! some of them sensitive. Tools start from an empty environment (`exec::Cmd`), so without this
//! a site behind a proxy could not reach its cloud.
//!
//! The shape, the same in the config file and in `FORMWORK_TOOL_ENV` (YAML or JSON):
//!
//! ```yaml
//! tool_env:
//!   pass: [HTTPS_PROXY, NO_PROXY, SSL_CERT_FILE]
//!   set: {TF_LOG: INFO}
//!   sensitive: [HTTPS_PROXY]
//! ```
//!
//! or a list of names, short for `pass`. A name formwork gives its tools itself
//! ([`OWNED`], and every `FORMWORK_*`) is refused: a site's value would silently lose to
//! formwork's, or, for `FORMWORK_*`, hand formwork's own settings (its secret key) to tools.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde_json::{Value, json};

use crate::exec::mask::MASK;

/// Every variable formwork itself gives Terraform or Ansible (`Tools::terraform`,
/// `configure_provision::playbook_cmd`); besides these, the run's mark `FORMWORK_TOOL` falls
/// under the `FORMWORK_` prefix.
pub const OWNED: [&str; 12] = [
    "PATH",
    "HOME",
    "TF_IN_AUTOMATION",
    "CHECKPOINT_DISABLE",
    "TF_PLUGIN_CACHE_DIR",
    "TF_CLI_CONFIG_FILE",
    "ANSIBLE_CONFIG",
    "ANSIBLE_ROLES_PATH",
    "ANSIBLE_NOCOLOR",
    "ANSIBLE_RETRY_FILES_ENABLED",
    "LANG",
    "LC_ALL",
];

/// The keys of the mapping form.
const FIELDS: [&str; 3] = ["pass", "set", "sensitive"];

/// The variables every tool run gets besides formwork's own.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ToolEnv {
    /// Names taken from formwork's environment when settings are resolved.
    pass: BTreeSet<String>,
    set: BTreeMap<String, String>,
    /// Names (of `pass` or `set`) whose values are masked wherever formwork writes text.
    sensitive: BTreeSet<String>,
    /// The values of `pass` that formwork's environment holds; a name it lacks is not set.
    passed: BTreeMap<String, String>,
}

/// A `tool_env` that cannot be used: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", field.map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct Invalid {
    /// `pass`, `set` or `sensitive`; none when the whole value has the wrong shape.
    pub field: Option<&'static str>,
    pub message: String,
}

impl ToolEnv {
    /// Reads and checks `tool_env` as the config file or `FORMWORK_TOOL_ENV` gives it (null is
    /// none). The values of `pass` are read later, by [`ToolEnv::with_values_from`].
    pub fn parse(value: &Value) -> Result<ToolEnv, Invalid> {
        let shape = || Invalid {
            field: None,
            message: "must be a mapping with `pass` (a list of names), `set` (a mapping of name to value) \
                      and `sensitive` (a list of names), or a list of names to pass"
                .into(),
        };
        let mut env = ToolEnv::default();
        let map = match value {
            Value::Null => return Ok(env),
            Value::Array(_) => {
                env.pass = names("pass", value)?;
                return Ok(env);
            }
            Value::Object(map) => map,
            _ => return Err(shape()),
        };
        if let Some(key) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            let hint = crate::suggest::hint(key, FIELDS);
            let message = format!("has an unknown key '{key}'{hint}; its keys are pass, set and sensitive");
            return Err(Invalid { field: None, message });
        }
        if let Some(v) = map.get("pass") {
            env.pass = names("pass", v)?;
        }
        if let Some(v) = map.get("set") {
            env.set = pairs(v)?;
        }
        if let Some(name) = env.pass.iter().find(|n| env.set.contains_key(*n)) {
            let message = format!("{name} is both passed and set; keep it under one of pass and set");
            return Err(Invalid { field: Some("set"), message });
        }
        if let Some(v) = map.get("sensitive") {
            env.sensitive = names("sensitive", v)?;
        }
        if let Some(name) = env.sensitive.iter().find(|n| !env.pass.contains(*n) && !env.set.contains_key(*n)) {
            let message = format!("{name} is neither passed nor set; add it to pass or set, or drop it from sensitive");
            return Err(Invalid { field: Some("sensitive"), message });
        }
        Ok(env)
    }

    /// Takes the values of `pass` from `env` (formwork's snapshot of its environment). A value
    /// that is set but empty is passed as it is: an empty `NO_PROXY` still means something.
    pub fn with_values_from(mut self, env: &HashMap<String, String>) -> ToolEnv {
        self.passed = self.pass.iter().filter_map(|name| Some((name.clone(), env.get(name)?.clone()))).collect();
        self
    }

    pub fn is_empty(&self) -> bool {
        self.pass.is_empty() && self.set.is_empty()
    }

    /// The variables a tool gets from this, passed and fixed, by name.
    pub fn vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.passed.iter().chain(&self.set).map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The values of sensitive variables, to mask wherever formwork writes text.
    pub fn secrets(&self) -> Vec<String> {
        self.vars().filter(|(name, _)| self.sensitive.contains(*name)).map(|(_, value)| value.to_owned()).collect()
    }

    /// The names of `pass` that formwork's environment did not hold.
    pub fn missing(&self) -> impl Iterator<Item = &str> {
        self.pass.iter().filter(|name| !self.passed.contains_key(*name)).map(String::as_str)
    }

    /// The `FORMWORK_TOOL_ENV` that gives a background formwork exactly these variables: every
    /// one as `set`, so its own environment need not hold what this one passed through.
    pub fn as_setting(&self) -> String {
        let set: BTreeMap<&str, &str> = self.vars().collect();
        let sensitive: Vec<&str> = self.vars().map(|(name, _)| name).filter(|n| self.sensitive.contains(*n)).collect();
        json!({"set": set, "sensitive": sensitive}).to_string()
    }
}

/// Names and values, sensitive values masked: settings are printed in debug output.
impl fmt::Debug for ToolEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.vars().map(|(k, v)| (k, if self.sensitive.contains(k) { MASK } else { v }));
        f.debug_struct("ToolEnv")
            .field("vars", &shown.collect::<BTreeMap<_, _>>())
            .field("missing", &self.missing().collect::<Vec<_>>())
            .finish()
    }
}

fn names(field: &'static str, value: &Value) -> Result<BTreeSet<String>, Invalid> {
    let fail = |message: String| Invalid { field: Some(field), message };
    let items = value.as_array().ok_or_else(|| fail("must be a list of variable names".into()))?;
    let mut names = BTreeSet::new();
    for item in items {
        let name = item.as_str().ok_or_else(|| fail(format!("{item} is not a variable name")))?;
        check_name(name).map_err(fail)?;
        names.insert(name.to_owned());
    }
    Ok(names)
}

fn pairs(value: &Value) -> Result<BTreeMap<String, String>, Invalid> {
    let fail = |message: String| Invalid { field: Some("set"), message };
    let map = value.as_object().ok_or_else(|| fail("must be a mapping of variable name to value".into()))?;
    let mut pairs = BTreeMap::new();
    for (name, value) in map {
        check_name(name).map_err(fail)?;
        let value = match value {
            Value::String(s) => s.clone(),
            Value::Number(_) | Value::Bool(_) => value.to_string(),
            _ => {
                return Err(fail(format!(
                    "{name} must have a text value; to take it from formwork's environment, list it under pass"
                )));
            }
        };
        pairs.insert(name.clone(), value);
    }
    Ok(pairs)
}

/// A name a tool may be given: `[A-Za-z_][A-Za-z0-9_]*`, and none formwork sets itself.
fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "'{name}' is not a variable name (letters, digits and '_', not starting with a digit); correct its spelling"
        ));
    }
    if name.starts_with("FORMWORK_") {
        return Err(format!("{name} is formwork's own and never reaches its tools; remove it from tool_env"));
    }
    if OWNED.contains(&name) {
        return Err(format!("formwork gives its tools {name} itself; remove it from tool_env"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<ToolEnv, Invalid> {
        ToolEnv::parse(&crate::driver::deployment::yaml_to_json(yaml).unwrap())
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn passes_what_the_environment_holds_and_sets_fixed_values() {
        let tool_env = parse("{pass: [HTTPS_PROXY, NO_PROXY, SSL_CERT_FILE], set: {TF_LOG: DEBUG, RETRIES: 3}}")
            .unwrap()
            .with_values_from(&env(&[("HTTPS_PROXY", "http://proxy:3128"), ("NO_PROXY", ""), ("OTHER", "x")]));
        let vars: Vec<_> = tool_env.vars().collect();
        assert_eq!(
            vars,
            [("HTTPS_PROXY", "http://proxy:3128"), ("NO_PROXY", ""), ("RETRIES", "3"), ("TF_LOG", "DEBUG")]
        );
        assert_eq!(tool_env.missing().collect::<Vec<_>>(), ["SSL_CERT_FILE"]);
        assert!(tool_env.secrets().is_empty());
    }

    #[test]
    fn a_list_is_short_for_pass_and_null_is_nothing() {
        let tool_env = parse("[HTTPS_PROXY]").unwrap().with_values_from(&env(&[("HTTPS_PROXY", "p")]));
        assert_eq!(tool_env.vars().collect::<Vec<_>>(), [("HTTPS_PROXY", "p")]);
        assert!(parse("~").unwrap().is_empty());
    }

    #[test]
    fn sensitive_values_are_secrets_and_never_printed() {
        let tool_env = parse(
            "{pass: [HTTPS_PROXY], set: {API_TOKEN: tok-123, TF_LOG: INFO}, sensitive: [HTTPS_PROXY, API_TOKEN]}",
        )
        .unwrap()
        .with_values_from(&env(&[("HTTPS_PROXY", "http://u:pw-42@proxy")]));
        let mut secrets = tool_env.secrets();
        secrets.sort();
        assert_eq!(secrets, ["http://u:pw-42@proxy", "tok-123"]);
        let printed = format!("{tool_env:?}");
        assert!(!printed.contains("pw-42") && !printed.contains("tok-123"), "{printed}");
        assert!(printed.contains("INFO"), "{printed}");
    }

    #[test]
    fn as_setting_gives_a_background_formwork_the_same_variables() {
        let tool_env = parse("{pass: [HTTPS_PROXY, SSL_CERT_FILE], set: {TF_LOG: INFO}, sensitive: [HTTPS_PROXY]}")
            .unwrap()
            .with_values_from(&env(&[("HTTPS_PROXY", "http://u:pw@proxy")]));
        let again = parse(&tool_env.as_setting()).unwrap().with_values_from(&env(&[]));
        assert_eq!(again.vars().collect::<Vec<_>>(), tool_env.vars().collect::<Vec<_>>());
        assert_eq!(again.secrets(), ["http://u:pw@proxy"]);
    }

    #[test]
    fn bad_names_are_refused_with_the_field_and_the_fix() {
        for (yaml, field, says) in [
            ("{pass: [HTTPS-PROXY]}", "pass", "'HTTPS-PROXY' is not a variable name"),
            ("{pass: [9LIVES]}", "pass", "'9LIVES' is not a variable name"),
            ("{pass: ['']}", "pass", "'' is not a variable name"),
            ("{set: {'A B': x}}", "set", "'A B' is not a variable name"),
            ("{pass: [PATH]}", "pass", "formwork gives its tools PATH itself; remove it from tool_env"),
            ("{set: {TF_CLI_CONFIG_FILE: /x}}", "set", "gives its tools TF_CLI_CONFIG_FILE itself"),
            ("{set: {ANSIBLE_ROLES_PATH: /x}}", "set", "gives its tools ANSIBLE_ROLES_PATH itself"),
            ("[FORMWORK_SECRET_KEY]", "pass", "FORMWORK_SECRET_KEY is formwork's own"),
            ("{pass: [X], set: {X: y}}", "set", "X is both passed and set"),
            ("{pass: [X], sensitive: [Y]}", "sensitive", "Y is neither passed nor set; add it to pass or set"),
            ("{set: {X: ~}}", "set", "X must have a text value"),
            ("{pass: HTTPS_PROXY}", "pass", "must be a list of variable names"),
            ("{pass: [{a: b}]}", "pass", "is not a variable name"),
        ] {
            let err = parse(yaml).unwrap_err();
            assert_eq!(err.field, Some(field), "{yaml}: {err}");
            assert!(err.to_string().starts_with(&format!("{field}: ")), "{yaml}: {err}");
            assert!(err.message.contains(says), "{yaml}: {err}");
        }
    }

    #[test]
    fn bad_shapes_are_refused_whole() {
        let err = parse("{pas: [X]}").unwrap_err();
        assert_eq!(err.field, None);
        assert!(err.message.contains("has an unknown key 'pas' (did you mean 'pass'?)"), "{err}");
        let err = parse("HTTPS_PROXY").unwrap_err();
        assert!(err.message.contains("must be a mapping with `pass`"), "{err}");
    }

    #[test]
    fn ansible_and_other_variables_formwork_does_not_set_are_allowed() {
        let tool_env = parse("{set: {ANSIBLE_HOST_KEY_CHECKING: 'False', _X1: y, tf_log: trace}}").unwrap();
        assert_eq!(tool_env.vars().count(), 3);
    }
}

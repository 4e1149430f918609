//! What a driver supports, read from driver.conf: OneForm's `fireedge.operations` (the ways
//! FireEdge offers to add and remove hosts and public IPs) and formwork's own optional
//! `formwork` mapping, which OneForm ignores (spec §1.3: keys other than name, description,
//! version and fireedge are not read). A key left out means OneForm's behaviour.
//!
//! ```yaml
//! fireedge:
//!   operations: { add-host: amount, del-host: ids, add-ip: amount, del-ip: ids }
//! formwork:
//!   scale-down-by-amount: true        # default true: OneForm removes N random hosts
//!   public-ips: true                  # default true: add-ip and del-ip are offered
//!   scale-up-configures: new-hosts    # default all-hosts: OneForm re-runs the whole play
//! ```
//!
//! How each key becomes a rule:
//! - `add-host` (`amount`, `ips`, or a list of both) is enforced: a way it leaves out is
//!   refused. Missing: both, and the provision's kind decides (count for cloud provisions,
//!   addresses for on-prem ones) as in OneForm.
//! - `del-host`, `add-ip`, `del-ip` are checked (a value OneForm does not know makes the driver
//!   ERROR) but restrict nothing by themselves: OneForm's server takes host ids, a host count,
//!   public-IP counts and address-range ids from every driver whatever its UI hint says, and
//!   drivers in the wild declare `del-host: ids` while users remove hosts by count. What
//!   formwork refuses is said in the `formwork` keys; a `fireedge` hint that contradicts them
//!   (offering `del-host: amount` with `scale-down-by-amount: false`) is an error.
//! - `scale-up-configures: new-hosts` makes the play of a scale-up run on the front-end and the
//!   hosts the scale-up added only (`ansible-playbook --limit`); a driver declares it when its
//!   playbook configures a host without needing the others to be configured again.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::suggest;

/// One way an operation takes its hosts or IPs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Way {
    /// A count: hosts or public IPs to add, or hosts to remove (chosen by formwork).
    Amount,
    /// Host addresses (on-prem hosts to add).
    Ips,
    /// OpenNebula host ids or address-range ids.
    Ids,
}

impl Way {
    pub fn as_str(self) -> &'static str {
        match self {
            Way::Amount => "amount",
            Way::Ips => "ips",
            Way::Ids => "ids",
        }
    }
}

/// The operations of `fireedge.operations`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    AddHost,
    DelHost,
    AddIp,
    DelIp,
}

impl Operation {
    const ALL: [Operation; 4] = [Operation::AddHost, Operation::DelHost, Operation::AddIp, Operation::DelIp];

    pub fn key(self) -> &'static str {
        match self {
            Operation::AddHost => "add-host",
            Operation::DelHost => "del-host",
            Operation::AddIp => "add-ip",
            Operation::DelIp => "del-ip",
        }
    }

    /// Every way OneForm's server takes this operation in.
    fn ways(self) -> &'static [Way] {
        match self {
            Operation::AddHost => &[Way::Amount, Way::Ips],
            Operation::DelHost => &[Way::Ids, Way::Amount],
            Operation::AddIp => &[Way::Amount],
            Operation::DelIp => &[Way::Ids],
        }
    }
}

/// How the play of a scale-up runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ScaleUp {
    /// On every host, as OneForm does.
    #[default]
    AllHosts,
    /// On the front-end and the hosts the scale-up added.
    NewHosts,
}

/// What a driver supports, served as the driver's `capabilities`: for each operation the ways
/// formwork takes it in (none: the driver does not support it), and how a scale-up is
/// configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    #[serde(rename = "add-host")]
    pub add_host: Vec<Way>,
    #[serde(rename = "del-host")]
    pub del_host: Vec<Way>,
    #[serde(rename = "add-ip")]
    pub add_ip: Vec<Way>,
    #[serde(rename = "del-ip")]
    pub del_ip: Vec<Way>,
    #[serde(rename = "scale-up-configures")]
    pub scale_up: ScaleUp,
}

impl Default for Capabilities {
    /// OneForm's behaviour: everything its server takes, the whole play at each scale-up.
    fn default() -> Capabilities {
        let ways = |op: Operation| op.ways().to_vec();
        Capabilities {
            add_host: ways(Operation::AddHost),
            del_host: ways(Operation::DelHost),
            add_ip: ways(Operation::AddIp),
            del_ip: ways(Operation::DelIp),
            scale_up: ScaleUp::AllHosts,
        }
    }
}

/// formwork's own keys, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Own {
    scale_down_by_amount: Option<bool>,
    public_ips: Option<bool>,
    scale_up_configures: Option<ScaleUp>,
}

impl Capabilities {
    /// Reads `fireedge.operations` and the `formwork` mapping (absent: `None`). The error
    /// names the key and what it may hold.
    pub fn parse(fireedge: &Value, formwork: Option<&Value>) -> Result<Capabilities, String> {
        let [add_host, del_host, add_ip, del_ip] = declared(fireedge)?;
        let own: Own = match formwork {
            None | Some(Value::Null) => Own::default(),
            Some(v @ Value::Object(_)) => serde_json::from_value(v.clone()).map_err(|e| {
                format!(
                    "driver.conf `formwork`: {e} (its keys: scale-down-by-amount: true|false, \
                     public-ips: true|false, scale-up-configures: all-hosts|new-hosts)"
                )
            })?,
            Some(_) => return Err("driver.conf `formwork` must be a mapping of formwork's own keys".into()),
        };
        let by_amount = own.scale_down_by_amount.unwrap_or(true);
        if !by_amount && del_host.is_some_and(|ways| ways.contains(&Way::Amount)) {
            return Err("driver.conf offers `del-host: amount` in fireedge.operations but sets \
                        `formwork.scale-down-by-amount: false`: remove one of them"
                .into());
        }
        let public_ips = own.public_ips.unwrap_or(true);
        if !public_ips && (add_ip.is_some() || del_ip.is_some()) {
            return Err("driver.conf offers add-ip or del-ip in fireedge.operations but sets \
                        `formwork.public-ips: false`: remove one of them"
                .into());
        }
        let defaults = Capabilities::default();
        Ok(Capabilities {
            add_host: add_host.unwrap_or(defaults.add_host),
            del_host: if by_amount { vec![Way::Ids, Way::Amount] } else { vec![Way::Ids] },
            add_ip: if public_ips { defaults.add_ip } else { vec![] },
            del_ip: if public_ips { defaults.del_ip } else { vec![] },
            scale_up: own.scale_up_configures.unwrap_or_default(),
        })
    }

    /// The ways `op` is taken in.
    pub fn ways(&self, op: Operation) -> &[Way] {
        match op {
            Operation::AddHost => &self.add_host,
            Operation::DelHost => &self.del_host,
            Operation::AddIp => &self.add_ip,
            Operation::DelIp => &self.del_ip,
        }
    }

    pub fn allows(&self, op: Operation, way: Way) -> bool {
        self.ways(op).contains(&way)
    }

    /// What the driver supports, for messages: `add-host by amount; del-host by ids or
    /// amount; ...; a scale-up configures every host`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = Operation::ALL
            .into_iter()
            .filter(|op| !self.ways(*op).is_empty())
            .map(|op| {
                let ways: Vec<&str> = self.ways(op).iter().map(|w| w.as_str()).collect();
                format!("{} by {}", op.key(), ways.join(" or "))
            })
            .collect();
        parts.push(match self.scale_up {
            ScaleUp::AllHosts => "a scale-up configures every host".into(),
            ScaleUp::NewHosts => "a scale-up configures only the new hosts and the front-end".into(),
        });
        parts.join("; ")
    }
}

/// The ways each operation of `fireedge.operations` declares, in [`Operation::ALL`] order;
/// `None` where it is left out.
fn declared(fireedge: &Value) -> Result<[Option<Vec<Way>>; 4], String> {
    let operations = match fireedge.get("operations") {
        None | Some(Value::Null) => return Ok([None, None, None, None]),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err("driver.conf `fireedge.operations` must be a mapping such as \
                        { add-host: amount, del-host: ids, add-ip: amount, del-ip: ids }"
                .into());
        }
    };
    let mut out = [None, None, None, None];
    for (slot, op) in out.iter_mut().zip(Operation::ALL) {
        *slot = match operations.get(op.key()) {
            None | Some(Value::Null) => None,
            Some(value) => Some(ways(op, value)?),
        };
    }
    Ok(out)
}

/// One operation's value: a way, or a non-empty list of ways, each one OneForm knows for it.
fn ways(op: Operation, value: &Value) -> Result<Vec<Way>, String> {
    let known = op.ways();
    let names = || known.iter().map(|w| w.as_str()).collect::<Vec<_>>().join(" or ");
    let must = || format!("it must be {}, or a list of them", names());
    let one = |v: &Value| match v {
        Value::String(s) => known.iter().copied().find(|w| w.as_str() == s).ok_or_else(|| {
            let hint = suggest::hint(s, known.iter().map(|w| w.as_str()));
            format!("driver.conf `fireedge.operations.{}` names '{s}'{hint}: {}", op.key(), must())
        }),
        other => Err(format!("driver.conf `fireedge.operations.{}` holds {other}: {}", op.key(), must())),
    };
    let found = match value {
        Value::Array(list) if list.is_empty() => {
            return Err(format!("driver.conf `fireedge.operations.{}` is an empty list: {}", op.key(), must()));
        }
        Value::Array(list) => list.iter().map(one).collect::<Result<Vec<_>, _>>()?,
        single => vec![one(single)?],
    };
    let mut unique = Vec::with_capacity(found.len());
    for way in found {
        if !unique.contains(&way) {
            unique.push(way);
        }
    }
    Ok(unique)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(fireedge: Value, formwork: Option<Value>) -> Result<Capabilities, String> {
        Capabilities::parse(&fireedge, formwork.as_ref())
    }

    #[test]
    fn missing_keys_mean_oneforms_behaviour() {
        for fireedge in [json!({}), json!({"operations": null}), json!({"operations": {}})] {
            let caps = parse(fireedge.clone(), None).unwrap();
            assert_eq!(caps, Capabilities::default(), "{fireedge}");
            assert_eq!(caps.add_host, [Way::Amount, Way::Ips]);
            assert_eq!(caps.del_host, [Way::Ids, Way::Amount]);
            assert_eq!(caps.scale_up, ScaleUp::AllHosts);
        }
    }

    #[test]
    fn oneforms_registry_shape_restricts_only_add_host() {
        let ops = json!({"operations": {"add-host": "amount", "del-host": "ids", "add-ip": "amount", "del-ip": "ids"}});
        let caps = parse(ops, None).unwrap();
        assert!(caps.allows(Operation::AddHost, Way::Amount) && !caps.allows(Operation::AddHost, Way::Ips));
        assert!(caps.allows(Operation::DelHost, Way::Amount), "OneForm's server removes N hosts from any driver");
        assert_eq!(
            serde_json::to_value(&caps).unwrap(),
            json!({"add-host": ["amount"], "del-host": ["ids", "amount"], "add-ip": ["amount"], "del-ip": ["ids"],
                   "scale-up-configures": "all-hosts"})
        );
        let onprem = parse(json!({"operations": {"add-host": ["ips", "amount", "ips"]}}), None).unwrap();
        assert_eq!(onprem.add_host, [Way::Ips, Way::Amount], "a way listed twice counts once");
        let onprem = parse(json!({"operations": {"add-host": "ips", "del-host": ["ids", "amount"]}}), None).unwrap();
        assert_eq!(onprem.add_host, [Way::Ips]);
    }

    #[test]
    fn formworks_own_keys_restrict_and_choose_the_scale_up() {
        let own = json!({"scale-down-by-amount": false, "public-ips": false, "scale-up-configures": "new-hosts"});
        let caps = parse(json!({"operations": {"add-host": "ips", "del-host": "ids"}}), Some(own)).unwrap();
        assert_eq!(caps.del_host, [Way::Ids]);
        assert!(caps.add_ip.is_empty() && caps.del_ip.is_empty());
        assert_eq!(caps.scale_up, ScaleUp::NewHosts);
        assert_eq!(
            caps.describe(),
            "add-host by ips; del-host by ids; a scale-up configures only the new hosts and the front-end"
        );
        assert_eq!(parse(json!({}), Some(json!(null))).unwrap(), Capabilities::default());
    }

    /// (fireedge, formwork, words the error must carry)
    const MALFORMED: &[(&str, &str, &[&str])] = &[
        (r#"{"operations": ["add-host"]}"#, "null", &["`fireedge.operations` must be a mapping"]),
        (r#"{"operations": {"add-host": "count"}}"#, "null", &["add-host` names 'count'", "amount or ips"]),
        (r#"{"operations": {"add-host": "amout"}}"#, "null", &["did you mean 'amount'?"]),
        (r#"{"operations": {"del-host": "ips"}}"#, "null", &["del-host` names 'ips'", "ids or amount"]),
        (r#"{"operations": {"add-ip": 2}}"#, "null", &["add-ip` holds 2", "it must be amount"]),
        (r#"{"operations": {"del-ip": []}}"#, "null", &["del-ip` is an empty list"]),
        (r#"{"operations": {"add-host": ["amount", 1]}}"#, "null", &["add-host` holds 1"]),
        ("{}", "[1]", &["`formwork` must be a mapping"]),
        ("{}", r#"{"scale-up-configure": "new-hosts"}"#, &["unknown field `scale-up-configure`", "its keys:"]),
        ("{}", r#"{"scale-up-configures": "some"}"#, &["unknown variant `some`", "new-hosts"]),
        ("{}", r#"{"public-ips": "no"}"#, &["invalid type", "a boolean"]),
        (r#"{"operations": {"del-host": "amount"}}"#, r#"{"scale-down-by-amount": false}"#, &["remove one of them"]),
        (r#"{"operations": {"del-ip": "ids"}}"#, r#"{"public-ips": false}"#, &["add-ip or del-ip", "remove one"]),
    ];

    #[test]
    fn malformed_values_are_load_errors_that_say_what_is_wanted() {
        for (fireedge, formwork, words) in MALFORMED {
            let fireedge: Value = serde_json::from_str(fireedge).unwrap();
            let formwork: Value = serde_json::from_str(formwork).unwrap();
            let err = parse(fireedge.clone(), Some(formwork.clone())).unwrap_err();
            for word in *words {
                assert!(err.contains(word), "{fireedge} {formwork}: '{err}' lacks '{word}'");
            }
        }
    }
}

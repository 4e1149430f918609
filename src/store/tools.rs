//! The process groups of the tools operations run (`tool_groups`): recorded when a tool starts,
//! removed when it ends, read by the process that takes over a dead owner's operation to stop
//! what its tools left running.

use super::db::params;

use super::{Error, Store};

/// A tool's process group as recorded: its id, its leader's start time and the run's mark
/// (what `exec::group` needs to find it again without signalling a reused pid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolGroup {
    pub pgid: i64,
    pub leader_start: i64,
    pub mark: String,
}

impl Store {
    /// Records a tool of `operation_id` started; returns the record's id.
    pub fn record_tool_group(&self, operation_id: i64, group: &ToolGroup, time: i64) -> Result<i64, Error> {
        let group = group.clone();
        self.write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO tool_groups (operation_id, pgid, leader_start, mark, created_time)
                 VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
            )?
            .query_row(params![operation_id, group.pgid, group.leader_start, group.mark, time], |r| r.get(0))
        })
    }

    /// Forgets one record: its tool ended, or what it left was stopped.
    pub fn forget_tool_group(&self, id: i64) -> Result<(), Error> {
        self.write(move |tx| {
            tx.prepare_cached("DELETE FROM tool_groups WHERE id = ?1")?.execute([id])?;
            Ok(())
        })
    }

    /// The recorded groups of `operation_id`'s tools, oldest first, with their record ids.
    pub fn tool_groups(&self, operation_id: i64) -> Result<Vec<(i64, ToolGroup)>, Error> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, pgid, leader_start, mark FROM tool_groups WHERE operation_id = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map([operation_id], |r| {
                Ok((r.get(0)?, ToolGroup { pgid: r.get(1)?, leader_start: r.get(2)?, mark: r.get(3)? }))
            })?;
            rows.collect::<Result<_, _>>()
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::engine::Params;
    use crate::store::Owner;

    #[test]
    fn groups_are_kept_per_operation_until_forgotten() {
        let store = Store::open_in_memory().unwrap();
        let provider = store.insert_provider("sim", "sim", &json!({"connection": {}}), 1).unwrap();
        let body = serde_json::from_value(json!({"name": "p"})).unwrap();
        let provision = store.insert_provision("p", "sim", provider, &body, 2).unwrap();
        let owner = Owner { pid: 1, token: "1:1".into() };
        let op = store.begin_operation(provision, "create", &Params::None, None, &owner, 3).unwrap();
        let group = |pgid| ToolGroup { pgid, leader_start: 77, mark: format!("m{pgid}") };
        let first = store.record_tool_group(op, &group(10), 4).unwrap();
        let second = store.record_tool_group(op, &group(20), 5).unwrap();
        assert_eq!(store.tool_groups(op).unwrap(), [(first, group(10)), (second, group(20))]);
        assert_eq!(store.tool_groups(op + 1).unwrap(), [], "another operation has none");
        store.forget_tool_group(first).unwrap();
        assert_eq!(store.tool_groups(op).unwrap(), [(second, group(20))]);
    }
}

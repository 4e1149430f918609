//! What the first start of another formwork (an upgrade, or a downgrade) does before any work:
//! it puts away the clear files an older formwork left in idle provisions' working directories
//! (a variables file with the provider's credentials, a clear plan, a Terraform state) instead of
//! leaving them until each provision's next stage. The database records which formwork last
//! opened it (`meta.opened_by`), so this runs once per version.

use std::collections::HashSet;

use super::Error;

/// The `meta` key naming the formwork that last opened the database.
const OPENED_BY: &str = "opened_by";

/// This formwork, as `meta.opened_by` records it.
fn this_formwork() -> String {
    format!("formwork {} (schema {})", env!("CARGO_PKG_VERSION"), crate::store::SCHEMA_VERSION)
}

impl super::Service {
    /// Puts away what an older formwork left in the working directories of provisions no
    /// operation runs on, if another formwork opened the database last; returns how many
    /// directories were put away. A provision an operation runs on is left to that operation (its
    /// stage rewrites and removes its files; a resumed one does so when it resumes).
    pub(super) fn put_away_after_upgrade(&self) -> Result<usize, Error> {
        let this = this_formwork();
        if self.store.meta(OPENED_BY)?.as_deref() == Some(this.as_str()) {
            return Ok(0);
        }
        let busy: HashSet<i64> = self.store.running_operations()?.iter().map(|op| op.provision_id).collect();
        let root = self.settings.work_root();
        let entries = match std::fs::read_dir(&root) {
            Ok(entries) => entries.flatten().collect::<Vec<_>>(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
            Err(e) => return Err(Error::internal(format!("cannot read {}: {e}", root.display()))),
        };
        let mut swept = 0;
        for entry in entries {
            let Some(id) = entry.file_name().to_str().and_then(|n| n.parse::<i64>().ok()) else { continue };
            if busy.contains(&id) {
                continue;
            }
            // A directory whose provision is gone has no log to say so in; it is left alone.
            let Ok(mut log) = self.log(id) else { continue };
            match crate::stages::put_away(&root, id, &self.store, crate::store::now(), &mut log) {
                Ok(()) => swept += 1,
                Err(e) => {
                    tracing::warn!(provision_id = id, error = %e.message, "cannot put away an idle working directory")
                }
            }
        }
        self.store.set_meta(OPENED_BY, &this)?;
        Ok(swept)
    }
}

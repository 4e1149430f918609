//! DONE: the provision's working directory (which holds the variables file with credentials)
//! is removed; its Terraform states stay in the store and its log stays on disk.

use super::{Job, work};
use crate::engine::{Ctx, Outcome, StageError};

pub fn run(job: &Job, ctx: &mut Ctx<'_>) -> Result<Outcome, StageError> {
    match std::fs::remove_dir_all(&job.dir) {
        Ok(()) => ctx.log.info("Working directory removed"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(work::io_error("remove", &job.dir, e)),
    }
    Ok(Outcome::Done)
}

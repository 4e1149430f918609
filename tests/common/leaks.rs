//! Where a secret might have leaked to: byte searches over a folder's files and the files or
//! folders a user's group or others may read, for the secrets canary tests.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Every file under `dir` whose bytes hold `needle`, but those in `skip`.
pub fn holders(dir: &Path, needle: &str, skip: &[&Path]) -> Vec<String> {
    files(dir)
        .into_iter()
        .filter(|p| !skip.contains(&p.as_path()))
        .filter(|p| std::fs::read(p).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes())))
        .map(|p| p.display().to_string())
        .collect()
}

/// Every file under `dir`.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().to_path_buf())
        .collect()
}

/// The files and directories under `dir` its owner's group or others may read.
pub fn readable_by_others(dir: &Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| !e.file_type().is_symlink())
        .filter_map(|e| Some((e.metadata().ok()?.permissions().mode() & 0o777, e)))
        .filter(|(mode, _)| mode & 0o077 != 0)
        .map(|(mode, e)| format!("{} ({mode:o})", e.path().display()))
        .collect()
}

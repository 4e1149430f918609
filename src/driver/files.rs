//! Guarded access to the files of one driver folder: every read is bounded in size, must be
//! UTF-8, and no symlink may lead out of the folder. Driver folders come from registries that
//! formwork does not control, so nothing in them is trusted.

use std::fs;
use std::path::{Path, PathBuf};

/// Largest file a driver folder may hold. Real driver files are a few KiB; catalogue data files
/// (instance types, regions) stay well under this. The whole folder is copied into each
/// provision's working directory, so every file counts, not only those formwork parses.
pub const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;

/// Largest number of entries walked when checking a driver folder for escaping symlinks.
pub const MAX_ENTRIES: usize = 20_000;

/// A driver folder whose symlinks have been checked.
#[derive(Debug, Clone)]
pub struct DriverDir {
    root: PathBuf,
}

impl DriverDir {
    /// Opens `path` and refuses it if any symlink inside points outside it or any file is
    /// larger than [`MAX_FILE_BYTES`].
    pub fn open(path: &Path) -> Result<DriverDir, String> {
        if !path.is_dir() {
            return Err(format!("path '{}' does not exist or is not a directory", path.display()));
        }
        let root = path.canonicalize().map_err(|e| format!("cannot resolve '{}': {e}", path.display()))?;
        let dir = DriverDir { root };
        dir.check_entries()?;
        Ok(dir)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn is_file(&self, rel: &str) -> bool {
        self.path(rel).is_file()
    }

    pub fn is_dir(&self, rel: &str) -> bool {
        self.path(rel).is_dir()
    }

    /// Reads a text file of the driver, relative to its root.
    pub fn read(&self, rel: &str) -> Result<String, String> {
        read_text(&self.path(rel), rel)
    }

    fn check_entries(&self) -> Result<(), String> {
        let walker = walkdir::WalkDir::new(&self.root).follow_links(false).min_depth(1);
        for (count, entry) in walker.into_iter().enumerate() {
            if count >= MAX_ENTRIES {
                return Err(format!(
                    "the driver folder holds more than {MAX_ENTRIES} files; keep large data out of it"
                ));
            }
            let entry = entry.map_err(|e| format!("cannot read the driver folder: {e}"))?;
            let rel = entry.path().strip_prefix(&self.root).unwrap_or(entry.path()).display().to_string();
            if !entry.path_is_symlink() {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                if entry.file_type().is_file() && size > MAX_FILE_BYTES {
                    return Err(format!("{rel} is {size} bytes; driver files must be at most {MAX_FILE_BYTES} bytes"));
                }
                continue;
            }
            let target = fs::canonicalize(entry.path())
                .map_err(|_| format!("{rel} is a symlink that points nowhere; remove it or fix its target"))?;
            if !target.starts_with(&self.root) {
                return Err(format!(
                    "{rel} is a symlink to '{}', outside the driver folder; copy what it points to into the driver instead",
                    target.display()
                ));
            }
        }
        Ok(())
    }
}

/// Reads a bounded UTF-8 text file; `shown` names it in errors.
pub fn read_text(path: &Path, shown: &str) -> Result<String, String> {
    let meta = fs::metadata(path).map_err(|e| format!("{shown} cannot be read: {e}"))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("{shown} is {} bytes; driver files must be at most {MAX_FILE_BYTES} bytes", meta.len()));
    }
    let bytes = fs::read(path).map_err(|e| format!("{shown} cannot be read: {e}"))?;
    String::from_utf8(bytes)
        .map_err(|e| format!("{shown} is not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_symlinks_are_refused_and_inner_ones_allowed() {
        let outside = tempfile::tempdir().unwrap();
        let driver = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "x").unwrap();
        fs::write(driver.path().join("a.tf"), "x").unwrap();
        std::os::unix::fs::symlink(driver.path().join("a.tf"), driver.path().join("b.tf")).unwrap();
        assert!(DriverDir::open(driver.path()).is_ok());

        std::os::unix::fs::symlink(outside.path().join("secret"), driver.path().join("c.tf")).unwrap();
        let err = DriverDir::open(driver.path()).unwrap_err();
        assert!(err.contains("c.tf is a symlink to") && err.contains("outside the driver folder"), "{err}");
    }

    #[test]
    fn dangling_symlinks_are_refused() {
        let driver = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/nonexistent/x", driver.path().join("d")).unwrap();
        assert!(DriverDir::open(driver.path()).unwrap_err().contains("points nowhere"));
    }

    #[test]
    fn oversized_and_binary_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        fs::write(&big, vec![b'a'; MAX_FILE_BYTES as usize + 1]).unwrap();
        assert!(read_text(&big, "big").unwrap_err().contains("at most"));
        let bin = dir.path().join("bin");
        fs::write(&bin, [b'o', b'k', 0xff, 0xfe]).unwrap();
        assert!(read_text(&bin, "bin").unwrap_err().contains("offset 2"));
    }
}

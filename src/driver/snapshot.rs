//! Driver snapshots: the files one operation runs on, taken when it starts. A snapshot holds the
//! driver's folder and formwork's shared Ansible roles as they were then, so an operation never
//! mixes the Terraform of one driver version with the playbook of another, whatever happens to
//! the folders under it (an upgrade of formwork, an admin's edit). Snapshots are content-addressed:
//! the digest is SHA-256 over every file's path, mode and bytes, so taking the same files twice
//! gives the same snapshot, and the store keeps each once.
//!
//! On disk a snapshot is `<root>/<digest>/drivers/<name>/…` and `<root>/<digest>/roles/…`,
//! extracted from the store when missing (the driver's id is its folder's name, as everywhere).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// One file of a snapshot: its path inside the snapshot, whether it is executable, its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub path: String,
    pub executable: bool,
    pub bytes: Vec<u8>,
}

/// The files of a driver and the shared roles, with their digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub digest: String,
    /// The driver's id (its folder's name).
    pub driver: String,
    pub files: Vec<File>,
}

impl Snapshot {
    /// Reads the driver folder `driver_dir` (id `name`) and the shared roles folder `roles`.
    pub fn take(name: &str, driver_dir: &Path, roles: &Path) -> Result<Snapshot, String> {
        let mut files = read_tree(driver_dir, &format!("drivers/{name}"))?;
        if roles.is_dir() {
            files.extend(read_tree(roles, "roles")?);
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Snapshot { digest: digest(&files), driver: name.to_string(), files })
    }

    /// The files as the store keeps them: a JSON array of `[path, mode, base64 bytes]`.
    pub fn encode(&self) -> String {
        let items: Vec<serde_json::Value> = self
            .files
            .iter()
            .map(|f| serde_json::json!([f.path, if f.executable { 0o700 } else { 0o600 }, STANDARD.encode(&f.bytes)]))
            .collect();
        serde_json::Value::Array(items).to_string()
    }

    /// The snapshot the store kept as `encoded`; its digest is checked against `digest`.
    pub fn decode(digest: &str, driver: &str, encoded: &str) -> Result<Snapshot, String> {
        let bad = |why: &str| format!("driver snapshot {digest} is damaged ({why})");
        let items: Vec<(String, u32, String)> = serde_json::from_str(encoded).map_err(|e| bad(&e.to_string()))?;
        let files = items
            .into_iter()
            .map(|(path, mode, data)| {
                let bytes = STANDARD.decode(data).map_err(|e| bad(&e.to_string()))?;
                Ok(File { path, executable: mode & 0o100 != 0, bytes })
            })
            .collect::<Result<Vec<_>, String>>()?;
        if self::digest(&files) != digest {
            return Err(bad("its files do not match its digest"));
        }
        Ok(Snapshot { digest: digest.to_string(), driver: driver.to_string(), files })
    }

    /// The snapshot's folder under `root`, written there first if it is missing: into a private
    /// temporary folder renamed into place, so a folder that exists is whole.
    pub fn extract(&self, root: &Path) -> Result<PathBuf, String> {
        let dest = root.join(&self.digest);
        if dest.is_dir() {
            return Ok(dest);
        }
        let fail = |what: &str, path: &Path, e: std::io::Error| format!("cannot {what} {}: {e}", path.display());
        // A folder of this call's own: operations of one process extract at the same time.
        static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = root.join(format!(".{}.{}.{call}", self.digest, std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        for file in &self.files {
            let path = tmp.join(&file.path);
            if let Some(parent) = path.parent() {
                private_dirs(parent).map_err(|e| fail("create", parent, e))?;
            }
            fs::write(&path, &file.bytes).map_err(|e| fail("write", &path, e))?;
            let mode = if file.executable { 0o700 } else { 0o600 };
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(|e| fail("chmod", &path, e))?;
        }
        private_dirs(&tmp).map_err(|e| fail("create", &tmp, e))?;
        match fs::rename(&tmp, &dest) {
            Ok(()) => Ok(dest),
            // Another process extracted it first: theirs is the same.
            Err(_) if dest.is_dir() => {
                let _ = fs::remove_dir_all(&tmp);
                Ok(dest)
            }
            Err(e) => Err(fail("rename", &tmp, e)),
        }
    }
}

/// Where an extracted snapshot keeps the driver folder and the shared roles.
pub fn driver_dir(snapshot_dir: &Path, name: &str) -> PathBuf {
    snapshot_dir.join("drivers").join(name)
}

pub fn roles_dir(snapshot_dir: &Path) -> PathBuf {
    snapshot_dir.join("roles")
}

/// The first characters of a digest, as people read it.
pub fn short(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}

fn private_dirs(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Every file under `dir`, named `<prefix>/<path inside dir>`. Symbolic links are followed.
fn read_tree(dir: &Path, prefix: &str) -> Result<Vec<File>, String> {
    let mut files = vec![];
    for entry in walkdir::WalkDir::new(dir).follow_links(true).min_depth(1) {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        let Some(rel) = rel.to_str() else {
            return Err(format!("{}: file names must be UTF-8", entry.path().display()));
        };
        let bytes = fs::read(entry.path()).map_err(|e| format!("cannot read {}: {e}", entry.path().display()))?;
        let executable = entry.metadata().map(|m| m.permissions().mode() & 0o100 != 0).unwrap_or(false);
        files.push(File { path: format!("{prefix}/{rel}"), executable, bytes });
    }
    Ok(files)
}

/// SHA-256 over each file's path, mode and bytes, each length-prefixed, in path order.
fn digest(files: &[File]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for f in files {
        ctx.update(&(f.path.len() as u64).to_be_bytes());
        ctx.update(f.path.as_bytes());
        ctx.update(&[u8::from(f.executable)]);
        ctx.update(&(f.bytes.len() as u64).to_be_bytes());
        ctx.update(&f.bytes);
    }
    ctx.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(root: &Path, files: &[(&str, &str)]) {
        for (path, text) in files {
            let path = root.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
    }

    #[test]
    fn a_snapshot_is_addressed_by_its_content_and_comes_back_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let (driver, roles) = (tmp.path().join("sim"), tmp.path().join("roles"));
        tree(&driver, &[("terraform/main.tf", "a"), ("ansible/site.yaml", "b")]);
        tree(&roles, &[("one_node/tasks/main.yml", "c")]);
        fs::set_permissions(driver.join("ansible/site.yaml"), fs::Permissions::from_mode(0o755)).unwrap();
        let snap = Snapshot::take("sim", &driver, &roles).unwrap();
        assert_eq!(Snapshot::take("sim", &driver, &roles).unwrap().digest, snap.digest, "same files, same digest");
        let paths: Vec<&str> = snap.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            ["drivers/sim/ansible/site.yaml", "drivers/sim/terraform/main.tf", "roles/one_node/tasks/main.yml"]
        );

        let back = Snapshot::decode(&snap.digest, "sim", &snap.encode()).unwrap();
        assert_eq!(back, snap);
        let dir = back.extract(&tmp.path().join("snaps")).unwrap();
        assert_eq!(fs::read_to_string(driver_dir(&dir, "sim").join("terraform/main.tf")).unwrap(), "a");
        assert_eq!(fs::read_to_string(roles_dir(&dir).join("one_node/tasks/main.yml")).unwrap(), "c");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&driver_dir(&dir, "sim").join("ansible/site.yaml")), 0o700);
        assert_eq!(mode(&driver_dir(&dir, "sim").join("terraform/main.tf")), 0o600);
        assert_eq!(mode(&dir), 0o700);

        // Any change, even of a mode alone, is another snapshot.
        fs::set_permissions(driver.join("ansible/site.yaml"), fs::Permissions::from_mode(0o644)).unwrap();
        let other = Snapshot::take("sim", &driver, &roles).unwrap();
        assert_ne!(other.digest, snap.digest);
        let err = Snapshot::decode(&snap.digest, "sim", &other.encode()).unwrap_err();
        assert!(err.contains("do not match its digest"), "{err}");
    }

    #[test]
    fn threads_extracting_one_snapshot_at_once_each_get_it_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let driver = tmp.path().join("sim");
        let files: Vec<(String, String)> =
            (0..60).map(|i| (format!("ansible/templates/t{i}.j2"), format!("template {i}"))).collect();
        let pairs: Vec<(&str, &str)> = files.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
        tree(&driver, &pairs);
        let snap = Snapshot::take("sim", &driver, &tmp.path().join("no-roles")).unwrap();
        let root = tmp.path().join("snaps");
        fs::create_dir_all(&root).unwrap();
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    let dir = snap.extract(&root).unwrap();
                    for (path, text) in &files {
                        assert_eq!(&fs::read_to_string(driver_dir(&dir, "sim").join(path)).unwrap(), text);
                    }
                });
            }
        });
        let left: Vec<_> = fs::read_dir(&root).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(left, [std::ffi::OsString::from(&snap.digest)], "no temporary folder is left");
    }
}

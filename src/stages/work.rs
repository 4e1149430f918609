//! Per-provision working directories and the small file helpers every stage shares: fresh
//! copies of the driver's folders, private (0600) files, the variables file Terraform reads,
//! [`SecretFile`]s, the files that hand clear secrets to a tool for one stage only, and the
//! [`StateFile`], Terraform's state on disk for one stage only.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::engine::StageError;

/// `<work>/<id>/terraform` and `<work>/<id>/ansible`.
pub fn provision_dir(work_root: &Path, id: i64) -> PathBuf {
    work_root.join(id.to_string())
}

/// Wipes `dest` and copies `src` into it; directories are 0700, files 0600 (executables 0700).
pub fn fresh_copy(src: &Path, dest: &Path) -> Result<(), StageError> {
    if dest.exists() {
        fs::remove_dir_all(dest).map_err(|e| io_error("remove", dest, e))?;
    }
    make_private_dir(dest)?;
    for entry in walkdir::WalkDir::new(src).min_depth(1) {
        let entry = entry.map_err(|e| StageError::failed(format!("cannot read {}: {e}", src.display())))?;
        let target = dest.join(entry.path().strip_prefix(src).unwrap_or(entry.path()));
        if entry.file_type().is_dir() {
            make_private_dir(&target)?;
        } else {
            fs::copy(entry.path(), &target).map_err(|e| io_error("copy", entry.path(), e))?;
            let executable = entry.metadata().map(|m| m.permissions().mode() & 0o100 != 0).unwrap_or(false);
            let mode = if executable { 0o700 } else { 0o600 };
            fs::set_permissions(&target, fs::Permissions::from_mode(mode))
                .map_err(|e| io_error("chmod", &target, e))?;
        }
    }
    Ok(())
}

/// Creates a directory (and its missing parents) readable only by this user.
pub fn make_private_dir(dir: &Path) -> Result<(), StageError> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| io_error("create", dir, e))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| io_error("chmod", dir, e))
}

/// Makes a file only this user can read, if it exists.
pub fn make_private(path: &Path) -> Result<(), StageError> {
    match fs::set_permissions(path, fs::Permissions::from_mode(0o600)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error("chmod", path, e)),
        _ => Ok(()),
    }
}

/// Writes a file only this user can read, replacing any previous one.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), StageError> {
    let _ = fs::remove_file(path);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_error("create", path, e))?;
    file.write_all(contents).and_then(|()| file.sync_all()).map_err(|e| io_error("write", path, e))
}

/// A file that hands clear secrets to a tool (Terraform's variables, Ansible's extra
/// variables): written 0600 in the provision's 0700 directory, and removed when the stage that
/// wrote it ends, as this value is dropped (success, failure or panic alike). A process killed
/// mid-stage leaves it behind until the provision's next stage writes and removes it again, or
/// the provision's directory is deleted.
#[derive(Debug)]
pub struct SecretFile {
    path: PathBuf,
}

impl SecretFile {
    pub fn write(path: &Path, contents: &[u8]) -> Result<SecretFile, StageError> {
        write_private(path, contents)?;
        Ok(SecretFile::hold(path))
    }

    /// Holds the file a tool is about to write (Terraform's saved plan).
    pub fn hold(path: &Path) -> SecretFile {
        SecretFile { path: path.to_path_buf() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SecretFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Terraform's state in a provision's Terraform directory. Terraform writes its copies beside
/// it, named after it: `terraform.tfstate.backup` (the state before a command changed it) and
/// `terraform.tfstate.<time>.backup` (before a `terraform state` subcommand changed it).
pub const STATE_FILE: &str = "terraform.tfstate";

/// Terraform's state file (and its backups) held for one stage. A state holds in clear the values
/// of the sensitive variables its resources and outputs use, so it is on disk only while a stage
/// that runs Terraform, or a playbook that reads it, runs: dropping this value (the stage ended:
/// success, failure or panic alike) removes the state and every file named after it. The store
/// keeps every version, sealed.
///
/// The file stays while another process holds Terraform's lock on it: a Terraform that outlived
/// the formwork that started it (killed, its child finishing what it was doing) still writes its
/// final state there, and the provision's next stage saves it. A process killed mid-stage leaves
/// the file behind the same way.
#[derive(Debug)]
pub struct StateFile {
    dir: PathBuf,
}

impl StateFile {
    /// Holds the state file of the Terraform directory `dir`, first writing `state` into it
    /// unless it holds exactly that already. An existing file is written in place (the same
    /// file, made private): a lock another Terraform holds on it is still seen.
    pub fn hold(dir: &Path, state: Option<&str>) -> Result<StateFile, StageError> {
        let held = StateFile { dir: dir.to_path_buf() };
        let Some(state) = state else { return Ok(held) };
        let path = dir.join(STATE_FILE);
        if fs::read(&path).is_ok_and(|bytes| bytes == state.as_bytes()) {
            return Ok(held);
        }
        make_private_dir(dir)?;
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io_error("create", &path, e))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(|e| io_error("chmod", &path, e))?;
        file.write_all(state.as_bytes()).and_then(|()| file.sync_all()).map_err(|e| io_error("write", &path, e))?;
        Ok(held)
    }
}

impl Drop for StateFile {
    fn drop(&mut self) {
        if is_locked(&self.dir.join(STATE_FILE)) {
            return;
        }
        let Ok(entries) = fs::read_dir(&self.dir) else { return };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(STATE_FILE) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// Whether another process holds a lock on the file: Terraform's local backend locks its state
/// file with fcntl(2) while a command runs. Asked with an open file description lock query,
/// which sees such locks and takes none.
pub fn is_locked(path: &Path) -> bool {
    use nix::fcntl::{FcntlArg, fcntl};
    let Ok(file) = fs::OpenOptions::new().read(true).write(true).open(path) else { return false };
    let mut probe = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    fcntl(&file, FcntlArg::F_OFD_GETLK(&mut probe)).is_ok() && probe.l_type != libc::F_UNLCK as libc::c_short
}

/// The variables Terraform gets, as `*.auto.tfvars.json` written by serde (never spliced into
/// HCL): the declared user inputs' values, `oneform_tags` extended with the provision's
/// identity as OneForm does, and the provider's connection values.
pub fn tfvars(
    values: &Map<String, Value>,
    declared: &[String],
    connection: &Map<String, Value>,
    identity: (i64, i64, &str),
) -> Value {
    let (provision_id, provider_id, driver) = identity;
    let mut vars = Map::new();
    for (key, value) in values.iter().filter(|(k, _)| declared.contains(k)) {
        vars.insert(key.clone(), value.clone());
    }
    if declared.iter().any(|d| d == "oneform_tags") {
        let mut tags = Map::new();
        tags.insert("provision_id".into(), Value::String(provision_id.to_string()));
        tags.insert("provider_id".into(), Value::String(provider_id.to_string()));
        tags.insert("driver".into(), Value::String(driver.to_string()));
        if let Some(Value::Object(user)) = values.get("oneform_tags") {
            tags.extend(user.clone());
        }
        vars.insert("oneform_tags".into(), Value::Object(tags));
    }
    for (key, value) in connection.iter().filter(|(k, _)| declared.contains(k)) {
        vars.insert(key.clone(), value.clone());
    }
    Value::Object(vars)
}

pub fn io_error(what: &str, path: &Path, e: std::io::Error) -> StageError {
    StageError::failed(format!("cannot {what} {}: {e}", path.display()))
}

/// Locks the whole file for writing, as Terraform locks its state, until the returned file is
/// dropped. An open file description lock conflicts with any other description's, as a lock
/// another process takes does, so [`is_locked`] sees it.
#[cfg(test)]
pub fn lock_as_terraform_does(path: &Path) -> fs::File {
    let holder = fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let lock = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    nix::fcntl::fcntl(&holder, nix::fcntl::FcntlArg::F_OFD_SETLK(&lock)).unwrap();
    holder
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tfvars_keep_declared_inputs_and_extend_tags() {
        let values = json!({"oneform_hosts": 2, "oneform_tags": {"team": "a"}, "oneform_public_ips": 1})
            .as_object()
            .cloned()
            .unwrap();
        let connection = json!({"api_token": "t"}).as_object().cloned().unwrap();
        let declared = ["oneform_hosts", "oneform_tags", "api_token"].map(String::from).to_vec();
        let vars = tfvars(&values, &declared, &connection, (7, 3, "sim"));
        assert_eq!(
            vars,
            json!({"oneform_hosts": 2, "oneform_tags": {"provision_id": "7", "provider_id": "3", "driver": "sim", "team": "a"}, "api_token": "t"})
        );
    }

    #[test]
    fn copies_are_private_and_fresh() {
        let src = tempfile::tempdir().unwrap();
        fs::create_dir(src.path().join("sub")).unwrap();
        fs::write(src.path().join("sub/a.tf"), "x").unwrap();
        let dest = tempfile::tempdir().unwrap();
        let target = dest.path().join("t");
        make_private_dir(&target).unwrap();
        fs::write(target.join("stale"), "old").unwrap();
        fresh_copy(src.path(), &target).unwrap();
        assert!(!target.join("stale").exists());
        assert_eq!(fs::metadata(target.join("sub/a.tf")).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(&target).unwrap().permissions().mode() & 0o777, 0o700);
        write_private(&target.join("vars.json"), b"{}").unwrap();
        assert_eq!(fs::metadata(target.join("vars.json")).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_held_state_file_is_written_in_place_privately_and_gone_with_its_backups_when_the_stage_ends() {
        let dir = tempfile::tempdir().unwrap();
        let tf = dir.path().join("terraform");
        let path = tf.join(STATE_FILE);
        let failing = || -> Result<(), StageError> {
            let held = StateFile::hold(&tf, Some("{\"serial\": 1}"))?;
            assert_eq!(fs::read_to_string(&path).unwrap(), "{\"serial\": 1}");
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            for backup in ["terraform.tfstate.backup", "terraform.tfstate.1796152079.backup"] {
                fs::write(tf.join(backup), "{}").unwrap();
            }
            fs::write(tf.join("main.tf"), "").unwrap();
            let _held = held;
            Err(StageError::failed("terraform failed"))
        };
        assert!(failing().is_err());
        let left: Vec<_> = fs::read_dir(&tf).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, ["main.tf"], "the state and its backups are removed when the stage fails too");

        // A file someone else opened (and may hold a lock on) is the file written to.
        fs::write(&path, "").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let inode = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&path).unwrap());
        let held = StateFile::hold(&tf, Some("{\"serial\": 2}")).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(std::os::unix::fs::MetadataExt::ino(&meta), inode);
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::read_to_string(&path).unwrap(), "{\"serial\": 2}");
        drop(held);
        assert!(!path.exists());
        // While another process holds Terraform's lock on it, it stays (that process may still
        // write the state there).
        let held = StateFile::hold(&tf, Some("{\"serial\": 3}")).unwrap();
        let holder = lock_as_terraform_does(&path);
        assert!(is_locked(&path));
        drop(held);
        assert!(path.exists(), "a locked state is left for its holder");
        drop(holder);
        assert!(!is_locked(&path));
        drop(StateFile::hold(&tf, None).unwrap());
        assert!(!path.exists());
        let none = StateFile::hold(&dir.path().join("new"), None).unwrap();
        assert!(!dir.path().join("new").exists(), "no state: nothing is written");
        drop(none);
    }

    #[test]
    fn secret_files_are_private_and_gone_when_their_stage_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("provision.auto.tfvars.json");
        let failing = || -> Result<(), StageError> {
            let file = SecretFile::write(&path, b"{\"api_token\": \"s3cret\"}")?;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            assert!(fs::read_to_string(&path).unwrap().contains("s3cret"));
            let _held = file;
            Err(StageError::failed("the tool failed"))
        };
        assert!(failing().is_err());
        assert!(!path.exists(), "removed when the stage fails too");
        let panicked = std::panic::catch_unwind(|| {
            let _file = SecretFile::write(&path, b"{}").unwrap();
            panic!("a stage panicked");
        });
        assert!(panicked.is_err() && !path.exists(), "and when it panics");
    }
}

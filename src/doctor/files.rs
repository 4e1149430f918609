//! What formwork keeps on disk: the data directory (this user's, private), the driver folders
//! (each verifies), Terraform's plugin cache (writable) and the free space under them.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::unistd::AccessFlags;

use super::Check;
use crate::settings::Settings;

/// Below this free space the check fails: one provider download into the plugin cache, or a
/// Terraform state written half way, can then fill the disk during an apply.
const DISK_FAIL: u64 = 1 << 30;
/// Below this it warns: room for a few providers in the cache (hundreds of MB each for the
/// large clouds), states and logs, but not for long.
const DISK_WARN: u64 = 5 << 30;

pub(super) fn data_dir(dir: &Path) -> Check {
    const NAME: &str = "data_dir";
    let at = dir.display();
    let meta = match fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return match creatable(dir) {
                Ok(()) => Check::ok(
                    NAME,
                    format!("{at} does not exist yet; formwork creates it (mode 700) at its first start"),
                ),
                Err(why) => Check::fail(
                    NAME,
                    why,
                    format!(
                        "create it as a user who may (mkdir -m 700 -p {at}) and chown it to the user that runs formwork"
                    ),
                ),
            };
        }
        Err(e) => return Check::fail(NAME, format!("{at}: {e}"), format!("make {at} a directory this user may read")),
    };
    if !meta.is_dir() {
        let fix = "move it away, or point data_dir (FORMWORK_DATA_DIR, --data-dir) at a directory";
        return Check::fail(NAME, format!("{at} is not a directory"), fix);
    }
    if let Some(other) = not_mine(dir, &meta) {
        return Check::fail(NAME, other, format!("chown -R {} {at}", euid()));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o007 != 0 {
        return Check::fail(
            NAME,
            format!("others may read {at} (mode {mode:o}): it holds the database, logs and Terraform work"),
            format!("chmod 700 {at}"),
        );
    }
    if nix::unistd::access(dir, AccessFlags::W_OK | AccessFlags::X_OK).is_err() {
        return Check::fail(
            NAME,
            format!("this user may not write in {at} (mode {mode:o})"),
            format!("chmod 700 {at}"),
        );
    }
    Check::ok(NAME, format!("{at} (mode {mode:o})"))
}

/// Whether a missing `dir` can be made: its nearest existing ancestor is a directory this user
/// may write in.
fn creatable(dir: &Path) -> Result<(), String> {
    let Some(parent) = existing_ancestor(dir) else {
        return Err(format!("{} does not exist, nor does any folder above it", dir.display()));
    };
    match nix::unistd::access(&parent, AccessFlags::W_OK | AccessFlags::X_OK) {
        Ok(()) if parent.is_dir() => Ok(()),
        _ => Err(format!(
            "{} does not exist and this user cannot create it: {} is not writable",
            dir.display(),
            parent.display()
        )),
    }
}

/// The nearest folder above `path` that exists (`.` above a relative path's first component).
fn existing_ancestor(path: &Path) -> Option<PathBuf> {
    let here = |a: &Path| if a.as_os_str().is_empty() { PathBuf::from(".") } else { a.to_path_buf() };
    path.ancestors().skip(1).map(here).find(|a| a.exists())
}

/// Why `path` is not this user's, if it is not.
pub(super) fn not_mine(path: &Path, meta: &fs::Metadata) -> Option<String> {
    let me = euid();
    (meta.uid() != me)
        .then(|| format!("{} is owned by uid {}, not by uid {me} that runs formwork", path.display(), meta.uid()))
}

pub(super) fn euid() -> u32 {
    // SAFETY: geteuid takes no argument, touches no memory of ours and cannot fail.
    unsafe { libc::geteuid() }
}

/// Every driver folder verifies, as loading it would say, without recording states
/// (`Catalog::list` records them): a state recorded ERROR stays broken until a sync, as in
/// `Catalog::load`; any other is verified again.
pub(super) fn drivers(settings: &Settings) -> Check {
    const NAME: &str = "drivers";
    // formwork's own files: found by the share_dir search order (settings::share_dir).
    let missing: Vec<String> = [&settings.builtin_drivers, &settings.shared_roles]
        .into_iter()
        .filter(|dir| !dir.is_dir())
        .map(|dir| dir.display().to_string())
        .collect();
    if !missing.is_empty() {
        let detail = format!("formwork's own files are missing: {}", missing.join(", "));
        let fix = "install formwork's share folder (drivers/ and playbooks/roles/) as <prefix>/share/formwork beside \
                   <prefix>/bin/formwork or as /usr/share/formwork, or point share_dir (FORMWORK_SHARE_DIR) at it";
        return Check::fail(NAME, detail, fix);
    }
    let catalog = match settings.catalog() {
        Ok(catalog) => catalog,
        Err(e) => {
            let fix =
                "point builtin_drivers and drivers_dirs (FORMWORK_DRIVERS_DIRS, --drivers-dir) at existing folders";
            return Check::fail(NAME, e.to_string(), fix);
        }
    };
    let broken: Vec<String> = catalog
        .problems()
        .into_iter()
        .map(|(entry, reason)| format!("{} ({}): {reason}", entry.name, entry.path.display()))
        .collect();
    let names: Vec<&str> = catalog.entries().iter().map(|e| e.name.as_str()).collect();
    if !broken.is_empty() {
        let fix = "fix each folder named, then sync the drivers (formwork driver sync, or POST /api/v1/drivers/sync)";
        return Check::fail(NAME, broken.join("; "), fix);
    }
    if names.is_empty() {
        let detail = format!("no driver folder in {}", settings.builtin_drivers.display());
        return Check::warn(
            NAME,
            detail,
            "point builtin_drivers (FORMWORK_BUILTIN_DRIVERS) at formwork's drivers folder",
        );
    }
    Check::ok(NAME, format!("{} load: {}", names.len(), names.join(", ")))
}

/// Terraform writes providers into the shared cache; a probe file is created and removed.
pub(super) fn plugin_cache(dir: &Path) -> Check {
    const NAME: &str = "plugin_cache";
    let at = dir.display();
    if !dir.exists() {
        return Check::ok(NAME, format!("{at} does not exist yet; the first Terraform init creates it"));
    }
    let probe = dir.join(format!(".formwork-doctor-{}", std::process::id()));
    match fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&probe) {
        Ok(_) => {
            let _ = fs::remove_file(&probe);
            Check::ok(NAME, format!("{at} is writable"))
        }
        Err(e) => Check::fail(
            NAME,
            format!("cannot write in {at}: {e}"),
            format!(
                "chown -R {} {at} && chmod 700 {at}, or remove it (the next Terraform init makes it again)",
                euid()
            ),
        ),
    }
}

pub(super) fn disk(data_dir: &Path) -> Check {
    const NAME: &str = "disk";
    let at = if data_dir.exists() { Some(data_dir.to_path_buf()) } else { existing_ancestor(data_dir) };
    let Some(at) = at else {
        return Check::fail(NAME, format!("no folder of {} exists", data_dir.display()), "create the data directory");
    };
    let stat = match nix::sys::statvfs::statvfs(&at) {
        Ok(stat) => stat,
        Err(e) => {
            return Check::fail(
                NAME,
                format!("cannot read the free space of {}: {e}", at.display()),
                "check the filesystem",
            );
        }
    };
    let free = stat.blocks_available() as u64 * stat.fragment_size() as u64;
    let detail = format!("{} free on the filesystem of {}", gib(free), at.display());
    let fix = "free space there, or move data_dir to a larger filesystem";
    match free {
        f if f < DISK_FAIL => Check::fail(NAME, format!("{detail}, under {}", gib(DISK_FAIL)), fix),
        f if f < DISK_WARN => Check::warn(NAME, format!("{detail}, under {}", gib(DISK_WARN)), fix),
        _ => Check::ok(NAME, detail),
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::doctor::Status;

    #[test]
    fn a_data_dir_others_may_read_fails_naming_chmod_and_a_missing_one_passes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let missing = data_dir(&dir);
        assert_eq!(missing.status, Status::Ok, "{missing:?}");
        assert!(!dir.exists(), "the check creates nothing");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let open = data_dir(&dir);
        assert_eq!(open.status, Status::Fail);
        assert_eq!(open.fix.unwrap(), format!("chmod 700 {}", dir.display()));
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(data_dir(&dir).status, Status::Ok);
    }

    #[test]
    fn a_relative_data_dir_is_looked_at_from_here() {
        assert_eq!(existing_ancestor(Path::new("no-such-formwork-dir/data")), Some(PathBuf::from(".")));
        assert_eq!(creatable(Path::new("no-such-formwork-dir")), Ok(()));
    }
}

//! Finding driver folders. Built-in drivers come first (registry `default`), then each extra
//! directory in order; in an extra directory a child that looks like a driver is one (registry =
//! the directory's name), any other child is a registry folder whose children are drivers, as in
//! OneForm's `/var/lib/one/oneform/drivers/<registry>/<name>`. Hidden folders are skipped at
//! every level. The first driver of a name wins; later ones are reported as shadowed.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Error;

/// A discovered driver folder.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub name: String,
    pub path: PathBuf,
    pub registry: String,
}

/// A driver folder hidden by an earlier one of the same name.
#[derive(Debug, Clone, Serialize)]
pub struct Shadowed {
    pub name: String,
    pub path: PathBuf,
    pub shadowed_by: PathBuf,
}

/// All drivers found, in discovery order, and those shadowed.
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub entries: Vec<Entry>,
    pub shadowed: Vec<Shadowed>,
}

/// Scans `builtin` and then `extra` directories. A missing built-in directory yields no
/// built-in drivers; a missing extra directory is an error, since someone asked for it.
pub fn scan(builtin: &Path, extra: &[PathBuf]) -> Result<Found, Error> {
    let mut found = Found::default();
    if builtin.is_dir() {
        for dir in visible_dirs(builtin)? {
            found.add(dir, "default".to_string());
        }
    }
    for root in extra {
        if !root.is_dir() {
            return Err(Error::DriversDir { path: root.clone() });
        }
        let root_name = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "local".into());
        for child in visible_dirs(root)? {
            if looks_like_driver(&child) {
                found.add(child, root_name.clone());
            } else {
                let registry = child.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                for dir in visible_dirs(&child)? {
                    found.add(dir, registry.clone());
                }
            }
        }
    }
    Ok(found)
}

impl Found {
    fn add(&mut self, path: PathBuf, registry: String) {
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            return;
        };
        match self.entries.iter().find(|e| e.name == name) {
            Some(winner) => {
                self.shadowed.push(Shadowed { name, path, shadowed_by: winner.path.clone() });
            }
            None => self.entries.push(Entry { name, path, registry }),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

fn looks_like_driver(dir: &Path) -> bool {
    ["driver.conf", "terraform", "ansible"].iter().any(|f| dir.join(f).exists())
}

/// Child directories not starting with `.`, sorted by name.
fn visible_dirs(path: &Path) -> Result<Vec<PathBuf>, Error> {
    let read = std::fs::read_dir(path).map_err(|e| Error::io(path, e))?;
    let mut dirs: Vec<PathBuf> = read
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// Refuses a driver name that is not a plain folder name, before it is used in any path.
pub fn check_name(name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.starts_with('/') {
        Some("it is an absolute path")
    } else if name.contains('/') || name.contains('\\') {
        Some("it contains a path separator")
    } else if name == "." || name == ".." {
        Some("it names a parent or current folder")
    } else if name.starts_with('.') {
        Some("hidden folders are never drivers")
    } else if name.chars().any(char::is_control) {
        Some("it contains control characters")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidName { name: name.to_string(), reason }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn mkdir(path: &Path) {
        fs::create_dir_all(path).unwrap();
    }

    #[test]
    fn builtin_first_registries_nested_hidden_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let builtin = tmp.path().join("builtin");
        mkdir(&builtin.join("sim"));
        mkdir(&builtin.join(".git"));
        let extra = tmp.path().join("extra");
        mkdir(&extra.join("oneform-registry/aws/terraform"));
        mkdir(&extra.join("oneform-registry/sim/terraform"));
        mkdir(&extra.join("oneform-registry/.hidden"));
        mkdir(&extra.join("mine/ansible"));
        let found = scan(&builtin, std::slice::from_ref(&extra)).unwrap();
        let names: Vec<(&str, &str)> = found.entries.iter().map(|e| (e.name.as_str(), e.registry.as_str())).collect();
        assert_eq!(names, vec![("sim", "default"), ("mine", "extra"), ("aws", "oneform-registry")]);
        assert_eq!(found.shadowed.len(), 1);
        assert_eq!(found.shadowed[0].path, extra.join("oneform-registry/sim"));
        assert_eq!(found.shadowed[0].shadowed_by, builtin.join("sim"));
    }

    #[test]
    fn a_missing_extra_dir_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let err = scan(tmp.path(), &[tmp.path().join("nope")]).unwrap_err();
        assert!(err.to_string().contains("nope"));
    }

    #[test]
    fn names_must_be_plain() {
        for bad in ["", "../x", "a/b", "/etc", ".", "..", ".states", "a\\b", "a\nb"] {
            assert!(check_name(bad).is_err(), "{bad:?} should be refused");
        }
        for good in ["sim", "onprem", "my-driver_2"] {
            assert!(check_name(good).is_ok());
        }
    }
}

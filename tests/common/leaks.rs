//! Where a secret might have leaked to: byte searches over a folder's files and the files or
//! folders a user's group or others may read, for the secrets canary tests.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Every file under `dir` whose bytes hold `needle`, but those in `skip`. A zip archive (a
/// Terraform plan file is one, its entries deflated) is searched entry by entry, inflated.
pub fn holders(dir: &Path, needle: &str, skip: &[&Path]) -> Vec<String> {
    files(dir)
        .into_iter()
        .filter(|p| !skip.contains(&p.as_path()))
        .filter(|p| std::fs::read(p).is_ok_and(|bytes| holds(&bytes, needle) || zip_holds(p, &bytes, needle)))
        .map(|p| p.display().to_string())
        .collect()
}

fn holds(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Whether `bytes`, the contents of `path`, are a zip archive with an entry holding `needle`;
/// read by Python's zipfile (the project's venv, which scripts/setup makes).
fn zip_holds(path: &Path, bytes: &[u8], needle: &str) -> bool {
    if !bytes.starts_with(b"PK\x03\x04") {
        return false;
    }
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/venv/bin/python");
    let script = "import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nfound = any(sys.argv[2].encode() in z.read(n) for n in z.namelist())\nsys.exit(3 if found else 0)";
    let status = std::process::Command::new(&python)
        .args(["-c", script])
        .arg(path)
        .arg(needle)
        .status()
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup)", python.display()));
    assert!(
        status.code() == Some(3) || status.success(),
        "{} could not read {} as a zip: {status}",
        python.display(),
        path.display()
    );
    status.code() == Some(3)
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

//! Secret keys: where they come from, their ids, and the key file.
//!
//! The key file holds one base64 key (32 bytes) per line, the sealing key first; the keys after
//! it are still accepted, which is how a rotation keeps both keys working until every value is
//! re-sealed. It is created on first use (0600, written to a temporary file, synced, then
//! linked into place so two processes starting at once agree on one key) and rewritten the
//! same way (renamed over) by a rotation. `FORMWORK_SECRET_KEY` gives keys the same way, comma
//! separated, for servers that keep no key on disk.
//!
//! A key's id is derived from the key (the first 8 bytes of the tag XChaCha20-Poly1305 gives an
//! empty message under the all-zero nonce: a key check value), so the same key has the same id
//! wherever it is given, and the id reveals nothing about the key.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use super::{Error, MAKE_A_KEY};

/// The key file's name in the data directory.
pub const KEY_FILE: &str = "secret.key";

const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;

const FILE_HEADER: &str = "\
# formwork's secret keys: base64, 32 bytes each. The first seals new values; the ones after it
# are still accepted while `formwork secrets rotate` re-seals what they sealed.
# Keep this file apart from copies of formwork.db: together they reveal every credential.
";

/// Where a process finds its keys.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A key file: `<data_dir>/secret.key` by default, or `secret_key_file`. Created on first
    /// use; rotations rewrite it.
    File(PathBuf),
    /// `FORMWORK_SECRET_KEY`: base64 keys, comma separated, the sealing one first.
    Given(KeyText),
    /// A random key that lives as long as the process (in-memory stores).
    Ephemeral,
}

impl Source {
    /// Where keys are looked for, for messages.
    pub fn describe(&self) -> String {
        match self {
            Source::File(path) if !path.exists() => format!("the key file {} (it does not exist)", path.display()),
            Source::File(path) => format!("the key file {}", path.display()),
            Source::Given(_) => "FORMWORK_SECRET_KEY".into(),
            Source::Ephemeral => "this process's temporary key".into(),
        }
    }
}

/// Key text as given in the environment; never printed.
#[derive(Clone, PartialEq)]
pub struct KeyText(String);

impl KeyText {
    pub fn new(text: impl Into<String>) -> KeyText {
        KeyText(text.into())
    }

    /// The text, to hand to a background formwork's environment.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for KeyText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyText(<hidden>)")
    }
}

/// One key, ready to seal and open.
pub struct Key {
    id: String,
    /// The key as base64, to write the key file again during a rotation.
    text: String,
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key").field("id", &self.id).finish_non_exhaustive()
    }
}

impl Key {
    /// A key from its base64 text; the error says what is wrong without repeating the text.
    fn from_text(text: &str) -> Result<Key, String> {
        let text = text.trim();
        let bytes = STANDARD.decode(text).map_err(|_| format!("it is not base64; make a key with `{MAKE_A_KEY}`"))?;
        if bytes.len() != KEY_BYTES {
            return Err(format!("it holds {} bytes, not {KEY_BYTES}; make a key with `{MAKE_A_KEY}`", bytes.len()));
        }
        let cipher = XChaCha20Poly1305::new_from_slice(&bytes).map_err(|e| e.to_string())?;
        let check = cipher
            .encrypt(&XNonce::default(), Payload { msg: b"", aad: b"formwork key id" })
            .map_err(|e| e.to_string())?;
        let id = check[..8].iter().map(|b| format!("{b:02x}")).collect();
        Ok(Key { id, text: text.to_string(), cipher })
    }

    fn generate() -> Result<Key, Error> {
        let bytes = <[u8; KEY_BYTES]>::try_generate().map_err(|e| Error::Random(e.to_string()))?;
        Key::from_text(&STANDARD.encode(bytes)).map_err(Error::Random)
    }

    /// The key's id, as sealed values name it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `plain` encrypted under a fresh random nonce, as nonce ‖ ciphertext ‖ tag.
    pub(super) fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, Error> {
        let nonce = XNonce::try_generate().map_err(|e| Error::Random(e.to_string()))?;
        let sealed = self
            .cipher
            .encrypt(&nonce, Payload { msg: plain, aad })
            .map_err(|_| Error::Random("the cipher refused the value".into()))?;
        let mut out = Vec::with_capacity(NONCE_BYTES + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The plaintext of nonce ‖ ciphertext ‖ tag, or `None` if it does not authenticate.
    pub(super) fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_BYTES {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let nonce = XNonce::try_from(nonce).ok()?;
        self.cipher.decrypt(&nonce, Payload { msg: ciphertext, aad }).ok()
    }
}

/// The keys a process knows, the sealing key first. A file source is read again when a value
/// names a key not known yet: another process may have rotated since this one started.
pub struct Keyring {
    source: Source,
    keys: RwLock<Vec<Arc<Key>>>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring").field("source", &self.source).field("ids", &self.ids()).finish()
    }
}

impl Keyring {
    /// A keyring with nothing loaded yet: the store loads it once it knows whether the
    /// database already names a key (a missing key file is created only when it does not).
    pub fn new(source: Source) -> Keyring {
        Keyring { source, keys: RwLock::new(Vec::new()) }
    }

    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Reads the keys from the source. A missing key file is created, with a new key, only when
    /// `create`; otherwise the keyring is left empty.
    pub fn load(&self, create: bool) -> Result<(), Error> {
        let keys = match &self.source {
            Source::File(path) => read_file(path, create)?,
            Source::Given(text) => parse_given(text.expose())?,
            Source::Ephemeral if !self.ids().is_empty() => return Ok(()),
            Source::Ephemeral => vec![Key::generate()?],
        };
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = dedup(keys);
        Ok(())
    }

    /// The key new values are sealed with.
    pub fn sealing(&self) -> Result<Arc<Key>, Error> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        keys.first().cloned().ok_or_else(|| Error::UnknownKey {
            key_id: "(none: no key is loaded)".into(),
            searched: self.source.describe(),
        })
    }

    /// The key with this id, reading a key file again if it is not known yet.
    pub fn get(&self, id: &str) -> Result<Arc<Key>, Error> {
        if let Some(key) = self.find(id) {
            return Ok(key);
        }
        if let Source::File(path) = &self.source {
            self.merge(read_file(path, false)?);
            if let Some(key) = self.find(id) {
                return Ok(key);
            }
        }
        Err(Error::UnknownKey { key_id: id.to_string(), searched: self.source.describe() })
    }

    /// Takes the keys read again from the file (the sealing one first) and keeps the ones known
    /// before after them: a value this process sealed with a key another process has retired
    /// meanwhile must still open, to be sealed again.
    fn merge(&self, read: Vec<Key>) {
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        let mut merged = dedup(read);
        merged.extend(keys.iter().filter(|k| !merged.iter().any(|m| m.id == k.id)).cloned().collect::<Vec<_>>());
        *keys = merged;
    }

    fn find(&self, id: &str) -> Option<Arc<Key>> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).iter().find(|k| k.id == id).cloned()
    }

    /// The ids of the keys known, the sealing key first.
    pub fn ids(&self) -> Vec<String> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).iter().map(|k| k.id.clone()).collect()
    }

    /// Whether keys other than the sealing one can be dropped by formwork itself (a key file's
    /// can; the environment's only by whoever sets it).
    pub fn can_retire(&self) -> bool {
        !matches!(self.source, Source::Given(_))
    }

    /// Starts a rotation: a key file gets a new key in front of the others (written safely,
    /// both kept); keys from the environment must already list the new key first. Returns the
    /// new sealing key. The caller holds the store's rotation lock.
    pub fn add_key(&self) -> Result<Arc<Key>, Error> {
        match &self.source {
            Source::Given(_) if self.ids().len() < 2 => Err(Error::Given(format!(
                "to rotate a key given in the environment, put the new key first, FORMWORK_SECRET_KEY=NEW,OLD (make one with `{MAKE_A_KEY}`), run `formwork secrets rotate`, then drop OLD"
            ))),
            Source::Given(_) => self.sealing(),
            Source::File(path) => {
                let new = Arc::new(Key::generate()?);
                let mut keys = vec![Arc::clone(&new)];
                keys.extend(self.keys.read().unwrap_or_else(|p| p.into_inner()).iter().cloned());
                write_file(path, &keys)?;
                *self.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
                Ok(new)
            }
            Source::Ephemeral => {
                let new = Arc::new(Key::generate()?);
                self.keys.write().unwrap_or_else(|p| p.into_inner()).insert(0, Arc::clone(&new));
                Ok(new)
            }
        }
    }

    /// Drops every key but the sealing one (a key file is rewritten safely); returns the ids
    /// dropped. Keys from the environment stay: their ids are returned for whoever sets it.
    pub fn retire_others(&self) -> Result<Vec<String>, Error> {
        let keys: Vec<Arc<Key>> = self.keys.read().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(first) = keys.first() else { return Ok(Vec::new()) };
        let others: Vec<String> = keys[1..].iter().map(|k| k.id.clone()).collect();
        if others.is_empty() || matches!(self.source, Source::Given(_)) {
            return Ok(others);
        }
        if let Source::File(path) = &self.source {
            write_file(path, std::slice::from_ref(first))?;
        }
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = vec![Arc::clone(first)];
        Ok(others)
    }
}

/// Who a key file is given to: a service's user and group (`formwork secrets init-key --owner`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The user's name, for messages.
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// What [`init_file`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Init {
    /// A new key file holding one new key, with this id.
    Created { key_id: String },
    /// A key file that was already there and usable; left as it was.
    Present { key_ids: Vec<String> },
}

/// Makes sure the key file at `path` exists, private (0600) and owned by `owner` when one is
/// named, for a service whose key lives where it may not write (`/etc`, under systemd's
/// `ProtectSystem=strict`): a privileged step creates it before the service starts. A missing
/// file is created as [`Keyring::load`] creates one, then given to `owner` (a directory it had
/// to make too). An existing file is only checked, never changed: it must hold keys, be
/// private, and belong to `owner`; otherwise the error says how to fix it.
pub fn init_file(path: &Path, owner: Option<Owner>) -> Result<Init, Error> {
    let fail = |message: String| Error::File { path: path.to_path_buf(), message };
    let parent = path.parent().filter(|d| !d.as_os_str().is_empty());
    let new_parent = parent.filter(|d| !d.exists());
    let existed = fs::symlink_metadata(path).is_ok();
    let ring = Keyring::new(Source::File(path.to_path_buf()));
    ring.load(true)?;
    if existed {
        let meta = fs::metadata(path).map_err(|e| fail(e.to_string()))?;
        let uid = std::os::unix::fs::MetadataExt::uid(&meta);
        if let Some(owner) = owner.filter(|o| o.uid != uid) {
            return Err(fail(format!(
                "it belongs to uid {uid}, not to {} (uid {}), who could not read it; give it over with `chown {}: {}`",
                owner.name,
                owner.uid,
                owner.name,
                path.display()
            )));
        }
        return Ok(Init::Present { key_ids: ring.ids() });
    }
    if let Some(owner) = &owner {
        let chown = |p: &Path| {
            std::os::unix::fs::chown(p, Some(owner.uid), Some(owner.gid))
                .map_err(|e| fail(format!("cannot give {} to {} (uid {}): {e}", p.display(), owner.name, owner.uid)))
        };
        if let Some(dir) = new_parent {
            chown(dir)?;
        }
        chown(path)?;
    }
    Ok(Init::Created { key_id: ring.sealing()?.id().to_string() })
}

fn dedup(keys: Vec<Key>) -> Vec<Arc<Key>> {
    let mut out: Vec<Arc<Key>> = Vec::new();
    for key in keys {
        if !out.iter().any(|k| k.id == key.id) {
            out.push(Arc::new(key));
        }
    }
    out
}

fn parse_given(text: &str) -> Result<Vec<Key>, Error> {
    let parts: Vec<&str> = text.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Err(Error::Given(format!("it holds no key; make one with `{MAKE_A_KEY}`")));
    }
    parts
        .iter()
        .enumerate()
        .map(|(n, part)| {
            Key::from_text(part).map_err(|e| Error::Given(format!("key {} of {}: {e}", n + 1, parts.len())))
        })
        .collect()
}

/// The keys of a key file; a missing file is created with a new key when `create`, else none.
fn read_file(path: &Path, create: bool) -> Result<Vec<Key>, Error> {
    let fail = |message: String| Error::File { path: path.to_path_buf(), message };
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => return create_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(fail(e.to_string())),
    };
    let mode = fs::metadata(path).map_err(|e| fail(e.to_string()))?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(fail(format!("others may read it (mode {mode:o}); make it private with `chmod 600`")));
    }
    let lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let keys = lines
        .map(|(n, line)| Key::from_text(line).map_err(|e| fail(format!("line {}: {e}", n + 1))))
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err(fail(format!("it holds no key; restore it, or put one in it (`{MAKE_A_KEY}`)")));
    }
    Ok(keys)
}

/// Creates the key file with a new key. Linked into place, so of two processes creating it at
/// once one wins and the other reads the winner's key.
fn create_file(path: &Path) -> Result<Vec<Key>, Error> {
    let fail = |message: String| Error::File { path: path.to_path_buf(), message };
    let key = Key::generate()?;
    let tmp = write_temporary(path, std::slice::from_ref(&key.text))?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            sync_dir(path)?;
            Ok(vec![key])
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_file(path, false),
        Err(e) => Err(fail(e.to_string())),
    }
}

/// Replaces the key file with `keys`, atomically: a crash leaves the old file or the new one.
fn write_file(path: &Path, keys: &[Arc<Key>]) -> Result<(), Error> {
    let texts: Vec<String> = keys.iter().map(|k| k.text.clone()).collect();
    let tmp = write_temporary(path, &texts)?;
    fs::rename(&tmp, path).map_err(|e| Error::File { path: path.to_path_buf(), message: e.to_string() })?;
    sync_dir(path)
}

/// Writes `<path>.<pid>.tmp` (0600) with the header and one key per line, synced to disk.
fn write_temporary(path: &Path, keys: &[String]) -> Result<PathBuf, Error> {
    let fail = |message: String| Error::File { path: path.to_path_buf(), message };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| fail(e.to_string()))?;
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!("{name}.{}.tmp", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| fail(format!("cannot create {}: {e}", tmp.display())))?;
    let mut text = FILE_HEADER.to_string();
    for key in keys {
        text.push_str(key);
        text.push('\n');
    }
    file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(|e| fail(e.to_string()))?;
    Ok(tmp)
}

/// Makes a rename or link in the key file's directory durable.
fn sync_dir(path: &Path) -> Result<(), Error> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::File { path: path.to_path_buf(), message: format!("syncing its directory: {e}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_key_file_is_created_private_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/secret.key");
        let ring = Keyring::new(Source::File(path.clone()));
        ring.load(false).unwrap();
        assert!(ring.ids().is_empty() && !path.exists(), "not created unless asked");
        ring.load(true).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let id = ring.sealing().unwrap().id().to_string();
        assert_eq!(id.len(), 16);
        let again = Keyring::new(Source::File(path.clone()));
        again.load(true).unwrap();
        assert_eq!(again.ids(), std::slice::from_ref(&id), "an existing file is read, not replaced");
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers, [std::ffi::OsString::from(KEY_FILE)], "no temporary file is left");
    }

    #[test]
    fn init_file_creates_a_private_key_file_once_and_only_checks_an_existing_one() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etc/secret.key");
        let me = Owner { name: "me".into(), uid: nix::unistd::getuid().as_raw(), gid: nix::unistd::getgid().as_raw() };
        let Init::Created { key_id } = init_file(&path, Some(me.clone())).unwrap() else { panic!("not created") };
        let meta = fs::metadata(&path).unwrap();
        assert_eq!((meta.mode() & 0o777, meta.uid(), meta.gid()), (0o600, me.uid, me.gid));
        let before = fs::read(&path).unwrap();
        assert_eq!(init_file(&path, Some(me.clone())).unwrap(), Init::Present { key_ids: vec![key_id.clone()] });
        assert_eq!(fs::read(&path).unwrap(), before, "an existing good file is left as it was");

        let stranger = Owner { name: "stranger".into(), uid: me.uid + 1, gid: me.gid };
        let err = init_file(&path, Some(stranger)).unwrap_err().to_string();
        assert!(err.contains(&format!("belongs to uid {}", me.uid)), "{err}");
        assert!(err.contains(&format!("`chown stranger: {}`", path.display())), "{err}");
        assert_eq!(init_file(&path, None).unwrap(), Init::Present { key_ids: vec![key_id.clone()] }, "no owner asked");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = init_file(&path, Some(me)).unwrap_err().to_string();
        assert!(err.contains("others may read it (mode 640)") && err.contains("chmod 600"), "{err}");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o640, "a refused file is not changed");
        assert!(!err.contains(std::str::from_utf8(&before).unwrap().lines().last().unwrap()), "no key in the error");
    }

    #[test]
    fn init_file_gives_a_new_key_file_to_its_owner() {
        // Giving a file away needs root (CAP_CHOWN); as anyone else the refusal names the file.
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/secret.key");
        let nobody = Owner { name: "nobody".into(), uid: 65534, gid: 65534 };
        match init_file(&path, Some(nobody)) {
            Ok(Init::Created { .. }) => {
                for p in [&path, &dir.path().join("keys")] {
                    let meta = fs::metadata(p).unwrap();
                    assert_eq!((meta.uid(), meta.gid()), (65534, 65534), "{}", p.display());
                }
                assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
            }
            Ok(other) => panic!("{other:?}"),
            Err(e) => {
                assert!(!nix::unistd::getuid().is_root(), "root may chown: {e}");
                assert!(e.to_string().contains("cannot give") && e.to_string().contains("nobody (uid 65534)"), "{e}");
            }
        }
    }

    #[test]
    fn ids_come_from_the_key_so_a_given_key_matches_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let file = Keyring::new(Source::File(path.clone()));
        file.load(true).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let key = text.lines().find(|l| !l.starts_with('#')).unwrap();
        let given = Keyring::new(Source::Given(KeyText::new(format!(" {key} "))));
        given.load(false).unwrap();
        assert_eq!(given.ids(), file.ids());
        let other = Keyring::new(Source::Ephemeral);
        other.load(false).unwrap();
        assert_ne!(other.ids(), file.ids());
    }

    #[test]
    fn bad_keys_and_readable_files_are_refused_without_showing_the_key() {
        let bad = Keyring::new(Source::Given(KeyText::new("c2hvcnQ=")));
        let err = bad.load(false).unwrap_err().to_string();
        assert!(err.contains("holds 5 bytes, not 32") && !err.contains("c2hvcnQ="), "{err}");
        let junk = Keyring::new(Source::Given(KeyText::new("not base64!")));
        assert!(junk.load(false).unwrap_err().to_string().contains("not base64"));
        assert_eq!(format!("{:?}", KeyText::new("s3cret")), "KeyText(<hidden>)");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        Keyring::new(Source::File(path.clone())).load(true).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = Keyring::new(Source::File(path)).load(false).unwrap_err().to_string();
        assert!(err.contains("others may read it (mode 644)"), "{err}");
    }

    #[test]
    fn rotation_keeps_both_keys_in_the_file_until_the_old_one_is_retired() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let ring = Keyring::new(Source::File(path.clone()));
        ring.load(true).unwrap();
        let old = ring.ids();
        let new = ring.add_key().unwrap().id().to_string();
        let reread = Keyring::new(Source::File(path.clone()));
        reread.load(false).unwrap();
        assert_eq!(
            reread.ids(),
            [vec![new.clone()], old.clone()].concat(),
            "the new key seals, the old one still opens"
        );
        assert_eq!(ring.retire_others().unwrap(), old);
        reread.load(false).unwrap();
        assert_eq!(reread.ids(), [new]);
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_key_named_by_a_value_is_looked_for_again_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let stale = Keyring::new(Source::File(path.clone()));
        stale.load(true).unwrap();
        let rotating = Keyring::new(Source::File(path.clone()));
        rotating.load(false).unwrap();
        let new = rotating.add_key().unwrap().id().to_string();
        assert_eq!(stale.get(&new).unwrap().id(), new, "another process's new key is found");
        let err = stale.get("0000000000000000").unwrap_err().to_string();
        assert!(err.contains("key 0000000000000000") && err.contains(&path.display().to_string()), "{err}");
    }

    #[test]
    fn keys_from_the_environment_rotate_only_when_the_new_key_is_listed_first() {
        let one = Keyring::new(Source::Ephemeral);
        one.load(false).unwrap();
        let text = one.sealing().unwrap().text.clone();
        let single = Keyring::new(Source::Given(KeyText::new(text.clone())));
        single.load(false).unwrap();
        assert!(single.add_key().unwrap_err().to_string().contains("FORMWORK_SECRET_KEY=NEW,OLD"));
        let other = Keyring::new(Source::Ephemeral);
        other.load(false).unwrap();
        let pair = Keyring::new(Source::Given(KeyText::new(format!("{},{text}", other.sealing().unwrap().text))));
        pair.load(false).unwrap();
        assert_eq!(pair.add_key().unwrap().id(), other.sealing().unwrap().id());
        assert_eq!(pair.retire_others().unwrap(), one.ids(), "named for whoever sets the environment");
        assert_eq!(pair.ids().len(), 2);
    }

    #[test]
    fn sealed_bytes_open_only_with_their_key_and_associated_data() {
        let key = Key::generate().unwrap();
        let sealed = key.seal(b"a", b"value").unwrap();
        assert_eq!(key.open(b"a", &sealed).unwrap(), b"value");
        assert!(key.open(b"b", &sealed).is_none());
        assert!(Key::generate().unwrap().open(b"a", &sealed).is_none());
        assert_ne!(key.seal(b"a", b"value").unwrap(), sealed, "every seal has a fresh nonce");
        assert!(key.open(b"a", &sealed[..10]).is_none());
    }
}

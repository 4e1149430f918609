//! The secret key and the database: the key file private and this user's, holding the key the
//! database's sealed values name (formwork refuses to open the database without it), and the
//! database at the schema this formwork knows, read without a write ([`store::inspect`]).

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;

use super::Check;
use super::files::{euid, not_mine};
use crate::secrets::{Keyring, Source};
use crate::store::{self, Inspection};

pub(super) fn secret_key(source: &Source, db: &Result<Option<Inspection>, store::Error>) -> Check {
    const NAME: &str = "secret_key";
    let named = db.as_ref().ok().and_then(Option::as_ref).and_then(|i| i.sealing_key.clone());
    if let Source::File(path) = source {
        let at = path.display();
        match fs::metadata(path) {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return match named {
                    Some(id) => Check::fail(
                        NAME,
                        format!(
                            "the key file {at} is missing, but the database's secret values are sealed with key {id}: formwork refuses to open it"
                        ),
                        restore(&id),
                    ),
                    None => Check::ok(
                        NAME,
                        format!("{at} does not exist yet; formwork creates it (mode 600) at its first start"),
                    ),
                };
            }
            Err(e) => {
                return Check::fail(NAME, format!("{at}: {e}"), format!("chown it to this user and chmod 600 {at}"));
            }
            Ok(meta) => {
                if let Some(other) = not_mine(path, &meta) {
                    return Check::fail(NAME, other, format!("chown {} {at} && chmod 600 {at}", euid()));
                }
                let mode = meta.mode() & 0o777;
                if mode & 0o077 != 0 {
                    let detail = format!("others may read the key file {at} (mode {mode:o}); formwork refuses it");
                    return Check::fail(NAME, detail, format!("chmod 600 {at}"));
                }
            }
        }
    }
    let keys = Keyring::new(source.clone());
    if let Err(e) = keys.load(false) {
        let fix = match &named {
            Some(id) => restore(id),
            None => "give formwork a valid key, or remove the key file so its first start makes a new one".into(),
        };
        return Check::fail(NAME, e.to_string(), fix);
    }
    let ids = keys.ids();
    match named {
        Some(id) if !ids.contains(&id) => Check::fail(
            NAME,
            format!("the database's secret values are sealed with key {id}, which is not in {}", source.describe()),
            restore(&id),
        ),
        _ => Check::ok(
            NAME,
            format!("{}: sealing key {}", source.describe(), ids.first().map_or("none", String::as_str)),
        ),
    }
}

fn restore(id: &str) -> String {
    format!(
        "restore the key file that was kept beside the database (from a backup), or give formwork the key with id {id} (FORMWORK_SECRET_KEY, or `secret_key_file`)"
    )
}

pub(super) fn database(at: &str, db: &Result<Option<Inspection>, store::Error>) -> Check {
    const NAME: &str = "database";
    match db {
        Err(e) => Check::fail(
            NAME,
            e.to_string(),
            format!("check that {at} is formwork's database and this user's (chmod 600), or restore it from a backup"),
        ),
        Ok(None) => Check::ok(NAME, format!("{at} does not exist yet; formwork creates it at its first start")),
        Ok(Some(i)) if i.schema > i.known => Check::fail(
            NAME,
            format!(
                "{at} is at schema {}, newer than this formwork knows ({}): a newer formwork migrated it",
                i.schema, i.known
            ),
            "run that newer formwork, or restore a backup made before the upgrade",
        ),
        Ok(Some(i)) if i.schema < i.known => Check::warn(
            NAME,
            format!("{at} is at schema {} of {}: formwork's next start migrates it", i.schema, i.known),
            "back the database up, then start formwork (restart `formwork serve` if an older one still runs)",
        ),
        Ok(Some(i)) => Check::ok(NAME, format!("{at} at schema {}, this formwork's newest", i.schema)),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::doctor::Status;

    #[test]
    fn a_key_file_others_may_read_fails_and_a_missing_one_fails_only_when_the_database_names_a_key() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("secret.key");
        let source = Source::File(path.clone());
        assert_eq!(secret_key(&source, &Ok(None)).status, Status::Ok);
        let named = Ok(Some(Inspection { schema: 8, known: 8, sealing_key: Some("00ff00ff00ff00ff".into()) }));
        let missing = secret_key(&source, &named);
        assert_eq!(missing.status, Status::Fail);
        assert!(missing.detail.contains("00ff00ff00ff00ff") && missing.fix.unwrap().contains("restore"));
        assert!(!path.exists(), "no key file is made");

        Keyring::new(source.clone()).load(true).unwrap();
        assert_eq!(secret_key(&source, &Ok(None)).status, Status::Ok);
        let other = secret_key(&source, &named);
        assert_eq!(other.status, Status::Fail, "the file lacks the key the database names");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let open = secret_key(&source, &Ok(None));
        assert_eq!(open.status, Status::Fail);
        assert_eq!(open.fix.unwrap(), format!("chmod 600 {}", path.display()));
    }

    #[test]
    fn keys_from_the_environment_must_hold_the_key_the_database_names() {
        let ring = Keyring::new(Source::Ephemeral);
        ring.load(false).unwrap();
        let id = ring.ids().remove(0);
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("k");
        Keyring::new(Source::File(file.clone())).load(true).unwrap();
        let text = fs::read_to_string(&file).unwrap().lines().find(|l| !l.starts_with('#')).unwrap().to_string();
        let given = Source::Given(crate::secrets::KeyText::new(text.clone()));
        let named = |id: &str| Ok(Some(Inspection { schema: 8, known: 8, sealing_key: Some(id.into()) }));
        let lacking = secret_key(&given, &named(&id));
        assert_eq!(lacking.status, Status::Fail);
        assert!(lacking.detail.contains("FORMWORK_SECRET_KEY") && !lacking.detail.contains(&text), "{lacking:?}");
        let from_file = Keyring::new(Source::File(file));
        from_file.load(false).unwrap();
        let file_id = from_file.ids().remove(0);
        assert_eq!(secret_key(&given, &named(&file_id)).status, Status::Ok);
        let junk = secret_key(&Source::Given(crate::secrets::KeyText::new("c2hvcnQ=")), &Ok(None));
        assert_eq!(junk.status, Status::Fail);
        assert!(junk.detail.contains("FORMWORK_SECRET_KEY") && !junk.detail.contains("c2hvcnQ="), "{junk:?}");
    }
}

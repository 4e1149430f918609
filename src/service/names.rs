//! Names of provisions and providers, checked as oned checks an object's name
//! (`PoolObjectSQL::name_is_valid`: not empty, none of a set of characters, at most 128 bytes).
//! OneForm keeps both as OpenNebula documents, and a provision's name becomes the name of its
//! cluster, networks and datastores (`<name> (provision_<id>)`), so a name oned would refuse is
//! refused here, at create and at rename, before anything is written.

use super::Error;

/// The characters oned refuses in an object name.
const REFUSED: &[char] =
    &['&', '|', ':', '\\', '"', ';', '/', '\'', '#', '{', '}', '$', '<', '>', '\t', '\n', '\u{b}', '\u{c}', '\r'];

/// oned's longest object name, in bytes.
const MAX_BYTES: usize = 128;

/// What a provision's name gets in its objects' names at most: ` (provision_<i64>)`.
const PROVISION_SUFFIX_BYTES: usize = " (provision_)".len() + 19;

/// Checks a provision's name; its objects' names (`<name> (provision_<id>)`) must fit too.
pub fn check_provision(name: &str) -> Result<(), Error> {
    check("provision", name, MAX_BYTES - PROVISION_SUFFIX_BYTES)
}

/// Checks a provider's name.
pub fn check_provider(name: &str) -> Result<(), Error> {
    check("provider", name, MAX_BYTES)
}

fn check(what: &str, name: &str, max: usize) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::invalid(format!("the {what} name is empty: give the {what} a name")));
    }
    if let Some(c) = name.chars().find(|c| REFUSED.contains(c)) {
        return Err(Error::invalid(format!(
            "the {what} name {name:?} holds {c:?}, which OpenNebula does not allow in a name: choose a name \
             without & | : \\ \" ; / ' # {{ }} $ < > tabs or line breaks"
        )));
    }
    if name.len() > max {
        return Err(Error::invalid(format!(
            "the {what} name is {} bytes long, more than the {max} OpenNebula allows it: choose a shorter name",
            name.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<(), Error>) -> String {
        match result {
            Err(Error::Invalid { message, .. }) => message,
            other => panic!("not refused as invalid: {other:?}"),
        }
    }

    #[test]
    fn names_oned_accepts_pass() {
        for name in ["demo", "Sim", "my cluster (eu-west) 2", "a.b_c-d+e=f@g!h?i,j[k]l(m)n%o*p~q", "Nébula 雲"] {
            check_provision(name).unwrap_or_else(|e| panic!("{name:?}: {e}"));
            check_provider(name).unwrap_or_else(|e| panic!("{name:?}: {e}"));
        }
        check_provider(&"p".repeat(128)).unwrap();
        check_provision(&"p".repeat(MAX_BYTES - PROVISION_SUFFIX_BYTES)).unwrap();
    }

    #[test]
    fn each_character_oned_refuses_is_named() {
        for c in REFUSED {
            let name = format!("a{c}b");
            let said = message(check_provision(&name));
            assert!(said.contains(&format!("holds {c:?}")), "{said}");
            assert!(said.contains("choose a name without"), "{said}");
        }
        let said = message(check_provision("../../tmp/x\n"));
        assert!(said.contains("holds '/'"), "{said}");
        let said = message(check_provider("x\n"));
        assert!(said.starts_with("the provider name \"x\\n\" holds '\\n'"), "{said}");
    }

    #[test]
    fn empty_and_long_names_are_refused() {
        assert!(message(check_provision("")).contains("give the provision a name"));
        let said = message(check_provider(&"p".repeat(129)));
        assert!(said.contains("129 bytes long, more than the 128"), "{said}");
        // The provision's cluster is named `<name> (provision_<id>)`: that must fit in 128.
        let long = "p".repeat(MAX_BYTES - PROVISION_SUFFIX_BYTES + 1);
        assert!(message(check_provision(&long)).contains("choose a shorter name"));
        assert_eq!(format!("{long} (provision_{})", i64::MAX).len(), MAX_BYTES + 1);
    }
}

//! Who may see and change what, as OpenNebula decides it for documents: every provider and
//! provision has an owner, a group and nine permission bits (use, manage, admin for owner,
//! group and others). Members of the `oneadmin` group (and user 0) may do everything; others
//! see an object when a USE bit applies to them. As in OneForm, every change needs the
//! `oneadmin` group: the API refuses a write from anyone else before it reaches the service.

use serde::Serialize;

use super::Error;
pub use crate::store::{Mode, Ownership};

/// The user a request acts for: the local operator (the CLI), or an OpenNebula user the API
/// authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Caller {
    pub uid: i64,
    pub uname: String,
    /// The primary group, the only one OneForm's admin check counts.
    pub gid: i64,
    pub gname: String,
    /// Every group, primary included.
    pub groups: Vec<i64>,
}

/// OpenNebula's `oneadmin` group.
pub const ONEADMIN_GROUP: i64 = 0;

impl Caller {
    /// The local operator: oneadmin, as OneForm's own server acts when it starts.
    pub fn local() -> Caller {
        Caller {
            uid: 0,
            uname: "oneadmin".into(),
            gid: ONEADMIN_GROUP,
            gname: "oneadmin".into(),
            groups: vec![ONEADMIN_GROUP],
        }
    }

    /// Whether the caller may change things: user 0 or primary group `oneadmin` (OneForm's
    /// rule; a secondary membership does not count).
    pub fn is_admin(&self) -> bool {
        self.uid == 0 || self.gid == ONEADMIN_GROUP
    }

    /// Refuses a change by anyone who is not an admin.
    pub fn must_be_admin(&self) -> Result<(), Error> {
        if self.is_admin() {
            return Ok(());
        }
        Err(Error::Forbidden {
            message: format!(
                "user '{}' is not in the oneadmin group; only members of oneadmin may change drivers, providers and provisions",
                self.uname
            ),
        })
    }
}

/// What a caller wants to do with an object (OpenNebula's USE, MANAGE, ADMIN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    Use,
    Manage,
    Admin,
}

impl Right {
    /// The bit of this right within one octal digit.
    fn bit(self) -> u16 {
        match self {
            Right::Use => 4,
            Right::Manage => 2,
            Right::Admin => 1,
        }
    }
}

impl Mode {
    /// OpenNebula's default for new documents (umask 177).
    pub const DEFAULT: Mode = Mode(0o600);

    /// Reads an octet such as "640" (three octal digits).
    pub fn parse(octet: &str) -> Result<Mode, Error> {
        let valid = octet.len() == 3 && octet.bytes().all(|b| (b'0'..=b'7').contains(&b));
        if !valid {
            return Err(Error::Invalid {
                message: format!("octet '{octet}' is not three octal digits such as \"640\""),
                fields: vec![super::FieldError {
                    field: "octet".into(),
                    messages: vec!["must be three octal digits (0-7), e.g. \"640\"".into()],
                }],
            });
        }
        Ok(Mode(u16::from_str_radix(octet, 8).expect("three octal digits")))
    }

    /// The octet, e.g. "640".
    pub fn octet(self) -> String {
        format!("{:03o}", self.0)
    }

    /// OpenNebula's `PERMISSIONS` element: OWNER_U … OTHER_A as "0"/"1".
    pub fn permissions(self) -> serde_json::Map<String, serde_json::Value> {
        let mut out = serde_json::Map::new();
        for (who, shift) in [("OWNER", 6), ("GROUP", 3), ("OTHER", 0)] {
            for (letter, right) in [("U", Right::Use), ("M", Right::Manage), ("A", Right::Admin)] {
                let set = (self.0 >> shift) & right.bit() != 0;
                out.insert(format!("{who}_{letter}"), (if set { "1" } else { "0" }).into());
            }
        }
        out
    }
}

impl Ownership {
    /// A new object of `caller`, with OpenNebula's default bits.
    pub fn of(caller: &Caller) -> Ownership {
        Ownership {
            uid: caller.uid,
            uname: caller.uname.clone(),
            gid: caller.gid,
            gname: caller.gname.clone(),
            mode: Mode::DEFAULT,
        }
    }

    /// Whether `caller` holds `right` on the object: admins always; else the owner's bits if
    /// the caller owns it, the group's if the caller is in its group, and the others' bits.
    pub fn allows(&self, caller: &Caller, right: Right) -> bool {
        if caller.is_admin() {
            return true;
        }
        let bit = right.bit();
        let owner = caller.uid == self.uid && (self.mode.0 >> 6) & bit != 0;
        let group = caller.groups.contains(&self.gid) && (self.mode.0 >> 3) & bit != 0;
        let other = self.mode.0 & bit != 0;
        owner || group || other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(uid: i64, gid: i64) -> Caller {
        Caller { uid, uname: format!("u{uid}"), gid, gname: format!("g{gid}"), groups: vec![gid] }
    }

    fn owned(mode: u16) -> Ownership {
        Ownership { uid: 5, uname: "u5".into(), gid: 1, gname: "users".into(), mode: Mode(mode) }
    }

    #[test]
    fn octets_parse_and_print_back() {
        assert_eq!(Mode::parse("640").unwrap(), Mode(0o640));
        assert_eq!(Mode(0o640).octet(), "640");
        assert_eq!(Mode(0o7).octet(), "007");
        for bad in ["", "64", "6400", "648", "rw-", "-10"] {
            assert!(matches!(Mode::parse(bad), Err(Error::Invalid { .. })), "{bad:?} accepted");
        }
    }

    #[test]
    fn permissions_name_each_bit() {
        let p = Mode(0o640).permissions();
        let set: Vec<&str> = p.iter().filter(|(_, v)| *v == "1").map(|(k, _)| k.as_str()).collect();
        assert_eq!(set, ["OWNER_U", "OWNER_M", "GROUP_U"]);
        assert_eq!(p.len(), 9);
    }

    #[test]
    fn owner_group_and_others_get_their_own_bits() {
        let doc = owned(0o640);
        assert!(doc.allows(&user(5, 1), Right::Manage), "owner manages");
        assert!(!doc.allows(&user(5, 1), Right::Admin), "owner has no admin bit");
        assert!(doc.allows(&user(6, 1), Right::Use), "group member uses");
        assert!(!doc.allows(&user(6, 1), Right::Manage), "group member does not manage");
        assert!(!doc.allows(&user(7, 100), Right::Use), "others see nothing");
        assert!(owned(0o604).allows(&user(7, 100), Right::Use), "others' use bit");
    }

    #[test]
    fn admins_pass_and_only_the_primary_group_makes_one() {
        let doc = owned(0o000);
        assert!(doc.allows(&user(0, 1), Right::Admin));
        assert!(doc.allows(&user(9, ONEADMIN_GROUP), Right::Admin));
        let secondary = Caller { groups: vec![1, ONEADMIN_GROUP], ..user(9, 1) };
        assert!(!secondary.is_admin());
        assert!(matches!(secondary.must_be_admin(), Err(Error::Forbidden { .. })));
        assert!(Caller::local().must_be_admin().is_ok());
    }
}

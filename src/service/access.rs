//! Who may see and change what, as OpenNebula decides it for documents: every provider and
//! provision has an owner, a group and nine permission bits (use, manage, admin for owner,
//! group and others). Members of the `oneadmin` group (and user 0) may do everything; others
//! see an object when a USE bit applies to them. As in OneForm, every change needs the
//! `oneadmin` group ([`Caller::must_be_admin`], checked by every service method that changes
//! something; the API's auth layer also refuses a non-GET from anyone else).
//!
//! [`Caller::may`] is the one rule every read and change is checked by; `documents` applies it.
//! A playbook's session is a caller [confined](Caller::confined_to) to its provision: it may
//! read that provision (USE) and nothing else, and change nothing, whoever it stands for.

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
    /// A playbook's session: the one provision it may read, and nothing else (no other
    /// document, no change). `None` for a user, whom the permission bits govern.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confined_to: Option<i64>,
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
            confined_to: None,
        }
    }

    /// The same caller confined to reading provision `id` (a playbook's session).
    pub fn confined(self, id: i64) -> Caller {
        Caller { confined_to: Some(id), ..self }
    }

    /// Whether the caller may change things: user 0 or primary group `oneadmin` (OneForm's
    /// rule; a secondary membership does not count), and not confined to one provision.
    pub fn is_admin(&self) -> bool {
        self.confined_to.is_none() && (self.uid == 0 || self.gid == ONEADMIN_GROUP)
    }

    /// Refuses a change by anyone who is not an admin.
    pub fn must_be_admin(&self) -> Result<(), Error> {
        if self.is_admin() {
            return Ok(());
        }
        if let Some(id) = self.confined_to {
            return Err(Error::Forbidden {
                message: format!(
                    "this session is a playbook's: it may only read provision {id}; change things with your own credentials"
                ),
            });
        }
        Err(Error::Forbidden {
            message: format!(
                "user '{}' is not in the oneadmin group; only members of oneadmin may change drivers, providers and provisions",
                self.uname
            ),
        })
    }

    /// Whether the caller holds `right` on object `id` of `kind`, owned as `owner`: a confined
    /// caller only USE on its provision; anyone else what the permission bits give.
    pub fn may(&self, right: Right, kind: Kind, id: i64, owner: &Ownership) -> bool {
        match self.confined_to {
            Some(only) => right == Right::Use && kind == Kind::Provision && id == only,
            None => owner.allows(self, right),
        }
    }
}

/// Which kind of document (OneForm's document types 103 and 104).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Provider,
    Provision,
}

impl Kind {
    /// OpenNebula's document type.
    pub fn document_type(self) -> u32 {
        match self {
            Kind::Provider => 103,
            Kind::Provision => 104,
        }
    }

    pub(super) fn table(self) -> crate::store::Table {
        match self {
            Kind::Provider => crate::store::Table::Providers,
            Kind::Provision => crate::store::Table::Provisions,
        }
    }

    pub(super) fn noun(self) -> &'static str {
        match self {
            Kind::Provider => "provider",
            Kind::Provision => "provision",
        }
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

    /// Whether `caller` holds `right` on the object by its bits: admins always; else the
    /// owner's bits if the caller owns it, the group's if the caller is in its group, and the
    /// others' bits. Checks go through [`Caller::may`], which also confines playbook sessions.
    fn allows(&self, caller: &Caller, right: Right) -> bool {
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
        Caller { uid, uname: format!("u{uid}"), gid, gname: format!("g{gid}"), groups: vec![gid], confined_to: None }
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

    #[test]
    fn a_confined_caller_reads_its_provision_only_and_changes_nothing() {
        let playbook = Caller::local().confined(7);
        let open = owned(0o777);
        assert!(playbook.may(Right::Use, Kind::Provision, 7, &open));
        assert!(!playbook.may(Right::Manage, Kind::Provision, 7, &open), "no secrets, no change");
        assert!(!playbook.may(Right::Use, Kind::Provision, 8, &open), "another provision");
        assert!(!playbook.may(Right::Use, Kind::Provider, 7, &open), "a provider of the same id");
        assert!(!playbook.is_admin(), "oneadmin's identity does not make it an admin");
        let refused = playbook.must_be_admin().unwrap_err().to_string();
        assert!(refused.contains("may only read provision 7"), "{refused}");
        assert!(Caller::local().may(Right::Admin, Kind::Provider, 1, &owned(0o000)), "unconfined oneadmin");
    }
}

//! The REST API's authenticator and the client's user and group calls against the real
//! `onesim` binary, started with a plain user (`users` group) and an admin (`oneadmin` group):
//! who gets in with which ids and groups, who is refused, what each may read of the others,
//! and what happens once OpenNebula is gone.

// Tests start onesim and read its first line.
#![allow(clippy::disallowed_methods)]

mod common;

use base64::Engine as _;
use common::onesim::Onesim;
use formwork::one::{self, Client, Code};
use formwork::service::Caller;
use formwork::service::auth::{AuthError, Authenticator, Limits, Mode};

fn basic(pair: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
}

/// onesim with oneadmin (`oneadmin:pw`, id 0), serveradmin (id 1, as oned makes it), alice
/// (id 2, users) and root (id 3, oneadmin).
fn onesim(dir: &tempfile::TempDir) -> Onesim {
    let users = ["--user", "alice:alice-pw", "--user", "root:root:pw:oneadmin"];
    Onesim::with_faults(&dir.path().join("onesim.json"), &users)
}

fn authenticator(sim: &Onesim) -> Authenticator {
    Authenticator::new(Mode::OpenNebula { endpoint: sim.url.clone() }, Limits::default()).unwrap()
}

#[tokio::test]
async fn opennebula_users_get_in_with_their_ids_and_groups_and_others_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sim = onesim(&dir);
    let auth = authenticator(&sim);

    let oneadmin = auth.authenticate(Some(&basic("oneadmin:pw"))).await.unwrap();
    assert_eq!(oneadmin, Caller::local());
    let root = auth.authenticate(Some(&basic("root:root:pw"))).await.unwrap();
    let expected =
        Caller { uid: 3, uname: "root".into(), gid: 0, gname: "oneadmin".into(), groups: vec![0], confined_to: None };
    assert_eq!(root, expected);
    assert!(root.is_admin());
    let alice = auth.authenticate(Some(&basic("alice:alice-pw"))).await.unwrap();
    let expected =
        Caller { uid: 2, uname: "alice".into(), gid: 1, gname: "users".into(), groups: vec![1], confined_to: None };
    assert_eq!(alice, expected);
    assert!(!alice.is_admin());

    for pair in ["alice:wrong", "alice:alice-pw2", "nobody:alice-pw", "root:root", "oneadmin:"] {
        let refused = auth.authenticate(Some(&basic(pair))).await.unwrap_err();
        assert!(matches!(refused, AuthError::Invalid), "{pair}: {refused:?}");
        assert_eq!(refused.status(), 401);
    }
    let missing = auth.authenticate(None).await.unwrap_err();
    assert_eq!(
        (missing.to_string().as_str(), missing.status().as_u16()),
        ("A username and password must be provided", 401)
    );

    // A playbook's minted session is accepted as its caller.
    let minted = auth.mint(&alice);
    assert_eq!(auth.authenticate(Some(&basic(&minted))).await.unwrap(), alice);
    sim.stop();
}

#[tokio::test]
async fn with_opennebula_stopped_an_unknown_login_is_a_bad_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let sim = onesim(&dir);
    let auth = authenticator(&sim);
    let alice = auth.authenticate(Some(&basic("alice:alice-pw"))).await.unwrap();
    let minted = auth.mint(&alice);
    sim.stop();

    let error = auth.authenticate(Some(&basic("root:root:pw"))).await.unwrap_err();
    assert!(matches!(&error, AuthError::Unavailable { source } if source.code() == Some(Code::Transport)), "{error:?}");
    assert_eq!(error.status(), 502);
    assert!(!error.to_string().contains("root:pw"), "{error}");
    // What this process already knows still holds: the remembered login and the minted session.
    assert_eq!(auth.authenticate(Some(&basic("alice:alice-pw"))).await.unwrap(), alice);
    assert_eq!(auth.authenticate(Some(&basic(&minted))).await.unwrap(), alice);
}

#[tokio::test]
async fn the_client_reads_users_and_groups_by_id_as_oned_allows() {
    let dir = tempfile::tempdir().unwrap();
    let sim = onesim(&dir);
    let options = one::client::Options::default();
    let admin = Client::new(&sim.url, "oneadmin:pw".into(), options).unwrap();
    let alice = admin.with_session("alice:alice-pw".into());

    let user = admin.user_by_id(2).await.unwrap();
    assert_eq!((user.id, user.name.as_str(), user.gid, user.gname.as_str()), (2, "alice", 1, "users"));
    assert_eq!(admin.user_by_id(3).await.unwrap().name, "root");
    let server = admin.user_by_id(1).await.unwrap();
    assert_eq!((server.name.as_str(), server.gid), ("serveradmin", 0), "oned's serveradmin");
    let users = admin.group_by_id(1).await.unwrap();
    assert_eq!((users.id, users.name.as_str(), users.users), (1, "users", vec![2]));
    let admins = admin.group_by_id(0).await.unwrap();
    assert_eq!((admins.name.as_str(), admins.users), ("oneadmin", vec![0, 1, 3]));

    assert!(admin.user_by_id(99).await.unwrap_err().is_no_exists());
    assert!(admin.group_by_id(7).await.unwrap_err().is_no_exists());
    assert_eq!(alice.user_by_id(2).await.unwrap().name, "alice");
    assert_eq!(alice.group_by_id(1).await.unwrap().name, "users");
    for refused in [alice.user_by_id(0).await.unwrap_err(), alice.group_by_id(0).await.unwrap_err()] {
        assert!(matches!(refused, one::Error::Authorization { .. }), "{refused:?}");
    }
    assert!(alice.user_by_id(99).await.unwrap_err().is_no_exists(), "NO_EXISTS comes before AUTHORIZATION");
    sim.stop();
}

#[test]
fn onesim_refuses_bad_and_duplicate_users_at_start() {
    // An address that cannot be bound: a regression that accepted the users would fail there
    // (with another message) instead of serving forever.
    let onesim = |flags: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_onesim"))
            .args(["--port", "0", "--host", "no-such-host.invalid"])
            .args(flags)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{flags:?} was accepted");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = onesim(&["--user", "alice:pw:admins"]);
    assert!(stderr.contains("unknown group 'admins'") && stderr.contains("NAME:PASSWORD[:GROUP]"), "{stderr}");
    let stderr = onesim(&["--user", "alice"]);
    assert!(stderr.contains("no ':'"), "{stderr}");
    let stderr = onesim(&["--user", "alice:a", "--user", "alice:b:oneadmin"]);
    assert!(stderr.contains("two users called 'alice'"), "{stderr}");
    for reserved in ["oneadmin", "serveradmin"] {
        let stderr = onesim(&["--user", &format!("{reserved}:x")]);
        assert!(stderr.contains(&format!("two users called '{reserved}'")), "{stderr}");
    }
}

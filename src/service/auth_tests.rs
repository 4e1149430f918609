//! The authenticator against a scripted oned (`one::client::test_server`), which records every
//! call: header parsing, what is remembered and for how long (a clock the test moves), what is
//! never remembered, minted sessions, and secrets kept out of `Debug`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use base64::Engine as _;

use super::*;
use crate::one::client::test_server::{Reply, TestServer, failure, success};
use crate::one::xmlrpc::Value;

fn basic(pair: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
}

fn fast() -> Limits {
    let one = client::Options { backoff: Duration::from_millis(1), ..Limits::default().one };
    Limits { one, ..Limits::default() }
}

/// A clock that moves only when the test says.
fn manual_clock() -> (Clock, Arc<Mutex<Instant>>) {
    let now = Arc::new(Mutex::new(Instant::now()));
    let read = now.clone();
    (Arc::new(move || *read.lock().unwrap()), now)
}

fn advance(now: &Mutex<Instant>, by: Duration) {
    let mut now = now.lock().unwrap();
    *now += by;
}

/// oned with the users `alice:right` (id 3, groups users and 5) and `bob:pw` (id 4); any
/// other session is refused with AUTHENTICATION.
fn oned(_: usize, _: &str, params: &[Value]) -> Reply {
    let user = |id: i64, name: &str| {
        format!(
            "<USER><ID>{id}</ID><GID>1</GID><GROUPS><ID>1</ID><ID>5</ID></GROUPS><GNAME>users</GNAME>\
             <NAME>{name}</NAME><PASSWORD>digest</PASSWORD></USER>"
        )
    };
    match &params[0] {
        Value::String(session) if session == "alice:right" => success(Value::String(user(3, "alice"))),
        Value::String(session) if session == "bob:pw" => success(Value::String(user(4, "bob"))),
        _ => failure("[one.user.info] User couldn't be authenticated, aborting call.", 0x100, -1),
    }
}

async fn against(server: &TestServer, limits: Limits) -> (Authenticator, Arc<Mutex<Instant>>) {
    let (clock, now) = manual_clock();
    let mode = Mode::OpenNebula { endpoint: server.endpoint.clone() };
    (Authenticator::new(mode, limits).unwrap().with_clock(clock), now)
}

fn single() -> Authenticator {
    Authenticator::new(Mode::Single { user: "admin".into(), password: "s3cret".into() }, fast()).unwrap()
}

#[test]
fn headers_must_be_basic_base64_of_user_colon_password() {
    let parsed = parse_basic(Some(&basic("alice:pa:ss"))).unwrap();
    assert_eq!((parsed.user.as_str(), parsed.password.as_str()), ("alice", "pa:ss"));
    let lower = format!("basic   {}  ", base64::engine::general_purpose::STANDARD.encode("a:"));
    let parsed = parse_basic(Some(&lower)).unwrap();
    assert_eq!((parsed.user.as_str(), parsed.password.as_str()), ("a", ""));

    let missing = parse_basic(None).unwrap_err();
    assert_eq!(missing.to_string(), "A username and password must be provided");
    let not_utf8 = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode([0xff, b':', b'x']));
    for (header, reason) in [
        ("Bearer abc", "not HTTP Basic"),
        ("", "not HTTP Basic"),
        ("Basic", "no ':'"),
        ("Basic %%%", "not valid base64"),
        (not_utf8.as_str(), "not UTF-8"),
        (&basic("alice"), "no ':'"),
    ] {
        let error = parse_basic(Some(header)).unwrap_err();
        assert!(matches!(error, AuthError::Malformed { .. }), "{header}: {error:?}");
        assert!(error.to_string().contains(reason) && error.to_string().contains("Basic"), "{header}: {error}");
        assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(AuthError::Invalid.to_string(), "Invalid credentials");
    assert_eq!(AuthError::Invalid.status(), StatusCode::UNAUTHORIZED);
    assert!(!format!("{:?}", parse_basic(Some(&basic("alice:pw-xyz"))).unwrap()).contains("pw-xyz"));
}

#[tokio::test]
async fn without_opennebula_only_the_configured_pair_is_oneadmin() {
    let auth = single();
    assert_eq!(auth.authenticate(Some(&basic("admin:s3cret"))).await.unwrap(), Caller::local());
    for pair in ["admin:s3cre", "admin:s3cret ", "Admin:s3cret", "oneadmin:s3cret", ":"] {
        assert!(matches!(auth.authenticate(Some(&basic(pair))).await, Err(AuthError::Invalid)), "{pair}");
    }
    assert!(matches!(auth.authenticate(None).await, Err(AuthError::Missing)));
    let debug = format!("{auth:?}");
    assert!(debug.contains("admin") && !debug.contains("s3cret"), "{debug}");
}

#[tokio::test]
async fn opennebula_checks_the_callers_own_session_and_names_its_groups() {
    let server = TestServer::start(oned).await;
    let (auth, _) = against(&server, fast()).await;
    let caller = auth.authenticate(Some(&basic("alice:right"))).await.unwrap();
    let expected =
        Caller { uid: 3, uname: "alice".into(), gid: 1, gname: "users".into(), groups: vec![1, 5], confined_to: None };
    assert_eq!(caller, expected);
    let calls = server.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, "one.user.info");
    assert_eq!(calls[0].1, [Value::String("alice:right".into()), Value::Int(-1)]);
    assert!(matches!(auth.authenticate(Some(&basic("alice:wrong"))).await, Err(AuthError::Invalid)));
    assert!(matches!(auth.authenticate(Some(&basic("nobody:right"))).await, Err(AuthError::Invalid)));
    let debug = format!("{auth:?}");
    assert!(!debug.contains("right") && !debug.contains("wrong"), "{debug}");
}

#[tokio::test]
async fn a_login_is_remembered_until_it_expires_and_only_for_the_same_password() {
    let server = TestServer::start(oned).await;
    let (auth, now) = against(&server, fast()).await;
    let alice = basic("alice:right");
    auth.authenticate(Some(&alice)).await.unwrap();
    advance(&now, Duration::from_secs(59));
    auth.authenticate(Some(&alice)).await.unwrap();
    assert_eq!(server.calls().len(), 1, "remembered for 59 s");
    assert!(matches!(auth.authenticate(Some(&basic("alice:righ"))).await, Err(AuthError::Invalid)));
    assert!(matches!(auth.authenticate(Some(&basic("alice:right2"))).await, Err(AuthError::Invalid)));
    assert_eq!(server.calls().len(), 3, "another password is asked, never matched to the remembered one");
    advance(&now, Duration::from_secs(1));
    auth.authenticate(Some(&alice)).await.unwrap();
    assert_eq!(server.calls().len(), 4, "asked again after 60 s");
    auth.authenticate(Some(&alice)).await.unwrap();
    assert_eq!(server.calls().len(), 4, "and remembered again");
}

#[tokio::test]
async fn a_refusal_is_never_remembered() {
    // The same credentials are refused by the first call and accepted by the second.
    let server = TestServer::start(|n, method, params| match n {
        0 => failure("[one.user.info] User couldn't be authenticated, aborting call.", 0x100, -1),
        _ => oned(n, method, params),
    })
    .await;
    let (auth, _) = against(&server, fast()).await;
    let alice = basic("alice:right");
    assert!(matches!(auth.authenticate(Some(&alice)).await, Err(AuthError::Invalid)));
    assert_eq!(auth.authenticate(Some(&alice)).await.unwrap().uid, 3);
    assert_eq!(server.calls().len(), 2);
}

#[tokio::test]
async fn remembered_logins_are_bounded_and_the_oldest_goes_first() {
    let server = TestServer::start(oned).await;
    let limits = Limits { cache_capacity: 1, ..fast() };
    let (auth, _) = against(&server, limits).await;
    let (alice, bob) = (basic("alice:right"), basic("bob:pw"));
    auth.authenticate(Some(&alice)).await.unwrap();
    auth.authenticate(Some(&bob)).await.unwrap();
    auth.authenticate(Some(&bob)).await.unwrap();
    assert_eq!(server.calls().len(), 2, "bob took alice's place");
    auth.authenticate(Some(&alice)).await.unwrap();
    assert_eq!(server.calls().len(), 3, "alice was forgotten");
    assert_eq!(auth.logins.lock().unwrap().entries.len(), 1);

    let none = Limits { cache_capacity: 0, ..fast() };
    let (auth, _) = against(&server, none).await;
    auth.authenticate(Some(&alice)).await.unwrap();
    auth.authenticate(Some(&alice)).await.unwrap();
    assert_eq!(server.calls().len(), 5, "a capacity of 0 remembers nothing");
}

#[test]
fn a_full_cache_drops_every_expired_login_before_a_live_one() {
    let limits = Limits { cache_capacity: 3, ..fast() };
    let (mut logins, start) = (Logins::default(), Instant::now());
    let add = |logins: &mut Logins, user: &str, at: Instant| {
        let caller = user_caller(9, user);
        logins.insert(&Credentials { user: user.into(), password: "pw".into() }, caller, at, &limits);
    };
    let users = |logins: &Logins| {
        let mut users: Vec<String> = logins.entries.values().map(|l| l.caller.uname.clone()).collect();
        users.sort_unstable();
        users
    };
    add(&mut logins, "a", start);
    add(&mut logins, "b", start);
    let later = start + Duration::from_secs(61);
    add(&mut logins, "c", later);
    assert_eq!(logins.entries.len(), 3, "nothing is dropped while there is room");
    add(&mut logins, "d", later);
    assert_eq!(users(&logins), ["c", "d"], "both expired logins went, the live one stayed");
    add(&mut logins, "e", later);
    add(&mut logins, "f", later);
    assert_eq!(users(&logins), ["d", "e", "f"], "then the oldest live one");
}

#[test]
fn remembered_logins_are_keyed_by_a_hash_under_a_key_of_their_own() {
    let alice = Credentials { user: "alice".into(), password: "right".into() };
    let (mine, another) = (Logins::default(), Logins::default());
    let key = mine.key_of(&alice);
    assert_eq!(key, mine.key_of(&alice.clone()), "the same pair, the same key");
    assert_ne!(key, another.key_of(&alice), "another process's key makes another hash");
    let moved = Credentials { user: "alice:r".into(), password: "ight".into() };
    assert_ne!(key, mine.key_of(&moved), "where the pair splits counts");
    let clear = b"alice:right";
    assert!(!key.windows(clear.len()).any(|w| w == clear), "no clear pair in the key");
}

#[tokio::test]
async fn opennebula_out_of_reach_or_failing_is_a_bad_gateway() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/RPC2", listener.local_addr().unwrap());
    drop(listener);
    let auth = Authenticator::new(Mode::OpenNebula { endpoint }, fast()).unwrap();
    let error = auth.authenticate(Some(&basic("alice:right"))).await.unwrap_err();
    assert!(matches!(&error, AuthError::Unavailable { source } if source.code() == Some(Code::Transport)), "{error:?}");
    assert_eq!(error.status(), StatusCode::BAD_GATEWAY);
    assert!(!error.to_string().contains("right") && !format!("{error:?}").contains("right"), "{error}");

    let internal = TestServer::start(|_, _, _| failure("[one.user.info] Internal error", 0x2000, -1)).await;
    let (auth, _) = against(&internal, fast()).await;
    let error = auth.authenticate(Some(&basic("alice:right"))).await.unwrap_err();
    assert!(matches!(&error, AuthError::Unavailable { source } if source.code() == Some(Code::Internal)), "{error:?}");
    let again = auth.authenticate(Some(&basic("alice:right"))).await;
    assert!(again.is_err(), "a failure is not remembered as a login");
    assert_eq!(internal.calls().len(), 4, "two tries per check, each check asks");

    let refused = Authenticator::new(Mode::OpenNebula { endpoint: "ftp://x/RPC2".into() }, fast());
    assert!(matches!(refused, Err(SetupError::Endpoint { .. })));
}

fn user_caller(uid: i64, uname: &str) -> Caller {
    Caller { uid, uname: uname.into(), gid: 1, gname: "users".into(), groups: vec![1], confined_to: None }
}

#[tokio::test]
async fn minted_sessions_stand_for_their_caller_until_revoked_without_asking_opennebula() {
    let server = TestServer::start(oned).await;
    let (auth, now) = against(&server, fast()).await;
    let alice = user_caller(3, "alice");
    let session = auth.mint(&alice);
    let token = session.strip_prefix("alice:").expect("uname:token");
    assert!(token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
    let again = auth.mint(&alice);
    assert_ne!(again, session, "each mint is a session of its own");
    let playbook = crate::stages::Sessions::open(&auth, 7);
    assert!(playbook.starts_with("oneadmin:"), "{playbook}");

    advance(&now, Duration::from_secs(3600));
    assert_eq!(auth.authenticate(Some(&basic(&session))).await.unwrap(), alice, "minted sessions outlive the cache");
    let confined = auth.authenticate(Some(&basic(&playbook))).await.unwrap();
    assert_eq!(confined, Caller::local().confined(7), "a playbook's session reads its provision only");
    assert!(server.calls().is_empty(), "OpenNebula was not asked");
    let stolen = format!("bob:{token}");
    assert!(matches!(auth.authenticate(Some(&basic(&stolen))).await, Err(AuthError::Invalid)));
    assert_eq!(server.calls().len(), 1, "a token under another name is an ordinary (wrong) password");
    assert!(!format!("{auth:?}").contains(token));

    auth.revoke(&session);
    crate::stages::Sessions::close(&auth, &playbook);
    for ended in [&session, &playbook] {
        assert!(matches!(auth.authenticate(Some(&basic(ended))).await, Err(AuthError::Invalid)), "{ended}");
    }
    assert_eq!(auth.authenticate(Some(&basic(&again))).await.unwrap(), alice, "only the revoked ones end");

    let admin = single();
    let minted = admin.mint(&alice);
    assert_eq!(admin.authenticate(Some(&basic(&minted))).await.unwrap(), alice);
}

#[tokio::test]
async fn minted_sessions_are_bounded_and_the_oldest_goes_first() {
    let auth = Authenticator::new(
        Mode::Single { user: "a".into(), password: "b".into() },
        Limits { minted_capacity: 2, ..fast() },
    )
    .unwrap();
    let sessions: Vec<String> = (1..=3).map(|uid| auth.mint(&user_caller(uid, &format!("u{uid}")))).collect();
    assert!(matches!(auth.authenticate(Some(&basic(&sessions[0]))).await, Err(AuthError::Invalid)));
    assert_eq!(auth.authenticate(Some(&basic(&sessions[1]))).await.unwrap().uid, 2);
    assert_eq!(auth.authenticate(Some(&basic(&sessions[2]))).await.unwrap().uid, 3);
    assert_eq!(auth.minted.lock().unwrap().by_token.len(), 2);
}

#[tokio::test]
async fn failed_logins_make_their_client_wait_longer_each_time_and_a_success_clears_them() {
    let server = TestServer::start(oned).await;
    let (auth, now) = against(&server, fast()).await;
    let (here, there): (IpAddr, IpAddr) = ("10.0.0.7".parse().unwrap(), "10.0.0.8".parse().unwrap());
    let wrong = basic("alice:wrong");
    for attempt in 1..=5 {
        let refused = auth.authenticate_from(here, Some(&wrong)).await.unwrap_err();
        assert!(matches!(refused, AuthError::Invalid), "attempt {attempt} is checked: {refused:?}");
    }
    let calls = server.calls().len();
    let right = basic("alice:right");
    let throttled = auth.authenticate_from(here, Some(&right)).await.unwrap_err();
    assert!(matches!(throttled, AuthError::Throttled { wait } if wait == Duration::from_secs(1)), "{throttled:?}");
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.to_string().contains("wait 1s") && !throttled.to_string().contains("right"), "{throttled}");
    assert_eq!(server.calls().len(), calls, "a client that must wait is not checked, even with the right password");
    assert_eq!(auth.authenticate_from(there, Some(&right)).await.unwrap().uid, 3, "other clients are not slowed");
    let bob = auth.authenticate_from(here, Some(&basic("bob:pw"))).await.unwrap();
    assert_eq!(bob.uid, 4, "nor other users at the same address");

    advance(&now, Duration::from_secs(1));
    let refused = auth.authenticate_from(here, Some(&wrong)).await.unwrap_err();
    assert!(matches!(refused, AuthError::Invalid), "after the wait it is checked again: {refused:?}");
    let throttled = auth.authenticate_from(here, Some(&wrong)).await.unwrap_err();
    assert!(
        matches!(throttled, AuthError::Throttled { wait } if wait == Duration::from_secs(2)),
        "doubled: {throttled:?}"
    );
    advance(&now, Duration::from_millis(1500));
    let throttled = auth.authenticate_from(here, Some(&right)).await.unwrap_err();
    assert!(matches!(throttled, AuthError::Throttled { wait } if wait == Duration::from_millis(500)), "{throttled:?}");

    advance(&now, Duration::from_millis(500));
    assert_eq!(auth.authenticate_from(here, Some(&right)).await.unwrap().uid, 3);
    let refused = auth.authenticate_from(here, Some(&wrong)).await.unwrap_err();
    assert!(matches!(refused, AuthError::Invalid), "the success cleared the count: {refused:?}");
}

/// Guesses sent at once count against each other: only `free_failures` of them reach
/// OpenNebula, the rest are slowed down unchecked.
#[tokio::test]
async fn concurrent_wrong_logins_count_before_opennebula_answers() {
    let server = TestServer::start(oned).await;
    let (auth, _) = against(&server, fast()).await;
    let here: IpAddr = "10.0.0.7".parse().unwrap();
    let guesses: Vec<String> = (0..40).map(|n| basic(&format!("alice:guess-{n}"))).collect();
    let answers =
        futures_util::future::join_all(guesses.iter().map(|guess| auth.authenticate_from(here, Some(guess)))).await;
    let throttled = answers.iter().filter(|a| matches!(a, Err(AuthError::Throttled { .. }))).count();
    let refused = answers.iter().filter(|a| matches!(a, Err(AuthError::Invalid))).count();
    assert_eq!((refused, throttled), (5, 35), "{answers:?}");
    assert_eq!(server.calls().len(), 5, "OpenNebula was asked only the free attempts");
    let right = auth.authenticate_from(here, Some(&basic("alice:right"))).await;
    assert!(matches!(right, Err(AuthError::Throttled { .. })), "the wait holds for the right password too");
}

/// A client's burst of requests at its first login, with the right password: one check,
/// whose answer every request takes, and nothing counted against the user.
#[tokio::test]
async fn concurrent_right_logins_share_one_check() {
    let server = TestServer::start(oned).await;
    let (auth, _) = against(&server, fast()).await;
    let here: IpAddr = "10.0.0.7".parse().unwrap();
    let right = basic("alice:right");
    let answers = futures_util::future::join_all((0..20).map(|_| auth.authenticate_from(here, Some(&right)))).await;
    assert!(answers.iter().all(|a| a.as_ref().is_ok_and(|c| c.uid == 3)), "{answers:?}");
    assert_eq!(server.calls().len(), 1, "one check for the whole burst");
    assert!(auth.failures.lock().unwrap().by_client.is_empty() && auth.flights.is_empty());

    let wrong = basic("alice:wrong");
    let answers = futures_util::future::join_all((0..20).map(|_| auth.authenticate_from(here, Some(&wrong)))).await;
    assert!(answers.iter().all(|a| matches!(a, Err(AuthError::Invalid))), "{answers:?}");
    assert_eq!(server.calls().len(), 2, "the same guess sent at once is one attempt");
    assert_eq!(auth.failures.lock().unwrap().by_client.values().map(|f| f.count).sum::<u32>(), 1);
}

#[tokio::test]
async fn an_attempt_that_opennebula_cannot_judge_is_not_counted() {
    let internal = TestServer::start(|_, _, _| failure("[one.user.info] Internal error", 0x2000, -1)).await;
    let (auth, _) = against(&internal, fast()).await;
    let here: IpAddr = "10.0.0.7".parse().unwrap();
    for _ in 0..8 {
        let error = auth.authenticate_from(here, Some(&basic("alice:right"))).await.unwrap_err();
        assert!(matches!(error, AuthError::Unavailable { .. }), "{error:?}");
    }
    assert!(auth.failures.lock().unwrap().by_client.is_empty(), "reserved attempts were taken back");
}

#[test]
fn failures_wait_at_most_the_longest_and_are_forgotten_in_time() {
    let limits = Limits { free_failures: 2, longest_wait: Duration::from_secs(8), ..fast() };
    let (mut failures, start) = (Failures::default(), Instant::now());
    let client = failures.key("192.0.2.1".parse().unwrap(), "alice");
    for _ in 0..40 {
        failures.refused(client, start, &limits);
    }
    assert_eq!(
        failures.wait(client, start, &limits),
        Some(Duration::from_secs(8)),
        "capped, no overflow at 38 doublings"
    );
    let later = start + limits.forget_failures_after;
    failures.refused(client, later, &limits);
    assert_eq!(failures.wait(client, later, &limits), None, "the count started again: 1 of 2 free");
}

#[test]
fn remembered_failures_are_bounded_and_ipv6_clients_count_by_their_64() {
    let limits = Limits { failures_kept: 3, ..fast() };
    let (mut failures, start) = (Failures::default(), Instant::now());
    let v6 = |text: &str| Failures::address(text.parse().unwrap());
    assert_eq!(v6("2001:db8:1:2:aaaa::1"), v6("2001:db8:1:2:bbbb::9"), "one /64, one client");
    assert_ne!(v6("2001:db8:1:2::1"), v6("2001:db8:1:3::1"));
    assert_eq!(v6("::ffff:192.0.2.1"), "192.0.2.1".parse::<IpAddr>().unwrap(), "IPv4-mapped counts as IPv4");
    let long_name = "x".repeat(10_000);
    for (i, user) in ["a", "b", "c", long_name.as_str()].iter().enumerate() {
        let client = failures.key("192.0.2.1".parse().unwrap(), user);
        failures.refused(client, start + Duration::from_secs(i as u64), &limits);
    }
    assert_eq!(failures.by_client.len(), 3, "bounded");
    let key = |user: &str| failures.key("192.0.2.1".parse().unwrap(), user);
    assert!(!failures.by_client.contains_key(&key("a")), "the oldest made room");
    for kept in ["b", "c", long_name.as_str()] {
        assert!(failures.by_client.contains_key(&key(kept)), "{kept}");
    }
}

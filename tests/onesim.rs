//! onesim over real HTTP: each test starts its own server on 127.0.0.1:0 in-process with
//! `onesim::serve` and talks raw XML-RPC to it through a tiny HTTP/1.1 client over a
//! `TcpStream`. OpenNebula's rules and error codes, the faults for broken requests (after which
//! the server keeps serving), seeded fault injection, persistence and shutdown; users, server
//! admin sessions, zones and the documents a plain user may list.

use std::time::{Duration, Instant};

use formwork::one::FakeOne;
use formwork::one::xmlrpc::{self, Value};
use formwork::onesim::{self, FailRule, Faults, Options, Sim, cipher};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const SESSION: &str = "oneadmin:pw";
const NO_EXISTS: i64 = 0x400;
const ACTION: i64 = 0x800;
const ALLOCATE: i64 = 0x4000;

/// A server on a free loopback port; dropping it without [`Server::stop`] aborts it.
struct Server {
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(sim: Sim) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(onesim::serve(listener, sim, async move {
            let _ = stopped.await;
        }));
        Server { addr, stop: Some(stop), task }
    }

    async fn plain() -> Server {
        Server::start(Sim::new(FakeOne::new(), "pw")).await
    }

    /// Stops the server and waits until `serve` has returned.
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        (&mut self.task).await.unwrap().unwrap();
    }

    /// POSTs `body` to `path` on a fresh connection: the status and body, or `None` when the
    /// server closed the connection without answering.
    async fn post_to(&self, path: &str, body: &[u8]) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: onesim\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        if answer.is_empty() {
            return None;
        }
        let text = String::from_utf8(answer).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        Some((status, body.to_string()))
    }

    /// An XML-RPC call: `Ok` with the answer's value, `Err` with a fault; panics when dropped.
    async fn raw(&self, method: &str, params: &[Value]) -> Result<Value, xmlrpc::Error> {
        let (status, body) = self.post_to("/RPC2", xmlrpc::encode_call(method, params).as_bytes()).await.unwrap();
        assert_eq!(status, 200, "{body}");
        xmlrpc::decode_response(&body)
    }

    /// A call as oneadmin: oned's array, split into success (the result) or (code, message, id).
    async fn call(&self, method: &str, params: &[Value]) -> Result<Value, (i64, String, i64)> {
        self.call_as(SESSION, method, params).await
    }

    async fn call_as(&self, session: &str, method: &str, params: &[Value]) -> Result<Value, (i64, String, i64)> {
        let mut all = vec![s(session)];
        all.extend_from_slice(params);
        one_answer(self.raw(method, &all).await.unwrap())
    }

    async fn id(&self, method: &str, params: &[Value]) -> i64 {
        match self.call(method, params).await {
            Ok(Value::Int(id)) => id,
            other => panic!("{method} answered {other:?}"),
        }
    }
}

fn one_answer(value: Value) -> Result<Value, (i64, String, i64)> {
    match value {
        Value::Array(items) => match items.as_slice() {
            [Value::Bool(true), result, Value::Int(0)] => Ok(result.clone()),
            [Value::Bool(false), Value::String(message), Value::Int(code), Value::Int(id)] => {
                Err((*code, message.clone(), *id))
            }
            other => panic!("not an OpenNebula answer: {other:?}"),
        },
        other => panic!("not an OpenNebula answer: {other:?}"),
    }
}

fn s(text: &str) -> Value {
    Value::String(text.to_string())
}

fn i(n: i64) -> Value {
    Value::Int(n)
}

fn fault_code(result: Result<Value, xmlrpc::Error>) -> i64 {
    match result {
        Err(xmlrpc::Error::Fault { code, .. }) => code,
        other => panic!("expected a fault, got {other:?}"),
    }
}

#[tokio::test]
async fn names_are_unique_per_type_with_oneds_allocate_error() {
    let server = Server::plain().await;
    let cluster = server.id("one.cluster.allocate", &[s("c")]).await;
    let (code, message, id) = server.call("one.cluster.allocate", &[s("c")]).await.unwrap_err();
    assert_eq!((code, id), (ALLOCATE, -1));
    assert!(message.starts_with("[one.cluster.allocate] Error allocating a new cluster."), "{message}");
    server.id("one.host.allocate", &[s("h"), s("dummy"), s("dummy"), i(cluster)]).await;
    let again = server.call("one.host.allocate", &[s("h"), s("kvm"), s("kvm"), i(-1)]).await;
    assert_eq!(again.unwrap_err().0, ALLOCATE);
    let net = "NAME = n\nVN_MAD = bridge\nAR = [ TYPE = IP4, IP = 10.0.0.1, SIZE = 2 ]";
    server.id("one.vn.allocate", &[s(net), i(cluster)]).await;
    assert_eq!(server.call("one.vn.allocate", &[s(net), i(-1)]).await.unwrap_err().0, ALLOCATE);
    let renamed = server.call("one.cluster.rename", &[i(cluster), s("default")]).await.unwrap_err();
    assert_eq!((renamed.0, renamed.2), (ACTION, cluster));
    server.stop().await;
}

#[tokio::test]
async fn a_cluster_with_members_is_not_deleted_until_they_are() {
    let server = Server::plain().await;
    let cluster = server.id("one.cluster.allocate", &[s("c")]).await;
    let host = server.id("one.host.allocate", &[s("h"), s("dummy"), s("dummy"), i(cluster)]).await;
    let ds = server.id("one.datastore.allocate", &[s("NAME = d\nTYPE = IMAGE_DS"), i(cluster)]).await;
    let (code, message, id) = server.call("one.cluster.delete", &[i(cluster)]).await.unwrap_err();
    assert_eq!((code, id), (ACTION, cluster), "{message}");
    assert!(message.starts_with("[one.cluster.delete] "), "{message}");
    assert_eq!(server.id("one.host.delete", &[i(host)]).await, host);
    assert_eq!(server.id("one.datastore.delete", &[i(ds)]).await, ds);
    assert_eq!(server.id("one.cluster.delete", &[i(cluster)]).await, cluster);
    server.stop().await;
}

#[tokio::test]
async fn unmanaged_children_keep_hosts_networks_and_datastores_until_deleted() {
    let server = Server::plain().await;
    let host = server.id("one.host.allocate", &[s("h"), s("dummy"), s("dummy"), i(-1)]).await;
    let vnet = server.id("one.vn.allocate", &[s("NAME = n\nVN_MAD = bridge\nAR = [ SIZE = 2 ]"), i(-1)]).await;
    let ds = server.id("one.datastore.allocate", &[s("NAME = d"), i(-1)]).await;
    let vm = server
        .id("one.vm.allocate", &[s(&format!("NAME = v\nNIC = [ NETWORK_ID = {vnet} ]")), Value::Bool(false)])
        .await;
    assert_eq!(server.id("one.vm.deploy", &[i(vm), i(host), Value::Bool(false), i(-1)]).await, vm);
    let image = server.id("one.image.allocate", &[s("NAME = img"), i(ds)]).await;
    for (method, id) in [("one.host.delete", host), ("one.vn.delete", vnet), ("one.datastore.delete", ds)] {
        let (code, _, failed) = server.call(method, &[i(id)]).await.unwrap_err();
        assert_eq!((code, failed), (ACTION, id), "{method}");
    }
    assert_eq!(server.id("one.vm.recover", &[i(vm), i(3)]).await, vm);
    assert_eq!(server.id("one.image.delete", &[i(image)]).await, image);
    for (method, id) in [("one.host.delete", host), ("one.vn.delete", vnet), ("one.datastore.delete", ds)] {
        assert_eq!(server.id(method, &[i(id)]).await, id, "{method}");
    }
    let Ok(Value::String(xml)) = server.call("one.vm.info", &[i(vm)]).await else { panic!("vm.info failed") };
    assert!(xml.contains("<STATE>6</STATE>"), "a recovered VM stays, DONE: {xml}");
    server.stop().await;
}

#[tokio::test]
async fn missing_objects_are_no_exists_naming_the_object() {
    let server = Server::plain().await;
    for (method, object) in [
        ("one.cluster.delete", "cluster"),
        ("one.host.delete", "host"),
        ("one.datastore.delete", "datastore"),
        ("one.vn.delete", "virtual network"),
        ("one.document.delete", "document"),
        ("one.vn.info", "virtual network"),
        ("one.vm.info", "virtual machine"),
        ("one.image.info", "image"),
    ] {
        let (code, message, id) = server.call(method, &[i(999)]).await.unwrap_err();
        assert_eq!((code, id), (NO_EXISTS, 999), "{method}");
        assert_eq!(message, format!("[{method}] Error getting {object} [999]."));
    }
    server.stop().await;
}

#[tokio::test]
async fn wrong_credentials_are_authentication_errors() {
    let server = Server::plain().await;
    for session in ["oneadmin:wrong", "nobody:pw", "oneadmin", ""] {
        let answer = one_answer(server.raw("one.user.info", &[s(session), i(-1)]).await.unwrap());
        let (code, message, _) = answer.unwrap_err();
        assert_eq!(code, 0x100, "{session}");
        assert_eq!(message, "[one.user.info] User couldn't be authenticated, aborting call.");
    }
    let Ok(Value::String(xml)) = server.call("one.user.info", &[i(-1)]).await else { panic!("user.info failed") };
    assert!(xml.starts_with("<USER><ID>0</ID><GID>0</GID>") && xml.contains("<NAME>oneadmin</NAME>"), "{xml}");
    server.stop().await;
}

#[tokio::test]
async fn broken_requests_get_xmlrpc_faults_and_the_server_keeps_serving() {
    let server = Server::plain().await;
    for body in [&b"<methodCall><methodName>one.vn.info"[..], b"not xml at all", b"<x/>", b"\xff\xfe<"] {
        let (status, answer) = server.post_to("/RPC2", body).await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(fault_code(xmlrpc::decode_response(&answer)), -503, "{answer}");
    }
    assert_eq!(fault_code(server.raw("one.nothing.here", &[s(SESSION)]).await), -506);
    assert_eq!(fault_code(server.raw("one.vn.info", &[s(SESSION), s("1")]).await), -501);
    assert_eq!(fault_code(server.raw("one.vn.info", &[s(SESSION)]).await), -501);
    assert_eq!(fault_code(server.raw("one.vn.info", &[i(0), i(1)]).await), -501);
    assert_eq!(fault_code(server.raw("one.vn.info", &[]).await), -501);
    assert_eq!(fault_code(server.raw("one.vnpool.info", &[s(SESSION), i(-2), Value::Bool(true), i(-1)]).await), -501);
    let (code, _, _) = server.call("one.vnpool.info", &[i(-9), i(-1), i(-1)]).await.unwrap_err();
    assert_eq!(code, 0x1000);
    assert_eq!(server.post_to("/elsewhere", b"").await.unwrap().0, 404);
    assert_eq!(server.call("one.system.version", &[]).await, Ok(s("7.2.0")));
    server.stop().await;
}

/// One round of calls: for each, whether it succeeded, failed INTERNAL or was dropped.
async fn outcomes(faults: &Faults) -> Vec<&'static str> {
    let server = Server::start(Sim::new(FakeOne::new(), "pw").with_faults(faults.clone())).await;
    let mut seen = Vec::new();
    for n in 0..30 {
        let call = xmlrpc::encode_call("one.cluster.allocate", &[s(SESSION), s(&format!("c{n}"))]);
        seen.push(match server.post_to("/RPC2", call.as_bytes()).await {
            None => "dropped",
            Some((_, body)) => match one_answer(xmlrpc::decode_response(&body).unwrap()) {
                Ok(_) => "ok",
                Err((0x2000, message, -1)) if message.contains("injected") => "internal",
                Err(other) => panic!("unexpected failure {other:?}"),
            },
        });
    }
    server.stop().await;
    seen
}

#[tokio::test]
async fn seeded_faults_repeat_and_dropped_calls_still_took_effect() {
    let rule = FailRule::parse("one.*.allocate=0.3").unwrap();
    let faults = Faults { seed: 42, rules: vec![rule], drop_rate: 0.2, latency: Duration::ZERO };
    let first = outcomes(&faults).await;
    assert_eq!(first, outcomes(&faults).await, "the same seed must fail the same calls");
    assert_ne!(first, outcomes(&Faults { seed: 43, ..faults.clone() }).await);
    for kind in ["ok", "internal", "dropped"] {
        assert!(first.contains(&kind), "{kind} missing from {first:?}");
    }

    let drop_all = Faults { drop_rate: 1.0, ..Faults::default() };
    let sim = Sim::new(FakeOne::new(), "pw").with_faults(drop_all);
    let one = sim.one().clone();
    let server = Server::start(sim).await;
    let call = xmlrpc::encode_call("one.cluster.allocate", &[s(SESSION), s("lost-answer")]);
    assert_eq!(server.post_to("/RPC2", call.as_bytes()).await, None);
    let names: Vec<String> = one.cluster_pool().unwrap().into_iter().map(|c| c.name).collect();
    assert!(names.contains(&"lost-answer".to_string()), "{names:?}");
    server.stop().await;
}

#[tokio::test]
async fn users_see_their_own_documents_through_the_pool_filters() {
    let sim = Sim::new(FakeOne::new(), "pw").with_user("alice", "secret");
    let server = Server::start(sim).await;
    let Ok(Value::String(me)) = server.call_as("alice:secret", "one.user.info", &[i(-1)]).await else {
        panic!("user.info failed")
    };
    assert!(
        me.starts_with("<USER><ID>2</ID><GID>1</GID><GROUPS><ID>1</ID></GROUPS><GNAME>users</GNAME><NAME>alice</NAME>"),
        "{me}"
    );
    let Ok(Value::Int(doc)) =
        server.call_as("alice:secret", "one.document.allocate", &[s("NAME = mine"), i(103)]).await
    else {
        panic!()
    };
    let listed = |xml: Value| match xml {
        Value::String(xml) => xml.matches("<DOCUMENT>").count(),
        other => panic!("{other:?}"),
    };
    assert_eq!(listed(server.call("one.documentpool.info", &[i(-2), i(-1), i(-1), i(103)]).await.unwrap()), 1);
    assert_eq!(listed(server.call("one.documentpool.info", &[i(-3), i(-1), i(-1), i(103)]).await.unwrap()), 0);
    assert_eq!(listed(server.call("one.documentpool.info", &[i(2), i(-1), i(-1), i(103)]).await.unwrap()), 1);
    assert_eq!(
        listed(server.call_as("alice:secret", "one.documentpool.info", &[i(-3), i(-1), i(-1), i(103)]).await.unwrap()),
        1
    );
    assert_eq!(server.call("one.document.chown", &[i(doc), i(99), i(-1)]).await.unwrap_err().0, NO_EXISTS);
    assert_eq!(server.id("one.document.chown", &[i(doc), i(0), i(0)]).await, doc);
    assert_eq!(
        listed(server.call_as("alice:secret", "one.documentpool.info", &[i(-3), i(-1), i(-1), i(103)]).await.unwrap()),
        0
    );
    server.stop().await;
}

#[tokio::test]
async fn latency_delays_every_answer() {
    let faults = Faults { latency: Duration::from_millis(150), ..Faults::default() };
    let server = Server::start(Sim::new(FakeOne::new(), "pw").with_faults(faults)).await;
    let started = Instant::now();
    assert_eq!(server.call("one.system.version", &[]).await, Ok(s("7.2.0")));
    assert!(started.elapsed() >= Duration::from_millis(150));
    server.stop().await;
}

#[tokio::test]
async fn documents_and_objects_outlive_a_restart_with_a_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options { password: "pw".into(), state: Some(dir.path().join("one.json")), ..Options::default() };
    let server = Server::start(Sim::open(&options).unwrap()).await;
    let body = "<TEMPLATE><NAME>prov</NAME><PROVISION_BODY><![CDATA[{\"state\": 3}]]></PROVISION_BODY></TEMPLATE>";
    let doc = server.id("one.document.allocate", &[s(body), i(104)]).await;
    let cluster = server.id("one.cluster.allocate", &[s("kept")]).await;
    server.stop().await;

    let server = Server::start(Sim::open(&options).unwrap()).await;
    let Ok(Value::String(xml)) = server.call("one.document.info", &[i(doc)]).await else { panic!("document lost") };
    assert!(xml.contains("<NAME>prov</NAME><TYPE>104</TYPE>"), "{xml}");
    assert!(xml.contains("<PROVISION_BODY><![CDATA[{\"state\": 3}]]></PROVISION_BODY>"), "{xml}");
    let Ok(Value::String(pool)) = server.call("one.documentpool.info", &[i(-2), i(-1), i(-1), i(104)]).await else {
        panic!("documentpool.info failed")
    };
    assert!(pool.starts_with("<DOCUMENT_POOL><DOCUMENT><ID>0</ID>"), "{pool}");
    assert!(matches!(server.call("one.cluster.info", &[i(cluster)]).await, Ok(Value::String(_))));
    server.stop().await;

    std::fs::write(dir.path().join("broken.json"), "{").unwrap();
    let broken = Options { state: Some(dir.path().join("broken.json")), ..options.clone() };
    let error = Sim::open(&broken).err().unwrap().to_string();
    assert!(error.contains("broken.json") && error.contains("delete the file"), "{error}");
    let nowhere = Options { state: Some(dir.path().join("missing/one.json")), ..options };
    let error = Sim::open(&nowhere).err().unwrap().to_string();
    assert!(error.contains("does not exist") && error.contains("--state"), "{error}");
}

#[tokio::test]
async fn shutdown_waits_for_nothing_but_requests_in_flight() {
    let server = Server::plain().await;
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    let call = xmlrpc::encode_call("one.system.version", &[s(SESSION)]);
    let head = format!("POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{call}", call.len());
    idle.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0; 4096];
    let read = idle.read(&mut answer).await.unwrap();
    assert!(String::from_utf8_lossy(&answer[..read]).starts_with("HTTP/1.1 200"));
    // The keep-alive connection stays open and idle; stopping must not wait for the client.
    tokio::time::timeout(Duration::from_secs(10), server.stop()).await.expect("serve returns on shutdown");
    assert_eq!(idle.read(&mut answer).await.unwrap_or(0), 0, "the idle connection is closed");
}

/// The text of `<TAG>…</TAG>` (or its CDATA) in `xml`.
fn element<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = xml.find(&open).unwrap_or_else(|| panic!("no <{tag}> in {xml}")) + open.len();
    let text = &xml[start..start + xml[start..].find(&format!("</{tag}>")).unwrap()];
    text.strip_prefix("<![CDATA[").and_then(|t| t.strip_suffix("]]>")).unwrap_or(text)
}

async fn xml_as(server: &Server, session: &str, method: &str, params: &[Value]) -> String {
    match server.call_as(session, method, params).await {
        Ok(Value::String(xml)) => xml,
        other => panic!("{method} as {session}: {other:?}"),
    }
}

fn seconds_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[tokio::test]
async fn serveradmin_acts_for_a_user_with_a_token_until_it_expires() {
    let sim = Sim::new(FakeOne::new(), "pw").with_serveradmin_password("srv-secret").with_user("alice", "secret");
    let server = Server::start(sim).await;
    let now = seconds_now();
    let session = cipher::login_token("serveradmin", "srv-secret", "alice", now + 3600);
    let me = xml_as(&server, &session, "one.user.info", &[i(-1)]).await;
    assert_eq!((element(&me, "ID"), element(&me, "NAME"), element(&me, "GID")), ("2", "alice", "1"));
    let doc = server.call_as(&session, "one.document.allocate", &[s("NAME = d"), i(104)]).await.unwrap();
    let Value::Int(doc) = doc else { panic!("{doc:?}") };
    let info = xml_as(&server, "oneadmin:pw", "one.document.info", &[i(doc)]).await;
    assert_eq!((element(&info, "UID"), element(&info, "UNAME")), ("2", "alice"), "the call ran as alice");
    // The server admin itself: user 1, driver server_cipher, the secret's digest as PASSWORD.
    let own = cipher::login_token("serveradmin", "srv-secret", "serveradmin", now + 60);
    let admin = xml_as(&server, &own, "one.user.info", &[i(-1)]).await;
    assert_eq!((element(&admin, "ID"), element(&admin, "GID")), ("1", "0"));
    assert_eq!(element(&admin, "AUTH_DRIVER"), "server_cipher");
    assert_eq!(element(&admin, "PASSWORD"), cipher::sha256_hex("srv-secret"));

    let token = session.rsplit(':').next().unwrap();
    let mut sealed = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, token).unwrap();
    sealed[3] ^= 0x20;
    let tampered =
        format!("serveradmin:alice:{}", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &sealed));
    let refused = [
        cipher::login_token("serveradmin", "srv-secret", "alice", now - 1),
        cipher::login_token("serveradmin", "not-the-secret", "alice", now + 3600),
        tampered,
        "serveradmin:srv-secret".to_string(),
        format!("serveradmin:nobody:{token}"),
        format!("alice:alice:{token}"),
    ];
    for session in refused {
        let (code, message, _) = server.call_as(&session, "one.user.info", &[i(-1)]).await.unwrap_err();
        assert_eq!((code, message.as_str()), (0x100, "[one.user.info] User couldn't be authenticated, aborting call."));
    }
    server.stop().await;
}

#[tokio::test]
async fn users_show_their_password_digest_and_a_token_password() {
    let sim = Sim::new(FakeOne::new(), "pw").with_user("alice", "secret").with_user("bob", "secret");
    let server = Server::start(sim).await;
    let alice = xml_as(&server, "alice:secret", "one.user.info", &[i(-1)]).await;
    assert_eq!(element(&alice, "PASSWORD"), cipher::sha256_hex("secret"));
    assert_eq!(element(&alice, "AUTH_DRIVER"), "core");
    let token = element(element(&alice, "TEMPLATE"), "TOKEN_PASSWORD");
    assert!(token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()), "{alice}");
    let bob = xml_as(&server, "oneadmin:pw", "one.user.info", &[i(3)]).await;
    assert_eq!(element(&bob, "PASSWORD"), element(&alice, "PASSWORD"), "the same password, the same digest");
    assert_ne!(element(element(&bob, "TEMPLATE"), "TOKEN_PASSWORD"), token, "token passwords are random");
    let digest = format!("alice:{}", cipher::sha256_hex("secret"));
    assert_eq!(
        server.call_as(&digest, "one.user.info", &[i(-1)]).await.unwrap_err().0,
        0x100,
        "the digest is no password"
    );

    let pool = xml_as(&server, "oneadmin:pw", "one.userpool.info", &[]).await;
    let names: Vec<&str> = pool.split("<NAME>").skip(1).map(|r| r.split('<').next().unwrap()).collect();
    assert_eq!(names, ["oneadmin", "serveradmin", "alice", "bob"]);
    let mine = xml_as(&server, "bob:secret", "one.userpool.info", &[]).await;
    assert_eq!(mine.matches("<USER>").count(), 1);
    assert_eq!(element(&mine, "NAME"), "bob");
    server.stop().await;
}

#[tokio::test]
async fn the_zone_pool_is_one_zone_at_this_endpoint() {
    let server = Server::start(Sim::new(FakeOne::new(), "pw").with_user("alice", "secret")).await;
    let pool = xml_as(&server, "alice:secret", "one.zonepool.info", &[]).await;
    let endpoint = format!("http://{}/RPC2", server.addr);
    let zone = format!(
        "<ZONE><ID>0</ID><NAME>OpenNebula</NAME><STATE>0</STATE><TEMPLATE><ENDPOINT><![CDATA[{endpoint}]]>\
         </ENDPOINT></TEMPLATE><SERVER_POOL/></ZONE>"
    );
    assert_eq!(pool, format!("<ZONE_POOL>{zone}</ZONE_POOL>"));
    assert_eq!(xml_as(&server, "alice:secret", "one.zone.info", &[i(0)]).await, zone);
    assert_eq!(server.call("one.zone.info", &[i(100)]).await.unwrap_err().0, NO_EXISTS);
    server.stop().await;
}

#[tokio::test]
async fn a_plain_user_lists_only_the_documents_it_may_use() {
    let sim = Sim::new(FakeOne::new(), "pw").with_user("alice", "a").with_user("bob", "b");
    let server = Server::start(sim).await;
    let allocate = |session: &'static str, name: &'static str| {
        let server = &server;
        async move {
            match server.call_as(session, "one.document.allocate", &[s(&format!("NAME = {name}")), i(104)]).await {
                Ok(Value::Int(id)) => id,
                other => panic!("{other:?}"),
            }
        }
    };
    let mode = |uu, gu, ou| [i(uu), i(1), i(0), i(gu), i(0), i(0), i(ou), i(0), i(0)];
    let private = allocate("oneadmin:pw", "admin-private").await;
    let shared = allocate("oneadmin:pw", "admin-others-use").await;
    server.id("one.document.chmod", &[&[i(shared)], &mode(1, 0, 1)[..]].concat()).await;
    let bobs = allocate("bob:b", "bob-private").await;
    let bobs_group = allocate("bob:b", "bob-group-use").await;
    server.id("one.document.chmod", &[&[i(bobs_group)], &mode(1, 1, 0)[..]].concat()).await;
    let alices = allocate("alice:a", "alice-no-owner-use").await;
    server.id("one.document.chmod", &[&[i(alices)], &mode(0, 0, 0)[..]].concat()).await;
    let listed = |session: &'static str, filter: i64| {
        let server = &server;
        async move {
            let xml = xml_as(server, session, "one.documentpool.info", &[i(filter), i(-1), i(-1), i(104)]).await;
            xml.split("<DOCUMENT><ID>")
                .skip(1)
                .map(|r| r.split('<').next().unwrap().parse().unwrap())
                .collect::<Vec<i64>>()
        }
    };
    assert_eq!(listed("alice:a", -2).await, [shared, bobs_group, alices]);
    assert_eq!(listed("alice:a", -3).await, [alices]);
    assert_eq!(listed("alice:a", -1).await, [bobs_group, alices]);
    assert_eq!(listed("alice:a", 3).await, [bobs_group], "bob's documents alice may use");
    assert_eq!(listed("alice:a", 0).await, [shared]);
    assert_eq!(listed("bob:b", -2).await, [shared, bobs, bobs_group]);
    assert_eq!(listed("oneadmin:pw", -2).await, [private, shared, bobs, bobs_group, alices]);
    server.stop().await;
}

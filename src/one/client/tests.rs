//! The client against a scripted oned on 127.0.0.1: answers, OpenNebula errors, retries,
//! timeouts, keep-alive and the secrecy of the session.

use std::time::Duration;

use super::test_server::{Reply, TestServer, failure, success};
use super::*;
use crate::one::OneApi;

const SESSION: &str = "oneadmin:s3cret-pa55";

fn fast() -> Options {
    Options { backoff: Duration::from_millis(1), ..Options::default() }
}

fn client(server: &TestServer, options: Options) -> Client {
    Client::new(&server.endpoint, SESSION.to_owned(), options).unwrap()
}

fn host_xml(id: i64) -> Value {
    Value::String(format!(
        "<HOST><ID>{id}</ID><NAME>h{id}</NAME><STATE>2</STATE><IM_MAD>kvm</IM_MAD><VM_MAD>kvm</VM_MAD>\
         <CLUSTER_ID>0</CLUSTER_ID><VMS/><TEMPLATE/></HOST>"
    ))
}

/// A port nothing listens on (bound, then released).
async fn closed_port_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}/RPC2")
}

#[tokio::test]
async fn a_call_sends_the_session_first_and_returns_the_result() {
    let server = TestServer::start(|_, _, _| success(Value::String("7.0.0".to_owned()))).await;
    assert_eq!(client(&server, fast()).system_version().await.unwrap(), "7.0.0");
    assert_eq!(server.calls(), vec![("one.system.version".to_owned(), vec![Value::String(SESSION.to_owned())])]);
}

#[tokio::test]
async fn user_info_reads_the_session_user() {
    let xml = "<USER><ID>2</ID><GID>0</GID><GROUPS><ID>0</ID></GROUPS><GNAME>oneadmin</GNAME><NAME>form</NAME>\
               <PASSWORD>x</PASSWORD><TEMPLATE/></USER>";
    let server = TestServer::start(move |_, _, _| success(Value::String(xml.to_owned()))).await;
    let user = client(&server, fast()).user_info().await.unwrap();
    assert_eq!((user.id, user.name.as_str(), user.groups), (2, "form", vec![0]));
    assert_eq!(server.calls()[0].1[1..], [Value::Int(-1)]);
}

#[tokio::test]
async fn users_and_groups_are_read_by_id_and_unknown_ids_are_no_exists() {
    let server = TestServer::start(|_, method, params| match (method, &params[1]) {
        ("one.user.info", Value::Int(3)) => success(Value::String(
            "<USER><ID>3</ID><GID>1</GID><GROUPS><ID>1</ID></GROUPS><GNAME>users</GNAME><NAME>bob</NAME></USER>"
                .to_owned(),
        )),
        ("one.group.info", Value::Int(1)) => success(Value::String(
            "<GROUP><ID>1</ID><NAME>users</NAME><TEMPLATE/><USERS><ID>3</ID></USERS></GROUP>".to_owned(),
        )),
        ("one.user.info", _) => failure("[one.user.info] Error getting user [9].", 0x400, 9),
        _ => failure("[one.group.info] User not authorized to perform action on group.", 0x200, 0),
    })
    .await;
    let one = client(&server, fast());
    let user = one.user_by_id(3).await.unwrap();
    assert_eq!((user.id, user.name.as_str(), user.gid, user.gname.as_str()), (3, "bob", 1, "users"));
    let group = one.group_by_id(1).await.unwrap();
    assert_eq!((group.id, group.name.as_str(), group.users), (1, "users", vec![3]));
    let missing = one.user_by_id(9).await.unwrap_err();
    assert!(missing.is_no_exists() && missing.to_string().contains("user 9"), "{missing}");
    let refused = one.group_by_id(0).await.unwrap_err();
    assert!(matches!(refused, Error::Authorization { .. }) && refused.to_string().contains("group 0"), "{refused}");
    let sent: Vec<(String, Value)> = server.calls().into_iter().map(|(m, p)| (m, p[1].clone())).collect();
    let expected = [("one.user.info", 3), ("one.group.info", 1), ("one.user.info", 9), ("one.group.info", 0)];
    assert_eq!(sent, expected.map(|(m, id)| (m.to_owned(), Value::Int(id))));
}

#[tokio::test]
async fn an_opennebula_error_maps_to_its_variant_and_is_not_retried() {
    let server = TestServer::start(|_, method, _| match method {
        "one.cluster.delete" => {
            failure("[one.cluster.delete] Cannot delete cluster. Cluster 100 is not empty", 0x800, 100)
        }
        _ => failure("[one.host.info] Error getting host [7].", 0x400, 7),
    })
    .await;
    let client = client(&server, fast());
    let error = client.cluster_delete(100).await.unwrap_err();
    assert!(matches!(error, Error::Action { .. }), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains("one.cluster.delete") && text.contains("cluster 100") && text.contains("not empty"),
        "{text}"
    );
    let error = client.host_info(7).await.unwrap_err();
    assert!(error.is_no_exists() && error.to_string().contains("host 7"), "{error}");
    assert_eq!(server.calls().len(), 2, "neither call may be repeated");
}

#[tokio::test]
async fn unknown_codes_faults_garbage_and_http_errors_are_reported() {
    let server = TestServer::start(|n, _, _| match n {
        0 => failure("odd", 0x42, -1),
        1 => Reply::Answer(xmlrpc::encode_fault(-501, "Method not found")),
        2 => Reply::Answer("<html>proxy</html>".to_owned()),
        3 => success(Value::Int(5)),
        _ => Reply::Status(502),
    })
    .await;
    // One try, so the INTERNAL answer to a read is not asked again (see the next test).
    let client = client(&server, Options { tries: 1, ..fast() });
    let error = client.vm_info(1).await.unwrap_err();
    assert!(matches!(error, Error::Internal { .. }) && error.to_string().contains("0x42"), "{error}");
    let error = client.vm_info(1).await.unwrap_err();
    assert!(matches!(error, Error::XmlRpcApi { .. }) && error.to_string().contains("Method not found"), "{error}");
    let error = client.vm_info(1).await.unwrap_err();
    assert!(matches!(error, Error::Transport { .. }) && error.to_string().contains("unreadable answer"), "{error}");
    let error = client.vm_info(1).await.unwrap_err();
    assert!(error.to_string().contains("an XML document, not Int(5)"), "{error}");
    let error = client.image_delete(4).await.unwrap_err();
    assert!(matches!(error, Error::Transport { .. }) && error.to_string().contains("HTTP 502"), "{error}");
    assert_eq!(server.calls().len(), 5);
}

#[tokio::test]
async fn an_internal_error_is_asked_again_for_reads_but_never_for_writes() {
    let server = TestServer::start(|n, method, _| match (n, method) {
        (0 | 1, _) => failure("[one.host.info] Internal error", 0x2000, 3),
        (_, "one.host.info") => success(host_xml(3)),
        _ => failure("[one.cluster.allocate] Internal error", 0x2000, -1),
    })
    .await;
    let one = client(&server, fast());
    assert_eq!(one.host_info(3).await.unwrap().name, "h3", "the third try answers");
    let error = one.cluster_allocate("c").await.unwrap_err();
    assert!(matches!(error, Error::Internal { .. }), "{error:?}");
    assert_eq!(server.calls().len(), 4, "three reads, one write");
    let always = TestServer::start(|_, _, _| failure("[one.host.info] Internal error", 0x2000, 3)).await;
    assert!(matches!(client(&always, fast()).host_info(3).await.unwrap_err(), Error::Internal { .. }));
    assert_eq!(always.calls().len(), 3, "a read is asked at most `tries` times");
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_reported_as_transport() {
    let client = Client::new(&closed_port_endpoint().await, SESSION.to_owned(), fast()).unwrap();
    for error in [client.host_info(1).await.unwrap_err(), client.cluster_allocate("c").await.unwrap_err()] {
        assert!(matches!(error, Error::Transport { .. }), "{error:?}");
        assert!(error.to_string().contains("3 attempts"), "a refused connection is retried, even for writes: {error}");
    }
    let once = Options { tries: 1, ..fast() };
    let client = Client::new(&closed_port_endpoint().await, SESSION.to_owned(), once).unwrap();
    assert!(client.host_info(1).await.unwrap_err().to_string().contains("1 attempt "));
}

#[tokio::test]
async fn a_read_whose_connection_closes_before_the_answer_is_retried() {
    let server = TestServer::start(|n, _, _| if n == 0 { Reply::Hangup } else { success(host_xml(3)) }).await;
    let host = client(&server, fast()).host_info(3).await.unwrap();
    assert_eq!(host.name, "h3");
    assert_eq!((server.calls().len(), server.accepted()), (2, 2));
}

#[tokio::test]
async fn a_write_that_may_have_arrived_is_never_sent_twice() {
    let server = TestServer::start(|_, _, _| Reply::Hangup).await;
    let error = client(&server, fast()).cluster_allocate("c").await.unwrap_err();
    assert!(matches!(error, Error::Transport { .. }) && error.to_string().contains("1 attempt "), "{error}");
    assert_eq!(server.calls().len(), 1);
}

#[tokio::test]
async fn an_unanswered_call_times_out() {
    let server = TestServer::start(|_, _, _| Reply::Stall).await;
    let options = Options { request_timeout: Duration::from_millis(50), ..fast() };
    let client = client(&server, options);
    let error = client.host_delete(3).await.unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }) && error.to_string().contains("1 attempt "), "{error}");
    assert_eq!(server.calls().len(), 1, "a timed-out write is not repeated");
    let error = client.host_info(3).await.unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }) && error.to_string().contains("3 attempts"), "{error}");
    assert_eq!(server.calls().len(), 4, "a timed-out read is");
}

#[tokio::test]
async fn calls_reuse_one_kept_alive_connection() {
    let server = TestServer::start(|n, _, _| success(host_xml(n as i64))).await;
    let client = client(&server, fast());
    for id in 0..5 {
        assert_eq!(client.host_info(id).await.unwrap().id, id);
    }
    let copy = client.clone();
    copy.host_info(5).await.unwrap();
    assert_eq!((server.calls().len(), server.accepted()), (6, 1));
}

#[tokio::test]
async fn the_session_never_shows_in_debug_or_errors() {
    let server = TestServer::start(|_, _, _| failure(&format!("session {SESSION} is not valid"), 0x100, -1)).await;
    let client = client(&server, fast());
    let debug = format!("{client:?}");
    assert!(!debug.contains("s3cret") && debug.contains(&server.endpoint), "{debug}");
    let error = client.cluster_info(1).await.unwrap_err();
    assert!(matches!(error, Error::Authentication { .. }), "{error:?}");
    let refused = Client::new(&closed_port_endpoint().await, SESSION.to_owned(), fast()).unwrap();
    for text in [error.to_string(), format!("{error:?}"), refused.system_version().await.unwrap_err().to_string()] {
        assert!(!text.contains("s3cret"), "{text}");
    }
}

#[test]
fn endpoints_must_be_http_urls() {
    for (endpoint, reason) in [("localhost:2633", "lacks http://"), ("https://h/RPC2", "only http://"), ("http://", "")]
    {
        let error = Client::new(endpoint, SESSION.to_owned(), Options::default()).unwrap_err();
        assert!(matches!(error, SetupError::Endpoint { .. }) && error.to_string().contains(reason), "{error}");
    }
}

#[test]
fn one_auth_files_give_the_session_or_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one_auth");
    let endpoint = "http://127.0.0.1:2633/RPC2";
    let error = Client::from_auth_file(endpoint, &path, Options::default()).unwrap_err();
    assert!(matches!(error, SetupError::AuthFileUnreadable { .. }) && error.to_string().contains("one_auth"));
    std::fs::write(&path, "  \n").unwrap();
    let error = Client::from_auth_file(endpoint, &path, Options::default()).unwrap_err();
    assert!(matches!(error, SetupError::AuthFileEmpty { .. }), "{error}");
    std::fs::write(&path, "s3cret-no-colon\n").unwrap();
    let error = Client::from_auth_file(endpoint, &path, Options::default()).unwrap_err();
    assert!(matches!(error, SetupError::AuthFileNoColon { .. }) && !error.to_string().contains("s3cret"), "{error}");
    std::fs::write(&path, format!("  {SESSION} \nsecond line\n")).unwrap();
    let client = Client::from_auth_file(endpoint, &path, Options::default()).unwrap();
    assert_eq!(client.session, SESSION);
}

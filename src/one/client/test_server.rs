//! A scripted oned for the client's tests, on raw tokio so a test can count the connections it
//! accepted and hang up on a request it has read, which an HTTP framework would not allow.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::one::xmlrpc::{self, Value};

/// What the server does with the n-th call (counting from 0 over all connections).
pub enum Reply {
    /// HTTP 200 with this XML-RPC body.
    Answer(String),
    /// An HTTP error status with an empty body.
    Status(u16),
    /// Close the connection without answering.
    Hangup,
    /// Keep the connection open and never answer.
    Stall,
}

/// `[true, value, 0]`, a successful OpenNebula answer.
pub fn success(value: Value) -> Reply {
    Reply::Answer(xmlrpc::encode_response(&Value::Array(vec![Value::Bool(true), value, Value::Int(0)])))
}

/// `[false, message, code, object]`, a failed OpenNebula answer.
pub fn failure(message: &str, code: i64, object: i64) -> Reply {
    let answer = vec![Value::Bool(false), Value::String(message.to_owned()), Value::Int(code), Value::Int(object)];
    Reply::Answer(xmlrpc::encode_response(&Value::Array(answer)))
}

type Script = dyn Fn(usize, &str, &[Value]) -> Reply + Send + Sync;
type Calls = Arc<Mutex<Vec<(String, Vec<Value>)>>>;

pub struct TestServer {
    pub endpoint: String,
    accepted: Arc<AtomicUsize>,
    calls: Calls,
}

impl TestServer {
    /// Listens on 127.0.0.1:0 and answers every call with `script(n, method, params)`.
    pub async fn start(script: impl Fn(usize, &str, &[Value]) -> Reply + Send + Sync + 'static) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}/RPC2", listener.local_addr().unwrap());
        let (accepted, calls) = (Arc::new(AtomicUsize::new(0)), Calls::default());
        let script: Arc<Script> = Arc::new(script);
        let (counter, log) = (accepted.clone(), calls.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, script.clone(), log.clone()));
            }
        });
        TestServer { endpoint, accepted, calls }
    }

    /// TCP connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Every call received, in order.
    pub fn calls(&self) -> Vec<(String, Vec<Value>)> {
        self.calls.lock().unwrap().clone()
    }
}

async fn serve(stream: TcpStream, script: Arc<Script>, calls: Calls) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    while let Some(body) = read_request(&mut reader).await {
        let (method, params) = xmlrpc::decode_call(&body).expect("the client sends valid XML-RPC");
        let n = {
            let mut calls = calls.lock().unwrap();
            calls.push((method.clone(), params.clone()));
            calls.len() - 1
        };
        let response = match script(n, &method, &params) {
            Reply::Answer(xml) => {
                format!("HTTP/1.1 200 OK\r\ncontent-type: text/xml\r\ncontent-length: {}\r\n\r\n{xml}", xml.len())
            }
            Reply::Status(status) => format!("HTTP/1.1 {status} Oops\r\ncontent-length: 0\r\n\r\n"),
            Reply::Hangup => return,
            Reply::Stall => return std::future::pending().await,
        };
        if write.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// One HTTP/1.1 request's body; `None` once the client closed the connection.
async fn read_request(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Option<String> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut length = None;
    loop {
        line.clear();
        reader.read_line(&mut line).await.ok()?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok();
        }
    }
    let mut body = vec![0; length?];
    reader.read_exact(&mut body).await.ok()?;
    String::from_utf8(body).ok()
}

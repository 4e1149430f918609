//! `formwork serve` for the integration tests: started with a [`Home`] on a free port (read from
//! its first stdout line, `formwork listening on http://IP:PORT`), stopped with SIGKILL or
//! SIGTERM, and a small HTTP/1.1 client over std's `TcpStream` with Basic auth. The client
//! writes requests byte for byte (so a test can send an empty body, no `Content-Type` or a
//! lying `Content-Length`), reads `Content-Length`, chunked and close-delimited bodies, and
//! follows a Server-Sent Events stream event by event.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ExitStatus};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Home;

/// How long one HTTP exchange may take before the test fails.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `formwork serve`; killed with SIGKILL when dropped.
pub struct Server {
    child: Option<Child>,
    /// `127.0.0.1:PORT`, from the first stdout line.
    pub addr: String,
    /// `http` or `https`, from the same line.
    pub scheme: String,
    /// Everything the server wrote on stderr so far (its tracing log), for failure messages
    /// and leak checks.
    stderr: Arc<Mutex<String>>,
    /// Every stdout line after the first (the address), for leak checks.
    stdout: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `formwork serve --listen 127.0.0.1:0` with `home` (its `env` included) and waits
    /// (bounded) for the line naming its address.
    pub fn start(home: &Home) -> Server {
        Server::start_with(home, &[])
    }

    /// [`Server::start`] with more arguments for `formwork serve` (e.g. `--tls-cert`).
    pub fn start_with(home: &Home, args: &[&str]) -> Server {
        let mut argv = vec!["serve", "--listen", "127.0.0.1:0"];
        argv.extend_from_slice(args);
        let mut child = home.spawn(&argv);
        drop(child.stdin.take());
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let mut err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let stdout = Arc::new(Mutex::new(String::new()));
        let kept = Arc::clone(&stdout);
        std::thread::spawn(move || {
            let mut lines = BufReader::new(out).lines();
            let _ = tx.send(lines.next().and_then(Result::ok));
            // Keep draining, so the server never blocks on a full pipe.
            for line in lines.map_while(Result::ok) {
                kept.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let mut server = Server { child: Some(child), addr: String::new(), scheme: String::new(), stderr, stdout };
        let line = rx.recv_timeout(Duration::from_secs(60)).ok().flatten();
        let Some(line) = line else {
            let status = server.child.as_mut().unwrap().try_wait().unwrap();
            panic!("formwork serve printed no address within a minute ({status:?}); stderr:\n{}", server.log());
        };
        let (scheme, url) = line
            .strip_prefix("formwork listening on ")
            .and_then(|url| url.split_once("://"))
            .unwrap_or_else(|| panic!("first stdout line of formwork serve: {line:?}; stderr:\n{}", server.log()));
        assert!(url.starts_with("127.0.0.1:") && url[10..].parse::<u16>().is_ok_and(|p| p > 0), "{line}");
        server.addr = url.to_string();
        server.scheme = scheme.to_string();
        server
    }

    /// A client of this server acting as `user`.
    pub fn client(&self, user: &str, password: &str) -> Client {
        Client::new(&self.addr).as_user(user, password)
    }

    /// A client that sends no credentials.
    pub fn anonymous(&self) -> Client {
        Client::new(&self.addr)
    }

    /// The server's stderr so far.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// What the server printed on stdout so far, after the line naming its address.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server runs").id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// `kill -9`, then reaps it.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("the server runs");
        let _ = child.kill();
        child.wait().unwrap();
    }

    /// Waits (bounded by `within`) for the server to exit by itself, e.g. after a crash point.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.as_mut().expect("the server runs").try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "formwork serve still runs after {within:?}; stderr:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits for the exit, which must come within `within`.
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.pid() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        self.wait_exit(within)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One HTTP client identity: the server's address and the Basic credentials it sends.
#[derive(Clone, Debug)]
pub struct Client {
    pub addr: String,
    /// The `Authorization` header value, if any.
    auth: Option<String>,
}

impl Client {
    pub fn new(addr: &str) -> Client {
        Client { addr: addr.to_string(), auth: None }
    }

    /// The same server with Basic credentials `user:password`.
    pub fn as_user(&self, user: &str, password: &str) -> Client {
        Client {
            addr: self.addr.clone(),
            auth: Some(format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))),
        }
    }

    /// The same server with this exact `Authorization` header.
    pub fn with_authorization(&self, value: &str) -> Client {
        Client { addr: self.addr.clone(), auth: Some(value.to_string()) }
    }

    pub fn get(&self, path: &str) -> Response {
        self.raw("GET", path, &[], None)
    }

    pub fn delete(&self, path: &str) -> Response {
        self.raw("DELETE", path, &[], None)
    }

    /// POST with a JSON body and `Content-Type: application/json`.
    pub fn post(&self, path: &str, body: &Value) -> Response {
        self.raw("POST", path, &[("Content-Type", "application/json")], Some(body.to_string().as_bytes()))
    }

    /// PATCH with a JSON body.
    pub fn patch(&self, path: &str, body: &Value) -> Response {
        self.raw("PATCH", path, &[("Content-Type", "application/json")], Some(body.to_string().as_bytes()))
    }

    /// One request on a new connection (`Connection: close`), written as given: `Host`,
    /// `Authorization` and, with a body, `Content-Length` are added; nothing else is.
    pub fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Response {
        let mut stream = self.connect();
        let mut head = self.head(method, path, headers);
        if let Some(body) = body {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("Connection: close\r\n\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body.unwrap_or_default());
        // A server may answer (413) and close before reading the whole body: write from another
        // thread, read the answer here, and ignore a write cut short.
        let mut writer = stream.try_clone().unwrap();
        let write = std::thread::spawn(move || {
            let _ = writer.write_all(&bytes);
        });
        let mut reader = BufReader::new(&mut stream);
        let response = read_response(&mut reader, method, path);
        let _ = write.join();
        response
    }

    /// Opens a Server-Sent Events stream (GET with `Accept: text/event-stream`).
    pub fn events(&self, path: &str) -> Events {
        self.events_with(path, &[])
    }

    /// Opens a Server-Sent Events stream with more request headers (`Last-Event-ID`, …).
    pub fn events_with(&self, path: &str, headers: &[(&str, &str)]) -> Events {
        let stream = self.connect();
        let mut all = vec![("Accept", "text/event-stream")];
        all.extend_from_slice(headers);
        let mut head = self.head("GET", path, &all);
        head.push_str("\r\n");
        (&stream).write_all(head.as_bytes()).unwrap();
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader, &format!("GET {path}"));
        let chunked = header_of(&headers, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        Events { reader, status, headers, chunked, chunk_left: 0, body: Vec::new(), ended: false }
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(&self.addr).unwrap_or_else(|e| panic!("connect to {}: {e}", self.addr));
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream
    }

    fn head(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> String {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        if let Some(auth) = &self.auth {
            head.push_str(&format!("Authorization: {auth}\r\n"));
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head
    }
}

/// A complete HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    /// `METHOD path`, for failure messages.
    pub request: String,
    pub status: u16,
    /// Header names lowercased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        header_of(&self.headers, name)
    }

    /// The body as JSON; fails the test (showing the body) if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{}: the body is not JSON ({e}): {} {}", self.request, self.status, self.text()))
    }

    /// Asserts the status; returns self.
    #[track_caller]
    pub fn expect(self, status: u16) -> Response {
        assert_eq!(self.status, status, "{}: expected {status}, got {} {}", self.request, self.status, self.text());
        self
    }

    /// Asserts the status and OneForm's error body (`err_code` = status, a non-empty
    /// `message`); returns the body.
    #[track_caller]
    pub fn error(self, status: u16) -> Value {
        let response = self.expect(status);
        let body = response.json();
        assert_eq!(body["err_code"], status, "{}: err_code of {body}", response.request);
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{}: message of {body}", response.request);
        body
    }
}

fn header_of<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Reads the status line and headers.
fn read_head(reader: &mut impl BufRead, request: &str) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap_or_else(|e| panic!("{request}: reading the status line: {e}"));
    let mut parts = line.split_whitespace();
    assert_eq!(parts.next(), Some("HTTP/1.1"), "{request}: status line {line:?}");
    let status: u16 = parts.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{request}: {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap_or_else(|e| panic!("{request}: reading headers: {e}"));
        let trimmed = line.trim_end_matches(['\r', '\n']);
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed.split_once(':').unwrap_or_else(|| panic!("{request}: header line {trimmed:?}"));
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    (status, headers)
}

pub fn read_response(reader: &mut impl BufRead, method: &str, path: &str) -> Response {
    let request = format!("{method} {path}");
    let (status, headers) = read_head(reader, &request);
    let mut body = Vec::new();
    let no_body = method == "HEAD" || status == 204 || status == 304 || status < 200;
    if no_body {
        // Nothing follows.
    } else if header_of(&headers, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        while let Some(chunk) = read_chunk(reader, &request) {
            body.extend_from_slice(&chunk);
        }
    } else if let Some(length) = header_of(&headers, "content-length") {
        let length: usize = length.parse().unwrap_or_else(|_| panic!("{request}: content-length {length:?}"));
        body.resize(length, 0);
        reader.read_exact(&mut body).unwrap_or_else(|e| panic!("{request}: a body shorter than {length}: {e}"));
    } else {
        reader.read_to_end(&mut body).unwrap_or_else(|e| panic!("{request}: reading the body: {e}"));
    }
    Response { request, status, headers, body }
}

/// One chunk of a chunked body; `None` at the last (empty) chunk, after its trailers.
fn read_chunk(reader: &mut impl BufRead, request: &str) -> Option<Vec<u8>> {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap_or_else(|e| panic!("{request}: reading a chunk size: {e}"));
    let size = line.trim().split(';').next().unwrap_or_default();
    let size = usize::from_str_radix(size, 16).unwrap_or_else(|_| panic!("{request}: chunk size line {line:?}"));
    if size == 0 {
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                return None;
            }
        }
    }
    let mut chunk = vec![0; size + 2];
    reader.read_exact(&mut chunk).unwrap_or_else(|e| panic!("{request}: a chunk cut short: {e}"));
    assert_eq!(&chunk[size..], b"\r\n", "{request}: chunk not followed by CRLF");
    chunk.truncate(size);
    Some(chunk)
}

/// A Server-Sent Events stream being read.
pub struct Events {
    reader: BufReader<TcpStream>,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    chunked: bool,
    /// Bytes of the current chunk not read yet.
    chunk_left: usize,
    /// Decoded body bytes not yet split into events.
    body: Vec<u8>,
    ended: bool,
}

/// One event: its `event:` name (if any) and its `data:` lines joined with newlines.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: Option<String>,
    pub data: String,
}

impl Events {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_of(&self.headers, name)
    }

    /// The next event carrying data (comments and keep-alives skipped), or `None` when the
    /// stream ended; fails the test if none comes before `deadline`.
    pub fn next(&mut self, deadline: Instant) -> Option<Event> {
        loop {
            if let Some(end) = find_blank_line(&self.body) {
                let block: Vec<u8> = self.body.drain(..end.1).collect();
                if let Some(event) = parse_event(&String::from_utf8_lossy(&block[..end.0])) {
                    return Some(event);
                }
                continue;
            }
            if self.ended {
                return None;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no complete event before the deadline; so far: {:?}", self.body);
            self.reader.get_ref().set_read_timeout(Some(left.max(Duration::from_millis(1)))).unwrap();
            self.fill();
        }
    }

    /// Reads more of the body into `self.body`.
    fn fill(&mut self) {
        if !self.chunked {
            let mut buf = [0u8; 4096];
            let n = self.reader.read(&mut buf).unwrap_or_else(|e| panic!("reading the event stream: {e}"));
            self.ended = n == 0;
            self.body.extend_from_slice(&buf[..n]);
            return;
        }
        if self.chunk_left == 0 {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap_or_else(|e| panic!("reading the event stream: {e}"));
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or_default(), 16);
            match size {
                _ if line.is_empty() => {
                    self.ended = true;
                    return;
                }
                Ok(0) => {
                    self.ended = true;
                    return;
                }
                Ok(size) => self.chunk_left = size,
                Err(_) => panic!("chunk size line {line:?}"),
            }
        }
        let mut buf = vec![0u8; self.chunk_left.min(4096)];
        let n = self.reader.read(&mut buf).unwrap_or_else(|e| panic!("reading the event stream: {e}"));
        self.ended = n == 0;
        self.body.extend_from_slice(&buf[..n]);
        self.chunk_left -= n;
        if self.chunk_left == 0 && n > 0 {
            let mut crlf = [0u8; 2];
            self.reader.read_exact(&mut crlf).unwrap_or_else(|e| panic!("reading the event stream: {e}"));
            assert_eq!(&crlf, b"\r\n", "chunk not followed by CRLF");
        }
    }
}

/// The end of the first event block: (where its text ends, where the next begins).
fn find_blank_line(body: &[u8]) -> Option<(usize, usize)> {
    let lf = body.windows(2).position(|w| w == b"\n\n").map(|i| (i, i + 2));
    let crlf = body.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, i + 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 < b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn parse_event(block: &str) -> Option<Event> {
    let mut name = None;
    let mut data: Vec<&str> = Vec::new();
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => name = Some(value.to_string()),
            "data" => data.push(value),
            _ => {}
        }
    }
    (!data.is_empty()).then(|| Event { name, data: data.join("\n") })
}

/// Standard base64 with padding (RFC 4648), for the Basic credentials.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in bytes.chunks(3) {
        let n = group.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= group.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

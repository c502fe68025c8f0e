//! A minimal Lambda Runtime API for tests: serves one event on `/next`, holds later `/next`
//! calls, forwards every POST (response, error) to a channel. Shared by
//! `lambda-image/tests/runtime.rs` (the binary) and thumbctl's `tests/build_image.rs` (the
//! binary inside the built image), which includes this file by path.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The request ID of the one event served.
pub const REQUEST_ID: &str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";

struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut content_length = 0usize;
    let mut chunked = false;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        if k == "content-length" {
            content_length = v.parse().ok()?;
        }
        if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
            chunked = true;
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0u8; n + 2];
            r.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        body.resize(content_length, 0);
        r.read_exact(&mut body).ok()?;
    }
    Some(Request { method, path, body })
}

/// A minimal Runtime API: serves `event` once on `/next`, then holds further `/next` calls;
/// forwards every POST (response, error) to the returned channel.
pub struct RuntimeApi {
    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub addr: String,
    /// (path, body) of every POST.
    pub posts: Receiver<(String, Vec<u8>)>,
    /// When the first `/next` arrived: the end of a cold start.
    pub first_next: Arc<Mutex<Option<Instant>>>,
}

fn serve_conn(
    stream: TcpStream,
    event: Arc<Vec<u8>>,
    served: Arc<AtomicBool>,
    first_next: Arc<Mutex<Option<Instant>>>,
    posts: Sender<(String, Vec<u8>)>,
) {
    let Ok(mut w) = stream.try_clone() else {
        return;
    };
    let mut r = BufReader::new(stream);
    while let Some(req) = read_request(&mut r) {
        if req.method == "GET" && req.path == "/2018-06-01/runtime/invocation/next" {
            if let Ok(mut f) = first_next.lock() {
                f.get_or_insert_with(Instant::now);
            }
            if served.swap(true, Ordering::SeqCst) {
                // No more events: hold the long poll (the test ends before this does).
                std::thread::sleep(Duration::from_secs(120));
                return;
            }
            let deadline = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() + 60_000)
                .unwrap_or(0);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Lambda-Runtime-Aws-Request-Id: {REQUEST_ID}\r\n\
                 Lambda-Runtime-Deadline-Ms: {deadline}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:thumbs\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1\r\n\r\n",
                event.len()
            );
            if w.write_all(head.as_bytes())
                .and_then(|_| w.write_all(&event))
                .is_err()
            {
                return;
            }
        } else if req.method == "POST" {
            let _ = posts.send((req.path, req.body));
            let body = br#"{"status":"OK"}"#;
            let head = format!(
                "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            if w.write_all(head.as_bytes())
                .and_then(|_| w.write_all(body))
                .is_err()
            {
                return;
            }
        } else {
            let _ = w.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        }
    }
}

pub fn start_runtime_api(event: Vec<u8>) -> RuntimeApi {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let (tx, rx) = channel();
    let first_next = Arc::new(Mutex::new(None));
    let fn2 = Arc::clone(&first_next);
    let event = Arc::new(event);
    let served = Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (e, s, f, t) = (
                Arc::clone(&event),
                Arc::clone(&served),
                Arc::clone(&fn2),
                tx.clone(),
            );
            std::thread::spawn(move || serve_conn(stream, e, s, f, t));
        }
    });
    RuntimeApi {
        addr,
        posts: rx,
        first_next,
    }
}

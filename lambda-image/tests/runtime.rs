//! The real binary against a Lambda Runtime API served by this test (one S3 event), with moto
//! behind it; and its start-up checks.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Env, encode_event_key, quadrant_jpeg, record_json};

const BIN: &str = env!("CARGO_BIN_EXE_lambda-image");
const REQUEST_ID: &str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";

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
struct RuntimeApi {
    addr: String,
    posts: Receiver<(String, Vec<u8>)>,
    first_next: Arc<Mutex<Option<Instant>>>,
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

fn start_runtime_api(event: Vec<u8>) -> RuntimeApi {
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

const CANARY_KEY_ID: &str = "AKIALAMBDACANARY0001";
const CANARY_SECRET: &str = "lambdaCanarySecret0123456789abcdefABCDEF";
const CANARY_TOKEN: &str = "lambdaCanarySessionToken0123456789";

fn lambda_env(api: &str) -> Vec<(&'static str, String)> {
    let mut v = common::aws_env();
    v.extend([
        ("AWS_LAMBDA_RUNTIME_API", api.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", "thumbs".to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_string()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512".to_string()),
    ]);
    v
}

struct Killer(std::process::Child);
impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_serves_one_event_through_the_runtime_api() {
    let env = Env::new("rt").await;
    let key = "uploads/holiday photo+1 ü.jpg";
    let src = quadrant_jpeg(640, 480, None);
    let etag = env.put(key, src.clone()).await;
    let ev = serde_json::json!({ "Records": [record_json(
        "ObjectCreated:Put", &env.src, &encode_event_key(key), src.len() as u64, &etag)] });
    let api = start_runtime_api(serde_json::to_vec(&ev).unwrap());

    let started = Instant::now();
    let child = Command::new(BIN)
        .env_clear()
        .envs(lambda_env(&api.addr))
        .envs(env.vars(&[("THUMB_SIZES", "100,200"), ("THUMB_FORMAT", "png")]))
        // Lambda hands the function its role's credentials in these variables; canaries so
        // that the log check below can tell them from anything else.
        .env("AWS_ACCESS_KEY_ID", CANARY_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", CANARY_SECRET)
        .env("AWS_SESSION_TOKEN", CANARY_TOKEN)
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the binary");
    let mut child = Killer(child);
    // Drained all along: at trace level the binary writes more than a pipe holds.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut text);
            }
            text
        })
    };
    let out_reader = drain(child.0.stdout.take().map(|p| Box::new(p) as _));
    let err_reader = drain(child.0.stderr.take().map(|p| Box::new(p) as _));

    let Ok((path, body)) = api.posts.recv_timeout(Duration::from_secs(60)) else {
        let _ = child.0.kill();
        let err = err_reader.join().unwrap_or_default();
        panic!("no response from the binary; stderr: {err}")
    };
    let cold = api
        .first_next
        .lock()
        .ok()
        .and_then(|f| *f)
        .map(|t| t.duration_since(started));
    eprintln!("process start to first GET /next: {cold:?} (debug build)");
    assert_eq!(
        path,
        format!("/2018-06-01/runtime/invocation/{REQUEST_ID}/response")
    );
    let resp: serde_json::Value = serde_json::from_slice(&body).expect("JSON response");
    let rec = &resp["records"][0];
    assert_eq!(rec["outcome"], "ok", "{resp}");
    assert_eq!(rec["key"], key);
    assert_eq!(
        rec["thumbnails"],
        serde_json::json!([format!("100/{key}.png"), format!("200/{key}.png")])
    );

    // What landed in moto.
    let (bytes, ct) = env.get_dest(&format!("200/{key}.png")).await;
    assert_eq!(ct.as_deref(), Some("image/png"));
    let img = image::load_from_memory(&bytes).unwrap();
    assert_eq!((img.width(), img.height()), (200, 150));
    let item = env.item(key).await.expect("item");
    assert_eq!(item["status"].as_s().map(String::as_str), Ok("ok"));
    assert_eq!(env.messages(1, Duration::from_secs(10)).await.len(), 1);

    // One JSON log line per object on stdout.
    let _ = child.0.kill();
    let _ = child.0.wait();
    let out = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    // No credential in any log line, even at trace level (which includes the SDK's own).
    for needle in [CANARY_KEY_ID, CANARY_SECRET, CANARY_TOKEN] {
        assert!(
            !out.contains(needle) && !err.contains(needle),
            "the function logged a credential ({needle})"
        );
    }
    let lines: Vec<serde_json::Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["message"] == "object")
        .collect();
    assert_eq!(lines.len(), 1, "stdout: {out}");
    assert_eq!(lines[0]["key"], key);
    assert_eq!(lines[0]["outcome"], "ok");
    assert_eq!(lines[0]["sizes"], "100,200");
    assert!(lines[0]["ms"].is_u64());
}

#[tokio::test]
async fn transient_failure_is_reported_as_an_invocation_error() {
    let env = Env::new("re").await;
    let src = quadrant_jpeg(64, 64, None);
    let etag = env.put("a.jpg", src.clone()).await;
    let ev = serde_json::json!({ "Records": [record_json("ObjectCreated:Put", &env.src, "a.jpg", src.len() as u64, &etag)] });
    let api = start_runtime_api(serde_json::to_vec(&ev).unwrap());
    let child = Command::new(BIN)
        .env_clear()
        .envs(lambda_env(&api.addr))
        .envs(env.vars(&[("TABLE_NAME", "missing-table")]))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    let _child = Killer(child);
    let (path, body) = api
        .posts
        .recv_timeout(Duration::from_secs(60))
        .expect("a POST");
    assert_eq!(
        path,
        format!("/2018-06-01/runtime/invocation/{REQUEST_ID}/error")
    );
    let err: serde_json::Value = serde_json::from_slice(&body).expect("JSON error");
    assert_eq!(err["errorType"], "TransientFailure");
    assert!(
        err["errorMessage"].as_str().unwrap_or("").contains("a.jpg"),
        "{err}"
    );
}

fn run_expecting_config_error(envs: Vec<(&'static str, String)>, needle: &str) {
    let out = Command::new(BIN)
        .env_clear()
        .envs(envs)
        .stdin(Stdio::null())
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(needle), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_configuration_fails_fast_with_one_line() {
    let base = vec![
        ("DEST_BUCKET", "d".to_string()),
        ("TABLE_NAME", "t".to_string()),
        (
            "TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:x".to_string(),
        ),
    ];
    run_expecting_config_error(
        base[1..]
            .iter()
            .cloned()
            .chain(lambda_env("127.0.0.1:9"))
            .collect(),
        "DEST_BUCKET is not set",
    );
    let mut bad = base.clone();
    bad.push(("THUMB_QUALITY", "200".to_string()));
    bad.extend(lambda_env("127.0.0.1:9"));
    run_expecting_config_error(bad, "THUMB_QUALITY=\"200\" is invalid");
    // Good config but outside Lambda: no panic from lambda_runtime, a clear line instead.
    run_expecting_config_error(base, "AWS_LAMBDA_RUNTIME_API is not set");
}

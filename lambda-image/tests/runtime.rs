//! The real binary against a Lambda Runtime API served by this test (one S3 event), with moto
//! behind it; and its start-up checks.

mod common;
mod runtime_api;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Env, cid, encode_event_key, quadrant_jpeg, record_json};
use runtime_api::{REQUEST_ID, start_runtime_api};

const BIN: &str = env!("CARGO_BIN_EXE_lambda-image");

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
        serde_json::json!([
            format!("100/{key}.{}.png", cid(&etag)),
            format!("200/{key}.{}.png", cid(&etag))
        ])
    );

    // What landed in moto.
    let (bytes, ct) = env.get_dest(&format!("200/{key}.{}.png", cid(&etag))).await;
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

/// Runs the binary on one payload and returns the path and JSON body of its one POST.
fn invoke_once(
    env: &Env,
    payload: &serde_json::Value,
    extra: &[(&str, &str)],
) -> (String, serde_json::Value) {
    let api = start_runtime_api(serde_json::to_vec(payload).unwrap());
    let child = Command::new(BIN)
        .env_clear()
        .envs(lambda_env(&api.addr))
        .envs(env.vars(extra))
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
    (path, serde_json::from_slice(&body).expect("JSON body"))
}

#[tokio::test]
async fn batch_operations_request_gets_its_response_format() {
    let env = Env::new("rb").await;
    let key = "batch/été +1.jpg";
    let src = quadrant_jpeg(64, 48, None);
    let etag = env.put(key, src).await;
    let ev = serde_json::json!({
        "invocationSchemaVersion": "1.0",
        "invocationId": "inv-rt",
        "job": {"id": "job-rt"},
        "tasks": [
            {"taskId": "a", "s3Key": encode_event_key(key), "s3VersionId": null,
             "s3BucketArn": format!("arn:aws:s3:::{}", env.src)},
            {"taskId": "b", "s3Key": "batch/missing.jpg", "s3VersionId": null,
             "s3BucketArn": format!("arn:aws:s3:::{}", env.src)}
        ]
    });
    let (path, resp) = invoke_once(&env, &ev, &[("THUMB_SIZES", "32")]);
    assert_eq!(
        path,
        format!("/2018-06-01/runtime/invocation/{REQUEST_ID}/response")
    );
    assert_eq!(resp["invocationSchemaVersion"], "1.0", "{resp}");
    assert_eq!(resp["invocationId"], "inv-rt");
    assert_eq!(resp["treatMissingKeysAs"], "PermanentFailure");
    assert_eq!(resp["results"][0]["taskId"], "a");
    assert_eq!(resp["results"][0]["resultCode"], "Succeeded", "{resp}");
    assert_eq!(
        resp["results"][1]["resultCode"], "PermanentFailure",
        "{resp}"
    );
    assert_eq!(
        env.dest_keys().await,
        [format!("32/batch/été +1.{}.jpg", cid(&etag))]
    );
    let item = env.item(key).await.expect("item");
    assert_eq!(item["status"].as_s().map(String::as_str), Ok("ok"));
}

#[tokio::test]
async fn unsupported_payload_is_an_error_naming_what_was_expected() {
    let env = Env::new("ru").await;
    let (path, err) = invoke_once(
        &env,
        &serde_json::json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}),
        &[],
    );
    assert_eq!(
        path,
        format!("/2018-06-01/runtime/invocation/{REQUEST_ID}/error")
    );
    assert_eq!(err["errorType"], "UnsupportedEvent", "{err}");
    let msg = err["errorMessage"].as_str().unwrap_or("");
    assert!(
        msg.contains("aws:sqs") && msg.contains("Batch Operations"),
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

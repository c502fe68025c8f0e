//! `up` without an image ships the running thumbctl as the function: against moto, with
//! Debian's `docker-registry` standing in for ECR (htpasswd user `AWS`, moto's ECR token as the
//! password) behind `scripts/ecr_proxy.py`, which answers as ECR does and counts what it sees.
//!
//! The image is then pulled back from the registry itself, its layers unpacked into an empty
//! directory, and its entrypoint run chrooted there (so nothing of this machine can help it:
//! the interpreter and libc must come from the image, and the TLS roots from the binary, as
//! the image holds no CA bundle of this machine) against a Runtime API
//! served here, for a real S3 event on an image in moto's source bucket. What moto then holds
//! is checked: the thumbnails, the DynamoDB item, and the SNS message, delivered to an HTTP
//! endpoint of this test subscribed with `--notify-url`.
//!
//! Nothing is compiled for this: the thumbctl that runs `up` is the test build itself.

mod common;
#[path = "../lambda-image/tests/runtime_api/mod.rs"]
mod runtime_api;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use common::{clients, ok, stack_name};
use sha2::{Digest as _, Sha256};

/// The password in moto's ECR authorization token (`AWS:<password>`, base64).
const MOTO_PASSWORD: &str = "123456789012-auth-token";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// ECR's request body limit (about 10 MiB), which the proxy enforces.
const ECR_MAX_BODY: usize = 10 * 1024 * 1024;

fn sha256(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    let mut s = String::from("sha256:");
    for b in d.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

struct Killer(Child);
impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------- registry and ECR proxy

struct LocalRegistry {
    url: String,
    _dir: tempfile::TempDir,
    _child: Killer,
}

/// Debian's docker-registry on 127.0.0.1, basic auth `AWS:<moto's token password>`.
fn start_registry() -> LocalRegistry {
    let dir = tempfile::tempdir().expect("tempdir");
    let htpasswd = Command::new("htpasswd")
        .args(["-Bbn", "AWS", MOTO_PASSWORD])
        .output()
        .expect("htpasswd (Debian: apt-get install apache2-utils)");
    assert!(htpasswd.status.success());
    std::fs::write(dir.path().join("htpasswd"), &htpasswd.stdout).expect("write htpasswd");
    let port = free_port();
    let config = format!(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: test\nauth:\n  htpasswd:\n    realm: test\n    path: {}\n",
        dir.path().join("data").display(),
        dir.path().join("htpasswd").display()
    );
    let conf = dir.path().join("config.yml");
    std::fs::write(&conf, config).expect("write config");
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker-registry (Debian: apt-get install docker-registry)");
    let child = Killer(child);
    wait_for_port(port, "docker-registry");
    LocalRegistry {
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
        _child: child,
    }
}

/// `scripts/ecr_proxy.py` in front of the registry: ECR's answers, ECR's body limit, and the
/// counts of what it forwarded.
struct EcrProxy {
    url: String,
    child: Killer,
    stdout: BufReader<ChildStdout>,
}

impl EcrProxy {
    fn start(reg: &LocalRegistry) -> EcrProxy {
        let port = free_port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/ecr_proxy.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--target", reg.url.trim_start_matches("http://")])
            .args(["--max-body", &ECR_MAX_BODY.to_string(), "--stale-range"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 scripts/ecr_proxy.py");
        let mut stdout = BufReader::new(child.stdout.take().expect("proxy stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("proxy says ready");
        assert_eq!(line.trim(), "ready");
        EcrProxy {
            url: format!("http://127.0.0.1:{port}"),
            child: Killer(child),
            stdout,
        }
    }

    /// Stops the proxy (SIGTERM, so it prints) and returns what it counted.
    fn counts(mut self) -> BTreeMap<String, u64> {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.0.id().to_string()])
            .status()
            .expect("kill");
        assert!(killed.success());
        let mut out = String::new();
        self.stdout.read_to_string(&mut out).expect("proxy counts");
        let counts: BTreeMap<String, u64> = out
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.parse().expect("a count")))
            .collect();
        assert!(
            counts.contains_key("requests"),
            "the proxy printed no counts: {out:?}"
        );
        counts
    }
}

async fn registry_get(reg: &LocalRegistry, path: &str, accept: Option<&str>) -> (u16, Vec<u8>) {
    let mut r = reqwest::Client::new()
        .get(format!("{}{path}", reg.url))
        .basic_auth("AWS", Some(MOTO_PASSWORD));
    if let Some(a) = accept {
        r = r.header("Accept", a);
    }
    let resp = r.send().await.expect("registry GET");
    let status = resp.status().as_u16();
    (status, resp.bytes().await.expect("body").to_vec())
}

// ---------------------------------------------------------------- SNS endpoint

/// An HTTP endpoint for an SNS subscription: answers every POST with 200 (moto delivers
/// synchronously, inside the function's Publish call) and hands its body over.
fn start_sns_endpoint() -> (String, Receiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/sns", listener.local_addr().expect("addr"));
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let Ok(mut w) = stream.try_clone() else {
                continue;
            };
            let mut r = BufReader::new(stream);
            let mut length = 0usize;
            let mut line = String::new();
            if r.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':')
                    && k.trim().eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if r.read_exact(&mut body).is_err() {
                continue;
            }
            let _ =
                w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = tx.send(body);
        }
    });
    (url, rx)
}

// ---------------------------------------------------------------- running thumbctl

/// A copy of the test build of thumbctl: the binary `up` ships is the one running, and a copy
/// cannot be rebuilt under the test by a cargo running alongside.
fn thumbctl_copy(dir: &Path) -> PathBuf {
    let copy = dir.join("thumbctl");
    std::fs::copy(env!("CARGO_BIN_EXE_thumbctl"), &copy).expect("copy thumbctl");
    copy
}

fn run(bin: &Path, state: &Path, stack: &str, args: &[&str]) -> Output {
    let out = Command::new(bin)
        .args(["--stack", stack, "--state-dir"])
        .arg(state)
        .args(args)
        .env_remove("AWS_PROFILE")
        .env_remove("FAILPOINTS")
        .envs(common::aws_env())
        .stdin(Stdio::null())
        .output()
        .expect("run thumbctl");
    assert!(
        out.status.success(),
        "thumbctl {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json_of(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

// ---------------------------------------------------------------- the chroot

/// How to start a program with another root directory.
enum Jail {
    /// `chroot` itself (needs CAP_SYS_CHROOT: root here).
    Chroot(PathBuf),
    /// `unshare -r chroot`: chroot as root of a new user namespace, for a non-root run.
    UserNamespace { unshare: PathBuf, chroot: PathBuf },
}

fn find_program(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

impl Jail {
    fn command(&self, root: &Path, entrypoint: &str) -> Command {
        let mut cmd = match self {
            Jail::Chroot(chroot) => Command::new(chroot),
            Jail::UserNamespace { unshare, chroot } => {
                let mut c = Command::new(unshare);
                c.arg("-r").arg(chroot);
                c
            }
        };
        cmd.arg(root).arg(entrypoint);
        cmd
    }

    /// A way to run `entrypoint` chrooted into `root`, proved by running it: without any
    /// variable, the function must start (loader and libraries from the image) and stop at
    /// once naming the missing configuration, which only lambda-image's runtime says. Plain
    /// `chroot` as root (CI runs as root); `unshare -r chroot` otherwise. The chrooted run is
    /// the proof that the image alone runs the function: when neither way works, the caller
    /// fails, with what each way answered.
    fn find(root: &Path, entrypoint: &str) -> Result<Jail, String> {
        let chroot = find_program("chroot").ok_or("no chroot program (coreutils)")?;
        let mut ways = vec![Jail::Chroot(chroot.clone())];
        if let Some(unshare) = find_program("unshare") {
            ways.push(Jail::UserNamespace { unshare, chroot });
        }
        let mut tried = Vec::new();
        for way in ways {
            let out = way
                .command(root, entrypoint)
                .env_clear()
                .stdin(Stdio::null())
                .output()
                .expect("run the jail");
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            if out.status.code() == Some(2) && err.contains("lambda-image: configuration error") {
                return Ok(way);
            }
            tried.push(format!(
                "{}: exit {:?}: {}",
                way.name(),
                out.status.code(),
                err.trim()
            ));
        }
        Err(tried.join("; "))
    }

    fn name(&self) -> &'static str {
        match self {
            Jail::Chroot(_) => "chroot",
            Jail::UserNamespace { .. } => "unshare -r chroot",
        }
    }
}

/// A 64x48 24-bit BMP: a format the engine reads, written without any encoder.
fn bmp(w: u32, h: u32) -> Vec<u8> {
    let row = (w * 3).div_ceil(4) * 4;
    let size = 54 + row * h;
    let mut v = Vec::with_capacity(size as usize);
    v.extend_from_slice(b"BM");
    v.extend_from_slice(&size.to_le_bytes());
    v.extend_from_slice(&[0; 4]);
    v.extend_from_slice(&54u32.to_le_bytes());
    v.extend_from_slice(&40u32.to_le_bytes());
    v.extend_from_slice(&(w as i32).to_le_bytes());
    v.extend_from_slice(&(h as i32).to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&24u16.to_le_bytes());
    v.extend_from_slice(&[0; 4]);
    v.extend_from_slice(&(row * h).to_le_bytes());
    v.extend_from_slice(&[0; 16]);
    for y in 0..h {
        for x in 0..w {
            v.extend_from_slice(&[(x * 4) as u8, (y * 5) as u8, 200]);
        }
        v.resize(v.len() + (row - w * 3) as usize, 0);
    }
    v
}

/// The architecture of this machine, as Lambda and OCI say it.
fn host_arch() -> (&'static str, &'static str) {
    if cfg!(target_arch = "aarch64") {
        ("arm64", "arm64")
    } else {
        ("x86_64", "amd64")
    }
}

#[tokio::test]
async fn up_ships_this_binary_and_the_image_runs_chrooted() {
    let reg = start_registry();
    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("state");
    let bin = thumbctl_copy(work.path());
    let stack = stack_name("ship");
    let c = clients().await;
    let (sns_url, sns_messages) = start_sns_endpoint();
    let (lambda_arch, oci_arch) = host_arch();

    // A new stack, no image given: thumbctl ships itself, through ECR-like answers.
    let proxy = EcrProxy::start(&reg);
    let first = run(
        &bin,
        &state,
        &stack,
        &[
            "up",
            "--registry-url",
            &proxy.url,
            "--notify-url",
            &sns_url,
            "--output",
            "json",
        ],
    );
    let up = json_of(&first);
    let counts = proxy.counts();
    eprintln!("first up: image {}, proxy {counts:?}", up["image"]);
    assert_eq!(up["image"]["how"], "self", "{up}");
    assert_eq!(up["image"]["architecture"], lambda_arch, "{up}");
    let layer_bytes = up["image"]["layer_bytes"].as_u64().expect("layer size");
    assert!(up["image"]["uploaded_bytes"].as_u64().unwrap() > layer_bytes);
    assert_eq!(counts["too_large"], 0, "{counts:?}");
    assert_eq!(counts["patch201"], counts["patch"], "{counts:?}");
    let function = up["function"].as_str().unwrap().to_owned();
    let repo = function.clone();
    let st = common::state_json(&state, &stack);
    let image_uri = st["settings"]["image_uri"].as_str().unwrap().to_owned();
    assert_eq!(st["settings"]["image_source"], "self", "{st}");
    assert_eq!(st["settings"]["architecture"], lambda_arch, "{st}");
    let (repo_uri, digest) = image_uri.split_once('@').expect("a digest URI");
    assert_eq!(
        repo_uri,
        format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/{repo}")
    );
    assert_eq!(up["image"]["digest"], digest);
    let tag = up["image"]["tag"].as_str().unwrap().to_owned();
    assert!(tag.starts_with("self-"), "{tag}");

    // moto's function runs that digest, on this machine's architecture.
    let f = c
        .lambda
        .get_function()
        .function_name(&function)
        .send()
        .await
        .unwrap();
    assert_eq!(
        f.code().and_then(|c| c.image_uri()),
        Some(image_uri.as_str())
    );
    let conf = f.configuration().expect("configuration");
    assert_eq!(
        conf.architectures()
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>(),
        [lambda_arch]
    );

    // Unchanged binary: the rerun finds its image by one HEAD and pushes nothing.
    let proxy = EcrProxy::start(&reg);
    let again = json_of(&run(
        &bin,
        &state,
        &stack,
        &["up", "--registry-url", &proxy.url, "--output", "json"],
    ));
    let counts = proxy.counts();
    eprintln!("rerun: image {}, proxy {counts:?}", again["image"]);
    assert_eq!(again["image"]["uploaded_bytes"], 0, "{again}");
    assert_eq!(again["image"]["digest"], digest, "{again}");
    assert_eq!(again["created"], 0, "{again}");
    assert_eq!(again["updated"], 0, "nothing to update: {again}");
    assert_eq!(counts["requests"], 1, "one manifest HEAD: {counts:?}");
    assert_eq!(counts["patch"], 0, "{counts:?}");

    // Pull the image from the registry itself: manifest by digest, config, layers.
    let (status, manifest) = registry_get(
        &reg,
        &format!("/v2/{repo}/manifests/{digest}"),
        Some(OCI_MANIFEST),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(sha256(&manifest), digest);
    let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let config_digest = m["config"]["digest"].as_str().unwrap();
    let (status, config) =
        registry_get(&reg, &format!("/v2/{repo}/blobs/{config_digest}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(sha256(&config), config_digest);
    let cfg: serde_json::Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(cfg["architecture"], oci_arch, "{cfg}");
    assert_eq!(cfg["os"], "linux");
    let entrypoint = cfg["config"]["Entrypoint"][0].as_str().unwrap().to_owned();
    let image_env: Vec<(String, String)> = cfg["config"]["Env"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|v| {
            v.as_str()?
                .split_once('=')
                .map(|(k, v)| (k.into(), v.into()))
        })
        .collect();

    let root = tempfile::tempdir().unwrap();
    let layers = m["layers"].as_array().cloned().unwrap_or_default();
    assert!(!layers.is_empty(), "{m}");
    let mut pulled = 0;
    for l in &layers {
        let d = l["digest"].as_str().unwrap();
        let (status, blob) = registry_get(&reg, &format!("/v2/{repo}/blobs/{d}"), None).await;
        assert_eq!(status, 200);
        assert_eq!(sha256(&blob), d);
        pulled += blob.len();
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&blob[..])
            .read_to_end(&mut tar)
            .expect("gunzip the layer");
        tar::Archive::new(&tar[..])
            .unpack(root.path())
            .expect("unpack the layer");
    }
    assert_eq!(pulled as u64, layer_bytes);
    eprintln!(
        "image: {:.1} MB compressed in {} layer(s)",
        pulled as f64 / 1e6,
        layers.len()
    );
    let shipped = std::fs::read(root.path().join(entrypoint.trim_start_matches('/'))).unwrap();
    assert!(
        shipped == std::fs::read(&bin).unwrap(),
        "the entrypoint is the thumbctl that ran up"
    );
    // Nothing of this machine's CA layout is in the image, and nothing points at one: the
    // function must find its TLS roots in itself (the chrooted run below says which it used).
    let mut files = Vec::new();
    let mut dirs = vec![root.path().to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                dirs.push(e.path());
            } else {
                files.push(e.path().strip_prefix(root.path()).unwrap().to_owned());
            }
        }
    }
    let bundles: Vec<&PathBuf> = files
        .iter()
        .filter(|f| {
            let f = f.to_string_lossy();
            f.starts_with("etc/ssl")
                || f.starts_with("etc/pki")
                || f.ends_with(".crt")
                || f.ends_with(".pem")
        })
        .collect();
    assert!(bundles.is_empty(), "a CA bundle in the image: {bundles:?}");
    assert!(
        image_env.iter().all(|(k, _)| !k.starts_with("SSL_CERT")),
        "{image_env:?}"
    );

    // An object in the source bucket and the event S3 sends for it.
    let src_bucket = up["source_bucket"].as_str().unwrap().to_owned();
    let key = "ship-self/pixel art.bmp";
    let bytes = bmp(64, 48);
    let put =
        c.s3.put_object()
            .bucket(&src_bucket)
            .key(key)
            .body(bytes.clone().into())
            .send()
            .await
            .unwrap();
    let etag = put.e_tag().unwrap_or_default().trim_matches('"').to_owned();
    let event = serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-12-02T12:00:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "x"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "thumbnails",
               "bucket": {"name": src_bucket, "ownerIdentity": {"principalId": "A"}, "arn": format!("arn:aws:s3:::{src_bucket}")},
               "object": {"key": "ship-self/pixel+art.bmp", "size": bytes.len(), "eTag": etag, "sequencer": "0055AED6DCD90281E5"}}
    }]});

    let jail = Jail::find(root.path(), &entrypoint).unwrap_or_else(|why| {
        panic!(
            "the image's entrypoint could not be run chrooted in the unpacked image, so nothing proves the image alone runs the function ({why}). Run the tests as root (CI does), or where `unshare -r` is permitted"
        )
    });
    eprintln!("running the entrypoint with {}", jail.name());

    // The entrypoint, chrooted, with what Lambda gives a function: the image's variables, the
    // function's own, the Runtime API's, and (moto standing in for AWS) the endpoint and
    // credentials. Not LD_LIBRARY_PATH: the loader must find the libraries where this
    // machine's loader found them, whatever Lambda does with that variable.
    let runtime_api::RuntimeApi {
        addr: api, posts, ..
    } = runtime_api::start_runtime_api(serde_json::to_vec(&event).unwrap());
    let function_env = conf
        .environment()
        .and_then(|e| e.variables())
        .cloned()
        .unwrap_or_default();
    let child = jail
        .command(root.path(), &entrypoint)
        .env_clear()
        .envs(
            image_env
                .iter()
                .filter(|(k, _)| k != "LD_LIBRARY_PATH")
                .cloned(),
        )
        .envs(function_env)
        .envs(common::aws_env())
        .env("AWS_LAMBDA_RUNTIME_API", &api)
        .env("AWS_LAMBDA_FUNCTION_NAME", &function)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the image's entrypoint chrooted");
    let mut child = Killer(child);
    let (path, body) = posts
        .recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| {
            let _ = child.0.kill();
            let mut e = String::new();
            if let Some(mut s) = child.0.stderr.take() {
                let _ = s.read_to_string(&mut e);
            }
            panic!("the chrooted function answered nothing; stderr: {e}")
        });
    assert_eq!(
        path,
        format!(
            "/2018-06-01/runtime/invocation/{}/response",
            runtime_api::REQUEST_ID
        ),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let resp: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(resp["records"][0]["outcome"], "ok", "{resp}");
    // The function's log (JSON lines on stdout): with no bundle in its root, it trusts the
    // roots compiled into it, Mozilla's full set.
    let _ = child.0.kill();
    let _ = child.0.wait();
    let mut log = String::new();
    child
        .0
        .stdout
        .take()
        .expect("the function's stdout")
        .read_to_string(&mut log)
        .expect("read the function's log");
    let roots: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "TLS root certificates")
        .collect();
    assert_eq!(roots.len(), 1, "one line about the TLS roots: {log}");
    assert_eq!(roots[0]["tls_roots"], "compiled-in", "{log}");
    assert!(roots[0]["count"].as_u64().is_some_and(|n| n > 100), "{log}");
    drop(child);

    // What moto holds: the thumbnails, the item, and the message.
    let dest = up["dest_bucket"].as_str().unwrap();
    let thumbs = resp["records"][0]["thumbnails"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(thumbs.len(), 3, "one per default size: {resp}");
    for t in &thumbs {
        let t = t.as_str().unwrap();
        let head =
            c.s3.head_object()
                .bucket(dest)
                .key(t)
                .send()
                .await
                .unwrap_or_else(|e| panic!("thumbnail {t} in {dest}: {e}"));
        assert_eq!(head.content_type(), Some("image/jpeg"), "{t}");
    }
    let item = c
        .dynamodb
        .get_item()
        .table_name(up["table"].as_str().unwrap())
        .key("id", AttributeValue::S(key.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_else(|| panic!("no item for {key}"));
    assert_eq!(item.get("status"), Some(&AttributeValue::S("ok".into())));
    assert_eq!(item.get("etag"), Some(&AttributeValue::S(etag.clone())));
    assert_eq!(
        item.get("width")
            .and_then(|v| v.as_n().ok())
            .map(String::as_str),
        Some("64")
    );
    let notification = sns_messages
        .recv_timeout(Duration::from_secs(30))
        .expect("moto delivered the function's SNS message to the subscribed endpoint");
    let n: serde_json::Value = serde_json::from_slice(&notification).unwrap();
    assert_eq!(n["TopicArn"], up["topic_arn"], "{n}");
    let message: serde_json::Value =
        serde_json::from_str(n["Message"].as_str().expect("a Message")).unwrap();
    assert_eq!(message["id"], key, "{message}");
    assert_eq!(message["status"], "ok", "{message}");
    assert_eq!(message["thumbnails"].as_array().map(Vec::len), Some(3));

    ok(&state, &stack, &["destroy", "--yes"]);
    assert!(common::leftovers(&c, &stack).await.is_empty());
}

/// A listener that takes every connection and closes it at once, counting them: the proxy of
/// a run that must not reach anything.
fn counting_listener() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (url, count)
}

/// On AWS a debug build of thumbctl is not shipped as the function: `up` stops before any AWS
/// call, exit 1, with the command that builds an optimised thumbctl and reruns the same `up`.
///
/// "AWS" here is exactly what a user has: no endpoint configured (the environment is cleared
/// of the tests' AWS_ENDPOINT_URL), credentials and a region. Nothing may leave this machine,
/// so every proxy variable the SDK and the registry client honour points at a listener here
/// that counts connections: a broken refusal shows up as a connection (and reaches nothing).
/// The tests' thumbctl is the debug build this is about (compiled only in debug test builds).
#[cfg(debug_assertions)]
#[tokio::test]
async fn a_debug_build_is_refused_on_aws_before_any_call() {
    let (proxy, connections) = counting_listener();
    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("state");
    let stack = stack_name("dbg");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_thumbctl"));
    cmd.args(["--stack", &stack, "--state-dir"])
        .arg(&state)
        .args(["up", "--sizes", "128,256"])
        .env_clear()
        .env("HOME", work.path())
        .env("AWS_CONFIG_FILE", work.path().join("no-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            work.path().join("no-credentials"),
        )
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "not-a-secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null());
    for var in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env(var, &proxy);
    }
    let out = cmd.output().expect("run thumbctl");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("is a debug build"), "{err}");
    assert!(err.contains("Nothing was created"), "{err}");
    let target = Path::new(env!("CARGO_BIN_EXE_thumbctl"))
        .parent()
        .and_then(Path::parent)
        .expect("the target directory");
    let rerun = format!(
        "cargo build --locked --profile lambda -p thumbctl && {} --stack {stack} --state-dir {} up --sizes 128,256",
        target.join("lambda/thumbctl").display(),
        state.display()
    );
    assert!(err.contains(&rerun), "expected `{rerun}` in:\n{err}");
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the refused `up` tried the network: {err}"
    );
    assert!(
        !state.join(format!("{stack}.json")).exists(),
        "no state was recorded"
    );
    // And the emulator the other tests use holds nothing of it either.
    let c = clients().await;
    assert!(common::leftovers(&c, &stack).await.is_empty());
}

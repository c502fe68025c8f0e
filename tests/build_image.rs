//! `thumbctl build-image` and `up` without `--image-uri`, against moto and a real OCI registry
//! (Debian's `docker-registry`, started here with htpasswd auth for user `AWS` and moto's ECR
//! token as password). The push goes through `scripts/ecr_proxy.py`, which makes the registry
//! answer as ECR does (201 to a blob PATCH, a Range that lags, 413 on a large body); the image
//! is pulled back from the registry itself, unpacked, and its binary processes an S3 event
//! through a Runtime API served by this test.
//!
//! The local build compiles lambda-image for musl, with the `dev` profile
//! (THUMBCTL_LAMBDA_PROFILE; minutes when cold); it is cached in
//! `target/musl` (CARGO_TARGET_DIR of the nested cargo), so only the first run pays.

mod common;
#[path = "../lambda-image/tests/runtime_api/mod.rs"]
mod runtime_api;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::{IMAGE, clients, ok, stack_name, thumbctl, thumbctl_cmd};
use sha2::{Digest as _, Sha256};

const MOTO_PASSWORD: &str = "123456789012-auth-token";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sha256(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    let mut s = String::from("sha256:");
    for b in d.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn json_of(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

struct Killer(Child);
impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ---------------------------------------------------------------- the registry

struct LocalRegistry {
    url: String,
    _dir: tempfile::TempDir,
    _child: Killer,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Debian's docker-registry on 127.0.0.1, basic auth `AWS:<password>`, storage in a tempdir.
fn start_registry(password: &str) -> LocalRegistry {
    let dir = tempfile::tempdir().expect("tempdir");
    let htpasswd = Command::new("htpasswd")
        .args(["-Bbn", "AWS", password])
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
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "docker-registry did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    LocalRegistry {
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
        _child: child,
    }
}

/// `scripts/ecr_proxy.py` in front of a registry: ECR's answers, and a body limit of `max_body`.
struct EcrProxy {
    url: String,
    child: Killer,
    stdout: BufReader<ChildStdout>,
}

impl EcrProxy {
    fn start(reg: &LocalRegistry, max_body: usize) -> EcrProxy {
        let port = free_port();
        let target = reg.url.trim_start_matches("http://");
        let mut child = Command::new("python3")
            .arg(root().join("scripts/ecr_proxy.py"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--target", target])
            .args(["--max-body", &max_body.to_string(), "--stale-range"])
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
        out.split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.parse().expect("a count")))
            .collect()
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

async fn registry_get(
    reg: &LocalRegistry,
    path: &str,
    accept: Option<&str>,
) -> (u16, Vec<u8>, Option<String>) {
    let mut r = http()
        .get(format!("{}{path}", reg.url))
        .basic_auth("AWS", Some(MOTO_PASSWORD));
    if let Some(a) = accept {
        r = r.header("Accept", a);
    }
    let resp = r.send().await.expect("registry GET");
    let status = resp.status().as_u16();
    let digest = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, resp.bytes().await.expect("body").to_vec(), digest)
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

// ---------------------------------------------------------------- CodeBuild path (moto)

/// Packaging is deterministic (same tag twice), the zip lands where the project reads it, a
/// build is started, and an image ECR already holds for these sources is never rebuilt.
#[tokio::test]
async fn codebuild_path_packages_deterministically_and_skips_images_ecr_has() {
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("bic");
    let c = clients().await;
    ok(dir.path(), &stack, &["up", "--image-uri", IMAGE]);
    let state = common::state_json(dir.path(), &stack);
    let suffix = state["suffix"].as_str().unwrap().to_owned();
    let repo = format!("{stack}-{suffix}");
    let dest = format!("{stack}-dst-{suffix}");

    let dry = |_: ()| {
        json_of(&ok(
            dir.path(),
            &stack,
            &["build-image", "--dry-run", "--output", "json"],
        ))
    };
    let first = dry(());
    let second = dry(());
    assert_eq!(first["tag"], second["tag"]);
    assert_eq!(first["source_sha256"], second["source_sha256"]);
    assert_eq!(first["action"], "build in CodeBuild");
    let tag = first["tag"].as_str().unwrap().to_owned();
    assert!(tag.starts_with("src-"), "{tag}");

    // moto "succeeds" every build without running it, so no image appears: a clear error.
    let out = thumbctl(dir.path(), &stack, &["build-image"]);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("holds no image tagged {tag}")),
        "{err}"
    );
    // The zip is in the project's source location, byte for byte what was hashed.
    let obj =
        c.s3.get_object()
            .bucket(&dest)
            .key(".thumbctl/build/source.zip")
            .send()
            .await
            .expect("source zip");
    let zip = obj.body.collect().await.unwrap().into_bytes();
    assert_eq!(
        sha256(&zip),
        format!("sha256:{}", first["source_sha256"].as_str().unwrap())
    );
    // CodeBuild reads the buildspec from the path the project names (only `buildspec.yml` at
    // the zip's root otherwise): the zip must hold it exactly there, as it is in the repository.
    // The project also carries the registry host; had anything differed, thumbctl would have
    // called UpdateProject, which moto does not implement, and the run above would have stopped
    // with that error instead.
    let projects = c
        .codebuild
        .batch_get_projects()
        .names(&repo)
        .send()
        .await
        .expect("batch_get_projects");
    let project = projects.projects().first().expect("the build project");
    let buildspec = project.source().and_then(|s| s.buildspec());
    assert_eq!(buildspec, Some("lambda-image/buildspec.yml"));
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip.to_vec())).expect("zip");
    let mut packaged = String::new();
    archive
        .by_name("lambda-image/buildspec.yml")
        .expect("the zip holds the project's buildspec")
        .read_to_string(&mut packaged)
        .expect("read buildspec");
    assert_eq!(
        packaged,
        std::fs::read_to_string(root().join("lambda-image/buildspec.yml")).expect("buildspec")
    );
    let vars: Vec<(&str, &str)> = project
        .environment()
        .map(|e| e.environment_variables())
        .unwrap_or_default()
        .iter()
        .map(|v| (v.name(), v.value()))
        .collect();
    assert!(
        vars.contains(&(
            "ECR_REGISTRY",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com"
        )),
        "{vars:?}"
    );
    assert_eq!(
        project.cache().map(|c| c.r#type().as_str()),
        Some("NO_CACHE")
    );
    let builds = c
        .codebuild
        .list_builds_for_project()
        .project_name(&repo)
        .send()
        .await
        .unwrap();
    assert_eq!(builds.ids().len(), 1, "one build started");

    // ECR holds the tag now (as after a real build): nothing is built, the function moves to it.
    let manifest = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}"#;
    c.ecr
        .put_image()
        .repository_name(&repo)
        .image_tag(&tag)
        .image_manifest(manifest)
        .send()
        .await
        .expect("put_image");
    let t = Instant::now();
    let out = json_of(&ok(
        dir.path(),
        &stack,
        &["build-image", "--output", "json"],
    ));
    assert_eq!(out["how"], "already-in-ecr", "{out}");
    assert!(t.elapsed() < Duration::from_secs(20));
    let digest = out["digest"].as_str().unwrap().to_owned();
    assert_eq!(
        out["image_uri"],
        format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/{repo}@{digest}")
    );
    assert_eq!(out["function_updated"], true);
    let f = c
        .lambda
        .get_function()
        .function_name(&repo)
        .send()
        .await
        .unwrap();
    assert_eq!(
        f.code().and_then(|c| c.image_uri()),
        out["image_uri"].as_str()
    );
    let builds = c
        .codebuild
        .list_builds_for_project()
        .project_name(&repo)
        .send()
        .await
        .unwrap();
    assert_eq!(builds.ids().len(), 1, "no second build");
    assert_eq!(
        common::state_json(dir.path(), &stack)["settings"]["image_uri"],
        out["image_uri"]
    );

    // --force builds anyway (and finds the pushed tag afterwards).
    let out = json_of(&ok(
        dir.path(),
        &stack,
        &["build-image", "--force", "--output", "json"],
    ));
    assert_eq!(out["how"], "codebuild", "{out}");
    let builds = c
        .codebuild
        .list_builds_for_project()
        .project_name(&repo)
        .send()
        .await
        .unwrap();
    assert_eq!(builds.ids().len(), 2);

    ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert!(common::leftovers(&c, &stack).await.is_empty());
}

#[test]
fn build_image_needs_a_stack() {
    let dir = tempfile::tempdir().unwrap();
    let out = thumbctl(dir.path(), "nostack", &["build-image"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        common::stderr(&out).contains("thumbctl up"),
        "{}",
        common::stderr(&out)
    );
}

// ---------------------------------------------------------------- local path + registry

/// Copies `from` into `to` recursively, writing only files whose bytes differ, so that cargo
/// sees unchanged sources as unchanged (it compares mtimes).
fn sync_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create snapshot dir");
    for entry in std::fs::read_dir(from).expect("read sources") {
        let entry = entry.expect("dir entry");
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') || name == "target" {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type().expect("file type").is_dir() {
            sync_tree(&src, &dst);
        } else {
            let bytes = std::fs::read(&src).expect("read source file");
            if std::fs::read(&dst).ok().as_deref() != Some(&bytes[..]) {
                std::fs::write(&dst, &bytes).expect("write snapshot file");
            }
        }
    }
}

/// The Lambda's sources as of the start of this test run, in `target/build-image-src`: the
/// local build compiles these, so edits to lambda-image/ while the tests run (or between
/// the two builds of one test) cannot change what is compared.
fn source_snapshot() -> &'static Path {
    static SNAP: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    SNAP.get_or_init(|| {
        let snap = root().join("target/build-image-src");
        for f in ["Cargo.toml", "Cargo.lock"] {
            let bytes = std::fs::read(root().join(f)).expect("workspace file");
            std::fs::create_dir_all(&snap).expect("snapshot dir");
            if std::fs::read(snap.join(f)).ok().as_deref() != Some(&bytes[..]) {
                std::fs::write(snap.join(f), &bytes).expect("write");
            }
        }
        sync_tree(&root().join("lambda-image"), &snap.join("lambda-image"));
        // The workspace root package needs a target; thumbctl's own sources are not needed.
        let stub = b"fn main() {}\n";
        std::fs::create_dir_all(snap.join("src")).expect("src");
        if std::fs::read(snap.join("src/main.rs")).ok().as_deref() != Some(&stub[..]) {
            std::fs::write(snap.join("src/main.rs"), stub).expect("stub");
        }
        snap
    })
}

fn local_cmd(dir: &Path, stack: &str, args: &[&str]) -> Command {
    let mut cmd = thumbctl_cmd(dir, stack, args);
    cmd.current_dir(source_snapshot())
        .env("CARGO_TARGET_DIR", root().join("target/musl"))
        // The same static musl build, unoptimised: a cold build in minutes, not twenty.
        .env("THUMBCTL_LAMBDA_PROFILE", "dev")
        .stderr(Stdio::piped())
        .stdout(Stdio::piped());
    cmd
}

fn run_ok(mut cmd: Command, what: &str) -> (serde_json::Value, Duration, String) {
    let t = Instant::now();
    let out = cmd.output().expect("run thumbctl");
    let took = t.elapsed();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{what} failed:\nstdout: {}\nstderr: {err}",
        String::from_utf8_lossy(&out.stdout)
    );
    (json_of(&out), took, err)
}

/// Body limit of the ECR-like proxy in the end-to-end push, and the chunk size thumbctl is
/// told to use: small, so that the layer (a few MB) must go up in several PATCHes.
const E2E_CHUNK: usize = 1024 * 1024;

/// `up --local` on a fresh stack builds the image without Docker, pushes it to a real
/// registry (with ECR's token as credentials, through answers shaped like ECR's) and creates
/// the function on its digest. The registry then holds exactly what was pushed; a rerun
/// uploads no blob; and the binary pulled back from the registry processes an S3 event
/// through the Runtime API.
#[tokio::test]
async fn up_local_builds_pushes_and_the_pulled_image_runs() {
    let reg = start_registry(MOTO_PASSWORD);
    let proxy = EcrProxy::start(&reg, E2E_CHUNK);
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("bil");
    let c = clients().await;

    let chunked = |mut cmd: Command| {
        cmd.env("THUMBCTL_PUSH_CHUNK_BYTES", E2E_CHUNK.to_string());
        cmd
    };
    let (up, took, _) = run_ok(
        chunked(local_cmd(
            dir.path(),
            &stack,
            &[
                "up",
                "--local",
                "--registry-url",
                &proxy.url,
                "--output",
                "json",
            ],
        )),
        "up --local",
    );
    eprintln!("up --local took {took:?}");
    let function = up["function"].as_str().unwrap().to_owned();
    let repo = function.clone();
    let state = common::state_json(dir.path(), &stack);
    let image_uri = state["settings"]["image_uri"].as_str().unwrap().to_owned();
    let (_, digest) = image_uri.split_once('@').expect("a digest URI");
    assert!(image_uri.starts_with(&format!(
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/{repo}@sha256:"
    )));
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

    // The registry has the manifest under its digest, and the config and layer it names.
    let (status, manifest, header) = registry_get(
        &reg,
        &format!("/v2/{repo}/manifests/{digest}"),
        Some(OCI_MANIFEST),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(sha256(&manifest), digest);
    assert_eq!(header.as_deref(), Some(digest));
    let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(m["mediaType"], OCI_MANIFEST);
    let config_digest = m["config"]["digest"].as_str().unwrap();
    let layer_digest = m["layers"][0]["digest"].as_str().unwrap();
    let (status, config, _) =
        registry_get(&reg, &format!("/v2/{repo}/blobs/{config_digest}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(sha256(&config), config_digest);
    let cfg: serde_json::Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(cfg["architecture"], "amd64");
    assert_eq!(cfg["os"], "linux");
    let entrypoint = cfg["config"]["Entrypoint"][0].as_str().unwrap().to_owned();
    let (status, layer, _) =
        registry_get(&reg, &format!("/v2/{repo}/blobs/{layer_digest}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(sha256(&layer), layer_digest);
    assert_eq!(m["layers"][0]["size"], layer.len() as u64);
    eprintln!("image layer: {:.2} MB compressed", layer.len() as f64 / 1e6);
    // Without the token the registry refuses: the credentials were really used.
    let anon = http()
        .get(format!("{}/v2/{repo}/manifests/{digest}", reg.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status().as_u16(), 401);

    // Nothing changed: the rebuild is a cargo no-op, the same bytes, and no blob goes up again.
    let (again, took, err) = run_ok(
        chunked(local_cmd(
            dir.path(),
            &stack,
            &[
                "build-image",
                "--local",
                "--registry-url",
                &proxy.url,
                "--output",
                "json",
            ],
        )),
        "build-image --local (unchanged)",
    );
    eprintln!("build-image --local with nothing changed took {took:?}");
    assert_eq!(again["digest"], digest, "reproducible: {again}");
    assert_eq!(again["uploaded_bytes"], 0, "{again}\n{err}");
    assert!(err.contains("already in the registry"), "{err}");

    // Every PATCH got ECR's 201, the layer took one per chunk (the config one more), none was
    // over the limit, and the rerun sent none.
    let counts = proxy.counts();
    eprintln!("ecr_proxy counts: {counts:?}");
    let layer_chunks = layer.len().div_ceil(E2E_CHUNK) as u64;
    assert!(layer_chunks > 1, "the layer is larger than one chunk");
    assert_eq!(counts["patch"], layer_chunks + 1, "{counts:?}");
    assert_eq!(counts["patch201"], counts["patch"], "{counts:?}");
    assert_eq!(counts["multi_patch_uploads"], 1, "{counts:?}");
    assert_eq!(counts["range_stale"], layer_chunks - 1, "{counts:?}");
    assert_eq!(counts["too_large"], 0, "{counts:?}");
    assert!(counts["max_patch_body"] <= E2E_CHUNK as u64, "{counts:?}");

    // Unpack the layer and run the entrypoint against a Runtime API with the function's env.
    let unpacked = tempfile::tempdir().unwrap();
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&layer[..])
        .read_to_end(&mut tar)
        .unwrap();
    tar::Archive::new(&tar[..]).unpack(unpacked.path()).unwrap();
    let bin = unpacked.path().join(entrypoint.trim_start_matches('/'));
    assert!(bin.is_file(), "entrypoint {entrypoint} is in the layer");
    // The layer is the binary alone: no CA bundle of the machine that built it.
    assert!(!unpacked.path().join("etc").exists(), "{entrypoint}");

    let src_bucket = up["source_bucket"].as_str().unwrap().to_owned();
    let key = "build-image-test/pixel art.bmp";
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
        "eventTime": "2026-11-25T12:00:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "x"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "thumbnails",
               "bucket": {"name": src_bucket, "ownerIdentity": {"principalId": "A"}, "arn": format!("arn:aws:s3:::{src_bucket}")},
               "object": {"key": "build-image-test/pixel+art.bmp", "size": bytes.len(), "eTag": etag, "sequencer": "0055AED6DCD90281E5"}}
    }]});
    let runtime_api::RuntimeApi {
        addr: api, posts, ..
    } = runtime_api::start_runtime_api(serde_json::to_vec(&event).unwrap());
    let env = f
        .configuration()
        .and_then(|c| c.environment())
        .and_then(|e| e.variables())
        .cloned()
        .unwrap_or_default();
    // Not chrooted, so this machine's bundle is at hand; SSL_CERT_FILE naming a missing file
    // is an environment without one (the lookup reads it first), as in the image on Lambda.
    let child = Command::new(&bin)
        .env_clear()
        .envs(common::aws_env())
        .envs(env)
        .env("SSL_CERT_FILE", unpacked.path().join("no-such-bundle.pem"))
        .env("AWS_LAMBDA_RUNTIME_API", &api)
        .env("AWS_LAMBDA_FUNCTION_NAME", &function)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the image's entrypoint");
    let mut child = Killer(child);
    let (path, body) = posts
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| {
            let _ = child.0.kill();
            let mut e = String::new();
            if let Some(mut s) = child.0.stderr.take() {
                let _ = s.read_to_string(&mut e);
            }
            panic!("the image's binary answered nothing; stderr: {e}")
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
    let thumbs = resp["records"][0]["thumbnails"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!thumbs.is_empty(), "{resp}");
    let dest = up["dest_bucket"].as_str().unwrap();
    for t in &thumbs {
        let t = t.as_str().unwrap();
        c.s3.head_object()
            .bucket(dest)
            .key(t)
            .send()
            .await
            .unwrap_or_else(|e| panic!("thumbnail {t} in {dest}: {e}"));
    }
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
    assert!(
        log.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|v| v["message"] == "TLS root certificates" && v["tls_roots"] == "compiled-in"),
        "the function says it trusts its compiled-in roots: {log}"
    );
    drop(child);

    ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert!(common::leftovers(&c, &stack).await.is_empty());
}

/// `--arch arm64` without the Rust target or without a cross C compiler fails before building,
/// exit 1, with one line saying what to install, and pushes nothing.
///
/// Whether this machine has the arm64 target and a cross compiler is not the test's to
/// assume, so the test sets the toolchain thumbctl sees: PATH holds only a stand-in `rustup`
/// answering `target list --installed` with the targets each case names (the one question
/// thumbctl asks it), or no rustup at all (a distribution's Rust), and no C compiler. Every
/// case runs and asserts, whatever this machine has installed.
#[tokio::test]
async fn arm64_without_its_toolchain_says_what_to_install() {
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("bia");
    let c = clients().await;
    ok(dir.path(), &stack, &["up", "--image-uri", IMAGE]);

    let toolchain = |rustup_targets: Option<&str>| {
        let bin = tempfile::tempdir().unwrap();
        if let Some(targets) = rustup_targets {
            let script = bin.path().join("rustup");
            std::fs::write(
                &script,
                format!(
                    "#!/bin/sh\n[ \"$*\" = \"target list --installed\" ] || exit 64\nprintf '%s\\n' {targets}\n"
                ),
            )
            .unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        bin
    };
    let cases = [
        (
            "rustup without the target",
            Some("x86_64-unknown-linux-gnu x86_64-unknown-linux-musl"),
            "rustup target add aarch64-unknown-linux-musl",
        ),
        (
            "the target but no cross compiler",
            Some("x86_64-unknown-linux-gnu aarch64-unknown-linux-musl"),
            "apt-get install gcc-aarch64-linux-gnu",
        ),
        (
            "no rustup and no cross compiler",
            None,
            "apt-get install gcc-aarch64-linux-gnu",
        ),
    ];
    for (case, targets, says) in cases {
        let bin = toolchain(targets);
        let out = thumbctl_cmd(
            dir.path(),
            &stack,
            &["build-image", "--local", "--arch", "arm64"],
        )
        .env("PATH", bin.path())
        .output()
        .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{case}: {err}");
        assert!(err.contains(says), "{case}: expected `{says}` in:\n{err}");
    }
    // Nothing was built or pushed: the repository `build-image` made first holds no image.
    let st = common::state_json(dir.path(), &stack);
    let repo = st["resources"]["repository"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("build-image --local records the repository first: {st}"));
    let images = c
        .ecr
        .list_images()
        .repository_name(repo)
        .send()
        .await
        .unwrap();
    assert!(images.image_ids().is_empty(), "{:?}", images.image_ids());
    let out = thumbctl(dir.path(), &stack, &["build-image", "--arch", "arm64"]);
    assert_eq!(out.status.code(), Some(2), "arm64 needs --local");
    ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert!(common::leftovers(&c, &stack).await.is_empty());
}

//! Pushing an image with the OCI distribution API: blobs the registry lacks (HEAD, then
//! POST + PATCH per chunk + PUT), then the manifest. Works against ECR (Basic auth with the
//! token from `GetAuthorizationToken`) and any OCI registry (the tests use Debian's
//! `docker-registry`, behind `scripts/ecr_proxy.py` to make it answer as ECR does).
//!
//! ECR departs from the distribution spec in two ways handled here: a blob PATCH answers
//! 201 rather than 202, and the `Range` it returns stops advancing after the first chunk
//! (aws/containers-roadmap#2831), so the upload offset follows what was sent, and the digest
//! the registry checks when the session is closed is what proves nothing was lost.

use std::time::Duration;

use reqwest::{Method, StatusCode, header};

use super::oci::{Blob, Image, MANIFEST_MEDIA_TYPE};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "{action}: the registry {registry} refused the credentials (HTTP {status}).\n  hint: the ECR token lasts 12 hours and is fetched on every run; check that your credentials allow ecr:GetAuthorizationToken and push to this repository"
    )]
    Auth {
        action: String,
        registry: String,
        status: u16,
    },
    #[error("{action}: HTTP {status} from {url}: {body}")]
    Http {
        action: String,
        url: String,
        status: u16,
        body: String,
    },
    #[error(
        "{action}: cannot reach {url}: {source}\n  hint: check --registry-url and your network"
    )]
    Transport {
        action: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{action}: {message}")]
    Protocol { action: String, message: String },
    #[error(
        "{env}={value:?} is not a whole number of bytes above 0\n  hint: unset it to send blobs in chunks of {default} bytes",
        env = CHUNK_ENV,
        default = PUSH_CHUNK_BYTES
    )]
    ChunkSize { value: String },
}

/// Largest request body a blob upload sends: blobs above it go up as several PATCHes.
/// ECR refuses request bodies over about 10 MiB, and behind its OCI API every part but the
/// last must be at least 5 MiB (the `UploadLayerPart` minimum); 8 MiB is inside both limits
/// with room to spare for a proxy's own cap.
pub const PUSH_CHUNK_BYTES: usize = 8 * 1024 * 1024;

/// Overrides [`PUSH_CHUNK_BYTES`]: for a proxy or registry with a lower body limit, and for
/// the end-to-end test, whose layer is too small to need chunks at the default size (ECR
/// itself may refuse parts under 5 MiB).
pub const CHUNK_ENV: &str = "THUMBCTL_PUSH_CHUNK_BYTES";

/// Which answers a request may get and still count as done.
#[derive(Clone, Copy)]
enum Expect {
    Only(&'static [StatusCode]),
    /// Registries disagree on the 2xx code of some calls (a blob PATCH is 202 in the spec,
    /// 201 from ECR, 204 from older registries), and every 2xx means the same there.
    Success,
}

impl Expect {
    fn accepts(self, status: StatusCode) -> bool {
        match self {
            Expect::Only(codes) => codes.contains(&status),
            Expect::Success => status.is_success(),
        }
    }
}

fn chunk_size_from_env() -> Result<usize, RegistryError> {
    match std::env::var(CHUNK_ENV) {
        Err(_) => Ok(PUSH_CHUNK_BYTES),
        Ok(value) => match value.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(RegistryError::ChunkSize { value }),
        },
    }
}

/// The end of a `Range: 0-<end>` answer, with or without the `bytes=` some registries add.
fn range_end(resp: &reqwest::Response) -> Option<u64> {
    let v = resp.headers().get(header::RANGE)?.to_str().ok()?;
    let (_, end) = v.trim().trim_start_matches("bytes=").split_once('-')?;
    end.trim().parse().ok()
}

/// What a push did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PushReport {
    pub uploaded: Vec<String>,
    pub already_present: Vec<String>,
    pub uploaded_bytes: u64,
    pub manifest_digest: String,
}

pub struct Registry {
    /// `scheme://host[:port]`, no trailing slash.
    base: String,
    /// Value of the Authorization header (`Basic <base64 user:password>`).
    auth: Option<String>,
    http: reqwest::Client,
    /// Largest PATCH body; [`PUSH_CHUNK_BYTES`] unless [`CHUNK_ENV`] says otherwise.
    chunk: usize,
}

impl Registry {
    /// `base` is the registry URL (ECR's proxyEndpoint, or --registry-url); `basic` the
    /// base64 `user:password` (ECR's authorization token is exactly that).
    pub fn new(base: &str, basic: Option<&str>) -> Result<Registry, RegistryError> {
        let base = if base.contains("://") {
            base.trim_end_matches('/').to_owned()
        } else {
            format!("https://{}", base.trim_end_matches('/'))
        };
        let chunk = chunk_size_from_env()?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(600))
            .user_agent(concat!("thumbctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| RegistryError::Transport {
                action: "set up the HTTP client".into(),
                url: base.clone(),
                source,
            })?;
        Ok(Registry {
            base,
            auth: basic.map(|b| format!("Basic {b}")),
            http,
            chunk,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, url);
        match &self.auth {
            Some(a) => r.header(header::AUTHORIZATION, a),
            None => r,
        }
    }

    async fn send(
        &self,
        action: &str,
        url: &str,
        req: reqwest::RequestBuilder,
        ok: Expect,
    ) -> Result<reqwest::Response, RegistryError> {
        let resp = req
            .send()
            .await
            .map_err(|source| RegistryError::Transport {
                action: action.to_owned(),
                url: url.to_owned(),
                source,
            })?;
        let status = resp.status();
        if ok.accepts(status) {
            return Ok(resp);
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(RegistryError::Auth {
                action: action.to_owned(),
                registry: self.base.clone(),
                status: status.as_u16(),
            });
        }
        let mut body = resp.text().await.unwrap_or_default();
        body.truncate(500);
        Err(RegistryError::Http {
            action: action.to_owned(),
            url: url.to_owned(),
            status: status.as_u16(),
            body,
        })
    }

    /// Whether the repository already holds this blob.
    pub async fn has_blob(&self, repo: &str, digest: &str) -> Result<bool, RegistryError> {
        let url = format!("{}/v2/{repo}/blobs/{digest}", self.base);
        let action = format!("check blob {digest} in {repo}");
        let resp = self
            .send(
                &action,
                &url,
                self.request(Method::HEAD, &url),
                Expect::Only(&[StatusCode::OK, StatusCode::NOT_FOUND]),
            )
            .await?;
        Ok(resp.status() == StatusCode::OK)
    }

    /// The digest of the manifest `reference` (a tag) in `repo`, if the registry has it and
    /// says which; `None` when it has not. A registry that answers a manifest HEAD without a
    /// digest gets `None` too: the caller then pushes, which checks each blob anyway.
    pub async fn manifest_digest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<String>, RegistryError> {
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.base);
        let action = format!("check manifest {reference} in {repo}");
        let resp = self
            .send(
                &action,
                &url,
                self.request(Method::HEAD, &url)
                    .header(header::ACCEPT, MANIFEST_MEDIA_TYPE),
                Expect::Only(&[StatusCode::OK, StatusCode::NOT_FOUND]),
            )
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Ok(resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .filter(|d| d.starts_with("sha256:"))
            .map(str::to_owned))
    }

    /// Resolves a Location header, absolute or relative to the registry.
    fn location(&self, action: &str, resp: &reqwest::Response) -> Result<String, RegistryError> {
        let loc = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RegistryError::Protocol {
                action: action.to_owned(),
                message: "the registry gave no upload Location".into(),
            })?;
        Ok(
            if loc.starts_with("http://") || loc.starts_with("https://") {
                loc.to_owned()
            } else {
                format!("{}/{}", self.base, loc.trim_start_matches('/'))
            },
        )
    }

    /// Uploads one blob: start a session, send the bytes in chunks of at most `self.chunk`
    /// (one PATCH when the blob fits), close it with the digest. A failed upload's session is
    /// cancelled, as the spec asks, rather than left for the registry to expire.
    pub async fn upload_blob(&self, repo: &str, blob: &Blob) -> Result<(), RegistryError> {
        let action = format!("upload blob {} to {repo}", blob.digest);
        let start = format!("{}/v2/{repo}/blobs/uploads/", self.base);
        let resp = self
            .send(
                &action,
                &start,
                self.request(Method::POST, &start)
                    .header(header::CONTENT_LENGTH, 0),
                Expect::Only(&[StatusCode::ACCEPTED]),
            )
            .await?;
        let session = self.location(&action, &resp)?;
        // The spec asks for chunks (but the last) of at least the registry's minimum, if any.
        let min = resp
            .headers()
            .get("oci-chunk-min-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let chunk = self.chunk.max(min);
        let mut last = session.clone();
        let result = self
            .send_chunks_and_close(&action, blob, session, chunk, &mut last)
            .await;
        if result.is_err() {
            let cancel = self
                .request(Method::DELETE, &last)
                .timeout(Duration::from_secs(15))
                .send()
                .await;
            if let Err(e) = cancel {
                tracing::debug!(url = %last, error = %e, "could not cancel the upload session");
            }
        }
        result
    }

    /// The PATCHes and the closing PUT of one upload; `last` follows the session's Location.
    async fn send_chunks_and_close(
        &self,
        action: &str,
        blob: &Blob,
        mut session: String,
        chunk: usize,
        last: &mut String,
    ) -> Result<(), RegistryError> {
        let len = blob.bytes.len();
        let mut offset = 0;
        // An empty blob has no bytes to PATCH; the closing PUT alone uploads it.
        while offset < len {
            let end = offset.saturating_add(chunk).min(len);
            let step = if offset == 0 && end == len {
                action.to_owned()
            } else {
                format!("{action} (bytes {offset}-{} of {len})", end - 1)
            };
            let resp = self
                .send(
                    &step,
                    &session,
                    self.request(Method::PATCH, &session)
                        .header(header::CONTENT_TYPE, "application/octet-stream")
                        .header(header::CONTENT_RANGE, format!("{offset}-{}", end - 1))
                        .body(blob.bytes[offset..end].to_vec()),
                    Expect::Success,
                )
                .await?;
            if let Some(reported) = range_end(&resp)
                && reported != (end - 1) as u64
            {
                // ECR's Range lags behind what it stored; trusting it would re-send bytes.
                tracing::debug!(
                    blob = %blob.digest,
                    sent_through = end - 1,
                    reported,
                    "the registry's Range disagrees with the bytes sent; going on from what was sent"
                );
            }
            session = self.location(&step, &resp).unwrap_or(session);
            last.clone_from(&session);
            offset = end;
        }
        let sep = if session.contains('?') { '&' } else { '?' };
        let finish = format!("{session}{sep}digest={}", blob.digest.replace(':', "%3A"));
        let resp = self
            .send(
                action,
                &finish,
                self.request(Method::PUT, &finish)
                    .header(header::CONTENT_LENGTH, 0),
                Expect::Success,
            )
            .await?;
        if let Some(d) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            && d != blob.digest
        {
            return Err(RegistryError::Protocol {
                action: action.to_owned(),
                message: format!("the registry stored digest {d}, expected {}", blob.digest),
            });
        }
        Ok(())
    }

    /// Puts the manifest under `reference` (a tag or its digest); returns the registry's digest.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        manifest: &Blob,
    ) -> Result<String, RegistryError> {
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.base);
        let action = format!("put manifest {reference} in {repo}");
        let resp = self
            .send(
                &action,
                &url,
                self.request(Method::PUT, &url)
                    .header(header::CONTENT_TYPE, MANIFEST_MEDIA_TYPE)
                    .body(manifest.bytes.clone()),
                Expect::Success,
            )
            .await?;
        let digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .unwrap_or(&manifest.digest)
            .to_owned();
        if digest != manifest.digest {
            return Err(RegistryError::Protocol {
                action,
                message: format!(
                    "the registry stored the manifest as {digest}, expected {}",
                    manifest.digest
                ),
            });
        }
        Ok(digest)
    }

    /// Pushes the image: each blob only if missing, then the manifest under `tag`.
    pub async fn push(
        &self,
        repo: &str,
        image: &Image,
        tag: &str,
        mut note: impl FnMut(&str),
    ) -> Result<PushReport, RegistryError> {
        let mut report = PushReport::default();
        for (what, blob) in [("layer", &image.layer), ("config", &image.config)] {
            if self.has_blob(repo, &blob.digest).await? {
                report.already_present.push(blob.digest.clone());
                note(&format!(
                    "{what} {} already in the registry",
                    short(&blob.digest)
                ));
            } else {
                note(&format!(
                    "uploading {what} {} ({:.1} MB)",
                    short(&blob.digest),
                    blob.bytes.len() as f64 / 1e6
                ));
                self.upload_blob(repo, blob).await?;
                report.uploaded.push(blob.digest.clone());
                report.uploaded_bytes += blob.bytes.len() as u64;
            }
        }
        // Every blob is in, no manifest names them yet: a crash here leaves only blobs.
        crate::failpoint::crash_point("push:blobs-uploaded");
        report.manifest_digest = self.put_manifest(repo, tag, &image.manifest).await?;
        Ok(report)
    }
}

fn short(digest: &str) -> &str {
    let end = digest.len().min("sha256:".len() + 12);
    &digest[..end]
}

#[cfg(test)]
mod tests {
    //! The push against Debian's docker-registry behind `scripts/ecr_proxy.py`, which answers
    //! blob PATCHes with 201, lets Range go stale as ECR does, and refuses bodies over 1 MiB.

    use std::io::{BufRead, BufReader, Read};
    use std::net::{TcpListener, TcpStream};
    use std::process::{Child, ChildStdout, Command, Stdio};
    use std::time::Instant;

    use super::*;
    use crate::image::{Arch, oci, sha256_digest};

    const PASSWORD: &str = "push-test-password";
    const MAX_BODY: usize = 1024 * 1024;

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

    fn wait_for(port: u16, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "{what} did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// docker-registry on 127.0.0.1 with htpasswd auth for `AWS:PASSWORD`, as ECR's token.
    fn start_registry(dir: &std::path::Path) -> (Killer, u16) {
        let htpasswd = Command::new("htpasswd")
            .args(["-Bbn", "AWS", PASSWORD])
            .output()
            .expect("htpasswd (Debian: apt-get install apache2-utils)");
        assert!(htpasswd.status.success());
        std::fs::write(dir.join("htpasswd"), &htpasswd.stdout).expect("write htpasswd");
        let port = free_port();
        let config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: test\nauth:\n  htpasswd:\n    realm: test\n    path: {}\n",
            dir.join("data").display(),
            dir.join("htpasswd").display()
        );
        std::fs::write(dir.join("config.yml"), config).expect("write config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (Debian: apt-get install docker-registry)");
        let child = Killer(child);
        wait_for(port, "docker-registry");
        (child, port)
    }

    struct Proxy {
        child: Killer,
        stdout: BufReader<ChildStdout>,
        url: String,
    }

    impl Proxy {
        fn start(target: u16) -> Proxy {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/ecr_proxy.py");
            let port = free_port();
            let mut child = Command::new("python3")
                .arg(script)
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .args(["--target", &format!("127.0.0.1:{target}")])
                .args(["--max-body", &MAX_BODY.to_string(), "--stale-range"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .spawn()
                .expect("python3 scripts/ecr_proxy.py");
            let mut stdout = BufReader::new(child.stdout.take().expect("proxy stdout"));
            let mut line = String::new();
            stdout.read_line(&mut line).expect("proxy says ready");
            assert_eq!(line.trim(), "ready");
            Proxy {
                child: Killer(child),
                stdout,
                url: format!("http://127.0.0.1:{port}"),
            }
        }

        /// Stops the proxy with SIGTERM and returns the counts it prints.
        fn counts(mut self) -> std::collections::BTreeMap<String, u64> {
            let pid = self.child.0.id().to_string();
            let killed = Command::new("kill")
                .args(["-TERM", &pid])
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

    fn base64(bytes: &[u8]) -> String {
        const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for c in bytes.chunks(3) {
            let n = c
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..4 {
                if i <= c.len() {
                    out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    /// Bytes gzip cannot shrink, so the layer stays as large as asked.
    fn noise(len: usize, mut seed: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 24) as u8
            })
            .collect()
    }

    async fn pull(port: u16, path: &str, accept: Option<&str>) -> (u16, Vec<u8>) {
        let mut r = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}{path}"))
            .header(
                header::AUTHORIZATION,
                format!("Basic {}", base64(format!("AWS:{PASSWORD}").as_bytes())),
            );
        if let Some(a) = accept {
            r = r.header(header::ACCEPT, a);
        }
        let resp = r.send().await.expect("registry GET");
        let status = resp.status().as_u16();
        (status, resp.bytes().await.expect("body").to_vec())
    }

    #[test]
    fn base64_matches_the_rfc_examples() {
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(b"fooba"), "Zm9vYmE=");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
        assert_eq!(base64(b""), "");
    }

    /// A layer over three times the proxy's body limit goes up in chunks through the ECR-like
    /// answers (201, stale Range) and comes back from the registry byte for byte; the same
    /// layer as a single PATCH, as thumbctl sent it before, is refused with ECR's 413.
    #[tokio::test]
    async fn chunked_push_through_ecr_like_answers_stores_the_image() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_registry, port) = start_registry(dir.path());
        let proxy = Proxy::start(port);
        let token = base64(format!("AWS:{PASSWORD}").as_bytes());
        let mut reg = Registry::new(&proxy.url, Some(&token)).expect("client");
        reg.chunk = MAX_BODY;

        let binary = noise(3 * MAX_BODY + MAX_BODY / 2, 0x9e37_79b9_7f4a_7c15);
        let image = oci::assemble(&binary, Arch::X86_64).expect("assemble");
        assert!(image.layer.bytes.len() > 3 * MAX_BODY);
        let report = reg
            .push("thumbs/fn", &image, "t1", |_| {})
            .await
            .expect("chunked push through the ECR-like proxy");
        assert_eq!(report.manifest_digest, image.manifest.digest);
        assert_eq!(report.uploaded.len(), 2);

        // Read back from the registry itself, not through the proxy.
        let (status, manifest) = pull(
            port,
            "/v2/thumbs/fn/manifests/t1",
            Some(oci::MANIFEST_MEDIA_TYPE),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(sha256_digest(&manifest), image.manifest.digest);
        let m: serde_json::Value = serde_json::from_slice(&manifest).expect("manifest JSON");
        assert_eq!(m["layers"][0]["digest"], image.layer.digest.as_str());
        assert_eq!(m["layers"][0]["size"], image.layer.bytes.len() as u64);
        assert_eq!(m["config"]["digest"], image.config.digest.as_str());
        for blob in [&image.layer, &image.config] {
            let (status, bytes) =
                pull(port, &format!("/v2/thumbs/fn/blobs/{}", blob.digest), None).await;
            assert_eq!(status, 200);
            assert_eq!(bytes.len(), blob.bytes.len());
            assert_eq!(sha256_digest(&bytes), blob.digest);
        }

        // An empty blob needs no PATCH at all.
        let empty = Blob {
            bytes: Vec::new(),
            digest: sha256_digest(b""),
        };
        reg.upload_blob("thumbs/fn", &empty)
            .await
            .expect("empty blob");
        let (status, bytes) =
            pull(port, &format!("/v2/thumbs/fn/blobs/{}", empty.digest), None).await;
        assert_eq!((status, bytes.len()), (200, 0));

        // One PATCH for the whole layer, as before chunking: ECR's 413, said plainly.
        reg.chunk = PUSH_CHUNK_BYTES;
        let other = oci::assemble(&noise(2 * MAX_BODY, 7), Arch::X86_64).expect("assemble");
        let err = reg
            .upload_blob("thumbs/fn", &other.layer)
            .await
            .expect_err("a body over the limit is refused");
        let msg = err.to_string();
        assert!(
            msg.contains("HTTP 413") && msg.contains("SIZE_INVALID"),
            "{msg}"
        );

        let counts = proxy.counts();
        eprintln!("ecr_proxy counts: {counts:?}");
        let layer_patches = image.layer.bytes.len().div_ceil(MAX_BODY) as u64;
        assert_eq!(
            counts["patch"],
            layer_patches + 1,
            "layer chunks + config: {counts:?}"
        );
        assert_eq!(counts["patch201"], counts["patch"], "{counts:?}");
        assert_eq!(counts["multi_patch_uploads"], 1, "{counts:?}");
        assert_eq!(counts["range_stale"], layer_patches - 1, "{counts:?}");
        assert_eq!(counts["max_patch_body"], MAX_BODY as u64, "{counts:?}");
        assert_eq!(
            counts["too_large"], 1,
            "only the unchunked upload: {counts:?}"
        );
    }
}

//! A local OCI registry standing in for ECR: Debian's `docker-registry` on 127.0.0.1 with
//! basic auth `AWS:<moto's ECR token password>`, so thumbctl's `--registry-url` logs in with
//! the credentials moto's GetAuthorizationToken hands out, as it would against ECR.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// The password in moto's ECR authorization token (`AWS:<password>`, base64).
pub const MOTO_PASSWORD: &str = "123456789012-auth-token";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A running registry; stopped (and its storage removed) when dropped.
pub struct LocalRegistry {
    pub url: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LocalRegistry {
    pub fn start() -> LocalRegistry {
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
        let reg = LocalRegistry {
            url: format!("http://127.0.0.1:{port}"),
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        reg
    }

    /// A GET against the registry itself (not through thumbctl): status and body.
    pub async fn get(&self, path: &str, accept: Option<&str>) -> (u16, Vec<u8>) {
        let mut r = reqwest::Client::new()
            .get(format!("{}{path}", self.url))
            .basic_auth("AWS", Some(MOTO_PASSWORD));
        if let Some(a) = accept {
            r = r.header("Accept", a);
        }
        let resp = r.send().await.expect("registry GET");
        let status = resp.status().as_u16();
        (status, resp.bytes().await.expect("registry body").to_vec())
    }

    /// The status of a HEAD against the registry itself (a blob's presence without its bytes).
    pub async fn head(&self, path: &str) -> u16 {
        reqwest::Client::new()
            .head(format!("{}{path}", self.url))
            .basic_auth("AWS", Some(MOTO_PASSWORD))
            .send()
            .await
            .expect("registry HEAD")
            .status()
            .as_u16()
    }

    /// The tags of `repo`; none when the registry does not know the repository.
    pub async fn tags(&self, repo: &str) -> Vec<String> {
        let (status, body) = self.get(&format!("/v2/{repo}/tags/list"), None).await;
        if status == 404 {
            return vec![];
        }
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let v: serde_json::Value = serde_json::from_slice(&body).expect("tags JSON");
        v["tags"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// `sha256:<hex>` of `bytes`, as registries name content.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(bytes);
    let mut s = String::from("sha256:");
    for b in d.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

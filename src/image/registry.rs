//! Pushing an image with the OCI distribution API: blobs the registry lacks (HEAD, then
//! POST + PATCH + PUT), then the manifest. Works against ECR (Basic auth with the token from
//! `GetAuthorizationToken`) and any OCI registry (the tests use Debian's `docker-registry`).

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
        ok: &[StatusCode],
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
        if ok.contains(&status) {
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
                &[StatusCode::OK, StatusCode::NOT_FOUND],
            )
            .await?;
        Ok(resp.status() == StatusCode::OK)
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

    /// Uploads one blob: start a session, send the bytes as one chunk, close it with the digest.
    pub async fn upload_blob(&self, repo: &str, blob: &Blob) -> Result<(), RegistryError> {
        let action = format!("upload blob {} to {repo}", blob.digest);
        let start = format!("{}/v2/{repo}/blobs/uploads/", self.base);
        let resp = self
            .send(
                &action,
                &start,
                self.request(Method::POST, &start)
                    .header(header::CONTENT_LENGTH, 0),
                &[StatusCode::ACCEPTED],
            )
            .await?;
        let session = self.location(&action, &resp)?;
        let resp = self
            .send(
                &action,
                &session,
                self.request(Method::PATCH, &session)
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .header(
                        header::CONTENT_RANGE,
                        format!("0-{}", blob.bytes.len().saturating_sub(1)),
                    )
                    .body(blob.bytes.clone()),
                &[StatusCode::ACCEPTED, StatusCode::NO_CONTENT],
            )
            .await?;
        let session = self.location(&action, &resp).unwrap_or(session);
        let sep = if session.contains('?') { '&' } else { '?' };
        let finish = format!("{session}{sep}digest={}", blob.digest.replace(':', "%3A"));
        let resp = self
            .send(
                &action,
                &finish,
                self.request(Method::PUT, &finish)
                    .header(header::CONTENT_LENGTH, 0),
                &[
                    StatusCode::CREATED,
                    StatusCode::ACCEPTED,
                    StatusCode::NO_CONTENT,
                ],
            )
            .await?;
        if let Some(d) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            && d != blob.digest
        {
            return Err(RegistryError::Protocol {
                action,
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
                &[StatusCode::CREATED, StatusCode::OK],
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
        report.manifest_digest = self.put_manifest(repo, tag, &image.manifest).await?;
        Ok(report)
    }
}

fn short(digest: &str) -> &str {
    let end = digest.len().min("sha256:".len() + 12);
    &digest[..end]
}

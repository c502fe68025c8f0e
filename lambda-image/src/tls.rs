//! The root certificates the function trusts for its HTTPS to AWS, and the SDK's HTTP client
//! built on them.
//!
//! The SDK's default client trusts the roots of the system it runs on: `SSL_CERT_FILE` /
//! `SSL_CERT_DIR`, else the files `openssl-probe` knows (Debian's, Fedora/RHEL/Amazon Linux's,
//! openSUSE's, Alpine's...). The function runs in an image that is `scratch` plus the binary
//! (and, shipped by `up`, its loader and libraries): there is no system there unless the image
//! brings one, and the machine that built the image has no say in what Lambda's environment
//! holds. Copying the building host's bundle tied the function to that host's layout (a Debian
//! path, missing on Amazon Linux, Fedora, openSUSE, Alpine).
//!
//! So the function trusts the system's roots when its environment has any (an image that
//! carries a bundle, such as the CodeBuild one, or a `SSL_CERT_FILE` the user set), and
//! otherwise Mozilla's roots compiled into the binary (`webpki-root-certs`, generated from
//! Mozilla's CA program by the rustls project), which hold the roots AWS endpoints chain to
//! (Amazon Root CA 1-4, Starfield Services G2). Only certificates rustls accepts as trust
//! anchors are passed on: the SDK treats an unparsable custom certificate as a bug and panics.

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use base64::Engine as _;
use rustls::pki_types::CertificateDer;

/// Where the trusted roots came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The environment's own (`SSL_CERT_FILE`, `SSL_CERT_DIR`, or a well-known bundle path).
    System,
    /// Mozilla's, compiled into this binary: the environment has none.
    CompiledIn,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::System => "system",
            Source::CompiledIn => "compiled-in",
        }
    }
}

/// The roots the function trusts: where from, and as one PEM bundle.
#[derive(Debug, Clone)]
pub struct Roots {
    pub source: Source,
    pub count: usize,
    pub pem: Vec<u8>,
}

/// The certificates of `certs` that rustls takes as trust anchors, PEM-encoded.
fn usable_pem(certs: &[CertificateDer<'_>]) -> (usize, Vec<u8>) {
    let mut pem = Vec::new();
    let mut count = 0;
    for cert in certs {
        if rustls::RootCertStore::empty().add(cert.clone()).is_err() {
            continue;
        }
        count += 1;
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        for line in b64.as_bytes().chunks(64) {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    (count, pem)
}

/// The system's usable roots when there are any, else the compiled-in ones.
pub fn choose(system: &[CertificateDer<'_>]) -> Roots {
    let (count, pem) = usable_pem(system);
    if count > 0 {
        return Roots {
            source: Source::System,
            count,
            pem,
        };
    }
    let (count, pem) = usable_pem(webpki_root_certs::TLS_SERVER_ROOT_CERTS);
    Roots {
        source: Source::CompiledIn,
        count,
        pem,
    }
}

/// Reads the environment's roots as the SDK would (`rustls-native-certs`), and chooses.
pub fn load() -> Roots {
    let found = rustls_native_certs::load_native_certs();
    if !found.errors.is_empty() && found.certs.is_empty() {
        tracing::debug!(errors = ?found.errors, "no system root certificates");
    }
    choose(&found.certs)
}

/// The SDK's default HTTPS client (rustls with aws-lc, proxy settings from the environment, as
/// `aws-config` builds it for this behaviour version) with `roots` as its only trust anchors.
pub fn https_client(roots: &Roots) -> aws_sdk_s3::config::SharedHttpClient {
    let trust = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(roots.pem.clone());
    let context = TlsContext::builder().with_trust_store(trust).build();
    // Building a context from a trust store cannot fail today; if it ever does, the SDK's own
    // default is the nearest thing (it then reads the system's roots itself).
    let context = context.unwrap_or_default();
    Builder::new().build_with_connector_fn(move |settings, components| {
        let mut conn = ConnectorBuilder::default()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .tls_context(context.clone());
        conn.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            conn.set_sleep_impl(components.sleep_impl());
        }
        conn.set_proxy_config(Some(ProxyConfig::from_env()));
        conn.build()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_system_roots_the_compiled_in_ones_are_used() {
        let roots = choose(&[]);
        assert_eq!(roots.source, Source::CompiledIn);
        // Mozilla's list holds well over a hundred roots; every one is usable by rustls.
        assert_eq!(roots.count, webpki_root_certs::TLS_SERVER_ROOT_CERTS.len());
        assert!(roots.count > 100, "{}", roots.count);
        use rustls::pki_types::pem::PemObject as _;
        let parsed = CertificateDer::pem_slice_iter(&roots.pem)
            .collect::<Result<Vec<_>, _>>()
            .expect("the PEM bundle parses");
        assert_eq!(parsed.len(), roots.count);
        assert_eq!(
            parsed[0].as_ref(),
            webpki_root_certs::TLS_SERVER_ROOT_CERTS[0].as_ref()
        );
    }

    /// AWS endpoints chain to Amazon's roots (and to Starfield's for older chains): the
    /// compiled-in set must hold them.
    #[test]
    fn the_compiled_in_roots_hold_amazons() {
        // "Amazon Root CA 1" as it appears in the certificate's subject (DER UTF8String).
        let needle = b"Amazon Root CA 1";
        let found = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .filter(|c| c.as_ref().windows(needle.len()).any(|w| w == needle))
            .count();
        assert!(found >= 1);
    }

    #[test]
    fn system_roots_win_and_unusable_ones_are_dropped() {
        let one = webpki_root_certs::TLS_SERVER_ROOT_CERTS[3].clone();
        let junk = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
        let roots = choose(&[junk.clone(), one]);
        assert_eq!(roots.source, Source::System);
        assert_eq!(roots.count, 1);
        // Only junk: as if there were none.
        assert_eq!(choose(&[junk]).source, Source::CompiledIn);
    }
}

//! Scrubs credentials and request signatures out of every log line before it leaves the
//! process.
//!
//! Why at the writer and not with filters: `-vvv`, `THUMBCTL_LOG` or `RUST_LOG` turn on the SDK's own
//! debug and trace events, which print resolved identities (with the access key ID), canonical
//! requests (with the session token header) and request URLs (with presigned signatures).
//! Turning those events off would take away the one tool a user has to debug a signing or
//! endpoint problem; scrubbing the bytes where every event, ours or the SDK's, is written keeps
//! them useful and makes "no secret in a log" hold at every level.

use std::borrow::Cow;
use std::io::Write;
use std::sync::{LazyLock, RwLock};

use regex::Regex;

/// What replaces a secret.
pub const MARK: &str = "** redacted **";

/// Values shorter than this are not registered: real access key IDs are 20 characters and
/// secrets 40, while emulators accept placeholders like `test` that would otherwise blank out
/// every occurrence of a common word.
const MIN_SECRET_LEN: usize = 16;

/// The credential values in use, registered once they are resolved.
static KNOWN: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Shapes of secrets that are recognisable without knowing them: signature, credential and
/// token parameters of presigned URLs, the signature and token in signed headers, and access
/// key IDs (long-term `AKIA`, temporary `ASIA`).
static PATTERNS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (
            r#"(?i)(x-amz-(?:signature|credential|security-token)=)[^&\s"'<>*][^&\s"'<>]*"#,
            "${1}** redacted **",
        ),
        (
            r#"(?i)(x-amz-security-token["']?\s*[:=]\s*["']?)[^\s"',;&*][^\s"',;&]*"#,
            "${1}** redacted **",
        ),
        (r"(Signature=)[0-9a-fA-F]{16,}", "${1}** redacted **"),
        (r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b", MARK),
    ]
    .into_iter()
    .filter_map(|(re, with)| Regex::new(re).ok().map(|re| (re, with)))
    .collect()
});

/// Remembers the values of the credentials in use so that they are scrubbed verbatim too.
pub fn register(values: &[&str]) {
    let Ok(mut known) = KNOWN.write() else {
        return;
    };
    for v in values {
        if v.len() >= MIN_SECRET_LEN && !known.iter().any(|k| k == v) {
            known.push((*v).to_owned());
        }
    }
}

/// The text with every known or recognisable secret replaced by [`MARK`].
pub fn scrub(text: &str) -> Cow<'_, str> {
    // Patterns first: they take a whole parameter value at once; known values then catch the
    // rest. Values that the SDK already redacted (`** redacted (length=N) **`) are left alone.
    let mut out = Cow::Borrowed(text);
    for (re, with) in PATTERNS.iter() {
        if let Cow::Owned(s) = re.replace_all(&out, *with) {
            out = Cow::Owned(s);
        }
    }
    if let Ok(known) = KNOWN.read() {
        for k in known.iter() {
            if out.contains(k.as_str()) {
                out = Cow::Owned(out.replace(k.as_str(), MARK));
            }
        }
    }
    out
}

/// Where scrubbed log lines go.
#[derive(Debug, Clone, Copy)]
pub enum Sink {
    /// The Lambda's logs: CloudWatch reads the function's standard output.
    Stdout,
    /// thumbctl's logs, apart from its results on standard output.
    Stderr,
}

/// The log writer: `sink`, scrubbed. The fmt subscriber formats each event into one buffer and
/// writes it in one call, so a secret is never split across two writes.
#[derive(Debug, Clone, Copy)]
pub struct Scrubbed(pub Sink);

impl Write for Scrubbed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let clean = scrub(&text);
        match self.0 {
            Sink::Stdout => std::io::stdout().write_all(clean.as_bytes())?,
            Sink::Stderr => std::io::stderr().write_all(clean.as_bytes())?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.0 {
            Sink::Stdout => std::io::stdout().flush(),
            Sink::Stderr => std::io::stderr().flush(),
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Scrubbed {
    type Writer = Scrubbed;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

/// Resolves the credentials `sdk` gives and registers their values. The error, if none could
/// be loaded, is the provider chain's message with its causes, on one line.
pub async fn register_credentials(sdk: &aws_config::SdkConfig) -> Result<(), String> {
    use aws_sdk_s3::config::ProvideCredentials;
    let Some(provider) = sdk.credentials_provider() else {
        return Err("no credentials provider is configured".into());
    };
    match provider.provide_credentials().await {
        Ok(c) => {
            let token = c.session_token().unwrap_or_default();
            register(&[c.access_key_id(), c.secret_access_key(), token]);
            Ok(())
        }
        Err(e) => {
            let mut msg = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                source = s.source();
            }
            Err(msg)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_presigned_parameters_signatures_and_key_ids() {
        let url = "GET http://h/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAABCDEFGHIJKLMNOP%2F20261126%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261126T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Security-Token=FwoGZXIvYXdzEJr%2F%2F&X-Amz-Signature=3f1c0a9b2e";
        let s = scrub(url);
        assert!(!s.contains("AKIAABCDEFGHIJKLMNOP"), "{s}");
        assert!(!s.contains("3f1c0a9b2e"), "{s}");
        assert!(!s.contains("FwoGZXIvYXdzEJr"), "{s}");
        // What is not secret stays readable.
        assert!(s.contains("X-Amz-Expires=3600&"), "{s}");
        assert!(s.contains("X-Amz-Signature=** redacted **"), "{s}");
        assert!(s.contains("X-Amz-Credential=** redacted **&"), "{s}");
        // Already redacted by the SDK: not redacted twice.
        let sdk = "\"x-amz-security-token\": ** redacted (length=36) **";
        assert_eq!(scrub(sdk), sdk);

        let auth = "authorization: AWS4-HMAC-SHA256 Credential=ASIAABCDEFGHIJKLMNOP/20261126/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0123456789abcdef0123456789abcdef";
        let s = scrub(auth);
        assert!(!s.contains("ASIAABCDEFGHIJKLMNOP"), "{s}");
        assert!(!s.contains("0123456789abcdef0123"), "{s}");
        assert!(s.contains("SignedHeaders=host"), "{s}");

        let canonical = "x-amz-date:20261126T000000Z\nx-amz-security-token:IQoJb3JpZ2luX2VjEJr\n";
        let s = scrub(canonical);
        assert!(!s.contains("IQoJb3JpZ2luX2VjEJr"), "{s}");
        assert!(s.contains("x-amz-date:20261126T000000Z"), "{s}");
    }

    #[test]
    fn scrubs_registered_values_but_not_short_placeholders() {
        register(&["wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzSECRET", "test"]);
        let s = scrub("secret=wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzSECRET in a test");
        assert_eq!(s, format!("secret={MARK} in a test"));
    }
}

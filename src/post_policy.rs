//! A presigned S3 POST: the HTML-form upload whose policy S3 enforces (size, type, key,
//! expiry). The SDK has no presigned POST, so the policy document is built here and signed
//! with `aws-sigv4`'s own SigV4 key derivation and HMAC; no cryptography is written here.
//!
//! Pure: time, credentials and the endpoint come in as values, so the document can be tested.

use std::time::SystemTime;

use serde_json::{Value, json};
use time::OffsetDateTime;

/// What S3 substitutes, in a POST's `key` field, with the uploaded file's name.
pub const FILENAME_VARIABLE: &str = "${filename}";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PostPolicyError {
    #[error(
        "the key `{0}` has nothing before ${{filename}}: the form could then overwrite any object in the bucket.\n  hint: give a prefix, e.g. 'uploads/${{filename}}'"
    )]
    EmptyPrefix(String),
    #[error(
        "the key `{0}` has ${{filename}} elsewhere than at its end; S3 substitutes the uploaded file's name only there.\n  hint: put it last, e.g. 'uploads/${{filename}}'"
    )]
    FilenameNotLast(String),
    #[error(
        "the key is empty.\n  hint: give the object's key, or a prefix ending in ${{filename}}"
    )]
    EmptyKey,
    #[error(
        "--content-type `{0}` is not a media type like image/jpeg.\n  hint: pass the exact type the uploads must have, or leave it out to accept any image/*"
    )]
    BadContentType(String),
}

/// Which keys the form may write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRule {
    /// Exactly this key.
    Exact(String),
    /// Any key starting with this prefix; the form's `key` field is `<prefix>${filename}`.
    Prefix(String),
}

impl KeyRule {
    /// An exact key, or a prefix when the key ends in `${filename}`. A key that is only
    /// `${filename}` is refused: its policy would let the form overwrite any object.
    pub fn from_key(key: &str) -> Result<KeyRule, PostPolicyError> {
        if key.is_empty() {
            return Err(PostPolicyError::EmptyKey);
        }
        match key.strip_suffix(FILENAME_VARIABLE) {
            Some(prefix) if prefix.contains(FILENAME_VARIABLE) => {
                Err(PostPolicyError::FilenameNotLast(key.to_owned()))
            }
            Some("") => Err(PostPolicyError::EmptyPrefix(key.to_owned())),
            Some(prefix) => Ok(KeyRule::Prefix(prefix.to_owned())),
            None if key.contains(FILENAME_VARIABLE) => {
                Err(PostPolicyError::FilenameNotLast(key.to_owned()))
            }
            None => Ok(KeyRule::Exact(key.to_owned())),
        }
    }

    /// The value of the form's `key` field.
    pub fn field(&self) -> String {
        match self {
            KeyRule::Exact(k) => k.clone(),
            KeyRule::Prefix(p) => format!("{p}{FILENAME_VARIABLE}"),
        }
    }
}

/// Which Content-Type the form's `Content-Type` field must carry; S3 stores it as the
/// object's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeRule {
    /// Exactly this type; the form carries it as a fixed field.
    Exact(String),
    /// Any type starting with this (`image/`); the uploader fills the field in.
    Prefix(String),
}

impl TypeRule {
    /// `--content-type` makes the rule exact; without it, any image type.
    pub fn from_option(content_type: Option<&str>) -> Result<TypeRule, PostPolicyError> {
        match content_type {
            None => Ok(TypeRule::Prefix("image/".into())),
            Some(ct) => {
                let valid = ct.split_once('/').is_some_and(|(t, s)| {
                    !t.is_empty() && !s.is_empty() && !ct.contains([',', ' ', '\r', '\n'])
                });
                if valid {
                    Ok(TypeRule::Exact(ct.to_owned()))
                } else {
                    Err(PostPolicyError::BadContentType(ct.to_owned()))
                }
            }
        }
    }
}

/// The credentials the form is signed with (from the SDK's credentials provider).
pub struct SigningCredentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: Option<&'a str>,
}

pub struct PostRequest<'a> {
    pub bucket: &'a str,
    pub region: &'a str,
    pub key: &'a KeyRule,
    pub content_type: &'a TypeRule,
    pub max_bytes: u64,
    pub now: SystemTime,
    pub expires_in: std::time::Duration,
}

/// The signed form: post `fields` (in this order) and then the file to `url`.
#[derive(Debug, Clone)]
pub struct PresignedPost {
    pub fields: Vec<(String, String)>,
    /// The decoded policy document, for display and tests.
    pub policy: Value,
    /// ISO 8601, as in the policy.
    pub expires_at: String,
}

fn amz_date(t: OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn iso8601(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Builds and signs the POST policy. Every field the form carries is covered by a condition
/// (S3 refuses a form with an uncovered field), and `content-length-range` starts at 1 so an
/// empty upload is refused too.
pub fn presign_post(req: &PostRequest<'_>, creds: &SigningCredentials<'_>) -> PresignedPost {
    let now = OffsetDateTime::from(req.now);
    let expires = now + req.expires_in;
    let date = amz_date(now);
    let credential = format!(
        "{}/{}/{}/s3/aws4_request",
        creds.access_key_id,
        &date[..8],
        req.region
    );
    let key_field = req.key.field();
    let key_condition = match req.key {
        KeyRule::Exact(k) => json!(["eq", "$key", k]),
        KeyRule::Prefix(p) => json!(["starts-with", "$key", p]),
    };
    let type_condition = match req.content_type {
        TypeRule::Exact(t) => json!(["eq", "$Content-Type", t]),
        TypeRule::Prefix(p) => json!(["starts-with", "$Content-Type", p]),
    };
    let mut conditions = vec![
        json!({"bucket": req.bucket}),
        key_condition,
        type_condition,
        json!(["content-length-range", 1, req.max_bytes]),
        json!({"x-amz-algorithm": "AWS4-HMAC-SHA256"}),
        json!({"x-amz-credential": credential}),
        json!({"x-amz-date": date}),
    ];
    if let Some(token) = creds.session_token {
        conditions.push(json!({"x-amz-security-token": token}));
    }
    let expires_at = iso8601(expires);
    let policy = json!({"expiration": expires_at, "conditions": conditions});
    // The string to sign of a POST is the base64 of the policy exactly as sent.
    let encoded = aws_smithy_types::base64::encode(policy.to_string());
    let signing_key = aws_sigv4::sign::v4::generate_signing_key(
        creds.secret_access_key,
        req.now,
        req.region,
        "s3",
    );
    let signature = aws_sigv4::sign::v4::calculate_signature(signing_key, encoded.as_bytes());

    let mut fields = vec![("key".to_owned(), key_field)];
    if let TypeRule::Exact(t) = req.content_type {
        fields.push(("Content-Type".into(), t.clone()));
    }
    fields.push(("x-amz-algorithm".into(), "AWS4-HMAC-SHA256".into()));
    fields.push(("x-amz-credential".into(), credential));
    fields.push(("x-amz-date".into(), date));
    if let Some(token) = creds.session_token {
        fields.push(("x-amz-security-token".into(), token.to_owned()));
    }
    fields.push(("policy".into(), encoded));
    fields.push(("x-amz-signature".into(), signature));
    PresignedPost {
        fields,
        policy,
        expires_at,
    }
}

/// Where the form is posted. On AWS the bucket's virtual-hosted endpoint, under the
/// partition's domain; with an endpoint override (an emulator), path-style on that endpoint,
/// as the SDK addresses it there.
pub fn post_url(bucket: &str, region: &str, endpoint: Option<&str>) -> String {
    match endpoint {
        Some(e) => format!("{}/{bucket}", e.trim_end_matches('/')),
        None => format!(
            "https://{bucket}.s3.{region}.{}/",
            crate::stack::dns_suffix_of(region)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn creds(token: Option<&'static str>) -> SigningCredentials<'static> {
        SigningCredentials {
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: "secret",
            session_token: token,
        }
    }

    // 2015-12-29T00:00:00Z
    const T: u64 = 1_451_347_200;

    fn build(key: &KeyRule, ct: &TypeRule, token: Option<&'static str>) -> PresignedPost {
        presign_post(
            &PostRequest {
                bucket: "b-src",
                region: "eu-west-1",
                key,
                content_type: ct,
                max_bytes: 20_000_000,
                now: UNIX_EPOCH + Duration::from_secs(T),
                expires_in: Duration::from_secs(15 * 60),
            },
            &creds(token),
        )
    }

    fn field<'a>(p: &'a PresignedPost, name: &str) -> &'a str {
        p.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no field {name}"))
    }

    #[test]
    fn policy_document_has_every_condition() {
        let key = KeyRule::from_key("uploads/${filename}").unwrap();
        let p = build(&key, &TypeRule::from_option(None).unwrap(), None);
        assert_eq!(
            p.policy,
            json!({
                "expiration": "2015-12-29T00:15:00.000Z",
                "conditions": [
                    {"bucket": "b-src"},
                    ["starts-with", "$key", "uploads/"],
                    ["starts-with", "$Content-Type", "image/"],
                    ["content-length-range", 1, 20_000_000],
                    {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
                    {"x-amz-credential": "AKIDEXAMPLE/20151229/eu-west-1/s3/aws4_request"},
                    {"x-amz-date": "20151229T000000Z"},
                ]
            })
        );
        let names: Vec<_> = p.fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "key",
                "x-amz-algorithm",
                "x-amz-credential",
                "x-amz-date",
                "policy",
                "x-amz-signature"
            ]
        );
        assert_eq!(field(&p, "key"), "uploads/${filename}");
        // The policy field is the document, base64; the signature signs exactly that string.
        let decoded = aws_smithy_types::base64::decode(field(&p, "policy")).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&decoded).unwrap(), p.policy);
        let k = aws_sigv4::sign::v4::generate_signing_key(
            "secret",
            UNIX_EPOCH + Duration::from_secs(T),
            "eu-west-1",
            "s3",
        );
        assert_eq!(
            field(&p, "x-amz-signature"),
            aws_sigv4::sign::v4::calculate_signature(k, field(&p, "policy").as_bytes())
        );
        assert_eq!(field(&p, "x-amz-signature").len(), 64);
    }

    #[test]
    fn exact_key_type_and_session_token_are_conditions_and_fields() {
        let key = KeyRule::from_key("a/b.png").unwrap();
        let ct = TypeRule::from_option(Some("image/png")).unwrap();
        let p = build(&key, &ct, Some("TOKEN"));
        let conds = p.policy["conditions"].as_array().unwrap();
        assert!(conds.contains(&json!(["eq", "$key", "a/b.png"])));
        assert!(conds.contains(&json!(["eq", "$Content-Type", "image/png"])));
        assert!(conds.contains(&json!({"x-amz-security-token": "TOKEN"})));
        assert_eq!(field(&p, "Content-Type"), "image/png");
        assert_eq!(field(&p, "x-amz-security-token"), "TOKEN");
        assert_eq!(p.fields.last().unwrap().0, "x-amz-signature");
        // A different secret or policy gives a different signature.
        let other = build(&KeyRule::from_key("a/c.png").unwrap(), &ct, Some("TOKEN"));
        assert_ne!(
            field(&p, "x-amz-signature"),
            field(&other, "x-amz-signature")
        );
    }

    #[test]
    fn key_rules() {
        assert_eq!(
            KeyRule::from_key("x/${filename}"),
            Ok(KeyRule::Prefix("x/".into()))
        );
        assert_eq!(
            KeyRule::from_key("x/y.jpg"),
            Ok(KeyRule::Exact("x/y.jpg".into()))
        );
        assert!(matches!(
            KeyRule::from_key("${filename}"),
            Err(PostPolicyError::EmptyPrefix(_))
        ));
        assert!(matches!(
            KeyRule::from_key("${filename}/x"),
            Err(PostPolicyError::FilenameNotLast(_))
        ));
        assert!(matches!(
            KeyRule::from_key("a/${filename}${filename}"),
            Err(PostPolicyError::FilenameNotLast(_))
        ));
        assert_eq!(KeyRule::from_key(""), Err(PostPolicyError::EmptyKey));
        assert!(TypeRule::from_option(Some("image/png,text/html")).is_err());
        assert!(TypeRule::from_option(Some("png")).is_err());
    }

    #[test]
    fn urls_follow_partition_and_endpoint() {
        assert_eq!(
            post_url("b", "eu-west-1", None),
            "https://b.s3.eu-west-1.amazonaws.com/"
        );
        assert_eq!(
            post_url("b", "cn-north-1", None),
            "https://b.s3.cn-north-1.amazonaws.com.cn/"
        );
        assert_eq!(
            post_url("b", "us-east-1", Some("http://127.0.0.1:5000/")),
            "http://127.0.0.1:5000/b"
        );
    }
}

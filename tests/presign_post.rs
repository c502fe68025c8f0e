//! `presign --post`: the form a browser uploads with, posted for real.
//!
//! moto accepts any POST form without checking its policy or signature (the last check below
//! shows it), so the forms go through `scripts/aws_proxy.py --behave post-policy`, which
//! checks them as S3 does (signature, expiry, every condition, uncovered fields) in Python,
//! independently of thumbctl's Rust, and forwards only a valid form to moto. Every outcome is
//! read back from moto directly.

mod common;

use std::process::Command;

use common::aws_proxy::AwsProxy;
use common::*;
use serde_json::Value;

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// A PNG of noise: it does not compress, so its size is about 3 bytes a pixel.
fn noise_png(w: u32, h: u32) -> Vec<u8> {
    let mut state: u32 = 0x9e37_79b9;
    let img = image::RgbImage::from_fn(w, h, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        image::Rgb([state as u8, (state >> 8) as u8, (state >> 16) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// The form fields thumbctl printed, with `Content-Type` (when the uploader chooses it)
/// after the key, as a browser form would have them.
fn form_fields(presigned: &Value, content_type: Option<&str>) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = presigned["fields"]
        .as_object()
        .expect("fields")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string field").to_owned()))
        .collect();
    if let Some(ct) = content_type {
        fields.push(("Content-Type".into(), ct.into()));
    }
    fields
}

fn set(fields: &mut [(String, String)], name: &str, value: &str) {
    let f = fields.iter_mut().find(|(k, _)| k == name).expect(name);
    f.1 = value.to_owned();
}

/// A multipart/form-data body as browsers send it: the fields, then the file, then `after`
/// (which S3 ignores).
fn multipart(
    fields: &[(String, String)],
    filename: &str,
    file: &[u8],
    after: &[(&str, &str)],
) -> (String, Vec<u8>) {
    let boundary = "----thumbctl-test-7d2f9c";
    let mut body = Vec::new();
    let field = |body: &mut Vec<u8>, k: &str, v: &str| {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    };
    for (k, v) in fields {
        field(&mut body, k, v);
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(b"\r\n");
    for (k, v) in after {
        field(&mut body, k, v);
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn post(
    url: &str,
    fields: &[(String, String)],
    filename: &str,
    file: &[u8],
    after: &[(&str, &str)],
) -> (u16, String) {
    let (ct, body) = multipart(fields, filename, file, after);
    let resp = reqwest::Client::new()
        .post(url)
        .header("Content-Type", ct)
        .body(body)
        .send()
        .await
        .expect("POST the form");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

async fn object(c: &Clients, bucket: &str, key: &str) -> Option<(Vec<u8>, Option<String>)> {
    let out =
        c.s3.get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .ok()?;
    let ct = out.content_type().map(str::to_owned);
    let bytes = out.body.collect().await.ok()?.into_bytes().to_vec();
    Some((bytes, ct))
}

fn refused(answer: &(u16, String), status: u16, code: &str, detail: &str) {
    assert_eq!(answer.0, status, "{answer:?}");
    assert!(
        answer.1.contains(&format!("<Code>{code}</Code>")) && answer.1.contains(detail),
        "expected {code} ({detail}), got {answer:?}"
    );
}

/// One stack, the post-policy proxy in front of moto, and the default form (any image under
/// `uploads/`, at most 10 KB); each test below starts its own, so that a first failure does
/// not hide the others.
struct Fixture {
    c: Clients,
    dir: tempfile::TempDir,
    stack: String,
    bucket: String,
    proxy: AwsProxy,
    form: Value,
    url: String,
}

impl Fixture {
    async fn new(name: &str) -> Fixture {
        let c = clients().await;
        let dir = tempfile::tempdir().unwrap();
        let stack = stack_name(name);
        ok(dir.path(), &stack, &["up", "--image-uri", IMAGE]);
        let st = state_json(dir.path(), &stack);
        let bucket = st["resources"]["source-bucket"]["name"]
            .as_str()
            .unwrap()
            .to_owned();
        let proxy = AwsProxy::start("post-policy", 1.5);
        let mut f = Fixture {
            c,
            dir,
            stack,
            bucket,
            proxy,
            form: Value::Null,
            url: String::new(),
        };
        f.form = f.presign_json(&["uploads/${filename}", "--post", "--max-size", "10KB"]);
        f.url = f.form["url"].as_str().unwrap().to_owned();
        f
    }

    fn presign(&self, args: &[&str]) -> std::process::Output {
        let out = thumbctl_cmd(self.dir.path(), &self.stack, args)
            .env("AWS_ENDPOINT_URL", &self.proxy.url)
            .output()
            .unwrap();
        assert!(out.status.success(), "presign {args:?}: {}", stderr(&out));
        out
    }

    fn presign_json(&self, args: &[&str]) -> Value {
        let mut a = vec!["presign"];
        a.extend(args);
        a.extend(["--output", "json"]);
        serde_json::from_slice(&self.presign(&a).stdout).expect("one JSON document")
    }

    async fn object(&self, key: &str) -> Option<(Vec<u8>, Option<String>)> {
        object(&self.c, &self.bucket, key).await
    }

    /// Destroys the stack and checks that nothing of it is left.
    async fn finish(self) {
        drop(self.proxy);
        ok(self.dir.path(), &self.stack, &["destroy", "--yes"]);
        assert!(leftovers(&self.c, &self.stack).await.is_empty());
    }
}

/// An image under the cap that the form is for.
fn small() -> Vec<u8> {
    jpeg(40, 40)
}

/// An image over the form's 10 KB cap.
fn big() -> Vec<u8> {
    let big = noise_png(80, 80);
    assert!(big.len() > 10_000 && small().len() < 10_000);
    big
}

#[tokio::test(flavor = "multi_thread")]
async fn the_form_names_the_bucket_cap_key_and_expiry() {
    let f = Fixture::new("postform").await;
    assert_eq!(
        f.url,
        format!("{}/{}", f.proxy.url, f.bucket),
        "path-style on the endpoint"
    );
    assert_eq!(f.form["max_bytes"], 10_000);
    assert_eq!(f.form["key"], "uploads/${filename}");
    assert_eq!(f.form["content_type_prefix"], "image/");
    assert!(f.form["expires_at"].as_str().unwrap().ends_with(".000Z"));
    f.finish().await;
}

/// (a) An image under the cap: S3's 204, and moto holds it, bytes and type, at the key S3
/// makes of ${filename}. (b) Over the cap, or empty: refused, and nothing in moto.
#[tokio::test(flavor = "multi_thread")]
async fn an_image_under_the_cap_lands_and_one_over_it_or_empty_is_refused() {
    let f = Fixture::new("postcap").await;
    let fields = form_fields(&f.form, Some("image/jpeg"));
    let answer = post(&f.url, &fields, "cat.jpg", &small(), &[]).await;
    assert_eq!(answer.0, 204, "{answer:?}");
    let (bytes, ct) = f
        .object("uploads/cat.jpg")
        .await
        .expect("uploads/cat.jpg is in moto");
    assert_eq!(bytes, small());
    assert_eq!(ct.as_deref(), Some("image/jpeg"));

    let png_fields = form_fields(&f.form, Some("image/png"));
    let answer = post(&f.url, &png_fields, "big.png", &big(), &[]).await;
    refused(
        &answer,
        400,
        "EntityTooLarge",
        "<MaxSizeAllowed>10000</MaxSizeAllowed>",
    );
    assert!(f.object("uploads/big.png").await.is_none());
    // Nor an empty file: the range starts at 1.
    let answer = post(&f.url, &fields, "empty.jpg", b"", &[]).await;
    refused(
        &answer,
        400,
        "EntityTooSmall",
        "<MinSizeAllowed>1</MinSizeAllowed>",
    );
    assert!(f.object("uploads/empty.jpg").await.is_none());
    assert!(f.proxy.fired("post-policy:accepted").await >= 1);
    assert!(f.proxy.fired("post-policy:EntityTooLarge").await >= 1);
    f.finish().await;
}

/// (c) Not an image type, also not hidden in a list; the type must come before the file (S3
/// ignores fields after it); a key outside the prefix; a field the policy does not cover.
#[tokio::test(flavor = "multi_thread")]
async fn type_key_and_extra_fields_are_held_to_the_policy() {
    let f = Fixture::new("postfields").await;
    let fields = form_fields(&f.form, Some("image/jpeg"));
    for (ct, name) in [("text/html", "c1.html"), ("image/png,text/html", "c2.png")] {
        let answer = post(&f.url, &form_fields(&f.form, Some(ct)), name, &small(), &[]).await;
        refused(
            &answer,
            403,
            "AccessDenied",
            "Invalid according to Policy: Policy Condition failed: [\"starts-with\", \"$Content-Type\", \"image/\"]",
        );
        assert!(f.object(&format!("uploads/{name}")).await.is_none());
    }
    let answer = post(
        &f.url,
        &form_fields(&f.form, None),
        "late.jpg",
        &small(),
        &[("Content-Type", "image/jpeg")],
    )
    .await;
    refused(&answer, 403, "AccessDenied", "Policy Condition failed");
    assert!(f.object("uploads/late.jpg").await.is_none());
    let mut elsewhere = fields.clone();
    set(&mut elsewhere, "key", "thumbnails/cat.jpg");
    let answer = post(&f.url, &elsewhere, "cat.jpg", &small(), &[]).await;
    refused(&answer, 403, "AccessDenied", "\"$key\", \"uploads/\"");
    assert!(f.object("thumbnails/cat.jpg").await.is_none());
    let mut public = fields.clone();
    public.push(("acl".into(), "public-read".into()));
    let answer = post(&f.url, &public, "pub.jpg", &small(), &[]).await;
    refused(&answer, 403, "AccessDenied", "Extra input fields: acl");
    assert!(f.object("uploads/pub.jpg").await.is_none());
    f.finish().await;
}

/// (d) A policy with a raised cap no longer matches its signature.
#[tokio::test(flavor = "multi_thread")]
async fn a_policy_with_a_raised_cap_fails_its_signature() {
    let f = Fixture::new("posttamper").await;
    let policy = f.form["fields"]["policy"].as_str().unwrap();
    let doc = String::from_utf8(aws_smithy_types::base64::decode(policy).unwrap()).unwrap();
    assert!(doc.contains("[\"content-length-range\",1,10000]"), "{doc}");
    let raised = doc.replace(
        "[\"content-length-range\",1,10000]",
        "[\"content-length-range\",1,100000000]",
    );
    let mut tampered = form_fields(&f.form, Some("image/png"));
    set(
        &mut tampered,
        "policy",
        &aws_smithy_types::base64::encode(raised),
    );
    let answer = post(&f.url, &tampered, "big.png", &big(), &[]).await;
    refused(&answer, 403, "SignatureDoesNotMatch", "signature");
    assert!(f.object("uploads/big.png").await.is_none());
    assert!(f.proxy.fired("post-policy:SignatureDoesNotMatch").await >= 1);
    f.finish().await;
}

/// An exact key and type are fixed fields of the form: the upload lands there whatever the
/// file is called, and another key is refused.
#[tokio::test(flavor = "multi_thread")]
async fn an_exact_key_and_type_are_fixed_fields() {
    let f = Fixture::new("postexact").await;
    let exact = f.presign_json(&[
        "exact/p.png",
        "--post",
        "--content-type",
        "image/png",
        "--max-size",
        "1MiB",
    ]);
    assert_eq!(exact["fields"]["Content-Type"], "image/png");
    assert_eq!(exact["max_bytes"], 1_048_576);
    let exact_fields = form_fields(&exact, None);
    let answer = post(&f.url, &exact_fields, "whatever.png", &big(), &[]).await;
    assert_eq!(answer.0, 204, "{answer:?}");
    let (bytes, ct) = f
        .object("exact/p.png")
        .await
        .expect("exact/p.png is in moto");
    assert_eq!(bytes, big());
    assert_eq!(ct.as_deref(), Some("image/png"));
    let mut renamed = exact_fields.clone();
    set(&mut renamed, "key", "exact/q.png");
    let answer = post(&f.url, &renamed, "q.png", &big(), &[]).await;
    refused(
        &answer,
        403,
        "AccessDenied",
        "[\"eq\", \"$key\", \"exact/p.png\"]",
    );
    assert!(f.object("exact/q.png").await.is_none());
    f.finish().await;
}

/// The text output's curl command works as printed (a real multipart client).
#[tokio::test(flavor = "multi_thread")]
async fn the_printed_curl_command_uploads() {
    let f = Fixture::new("postcurl").await;
    let text = f.presign(&[
        "presign",
        "curl/${filename}",
        "--post",
        "--max-size",
        "20KB",
    ]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.starts_with(&format!("POST {}\n", f.url)), "{text}");
    assert!(text.contains("  key: curl/${filename}\n"), "{text}");
    assert!(
        text.contains("Content-Type: any type starting with image/"),
        "{text}"
    );
    let curl_line = text
        .lines()
        .find(|l| l.starts_with("curl "))
        .expect("a curl example");
    assert!(
        curl_line.contains(" -F file=@photo.jpg "),
        "the file goes last: {curl_line}"
    );
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("photo.jpg"), small()).unwrap();
    let ran = Command::new("sh")
        .arg("-c")
        .arg(format!("{curl_line} -s -o /dev/null -w '%{{http_code}}'"))
        .current_dir(work.path())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "204", "{ran:?}");
    let (bytes, _) = f
        .object("curl/photo.jpg")
        .await
        .expect("curl/photo.jpg is in moto");
    assert_eq!(bytes, small());
    f.finish().await;
}

/// (e) An expired form. The form lives 1 s; the wait is for the expiry, asserts no timing.
#[tokio::test(flavor = "multi_thread")]
async fn an_expired_form_is_refused() {
    let f = Fixture::new("postexpired").await;
    let short = f.presign_json(&["uploads/${filename}", "--post", "--expires", "1s"]);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let answer = post(
        &f.url,
        &form_fields(&short, Some("image/jpeg")),
        "late.jpg",
        &small(),
        &[],
    )
    .await;
    refused(&answer, 403, "AccessDenied", "Policy expired");
    assert!(f.object("uploads/late.jpg").await.is_none());
    f.finish().await;
}

/// The proxy, not moto, refuses: moto itself takes the over-size form. Should moto learn to
/// enforce POST policies, this fails and the proxy's behaviour can go.
#[tokio::test(flavor = "multi_thread")]
async fn moto_alone_would_take_the_over_size_form() {
    let f = Fixture::new("postmoto").await;
    let direct = post(
        &format!("{}/{}", endpoint(), f.bucket),
        &form_fields(&f.form, Some("image/png")),
        "big.png",
        &big(),
        &[],
    )
    .await;
    assert!((200..300).contains(&direct.0), "moto took it: {direct:?}");
    assert!(f.object("uploads/big.png").await.is_some());
    f.finish().await;
}

/// Usage errors exit 2 before any AWS work.
#[tokio::test(flavor = "multi_thread")]
async fn bad_presign_options_are_usage_errors() {
    let f = Fixture::new("postusage").await;
    let before = leftovers(&f.c, &f.stack).await;
    for bad in [
        &["presign", "${filename}", "--post"][..],
        &["presign", "a/${filename}/b", "--post"],
        &["presign", "a.jpg", "--post", "--max-size", "6GB"],
        &["presign", "a.jpg", "--post", "--max-size", "0"],
        &["presign", "a.jpg", "--max-size", "1MB"],
        &["presign", "a.jpg", "--post", "--put"],
        &["presign", "a.jpg", "--post", "--content-type", "png"],
    ] {
        let out = thumbctl(f.dir.path(), &f.stack, bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", stderr(&out));
    }
    assert_eq!(leftovers(&f.c, &f.stack).await, before);
    f.finish().await;
}

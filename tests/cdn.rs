//! `up --cdn`: the origin access control, the distribution in front of the destination
//! bucket and the bucket-policy statement, read back from moto; CDN URLs from `get` and
//! `list`; `status`; and `destroy`, which must disable the distribution, wait until that is
//! deployed and only then delete it, resumably.
//!
//! moto says a distribution is Deployed at once and deletes an enabled one; the AWS-behaviour
//! proxy (`cloudfront-in-progress`) answers InProgress for some seconds after each change,
//! however often it is asked, and refuses a delete (and a change without If-Match) as AWS
//! does, so a destroy that does not wait, or polls without backing off, fails here.
//!
//! moto keeps no origin's OriginAccessControlId, so the origin access control is checked in
//! the CreateDistribution request thumbctl sent, as the proxy recorded it. Invalidations are
//! read back from moto (it keeps their paths); the proxy (`invalidations-in-progress`)
//! refuses each new batch for a while first, as AWS does with too many paths in progress.

mod common;

use std::path::Path;

use aws_sdk_cloudfront::types::{
    OriginAccessControlOriginTypes, OriginAccessControlSigningBehaviors,
    OriginAccessControlSigningProtocols, PriceClass, ViewerProtocolPolicy,
};
use aws_sdk_s3::primitives::ByteStream;
use common::aws_proxy::AwsProxy;
use common::*;
use serde_json::Value;

/// The exit code of a crash point (see tests/crash.rs).
const CRASH_EXIT: i32 = 86;

async fn cloudfront() -> aws_sdk_cloudfront::Client {
    aws_sdk_cloudfront::Client::new(&sdk().await)
}

fn entry(dir: &Path, stack: &str, id: &str) -> Value {
    let e = state_json(dir, stack)["resources"][id].clone();
    assert!(e.is_object(), "no {id} recorded");
    e
}

fn extra(dir: &Path, stack: &str, id: &str, key: &str) -> String {
    entry(dir, stack, id)["extra"][key]
        .as_str()
        .unwrap_or_else(|| panic!("{id} records no {key}"))
        .to_owned()
}

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            stderr(out)
        )
    })
}

fn png() -> Vec<u8> {
    let mut img = image::RgbImage::new(24, 16);
    for (x, y, p) in img.enumerate_pixels_mut() {
        *p = image::Rgb([(x * 10) as u8, (y * 15) as u8, 90]);
    }
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}

/// How many distributions moto holds whose comment names `stack`.
async fn distributions_of(cf: &aws_sdk_cloudfront::Client, stack: &str) -> usize {
    let out = cf.list_distributions().send().await.expect("list");
    out.distribution_list()
        .map(|l| {
            l.items()
                .iter()
                .filter(|d| d.comment().contains(&format!("stack {stack}:")))
                .count()
        })
        .unwrap_or(0)
}

/// The CloudFront changes moto accepted through the proxy, as sent.
async fn cloudfront_changes(proxy: &AwsProxy) -> Vec<Value> {
    let text = reqwest::get(format!("{}/__cloudfront", proxy.url))
        .await
        .expect("proxy answers")
        .text()
        .await
        .expect("proxy body");
    serde_json::from_str(&text).expect("a JSON list")
}

/// The text inside the first `<name>...</name>` (or `""` for `<name/>`) of an XML document.
fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    if xml.contains(&format!("<{name}/>")) {
        return Some("");
    }
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    Some(&xml[start..end])
}

/// Every key of the bucket, sorted.
async fn dest_keys(c: &Clients, bucket: &str) -> Vec<String> {
    let out =
        c.s3.list_objects_v2()
            .bucket(bucket)
            .send()
            .await
            .expect("list");
    let mut keys: Vec<String> = out
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    keys.sort();
    keys
}

/// The paths of every invalidation moto holds for the distribution, each sorted, oldest
/// first (moto lists them in the order they were made).
async fn invalidated(cf: &aws_sdk_cloudfront::Client, id: &str) -> Vec<Vec<String>> {
    let list = cf
        .list_invalidations()
        .distribution_id(id)
        .send()
        .await
        .expect("list invalidations");
    let mut all = Vec::new();
    for summary in list
        .invalidation_list()
        .map(|l| l.items())
        .unwrap_or_default()
    {
        let got = cf
            .get_invalidation()
            .distribution_id(id)
            .id(summary.id())
            .send()
            .await
            .expect("invalidation");
        let mut paths: Vec<String> = got
            .invalidation()
            .and_then(|i| i.invalidation_batch())
            .and_then(|b| b.paths())
            .map(|p| p.items().to_vec())
            .unwrap_or_default();
        paths.sort();
        all.push(paths);
    }
    all
}

/// The URL paths of keys as the CDN serves them: each segment percent-encoded.
fn cdn_paths(keys: &[String]) -> Vec<String> {
    let mut paths: Vec<String> = keys
        .iter()
        .map(|k| {
            k.split('/')
                .map(|seg| {
                    percent_encoding::utf8_percent_encode(seg, percent_encoding::NON_ALPHANUMERIC)
                        .to_string()
                        .replace("%2E", ".")
                        .replace("%2D", "-")
                        .replace("%5F", "_")
                        .replace("%7E", "~")
                })
                .fold(String::new(), |p, seg| p + "/" + &seg)
        })
        .collect();
    paths.sort();
    paths
}

#[tokio::test(flavor = "multi_thread")]
async fn up_cdn_serves_thumbnails_through_cloudfront_and_destroy_waits_for_the_disable() {
    let c = clients().await;
    let cf = cloudfront().await;
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("cdn");
    // InProgress for 3 s after each change; invalidations refused for 3 s.
    let proxy = AwsProxy::start("cloudfront-in-progress,invalidations-in-progress", 3.0);
    proxy.ok(
        dir.path(),
        &stack,
        &["up", "--image-uri", IMAGE, "--sizes", "8", "--cdn"],
    );
    let state = state_json(dir.path(), &stack);
    assert_eq!(state["settings"]["cdn"], true, "--cdn is recorded");
    let dst = entry(dir.path(), &stack, "dest-bucket")["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = extra(dir.path(), &stack, "cdn", "id");
    let domain = extra(dir.path(), &stack, "cdn", "domain");
    let oac = extra(dir.path(), &stack, "cdn-access", "id");

    // The distribution, as moto holds it.
    let got = cf
        .get_distribution()
        .id(&id)
        .send()
        .await
        .expect("distribution");
    let d = got.distribution().expect("distribution");
    let arn = format!("arn:aws:cloudfront::{ACCOUNT}:distribution/{id}");
    assert_eq!(d.arn(), arn);
    assert_eq!(d.domain_name(), domain);
    assert_eq!(entry(dir.path(), &stack, "cdn")["arn"], arn.as_str());
    let config = d.distribution_config().expect("config");
    assert!(config.enabled);
    assert!(config.comment.contains(&stack), "{}", config.comment);
    assert_eq!(config.price_class, Some(PriceClass::PriceClass100));
    let origins = config.origins.as_ref().expect("origins");
    assert_eq!(origins.items.len(), 1);
    assert_eq!(
        origins.items[0].domain_name,
        format!("{dst}.s3.us-east-1.amazonaws.com"),
        "the origin is the bucket's regional REST endpoint"
    );
    let behavior = config.default_cache_behavior.as_ref().expect("behaviour");
    assert_eq!(behavior.target_origin_id, origins.items[0].id);
    assert_eq!(
        behavior.viewer_protocol_policy,
        ViewerProtocolPolicy::RedirectToHttps
    );
    assert_eq!(behavior.compress, Some(true));
    assert_eq!(
        behavior.cache_policy_id.as_deref(),
        Some("658327ea-f89d-4fab-a63d-7e88639e58f6")
    );
    // moto keeps no OriginAccessControlId on an origin: what thumbctl sent must carry it, or
    // S3 answers every CloudFront request 403.
    let sent = cloudfront_changes(&proxy).await;
    let creates: Vec<&str> = sent
        .iter()
        .filter(|c| c["action"] == "CreateDistribution")
        .filter_map(|c| c["body"].as_str())
        .collect();
    assert_eq!(creates.len(), 1, "{sent:?}");
    let origin = element(creates[0], "Origin").expect("an origin was sent");
    assert_eq!(
        element(origin, "OriginAccessControlId"),
        Some(oac.as_str()),
        "the origin is signed by the stack's access control: {origin}"
    );
    assert_eq!(
        element(origin, "OriginAccessIdentity"),
        Some(""),
        "and not by a legacy identity: {origin}"
    );

    // The function invalidates what it deletes: its environment names the distribution, and
    // its role may invalidate exactly that one.
    let conf = c
        .lambda
        .get_function_configuration()
        .function_name(
            entry(dir.path(), &stack, "function")["name"]
                .as_str()
                .unwrap(),
        )
        .send()
        .await
        .expect("function");
    let env = conf
        .environment()
        .and_then(|e| e.variables())
        .cloned()
        .unwrap_or_default();
    assert_eq!(env.get("CDN_DISTRIBUTION_ID"), Some(&id));
    let role = entry(dir.path(), &stack, "lambda-role")["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let doc = c
        .iam
        .get_role_policy()
        .role_name(&role)
        .policy_name(
            entry(dir.path(), &stack, "lambda-role-policy")["name"]
                .as_str()
                .unwrap(),
        )
        .send()
        .await
        .expect("role policy");
    let doc: Value = serde_json::from_str(
        &percent_encoding::percent_decode_str(doc.policy_document()).decode_utf8_lossy(),
    )
    .expect("policy JSON");
    let cloudfront: Vec<&Value> = doc["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .filter(|st| st.to_string().contains("cloudfront:"))
        .collect();
    assert_eq!(cloudfront.len(), 1, "{doc}");
    assert_eq!(
        cloudfront[0]["Action"],
        serde_json::json!(["cloudfront:CreateInvalidation"])
    );
    assert_eq!(cloudfront[0]["Resource"], serde_json::json!([arn.as_str()]));

    // The origin access control.
    let got = cf
        .get_origin_access_control()
        .id(&oac)
        .send()
        .await
        .expect("origin access control");
    let o = got
        .origin_access_control()
        .and_then(|o| o.origin_access_control_config())
        .expect("its config");
    assert_eq!(
        o.signing_behavior,
        OriginAccessControlSigningBehaviors::Always
    );
    assert_eq!(
        o.signing_protocol,
        OriginAccessControlSigningProtocols::Sigv4
    );
    assert_eq!(
        o.origin_access_control_origin_type,
        OriginAccessControlOriginTypes::S3
    );

    // The bucket policy: CloudFront may read, for this distribution only.
    let policy =
        c.s3.get_bucket_policy()
            .bucket(&dst)
            .send()
            .await
            .expect("bucket policy");
    let policy: Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    let statements = policy["Statement"].as_array().expect("statements");
    let ours: Vec<&Value> = statements
        .iter()
        .filter(|s| s["Principal"]["Service"] == "cloudfront.amazonaws.com")
        .collect();
    assert_eq!(ours.len(), 1, "{policy}");
    assert_eq!(ours[0]["Effect"], "Allow");
    assert_eq!(ours[0]["Action"], "s3:GetObject");
    assert_eq!(ours[0]["Resource"], format!("arn:aws:s3:::{dst}/*"));
    assert_eq!(
        ours[0]["Condition"]["StringEquals"]["AWS:SourceArn"],
        arn.as_str()
    );
    // Block Public Access stays on.
    let bpa =
        c.s3.get_public_access_block()
            .bucket(&dst)
            .send()
            .await
            .expect("public access block");
    assert_eq!(
        bpa.public_access_block_configuration()
            .and_then(|b| b.block_public_policy()),
        Some(true)
    );

    // A plain rerun keeps the CDN and makes no second distribution.
    ok(dir.path(), &stack, &["up"]);
    assert_eq!(state_json(dir.path(), &stack)["settings"]["cdn"], true);
    assert_eq!(extra(dir.path(), &stack, "cdn", "id"), id);
    assert_eq!(distributions_of(&cf, &stack).await, 1);

    // A thumbnail whose key needs encoding: get and list link it through the CDN.
    let src = entry(dir.path(), &stack, "source-bucket")["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = "d/é è+1.png";
    c.s3.put_object()
        .bucket(&src)
        .key(key)
        .content_type("image/png")
        .body(ByteStream::from(png()))
        .send()
        .await
        .unwrap();
    ok(dir.path(), &stack, &["invoke-local", key]);
    let got = json_of(&ok(dir.path(), &stack, &["get", key, "--output", "json"]));
    let thumbs = got["thumbnails"].as_array().expect("thumbnails");
    assert!(!thumbs.is_empty(), "{got}");
    let prefix = format!("https://{domain}/");
    for t in thumbs {
        let url = t["url"].as_str().expect("url");
        assert!(url.starts_with(&prefix), "{url}");
        assert!(
            url.contains("/d/%C3%A9%20%C3%A8%2B1"),
            "each key segment percent-encoded as UTF-8, `+` too, `/` kept: {url}"
        );
        assert!(!url.contains(' ') && !url.contains('+'), "{url}");
    }
    let listed = json_of(&ok(dir.path(), &stack, &["list", "--output", "json"]));
    let url = listed["items"][0]["thumbnails"][0]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("list links thumbnails: {listed}"));
    assert!(url.starts_with(&prefix), "{url}");

    // status shows the distribution.
    let out = ok(dir.path(), &stack, &["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&domain), "{text}");
    assert!(
        text.contains("enabled") && text.contains("Deployed"),
        "{text}"
    );
    let status = json_of(&ok(dir.path(), &stack, &["status", "--output", "json"]));
    assert_eq!(status["cdn"]["domain"], domain.as_str());
    assert_eq!(status["cdn"]["enabled"], true);

    // A new quality rewrites the thumbnails under new keys; the old ones are deleted and
    // invalidated (by the function's handler, here run by reprocess --local), the CDN being
    // refused for a while first (too many invalidations in progress).
    let before = dest_keys(&c, &dst).await;
    assert_eq!(before.len(), 1, "{before:?}");
    assert!(invalidated(&cf, &id).await.is_empty());
    proxy.ok(dir.path(), &stack, &["up", "--quality", "50"]);
    proxy.ok(dir.path(), &stack, &["reprocess", "--local"]);
    let after = dest_keys(&c, &dst).await;
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after, before, "a new quality, a new key");
    assert_eq!(
        invalidated(&cf, &id).await,
        vec![cdn_paths(&before)],
        "exactly the rewritten thumbnail is invalidated"
    );
    let refused = proxy.fired("invalidations-in-progress:refused").await;
    assert!(
        refused >= 1,
        "the function waited and sent the same batch again"
    );

    // delete: the original, the thumbnail, and the thumbnail at the CDN.
    proxy.ok(dir.path(), &stack, &["delete", key, "--yes"]);
    assert!(dest_keys(&c, &dst).await.is_empty());
    assert_eq!(
        invalidated(&cf, &id).await,
        vec![cdn_paths(&before), cdn_paths(&after)],
        "delete invalidates exactly what it deleted"
    );
    assert!(
        proxy.fired("invalidations-in-progress:refused").await > refused,
        "delete waited and sent the same batch again"
    );
    assert_eq!(
        proxy
            .fired("invalidations-in-progress:reference-refused")
            .await,
        0
    );

    // destroy: disable, wait out 3 s of InProgress answers, delete; then the rest.
    let out = proxy
        .cmd(dir.path(), &stack, &["destroy", "--yes"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("waiting for CloudFront to deploy"),
        "the wait is narrated: {}",
        stderr(&out)
    );
    // Polled through the deployment, backing off from 1 s (1 + 2 > 3 s: two or three
    // polls); a loop that does not sleep asks hundreds of times.
    let served = proxy.fired("cloudfront-in-progress:served").await;
    assert!(
        (1..=4).contains(&served),
        "destroy polled {served} times through the 3 s deployment of the disable"
    );
    for refused in [
        "cloudfront-in-progress:if-match-missing",
        "cloudfront-in-progress:delete-refused",
        "cloudfront-in-progress:delete-enabled-refused",
        "cloudfront-in-progress:stale-etag-refused",
    ] {
        assert_eq!(proxy.fired(refused).await, 0, "{refused}");
    }
    let gone = cf.get_distribution().id(&id).send().await;
    assert_eq!(
        gone.err()
            .and_then(|e| e.into_service_error().meta().code().map(str::to_owned))
            .as_deref(),
        Some("NoSuchDistribution")
    );
    let gone = cf.get_origin_access_control().id(&oac).send().await;
    assert!(gone.is_err(), "the origin access control is deleted");
    assert_eq!(leftovers(&c, &stack).await, Vec::<String>::new());
    assert!(!dir.path().join(format!("{stack}.json")).exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_destroy_stopped_after_the_disable_finishes_on_a_rerun() {
    let c = clients().await;
    let cf = cloudfront().await;
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("cdnresume");
    // InProgress for 6 s after the disable: longer than a 2 s timeout lets through.
    let proxy = AwsProxy::start("cloudfront-in-progress", 6.0);
    proxy.ok(dir.path(), &stack, &["up", "--image-uri", IMAGE, "--cdn"]);
    let id = extra(dir.path(), &stack, "cdn", "id");

    // Killed right after the disable.
    let out = proxy
        .cmd(dir.path(), &stack, &["destroy", "--yes"])
        .env("FAILPOINTS", "destroy:disabled:cdn=return")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(CRASH_EXIT), "{}", stderr(&out));
    let d = cf
        .get_distribution()
        .id(&id)
        .send()
        .await
        .expect("still there");
    let d = d.distribution().unwrap();
    assert!(!d.distribution_config().unwrap().enabled, "it was disabled");
    assert!(entry(dir.path(), &stack, "cdn").is_object());

    // A rerun that runs out of patience says so, and what to do.
    let out = proxy
        .cmd(dir.path(), &stack, &["destroy", "--yes"])
        .env("THUMBCTL_CDN_TIMEOUT", "2s")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("still deploying") && err.contains("rerun `thumbctl destroy`"),
        "{err}"
    );
    assert!(
        entry(dir.path(), &stack, "cdn").is_object(),
        "still recorded"
    );

    // The next rerun finds it disabled, waits out the rest and deletes it.
    let out = proxy
        .cmd(dir.path(), &stack, &["destroy", "--yes"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // Two runs polled through the 6 s, backing off; not hundreds of times.
    let served = proxy.fired("cloudfront-in-progress:served").await;
    assert!((2..=8).contains(&served), "{served} polls");
    assert_eq!(
        proxy.fired("cloudfront-in-progress:delete-refused").await,
        0
    );
    assert!(cf.get_distribution().id(&id).send().await.is_err());
    assert_eq!(distributions_of(&cf, &stack).await, 0);
    assert_eq!(leftovers(&c, &stack).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_create_whose_record_was_lost_is_adopted_not_duplicated() {
    let c = clients().await;
    let cf = cloudfront().await;
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("cdnadopt");
    for point in ["up:created:cdn-access", "up:created:cdn"] {
        let out = thumbctl_cmd(dir.path(), &stack, &["up", "--image-uri", IMAGE, "--cdn"])
            .env("FAILPOINTS", format!("{point}=return"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(CRASH_EXIT), "{}", stderr(&out));
    }
    ok(dir.path(), &stack, &["up", "--image-uri", IMAGE, "--cdn"]);
    assert_eq!(distributions_of(&cf, &stack).await, 1, "one distribution");
    let oac_name = entry(dir.path(), &stack, "cdn-access")["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let controls = cf.list_origin_access_controls().send().await.unwrap();
    let named = controls
        .origin_access_control_list()
        .map(|l| l.items().iter().filter(|o| o.name() == oac_name).count())
        .unwrap_or(0);
    assert_eq!(named, 1, "one origin access control");

    // Disabled behind thumbctl's back (or by a destroy stopped part-way): status says so and
    // up enables it again.
    let id = extra(dir.path(), &stack, "cdn", "id");
    let current = cf.get_distribution_config().id(&id).send().await.unwrap();
    let mut config = current.distribution_config.clone().unwrap();
    config.enabled = false;
    cf.update_distribution()
        .id(&id)
        .distribution_config(config)
        .set_if_match(current.e_tag().map(str::to_owned))
        .send()
        .await
        .unwrap();
    let status = json_of(&ok(dir.path(), &stack, &["status", "--output", "json"]));
    assert_eq!(status["cdn"]["enabled"], false);
    assert!(
        status["drift"]["cdn"][0]
            .as_str()
            .is_some_and(|d| d.contains("disabled")),
        "{status}"
    );
    ok(dir.path(), &stack, &["up"]);
    let enabled = cf.get_distribution_config().id(&id).send().await.unwrap();
    assert!(
        enabled.distribution_config().unwrap().enabled,
        "enabled again"
    );
    assert_eq!(distributions_of(&cf, &stack).await, 1);
    ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert_eq!(distributions_of(&cf, &stack).await, 0);
    assert_eq!(leftovers(&c, &stack).await, Vec::<String>::new());
}

/// A lost state file must not leave a distribution (billed per request, serving the bucket)
/// nobody can find: `status --orphans` finds the distribution by its comment and tags, and
/// the access control by its name and description; `destroy --orphans --yes` removes both,
/// the distribution disabled and waited for first. A look-alike access control (the stack's
/// name pattern, another description) is neither listed nor deleted.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_state_files_distribution_is_found_and_removed_as_an_orphan() {
    let c = clients().await;
    let cf = cloudfront().await;
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("cdnorph");
    ok(
        dir.path(),
        &stack,
        &["up", "--image-uri", IMAGE, "--sizes", "8", "--cdn"],
    );
    let id = extra(dir.path(), &stack, "cdn", "id");
    let oac = extra(dir.path(), &stack, "cdn-access", "id");
    let lookalike_name = format!("{stack}-notours-cdn");
    let lookalike = cf
        .create_origin_access_control()
        .origin_access_control_config(
            aws_sdk_cloudfront::types::OriginAccessControlConfig::builder()
                .name(&lookalike_name)
                .description("someone else's")
                .signing_protocol(OriginAccessControlSigningProtocols::Sigv4)
                .signing_behavior(OriginAccessControlSigningBehaviors::Always)
                .origin_access_control_origin_type(OriginAccessControlOriginTypes::S3)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("a look-alike access control")
        .origin_access_control()
        .expect("created")
        .id()
        .to_owned();
    std::fs::remove_file(dir.path().join(format!("{stack}.json"))).unwrap();

    let found = json_of(&ok(
        dir.path(),
        &stack,
        &["status", "--orphans", "--output", "json"],
    ));
    let orphans = found["orphans"].as_array().expect("orphans");
    let of_kind =
        |kind: &str| -> Vec<&Value> { orphans.iter().filter(|o| o["kind"] == kind).collect() };
    assert_eq!(of_kind("distribution").len(), 1, "{found}");
    assert_eq!(of_kind("origin-access-control").len(), 1, "{found}");
    assert!(
        !orphans.iter().any(|o| o["name"] == lookalike_name.as_str()),
        "the look-alike is listed: {found}"
    );

    let proxy = AwsProxy::start("cloudfront-in-progress", 2.0);
    proxy.ok(dir.path(), &stack, &["destroy", "--orphans", "--yes"]);
    // Disabled, then waited for through the InProgress answers, never refused.
    let served = proxy.fired("cloudfront-in-progress:served").await;
    assert!((1..=4).contains(&served), "{served} polls through 2 s");
    assert_eq!(
        proxy.fired("cloudfront-in-progress:delete-refused").await,
        0
    );
    assert_eq!(
        distributions_of(&cf, &stack).await,
        0,
        "the distribution is gone"
    );
    assert!(cf.get_distribution().id(&id).send().await.is_err());
    assert!(
        cf.get_origin_access_control()
            .id(&oac)
            .send()
            .await
            .is_err()
    );
    assert!(leftovers(&c, &stack).await.is_empty());
    cf.get_origin_access_control()
        .id(&lookalike)
        .send()
        .await
        .expect("the look-alike survives");
    cf.delete_origin_access_control()
        .id(&lookalike)
        .send()
        .await
        .expect("clean up the look-alike");
}

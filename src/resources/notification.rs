//! The source bucket's notification to the function: created, removed and expired objects.

use std::collections::BTreeMap;

use aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput;
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, LambdaFunctionConfiguration, NotificationConfiguration,
    NotificationConfigurationFilter, S3KeyFilter,
};

use super::{Found, built};
use crate::context::Ctx;
use crate::error::{AwsError, Class, OrNotFound};
use crate::retry::{self, Patience};
use crate::stack::{NOTIFICATION_ID, Plan};
use crate::state::Entry;

pub const KIND: &str = "notification";

fn id_of(e: &Entry) -> &str {
    e.extra
        .get("id")
        .map(String::as_str)
        .unwrap_or(NOTIFICATION_ID)
}

pub fn extra() -> BTreeMap<String, String> {
    BTreeMap::from([("id".to_owned(), NOTIFICATION_ID.to_owned())])
}

/// The events the function handles: new objects, and removed or expired ones (their
/// thumbnails and item follow the original).
pub const EVENTS: [&str; 3] = [
    "s3:ObjectCreated:*",
    "s3:ObjectRemoved:*",
    "s3:LifecycleExpiration:*",
];

fn ours(plan: &Plan, function_arn: &str) -> Result<LambdaFunctionConfiguration, AwsError> {
    let bucket = plan.source_bucket();
    let filter = plan.settings.source_prefix.as_ref().map(|p| {
        NotificationConfigurationFilter::builder()
            .key(
                S3KeyFilter::builder()
                    .filter_rules(
                        FilterRule::builder()
                            .name(FilterRuleName::Prefix)
                            .value(p)
                            .build(),
                    )
                    .build(),
            )
            .build()
    });
    built(
        LambdaFunctionConfiguration::builder()
            .id(NOTIFICATION_ID)
            .lambda_function_arn(function_arn)
            .set_events(Some(EVENTS.iter().map(|e| Event::from(*e)).collect()))
            .set_filter(filter)
            .build(),
        KIND,
        &bucket,
    )
}

/// A bucket the stack made holds only our notification, so its configuration is written
/// whole: one call on the critical path. An adopted bucket's own notifications are kept:
/// ours is merged in (read, replace ours, write), after checking S3 would accept the mix.
///
/// S3 validates every destination of the document it is given, and sends each a test event.
/// Ours is worth validating: until the invoke permission added a moment ago has propagated, S3
/// answers "Unable to validate", and waiting helps. The user's destinations are not ours to
/// judge (one deleted queue of theirs would block the stack for ever) and their consumers
/// should not get test events because we wrote: when the document holds any, it is written
/// with SkipDestinationValidation. Our permission is in place by then regardless (the engine
/// adds it before this step).
pub async fn ensure(ctx: &Ctx, plan: &Plan, function_arn: &str) -> Result<Found, AwsError> {
    let bucket = plan.source_bucket();
    let conf = ours(plan, function_arn)?;
    retry::until_settled(
        Patience::SETTLE,
        retry::busy("S3 to see the function's new invoke permission"),
        || async {
            let whole = if plan.source_adopted() {
                let current = read(ctx, &bucket)
                    .await?
                    .unwrap_or_else(|| GetBucketNotificationConfigurationOutput::builder().build());
                merged(&current, &conf).map_err(|why| AwsError::local("add", KIND, &bucket, why))?
            } else {
                NotificationConfiguration::builder()
                    .lambda_function_configurations(conf.clone())
                    .build()
            };
            let skip = holds_others(&whole, conf.id());
            put(ctx, &bucket, whole, skip, "put", Some(function_arn)).await
        },
    )
    .await?;
    Ok(Found {
        arn: None,
        extra: extra(),
    })
}

/// Whether the document names any destination besides our configuration `id`.
fn holds_others(doc: &NotificationConfiguration, id: Option<&str>) -> bool {
    doc.lambda_function_configurations()
        .iter()
        .any(|c| c.id() != id)
        || !doc.queue_configurations().is_empty()
        || !doc.topic_configurations().is_empty()
}

/// Writes the bucket's notification configuration. A refusal of S3's destination validation
/// is "busy" (worth waiting for) only when it names `ours`, the destination whose permission
/// may still be propagating; naming only other destinations, it is the user's to fix, and
/// the error says which and why.
async fn put(
    ctx: &Ctx,
    bucket: &str,
    doc: NotificationConfiguration,
    skip_validation: bool,
    action: &'static str,
    ours: Option<&str>,
) -> Result<(), AwsError> {
    let sent = ctx
        .s3
        .put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(doc)
        .set_skip_destination_validation(skip_validation.then_some(true))
        .send()
        .await;
    match sent {
        Ok(_) => Ok(()),
        Err(e) => {
            let body = e
                .raw_response()
                .and_then(|r| r.body().bytes())
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Err(judge_validation(
                AwsError::from_sdk(action, KIND, bucket, e),
                &body,
                ours,
            ))
        }
    }
}

/// S3's answer when a destination fails validation (the body as S3 sends it):
/// `<Error><Code>InvalidArgument</Code><Message>Unable to validate the following destination
/// configurations</Message><ArgumentName1>ARN, null</ArgumentName1><ArgumentValue1>Not
/// authorized to invoke function [ARN]</ArgumentValue1>...</Error>`, one numbered pair per
/// destination. The SDK keeps only the code and message, so the pairs are read here.
fn judge_validation(mut err: AwsError, body: &str, ours: Option<&str>) -> AwsError {
    if err.code.as_deref() != Some("InvalidArgument") || !body.contains("Unable to validate") {
        return err;
    }
    let named = unvalidated(body);
    // Nothing named (an answer in another shape): keep the classification by message.
    if named.is_empty() {
        return err;
    }
    let list = named
        .iter()
        .map(|(arn, why)| format!("{arn} ({why})"))
        .collect::<Vec<_>>()
        .join(", ");
    if ours.is_some_and(|o| named.iter().any(|(arn, _)| arn == o)) {
        err.message = format!("{}: {list}", err.message);
        return err;
    }
    err.class = Class::Other;
    err.message = format!(
        "S3 could not validate destinations of this bucket that are not thumbctl's: {list}. \
         S3 refuses the whole configuration while one of them fails: remove or repair them in \
         the bucket's event notifications (S3 console, Properties), then rerun"
    );
    err
}

/// The (ARN, reason) pairs of S3's "Unable to validate" answer, in order.
fn unvalidated(body: &str) -> Vec<(String, String)> {
    let element = |name: &str| -> Option<String> {
        let open = format!("<{name}>");
        let start = body.find(&open)? + open.len();
        let end = body[start..].find(&format!("</{name}>"))? + start;
        Some(
            body[start..end]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        )
    };
    (1..)
        .map_while(|i| {
            let name = element(&format!("ArgumentName{i}"))?;
            // S3 writes "ARN, <something>" (", null" in the answers seen); ARNs hold no ", ".
            let arn = name
                .split(", ")
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned();
            let why = element(&format!("ArgumentValue{i}")).unwrap_or_default();
            Some((arn, why))
        })
        .filter(|(arn, _)| !arn.is_empty())
        .collect()
}

/// The bucket's configuration with ours in place of any earlier ours; refused (with the
/// reason) when another configuration of the bucket overlaps ours, as S3 would refuse it.
fn merged(
    current: &GetBucketNotificationConfigurationOutput,
    conf: &LambdaFunctionConfiguration,
) -> Result<NotificationConfiguration, String> {
    let our_prefix = prefix_of(conf.filter());
    let others = current
        .lambda_function_configurations()
        .iter()
        .filter(|c| c.id() != conf.id())
        .map(|c| (c.id(), c.events(), c.filter(), "Lambda function"))
        .chain(
            current
                .queue_configurations()
                .iter()
                .map(|c| (c.id(), c.events(), c.filter(), "SQS queue")),
        )
        .chain(
            current
                .topic_configurations()
                .iter()
                .map(|c| (c.id(), c.events(), c.filter(), "SNS topic")),
        );
    for (id, events, filter, target) in others {
        let shared: Vec<&str> = events
            .iter()
            .map(|e| e.as_str())
            .filter(|e| EVENTS.iter().any(|o| events_overlap(o, e)))
            .collect();
        // Ours has no suffix rule, so whatever suffix theirs has, only the prefixes decide.
        let their_prefix = prefix_of(filter);
        if !shared.is_empty()
            && (their_prefix.starts_with(&our_prefix) || our_prefix.starts_with(&their_prefix))
        {
            return Err(format!(
                "the bucket already sends {} for {} to an {target} (configuration `{}`), which \
                 overlaps ours; S3 refuses overlapping notifications. Give the stack its own \
                 prefix that theirs does not cover (--source-prefix uploads/) when creating it",
                shared.join(", "),
                if their_prefix.is_empty() {
                    "every key".to_owned()
                } else {
                    format!("keys under `{their_prefix}`")
                },
                id.unwrap_or("unnamed")
            ));
        }
    }
    let mut lambdas: Vec<LambdaFunctionConfiguration> = current
        .lambda_function_configurations()
        .iter()
        .filter(|c| c.id() != conf.id())
        .cloned()
        .collect();
    lambdas.push(conf.clone());
    Ok(NotificationConfiguration::builder()
        .set_lambda_function_configurations(Some(lambdas))
        .set_queue_configurations(Some(current.queue_configurations().to_vec()))
        .set_topic_configurations(Some(current.topic_configurations().to_vec()))
        .set_event_bridge_configuration(current.event_bridge_configuration().cloned())
        .build())
}

/// `s3:ObjectCreated:*` overlaps `s3:ObjectCreated:Put`, and itself.
fn events_overlap(a: &str, b: &str) -> bool {
    let family = |e: &str| {
        e.rsplit_once(':')
            .map(|(f, _)| f.to_owned())
            .unwrap_or_default()
    };
    a == b || (family(a) == family(b) && (a.ends_with(":*") || b.ends_with(":*")))
}

fn rule_of(filter: Option<&NotificationConfigurationFilter>, name: FilterRuleName) -> String {
    filter
        .and_then(|f| f.key())
        .map(|k| k.filter_rules())
        .unwrap_or_default()
        .iter()
        .find(|r| r.name() == Some(&name))
        .and_then(|r| r.value())
        .unwrap_or_default()
        .to_owned()
}

fn prefix_of(filter: Option<&NotificationConfigurationFilter>) -> String {
    rule_of(filter, FilterRuleName::Prefix)
}

fn suffix_of(filter: Option<&NotificationConfigurationFilter>) -> String {
    rule_of(filter, FilterRuleName::Suffix)
}

/// How our configuration on the bucket differs from the plan's.
pub async fn drift(ctx: &Ctx, plan: &Plan, e: &Entry) -> Result<Vec<String>, AwsError> {
    let Some(out) = read(ctx, &e.name).await? else {
        return Ok(Vec::new());
    };
    let id = id_of(e);
    let Some(have) = out
        .lambda_function_configurations()
        .iter()
        .find(|c| c.id() == Some(id))
    else {
        return Ok(vec!["our notification is missing".to_owned()]);
    };
    let mut diffs = Vec::new();
    if have.lambda_function_arn() != plan.function_arn() {
        diffs.push(format!(
            "it invokes {}, not the stack's function",
            have.lambda_function_arn()
        ));
    }
    let mut events: Vec<&str> = have.events().iter().map(|e| e.as_str()).collect();
    events.sort();
    let mut want = EVENTS.to_vec();
    want.sort();
    if events != want {
        diffs.push(format!(
            "it sends {}, not {}",
            events.join(", "),
            want.join(", ")
        ));
    }
    let want_prefix = plan.settings.source_prefix.clone().unwrap_or_default();
    if prefix_of(have.filter()) != want_prefix || !suffix_of(have.filter()).is_empty() {
        diffs.push("its key filter changed".to_owned());
    }
    Ok(diffs)
}

/// The bucket's notification configuration; `None` when the bucket is gone.
async fn read(
    ctx: &Ctx,
    bucket: &str,
) -> Result<Option<GetBucketNotificationConfigurationOutput>, AwsError> {
    match ctx
        .s3
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(out) => Ok(Some(out)),
        // moto answers an empty configuration with a differently named XML root that the SDK
        // cannot parse, but with HTTP 200: that answer means "no notifications".
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 200) => Ok(Some(
            GetBucketNotificationConfigurationOutput::builder().build(),
        )),
        Err(e) => Err(AwsError::from_sdk("look up", KIND, bucket, e)).or_not_found(),
    }
}

pub async fn find(ctx: &Ctx, e: &Entry) -> Result<Option<Found>, AwsError> {
    let out = read(ctx, &e.name).await?;
    let id = id_of(e);
    Ok(out
        .filter(|o| {
            o.lambda_function_configurations()
                .iter()
                .any(|c| c.id() == Some(id))
        })
        .map(|_| Found {
            arn: None,
            extra: e.extra.clone(),
        }))
}

/// Removes only our configuration and keeps anything else on the bucket.
pub async fn delete(ctx: &Ctx, e: &Entry) -> Result<(), AwsError> {
    let Some(current) = read(ctx, &e.name).await? else {
        return Ok(());
    };
    let id = id_of(e);
    let rest: Vec<LambdaFunctionConfiguration> = current
        .lambda_function_configurations()
        .iter()
        .filter(|c| c.id() != Some(id))
        .cloned()
        .collect();
    if rest.len() == current.lambda_function_configurations().len() {
        return Ok(());
    }
    let conf = NotificationConfiguration::builder()
        .set_lambda_function_configurations(Some(rest))
        .set_queue_configurations(Some(current.queue_configurations().to_vec()))
        .set_topic_configurations(Some(current.topic_configurations().to_vec()))
        .set_event_bridge_configuration(current.event_bridge_configuration().cloned())
        .build();
    // What remains is the user's alone: nothing of ours to validate, and a stale destination
    // of theirs must not keep ours on their bucket (nor their consumers get test events).
    put(ctx, &e.name, conf, true, "delete", None)
        .await
        .or_not_found()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer of S3's as it was captured (aws s3api --debug), plus a second destination.
    const REFUSAL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidArgument</Code>\
        <Message>Unable to validate the following destination configurations</Message>\
        <ArgumentName1>arn:aws:lambda:ap-northeast-1:123456789101:function:TestFunc:dev, null</ArgumentName1>\
        <ArgumentValue1>Not authorized to invoke function [arn:aws:lambda:ap-northeast-1:123456789101:function:TestFunc:dev]</ArgumentValue1>\
        <ArgumentName2>arn:aws:sqs:ap-northeast-1:123456789101:gone, null</ArgumentName2>\
        <ArgumentValue2>The destination queue does not exist</ArgumentValue2>\
        <RequestId>2B8705F2FD8848F2</RequestId></Error>";

    fn refused() -> AwsError {
        AwsError {
            action: "put",
            kind: KIND,
            name: "b".into(),
            code: Some("InvalidArgument".into()),
            message: "Unable to validate the following destination configurations".into(),
            class: Class::Busy,
        }
    }

    #[test]
    fn reads_the_destinations_s3_could_not_validate() {
        assert_eq!(
            unvalidated(REFUSAL),
            vec![
                (
                    "arn:aws:lambda:ap-northeast-1:123456789101:function:TestFunc:dev".to_owned(),
                    "Not authorized to invoke function [arn:aws:lambda:ap-northeast-1:123456789101:function:TestFunc:dev]".to_owned()
                ),
                (
                    "arn:aws:sqs:ap-northeast-1:123456789101:gone".to_owned(),
                    "The destination queue does not exist".to_owned()
                ),
            ]
        );
        assert!(unvalidated("<Error><Code>InvalidArgument</Code></Error>").is_empty());
    }

    #[test]
    fn waits_only_when_ours_is_unvalidated() {
        let ours = "arn:aws:lambda:ap-northeast-1:123456789101:function:TestFunc:dev";
        let e = judge_validation(refused(), REFUSAL, Some(ours));
        assert_eq!(e.class, Class::Busy);
        assert!(
            e.message.contains("Not authorized to invoke"),
            "{}",
            e.message
        );
        let theirs_only = REFUSAL
            .split("<ArgumentName1>")
            .next()
            .map(|head| {
                format!(
                    "{head}<ArgumentName1>arn:aws:sqs:ap-northeast-1:123456789101:gone, null</ArgumentName1>\
                     <ArgumentValue1>The destination queue does not exist</ArgumentValue1></Error>"
                )
            })
            .unwrap_or_default();
        let e = judge_validation(refused(), &theirs_only, Some(ours));
        assert_eq!(e.class, Class::Other);
        assert!(
            e.message
                .contains("arn:aws:sqs:ap-northeast-1:123456789101:gone")
                && e.message.contains("not thumbctl's"),
            "{}",
            e.message
        );
        // No ARNs in the answer: the message alone decides, as before.
        let e = judge_validation(refused(), "<Error>Unable to validate</Error>", Some(ours));
        assert_eq!(e.class, Class::Busy);
    }

    #[test]
    fn only_a_document_of_ours_alone_is_validated() {
        let mine = LambdaFunctionConfiguration::builder()
            .id(NOTIFICATION_ID)
            .lambda_function_arn("arn:aws:lambda:us-east-1:1:function:f")
            .events(Event::from("s3:ObjectCreated:*"))
            .build()
            .expect("valid");
        let alone = NotificationConfiguration::builder()
            .lambda_function_configurations(mine.clone())
            .build();
        assert!(!holds_others(&alone, Some(NOTIFICATION_ID)));
        let queue = aws_sdk_s3::types::QueueConfiguration::builder()
            .queue_arn("arn:aws:sqs:us-east-1:1:theirs")
            .events(Event::from("s3:ObjectCreated:*"))
            .build()
            .expect("valid");
        let mixed = NotificationConfiguration::builder()
            .lambda_function_configurations(mine)
            .queue_configurations(queue)
            .build();
        assert!(holds_others(&mixed, Some(NOTIFICATION_ID)));
    }

    #[test]
    fn overlapping_event_types() {
        assert!(events_overlap("s3:ObjectCreated:*", "s3:ObjectCreated:Put"));
        assert!(events_overlap("s3:ObjectRemoved:*", "s3:ObjectRemoved:*"));
        assert!(!events_overlap(
            "s3:ObjectCreated:*",
            "s3:ObjectRemoved:Delete"
        ));
        assert!(!events_overlap(
            "s3:ObjectCreated:Put",
            "s3:ObjectCreated:Copy"
        ));
    }

    const FUNCTION: &str = "arn:aws:lambda:eu-west-1:123456789012:function:demo-fn";

    fn plan(prefix: Option<&str>) -> Plan {
        let settings = crate::stack::Settings {
            source_prefix: prefix.map(str::to_owned),
            adopted_source_bucket: Some("their-bucket".into()),
            ..crate::stack::Settings::default()
        };
        Plan {
            stack: "demo".into(),
            suffix: "abcd1234".into(),
            account: "123456789012".into(),
            region: "eu-west-1".into(),
            settings,
        }
    }

    fn filter(rules: &[(FilterRuleName, &str)]) -> NotificationConfigurationFilter {
        let mut key = S3KeyFilter::builder();
        for (name, value) in rules {
            key = key.filter_rules(
                FilterRule::builder()
                    .name(name.clone())
                    .value(*value)
                    .build(),
            );
        }
        NotificationConfigurationFilter::builder()
            .key(key.build())
            .build()
    }

    fn theirs(
        id: &str,
        arn: &str,
        event: &str,
        prefix: Option<&str>,
    ) -> LambdaFunctionConfiguration {
        LambdaFunctionConfiguration::builder()
            .id(id)
            .lambda_function_arn(arn)
            .events(Event::from(event))
            .set_filter(prefix.map(|p| filter(&[(FilterRuleName::Prefix, p)])))
            .build()
            .expect("valid")
    }

    #[test]
    fn our_configuration_is_the_plans() {
        let conf = ours(&plan(Some("uploads/")), FUNCTION).expect("built");
        assert_eq!(conf.id(), Some(NOTIFICATION_ID));
        assert_eq!(conf.lambda_function_arn(), FUNCTION);
        let events: Vec<&str> = conf.events().iter().map(|e| e.as_str()).collect();
        assert_eq!(events, EVENTS);
        assert_eq!(prefix_of(conf.filter()), "uploads/");
        assert_eq!(ours(&plan(None), FUNCTION).expect("built").filter(), None);
    }

    #[test]
    fn filter_rules_are_read_by_name() {
        let f = filter(&[
            (FilterRuleName::Suffix, ".jpg"),
            (FilterRuleName::Prefix, "a/"),
        ]);
        assert_eq!(prefix_of(Some(&f)), "a/");
        assert_eq!(suffix_of(Some(&f)), ".jpg");
        assert_eq!(prefix_of(None), "");
        assert_eq!(
            suffix_of(Some(&filter(&[(FilterRuleName::Prefix, "a/")]))),
            ""
        );
    }

    #[test]
    fn ours_replaces_our_earlier_one_and_keeps_theirs() {
        let conf = ours(&plan(Some("uploads/")), FUNCTION).expect("built");
        let topic = aws_sdk_s3::types::TopicConfiguration::builder()
            .id("restores")
            .topic_arn("arn:aws:sns:eu-west-1:123456789012:restores")
            .events(Event::from("s3:ObjectRestore:Completed"))
            .build()
            .expect("valid");
        let queue = aws_sdk_s3::types::QueueConfiguration::builder()
            .id("logs")
            .queue_arn("arn:aws:sqs:eu-west-1:123456789012:logs")
            .events(Event::from("s3:ObjectRemoved:*"))
            .filter(filter(&[(FilterRuleName::Prefix, "logs/")]))
            .build()
            .expect("valid");
        let current = GetBucketNotificationConfigurationOutput::builder()
            .lambda_function_configurations(theirs(
                NOTIFICATION_ID,
                "arn:aws:lambda:eu-west-1:123456789012:function:old",
                "s3:ObjectCreated:*",
                Some("uploads/"),
            ))
            .lambda_function_configurations(theirs(
                "resize",
                "arn:aws:lambda:eu-west-1:123456789012:function:resize",
                "s3:ObjectCreated:Put",
                Some("other/"),
            ))
            .queue_configurations(queue)
            // Every key, but no event of ours: no overlap.
            .topic_configurations(topic)
            .build();
        let doc = merged(&current, &conf).expect("no overlap");
        let lambdas: Vec<(Option<&str>, &str)> = doc
            .lambda_function_configurations()
            .iter()
            .map(|c| (c.id(), c.lambda_function_arn()))
            .collect();
        assert_eq!(
            lambdas,
            [
                (
                    Some("resize"),
                    "arn:aws:lambda:eu-west-1:123456789012:function:resize"
                ),
                (Some(NOTIFICATION_ID), FUNCTION)
            ]
        );
        assert_eq!(doc.queue_configurations().len(), 1);
        assert_eq!(doc.topic_configurations().len(), 1);
    }

    #[test]
    fn overlapping_notifications_of_theirs_are_refused() {
        let conf = ours(&plan(Some("uploads/")), FUNCTION).expect("built");
        let every_key = GetBucketNotificationConfigurationOutput::builder()
            .queue_configurations(
                aws_sdk_s3::types::QueueConfiguration::builder()
                    .id("all")
                    .queue_arn("arn:aws:sqs:eu-west-1:123456789012:all")
                    .events(Event::from("s3:ObjectCreated:Put"))
                    .build()
                    .expect("valid"),
            )
            .build();
        let why = merged(&every_key, &conf).expect_err("overlaps");
        assert!(
            why.contains(
                "s3:ObjectCreated:Put for every key to an SQS queue (configuration `all`)"
            ),
            "{why}"
        );
        let under = GetBucketNotificationConfigurationOutput::builder()
            .lambda_function_configurations(theirs(
                "sub",
                "arn:aws:lambda:eu-west-1:123456789012:function:sub",
                "s3:ObjectRemoved:Delete",
                Some("uploads/raw/"),
            ))
            .build();
        let why = merged(&under, &conf).expect_err("overlaps");
        assert!(
            why.contains("for keys under `uploads/raw/` to an Lambda function"),
            "{why}"
        );
    }

    #[test]
    fn entries_name_our_configuration() {
        let mut e = Entry {
            kind: KIND.into(),
            name: "their-bucket".into(),
            arn: None,
            region: "eu-west-1".into(),
            status: crate::state::Status::Created,
            extra: extra(),
        };
        assert_eq!(
            e.extra,
            BTreeMap::from([("id".to_owned(), NOTIFICATION_ID.to_owned())])
        );
        assert_eq!(id_of(&e), NOTIFICATION_ID);
        e.extra.insert("id".into(), "thumbctl-older".into());
        assert_eq!(id_of(&e), "thumbctl-older");
        e.extra.clear();
        assert_eq!(id_of(&e), NOTIFICATION_ID);
    }

    #[test]
    fn other_refusals_are_left_as_they_are() {
        let denied = AwsError {
            code: Some("AccessDenied".into()),
            class: Class::AccessDenied,
            message: "Access Denied".into(),
            ..refused()
        };
        let e = judge_validation(denied, REFUSAL, Some(FUNCTION));
        assert_eq!(
            (e.class, e.message.as_str()),
            (Class::AccessDenied, "Access Denied")
        );
    }
}

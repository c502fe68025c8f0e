//! Finding what a stack left behind when its state file is lost: every resource, in every
//! service `up` uses, whose name has the stack's prefix AND that carries the tag
//! `thumbctl:stack=<stack>`, minus what the state (if any) records. The tag is the proof of
//! ownership: a look-alike without it is never listed, so never deleted.

use std::collections::{HashMap, HashSet};

use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures::future::join_all;

use crate::context::Ctx;
use crate::error::{AwsError, aws};
use crate::resources::{
    bucket, build_project, distribution, function, log_group, origin_access_control, queue,
    repository, role, table, topic,
};
use crate::stack::{TAG_REGION, TAG_STACK, partition_of};
use crate::state::{Entry, Status};

fn entry(kind: &str, name: &str, arn: Option<String>, region: &str) -> Entry {
    Entry {
        kind: kind.into(),
        name: name.into(),
        arn,
        region: region.into(),
        status: Status::Created,
        extra: Default::default(),
    }
}

fn ours(tags: impl IntoIterator<Item = (String, String)>, stack: &str) -> bool {
    tags.into_iter().any(|(k, v)| k == TAG_STACK && v == stack)
}

/// For the global namespaces (IAM roles, S3 bucket listings): the stack tag is not enough,
/// since a stack of the same name in another region has the same tag. Only what says it
/// belongs to this region is ours here; a role from before the region tag is left alone.
fn ours_here(tags: impl IntoIterator<Item = (String, String)>, stack: &str, region: &str) -> bool {
    let tags: Vec<(String, String)> = tags.into_iter().collect();
    ours(tags.iter().cloned(), stack) && tags.iter().any(|(k, v)| k == TAG_REGION && v == region)
}

/// Every tagged resource of the stack, whatever the state says.
pub async fn find_tagged(ctx: &Ctx, stack: &str) -> Result<Vec<Entry>, AwsError> {
    let prefix = format!("{stack}-");
    let r = ctx.region.as_str();
    let mut found = Vec::new();

    let buckets = ctx
        .s3
        .list_buckets()
        .send()
        .await
        .map_err(aws("list", "buckets", "s3"))?;
    for b in buckets
        .buckets()
        .iter()
        .filter_map(|b| b.name())
        .filter(|n| n.starts_with(&prefix))
    {
        let tags = match ctx.s3.get_bucket_tagging().bucket(b).send().await {
            Ok(t) => t
                .tag_set()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect::<Vec<_>>(),
            // No tags at all, a bucket of the listing already gone, or one in another region
            // (S3 redirects; the listing is global): not this region's stack to touch.
            Err(e)
                if matches!(
                    e.code(),
                    Some(
                        "NoSuchTagSet"
                            | "NoSuchBucket"
                            | "PermanentRedirect"
                            | "AuthorizationHeaderMalformed"
                    )
                ) || e.raw_response().is_some_and(|r| r.status().as_u16() == 301) =>
            {
                Vec::new()
            }
            // Anything else (access denied, a bucket in a region this client cannot read)
            // must not silently hide a lost stack's bucket.
            Err(e) => return Err(AwsError::from_sdk("read tags of", bucket::KIND, b, e)),
        };
        if ours_here(tags, stack, r) {
            found.push(entry(
                bucket::KIND,
                b,
                Some(format!("arn:{}:s3:::{b}", partition_of(r))),
                r,
            ));
        }
    }

    let roles: Vec<_> = ctx
        .iam
        .list_roles()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(aws("list", "roles", "iam"))?;
    for ro in roles
        .iter()
        .filter(|ro| ro.role_name().starts_with(&prefix))
    {
        let tags = ctx
            .iam
            .list_role_tags()
            .role_name(ro.role_name())
            .send()
            .await
            .map_err(aws("read tags of", role::KIND, ro.role_name()))?;
        if ours_here(
            tags.tags()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned())),
            stack,
            r,
        ) {
            found.push(entry(
                role::KIND,
                ro.role_name(),
                Some(ro.arn().to_owned()),
                r,
            ));
        }
    }

    // Every listing is paginated: an account may hold more than one page of anything.
    let repos: Vec<_> = ctx
        .ecr
        .describe_repositories()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(aws("list", "repositories", "ecr"))?;
    for repo in repos
        .iter()
        .filter(|x| x.repository_name().is_some_and(|n| n.starts_with(&prefix)))
    {
        let (Some(name), Some(arn)) = (repo.repository_name(), repo.repository_arn()) else {
            continue;
        };
        let tags = ctx
            .ecr
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(aws("read tags of", repository::KIND, name))?;
        if ours(
            tags.tags()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned())),
            stack,
        ) {
            found.push(entry(repository::KIND, name, Some(arn.to_owned()), r));
        }
    }

    let projects: Vec<String> = ctx
        .codebuild
        .list_projects()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(aws("list", "projects", "codebuild"))?;
    let names: Vec<String> = projects
        .into_iter()
        .filter(|p| p.starts_with(&prefix))
        .collect();
    // BatchGetProjects takes at most 100 names.
    for names in names.chunks(100).map(<[String]>::to_vec) {
        let got = ctx
            .codebuild
            .batch_get_projects()
            .set_names(Some(names))
            .send()
            .await
            .map_err(aws("read", "projects", "codebuild"))?;
        for p in got.projects() {
            let tags = p.tags().iter().map(|t| {
                (
                    t.key().unwrap_or_default().to_owned(),
                    t.value().unwrap_or_default().to_owned(),
                )
            });
            if let Some(name) = p.name().filter(|_| ours(tags, stack)) {
                found.push(entry(
                    build_project::KIND,
                    name,
                    p.arn().map(str::to_owned),
                    r,
                ));
            }
        }
    }

    let tables: Vec<_> = ctx
        .dynamodb
        .list_tables()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(aws("list", "tables", "dynamodb"))?;
    for t in tables.iter().filter(|t| t.starts_with(&prefix)) {
        let Some(arn) = ctx
            .dynamodb
            .describe_table()
            .table_name(t)
            .send()
            .await
            .map_err(aws("look up", table::KIND, t))?
            .table
            .and_then(|d| d.table_arn)
        else {
            continue;
        };
        let tags = ctx
            .dynamodb
            .list_tags_of_resource()
            .resource_arn(&arn)
            .send()
            .await
            .map_err(aws("read tags of", table::KIND, t))?;
        if ours(
            tags.tags()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned())),
            stack,
        ) {
            found.push(entry(table::KIND, t, Some(arn), r));
        }
    }

    let topics: Vec<_> = ctx
        .sns
        .list_topics()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(aws("list", "topics", "sns"))?;
    for arn in topics.iter().filter_map(|t| t.topic_arn()) {
        let name = arn.rsplit(':').next().unwrap_or_default();
        if !name.starts_with(&prefix) {
            continue;
        }
        let tags = ctx
            .sns
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(aws("read tags of", topic::KIND, name))?;
        if ours(
            tags.tags()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned())),
            stack,
        ) {
            found.push(entry(topic::KIND, name, Some(arn.to_owned()), r));
        }
    }

    for group_prefix in [
        format!("/aws/lambda/{prefix}"),
        format!("/aws/codebuild/{prefix}"),
    ] {
        let groups: Vec<_> = ctx
            .logs
            .describe_log_groups()
            .log_group_name_prefix(&group_prefix)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(aws("list", "log groups", "logs"))?;
        for g in &groups {
            let (Some(name), Some(arn)) = (g.log_group_name(), g.arn()) else {
                continue;
            };
            let arn = arn.trim_end_matches(":*");
            let tags = ctx
                .logs
                .list_tags_for_resource()
                .resource_arn(arn)
                .send()
                .await
                .map_err(aws("read tags of", log_group::KIND, name))?;
            if ours(tags.tags.unwrap_or_default(), stack) {
                found.push(entry(log_group::KIND, name, Some(arn.to_owned()), r));
            }
        }
    }

    let functions: Vec<_> = ctx
        .lambda
        .list_functions()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(aws("list", "functions", "lambda"))?;
    for f in functions
        .iter()
        .filter(|f| f.function_name().is_some_and(|n| n.starts_with(&prefix)))
    {
        let (Some(name), Some(arn)) = (f.function_name(), f.function_arn()) else {
            continue;
        };
        let tags = ctx
            .lambda
            .list_tags()
            .resource(arn)
            .send()
            .await
            .map_err(aws("read tags of", function::KIND, name))?;
        if ours(tags.tags.unwrap_or_default(), stack) {
            found.push(entry(function::KIND, name, Some(arn.to_owned()), r));
        }
    }

    // Queue URLs are regional, so a same-named stack elsewhere is not listed here.
    let queues = ctx
        .sqs
        .list_queues()
        .queue_name_prefix(&prefix)
        .send()
        .await
        .map_err(aws("list", "queues", "sqs"))?;
    for url in queues.queue_urls() {
        let name = url.rsplit('/').next().unwrap_or(url);
        let tags = ctx
            .sqs
            .list_queue_tags()
            .queue_url(url)
            .send()
            .await
            .map_err(aws("read tags of", queue::KIND, name))?;
        if ours(tags.tags.unwrap_or_default(), stack) {
            let arn = ctx
                .sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .send()
                .await
                .map_err(aws("look up", queue::KIND, name))?
                .attributes()
                .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
                .cloned();
            let mut e = entry(queue::KIND, name, arn, r);
            e.extra.insert("url".into(), url.clone());
            found.push(e);
        }
    }

    found.extend(cloudfront(ctx, stack).await?);
    Ok(found)
}

/// `up --cdn`'s distribution and origin access control. CloudFront is global, like IAM, so a
/// distribution is ours only with this region's tag too. It has no name: its comment, which
/// thumbctl writes as `thumbctl stack <stack>: ... (<name>)`, picks the candidates before any
/// tag is read, and gives the name. An origin access control cannot be tagged at all: one is
/// taken as ours only with the stack's name prefix, the `-cdn` name thumbctl gives it and the
/// description thumbctl writes; and AWS refuses to delete one still in use by a distribution.
async fn cloudfront(ctx: &Ctx, stack: &str) -> Result<Vec<Entry>, AwsError> {
    let r = ctx.region.as_str();
    let prefix = format!("{stack}-");
    let comment_start = format!("thumbctl stack {stack}: ");
    let mut found = Vec::new();
    for d in distribution::list_all(ctx, "cloudfront").await? {
        let Some(name) = d
            .comment()
            .strip_prefix(&comment_start)
            .and_then(|rest| rest.rsplit_once('('))
            .map(|(_, name)| name.trim_end_matches(')'))
            .filter(|name| name.starts_with(&prefix))
        else {
            continue;
        };
        let tags = ctx
            .cloudfront
            .list_tags_for_resource()
            .resource(d.arn())
            .send()
            .await
            .map_err(aws("read tags of", distribution::KIND, name))?;
        let tags = tags
            .tags()
            .map(|t| t.items())
            .unwrap_or_default()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().unwrap_or_default().to_owned()));
        if ours_here(tags, stack, r) {
            let mut e = entry(distribution::KIND, name, Some(d.arn().to_owned()), r);
            e.extra.insert("id".into(), d.id().to_owned());
            e.extra.insert("domain".into(), d.domain_name().to_owned());
            found.push(e);
        }
    }
    let description = format!("thumbctl stack {stack}");
    for o in origin_access_control::list_all(ctx, "cloudfront").await? {
        if o.name().starts_with(&prefix)
            && o.name().ends_with("-cdn")
            && o.description() == description
        {
            let mut e = entry(origin_access_control::KIND, o.name(), None, r);
            e.extra.insert("id".into(), o.id().to_owned());
            found.push(e);
        }
    }
    Ok(found)
}

/// Tagged resources the state does not record.
pub async fn find(ctx: &Ctx, stack: &str, recorded: &[Entry]) -> Result<Vec<Entry>, AwsError> {
    let known: HashSet<(&str, &str)> = recorded
        .iter()
        .map(|e| (e.kind.as_str(), e.name.as_str()))
        .collect();
    let all = find_tagged(ctx, stack).await?;
    Ok(all
        .into_iter()
        .filter(|e| !known.contains(&(e.kind.as_str(), e.name.as_str())))
        .collect())
}

/// Deletes orphans, dependents first: the function (its permission and event-invoke config
/// go with it) and the distribution (which reads the bucket through the access control)
/// before the buckets (their notification and policy go with them), and those before the
/// roles and the access control.
pub async fn delete(ctx: &Ctx, orphans: &[Entry]) -> Vec<(Entry, Result<(), AwsError>)> {
    let rank: HashMap<&str, u8> = HashMap::from([
        (function::KIND, 0),
        (distribution::KIND, 0),
        (role::KIND, 2),
        (origin_access_control::KIND, 2),
    ]);
    let mut results = Vec::new();
    for tier in 0..=2u8 {
        let batch: Vec<&Entry> = orphans
            .iter()
            .filter(|e| *rank.get(e.kind.as_str()).unwrap_or(&1) == tier)
            .collect();
        let done = join_all(
            batch
                .iter()
                .map(|e| crate::resources::delete(ctx, e, &|_| {})),
        )
        .await;
        results.extend(batch.into_iter().cloned().zip(done));
    }
    results
}

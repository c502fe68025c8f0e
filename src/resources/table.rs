//! The DynamoDB table of image metadata.
//!
//! Key `id` (the source object key). Two global secondary indexes serve `thumbctl list`
//! newest-first without scanning the table: `by-time` (hash `listing`, a constant the
//! function writes, range `created_at`) and `by-status` (hash `status`, range `created_at`).

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableStatus, Tag,
};

use super::{Found, built};
use crate::context::Ctx;
use crate::error::{AwsError, OrNotFound, aws};
use crate::stack::Plan;

pub const KIND: &str = "table";
pub const INDEX_BY_TIME: &str = "by-time";
pub const INDEX_BY_STATUS: &str = "by-status";

fn key(name: &str, kind: KeyType, table: &str) -> Result<KeySchemaElement, AwsError> {
    built(
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build(),
        KIND,
        table,
    )
}

fn attr(name: &str, table: &str) -> Result<AttributeDefinition, AwsError> {
    built(
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build(),
        KIND,
        table,
    )
}

fn index(index: &str, hash: &str, table: &str) -> Result<GlobalSecondaryIndex, AwsError> {
    built(
        GlobalSecondaryIndex::builder()
            .index_name(index)
            .key_schema(key(hash, KeyType::Hash, table)?)
            .key_schema(key("created_at", KeyType::Range, table)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build(),
        KIND,
        table,
    )
}

pub async fn ensure(ctx: &Ctx, plan: &Plan, name: &str) -> Result<Found, AwsError> {
    let mut tags = Vec::new();
    for (k, v) in plan.tags() {
        tags.push(built(Tag::builder().key(k).value(v).build(), KIND, name)?);
    }
    let created = ctx
        .dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("id", KeyType::Hash, name)?)
        .attribute_definitions(attr("id", name)?)
        .attribute_definitions(attr("listing", name)?)
        .attribute_definitions(attr("status", name)?)
        .attribute_definitions(attr("created_at", name)?)
        .global_secondary_indexes(index(INDEX_BY_TIME, "listing", name)?)
        .global_secondary_indexes(index(INDEX_BY_STATUS, "status", name)?)
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(aws("create", KIND, name));
    let arn = match created {
        Ok(out) => out
            .table_description()
            .and_then(|t| t.table_arn())
            .map(str::to_owned),
        Err(e) if e.is_already_exists() => None,
        Err(e) => return Err(e),
    };
    wait_active(ctx, name).await?;
    Ok(Found::arn(arn.unwrap_or_else(|| plan.table_arn())))
}

/// The table's status; `None` when DynamoDB does not (or not yet) know it.
async fn status(ctx: &Ctx, name: &str) -> Result<Option<TableStatus>, AwsError> {
    Ok(ctx
        .dynamodb
        .describe_table()
        .table_name(name)
        .send()
        .await
        .map_err(aws("look up", KIND, name))
        .or_not_found()?
        .and_then(|o| o.table)
        .and_then(|t| t.table_status))
}

/// Polls until the table is ACTIVE. Not the SDK's `table_exists` waiter: it polls every 20 s,
/// and a new on-demand table is usually ACTIVE within seconds; the notification (and so the
/// whole of `up`) waits for it.
async fn wait_active(ctx: &Ctx, name: &str) -> Result<(), AwsError> {
    let started = std::time::Instant::now();
    let mut delay = Duration::from_millis(250);
    loop {
        let status = status(ctx, name).await?;
        match status {
            Some(TableStatus::Active) => return Ok(()),
            // Just created: DescribeTable may not see it for a moment.
            None | Some(TableStatus::Creating) | Some(TableStatus::Updating) => {}
            Some(other) => {
                return Err(AwsError::local(
                    "wait for",
                    KIND,
                    name,
                    format!(
                        "the table is {} instead of becoming ACTIVE; check it in the DynamoDB console, then rerun",
                        other.as_str()
                    ),
                ));
            }
        }
        if started.elapsed() > Duration::from_secs(300) {
            return Err(AwsError::local(
                "wait for",
                KIND,
                name,
                "the table was not ACTIVE after 5 minutes; rerun `thumbctl up` to keep waiting",
            ));
        }
        tracing::info!(table = name, status = ?status, "waiting for the table to become ACTIVE");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(3));
    }
}

pub async fn find(ctx: &Ctx, name: &str) -> Result<Option<Found>, AwsError> {
    let out = ctx
        .dynamodb
        .describe_table()
        .table_name(name)
        .send()
        .await
        .map_err(aws("look up", KIND, name))
        .or_not_found()?;
    Ok(out.and_then(|o| o.table).map(|t| Found {
        arn: t.table_arn,
        ..Found::default()
    }))
}

/// DynamoDB refuses to delete a table that is still CREATING or UPDATING (as after an `up`
/// killed right after CreateTable) with `ResourceInUseException`: wait for it, then delete.
/// A table already DELETING is as good as gone.
pub async fn delete(ctx: &Ctx, name: &str) -> Result<(), AwsError> {
    let started = std::time::Instant::now();
    loop {
        let err = match ctx
            .dynamodb
            .delete_table()
            .table_name(name)
            .send()
            .await
            .map_err(aws("delete", KIND, name))
            .or_not_found()
        {
            Ok(_) => return Ok(()),
            Err(e) if e.code.as_deref() == Some("ResourceInUseException") => e,
            Err(e) => return Err(e),
        };
        let status = status(ctx, name).await?;
        match status {
            None | Some(TableStatus::Deleting) => return Ok(()),
            _ if started.elapsed() > Duration::from_secs(300) => {
                return Err(AwsError {
                    message: format!(
                        "{} (still {} after 5 minutes); rerun `thumbctl destroy`",
                        err.message,
                        status.map(|s| s.as_str().to_owned()).unwrap_or_default()
                    ),
                    ..err
                });
            }
            Some(s) => {
                tracing::info!(
                    table = name,
                    status = s.as_str(),
                    "table busy; waiting to delete it"
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

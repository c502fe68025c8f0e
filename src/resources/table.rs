//! The DynamoDB table of image metadata.
//!
//! Key `id` (the source object key). Two global secondary indexes serve `thumbctl list`
//! newest-first without scanning the table: `by-time` (hash `listing`, a constant the
//! function writes, range `created_at`) and `by-status` (hash `status`, range `created_at`).

use std::time::Duration;

use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, Tag,
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
    ctx.dynamodb
        .wait_until_table_exists()
        .table_name(name)
        .wait(Duration::from_secs(300))
        .await
        .map_err(|e| {
            AwsError::local(
                "wait for",
                KIND,
                name,
                format!("table did not become active: {e}"),
            )
        })?;
    Ok(Found::arn(arn.unwrap_or_else(|| plan.table_arn())))
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

pub async fn delete(ctx: &Ctx, name: &str) -> Result<(), AwsError> {
    ctx.dynamodb
        .delete_table()
        .table_name(name)
        .send()
        .await
        .map_err(aws("delete", KIND, name))
        .or_not_found()?;
    Ok(())
}

//! `thumbctl permissions`: the policy to give whoever runs thumbctl. Needs no credentials,
//! since it is what one asks an administrator for before having any.

use crate::cli::GlobalArgs;
use crate::permissions::user_policy;
use crate::stack::partition_of;

pub fn run(global: &GlobalArgs) -> anyhow::Result<()> {
    let region = global.region.as_deref().unwrap_or("us-east-1");
    let policy = user_policy(&global.stack, partition_of(region));
    println!("{}", serde_json::to_string_pretty(&policy)?);
    Ok(())
}

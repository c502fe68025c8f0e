//! The IAM policy a person needs to run thumbctl, scoped to one stack name prefix.
//!
//! Pure, like `stack.rs`: `thumbctl permissions` prints it, the README shows it, and a test
//! gives a user exactly this policy on an emulator that enforces IAM, then takes away one
//! action at a time to see that each is really needed. Every action is here because an API
//! call thumbctl makes needs it (see the comment on each group); resources are the stack's
//! name patterns, except for the few calls AWS only authorises on `*`.

use serde_json::{Value, json};

/// One group of actions on one set of resources.
pub struct Grant {
    pub sid: &'static str,
    pub actions: &'static [&'static str],
    /// Resource patterns; `{p}` is the partition, `{s}` the stack name.
    pub resources: &'static [&'static str],
}

/// What `up`, `build-image`, `upload`, `list`/`get`/`delete`/`presign`, `invoke-local`,
/// `status`, `destroy` and `--orphans` call, grouped by resource.
pub const GRANTS: &[Grant] = &[
    // up: two buckets with their settings and notification; destroy: empty and delete them.
    Grant {
        sid: "Buckets",
        actions: &[
            "s3:CreateBucket",
            "s3:DeleteBucket",
            "s3:ListBucket",
            "s3:ListBucketVersions",
            "s3:ListBucketMultipartUploads",
            "s3:PutBucketPublicAccessBlock",
            "s3:PutEncryptionConfiguration",
            "s3:PutBucketPolicy",
            // up --cdn merges its statement into the destination bucket's policy; destroy
            // takes it out again (and deletes the policy if nothing else is left in it).
            "s3:GetBucketPolicy",
            "s3:DeleteBucketPolicy",
            "s3:PutBucketTagging",
            "s3:GetBucketTagging",
            "s3:PutBucketNotification",
            "s3:GetBucketNotification",
            // Lifecycle rules (up), and status/up reading back rules and protections (drift).
            "s3:PutLifecycleConfiguration",
            "s3:GetLifecycleConfiguration",
            "s3:GetBucketPublicAccessBlock",
            // up --source-bucket reads how the adopted bucket encrypts: a customer managed KMS
            // key is granted to the function's role (kms:Decrypt, in the role's policy).
            "s3:GetEncryptionConfiguration",
        ],
        resources: &["arn:{p}:s3:::{s}-*"],
    },
    // upload, get, delete, presign, build-image's source zip; destroy empties the buckets.
    Grant {
        sid: "Objects",
        actions: &[
            "s3:PutObject",
            "s3:GetObject",
            "s3:DeleteObject",
            "s3:DeleteObjectVersion",
            "s3:AbortMultipartUpload",
        ],
        resources: &["arn:{p}:s3:::{s}-*/*"],
    },
    // The two roles and their inline policies; tags are set at creation.
    Grant {
        sid: "Roles",
        actions: &[
            "iam:CreateRole",
            "iam:GetRole",
            "iam:DeleteRole",
            "iam:TagRole",
            "iam:ListRoleTags",
            "iam:PutRolePolicy",
            "iam:GetRolePolicy",
            "iam:DeleteRolePolicy",
            "iam:ListRolePolicies",
            "iam:ListAttachedRolePolicies",
            "iam:DetachRolePolicy",
        ],
        resources: &["arn:{p}:iam::*:role/{s}-*"],
    },
    // CreateFunction and CreateProject hand the roles to Lambda and CodeBuild.
    Grant {
        sid: "PassRoles",
        actions: &["iam:PassRole"],
        resources: &["arn:{p}:iam::*:role/{s}-*"],
    },
    Grant {
        sid: "Repository",
        actions: &[
            "ecr:CreateRepository",
            "ecr:DeleteRepository",
            "ecr:DescribeRepositories",
            "ecr:DescribeImages",
            "ecr:SetRepositoryPolicy",
            "ecr:GetRepositoryPolicy",
            "ecr:TagResource",
            "ecr:ListTagsForResource",
            "ecr:PutLifecyclePolicy",
            "ecr:GetLifecyclePolicy",
            // The push of build-image --local / the default image path.
            "ecr:BatchCheckLayerAvailability",
            "ecr:InitiateLayerUpload",
            "ecr:UploadLayerPart",
            "ecr:CompleteLayerUpload",
            "ecr:PutImage",
            // CreateFunction checks that the caller may read the image it names.
            "ecr:BatchGetImage",
            "ecr:GetDownloadUrlForLayer",
        ],
        resources: &["arn:{p}:ecr:*:*:repository/{s}-*"],
    },
    Grant {
        sid: "BuildProject",
        actions: &[
            "codebuild:CreateProject",
            "codebuild:UpdateProject",
            "codebuild:DeleteProject",
            "codebuild:BatchGetProjects",
            "codebuild:StartBuild",
            "codebuild:StopBuild",
            "codebuild:BatchGetBuilds",
        ],
        resources: &["arn:{p}:codebuild:*:*:project/{s}-*"],
    },
    Grant {
        sid: "LogGroups",
        actions: &[
            "logs:CreateLogGroup",
            "logs:DeleteLogGroup",
            "logs:PutRetentionPolicy",
            "logs:TagResource",
            "logs:ListTagsForResource",
            "logs:GetLogEvents",
        ],
        resources: &[
            "arn:{p}:logs:*:*:log-group:/aws/lambda/{s}-*",
            "arn:{p}:logs:*:*:log-group:/aws/codebuild/{s}-*",
        ],
    },
    Grant {
        sid: "Table",
        actions: &[
            "dynamodb:CreateTable",
            "dynamodb:DeleteTable",
            "dynamodb:DescribeTable",
            "dynamodb:TagResource",
            "dynamodb:ListTagsOfResource",
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:DeleteItem",
            "dynamodb:Query",
            // invoke-local runs the function's handler here, with your credentials.
            "dynamodb:PutItem",
        ],
        resources: &[
            "arn:{p}:dynamodb:*:*:table/{s}-*",
            "arn:{p}:dynamodb:*:*:table/{s}-*/index/*",
        ],
    },
    // The topic, and the subscriptions of --notify-email/--notify-url (their ARNs extend
    // the topic's, so the same pattern covers them).
    Grant {
        sid: "Topic",
        actions: &[
            "sns:CreateTopic",
            "sns:DeleteTopic",
            "sns:GetTopicAttributes",
            "sns:TagResource",
            "sns:ListTagsForResource",
            "sns:Subscribe",
            "sns:Unsubscribe",
            "sns:GetSubscriptionAttributes",
            // invoke-local's handler announces the thumbnails, as the function does.
            "sns:Publish",
        ],
        resources: &["arn:{p}:sns:*:*:{s}-*"],
    },
    Grant {
        sid: "Function",
        actions: &[
            "lambda:CreateFunction",
            "lambda:GetFunction",
            "lambda:GetFunctionConfiguration",
            "lambda:DeleteFunction",
            "lambda:UpdateFunctionCode",
            "lambda:UpdateFunctionConfiguration",
            "lambda:TagResource",
            "lambda:ListTags",
            "lambda:AddPermission",
            "lambda:RemovePermission",
            "lambda:GetPolicy",
            "lambda:PutFunctionEventInvokeConfig",
            "lambda:GetFunctionEventInvokeConfig",
            "lambda:DeleteFunctionEventInvokeConfig",
            // up --max-concurrency; status shows it.
            "lambda:PutFunctionConcurrency",
            "lambda:DeleteFunctionConcurrency",
            "lambda:GetFunctionConcurrency",
            // reprocess sends each original's event to the function.
            "lambda:InvokeFunction",
        ],
        resources: &["arn:{p}:lambda:*:*:function:{s}-*"],
    },
    // The failure queue (the function's on-failure destination); reprocess --failed replays
    // and deletes its messages; status counts them.
    Grant {
        sid: "FailureQueue",
        actions: &[
            "sqs:CreateQueue",
            "sqs:TagQueue",
            "sqs:GetQueueUrl",
            "sqs:GetQueueAttributes",
            "sqs:DeleteQueue",
            "sqs:ListQueueTags",
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
        ],
        resources: &["arn:{p}:sqs:*:*:{s}-*"],
    },
    // up --cdn: the distribution and its origin access control. CloudFront generates their
    // ids, so no name pattern can scope them: any of the account's (like BatchJobs). Tags
    // are set at creation (CreateDistributionWithTags needs TagResource too).
    Grant {
        sid: "Cdn",
        actions: &[
            "cloudfront:CreateDistribution",
            "cloudfront:TagResource",
            "cloudfront:ListTagsForResource",
            "cloudfront:GetDistribution",
            "cloudfront:GetDistributionConfig",
            "cloudfront:UpdateDistribution",
            "cloudfront:DeleteDistribution",
            "cloudfront:CreateOriginAccessControl",
            "cloudfront:GetOriginAccessControl",
            "cloudfront:DeleteOriginAccessControl",
        ],
        resources: &[
            "arn:{p}:cloudfront::*:distribution/*",
            "arn:{p}:cloudfront::*:origin-access-control/*",
        ],
    },
    // delete (and the function's handler run here by invoke-local and reprocess --local)
    // invalidates the thumbnails it deletes, which the CDN would serve for up to a year.
    // Only this action; on distributions, the narrowest pattern a policy written before
    // CloudFront generates the id can name (the function's role gets the exact ARN).
    Grant {
        sid: "CdnInvalidation",
        actions: &["cloudfront:CreateInvalidation"],
        resources: &["arn:{p}:cloudfront::*:distribution/*"],
    },
    // reprocess --batch follows its S3 Batch Operations job. Jobs have generated ids, so the
    // pattern is any job of the account (CreateJob itself is authorised only on "*").
    Grant {
        sid: "BatchJobs",
        actions: &["s3:DescribeJob"],
        resources: &["arn:{p}:s3:*:*:job/*"],
    },
    // AWS authorises these only on "*": the ECR login token, S3 Batch Operations' CreateJob
    // (the job does not exist yet), and the listings that `status --orphans` searches (it
    // then reads tags only of names with the stack prefix).
    Grant {
        sid: "AccountWide",
        actions: &[
            "ecr:GetAuthorizationToken",
            "s3:CreateJob",
            "s3:ListAllMyBuckets",
            "iam:ListRoles",
            "codebuild:ListProjects",
            "dynamodb:ListTables",
            "sns:ListTopics",
            "logs:DescribeLogGroups",
            "lambda:ListFunctions",
            "sqs:ListQueues",
            // up --cdn finds a distribution or access control it made but could not record
            // (a crash between the create and the state write) by its comment or name;
            // status --orphans lists them to find what a lost state file leaves.
            "cloudfront:ListDistributions",
            "cloudfront:ListOriginAccessControls",
        ],
        resources: &["*"],
    },
];

/// The policy document for stack `stack` in partition `partition`.
pub fn user_policy(stack: &str, partition: &str) -> Value {
    user_policy_without(stack, partition, None)
}

/// The same, minus one action (to show, on an emulator that enforces IAM, that it is needed).
pub fn user_policy_without(stack: &str, partition: &str, without: Option<&str>) -> Value {
    let statements: Vec<Value> = GRANTS
        .iter()
        .filter_map(|g| {
            let actions: Vec<&str> = g
                .actions
                .iter()
                .copied()
                .filter(|a| Some(*a) != without)
                .collect();
            if actions.is_empty() {
                return None;
            }
            let resources: Vec<String> = g
                .resources
                .iter()
                .map(|r| r.replace("{p}", partition).replace("{s}", stack))
                .collect();
            let mut st = json!({
                "Sid": g.sid, "Effect": "Allow", "Action": actions, "Resource": resources
            });
            if g.sid == "PassRoles" {
                // Only to the two services that run as these roles.
                st["Condition"] = json!({"StringEquals": {"iam:PassedToService": [
                    "lambda.amazonaws.com", "codebuild.amazonaws.com",
                    "batchoperations.s3.amazonaws.com"
                ]}});
            }
            Some(st)
        })
        .collect();
    json!({"Version": "2012-10-17", "Statement": statements})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_once_and_only_account_wide_on_star() {
        let all: Vec<&str> = GRANTS
            .iter()
            .flat_map(|g| g.actions.iter().copied())
            .collect();
        let mut seen = std::collections::HashSet::new();
        for a in &all {
            assert!(seen.insert(a), "{a} listed twice");
            assert!(!a.contains('*'), "wildcard action {a}");
        }
        let p = user_policy("demo", "aws");
        for st in p["Statement"].as_array().into_iter().flatten() {
            for r in st["Resource"].as_array().into_iter().flatten() {
                let r = r.as_str().unwrap_or_default();
                assert!(
                    r == "*" && st["Sid"] == "AccountWide"
                        || r.contains("demo-")
                        || st["Sid"] == "BatchJobs" && r.ends_with(":job/*")
                        || st["Sid"] == "Cdn" && r.ends_with("/*")
                        || st["Sid"] == "CdnInvalidation" && r.ends_with(":distribution/*"),
                    "{r} in {st}"
                );
            }
        }
    }

    #[test]
    fn removing_an_action_removes_only_it() {
        let full = user_policy("demo", "aws-cn").to_string();
        let less = user_policy_without("demo", "aws-cn", Some("iam:PassRole"));
        assert!(full.contains("arn:aws-cn:lambda:*:*:function:demo-*"));
        assert!(!less.to_string().contains("iam:PassRole"));
        assert!(less.to_string().contains("iam:CreateRole"));
    }

    #[test]
    fn deletes_may_invalidate_distributions_and_nothing_else() {
        let p = user_policy("demo", "aws");
        let granting: Vec<&Value> = p["Statement"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|st| st.to_string().contains("cloudfront:CreateInvalidation"))
            .collect();
        assert_eq!(granting.len(), 1);
        assert_eq!(
            granting[0]["Action"],
            json!(["cloudfront:CreateInvalidation"])
        );
        assert_eq!(
            granting[0]["Resource"],
            json!(["arn:aws:cloudfront::*:distribution/*"])
        );
    }
}

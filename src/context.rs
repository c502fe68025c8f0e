//! Everything a command needs to talk to AWS: one shared SDK configuration, one client per
//! service, and how to print.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::cli::GlobalArgs;
use crate::error::{AwsError, aws};

pub struct Ctx {
    pub region: String,
    pub endpoint: Option<String>,
    /// The SDK configuration's credentials, for what thumbctl signs itself (a POST policy).
    pub credentials: Option<aws_sdk_s3::config::SharedCredentialsProvider>,
    pub s3: aws_sdk_s3::Client,
    pub iam: aws_sdk_iam::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub codebuild: aws_sdk_codebuild::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sns: aws_sdk_sns::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub sts: aws_sdk_sts::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub s3control: aws_sdk_s3control::Client,
    pub cloudfront: aws_sdk_cloudfront::Client,
}

/// Builds the SDK configuration the same way the AWS CLI does (environment, profile, SSO),
/// with thumbctl's overrides. Also used by `invoke-local` to build the handler's clients.
pub async fn load_sdk_config(global: &GlobalArgs) -> Result<SdkConfig, AwsError> {
    // Standard retries with jittered backoff, bounded: throttling, 5xx and connection errors
    // are retried up to 6 attempts; beyond that the error names the call and a rerun resumes.
    // AWS_MAX_ATTEMPTS / AWS_RETRY_MODE, when set, win, as in every AWS SDK.
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if std::env::var_os("AWS_MAX_ATTEMPTS").is_none()
        && std::env::var_os("AWS_RETRY_MODE").is_none()
    {
        loader = loader.retry_config(
            RetryConfig::standard()
                .with_max_attempts(6)
                .with_max_backoff(Duration::from_secs(10)),
        );
    }
    if let Some(region) = &global.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(profile) = &global.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &global.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    // The function's own choice of roots (lambda_image::tls): the system's where there are
    // any, else the compiled-in ones, so a host with no CA bundle (a minimal container) still
    // reaches AWS, where the SDK's default client would panic on its first request.
    loader = loader.http_client(lambda_image::tls::https_client(&lambda_image::tls::load()));
    let sdk = loader.load().await;
    // Resolved once here so that their values are scrubbed from every log line, and so that
    // missing credentials are reported before anything else is tried.
    lambda_image::redact::register_credentials(&sdk)
        .await
        .map_err(AwsError::no_credentials)?;
    Ok(sdk)
}

/// S3 Control addresses `<account>.s3-control.<region>.amazonaws.com`; its endpoint rules
/// put the account in front of an overridden endpoint too (`123456789012.127.0.0.1`, which
/// resolves nowhere), so with an endpoint given, every call goes to exactly that endpoint.
fn s3control_client(sdk: &SdkConfig, endpoint: Option<&str>) -> aws_sdk_s3control::Client {
    use aws_sdk_s3control::config::endpoint::{EndpointFuture, Params, ResolveEndpoint};
    use aws_smithy_types::endpoint::Endpoint;

    #[derive(Debug)]
    struct Exactly(String);
    impl ResolveEndpoint for Exactly {
        fn resolve_endpoint<'a>(&'a self, _: &'a Params) -> EndpointFuture<'a> {
            EndpointFuture::ready(Ok(Endpoint::builder().url(self.0.clone()).build()))
        }
    }
    let mut conf = aws_sdk_s3control::config::Builder::from(sdk);
    if let Some(url) = endpoint {
        conf = conf.endpoint_resolver(Exactly(url.to_owned()));
    }
    aws_sdk_s3control::Client::from_conf(conf.build())
}

/// CloudFront is a global service with one API endpoint per partition, signed for its home
/// region whatever region the stack is in: us-east-1 (cn-northwest-1 in China). An endpoint
/// override (an emulator) still wins, as the SDK applies it after the region.
fn cloudfront_client(sdk: &SdkConfig, stack_region: &str) -> aws_sdk_cloudfront::Client {
    let home = match crate::stack::partition_of(stack_region) {
        "aws-cn" => "cn-northwest-1",
        _ => "us-east-1",
    };
    let conf = aws_sdk_cloudfront::config::Builder::from(sdk)
        .region(Region::new(home))
        .build();
    aws_sdk_cloudfront::Client::from_conf(conf)
}

impl Ctx {
    pub async fn new(global: &GlobalArgs) -> anyhow::Result<Ctx> {
        let sdk = load_sdk_config(global).await?;
        let region = sdk.region().map(|r| r.to_string()).ok_or_else(|| {
            anyhow::anyhow!(
                "no AWS region is set.\n  hint: pass --region (e.g. --region eu-west-1), set AWS_REGION, or set `region` in your AWS profile"
            )
        })?;
        let endpoint = sdk.endpoint_url().map(str::to_owned);
        // Emulators and custom endpoints answer on one host name, so S3 must address buckets
        // by path; virtual-host addressing would send to `<bucket>.localhost`.
        let s3_conf = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(endpoint.is_some())
            .build();
        Ok(Ctx {
            s3: aws_sdk_s3::Client::from_conf(s3_conf),
            iam: aws_sdk_iam::Client::new(&sdk),
            ecr: aws_sdk_ecr::Client::new(&sdk),
            codebuild: aws_sdk_codebuild::Client::new(&sdk),
            lambda: aws_sdk_lambda::Client::new(&sdk),
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
            sns: aws_sdk_sns::Client::new(&sdk),
            logs: aws_sdk_cloudwatchlogs::Client::new(&sdk),
            sts: aws_sdk_sts::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            s3control: s3control_client(&sdk, endpoint.as_deref()),
            cloudfront: cloudfront_client(&sdk, &region),
            credentials: sdk.credentials_provider(),
            region,
            endpoint,
        })
    }

    /// Whether buckets get the policy that denies requests without TLS. Always on real AWS.
    /// Against a plain-HTTP emulator that policy would deny every object request (moto
    /// enforces it), so it is left out there unless `THUMBCTL_TLS_POLICY=always` asks for it
    /// (the tests do, to read it back and see it enforced).
    pub fn tls_only_policy(&self) -> bool {
        let plain_http = self
            .endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"));
        !plain_http || std::env::var("THUMBCTL_TLS_POLICY").is_ok_and(|v| v == "always")
    }

    /// The account the credentials belong to; also the first check that credentials work.
    pub async fn account_id(&self) -> Result<String, AwsError> {
        let out = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(aws("identify", "caller", "sts"))?;
        out.account.ok_or_else(|| {
            AwsError::local("identify", "caller", "sts", "STS returned no account id")
        })
    }
}

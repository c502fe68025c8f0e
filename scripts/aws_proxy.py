#!/usr/bin/env python3
"""An HTTP proxy in front of moto that behaves the way real AWS does where moto is kinder.

moto applies every change at once and never says "not yet". AWS does, and each of these
answers is documented by AWS or reported many times in the SDKs' and Terraform's trackers.
Each behaviour is switched on by name and counted every time it fires, so a test can assert
both that thumbctl coped and that the behaviour really happened:

  iam-propagation       for --propagation seconds after a role was created (CreateRole) or, for
                        the queue, its policy written (PutRolePolicy, AttachRolePolicy), per
                        role, as seen through this proxy: CreateFunction with that role answers
                        InvalidParameterValueException "The role defined for the function cannot
                        be assumed by Lambda."; CreateProject with it as service role answers
                        InvalidInputException "CodeBuild is not authorized to perform:
                        sts:AssumeRole on service role. [...]"; an event-invoke config naming an
                        on-failure queue, of a function with that role, answers
                        InvalidParameterValueException "The provided execution role does not
                        have permissions to call SendMessage on SQS". Every call in the window
                        is refused, so a retry must wait, not just try twice (IAM User Guide,
                        troubleshooting: changes are eventually consistent; see
                        iam_not_propagated for the issues quoting each text).
  function-states       a function is Pending for --settle seconds after CreateFunction and
                        its LastUpdateStatus InProgress after an update; calls that change it
                        meanwhile, and for one second more, answer ResourceConflictException:
                        "An update is in progress for resource" after an update, and while it
                        is being created "The function is currently in the following state:
                        Pending" (AddPermission, PutFunctionEventInvokeConfig) or "The resource
                        ARN is currently in the following state: 'Pending'. StateReasonCode:
                        'Creating'" (updates). Reproduces AWS Compute Blog "Tracking the state
                        of Lambda functions" / "Expansion of AWS Lambda states to all
                        functions" (calls refused while Pending or InProgress); the texts as
                        quoted in claudiajs/claudia#226, rackerlabs/lambda-uploader#169 and
                        pending_conflict's references.
  function-failed       the first function created reports State Failed (ImageAccessDenied)
                        until it is deleted (Lambda API reference, FunctionConfiguration:
                        State Failed, StateReasonCode ImageAccessDenied).
  notification-validation  PutBucketNotificationConfiguration naming a Lambda function is
                        refused, as S3 validates it, while the function's resource policy (read
                        from moto) has no Allow for s3.amazonaws.com to lambda:InvokeFunction
                        with the bucket as SourceArn (forever, as AWS), and for --propagation
                        seconds after an AddPermission to it: 400 InvalidArgument "Unable to
                        validate the following destination configurations" with
                        ArgumentName1 "ARN, null" and ArgumentValue1 "Not authorized to invoke
                        function [ARN]" (awslabs/aws-lambda-redshift-loader#219). Counted as
                        notification-validation:no-permission and :propagating.
  notification-destinations  a PutBucketNotificationConfiguration without the header
                        x-amz-skip-destination-validation: true is refused, as S3 refuses it,
                        when a queue, topic or function it names does not exist in moto:
                        400 InvalidArgument "Unable to validate the following destination
                        configurations" with <ArgumentName1>ARN, null</ArgumentName1>
                        <ArgumentValue1>reason</ArgumentValue1> per destination. An accepted
                        validated write counts a test event per destination
                        (notification-destinations:test-event:ARN), as S3 sends one to each;
                        a skipped validation counts notification-destinations:skipped.
  kms-bucket            a GetObject from a bucket whose default encryption names a KMS key
                        (SSE-KMS with a customer managed key) is answered 403 AccessDenied "The
                        ciphertext refers to a customer master key that does not exist, does
                        not exist in this region, or you are not allowed to access." unless an
                        IAM role of the account holds an inline policy allowing kms:Decrypt on
                        that key (the proxy cannot tell who calls: it stands for the function's
                        role, the only one in a test that reads sources). moto stores the key
                        and decrypts nothing.
  fresh-bucket          the first two settings calls on a bucket created a moment ago answer
                        409 OperationAborted, then 404 NoSuchBucket (S3 error responses:
                        OperationAborted "A conflicting conditional operation is currently in
                        progress against this resource. Please try again."; met on settings
                        calls after CreateBucket in hashicorp/terraform-provider-aws#11789 and
                        ansible/ansible#67811).
  lost-answers          the first call of every create, delete and settings write that `up`
                        and `destroy` make (LOSABLE: IAM, SNS, SQS, S3 incl. policy, lifecycle
                        and object deletes, Lambda incl. permission, event-invoke config and
                        concurrency, DynamoDB, ECR incl. lifecycle policy, Logs, CodeBuild,
                        CloudFront distribution and origin access control) is applied by moto,
                        and the connection is then dropped before the answer, so the SDK's
                        retry meets "already exists", "not found" or a stale ETag. Where moto
                        gets the retry wrong, the proxy answers as CloudFront does: a second
                        origin access control of one name is 409
                        OriginAccessControlAlreadyExists, a delete of a missing one 404
                        NoSuchOriginAccessControl (moto: a duplicate, and 500).
  pending-subscription  a subscription whose endpoint must confirm it (email, email-json,
                        http, https) stays unconfirmed, and Unsubscribe of it answers
                        InvalidParameter "Invalid parameter: SubscriptionArn Reason: Cannot
                        unsubscribe a subscription that is pending confirmation"; others
                        (sqs, lambda) are confirmed at once and go to moto.
  table-creating        a table reports CREATING for --settle seconds after CreateTable, and
                        DeleteTable meanwhile answers ResourceInUseException. Counted per
                        table: the CREATING answers served (creating-served:TABLE), and every
                        PutBucketNotificationConfiguration naming a function that arrived
                        while the table was still CREATING (trigger-while-creating:TABLE).
                        DynamoDB API reference, DeleteTable: ResourceInUseException for a
                        table in the CREATING or UPDATING state.
  new-account-cloudfront  every CloudFront create (distribution, origin access control)
                        answers 403 AccessDenied "Your account must be verified before you can
                        add new CloudFront resources. [...]", as for a brand-new account.
  new-account-codebuild StartBuild answers AccountLimitExceededException "Cannot have more
                        than 0 builds in queue for the account", as for a brand-new account.
  new-account-concurrency  PutFunctionConcurrency answers InvalidParameterValueException
                        "Specified ReservedConcurrentExecutions for function decreases
                        account's UnreservedConcurrentExecution below its minimum value of
                        [10].", as for a brand-new account (10 concurrent executions in all).
  slow-create           CreateFunction is held --settle seconds before it goes to moto (a
                        create still in flight after its caller was killed). Not an AWS answer:
                        a timing any network can give.
  cloudfront-in-progress  for --settle seconds after each UpdateDistribution, per
                        distribution, GetDistribution says Status InProgress (moto says
                        Deployed at once; AWS takes minutes to deploy a change), however often
                        it is asked. As on AWS (CloudFront API reference, DeleteDistribution
                        and UpdateDistribution errors), DeleteDistribution answers 409
                        DistributionNotDisabled while the distribution is enabled or a change
                        is InProgress; DeleteDistribution and UpdateDistribution answer 400
                        InvalidIfMatchVersion "The If-Match version is missing or not valid for
                        the resource." without an If-Match (aws/aws-sdk#576), and 412
                        PreconditionFailed when it is not the current ETag.
  invalidations-in-progress  each new invalidation batch (CallerReference) is answered 400
                        TooManyInvalidationsInProgress for --settle seconds from its first
                        attempt, as AWS answers while 3,000 paths are in progress on the
                        distribution (CloudFront Developer Guide, "Concurrent invalidation
                        request maximum"; the message is the API reference's): a caller must
                        wait and send the same batch again (one that makes a new reference
                        for every attempt is refused for ever). And, as AWS does and moto not,
                        a CallerReference sent again with the same paths is answered with
                        the invalidation it made (no second one), and with other paths
                        400 InvalidArgument "Your request contains a caller reference that
                        was used for a previous invalidation batch for the same
                        distribution." (the answer reported in drupal.org issue 3304477; the
                        API reference calls it InvalidationBatchAlreadyExists).
  async-invoke          an asynchronous Invoke (InvocationType Event) is answered 202 and its
                        payload kept (GET /__invocations), as AWS queues it; the first two are
                        throttled (429 TooManyRequestsException). moto would answer 500.
                        Lambda API reference, Invoke: status 202 for the Event invocation
                        type; TooManyRequestsException, HTTP 429.
  post-policy           a browser-form upload (multipart/form-data POST to a bucket) is checked
                        as S3 checks it, which moto does not: the SigV4 signature of the policy
                        (with the secret of AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in this
                        process's environment, default test/test as moto's), its expiration,
                        every condition (eq, starts-with, content-length-range against the
                        file's size), and that every field is covered by a condition. Fields
                        after `file` are ignored, as S3 does. A violation is answered as S3
                        does (EntityTooLarge, EntityTooSmall, AccessDenied "Invalid according to
                        Policy: ...", SignatureDoesNotMatch, ...); a valid form goes to moto with
                        ${filename} in its key replaced by the file's name. S3 API reference,
                        "Browser-based uploads using POST" and "Creating a POST policy".
  batch-operations      S3 Control CreateJob and DescribeJob (moto has no S3 Batch Operations):
                        each request is recorded and its manifest read from moto (ETag checked);
                        a job goes New, Preparing, Ready (--settle seconds each), Active until
                        the test posts the function's answers to its tasks, Completing, then
                        Complete with their counts. GET /__batch-jobs answers every job: its
                        request as JSON, the Lambda event of each task (shaped by the job's
                        invocation schema, s3Key as the manifest writes it) and the status each
                        DescribeJob was answered; POST /__batch-jobs/ID/results takes the
                        function's responses.

  credentials           a request signed with an access key id the proxy does not know (see
                        SECRETS: AWS_ACCESS_KEY_ID of its environment, default test) is
                        refused as AWS refuses an unknown key, by protocol: query services (STS,
                        IAM, SNS) 403 InvalidClientTokenId "The security token included in the
                        request is invalid." (STS API reference, Common Errors), S3 403
                        InvalidAccessKeyId "The AWS Access Key Id you provided does not exist in
                        our records." (S3 error responses), JSON services 400
                        UnrecognizedClientException (DynamoDB common errors). moto accepts any key.

    aws_proxy.py --listen 127.0.0.1:PORT --target 127.0.0.1:MOTO --behave a,b [--settle 1.5]
                 [--propagation SECONDS (default: --settle)]

Prints "ready" when listening; GET /__counts answers the counts as JSON, and they are printed
on SIGTERM/SIGINT. Whatever the behaviours, GET /__cloudfront answers the CloudFront changes
moto accepted, in order, as JSON [{"action", "distribution", "body"}] (CreateDistribution,
UpdateDistribution, CreateInvalidation; body as sent): moto drops parts of a distribution's
configuration (an origin's OriginAccessControlId), so a test reads what thumbctl sent here.
"""
import argparse
import fnmatch
import base64
import calendar
import hashlib
import hmac
import http.client
import os
import json
import re
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()
COUNTS = {"requests": 0}
BEHAVE = set()
SETTLE = 1.5
PROPAGATION = 1.5   # seconds IAM and Lambda policies take to be seen (--propagation)
LAG = 1.0
DEBUG = bool(__import__("os").environ.get("AWS_PROXY_DEBUG"))
# Per-resource memory: when a function or table was created or updated, which function is
# Failed, which buckets are fresh, which actions already lost an answer.
FUNCTION_BUSY_UNTIL = {}   # name -> (until, "create"|"update")
FAILED_FUNCTION = {"name": None, "used": False}
TABLE_CREATING_UNTIL = {}
FRESH_BUCKET_FAULTS = {}   # bucket -> faults still to give
LOST = set()
FIRST = set()
CF_IN_PROGRESS = {}   # distribution id -> until when its last change is InProgress
CF_DISTRIBUTION = re.compile(r"^/2020-05-31/distribution/([^/?]+)(/config)?$")
INVOCATIONS = []   # asynchronous invocations accepted by async-invoke, for GET /__invocations
CF_CHANGES = []    # CloudFront changes moto accepted, for GET /__cloudfront
CF_INVALIDATION = re.compile(r"^/2020-05-31/distribution/([^/?]+)/invalidation$")
CF_INVALIDATING_SINCE = {}   # (distribution id, caller reference) -> time of its first attempt
CF_REFERENCES = {}   # (distribution id, caller reference) -> (paths, status, headers, body)
# The secret of each access key id, to verify POST policy signatures as S3 does.
SECRETS = {os.environ.get("AWS_ACCESS_KEY_ID") or "test":
           os.environ.get("AWS_SECRET_ACCESS_KEY") or "test"}

LAMBDA_FN = re.compile(r"^/2015-03-31/functions/([^/?]+)(/[^?]*)?")
INVOKE_CONFIG = re.compile(r"^/2019-09-25/functions/([^/?]+)/event-invoke-config")
BUCKET_SETTINGS = ("publicAccessBlock", "encryption", "policy", "tagging")


def count(name):
    with LOCK:
        COUNTS[name] = COUNTS.get(name, 0) + 1


def once(key):
    """True the first time `key` is seen."""
    with LOCK:
        if key in FIRST:
            return False
        FIRST.add(key)
        return True


def cloudfront_error(status, code, message):
    return status, {"Content-Type": "text/xml"}, (
        '<?xml version="1.0"?><ErrorResponse xmlns="http://cloudfront.amazonaws.com/doc/'
        '2020-05-31/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>'
        "<RequestId>aws-proxy</RequestId></ErrorResponse>" % (code, message)).encode()


def moto_get(path, headers):
    """(status, headers, body) of a GET to moto, signed as the caller's request was (moto
    picks the service from the credential scope)."""
    conn = http.client.HTTPConnection(TARGET_HOST, TARGET_PORT, timeout=60)
    conn.request("GET", path, headers={k: v for k, v in headers.items()
                                       if k.lower() not in ("content-length", "content-type",
                                                            "if-match")})
    resp = conn.getresponse()
    body = resp.read()
    out = (resp.status, {k.lower(): v for k, v in resp.getheaders()}, body)
    conn.close()
    return out


SCOPE = re.compile(r"(Credential=[^/,\s]+/\d{8}/[^/]+/)([^/]+)(/aws4_request)")


def moto_get_as(service, path, headers):
    """A GET to moto of another service than the caller's (S3 reading a function's policy):
    the caller's headers with the credential scope naming `service`, which moto routes by
    (it does not check signatures)."""
    out = {k: v for k, v in headers.items()
           if k.lower() not in ("content-length", "content-type", "if-match", "x-amz-target",
                                "content-md5", "x-amz-content-sha256")}
    for k in list(out):
        if k.lower() == "authorization":
            out[k] = SCOPE.sub(lambda m: m.group(1) + service + m.group(3), out[k])
    return moto_get(path, out)


def enabled_flag(config_xml):
    """The top-level <Enabled> of a DistributionConfig document (nested ones, of logging or
    trusted signers, sit deeper)."""
    depth = 0
    for m in re.finditer(rb"<(/?)([A-Za-z0-9]+)[^>]*?(/?)>", config_xml):
        closing, name, empty = m.group(1), m.group(2), m.group(3)
        if empty:
            continue
        if closing:
            depth -= 1
            continue
        depth += 1
        if name == b"Enabled" and depth == 2:
            end = config_xml.find(b"<", m.end())
            return config_xml[m.end():end].strip() == b"true"
    return False


def json_error(status, type_, message):
    return status, {"Content-Type": "application/x-amz-json-1.1"}, \
        json.dumps({"__type": type_, "message": message}).encode()


def lambda_error(status, type_, message):
    return status, {"Content-Type": "application/json", "x-amzn-ErrorType": type_}, \
        json.dumps({"Type": "User", "message": message}).encode()


def query_error(code, message):
    return 400, {"Content-Type": "text/xml"}, (
        "<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>"
        "<RequestId>aws-proxy</RequestId></ErrorResponse>" % (code, message)).encode()


def s3_error(status, code, message):
    return status, {"Content-Type": "application/xml"}, (
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message>'
        "<RequestId>aws-proxy</RequestId></Error>" % (code, message)).encode()


class Request:
    """What the proxy needs to know about one request: service, action, resource."""

    def __init__(self, handler, body):
        self.method = handler.command
        self.path = handler.path
        split = urlsplit(self.path)
        self.route = split.path
        self.query = parse_qs(split.query, keep_blank_values=True)
        self.body = body
        self.invocation_type = handler.headers.get("X-Amz-Invocation-Type", "")
        self.headers = {k: v for k, v in handler.headers.items() if k.lower() != "connection"}
        target = handler.headers.get("X-Amz-Target", "")
        self.service, self.action = "", ""
        self.params = {}
        if target:
            self.service, _, self.action = target.partition(".")
            try:
                self.params = json.loads(body or b"{}")
            except ValueError:
                self.params = {}
        elif b"Action=" in body[:300] and handler.headers.get("Content-Type", "").startswith(
                "application/x-www-form-urlencoded"):
            form = parse_qs(body.decode(errors="replace"))
            self.service = "query"
            self.action = form.get("Action", [""])[0]
            self.params = {k: v[0] for k, v in form.items()}
        elif self.route.startswith("/2020-05-31/"):
            self.service = "cloudfront"
            self.action = self.cloudfront_action()
        elif self.route.startswith(("/2015-03-31/", "/2019-09-25/", "/2017-03-31/",
                                    "/2017-10-31/")):
            self.service = "lambda"
            self.action = self.lambda_action()
        elif not self.route.startswith("/moto-api") and not self.route.startswith("/__"):
            self.service = "s3"
            self.action = self.s3_action()

    def lambda_action(self):
        m, r = self.method, self.route.rstrip("/")
        if r == "/2015-03-31/functions" and m == "POST":
            return "CreateFunction"
        if FUNCTION_CONCURRENCY.match(r):
            return {"PUT": "PutFunctionConcurrency", "DELETE": "DeleteFunctionConcurrency",
                    "GET": "GetFunctionConcurrency"}.get(m, "")
        if INVOKE_CONFIG.match(r):
            return {"PUT": "PutFunctionEventInvokeConfig", "GET": "GetFunctionEventInvokeConfig",
                    "DELETE": "DeleteFunctionEventInvokeConfig"}.get(m, "")
        fm = LAMBDA_FN.match(r)
        if not fm:
            return ""
        rest = fm.group(2) or ""
        if m == "DELETE" and rest.startswith("/policy/"):
            return "RemovePermission"
        return {
            ("POST", "/policy"): "AddPermission",
            ("GET", "/configuration"): "GetFunctionConfiguration",
            ("PUT", "/configuration"): "UpdateFunctionConfiguration",
            ("PUT", "/code"): "UpdateFunctionCode",
            ("GET", ""): "GetFunction",
            ("POST", "/invocations"): "Invoke",
            ("DELETE", ""): "DeleteFunction",
        }.get((m, rest), "")

    def cloudfront_action(self):
        if CF_INVALIDATION.match(self.route):
            return {"POST": "CreateInvalidation", "GET": "ListInvalidations"}.get(self.method, "")
        m = CF_DISTRIBUTION.match(self.route)
        if not m:
            if self.route == "/2020-05-31/origin-access-control" and self.method == "POST":
                return "CreateOriginAccessControl"
            if self.route.startswith("/2020-05-31/origin-access-control/") \
                    and self.method == "DELETE":
                return "DeleteOriginAccessControl"
            if self.route == "/2020-05-31/distribution":
                return {"POST": "CreateDistribution", "GET": "ListDistributions"}.get(
                    self.method, "")
            return ""
        return {
            ("GET", ""): "GetDistribution",
            ("DELETE", ""): "DeleteDistribution",
            ("GET", "/config"): "GetDistributionConfig",
            ("PUT", "/config"): "UpdateDistribution",
        }.get((self.method, m.group(2) or ""), "")

    def distribution_id(self):
        m = CF_DISTRIBUTION.match(self.route) or CF_INVALIDATION.match(self.route)
        return m.group(1) if m else ""

    def function_name(self):
        fm = LAMBDA_FN.match(self.route) or INVOKE_CONFIG.match(self.route)
        if fm:
            return fm.group(1).rsplit(":", 1)[-1] if ":" in fm.group(1) else fm.group(1)
        if self.action == "CreateFunction":
            try:
                return json.loads(self.body or b"{}").get("FunctionName", "")
            except ValueError:
                return ""
        return ""

    def bucket(self):
        parts = self.route.lstrip("/").split("/", 1)
        return parts[0] if parts and parts[0] else ""

    def s3_action(self):
        has_key = "/" in self.route.strip("/")
        if self.method == "PUT" and not has_key:
            for q in BUCKET_SETTINGS:
                if q in self.query:
                    return "PutBucket:" + q
            if "notification" in self.query:
                return "PutBucketNotificationConfiguration"
            if "lifecycle" in self.query:
                return "PutBucketLifecycleConfiguration"
            if not self.query:
                return "CreateBucket"
        if self.method == "DELETE" and not has_key and not self.query:
            return "DeleteBucket"
        if self.method == "DELETE" and not has_key and "policy" in self.query:
            return "DeleteBucketPolicy"
        if self.method == "POST" and not has_key and "delete" in self.query:
            return "DeleteObjects"
        return ""


# Actions whose answer the lost-answers behaviour drops once: every create, delete and
# settings write `up` and `destroy` make (each resource module's calls in src/resources/),
# across the protocols. The SDKs retry a dropped connection (AWS SDKs and Tools reference
# guide, "Retry behavior": transient errors include "connection errors"), so the retry meets
# what the lost call did: "already exists", "not found", a stale ETag.
LOSABLE = {
    # IAM
    "CreateRole", "PutRolePolicy", "DeleteRole", "DeleteRolePolicy", "DetachRolePolicy",
    # SNS, SQS
    "CreateTopic", "Subscribe", "DeleteTopic", "Unsubscribe", "CreateQueue", "DeleteQueue",
    # S3
    "CreateBucket", "DeleteBucket", "PutBucket:publicAccessBlock", "PutBucket:encryption",
    "PutBucket:policy", "PutBucket:tagging", "PutBucketLifecycleConfiguration",
    "DeleteBucketPolicy", "DeleteObjects", "PutBucketNotificationConfiguration",
    # Lambda
    "CreateFunction", "DeleteFunction", "AddPermission", "RemovePermission",
    "PutFunctionEventInvokeConfig", "DeleteFunctionEventInvokeConfig",
    "PutFunctionConcurrency", "DeleteFunctionConcurrency",
    # DynamoDB, ECR, Logs, CodeBuild
    "CreateTable", "DeleteTable", "CreateRepository", "DeleteRepository", "PutLifecyclePolicy",
    "CreateLogGroup", "DeleteLogGroup", "PutRetentionPolicy", "CreateProject", "DeleteProject",
    # CloudFront
    "CreateOriginAccessControl", "DeleteOriginAccessControl", "CreateDistribution",
    "UpdateDistribution", "DeleteDistribution",
}


# --- batch-operations: S3 Batch Operations (S3 Control CreateJob / DescribeJob) ----------------
# moto has no S3 Batch Operations. S3 Control is REST-XML: CreateJob is POST /v20180820/jobs with
# a <CreateJobRequest> body, DescribeJob is GET /v20180820/jobs/{id}, both with the account in
# the x-amz-account-id header (S3 Control API reference, CreateJob and DescribeJob). Errors are
# wrapped, <ErrorResponse><Error><Code>..., as the SDKs' restXml error parser for S3 Control
# reads them.
#
# A job goes New -> Preparing -> Ready -> Active -> Completing -> Complete (S3 User Guide,
# "Job statuses"), each step --settle seconds, except that it stays Active until the test hands
# back the function's answers (POST /__batch-jobs/ID/results), as Batch Operations waits for
# its invocations. Batch Operations parses the whole manifest before it runs the job (User
# Guide, "Specifying a manifest"): here the manifest is read from moto at CreateJob and must
# have the ETag the request names; a job whose manifest cannot be read, or whose ETag differs,
# goes to Failed (the failure code and reason here are the proxy's words, not AWS's).
# CreateJob is idempotent by ClientRequestToken (API reference): the same token gets the same
# job. Each task becomes one Lambda invocation event (one task per invocation, as the User
# Guide's examples say Batch sends), shaped by the job's InvocationSchemaVersion: 1.0 names the
# bucket by ARN (s3BucketArn), 2.0 by name (s3Bucket) and adds job.userArguments; s3Key is the
# key field of the manifest line as written, that is URL-encoded (the User Guide: keys in a CSV
# manifest must be URL-encoded, and "keys from S3 Batch Operations are URL encoded").
BATCH_JOBS = {}           # job id -> job (see batch_create)
BATCH_TOKENS = {}         # (account, ClientRequestToken) -> job id
S3CONTROL_NS = "http://awss3control.amazonaws.com/doc/2018-08-20/"


def s3control_error(status, code, message):
    return status, {"Content-Type": "application/xml"}, (
        '<?xml version="1.0" encoding="UTF-8"?><ErrorResponse><Error><Code>%s</Code>'
        "<Message>%s</Message></Error><RequestId>aws-proxy</RequestId></ErrorResponse>"
        % (code, message)).encode()


def xml_to_json(el):
    """A request element as JSON: text for a leaf, a list for <member> items, else a dict."""
    children = list(el)
    if not children:
        return (el.text or "").strip()
    if all(c.tag.split("}")[-1] == "member" for c in children):
        return [xml_to_json(c) for c in children]
    return {c.tag.split("}")[-1]: xml_to_json(c) for c in children}


def batch_manifest_tasks(req, request):
    """(tasks, failure): the manifest's lines as (bucket, key as written, version), read from
    moto, or why they cannot be."""
    import csv
    from urllib.parse import quote
    location = request.get("Manifest", {}).get("Location", {})
    arn = location.get("ObjectArn", "")
    bucket_key = arn.split(":", 5)[-1] if arn.count(":") >= 5 else ""
    bucket, _, key = bucket_key.partition("/")
    if not bucket or not key:
        return None, ("InvalidManifest", "the manifest ObjectArn %r names no object" % arn)
    status, headers, body = moto_get("/%s/%s" % (bucket, quote(key, safe="/")), req.headers)
    if status != 200:
        return None, ("ManifestNotFound", "reading the manifest %s answered HTTP %d"
                      % (arn, status))
    etag = headers.get("etag", "").strip('"')
    if etag != location.get("ETag", "").strip('"'):
        return None, ("ManifestETagMismatch", "the manifest's ETag is %s, the job names %s"
                      % (etag, location.get("ETag")))
    rows = [r for r in csv.reader(body.decode("utf-8", "replace").splitlines()) if r]
    return [(r[0], r[1] if len(r) > 1 else "", r[2] if len(r) > 2 else None)
            for r in rows], None


def batch_event(job, n, bucket, key, version):
    """The Lambda invocation event of one task, as Batch Operations sends it."""
    lam = job["request"].get("Operation", {}).get("LambdaInvoke", {})
    schema = lam.get("InvocationSchemaVersion") or "1.0"
    partition = job["request"]["Manifest"]["Location"]["ObjectArn"].split(":")[1]
    task = {"taskId": base64.b64encode(("%s-task-%d" % (job["id"], n)).encode()).decode(),
            "s3Key": key, "s3VersionId": version}
    body_job = {"id": job["id"]}
    if schema == "1.0":
        task["s3BucketArn"] = "arn:%s:s3:::%s" % (partition, bucket)
    else:
        task["s3Bucket"] = bucket
        if isinstance(lam.get("UserArguments"), dict):
            body_job["userArguments"] = lam["UserArguments"]
    return {"invocationSchemaVersion": schema,
            "invocationId": base64.b64encode(("%s-inv-%d" % (job["id"], n)).encode()).decode(),
            "job": body_job, "tasks": [task]}


def batch_create(req):
    import uuid
    import xml.etree.ElementTree as ET
    account = {k.lower(): v for k, v in req.headers.items()}.get("x-amz-account-id", "")
    try:
        request = xml_to_json(ET.fromstring(req.body))
    except ET.ParseError as e:
        return s3control_error(400, "MalformedXML", "The XML you provided was not well-formed "
                               "or did not validate against our published schema: %s" % e)
    if not isinstance(request, dict):
        request = {}
    token = request.get("ClientRequestToken", "")
    with LOCK:
        known = BATCH_TOKENS.get((account, token))
    if known:
        count("batch-operations:create-repeated")
        return 200, {"Content-Type": "application/xml"}, (
            '<?xml version="1.0" encoding="UTF-8"?><CreateJobResult xmlns="%s"><JobId>%s'
            "</JobId></CreateJobResult>" % (S3CONTROL_NS, known)).encode()
    job = {"id": str(uuid.uuid4()), "account": account, "request": request,
           "created": time.time(), "results_at": None, "results": None, "polls": [],
           "tasks": [], "failure": None}
    lines, failure = batch_manifest_tasks(req, request)
    if failure:
        job["failure"] = failure
        count("batch-operations:manifest-unreadable")
    else:
        job["tasks"] = [batch_event(job, n, *line) for n, line in enumerate(lines)]
    with LOCK:
        BATCH_JOBS[job["id"]] = job
        BATCH_TOKENS[(account, token)] = job["id"]
    count("batch-operations:created")
    return 200, {"Content-Type": "application/xml"}, (
        '<?xml version="1.0" encoding="UTF-8"?><CreateJobResult xmlns="%s"><JobId>%s</JobId>'
        "</CreateJobResult>" % (S3CONTROL_NS, job["id"])).encode()


def batch_status(job, now):
    """The job's status now, and its (succeeded, failed) task counts."""
    age, step = now - job["created"], max(SETTLE, 0.01)
    if job["failure"]:
        return ("New", "Preparing", "Failed")[min(2, int(age // step))], (0, 0)
    for i, s in enumerate(("New", "Preparing", "Ready")):
        if age < (i + 1) * step:
            return s, (0, 0)
    if job["results"] is None:
        return "Active", (0, 0)
    ok = sum(1 for r in job["results"] if r.get("resultCode") == "Succeeded")
    counts = (ok, len(job["results"]) - ok)
    if now - job["results_at"] < step:
        return "Completing", counts
    return "Complete", counts


def batch_describe(req, job_id):
    from xml.sax.saxutils import escape
    with LOCK:
        job = BATCH_JOBS.get(job_id)
    account = {k.lower(): v for k, v in req.headers.items()}.get("x-amz-account-id", "")
    if not job or job["account"] != account:
        return s3control_error(404, "NotFoundException", "The specified job does not exist.")
    status, (ok, failed) = batch_status(job, time.time())
    with LOCK:
        job["polls"].append(status)
    count("batch-operations:described")
    r = job["request"]
    region = os.environ.get("AWS_REGION") or "us-east-1"
    created = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(job["created"]))
    failure = ""
    if status == "Failed":
        failure = ("<FailureReasons><member><FailureCode>%s</FailureCode><FailureReason>%s"
                   "</FailureReason></member></FailureReasons>"
                   % (escape(job["failure"][0]), escape(job["failure"][1])))
    return 200, {"Content-Type": "application/xml"}, (
        '<?xml version="1.0" encoding="UTF-8"?><DescribeJobResult xmlns="%s"><Job>'
        "<JobId>%s</JobId><ConfirmationRequired>%s</ConfirmationRequired>"
        "<Description>%s</Description><JobArn>arn:aws:s3:%s:%s:job/%s</JobArn>"
        "<Status>%s</Status><Priority>%s</Priority><ProgressSummary>"
        "<TotalNumberOfTasks>%d</TotalNumberOfTasks><NumberOfTasksSucceeded>%d"
        "</NumberOfTasksSucceeded><NumberOfTasksFailed>%d</NumberOfTasksFailed>"
        "</ProgressSummary>%s<CreationTime>%s</CreationTime><RoleArn>%s</RoleArn>"
        "</Job></DescribeJobResult>" % (
            S3CONTROL_NS, job["id"], escape(r.get("ConfirmationRequired") or "false"),
            escape(r.get("Description") or ""), region, account, job["id"], status,
            escape(r.get("Priority") or "0"), len(job["tasks"]), ok, failed, failure, created,
            escape(r.get("RoleArn") or ""))).encode()


def batch_operations(req):
    """S3 Control's job API, or None for any other request."""
    if not req.route.startswith("/v20180820/jobs"):
        return None
    rest = req.route[len("/v20180820/jobs"):].strip("/")
    if req.method == "POST" and not rest:
        return batch_create(req)
    if req.method == "GET" and rest and "/" not in rest:
        return batch_describe(req, rest)
    return s3control_error(400, "InvalidRequest", "aws_proxy.py emulates only CreateJob and "
                           "DescribeJob of S3 Batch Operations")


def batch_test_api(method, path, body):
    """GET /__batch-jobs (every job: its request, task events, DescribeJob answers) and
    POST /__batch-jobs/ID/results (the function's answers); None for other paths."""
    if path == "/__batch-jobs" and method == "GET":
        with LOCK:
            now = time.time()
            jobs = [{"id": j["id"], "account": j["account"], "request": j["request"],
                     "tasks": j["tasks"], "polls": list(j["polls"]),
                     "status": batch_status(j, now)[0], "failure": j["failure"]}
                    for j in sorted(BATCH_JOBS.values(), key=lambda j: j["created"])]
        return 200, {"Content-Type": "application/json"}, json.dumps(jobs).encode()
    m = re.match(r"^/__batch-jobs/([^/]+)/results$", path)
    if m and method == "POST":
        answers = json.loads(body or b"[]")
        with LOCK:
            job = BATCH_JOBS.get(m.group(1))
            if not job:
                return 404, {"Content-Type": "text/plain"}, b"no such job"
            job["results"] = [r for a in answers for r in a.get("results", [])]
            job["results_at"] = time.time()
        return 200, {"Content-Type": "application/json"}, b"{}"
    return None
# --- end batch-operations ----------------------------------------------------------------------

# --- notification-destinations -------------------------------------------------------------
# S3 validates every destination of a notification configuration it is given (unless the
# request says x-amz-skip-destination-validation: true) and sends each a test event; one that
# does not exist, or may not be written to, refuses the whole document (PutBucketNotification-
# Configuration API reference; S3 User Guide, "Unable to validate the following destination
# configurations"). The answer's shape, numbered ArgumentName/ArgumentValue pairs with
# "ARN, null" as the name, is that of an S3 answer captured with `aws s3api --debug`
# ("Not authorized to invoke function [ARN]" for a Lambda destination); the reasons for a
# missing queue or topic are those S3-compatible emulators (LocalStack, Scality) give.
NOTIFY_DEST = re.compile(rb"<(Queue|Topic|CloudFunction)>\s*([^<\s]+)\s*</\1>")


def unvalidated_error(pairs):
    extra = "".join("<ArgumentName%d>%s, null</ArgumentName%d><ArgumentValue%d>%s</ArgumentValue%d>"
                    % (i, arn, i, i, why, i) for i, (arn, why) in enumerate(pairs, 1))
    return 400, {"Content-Type": "application/xml"}, (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidArgument</Code><Message>'
        "Unable to validate the following destination configurations</Message>%s"
        "<RequestId>aws-proxy</RequestId><HostId>aws-proxy</HostId></Error>" % extra).encode()


def moto_holds(arn):
    """Whether moto has the queue, topic or function `arn` names, in the ARN's account."""
    parts = arn.split(":")
    if len(parts) < 6:
        return False
    service, region, account = parts[2], parts[3], parts[4]
    # moto picks the service from the credential scope and checks no signature.
    headers = {"Authorization": "AWS4-HMAC-SHA256 Credential=test/20240101/%s/%s/aws4_request, "
                                "SignedHeaders=host, Signature=0" % (region, service),
               "x-moto-account-id": account}
    if service == "lambda":
        name = parts[6] if len(parts) > 6 else ""
        method, path, body = "GET", "/2015-03-31/functions/%s" % name, None
    elif service in ("sqs", "sns"):
        form = ("Action=GetQueueUrl&Version=2012-11-05&QueueName=%s" % parts[5]
                if service == "sqs" else
                "Action=GetTopicAttributes&Version=2010-03-31&TopicArn=%s" % arn)
        method, path, body = "POST", "/", form.encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    else:
        return False
    conn = http.client.HTTPConnection(TARGET_HOST, TARGET_PORT, timeout=60)
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp.status == 200


def check_notification_destinations(req):
    """S3's refusal of a notification document naming a destination moto lacks, or None."""
    skip = {k.lower(): v for k, v in req.headers.items()}.get(
        "x-amz-skip-destination-validation", "").lower() == "true"
    if skip:
        count("notification-destinations:skipped")
        return None
    seen = []
    for kind, arn in NOTIFY_DEST.findall(req.body):
        pair = (kind.decode(), arn.decode())
        if pair not in seen:
            seen.append(pair)
    reasons = {"Queue": "The destination queue does not exist",
               "Topic": "The destination topic does not exist",
               "CloudFunction": "The destination Lambda does not exist"}
    missing = [(arn, reasons[kind]) for kind, arn in seen if not moto_holds(arn)]
    if missing:
        count("notification-destinations:refused")
        return unvalidated_error(missing)
    for _, arn in seen:
        count("notification-destinations:test-event:" + arn)
    return None
# --- end notification-destinations ---------------------------------------------------------


# --- kms-bucket ------------------------------------------------------------------------------
# Reading an object encrypted with a KMS key needs kms:Decrypt on the key as well as
# s3:GetObject (S3 User Guide, "Using server-side encryption with AWS KMS keys"); S3 answers
# 403 AccessDenied with KMS's message otherwise (reported with S3's XML in
# ministryofjustice/modernisation-platform#3468 and chadgeary/nifi#13). HEAD needs no
# decryption and passes.
OBJECT_SUBRESOURCES = ("tagging", "acl", "uploadId", "attributes", "retention", "legal-hold",
                       "torrent", "uploads")


def is_object_read(req):
    return "/" in req.route.strip("/") and not any(q in req.query for q in OBJECT_SUBRESOURCES)


def moto_query(service, form, account):
    """The XML answer of a query-protocol call to moto (IAM, SQS, SNS), or b"" on an error."""
    headers = {"Authorization": "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/%s/"
                                "aws4_request, SignedHeaders=host, Signature=0" % service,
               "Content-Type": "application/x-www-form-urlencoded",
               "x-moto-account-id": account}
    conn = http.client.HTTPConnection(TARGET_HOST, TARGET_PORT, timeout=60)
    conn.request("POST", "/", body=form.encode(), headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return body if resp.status == 200 else b""


def role_may_decrypt(key, account):
    """Whether an inline policy of some role of `account` allows kms:Decrypt on `key`."""
    from urllib.parse import quote, unquote
    roles = re.findall(rb"<RoleName>([^<]+)</RoleName>",
                       moto_query("iam", "Action=ListRoles&Version=2010-05-08&MaxItems=1000",
                                  account))
    for role in roles:
        role = role.decode()
        names = re.findall(rb"<member>([^<]+)</member>", moto_query(
            "iam", "Action=ListRolePolicies&Version=2010-05-08&RoleName=%s" % quote(role),
            account))
        for name in names:
            doc = re.search(rb"<PolicyDocument>([^<]+)</PolicyDocument>", moto_query(
                "iam", "Action=GetRolePolicy&Version=2010-05-08&RoleName=%s&PolicyName=%s"
                % (quote(role), quote(name.decode())), account))
            if not doc:
                continue
            try:
                policy = json.loads(unquote(doc.group(1).decode().replace("&quot;", '"')))
            except ValueError:
                continue
            statements = policy.get("Statement", [])
            for st in statements if isinstance(statements, list) else [statements]:
                listed = lambda v: v if isinstance(v, list) else [v]
                if st.get("Effect") == "Allow" and "kms:Decrypt" in listed(st.get("Action")) \
                        and any(r in (key, "*") for r in listed(st.get("Resource"))):
                    return True
    return False


def check_kms_read(req):
    status, _, body = moto_get("/%s?encryption" % req.bucket(), req.headers)
    if status != 200 or b"aws:kms" not in body:
        return None
    key = re.search(rb"<KMSMasterKeyID>\s*([^<\s]+)\s*</KMSMasterKeyID>", body)
    if not key:
        return None   # the AWS managed key aws/s3: the account may use it through S3
    account = {k.lower(): v for k, v in req.headers.items()}.get("x-moto-account-id",
                                                                   "123456789012")
    if role_may_decrypt(key.group(1).decode(), account):
        count("kms-bucket:decrypted")
        return None
    count("kms-bucket:refused")
    return s3_error(403, "AccessDenied", "The ciphertext refers to a customer master key that "
                    "does not exist, does not exist in this region, or you are not allowed to "
                    "access.")
# --- end kms-bucket --------------------------------------------------------------------------


def before(req):
    """An answer to give instead of forwarding, or None."""
    a = req.action
    now = time.time()
    refused = new_account(req)
    if refused:
        return refused
    if "table-creating" in BEHAVE:
        note_trigger_while_creating(req, now)
    if "batch-operations" in BEHAVE and req.route.startswith("/v20180820/jobs"):
        return batch_operations(req)
    if "iam-propagation" in BEHAVE:
        refused = iam_not_propagated(req, now)
        if refused:
            return refused
    if "function-states" in BEHAVE and a in ("AddPermission", "PutFunctionEventInvokeConfig",
                                              "UpdateFunctionConfiguration", "UpdateFunctionCode"):
        name = req.function_name()
        with LOCK:
            # Writes conflict a little longer than reads say Pending: AWS's reads are
            # eventually consistent, so "Active" does not promise that a change will pass.
            until, why = FUNCTION_BUSY_UNTIL.get(name, (0, ""))
            busy = until + LAG > now
        if busy and why == "create":
            return pending_conflict(a, name)
        if busy:
            count("function-states:conflict:in-progress")
            return lambda_error(409, "ResourceConflictException",
                                "The operation cannot be performed at this time. An update is in "
                                "progress for resource: arn:aws:lambda:us-east-1:123456789012:function:%s"
                                % name)
    if "notification-validation" in BEHAVE and a == "PutBucketNotificationConfiguration":
        refused = unvalidated_destinations(req, now)
        if refused:
            return refused
    if "kms-bucket" in BEHAVE and req.method == "GET" and is_object_read(req):
        refused = check_kms_read(req)
        if refused:
            return refused
    if "notification-destinations" in BEHAVE and a == "PutBucketNotificationConfiguration":
        refused = check_notification_destinations(req)
        if refused:
            return refused
    if "fresh-bucket" in BEHAVE and a.startswith("PutBucket:"):
        b = req.bucket()
        with LOCK:
            left = FRESH_BUCKET_FAULTS.get(b, 0)
            if left:
                FRESH_BUCKET_FAULTS[b] = left - 1
        if left == 2:
            count("fresh-bucket:OperationAborted")
            return s3_error(409, "OperationAborted",
                            "A conflicting conditional operation is currently in progress against "
                            "this resource. Please try again.")
        if left == 1:
            count("fresh-bucket:NoSuchBucket")
            return s3_error(404, "NoSuchBucket", "The specified bucket does not exist")
    if "pending-subscription" in BEHAVE and a == "Unsubscribe":
        refused = unsubscribe_pending(req)
        if refused:
            return refused
    if "table-creating" in BEHAVE and a == "DeleteTable":
        name = req.params.get("TableName", "")
        with LOCK:
            creating = TABLE_CREATING_UNTIL.get(name, 0) > now
        if creating:
            count("table-creating:delete-refused")
            return json_error(400, "com.amazonaws.dynamodb.v20120810#ResourceInUseException",
                              "Attempt to change a resource which is still in use: Table is being "
                              "created: %s" % name)
    if "slow-create" in BEHAVE and a == "CreateFunction":
        # The create reaches AWS only after --settle seconds, as a call in flight when its
        # caller died still can: whoever looks before then finds nothing.
        count("slow-create:held")
        time.sleep(SETTLE)
        count("slow-create:applied")
    if "lost-answers" in BEHAVE and a == "CreateOriginAccessControl":
        # moto creates a second access control of a name it holds (the retry of a create
        # whose answer was lost); CloudFront refuses it: 409 OriginAccessControlAlreadyExists
        # "An origin access control with the same name already exists." (word for word in
        # winglang/wing#3748, from Terraform's CreateOriginAccessControl).
        name = re.search(rb"<Name>([^<]*)</Name>", req.body)
        status, _, listing = moto_get("/2020-05-31/origin-access-control", req.headers)
        if name and status == 200 and b"<Name>" + name.group(1) + b"</Name>" in listing:
            count("lost-answers:retry-exists:CreateOriginAccessControl")
            return cloudfront_error(409, "OriginAccessControlAlreadyExists", "An origin access "
                                    "control with the same name already exists.")
    if "lost-answers" in BEHAVE and a == "DeleteOriginAccessControl":
        # moto answers 500 to a delete of an access control it does not hold (the retry of a
        # delete whose answer was lost); CloudFront answers 404 NoSuchOriginAccessControl
        # (CloudFront API reference, DeleteOriginAccessControl errors).
        status, _, _ = moto_get(req.route, req.headers)
        if status != 200:
            count("lost-answers:retry-not-found:DeleteOriginAccessControl")
            return cloudfront_error(404, "NoSuchOriginAccessControl", "The specified origin "
                                    "access control does not exist.")
    if "cloudfront-in-progress" in BEHAVE and a in ("DeleteDistribution", "UpdateDistribution"):
        refused = cloudfront_refusal(req, now)
        if refused:
            return refused
    if "invalidations-in-progress" in BEHAVE and a == "CreateInvalidation":
        dist = req.distribution_id()
        reference, paths = invalidation_batch(req.body)
        with LOCK:
            since = CF_INVALIDATING_SINCE.setdefault((dist, reference), now)
            earlier = CF_REFERENCES.get((dist, reference))
        if earlier is not None:
            if earlier[0] == paths:
                count("invalidations-in-progress:reference-replayed")
                return earlier[1:]
            count("invalidations-in-progress:reference-refused")
            return cloudfront_error(400, "InvalidArgument", "Your request contains a caller "
                                    "reference that was used for a previous invalidation batch "
                                    "for the same distribution.")
        if now < since + SETTLE:
            count("invalidations-in-progress:refused")
            return cloudfront_error(400, "TooManyInvalidationsInProgress", "You have exceeded "
                                    "the maximum number of allowable InProgress invalidation "
                                    "batch requests, or invalidation objects.")
    if "async-invoke" in BEHAVE and a == "Invoke" and req.invocation_type == "Event":
        # moto runs no function without Docker (it answers 500); AWS queues an asynchronous
        # invocation and answers 202 at once, or 429 when the account's invoke rate is
        # exceeded. The first two are throttled, then each accepted event is kept for the test.
        with LOCK:
            throttled = COUNTS.get("async-invoke:throttled", 0)
        if throttled < 2:
            count("async-invoke:throttled")
            return lambda_error(429, "TooManyRequestsException", "Rate Exceeded.")
        count("async-invoke:accepted")
        with LOCK:
            INVOCATIONS.append({"function": req.function_name(),
                                "payload": json.loads(req.body or b"null")})
        return 202, {"Content-Type": "application/json"}, b""
    return None


def invalidation_batch(body):
    """(CallerReference, [paths]) of a CreateInvalidation body."""
    ref = re.search(rb"<CallerReference>(.*?)</CallerReference>", body or b"", re.S)
    paths = re.findall(rb"<Path>(.*?)</Path>", body or b"", re.S)
    return (ref.group(1) if ref else b""), paths


def after(req, status, payload, headers=None):
    """Rewrites moto's answer, and remembers what was created; returns the payload."""
    a = req.action
    now = time.time()
    ok = 200 <= status < 300
    if ok and a in ("CreateDistribution", "UpdateDistribution", "CreateInvalidation"):
        with LOCK:
            CF_CHANGES.append({"action": a, "distribution": req.distribution_id(),
                               "body": req.body.decode("utf-8", "replace")})
    if ok and a == "CreateInvalidation" and "invalidations-in-progress" in BEHAVE:
        reference, paths = invalidation_batch(req.body)
        kept = {k: v for k, v in (headers or {}).items()
                if k.lower() not in ("transfer-encoding", "connection", "content-length")}
        with LOCK:
            CF_REFERENCES.setdefault((req.distribution_id(), reference),
                                     (paths, status, kept, payload))
    if ok and "iam-propagation" in BEHAVE:
        note_role_change(req, now)
    if ok and a == "AddPermission" and "notification-validation" in BEHAVE:
        with LOCK:
            PERMISSION_ADDED[req.function_name()] = now
    if "cloudfront-in-progress" in BEHAVE and ok and a == "UpdateDistribution":
        with LOCK:
            CF_IN_PROGRESS[req.distribution_id()] = now + SETTLE
    if "cloudfront-in-progress" in BEHAVE and ok and a == "GetDistribution":
        with LOCK:
            deploying = CF_IN_PROGRESS.get(req.distribution_id(), 0) > now
        if deploying:
            count("cloudfront-in-progress:served")
            payload = payload.replace(b"<Status>Deployed</Status>", b"<Status>InProgress</Status>")
    if a == "CreateFunction" and ok:
        name = req.function_name()
        if "function-states" in BEHAVE:
            with LOCK:
                FUNCTION_BUSY_UNTIL[name] = (now + SETTLE, "create")
            payload = rewrite(payload, State="Pending", StateReason="The function is being created.",
                              StateReasonCode="Creating")
        if "function-failed" in BEHAVE:
            with LOCK:
                if FAILED_FUNCTION["name"] is None and not FAILED_FUNCTION["used"]:
                    FAILED_FUNCTION["name"] = name
                    FAILED_FUNCTION["used"] = True
            payload = rewrite(payload, State="Pending")
    if a in ("UpdateFunctionConfiguration", "UpdateFunctionCode") and ok \
            and "function-states" in BEHAVE:
        with LOCK:
            FUNCTION_BUSY_UNTIL[req.function_name()] = (now + SETTLE, "update")
        payload = rewrite(payload, LastUpdateStatus="InProgress")
    if a == "DeleteFunction" and ok:
        with LOCK:
            if FAILED_FUNCTION["name"] == req.function_name():
                FAILED_FUNCTION["name"] = None
    if a in ("GetFunction", "GetFunctionConfiguration") and ok:
        name = req.function_name()
        with LOCK:
            until, why = FUNCTION_BUSY_UNTIL.get(name, (0, ""))
            failed = FAILED_FUNCTION["name"] == name
        if failed:
            count("function-failed:served")
            payload = rewrite(payload, State="Failed", StateReasonCode="ImageAccessDenied",
                              StateReason="Lambda does not have permission to access the ECR image. "
                                          "Check the ECR permissions.")
        elif until > now and why == "create":
            count("function-states:pending-served")
            payload = rewrite(payload, State="Pending", StateReasonCode="Creating",
                              StateReason="The function is being created.")
        elif until > now:
            count("function-states:in-progress-served")
            payload = rewrite(payload, LastUpdateStatus="InProgress")
    if a == "CreateBucket" and ok and "fresh-bucket" in BEHAVE:
        with LOCK:
            FRESH_BUCKET_FAULTS[req.bucket()] = 2
    if a == "CreateTable" and ok and "table-creating" in BEHAVE:
        with LOCK:
            TABLE_CREATING_UNTIL[req.params.get("TableName", "")] = now + SETTLE
        payload = rewrite_table(payload)
    if a == "DescribeTable" and ok and "table-creating" in BEHAVE:
        with LOCK:
            creating = TABLE_CREATING_UNTIL.get(req.params.get("TableName", ""), 0) > now
        if creating:
            count("table-creating:creating-served:" + req.params.get("TableName", ""))
            payload = rewrite_table(payload)
    if a == "Subscribe" and ok and "pending-subscription" in BEHAVE:
        remember_pending(req, payload)
    return payload


def rewrite(payload, **fields):
    """Sets fields in a Lambda function configuration (top level, or under Configuration)."""
    try:
        doc = json.loads(payload)
    except ValueError:
        return payload
    target = doc.get("Configuration", doc) if isinstance(doc, dict) else None
    if not isinstance(target, dict):
        return payload
    target.update(fields)
    return json.dumps(doc).encode()


def rewrite_table(payload):
    try:
        doc = json.loads(payload)
    except ValueError:
        return payload
    for key in ("Table", "TableDescription"):
        if isinstance(doc.get(key), dict):
            doc[key]["TableStatus"] = "CREATING"
    return json.dumps(doc).encode()


# --- cloudfront-in-progress: a change deploys for --settle seconds, per distribution ---------

def cloudfront_refusal(req, now):
    """CloudFront's answers to DeleteDistribution and UpdateDistribution that moto does not
    give (CloudFront API reference, DeleteDistribution and UpdateDistribution, Errors):
    - no If-Match header: 400 InvalidIfMatchVersion "The If-Match version is missing or not
      valid for the resource." (word for word in aws/aws-sdk#576, aws/aws-sdk-js#1669,
      crossplane-contrib/provider-aws#1595; the SDK models If-Match as optional);
    - an If-Match that is not the current ETag: 412 PreconditionFailed "The precondition
      given in one or more of the request-header fields evaluated to false.";
    - a delete while the distribution is enabled or its last change is still InProgress:
      409 DistributionNotDisabled "The distribution you are trying to delete has not been
      disabled." (CloudFront Developer Guide, deleting a distribution: disable it, wait until
      its status is Deployed, then delete)."""
    dist = req.distribution_id()
    if_match = {k.lower(): v for k, v in req.headers.items()}.get("if-match")
    if not if_match:
        count("cloudfront-in-progress:if-match-missing")
        return cloudfront_error(400, "InvalidIfMatchVersion", "The If-Match version is missing "
                                "or not valid for the resource.")
    status, headers, body = moto_get("/2020-05-31/distribution/%s/config" % dist, req.headers)
    if status != 200:
        return None   # moto's own NoSuchDistribution
    etag = headers.get("etag")
    if etag and if_match != etag:
        count("cloudfront-in-progress:stale-etag-refused")
        return cloudfront_error(412, "PreconditionFailed", "The precondition given in one or "
                                "more of the request-header fields evaluated to false.")
    if req.action != "DeleteDistribution":
        return None
    with LOCK:
        deploying = CF_IN_PROGRESS.get(dist, 0) > now
    if deploying:
        count("cloudfront-in-progress:delete-refused")
        return cloudfront_error(409, "DistributionNotDisabled", "The distribution you are "
                                "trying to delete has not been disabled.")
    if enabled_flag(body):
        count("cloudfront-in-progress:delete-enabled-refused")
        return cloudfront_error(409, "DistributionNotDisabled", "The distribution you are "
                                "trying to delete has not been disabled.")
    return None


# --- iam-propagation: per role, for a while after it changed ------------------------------

# Per role: when it was created (who may assume it: its trust policy) and when its
# permissions last changed (PutRolePolicy, AttachRolePolicy), as seen through this proxy.
ROLE_CREATED = {}
ROLE_POLICY_CHANGED = {}


def note_role_change(req, now):
    table = {"CreateRole": ROLE_CREATED, "PutRolePolicy": ROLE_POLICY_CHANGED,
             "AttachRolePolicy": ROLE_POLICY_CHANGED}.get(req.action)
    if table is not None:
        with LOCK:
            table[req.params.get("RoleName", "")] = now


def role_name(arn):
    return (arn or "").rsplit("/", 1)[-1]


def propagating(table, role, now):
    with LOCK:
        changed = table.get(role)
    return changed is not None and now < changed + PROPAGATION


def iam_not_propagated(req, now):
    """AWS's refusals of a role created or changed a moment ago, for --propagation seconds
    after that change (as seen through this proxy), per role. AWS documents that IAM "is
    eventually consistent" and that a change "may take a few seconds" to be seen by other
    services (IAM User Guide, "Troubleshooting IAM": changes that I make are not always
    immediately visible); the answers are:
    - CreateFunction: InvalidParameterValueException "The role defined for the function cannot
      be assumed by Lambda." right after the role was created (epam/aws-syndicate#63,
      convox/rack#1120, apex/up#189, word for word);
    - CreateProject: InvalidInputException "CodeBuild is not authorized to perform:
      sts:AssumeRole on service role. Please verify that: [...]" (an aws-cli CreateProject
      log quotes it whole; SDK users' retry deciders match its first words, "CodeBuild is not
      authorized to perform: sts:AssumeRole");
    - PutFunctionEventInvokeConfig naming an on-failure queue, while the function's role's
      policy (which grants sqs:SendMessage) propagates: InvalidParameterValueException (HTTP
      400) "The provided execution role does not have permissions to call SendMessage on
      SQS" (aws-samples/aws-serverless-ecommerce-platform#41, elastic/beats#13963)."""
    a = req.action
    # Assuming the role needs its trust policy, which came with CreateRole; sending to the
    # queue needs its permissions, which came with the last policy change.
    if a == "CreateFunction":
        try:
            role = role_name(json.loads(req.body or b"{}").get("Role", ""))
        except (ValueError, AttributeError):
            role = ""
        if propagating(ROLE_CREATED, role, now):
            count("iam-propagation:function")
            return lambda_error(400, "InvalidParameterValueException",
                                "The role defined for the function cannot be assumed by Lambda.")
    if a == "CreateProject" and req.service.startswith("CodeBuild"):
        arn = req.params.get("serviceRole", "")
        if propagating(ROLE_CREATED, role_name(arn), now):
            count("iam-propagation:project")
            return json_error(400, "InvalidInputException",
                              "CodeBuild is not authorized to perform: sts:AssumeRole on service "
                              "role. Please verify that: 1) The provided service role exists, 2) "
                              "The role name is case-sensitive and matches exactly, and 3) The "
                              "role has the necessary trust policy configured.")
    if a == "PutFunctionEventInvokeConfig" and b"OnFailure" in req.body:
        status, _, body = moto_get_as("lambda", "/2015-03-31/functions/%s/configuration"
                                      % req.function_name(), req.headers)
        try:
            role = role_name(json.loads(body).get("Role", "")) if status == 200 else ""
        except ValueError:
            role = ""
        if role and propagating(ROLE_POLICY_CHANGED, role, now):
            count("iam-propagation:destination")
            return lambda_error(400, "InvalidParameterValueException",
                                "The provided execution role does not have permissions to call "
                                "SendMessage on SQS")
    return None


# --- notification-validation: S3 asks Lambda whether it may invoke the function --------------

PERMISSION_ADDED = {}   # function name -> when an AddPermission last passed
CLOUD_FUNCTION_CONF = re.compile(rb"<CloudFunctionConfiguration>(.*?)</CloudFunctionConfiguration>",
                                 re.S)


def s3_may_invoke(policy, bucket):
    """Whether a function's resource policy lets S3 invoke it for `bucket`: an Allow for the
    service principal s3.amazonaws.com, of lambda:InvokeFunction, whose SourceArn condition
    (if any) matches the bucket's ARN."""
    for st in policy.get("Statement", []):
        if st.get("Effect") != "Allow":
            continue
        principal = st.get("Principal")
        services = principal.get("Service") if isinstance(principal, dict) else principal
        services = services if isinstance(services, list) else [services]
        if "s3.amazonaws.com" not in services:
            continue
        actions = st.get("Action")
        actions = actions if isinstance(actions, list) else [actions]
        if not any(x in ("lambda:InvokeFunction", "lambda:*", "*") for x in actions):
            continue
        source = None
        for op, cond in (st.get("Condition") or {}).items():
            for k, v in cond.items():
                if k.lower() == "aws:sourcearn":
                    source = v if isinstance(v, list) else [v]
        if source is None or any(fnmatch.fnmatchcase("arn:aws:s3:::" + bucket, pattern)
                                 for pattern in source):
            return True
    return False


def unvalidated_destinations(req, now):
    """S3 validates each Lambda destination when the configuration is written: the function's
    resource policy must let the S3 principal invoke it for this bucket (S3 User Guide,
    "Granting permissions to publish event notification messages to a destination": "You
    must grant the Amazon S3 principal the necessary permissions to call the relevant API
    [...]"), and the whole configuration is refused otherwise, with the body reported word
    for word in awslabs/aws-lambda-redshift-loader#219:
        400 InvalidArgument "Unable to validate the following destination configurations",
        ArgumentName1 "FUNCTION-ARN, null", ArgumentValue1 "Not authorized to invoke function
        [FUNCTION-ARN]".
    Decided from state: the policy is read from moto, so a missing AddPermission is refused
    on every call, as AWS does. A statement added less than --propagation seconds ago is not
    seen yet: Lambda's policy, like IAM, is eventually consistent (the length is the proxy's
    choice; AWS gives none). A write with x-amz-skip-destination-validation: true is not
    validated (PutBucketNotificationConfiguration API reference, SkipDestinationValidation)."""
    headers = {k.lower(): v for k, v in req.headers.items()}
    if headers.get("x-amz-skip-destination-validation", "").lower() == "true":
        return None
    refused = []
    for conf in CLOUD_FUNCTION_CONF.findall(req.body):
        m = re.search(rb"<CloudFunction>([^<]+)</CloudFunction>", conf)
        if not m:
            continue
        arn = m.group(1).decode()
        parts = arn.split(":")
        name = parts[6] if len(parts) > 6 else arn
        status, _, body = moto_get_as("lambda", "/2015-03-31/functions/%s/policy" % name,
                                      req.headers)
        try:
            policy = json.loads(json.loads(body).get("Policy") or "{}") if status == 200 else {}
        except (ValueError, AttributeError):
            policy = {}
        with LOCK:
            added = PERMISSION_ADDED.get(name)
        if not s3_may_invoke(policy, req.bucket()):
            count("notification-validation:no-permission")
            refused.append(arn)
        elif added is not None and now < added + PROPAGATION:
            count("notification-validation:propagating")
            refused.append(arn)
    if not refused:
        return None
    # ", null" as in every answer reported.
    args = "".join("<ArgumentName%d>%s, null</ArgumentName%d><ArgumentValue%d>Not authorized to "
                   "invoke function [%s]</ArgumentValue%d>" % (i, arn, i, i, arn, i)
                   for i, arn in enumerate(refused, 1))
    return 400, {"Content-Type": "application/xml"}, (
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidArgument</Code><Message>'
        "Unable to validate the following destination configurations</Message>%s"
        "<RequestId>aws-proxy</RequestId></Error>" % args).encode()


# --- function-states: a function being created --------------------------------------------

def pending_conflict(action, name):
    """Lambda's answer to a change of a function it is still creating. Two texts are reported:
    "The operation cannot be performed at this time. The function is currently in the
    following state: Pending" (remotion-dev/remotion#1186) and "... The resource ARN is
    currently in the following state: 'Pending'. StateReasonCode: 'Creating'"
    (aws/serverless-application-model#2356, an UpdateFunctionConfiguration). Neither says
    "in progress", and the code is the one "statement id already exists" has too."""
    count("function-states:conflict:pending:" + action)
    if action in ("UpdateFunctionConfiguration", "UpdateFunctionCode"):
        message = ("The operation cannot be performed at this time. The resource "
                   "arn:aws:lambda:us-east-1:123456789012:function:%s is currently in the "
                   "following state: 'Pending'. StateReasonCode: 'Creating'" % name)
    else:
        message = ("The operation cannot be performed at this time. The function is currently "
                   "in the following state: Pending")
    return lambda_error(409, "ResourceConflictException", message)


# --- table-creating: what reached AWS while a table was CREATING ----------------------------

def note_trigger_while_creating(req, now):
    """Counts, per table still CREATING, a bucket notification naming a function: the trigger
    that would start writing to a table not yet ACTIVE. AWS does not refuse it (S3 does not
    know the table), so it is recorded for the test to assert on, not answered."""
    if req.action != "PutBucketNotificationConfiguration" or b"CloudFunction" not in req.body:
        return
    with LOCK:
        creating = [t for t, until in TABLE_CREATING_UNTIL.items() if until > now]
    for table in creating:
        count("table-creating:trigger-while-creating:" + table)


# --- pending-subscription: per subscription -------------------------------------------------

PENDING_SUBSCRIPTIONS = set()   # ARNs of subscriptions whose endpoint never confirmed
# Endpoints SNS asks to confirm; SQS and Lambda subscriptions of the topic owner's own account
# are confirmed at once.
CONFIRMED_BY_ENDPOINT = ("email", "email-json", "http", "https")


def remember_pending(req, payload):
    if req.params.get("Protocol", "").lower() not in CONFIRMED_BY_ENDPOINT:
        return
    m = re.search(rb"<SubscriptionArn>([^<]+)</SubscriptionArn>", payload)
    if m:
        with LOCK:
            PENDING_SUBSCRIPTIONS.add(m.group(1).decode())


def unsubscribe_pending(req):
    """SNS's answer to Unsubscribe of a subscription still pending confirmation, which no API
    can remove (it goes with its topic, or expires after three days). The text is what users
    and tools meet: go-to-k/cdkd#1301 quotes "Invalid parameter: SubscriptionArn Reason:
    Cannot unsubscribe a subscription that is pending confirmation", and
    terraform-provider-aws's aws_sns_topic_subscription matches "Cannot unsubscribe a
    subscription that is pending confirmation" (InvalidParameterException); SNS's API
    reference lists InvalidParameter, HTTP 400, among Unsubscribe's errors."""
    arn = req.params.get("SubscriptionArn", "")
    with LOCK:
        pending = arn in PENDING_SUBSCRIPTIONS
    if not pending:
        return None
    count("pending-subscription:refused")
    return query_error("InvalidParameter",
                       "Invalid parameter: SubscriptionArn Reason: Cannot unsubscribe a "
                       "subscription that is pending confirmation")


# --- new-account-*: what a brand-new AWS account is refused --------------------------------

CLOUDFRONT_CREATE = re.compile(r"^/2020-05-31/(distribution|origin-access-control)$")
FUNCTION_CONCURRENCY = re.compile(r"^/2017-10-31/functions/([^/?]+)/concurrency$")


def new_account(req):
    """The refusals of a brand-new account, which hold until AWS changes the account (support
    case, quota increase): every call is refused, not the first few."""
    if "new-account-cloudfront" in BEHAVE and req.method == "POST" \
            and CLOUDFRONT_CREATE.match(req.route):
        # aws-samples/aws-cdk-examples#279 (Status Code: 403; Error Code: AccessDenied) and
        # hashicorp/terraform-provider-aws#36663 (CreateDistributionWithTags, StatusCode 403),
        # word for word. The message speaks of any new CloudFront resource, so the origin
        # access control, which thumbctl creates first, is refused too.
        count("new-account-cloudfront:" + req.route.rsplit("/", 1)[-1])
        return cloudfront_error(403, "AccessDenied",
                                "Your account must be verified before you can add new CloudFront "
                                "resources. To verify your account, please contact AWS Support "
                                "(https://console.aws.amazon.com/support/home#/) and include this "
                                "error message.")
    if "new-account-codebuild" in BEHAVE and req.action == "StartBuild" \
            and req.service.startswith("CodeBuild"):
        # aws-ia/terraform-aws-control_tower_account_factory#100 and #179 (boto3's StartBuild:
        # "An error occurred (AccountLimitExceededException) when calling the StartBuild
        # operation: Cannot have more than 0 builds in queue for the account"); HTTP 400 per
        # aws-samples/aws-secure-environment-accelerator#982.
        count("new-account-codebuild:StartBuild")
        return json_error(400, "AccountLimitExceededException",
                          "Cannot have more than 0 builds in queue for the account")
    if "new-account-concurrency" in BEHAVE and req.method == "PUT" \
            and FUNCTION_CONCURRENCY.match(req.route):
        # aws-samples/alarm-context-tool#2, awslabs/fhir-works-on-aws-deployment#691 (a new
        # account: "Full account concurrency is 10"): Status Code 400.
        count("new-account-concurrency:PutFunctionConcurrency")
        return lambda_error(400, "InvalidParameterValueException",
                            "Specified ReservedConcurrentExecutions for function decreases "
                            "account's UnreservedConcurrentExecution below its minimum value of "
                            "[10].")
    return None


# --- post-policy ---------------------------------------------------------------------------

# Form fields S3 does not require a policy condition for.
POST_EXEMPT = {"x-amz-signature", "file", "policy"}


def parse_multipart(content_type, body):
    """The parts of a multipart/form-data body, in order, or None if it is not one."""
    m = re.search(r'boundary="?([^";]+)"?', content_type or "")
    if not m:
        return None
    delim = b"--" + m.group(1).encode()
    chunks = body.split(delim)
    if len(chunks) < 3:
        return None
    parts = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        if chunk.startswith(b"\r\n"):
            chunk = chunk[2:]
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            return None
        if data.endswith(b"\r\n"):
            data = data[:-2]
        disposition = ""
        for line in head.split(b"\r\n"):
            k, _, v = line.decode("utf-8", "replace").partition(":")
            if k.strip().lower() == "content-disposition":
                disposition = v
        name = re.search(r'(?:^|;)\s*name="([^"]*)"', disposition)
        filename = re.search(r'filename="([^"]*)"', disposition)
        parts.append({"name": name.group(1) if name else None,
                      "filename": filename.group(1) if filename else None,
                      "head": head, "data": data})
    return parts


def build_multipart(content_type, parts):
    boundary = re.search(r'boundary="?([^";]+)"?', content_type).group(1).encode()
    out = b""
    for p in parts:
        out += b"--" + boundary + b"\r\n" + p["head"] + b"\r\n\r\n" + p["data"] + b"\r\n"
    return out + b"--" + boundary + b"--\r\n"


def s3_size_error(code, message, size, limit_name, limit):
    return 400, {"Content-Type": "application/xml"}, (
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message>'
        "<ProposedSize>%d</ProposedSize><%s>%d</%s><RequestId>aws-proxy</RequestId></Error>"
        % (code, message, size, limit_name, limit, limit_name)).encode()


def signing_key(secret, date, region, service):
    k = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def policy_refusal(what):
    count("post-policy:AccessDenied")
    return s3_error(403, "AccessDenied", "Invalid according to Policy: %s" % what)


def check_post_form(bucket, parts, now):
    """(None, parts to forward) for a form S3 would accept, or (answer, None)."""
    fields, file_part = [], None
    for p in parts:
        if p["name"] is None:
            count("post-policy:MalformedPOSTRequest")
            return s3_error(400, "MalformedPOSTRequest", "The body of your POST request is not "
                            "well-formed multipart/form-data."), None
        if p["name"].lower() == "file":
            file_part = p
            break  # S3 ignores every field after the file
        fields.append(p)
    if file_part is None:
        count("post-policy:InvalidArgument")
        return s3_error(400, "InvalidArgument", "POST requires exactly one file upload per "
                        "request."), None
    form = {}
    for p in fields:
        name = p["name"].lower()
        if name in form:
            count("post-policy:InvalidArgument")
            return s3_error(400, "InvalidArgument", "Bucket POST must contain only one field "
                            "named '%s'." % p["name"]), None
        form[name] = p["data"].decode("utf-8", "replace")
    if "key" not in form:
        count("post-policy:InvalidArgument")
        return s3_error(400, "InvalidArgument", "Bucket POST must contain a field named 'key'.  "
                        "If it is specified, please check the order of the fields."), None
    if "policy" not in form or "x-amz-signature" not in form:
        count("post-policy:AccessDenied")
        return s3_error(403, "AccessDenied", "Access Denied"), None
    if form.get("x-amz-algorithm") != "AWS4-HMAC-SHA256":
        count("post-policy:InvalidArgument")
        return s3_error(400, "InvalidArgument", "x-amz-algorithm must be AWS4-HMAC-SHA256"), None
    cred = form.get("x-amz-credential", "").split("/")
    amz_date = form.get("x-amz-date", "")
    if len(cred) != 5 or cred[3] != "s3" or cred[4] != "aws4_request" \
            or cred[1] != amz_date[:8]:
        count("post-policy:InvalidArgument")
        return s3_error(400, "InvalidArgument", "Invalid x-amz-credential or x-amz-date: %s, %s"
                        % ("/".join(cred), amz_date)), None
    secret = SECRETS.get(cred[0])
    if secret is None:
        count("post-policy:InvalidAccessKeyId")
        return s3_error(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not "
                        "exist in our records."), None
    expected = hmac.new(signing_key(secret, cred[1], cred[2], "s3"), form["policy"].encode(),
                        hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, form["x-amz-signature"]):
        count("post-policy:SignatureDoesNotMatch")
        return s3_error(403, "SignatureDoesNotMatch", "The request signature we calculated does "
                        "not match the signature you provided. Check your key and signing "
                        "method."), None
    try:
        policy = json.loads(base64.b64decode(form["policy"], validate=True))
        conditions = policy["conditions"]
        expiration = policy["expiration"]
        assert isinstance(conditions, list) and isinstance(expiration, str)
    except (ValueError, KeyError, TypeError, AssertionError):
        count("post-policy:InvalidPolicyDocument")
        return s3_error(400, "InvalidPolicyDocument", "Invalid Policy: Invalid JSON."), None
    try:
        expires = calendar.timegm(time.strptime(expiration.split(".")[0].rstrip("Z"),
                                                "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        count("post-policy:InvalidPolicyDocument")
        return s3_error(400, "InvalidPolicyDocument", "Invalid Policy: Invalid 'expiration' "
                        "value: '%s'" % expiration), None
    if now > expires:
        return policy_refusal("Policy expired."), None
    # S3 matches the key after putting the file's name in place of ${filename}.
    form["key"] = form["key"].replace("${filename}", file_part["filename"] or "")
    covered, size_range = set(), None
    for c in conditions:
        if isinstance(c, dict) and len(c) == 1:
            (name, value), = c.items()
            op, name = "eq", name.lower()
        elif isinstance(c, list) and len(c) == 3 and c[0] == "content-length-range":
            size_range = (c[1], c[2])
            continue
        elif isinstance(c, list) and len(c) == 3 and c[0] in ("eq", "starts-with") \
                and isinstance(c[1], str) and c[1].startswith("$"):
            op, name, value = c[0], c[1][1:].lower(), c[2]
        else:
            count("post-policy:InvalidPolicyDocument")
            return s3_error(400, "InvalidPolicyDocument", "Invalid Policy: Invalid Condition: "
                            "%s" % json.dumps(c)), None
        covered.add(name)
        actual = bucket if name == "bucket" else form.get(name)
        if op == "eq":
            ok = actual == value
        elif name == "content-type":
            # A comma-separated Content-Type is a list: every entry must start with the prefix.
            ok = actual is not None and all(
                t.strip().startswith(value) for t in actual.split(","))
        else:
            ok = actual is not None and actual.startswith(value)
        if not ok:
            return policy_refusal("Policy Condition failed: %s" % json.dumps(c)), None
    extra = [p["name"] for p in fields if p["name"].lower() not in covered
             and p["name"].lower() not in POST_EXEMPT
             and not p["name"].lower().startswith("x-ignore-")]
    if extra:
        return policy_refusal("Extra input fields: %s" % ", ".join(extra)), None
    size = len(file_part["data"])
    if size_range is not None:
        low, high = size_range
        if size < low:
            count("post-policy:EntityTooSmall")
            return s3_size_error("EntityTooSmall", "Your proposed upload is smaller than the "
                                 "minimum allowed size", size, "MinSizeAllowed", low), None
        if size > high:
            count("post-policy:EntityTooLarge")
            return s3_size_error("EntityTooLarge", "Your proposed upload exceeds the maximum "
                                 "allowed size", size, "MaxSizeAllowed", high), None
    forwarded = []
    for p in fields + [file_part]:
        if p["name"].lower() == "key":
            p = dict(p, data=form["key"].encode())
        forwarded.append(p)
    count("post-policy:accepted")
    return None, forwarded


def is_form_post(handler, req):
    return req.service == "s3" and req.method == "POST" and req.bucket() \
        and "/" not in req.route.strip("/") \
        and handler.headers.get("Content-Type", "").startswith("multipart/form-data")


CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


def unknown_key(handler, req):
    """The credentials behaviour: AWS's refusal of a request signed with a key it does not
    know, or None. Presigned requests carry the key in X-Amz-Credential instead."""
    auth = handler.headers.get("Authorization", "")
    m = CREDENTIAL.search(auth)
    key = m.group(1) if m else req.query.get("X-Amz-Credential", [""])[0].split("/")[0]
    if not key or key in SECRETS:
        return None
    count("credentials:" + (req.service or "other"))
    if req.service == "s3":
        return s3_error(403, "InvalidAccessKeyId",
                        "The AWS Access Key Id you provided does not exist in our records.")
    if req.service == "query":
        status, headers, body = query_error("InvalidClientTokenId",
                                            "The security token included in the request is invalid.")
        return 403, headers, body
    return json_error(400, "UnrecognizedClientException",
                      "The security token included in the request is invalid.")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path == "/__invocations":
            with LOCK:
                payload = json.dumps(INVOCATIONS).encode()
            return self.answer(200, {"Content-Type": "application/json"}, payload)
        if self.path.startswith("/__batch-jobs"):
            return self.answer(*(batch_test_api(self.command, self.path, body)
                                 or (404, {"Content-Type": "text/plain"}, b"")))
        if self.path == "/__cloudfront":
            with LOCK:
                payload = json.dumps(CF_CHANGES).encode()
            return self.answer(200, {"Content-Type": "application/json"}, payload)
        if self.path == "/__counts":
            with LOCK:
                payload = json.dumps(COUNTS).encode()
            return self.answer(200, {"Content-Type": "application/json"}, payload)
        count("requests")
        req = Request(self, body)
        if DEBUG:
            print(self.command, self.path, req.service, req.action, file=sys.stderr, flush=True)
        canned = unknown_key(self, req) if "credentials" in BEHAVE else None
        canned = canned or before(req)
        if canned:
            return self.answer(*canned)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
        if "post-policy" in BEHAVE and is_form_post(self, req):
            ctype = self.headers.get("Content-Type", "")
            parts = parse_multipart(ctype, body)
            if parts is None:
                count("post-policy:MalformedPOSTRequest")
                return self.answer(*s3_error(400, "MalformedPOSTRequest", "The body of your POST "
                                             "request is not well-formed multipart/form-data."))
            refused, forwarded = check_post_form(req.bucket(), parts, time.time())
            if refused:
                return self.answer(*refused)
            body = build_multipart(ctype, forwarded)
            headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
            headers["Content-Length"] = str(len(body))
        conn = http.client.HTTPConnection(TARGET_HOST, TARGET_PORT, timeout=60)
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        conn.close()
        if "lost-answers" in BEHAVE and req.action in LOSABLE and once("lost:" + req.action):
            # moto has applied it; the caller never hears so.
            count("lost-answers:" + req.action)
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        payload = after(req, resp.status, payload, dict(resp.getheaders()))
        out = {k: v for k, v in resp.getheaders()
               if k.lower() not in ("transfer-encoding", "connection", "content-length")}
        self.answer(resp.status, out, payload, head=self.command == "HEAD",
                    length=resp.getheader("Content-Length"))

    def answer(self, status, headers, payload, head=False, length=None):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(length if head and length is not None else len(payload)))
        self.end_headers()
        if not head:
            self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = handle_any


def main():
    global BEHAVE, SETTLE, PROPAGATION, TARGET_HOST, TARGET_PORT
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--behave", default="", help="comma-separated behaviours (see above)")
    ap.add_argument("--settle", type=float, default=1.5,
                    help="seconds a new function, table or distribution change stays busy")
    ap.add_argument("--propagation", type=float, default=None,
                    help="seconds a role or function policy change takes to be seen by other "
                         "services (default: --settle)")
    a = ap.parse_args()
    BEHAVE = {b for b in a.behave.split(",") if b}
    SETTLE = a.settle
    PROPAGATION = a.settle if a.propagation is None else a.propagation
    TARGET_HOST, port = a.target.rsplit(":", 1)
    TARGET_PORT = int(port)
    host, port = a.listen.rsplit(":", 1)
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.daemon_threads = True

    def stop(*_):
        with LOCK:
            print(json.dumps(COUNTS, sort_keys=True), flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

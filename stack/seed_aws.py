"""Seeds the local AWS stand-in (moto in server mode, signature checking on)
right after stack.sh starts it.

moto checks signatures only after INITIAL_NO_AUTH_ACTION_COUNT unsigned
actions: stack.sh starts it with exactly the three this script needs to
create an IAM user, its access key and its policy. Every later request, from
logpipe, the tests or Airflow, must be signed with that user's key: a wrong
signature fails as it would on AWS. The key goes to a shared credentials
file (profile logpipe-local, mode 0600) that the tests and the demo point
AWS_SHARED_CREDENTIALS_FILE at; it is regenerated on every moto start and
never committed.

Then, signed: the secret logpipe/local (the seed's JSON keys, pointing at the
local servers) and the S3 bucket for the MWAA bundle, with versioning on.
"""

from __future__ import annotations

import json
import os
import sys

import boto3

ENDPOINT, STACK_AWS, KAFKA, ES = sys.argv[1:5]
REGION = "us-east-1"
BUCKET = "logpipe-mwaa-local"
POLICY = {"Version": "2012-10-17",
          "Statement": [{"Effect": "Allow", "Action": ["secretsmanager:*", "s3:*", "airflow:*"], "Resource": "*"}]}


def main() -> None:
    boot = {"endpoint_url": ENDPOINT, "region_name": REGION, "aws_access_key_id": "bootstrap",
            "aws_secret_access_key": "bootstrap"}
    iam = boto3.client("iam", **boot)
    iam.create_user(UserName="logpipe-local")                      # unsigned action 1
    key = iam.create_access_key(UserName="logpipe-local")["AccessKey"]  # 2
    iam.put_user_policy(UserName="logpipe-local", PolicyName="logpipe-local",  # 3
                        PolicyDocument=json.dumps(POLICY))
    os.makedirs(STACK_AWS, exist_ok=True)
    creds = os.path.join(STACK_AWS, "credentials")
    fd = os.open(creds, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"[logpipe-local]\naws_access_key_id = {key['AccessKeyId']}\n"
                f"aws_secret_access_key = {key['SecretAccessKey']}\n")
    with open(os.path.join(STACK_AWS, "config"), "w") as f:
        f.write(f"[profile logpipe-local]\nregion = {REGION}\n")

    signed = {"endpoint_url": ENDPOINT, "region_name": REGION, "aws_access_key_id": key["AccessKeyId"],
              "aws_secret_access_key": key["SecretAccessKey"]}
    sm = boto3.client("secretsmanager", **signed)
    sm.create_secret(Name="logpipe/local", Description="logpipe's connection settings for the local stack",
                     SecretString=json.dumps({"kafka_bootstrap_server": KAFKA, "elasticsearch_URL": ES}))
    s3 = boto3.client("s3", **signed)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})


if __name__ == "__main__":
    main()

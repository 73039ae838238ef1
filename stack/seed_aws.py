"""Seeds the local AWS stand-in (moto in server mode, signature checking on)
for stack.sh.

`seed_aws.py bootstrap ENDPOINT AWS_HOME KAFKA ES` runs right after moto
starts. moto checks signatures only after INITIAL_NO_AUTH_ACTION_COUNT
unsigned actions: stack.sh starts it with exactly the three this needs to
create an IAM user, its access key and its policy. Every later request, from
logpipe, the tests or Airflow, must be signed with that user's key: a wrong
signature fails as it would on AWS. The key goes to a shared credentials file
(profile logpipe-local, mode 0600) that the tests and the demo point
AWS_SHARED_CREDENTIALS_FILE at; it is regenerated on every moto start and
never committed. Then, signed: the secret logpipe/local (the seed's JSON keys,
pointing at the plain local servers) and the S3 bucket for the MWAA bundle,
with versioning on.

`seed_aws.py secure ENDPOINT AWS_HOME KAFKA_SASL ES_SECURE TLS_DIR` runs at
every `up` (the secured servers' credentials change when they restart):
creates or updates logpipe/local-secure, the settings for Kafka's SASL_SSL
listener and the secured Elasticsearch, with the seed's keys and the test CA,
and the Airflow connections kafka_secure and elasticsearch_secure to the same
servers.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import boto3

REGION = "us-east-1"
BUCKET = "logpipe-mwaa-local"
POLICY = {"Version": "2012-10-17",
          "Statement": [{"Effect": "Allow", "Action": ["secretsmanager:*", "s3:*", "airflow:*"], "Resource": "*"}]}


def client(service: str, endpoint: str, aws_home: str):
    keys = dict(line.split(" = ", 1) for line in Path(aws_home, "credentials").read_text().splitlines()
                if " = " in line)
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id=keys["aws_access_key_id"],
                        aws_secret_access_key=keys["aws_secret_access_key"])


def bootstrap(endpoint: str, aws_home: str, kafka: str, es: str) -> None:
    boot = {"endpoint_url": endpoint, "region_name": REGION, "aws_access_key_id": "bootstrap",
            "aws_secret_access_key": "bootstrap"}
    iam = boto3.client("iam", **boot)
    iam.create_user(UserName="logpipe-local")                      # unsigned action 1
    key = iam.create_access_key(UserName="logpipe-local")["AccessKey"]  # 2
    iam.put_user_policy(UserName="logpipe-local", PolicyName="logpipe-local",  # 3
                        PolicyDocument=json.dumps(POLICY))
    os.makedirs(aws_home, exist_ok=True)
    fd = os.open(os.path.join(aws_home, "credentials"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"[logpipe-local]\naws_access_key_id = {key['AccessKeyId']}\n"
                f"aws_secret_access_key = {key['SecretAccessKey']}\n")
    with open(os.path.join(aws_home, "config"), "w") as f:
        f.write(f"[profile logpipe-local]\nregion = {REGION}\n")

    sm = client("secretsmanager", endpoint, aws_home)
    sm.create_secret(Name="logpipe/local", Description="logpipe's connection settings for the local stack",
                     SecretString=json.dumps({"kafka_bootstrap_server": kafka, "elasticsearch_URL": es}))
    s3 = client("s3", endpoint, aws_home)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})


def secure(endpoint: str, aws_home: str, kafka_sasl: str, es_secure: str, tls_dir: str) -> None:
    tls = Path(tls_dir)
    value = json.dumps({"kafka_bootstrap_server": kafka_sasl, "kafka_username": "logpipe",
                        "kafka_secret": (tls / "kafka-plain.pass").read_text().strip(),
                        "kafka_ca_pem": (tls / "ca.pem").read_text(),
                        "elasticsearch_URL": es_secure,
                        "elasticsearch_API_Key": (tls / "es-api-key").read_text().strip(),
                        "elasticsearch_ca_pem": (tls / "ca.pem").read_text()})
    sm = client("secretsmanager", endpoint, aws_home)
    put(sm, "logpipe/local-secure", value)
    # The same servers as Airflow connections, served by Airflow's
    # SecretsManagerBackend (connections_prefix airflow/connections) and
    # defined nowhere else.
    put(sm, "airflow/connections/kafka_secure", json.dumps({
        "conn_type": "kafka", "login": "logpipe", "password": (tls / "kafka-plain.pass").read_text().strip(),
        "extra": {"bootstrap.servers": kafka_sasl, "security.protocol": "SASL_SSL", "sasl.mechanisms": "PLAIN",
                  "ssl.ca.location": str(tls / "ca.pem")}}))
    put(sm, "airflow/connections/elasticsearch_secure", json.dumps({
        "conn_type": "elasticsearch", "host": es_secure,
        "extra": {"api_key": (tls / "es-api-key").read_text().strip(), "ca_certs": str(tls / "ca.pem")}}))


def put(sm, name: str, value: str) -> None:
    try:
        sm.put_secret_value(SecretId=name, SecretString=value)
    except sm.exceptions.ResourceNotFoundException:
        sm.create_secret(Name=name, SecretString=value)


if __name__ == "__main__":
    {"bootstrap": bootstrap, "secure": secure}[sys.argv[1]](*sys.argv[2:])

"""deploy/deploy.sh against the local S3 (moto, signatures checked, bucket
versioning on). moto has no MWAA API, so `aws mwaa` goes to a recording shim
(AWS=...), and the test checks the recorded update-environment call against
the object versions S3 holds.
"""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path

import boto3
import pytest
from conftest import ROOT
from test_secrets import AWS_HOME, ENDPOINT

BUCKET = "logpipe-mwaa-local"


@pytest.fixture
def aws_env(stack, tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(AWS_HOME / "credentials"), AWS_CONFIG_FILE=str(AWS_HOME / "config"),
               AWS_PROFILE="logpipe-local", AWS_ENDPOINT_URL=ENDPOINT, AWS_EC2_METADATA_DISABLED="true")
    shim = tmp_path / "aws"
    shim.write_text(f"""#!/bin/sh
if [ "$1" = mwaa ]; then
  printf '%s\\n' "$*" >> {tmp_path}/mwaa-calls
  echo arn:aws:airflow:us-east-1:123456789012:environment/$4
  exit 0
fi
exec {ROOT}/.venv/bin/aws "$@"
""")
    shim.chmod(0o755)
    env["AWS"] = str(shim)
    return env


def s3(env: dict[str, str]):
    keys = dict(line.split(" = ", 1) for line in (AWS_HOME / "credentials").read_text().splitlines() if " = " in line)
    return boto3.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1",
                        aws_access_key_id=keys["aws_access_key_id"], aws_secret_access_key=keys["aws_secret_access_key"])


def make_bundle(d: Path, dags: dict[str, str], plugin_text: str) -> Path:
    ours = d / "dags" / "logpipe"  # bundle.sh's layout: logpipe's DAGs in a folder of their own
    ours.mkdir(parents=True, exist_ok=True)
    for old in ours.iterdir():
        old.unlink()
    for name, text in dags.items():
        (ours / name).write_text(text)
    with zipfile.ZipFile(d / "plugins.zip", "w") as z:
        z.writestr(zipfile.ZipInfo("logpipe_plugin.py", (2020, 1, 1, 0, 0, 0)), plugin_text)
    (d / "requirements.txt").write_text("confluent-kafka==2.11.1\n")
    return d


def deploy(env: dict[str, str], bundle: Path, prefix: str, *extra: str) -> str:
    r = subprocess.run(["bash", str(ROOT / "deploy" / "deploy.sh"), str(bundle), "--bucket", BUCKET,
                        "--environment", "logpipe-test", "--prefix", prefix, *extra],
                       env=env, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout + r.stderr


def calls(tmp_path: Path) -> list[str]:
    f = tmp_path / "mwaa-calls"
    return f.read_text().splitlines() if f.exists() else []


def versions(client, key: str) -> list[str]:
    out = client.list_object_versions(Bucket=BUCKET, Prefix=key).get("Versions", [])
    return [v["VersionId"] for v in out if v["Key"] == key]


def test_deploy_uploads_changes_only_and_updates_mwaa_with_the_new_versions(aws_env, tmp_path, unique):
    client = s3(aws_env)
    prefix = f"deploy-{unique}"
    bundle = make_bundle(tmp_path / "b", {"a.py": "# a\n", "b.py": "# b\n"}, "# plugin v1\n")

    out = deploy(aws_env, bundle, prefix)  # first deploy: everything
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]}
    assert keys == {f"{prefix}/dags/logpipe/a.py", f"{prefix}/dags/logpipe/b.py", f"{prefix}/plugins.zip",
                    f"{prefix}/requirements.txt"}
    plugins_v1 = client.head_object(Bucket=BUCKET, Key=f"{prefix}/plugins.zip")["VersionId"]
    req_v1 = client.head_object(Bucket=BUCKET, Key=f"{prefix}/requirements.txt")["VersionId"]
    first = (f"mwaa update-environment --name logpipe-test "
             f"--plugins-s3-path {prefix}/plugins.zip --plugins-s3-object-version {plugins_v1} "
             f"--requirements-s3-path {prefix}/requirements.txt "
             f"--requirements-s3-object-version {req_v1} --query Arn --output text")
    assert calls(tmp_path) == [first]
    assert "plugins.zip uploaded" in out

    make_bundle(bundle, {"a.py": "# a\n"}, "# plugin v1\n")  # a DAG removed, plugins unchanged
    out = deploy(aws_env, bundle, prefix)
    assert "delete: s3://" in out and "plugins.zip unchanged" in out and "not updated" in out
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/dags/")["Contents"]}
    assert keys == {f"{prefix}/dags/logpipe/a.py"}
    assert len(versions(client, f"{prefix}/plugins.zip")) == 1
    assert len(calls(tmp_path)) == 1  # no update-environment

    make_bundle(bundle, {"a.py": "# a\n"}, "# plugin v2\n")  # plugins changed
    out = deploy(aws_env, bundle, prefix, "--dry-run")
    assert "plugins.zip would be uploaded" in out and "would run: aws mwaa update-environment" in out
    assert len(versions(client, f"{prefix}/plugins.zip")) == 1 and len(calls(tmp_path)) == 1
    deploy(aws_env, bundle, prefix)
    plugins_v2 = client.head_object(Bucket=BUCKET, Key=f"{prefix}/plugins.zip")["VersionId"]
    assert plugins_v2 != plugins_v1 and len(versions(client, f"{prefix}/plugins.zip")) == 2
    assert calls(tmp_path)[-1] == (f"mwaa update-environment --name logpipe-test --plugins-s3-path "
                                   f"{prefix}/plugins.zip --plugins-s3-object-version {plugins_v2} "
                                   f"--query Arn --output text")


def test_deploy_refuses_a_bucket_without_versioning(aws_env, tmp_path, unique):
    client = s3(aws_env)
    bucket = f"unversioned-{unique}"
    client.create_bucket(Bucket=bucket)
    bundle = make_bundle(tmp_path / "b", {"a.py": "# a\n"}, "# plugin\n")
    r = subprocess.run(["bash", str(ROOT / "deploy" / "deploy.sh"), str(bundle), "--bucket", bucket,
                        "--environment", "e"], env=aws_env, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 1
    assert f"bucket {bucket} has versioning" in r.stderr and "Enabled" in r.stderr
    assert "Contents" not in client.list_objects_v2(Bucket=bucket)
    assert json.dumps(calls(tmp_path)) == "[]"


def test_deploy_leaves_other_teams_dags_alone(aws_env, tmp_path, unique):
    """A shared bucket: other teams' DAGs sit beside logpipe's in dags/. The deploy
    writes and deletes only in dags/logpipe/, and removes logpipe's own files left at
    the top of dags/ by the layout before it (the same DAG ids twice)."""
    client = s3(aws_env)
    prefix = f"shared-{unique}"
    foreign = {f"{prefix}/dags/payments_daily.py": b"# another team's DAG\n",
               f"{prefix}/dags/payments/helpers.py": b"# and its helpers\n",
               f"{prefix}/dags/logpipe_notes.txt": b"not ours either\n"}
    legacy = f"{prefix}/dags/a.py"  # where the old deploy.sh put logpipe's a.py
    for key, body in {**foreign, legacy: b"# a, old layout\n"}.items():
        client.put_object(Bucket=BUCKET, Key=key, Body=body)
    bundle = make_bundle(tmp_path / "b", {"a.py": "# a\n", "b.py": "# b\n"}, "# plugin\n")

    out = deploy(aws_env, bundle, prefix, "--dry-run")
    assert f"would delete s3://{BUCKET}/{legacy}" in out
    deploy(aws_env, bundle, prefix)
    make_bundle(bundle, {"a.py": "# a\n"}, "# plugin\n")  # b.py removed from the repo
    out = deploy(aws_env, bundle, prefix)
    assert f"delete: s3://{BUCKET}/{prefix}/dags/logpipe/b.py" in out

    keys = {o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/dags/")["Contents"]}
    assert keys == {*foreign, f"{prefix}/dags/logpipe/a.py"}
    for key, body in foreign.items():
        assert client.get_object(Bucket=BUCKET, Key=key)["Body"].read() == body


def test_workflow_actions_are_pinned_to_commits():
    """A tag can be moved to other code; the deploy job mints an AWS role's token."""
    import re

    for wf in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        uses = re.findall(r"^\s*(?:-\s*)?uses:\s*(\S+)(.*)$", wf.read_text(), re.MULTILINE)
        assert uses, wf
        for ref, comment in uses:
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), f"{wf.name}: {ref} is not pinned to a commit"
            assert re.search(r"#\s*v\d", comment), f"{wf.name}: {ref} lacks a # vX.Y.Z comment"

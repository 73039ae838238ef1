"""Secrets at run time, against the local AWS (moto in server mode with
signature checking on, started and seeded by stack.sh): logpipe reads its
connection settings from Secrets Manager with nothing but AWS's standard
variables, from each credential source; bad credentials, a missing secret or
a credential on the command line stop it before it touches data, with a
message that names what was wrong and never a secret.
"""

from __future__ import annotations

import http.server
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import requests
from conftest import ROOT, es_count
from faultproxy import FaultProxy, Faults
from helpers import committed, high_watermarks

AWS_HOME = ROOT / ".stack" / "aws"
ENDPOINT = "http://127.0.0.1:5000"


def profile_keys() -> tuple[str, str]:
    lines = dict(line.split(" = ", 1) for line in (AWS_HOME / "credentials").read_text().splitlines() if " = " in line)
    return lines["aws_access_key_id"], lines["aws_secret_access_key"]


def base_env(tmp_path: Path) -> dict[str, str]:
    """An environment with no AWS settings from the machine: HOME is empty,
    instance metadata is off, the endpoint is the local AWS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOGPIPE_"))}
    env.update(HOME=str(tmp_path), AWS_EC2_METADATA_DISABLED="true", AWS_REGION="us-east-1",
               AWS_ENDPOINT_URL=ENDPOINT)
    return env


def key_env(tmp_path: Path) -> dict[str, str]:
    key_id, secret = profile_keys()
    return {**base_env(tmp_path), "AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret}


@pytest.fixture
def secret(stack, unique) -> callable:
    """Creates secrets in the local Secrets Manager (signed, as on AWS)."""
    key_id, key = profile_keys()
    sm = boto3.client("secretsmanager", endpoint_url=ENDPOINT, region_name="us-east-1",
                      aws_access_key_id=key_id, aws_secret_access_key=key)

    def make(value: dict) -> str:
        name = f"logpipe/test/{unique}/{len(value)}-{time.time_ns()}"
        sm.create_secret(Name=name, SecretString=json.dumps(value))
        return name
    return make


def logpipe(logpipe_bin: str, env: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([logpipe_bin, *args], check=False, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_produce_and_consume_from_one_secret_with_profile_credentials(logpipe_bin, kafka, es, topic, unique,
                                                                      secret, tmp_path):
    """Only --secrets and the shared credentials file (AWS_PROFILE), as on a developer's machine."""
    name = secret({"kafka_bootstrap_server": kafka, "elasticsearch_URL": es})
    env = {**base_env(tmp_path), "AWS_SHARED_CREDENTIALS_FILE": str(AWS_HOME / "credentials"),
           "AWS_CONFIG_FILE": str(AWS_HOME / "config"), "AWS_PROFILE": "logpipe-local"}
    del env["AWS_REGION"]  # the profile's region
    r = logpipe(logpipe_bin, env, "produce", "--secrets", f"aws-sm://{name}", "-t", topic, "--count", "3000")
    assert r.returncode == 0, r.stderr
    r = logpipe(logpipe_bin, env, "consume", "--secrets", f"aws-sm://{name}", "-t", topic, "-g", f"g-{unique}",
                "-i", unique, "--until-idle", "2")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1])["indexed"] == 3000
    assert es_count(es, unique) == 3000
    marks = high_watermarks(kafka, topic)
    assert committed(kafka, f"g-{unique}", topic, len(marks)) == marks


class _ContainerCredentials:
    """What the ECS/MWAA agent serves at AWS_CONTAINER_CREDENTIALS_*_URI:
    the role's keys, to a request carrying the authorization token."""

    def __init__(self, token: str) -> None:
        key_id, key = profile_keys()
        body = json.dumps({"AccessKeyId": key_id, "SecretAccessKey": key, "Token": "",
                           "Expiration": "2099-01-01T00:00:00Z"}).encode()
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                outer.requests += 1
                ok = self.path == "/v2/credentials/task" and self.headers.get("Authorization") == token
                self.send_response(200 if ok else 401)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body if ok else b'{"message":"unauthorized"}')

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v2/credentials/task"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_container_credentials_as_on_mwaa(logpipe_bin, kafka, es, topic, unique, secret, tmp_path):
    name = secret({"kafka_bootstrap_server": kafka, "elasticsearch_URL": es})
    agent = _ContainerCredentials(token=f"task-token-{unique}")
    try:
        env = {**base_env(tmp_path), "AWS_CONTAINER_CREDENTIALS_FULL_URI": agent.url,
               "AWS_CONTAINER_AUTHORIZATION_TOKEN": f"task-token-{unique}"}
        r = logpipe(logpipe_bin, env, "produce", "--secrets", f"aws-sm://{name}", "-t", topic, "--count", "100")
        assert r.returncode == 0, r.stderr
        assert agent.requests == 1
        env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "wrong"
        r = logpipe(logpipe_bin, env, "produce", "--secrets", f"aws-sm://{name}", "-t", topic, "--count", "100")
        assert r.returncode == 2
        assert "AWS container credentials at " + agent.url + ": HTTP 401" in r.stderr
        assert f"task-token-{unique}" not in r.stderr
    finally:
        agent.close()


def test_wrong_signature_missing_secret_and_no_region_are_clear_errors(logpipe_bin, topic, secret, tmp_path):
    name = secret({"kafka_bootstrap_server": "127.0.0.1:9092"})
    key_id, key = profile_keys()
    env = {**base_env(tmp_path), "AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": "not-" + key}
    r = logpipe(logpipe_bin, env, "produce", "--secrets", f"aws-sm://{name}", "-t", topic, "--count", "1")
    assert r.returncode == 2
    assert f'secret "{name}" in region us-east-1: SignatureDoesNotMatch' in r.stderr
    assert key not in r.stderr and "not-" not in r.stderr

    env = key_env(tmp_path)
    r = logpipe(logpipe_bin, env, "produce", "--secrets", "aws-sm://logpipe/does-not-exist", "-t", topic)
    assert r.returncode == 2
    assert 'secret "logpipe/does-not-exist" in region us-east-1: ResourceNotFoundException' in r.stderr

    del env["AWS_REGION"]
    r = logpipe(logpipe_bin, env, "produce", "--secrets", f"aws-sm://{name}", "-t", topic)
    assert r.returncode == 2 and "no region for secret" in r.stderr
    r = logpipe(logpipe_bin, env, "produce", "--secrets", f"aws-sm://{name}?region=us-east-1", "-t", topic,
                "--count", "1")
    assert r.returncode == 0, r.stderr


def test_credentials_on_the_command_line_are_refused_before_any_data_moves(logpipe_bin, kafka, es, topic,
                                                                           unique, tmp_path):
    subprocess.run([logpipe_bin, "produce", "-b", kafka, "-t", topic, "--count", "10"], check=True,
                   capture_output=True)
    r = logpipe(logpipe_bin, base_env(tmp_path), "consume", "-b", kafka, "-t", topic, "-g", f"g-{unique}",
                "-e", es, "-i", unique, "--es-api-key", "my-literal-key")
    assert r.returncode == 2
    assert "--es-api-key takes a reference" in r.stderr and "my-literal-key" not in r.stderr
    # nothing consumed, nothing committed, no index created
    assert all(o < 0 for o in committed(kafka, f"g-{unique}", topic, 3).values())
    assert requests.head(f"{es}/{unique}", timeout=10).status_code == 404


def readable(path: Path) -> bytes:
    """What this test process can read of a /proc file. logpipe is not
    dumpable, so without CAP_SYS_PTRACE (a container's root may lack it) its
    environ is refused outright, which leaks nothing; with it (as here), the
    content is checked."""
    try:
        return path.read_bytes()
    except PermissionError:
        return b""


def test_no_secret_reaches_output_argv_or_environ(logpipe_bin, kafka, es, topic, unique, secret, tmp_path):
    """The ES API key from Secrets Manager reaches Elasticsearch (a recording
    proxy sees it), and neither it nor the AWS secret key appears in logpipe's
    stdout/stderr, /proc/<pid>/cmdline or /proc/<pid>/environ once started."""
    api_key = f"apikey-{unique}-dont-leak"
    subprocess.run([logpipe_bin, "produce", "-b", kafka, "-t", topic, "--count", "200000", "--rate", "40000"],
                   check=True, capture_output=True)
    with FaultProxy(es, Faults(delay_s=0.2)) as proxy:
        name = secret({"kafka_bootstrap_server": kafka, "elasticsearch_URL": proxy.url,
                       "elasticsearch_API_Key": api_key})
        env = key_env(tmp_path)
        aws_key = env["AWS_SECRET_ACCESS_KEY"]
        p = subprocess.Popen([logpipe_bin, "consume", "--secrets", f"aws-sm://{name}", "-t", topic,
                              "-g", f"g-{unique}", "-i", unique, "--until-idle", "2", "--batch-docs", "2000"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        proc = Path(f"/proc/{p.pid}")
        seen = b""
        deadline = time.time() + 60
        while time.time() < deadline and not proxy.faults.bulk_requests:
            time.sleep(0.1)
        assert proxy.faults.bulk_requests, "logpipe never reached Elasticsearch"
        for _ in range(5):  # while it runs
            seen += (proc / "cmdline").read_bytes() + readable(proc / "environ")
            time.sleep(0.2)
        out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert f"ApiKey {api_key}" in proxy.faults.authorizations
    assert b"AWS_SECRET_ACCESS_KEY" not in seen and aws_key.encode() not in seen
    assert api_key.encode() not in seen
    assert api_key not in out + err and aws_key not in out + err


def test_a_whole_secret_from_secrets_manager_for_one_value_is_refused_without_quoting_it(logpipe_bin, kafka, es,
                                                                                       topic, unique, secret,
                                                                                       tmp_path):
    values = {"kafka_bootstrap_server": kafka, "kafka_username": f"user-{unique}", "kafka_secret": f"kp-{unique}",
              "elasticsearch_URL": es, "elasticsearch_API_Key": f"apikey-{unique}"}
    name = secret(values)
    env = key_env(tmp_path)
    r = logpipe(logpipe_bin, env, "produce", "--brokers", f"aws-sm://{name}", "-t", topic, "--count", "1")
    assert r.returncode == 2 and "--brokers" in r.stderr and "did you forget #key?" in r.stderr, r.stderr
    r2 = logpipe(logpipe_bin, env, "consume", "-b", kafka, "--es", f"aws-sm://{name}", "-t", topic,
                 "-g", f"g-{unique}", "-i", unique, "--until-idle", "1")
    assert r2.returncode == 2 and "--es" in r2.stderr and "did you forget #key?" in r2.stderr, r2.stderr
    for v in values.values():
        assert v not in r.stderr and v not in r2.stderr.replace(f"-b {kafka}", "")


def test_no_core_file_and_no_access_for_same_user_processes(logpipe_bin, tmp_path):
    """Non-dumpable from the start: a crash writes no core (it would hold the
    SASL password and API key), and /proc/<pid>/environ, mem, ... belong to
    root, so other processes of the same user can neither read nor ptrace it."""
    saved = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (saved[1], saved[1]))  # inherited: cores allowed
    # SIGQUIT's default action, inherited too: a shell that starts a job in the
    # background without job control leaves SIGQUIT ignored in everything below
    # it, and the signal would then not end parse (the test waited forever).
    saved_quit = signal.signal(signal.SIGQUIT, signal.SIG_DFL)
    try:
        p = subprocess.Popen([logpipe_bin, "parse"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, cwd=tmp_path)
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, saved)
        signal.signal(signal.SIGQUIT, saved_quit)
    time.sleep(0.5)
    os.kill(p.pid, signal.SIGQUIT)  # dumps core by default (and no sanitizer catches it)
    _, status = os.waitpid(p.pid, 0)
    p.returncode = -signal.SIGQUIT  # reaped here: keep Popen from waiting again
    assert os.WIFSIGNALED(status) and not os.WCOREDUMP(status)
    assert not list(tmp_path.glob("core*"))

    # As another user than root (when root, as nobody), so that ownership tells.
    workdir = Path(tempfile.mkdtemp(prefix="logpipe-dumpable-"))
    try:
        workdir.chmod(0o755)
        binary = workdir / "logpipe"
        shutil.copy(logpipe_bin, binary)
        binary.chmod(0o755)
        nobody = 65534 if os.geteuid() == 0 else None
        p = subprocess.Popen([str(binary), "parse"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             user=nobody, group=nobody, cwd=workdir)
        try:
            time.sleep(0.5)
            uid = int(next(line for line in Path(f"/proc/{p.pid}/status").read_text().splitlines()
                           if line.startswith("Uid:")).split()[1])
            assert uid != 0
            assert os.stat(f"/proc/{p.pid}/environ").st_uid == 0
            assert os.stat(f"/proc/{p.pid}/mem").st_uid == 0
        finally:
            p.kill()
            p.wait()
    finally:
        shutil.rmtree(workdir)


@pytest.fixture
def private_aws(tmp_path) -> Iterator[tuple[str, dict[str, str]]]:
    """A moto of this test's own, IAM checks on (the shared one's user may not
    create roles, and web identity needs an unsigned call): its first three
    actions, unsigned, create an administrator whose key signs the rest."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with open(tmp_path / "moto.log", "w") as log:
        p = subprocess.Popen([str(ROOT / ".venv" / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                             env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"}, stdout=log,
                             stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while True:
            try:
                if requests.get(f"{url}/moto-api/", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.time() < deadline and p.poll() is None, (tmp_path / "moto.log").read_text()
            time.sleep(0.2)
        iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1", aws_access_key_id="AKIAUNSIGNED",
                           aws_secret_access_key="unsigned")
        iam.create_user(UserName="admin")
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        yield url, {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
    finally:
        p.terminate()
        p.wait(timeout=30)


def test_web_identity_and_role_profiles_through_sts(logpipe_bin, kafka, topic, private_aws, tmp_path):
    """The role's keys, and only they, can read the secret: a user that may
    only assume the role (role_arn + source_profile: AssumeRole signed with
    its keys), and a web identity token (AssumeRoleWithWebIdentity, the one
    unsigned call moto is told to let through) both reach Kafka from it."""
    url, admin = private_aws
    iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1", **admin)
    iam.create_user(UserName="assumer")
    assumer_key = iam.create_access_key(UserName="assumer")["AccessKey"]
    assumer_arn = iam.get_user(UserName="assumer")["User"]["Arn"]
    iam.put_user_policy(UserName="assumer", PolicyName="assume", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}))
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": assumer_arn}, "Action": "sts:AssumeRole"},
        {"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.local"},
         "Action": "sts:AssumeRoleWithWebIdentity"}]}
    role_arn = iam.create_role(RoleName="logpipe-reader", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName="logpipe-reader", PolicyName="read", PolicyDocument=json.dumps(
        {"Version": "2012-10-17",
         "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}))
    untrusting = iam.create_role(RoleName="not-for-logpipe", AssumeRolePolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": iam.get_user(UserName="admin")["User"]["Arn"]},
             "Action": "sts:AssumeRole"}]}))
    sm = boto3.client("secretsmanager", endpoint_url=url, region_name="us-east-1", **admin)
    sm.create_secret(Name="logpipe/role-test", SecretString=json.dumps({"kafka_bootstrap_server": kafka}))
    base = {**base_env(tmp_path), "AWS_ENDPOINT_URL": url}
    args = ("produce", "--secrets", "aws-sm://logpipe/role-test", "-t", topic, "--count", "10")

    # the assumer's own keys may not read the secret
    r = logpipe(logpipe_bin, {**base, "AWS_ACCESS_KEY_ID": assumer_key["AccessKeyId"],
                              "AWS_SECRET_ACCESS_KEY": assumer_key["SecretAccessKey"]}, *args)
    assert r.returncode == 2 and "AccessDenied" in r.stderr, r.stderr

    (tmp_path / "credentials").write_text(f"[base]\naws_access_key_id = {assumer_key['AccessKeyId']}\n"
                                          f"aws_secret_access_key = {assumer_key['SecretAccessKey']}\n")
    (tmp_path / "config").write_text(f"[profile reader]\nrole_arn = {role_arn}\nsource_profile = base\n"
                                     f"[profile denied]\nrole_arn = {untrusting['Role']['Arn']}\n"
                                     "source_profile = base\n")
    files = {"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
             "AWS_CONFIG_FILE": str(tmp_path / "config")}
    r = logpipe(logpipe_bin, {**base, **files, "AWS_PROFILE": "reader"}, *args)
    assert r.returncode == 0, r.stderr
    r = logpipe(logpipe_bin, {**base, **files, "AWS_PROFILE": "denied"}, *args)
    assert r.returncode == 2, r.stderr
    assert f"AWS profile denied (role_arn): STS AssumeRole for {untrusting['Role']['Arn']}: AccessDenied" in r.stderr
    assert assumer_key["SecretAccessKey"] not in r.stderr

    token = tmp_path / "token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6bG9ncGlwZSJ9.c2ln\n")
    requests.post(f"{url}/moto-api/reset-auth", data=b"1", timeout=10).raise_for_status()
    r = logpipe(logpipe_bin, {**base, "AWS_WEB_IDENTITY_TOKEN_FILE": str(token), "AWS_ROLE_ARN": role_arn}, *args)
    assert r.returncode == 0, r.stderr
    # the allowance is spent: an unsigned GetSecretValue would now be refused,
    # so the one that succeeded was signed with the role's keys
    r = logpipe(logpipe_bin, {**base, "AWS_WEB_IDENTITY_TOKEN_FILE": str(token), "AWS_ROLE_ARN": role_arn}, *args)
    assert r.returncode == 2 and "AssumeRoleWithWebIdentity" in r.stderr, r.stderr
    assert sum(high_watermarks(kafka, topic).values()) == 20  # the two runs that had the role

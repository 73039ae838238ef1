"""consume's start-up check of what it needs (lib/consume/prerequisites.c),
against servers that enforce permissions: a Kafka broker with KRaft's
StandardAuthorizer (`stack.sh up kafka-acl`, user logpipe-acl over SASL PLAIN)
and the secured Elasticsearch, whose file realm gets a role and a user per
test (roles.yml, users and users_roles are reloaded by Elasticsearch within
seconds; this distribution cannot create the .security index, docs/stack.md).

First a run with exactly the grants docs/deploy.md lists: it indexes, dead-
letters the malformed lines into a dead-letter topic it creates, and commits
everything. Then the same with one grant removed: exit 2 before the first
message, a message naming the ACL or privilege, nothing committed, nothing
dead-lettered, nothing indexed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import requests
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)
from conftest import ROOT, create_topic

TLS = ROOT / ".stack" / "tls"
ACL_BROKER, ACL_ADMIN = "127.0.0.1:9110", "127.0.0.1:9112"
ES_SECURE = "https://127.0.0.1:9201"
PRINCIPAL = "User:logpipe-acl"
ES_CLUSTER: list[str] = []  # writing needs no cluster privilege: the template is `logpipe setup`'s
ES_INDICES = ["create_index", "index"]


@pytest.fixture(scope="module")
def acl_admin() -> AdminClient:
    subprocess.run(["bash", str(ROOT / "stack" / "stack.sh"), "up", "kafka-acl"], check=True)
    return AdminClient({"bootstrap.servers": ACL_ADMIN})


def kafka_grants(topic: str, group: str) -> dict[str, AclBinding]:
    """docs/deploy.md's consume ACLs, by a short name for the test ids."""
    def acl(rtype: ResourceType, name: str, op: AclOperation,
            pattern: ResourcePatternType = ResourcePatternType.LITERAL) -> AclBinding:
        return AclBinding(rtype, name, pattern, PRINCIPAL, "*", op, AclPermissionType.ALLOW)

    return {"topic READ": acl(ResourceType.TOPIC, topic, AclOperation.READ),
            "group READ": acl(ResourceType.GROUP, group, AclOperation.READ),
            "dead-letter WRITE": acl(ResourceType.TOPIC, f"{topic}.dlq", AclOperation.WRITE),
            "dead-letter CREATE": acl(ResourceType.TOPIC, f"{topic}.dlq", AclOperation.CREATE),
            "transactional-id WRITE": acl(ResourceType.TRANSACTIONAL_ID, f"logpipe-{group}-", AclOperation.WRITE,
                                          ResourcePatternType.PREFIXED)}


def grant(admin: AdminClient, acls: list[AclBinding]) -> None:
    for f in admin.create_acls(acls).values():
        f.result(timeout=30)


def revoke_all(admin: AdminClient) -> None:
    flt = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, PRINCIPAL, None, AclOperation.ANY,
                           AclPermissionType.ANY)
    for f in admin.delete_acls([flt]).values():
        f.result(timeout=30)


def pbkdf2(password: str) -> str:
    """Elasticsearch's {PBKDF2} hash (PBKDF2WithHmacSHA512, 32-byte salt and key)."""
    salt = os.urandom(32)
    key = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 10000, 32)
    return f"{{PBKDF2}}10000${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


class FileRealm:
    """Roles and users in the secured node's file realm, written atomically
    (Elasticsearch reloads the files while they are written) and removed after."""

    def __init__(self) -> None:
        home = Path((ROOT / ".stack" / "es-secure-home").read_text().strip()) \
            if (ROOT / ".stack" / "es-secure-home").exists() else ROOT / ".stack" / "es-secure"
        self.config = home / "config"
        self.added: list[tuple[str, str]] = []  # (role, user)

    def _rewrite(self, name: str, keep: callable, add: list[str]) -> None:  # type: ignore[valid-type]
        path = self.config / name
        st = path.stat()
        lines = [ln for ln in path.read_text().splitlines() if keep(ln)] + add
        tmp = path.with_name(f".{name}.{os.getpid()}")
        tmp.write_text("".join(f"{ln}\n" for ln in lines))
        os.chown(tmp, st.st_uid, st.st_gid)
        tmp.chmod(st.st_mode & 0o777)
        tmp.replace(path)

    def add(self, user: str, password: str, cluster: list[str], index: str, privileges: list[str]) -> None:
        role = f"role_{user}"
        self.added.append((role, user))
        self.set_role(user, cluster, index, privileges)
        self._rewrite("users", lambda _: True, [f"{user}:{pbkdf2(password)}"])
        self._rewrite("users_roles", lambda _: True, [f"{role}:{user}"])

    def set_role(self, user: str, cluster: list[str], index: str, privileges: list[str]) -> None:
        """Writes (or rewrites, for a user already added) the user's role."""
        role = f"role_{user}"
        self._rewrite("roles.yml", self._keep_all_but({role}),
                      [f"{role}:", f"  cluster: {json.dumps(cluster)}",
                       "  indices:", f"    - names: [{json.dumps(index)}]", f"      privileges: {json.dumps(privileges)}"])

    @staticmethod
    def _keep_all_but(roles: set[str]) -> callable:  # type: ignore[valid-type]
        """A line filter for roles.yml that drops these roles' headers and indented lines."""
        block: list[bool] = [False]

        def keep(line: str) -> bool:
            if line and not line.startswith(" "):
                block[0] = line.rstrip(":") in roles
            return not block[0]

        return keep

    def wait_ready(self, user: str, password: str) -> None:
        deadline = time.time() + 60
        while time.time() < deadline:
            r = requests.get(f"{ES_SECURE}/_security/_authenticate", auth=(user, password),
                             verify=str(TLS / "ca.pem"), timeout=10)
            if r.ok and r.json().get("roles") == [f"role_{user}"]:
                return
            time.sleep(1)
        raise AssertionError(f"Elasticsearch did not load file-realm user {user} in 60 s")

    def remove(self) -> None:
        roles = {r for r, _ in self.added}
        users = {u for _, u in self.added}
        self._rewrite("roles.yml", self._keep_all_but(roles), [])
        self._rewrite("users", lambda ln: ln.split(":", 1)[0] not in users, [])
        self._rewrite("users_roles", lambda ln: ln.split(":", 1)[0] not in roles, [])


def consume(logpipe: str, topic: str, group: str, index: str, es_user: str, es_password: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "LOGPIPE_KAFKA_PASSWORD": (TLS / "kafka-acl.pass").read_text().strip(),
           "LOGPIPE_ES_PASSWORD": es_password}
    return subprocess.run([logpipe, "consume", "-b", ACL_BROKER, "-X", "security.protocol=SASL_PLAINTEXT",
                           "-X", "sasl.mechanisms=PLAIN", "-X", "sasl.username=logpipe-acl", "-t", topic, "-g", group,
                           "--es", ES_SECURE, "--es-ca", str(TLS / "ca.pem"), "--es-user", es_user, "-i", index,
                           "--until-idle", "2", "--max-seconds", "60", "--verbose"],
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def kafka_state(topic: str, group: str) -> tuple[dict[int, int], int]:
    """The group's committed offsets on topic (admin view), and how many records
    a read_committed reader finds in the dead-letter topic (0 when it does not exist)."""
    c = Consumer({"bootstrap.servers": ACL_ADMIN, "group.id": group, "isolation.level": "read_committed",
                  "enable.auto.commit": False})
    try:
        done = {tp.partition: tp.offset for tp in c.committed([TopicPartition(topic, 0)], timeout=30)}
        dlq = f"{topic}.dlq"
        md = c.list_topics(dlq, timeout=30).topics.get(dlq)
        dead = 0
        if md is not None and md.error is None:
            c.assign([TopicPartition(dlq, p, 0) for p in md.partitions])
            end = time.time() + 10
            while time.time() < end:
                m = c.poll(1)
                if m is None:
                    break
                dead += not m.error()
        return done, dead
    finally:
        c.close()


def es_docs(index: str) -> int:
    auth = ("elastic", (TLS / "es-elastic.pass").read_text().strip())
    ca = str(TLS / "ca.pem")
    requests.post(f"{ES_SECURE}/{index}/_refresh", auth=auth, verify=ca, timeout=30,
                  params={"ignore_unavailable": "true", "allow_no_indices": "true"})
    r = requests.get(f"{ES_SECURE}/{index}/_count", auth=auth, verify=ca, timeout=30,
                     params={"ignore_unavailable": "true", "allow_no_indices": "true"})
    r.raise_for_status()
    return int(r.json()["count"])


def setup_run(logpipe: str, admin: AdminClient, realm: FileRealm, unique: str, drop: str | None):
    """A topic of 300 lines (2% malformed), the documented grants minus `drop`."""
    topic, group, index = f"acl-{unique}", f"g-{unique}", f"{unique}-logs"
    create_topic(admin, topic)
    subprocess.run([logpipe, "produce", "-b", ACL_ADMIN, "-t", topic, "--count", "300", "--malformed-ratio", "0.02",
                    "--seed", "7"], check=True, capture_output=True)
    revoke_all(admin)
    grant(admin, [b for name, b in kafka_grants(topic, group).items() if name != drop])
    user, password = f"u{unique}", f"p{unique}"
    realm.add(user, password, [p for p in ES_CLUSTER if p != drop], f"{unique}-*",
              [p for p in ES_INDICES if p != drop])
    realm.wait_ready(user, password)
    return topic, group, index, user, password


def test_consume_with_exactly_the_documented_grants(logpipe_bin, acl_admin, realm, unique):
    topic, group, index, user, password = setup_run(logpipe_bin, acl_admin, realm, unique, None)
    r = consume(logpipe_bin, topic, group, index, user, password)
    assert r.returncode == 0, r.stderr
    assert f"created the dead-letter topic {topic}.dlq" in r.stderr
    summary = json.loads(r.stdout.splitlines()[-1])
    done, dead = kafka_state(topic, group)
    assert summary["consumed"] == 300 and 0 < summary["dead_lettered"] < 30
    assert done == {0: 300}
    assert dead == summary["dead_lettered"]
    assert es_docs(index) == summary["indexed"] == 300 - dead


@pytest.mark.parametrize(("drop", "says"), [
    ("topic READ", "grant it READ on topic acl-{u}"),
    ("group READ", "grant it READ on group g-{u}"),
    ("dead-letter WRITE", "grant it WRITE on topic acl-{u}.dlq"),
    ("dead-letter CREATE", "may not create it: create the topic, or grant CREATE on topic acl-{u}.dlq"),
    ("transactional-id WRITE", "grant WRITE on transactional-id prefix logpipe-g-{u}-"),
    ("index", "lacks index privilege index on {u}-logs"),
])
def test_one_grant_missing_stops_at_start_up(logpipe_bin, acl_admin, realm, unique, drop, says):
    topic, group, index, user, password = setup_run(logpipe_bin, acl_admin, realm, unique, drop)
    r = consume(logpipe_bin, topic, group, index, user, password)
    assert r.returncode == 2, r.stderr
    assert says.format(u=unique) in r.stderr
    assert "docs/deploy.md" in r.stderr
    summary = json.loads(r.stdout.splitlines()[-1])
    assert summary["consumed"] == 0
    done, dead = kafka_state(topic, group)
    assert all(o < 0 for o in done.values()), done  # nothing committed
    assert dead == 0
    assert es_docs(index) == 0

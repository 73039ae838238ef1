"""The DAG params that say where a run reads and writes, fenced in.

Anyone who may trigger a DAG may pass `dag_run.conf`, and its values become
the tasks' connection ids, topics, consumer group and index. Unfenced, a
trigger could point a run at another team's connection (sending its
credentials to the host in it), consume another team's topic or join its
consumer group (taking its partitions, committing its offsets), or index
into any Elasticsearch index, overwriting documents by `_id`. Each such
param is therefore a pattern on a namespace of logpipe's own, which Airflow
checks when the run is created (a trigger with another value is refused
with 400, `airflow dags test` exits non-zero):

| param | pattern |
|---|---|
| `kafka_conn_id` | `kafka_...` (lower case, digits, `_`) |
| `es_conn_id` | `elasticsearch_...` |
| `topic` | `logs`, or `logs` + `.`/`-`/`_` + Kafka's topic characters |
| `dlq_topic` | empty (`<topic>.dlq`), or such a topic ending in `.dlq` |
| `group` | `logpipe-...` |
| `index` | `logs-...`, lower case, with logpipe's `%Y %m %d %H` |
| `secrets` | empty, or `aws-sm://SECRET_ID[?region=REGION]` (a reference only: logpipe resolves it) |

Name the connections logpipe may use with these prefixes; the patterns
are here once, for both DAGs.
"""

from __future__ import annotations

from logpipe_airflow.compat import Param

# Kafka's topic characters after a logpipe prefix; 249 is Kafka's limit.
TOPIC = r"^logs([._-][A-Za-z0-9._-]{1,200})?$"
DLQ_TOPIC = r"^$|^logs([._-][A-Za-z0-9._-]{1,200})?\.dlq$"
GROUP = r"^logpipe-[A-Za-z0-9._-]{1,200}$"
# Elasticsearch index names are lower case; % only before logpipe's conversions.
INDEX = r"^logs-[a-z0-9]([a-z0-9._+-]|%[YmdH]){0,200}$"
KAFKA_CONN_ID = r"^kafka_[a-z0-9_]{1,64}$"
ES_CONN_ID = r"^elasticsearch_[a-z0-9_]{1,64}$"
# A Secrets Manager name or ARN (its characters), never a value.
SECRETS = r"^$|^aws-sm://[A-Za-z0-9/_+=.@:-]{1,512}(\?region=[a-z0-9-]{1,32})?$"


def topic(default: str = "logs") -> Param:
    return Param(default, type="string", pattern=TOPIC, description="Kafka topic: logs, or logs.<name> / logs-<name>")


def dlq_topic() -> Param:
    return Param("", type="string", pattern=DLQ_TOPIC, description="empty: <topic>.dlq; else logs...<name>.dlq")


def group(default: str) -> Param:
    return Param(default, type="string", pattern=GROUP, description="Kafka consumer group: logpipe-<name>")


def index(default: str) -> Param:
    return Param(default, type="string", pattern=INDEX,
                 description="Elasticsearch index: logs-<name>, lower case, %Y %m %d %H from each document's time")


def kafka_conn_id(default: str = "kafka_default") -> Param:
    return Param(default, type="string", pattern=KAFKA_CONN_ID, description="Airflow connection: kafka_<name>")


def es_conn_id(default: str = "elasticsearch_default") -> Param:
    return Param(default, type="string", pattern=ES_CONN_ID,
                 description="Airflow connection: elasticsearch_<name>")


def secrets(replaces: str) -> Param:
    return Param("", type="string", pattern=SECRETS,
                 description=f"aws-sm://SECRET_ID: one JSON secret (docs/secrets.md's keys) replacing {replaces}")

"""`python -m worker.healthcheck`: exit 0 when this host's worker node is advertised in Redis.

The container healthcheck: the node advertises only while its consumer is connected and a pool
process has loaded the bundle (see `worker.heartbeat`), so healthy means able to serve.
"""

import socket

import redis

from shared import keys
from shared.liveness import live_nodes_sync
from shared.settings import get_settings


def node_is_advertised(hostname: str) -> bool:
    settings = get_settings()
    client = redis.Redis.from_url(
        settings.redis_url, socket_timeout=settings.redis_socket_timeout_s, decode_responses=True
    )
    return any(
        node.endswith(f"@{hostname}")
        for version in client.smembers(keys.MODELS)
        for node in live_nodes_sync(client, version, settings.heartbeat_ttl_s)
    )


if __name__ == "__main__":
    raise SystemExit(0 if node_is_advertised(socket.gethostname()) else 1)

"""`python -m worker.healthcheck`: exit 0 when this host's worker node is advertised in Redis.

The container healthcheck: the node advertises only while its consumer is connected and a pool
process has loaded the bundle (see `worker.heartbeat`), so healthy means able to serve.
"""

import socket

from shared.settings import get_settings
from shared.wire import names
from shared.wire.liveness import live_nodes_sync
from shared.wire.redis_client import sync_client


def node_is_advertised(hostname: str) -> bool:
    settings = get_settings()
    client = sync_client(settings)
    return any(
        node.endswith(f"@{hostname}")
        for version in client.smembers(names.MODELS)
        for node in live_nodes_sync(client, version, settings.heartbeat_ttl_s)
    )


if __name__ == "__main__":
    raise SystemExit(0 if node_is_advertised(socket.gethostname()) else 1)

"""A worker node is live when it beat within the TTL and after Redis last started."""

from shared.wire.liveness import live_nodes

NOW = (1_000_000, 0)


def test_recent_beat_is_live():
    assert live_nodes([("v1@a", 999_998.0)], NOW, {"uptime_in_seconds": 600}, ttl=10) == ["v1@a"]


def test_beat_older_than_ttl_is_not_live():
    assert live_nodes([("v1@a", 999_980.0)], NOW, {"uptime_in_seconds": 600}, ttl=10) == []


def test_beat_restored_from_before_a_redis_restart_is_not_live():
    """Redis restarted 3 s ago; the beat 5 s ago came back from the AOF, not from a consumer."""
    assert live_nodes([("v1@a", 999_995.0)], NOW, {"uptime_in_seconds": 3}, ttl=10) == []


def test_beat_after_a_redis_restart_is_live():
    assert live_nodes([("v1@a", 999_998.5)], NOW, {"uptime_in_seconds": 2}, ttl=10) == ["v1@a"]


def test_only_live_nodes_are_returned():
    scored = [("v1@a", 999_999.0), ("v1@b", 999_000.0), ("v1@c", 1_000_000.0)]
    assert live_nodes(scored, NOW, {"uptime_in_seconds": 600}, ttl=10) == ["v1@a", "v1@c"]

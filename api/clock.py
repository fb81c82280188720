"""Redis's clock, as seen from this API process.

Deadlines of single predictions are stamped on Redis's clock, the one the workers read with
every batch they take, so a host whose clock is off (by seconds, or stepped by NTP) neither
turns every request into a 504 nor computes answers nobody waits for any more. The offset is
measured on every routing call (its script returns Redis's TIME), so it costs no round trip.
"""

import time


class RedisClock:
    def __init__(self) -> None:
        self.offset_ms = 0.0  # Redis's time minus this host's; 0 until first measured

    def observe(self, seconds: int, micros: int, sent_s: float, received_s: float) -> None:
        """Take Redis's TIME, read between `sent_s` and `received_s` (this host's time.time()),
        as having been read half-way: off by at most half a round trip."""
        server_ms = seconds * 1000 + micros / 1000
        self.offset_ms = server_ms - (sent_s + received_s) * 500

    def now_ms(self) -> float:
        return time.time() * 1000 + self.offset_ms

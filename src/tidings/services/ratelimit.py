"""The publish rate per API key (DESIGN §7): one token bucket per key.

A key may publish ``rate`` events per second with a burst of ``rate``
events: its key's own ``publishRate``, else ``TIDINGS_PUBLISH_RATE``; 0 (or
unset) means not limited. A batch takes one token per event. When the
tokens do not suffice nothing is taken and the publish is refused with 429
and ``Retry-After``: the whole seconds until they will. A batch larger than
the burst is admitted when the bucket is full and leaves it in debt, so a
big batch is slowed, never refused forever, and the average stays at
``rate``.

Guarantees: :meth:`PublishLimiter.take` is O(1) (a dict lookup and a few
float operations, no I/O, no lock: it runs on the event loop); a key
without a limit costs one comparison. Buckets live in the process, so N
processes behind a load balancer admit up to N x ``rate`` per key.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from tidings.errors import RateLimited
from tidings.services.auth import Principal

MAX_BUCKETS = 100_000  # then start over (full buckets): bounded memory


class PublishLimiter:
    def __init__(self, default_rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.default_rate = default_rate if default_rate > 0 else 0.0
        self.clock = clock
        self._buckets: dict[str, list[float]] = {}  # key id -> [tokens, monotonic time]

    def take(self, principal: Principal, count: int) -> None:
        """Admit ``count`` events of ``principal`` or raise :class:`RateLimited`."""
        rate, key_id = principal.publish_rate, principal.key_id
        if rate is None:
            rate = self.default_rate
        if rate <= 0 or key_id is None:
            return  # not limited; the bootstrap admin key and in-process publishes never are
        now = self.clock()
        bucket = self._buckets.get(key_id)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._buckets.clear()
            bucket = self._buckets[key_id] = [rate, now]
        tokens = min(rate, bucket[0] + (now - bucket[1]) * rate)
        bucket[1] = now
        need = min(float(count), rate)
        if tokens < need:
            bucket[0] = tokens
            wait = max(1, math.ceil((need - tokens) / rate))
            raise RateLimited(
                f"this key may publish {rate:g} events per second (burst {rate:g}); "
                f"retry in {wait} s",
                retry_after=wait,
            )
        bucket[0] = tokens - count

"""``RedisStore``: share a waiter's state between processes through Redis (extra ``redis``).

``pip install 'mediax-async[redis]'``; needs Redis 7 or later (or Valkey)::

    from mediax_async.redis import RedisStore

    async with RedisStore.from_url("redis://localhost:6379/0", namespace="batch-1") as store:
        async with client.waiter(store=store) as waiter:
            ...
"""

from ._redis import RedisStore

__all__ = ["RedisStore"]

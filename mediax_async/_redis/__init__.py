"""The Redis store (extra ``redis``): one waiter state shared by many processes."""

from ._store import RedisStore

__all__ = ["RedisStore"]

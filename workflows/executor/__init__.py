"""Isolated step executors: the only place a case's designer code runs.

`StepExecutor` (client.py) offers the engine adapter's operations to the service; each runs in a
worker process (worker.py) confined by the kernel (isolation.py), reached over framed JSON pipes
(protocol.py), taken from a per-process pool that kills and replaces overrunning workers (pool.py).
"""

from .client import StepExecutor
from .isolation import Limits
from .pool import ExecutorPool, PoolSettings, shared_pool

__all__ = ["ExecutorPool", "Limits", "PoolSettings", "StepExecutor", "shared_pool"]

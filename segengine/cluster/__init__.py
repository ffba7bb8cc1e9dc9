"""Scale-out: N engines as Ray actors behind the Engine's API (optional extra ``segengine[ray]``).

``from segengine.cluster import ShardedEngine``; Ray is imported only when a ShardedEngine is built.
See docs/scaling.md.
"""

from .route import shard_of
from .sharded import ShardedEngine

__all__ = ["ShardedEngine", "shard_of"]

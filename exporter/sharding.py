"""Which replica polls which tenant: `stable_hash(tenant_id) mod count`, the same answer in every process.

Python's hash() of a str is salted per process, so two replicas would disagree; the first 8 bytes of the
SHA-256 of the lower-cased tenant ID are not, and they spread tenant IDs (GUIDs or domains) evenly.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_POD_ORDINAL_RE = re.compile(r"-(\d+)$")


def stable_hash(tenant_id: str) -> int:
    """A 64-bit hash of the tenant ID that is the same in every process, on every machine, in every version."""
    return int.from_bytes(hashlib.sha256(tenant_id.strip().lower().encode("utf-8")).digest()[:8], "big")


def shard_of(tenant_id: str, count: int) -> int:
    return stable_hash(tenant_id) % count


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1

    def owns(self, tenant_id: str) -> bool:
        return self.count == 1 or shard_of(tenant_id, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def index_from_hostname(hostname: str) -> int:
    """The ordinal of a StatefulSet pod name (`exporter-2` -> 2); ValueError for any other name."""
    match = _POD_ORDINAL_RE.search(hostname.strip().split(".")[0])
    if match is None:
        raise ValueError(f"{hostname!r} does not end in -<number> like a StatefulSet pod name")
    return int(match.group(1))


def build_shard(count: int, index: int | None, from_hostname: str | None, problems: list[str]) -> Shard:
    """Validate the --shard.* flags; `from_hostname` is the host name when --shard.index-from-hostname is set."""
    if count < 1:
        problems.append(f"--shard.count: must be at least 1, not {count}")
        return Shard()
    if index is not None and from_hostname is not None:
        problems.append("--shard.index: give either --shard.index or --shard.index-from-hostname, not both")
        return Shard()
    if from_hostname is not None:
        try:
            index = index_from_hostname(from_hostname)
        except ValueError as exc:
            problems.append(f"--shard.index-from-hostname: {exc}")
            return Shard()
        what = f"--shard.index-from-hostname: the host name {from_hostname!r} gives index {index}, which"
    else:
        what = "--shard.index:"
    if index is None:
        if count > 1:
            problems.append("--shard.index: required with --shard.count above 1 (or use --shard.index-from-hostname)")
        return Shard()
    if not 0 <= index < count:
        problems.append(f"{what} must be from 0 to {count - 1} (--shard.count is {count})")
        return Shard()
    return Shard(index, count)

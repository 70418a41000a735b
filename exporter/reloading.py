"""SIGHUP: which tenants' jobs go on, which are new, which end, and what only a restart can change."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace

from exporter.config import Config, Tenant
from exporter.poller import TenantJob

# What a reload changes in a running process: the tenants (and the secrets that come with them).
_RELOADED_FIELDS = frozenset({"tenants", "secrets"})


@dataclass(frozen=True)
class Reloaded:
    jobs: dict[Tenant, TenantJob]
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    restart_needed: tuple[str, ...]  # Config fields that differ but only take effect at a restart


def adopt(
    running: Mapping[Tenant, TenantJob],
    tenants: Sequence[Tenant],
    build: Callable[[Tenant], TenantJob],
) -> Reloaded:
    """The jobs for `tenants`, reusing the running ones.

    An unchanged tenant keeps its job: status, counters, pacing and MSAL token cache. A tenant whose
    settings changed (same name and tenant ID) gets a new job that keeps its last status and counters, so
    its series go on. Any other tenant is new; running tenants not kept are removed.
    """
    by_name = {tenant.name: (tenant, job) for tenant, job in running.items()}
    jobs: dict[Tenant, TenantJob] = {}
    added, changed = [], []
    for tenant in tenants:
        if tenant in running:
            jobs[tenant] = running[tenant]
            continue
        jobs[tenant] = job = build(tenant)
        previous = by_name.get(tenant.name)
        if previous is not None and previous[0].tenant_id.lower() == tenant.tenant_id.lower():
            job.counters, job.status = previous[1].counters, previous[1].status
            changed.append(tenant.name)
        else:
            added.append(tenant.name)
    removed = [tenant.name for tenant in running if tenant not in jobs and tenant.name not in changed]
    return Reloaded(jobs, tuple(added), tuple(removed), tuple(changed), ())


def restart_needed(running: Config, new: Config) -> tuple[str, ...]:
    """The settings that differ between the two configurations but that a reload does not apply."""
    return tuple(
        f.name
        for f in fields(new)
        if f.name not in _RELOADED_FIELDS and getattr(new, f.name) != getattr(running, f.name)
    )


def with_tenants_of(running: Config, new: Config) -> Config:
    """The running configuration with the new one's tenants; secrets of both, for scrubbing logs."""
    return replace(running, tenants=new.tenants, secrets=tuple(dict.fromkeys(running.secrets + new.secrets)))

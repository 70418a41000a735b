"""SIGHUP: which tenants' jobs go on, which are new, which end, and what only a restart can change."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from exporter.config import Config, Tenant, changed_options
from exporter.poller import TenantJob


@dataclass(frozen=True)
class Reloaded:
    jobs: dict[Tenant, TenantJob]
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    restart_needed: tuple[str, ...]  # options that differ but only take effect at a restart


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
    """The options that differ between the two configurations: a reload adopts only the tenants.

    Options, not the values derived from them: a new interval is one setting, not also the timeout
    computed from it.
    """
    return changed_options(running.options, new.options)


def with_tenants_of(running: Config, new: Config) -> Config:
    """The running configuration with the new one's tenants; secrets of both, for scrubbing logs."""
    return replace(running, tenants=new.tenants, secrets=tuple(dict.fromkeys(running.secrets + new.secrets)))

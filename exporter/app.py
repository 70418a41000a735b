"""Wiring: from a validated Config to the tenant jobs, poller and registry. No logic of its own."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

import requests
from prometheus_client import CollectorRegistry

from exporter.collector import Part, RegistrationCollector
from exporter.config import Config, Demo, Tenant
from exporter.forecast import PagingForecast, warn_if_the_interval_is_short
from exporter.graph.client import GraphClient
from exporter.graph.credentials import token_provider
from exporter.graph.pacing import Gate, Window, steady_pace
from exporter.graph.sessions import Sessions, settled
from exporter.poller import Poller, TenantJob
from exporter.reloading import Reloaded, adopt, restart_needed, with_tenants_of
from exporter.sources import Source
from exporter.sources.auto import AutoSource
from exporter.sources.demo import DemoSource
from exporter.sources.details import DetailsSource
from exporter.sources.legacy import LegacySource
from exporter.telemetry import TenantCounters, runtime_collectors

# Told of each page of the details report: tenant, pages, users so far, seconds since the poll began.
ProgressReporter = Callable[[str, int, int, float], None]


@dataclass(frozen=True)
class Shared:
    """What every tenant's job shares: Graph's pace across tenants, and the connection pools."""

    window: Window | None
    sessions: Sessions


def build_job(
    tenant: Tenant,
    config: Config,
    stop: threading.Event,
    progress: ProgressReporter | None = None,
    shared: Shared | None = None,
) -> TenantJob:
    """One tenant's job; without `shared`, it has connections of its own and only its own pace."""
    counters = TenantCounters()
    if isinstance(tenant.credential, Demo):
        return TenantJob(tenant.name, DemoSource(), counters)
    graph = GraphClient(
        root=config.graph_root,
        tokens=token_provider(tenant, config, shared.sessions.identity if shared else None),
        gate=Gate(config.rate_limit, sleep=stop.wait, shared=shared.window if shared else None),
        counters=counters,
        read_timeout=config.http_timeout,
        # Retry-After honoured up to the longer of the interval and a minute (see GraphClient._bounded).
        max_hold=max(config.poll_interval, 60.0),
        sleep=stop.wait,
        session=shared.sessions.graph if shared else settled(requests.Session(), config.graph_root),
    )
    legacy = LegacySource(graph)
    forecast = PagingForecast(
        tenant.name,
        interval=config.poll_interval,
        pace=max(steady_pace(config.rate_limit), steady_pace(config.global_rate_limit)),
        page_size=config.page_size,
        known_users=lambda: job.status.report.total_users if job.status.report else None,
    )

    def on_page(pages: int, users: int, elapsed: float) -> None:
        forecast(pages, users, elapsed)
        counters.paging = (pages, users)  # for the status page
        if progress is not None:
            progress(tenant.name, pages, users, elapsed)

    details = DetailsSource(graph, page_size=config.page_size, max_pages=config.max_pages, progress=on_page)
    source: Source = AutoSource(legacy, details, tenant.name)
    if tenant.source == "legacy":
        source = legacy
    elif tenant.source == "details":
        source = details
    job = TenantJob(tenant.name, source, counters)
    return job


def owned(config: Config) -> tuple[Tenant, ...]:
    """The tenants this replica polls and serves: its shard of the configured ones."""
    return tuple(t for t in config.tenants if config.shard.owns(t.tenant_id))


class Exporter:
    def __init__(self, config: Config, progress: ProgressReporter | None = None) -> None:
        self.config = config
        self.stop = threading.Event()
        self.shared = Shared(
            # One window for every tenant's requests: Graph also limits an app across all its tenants.
            Window(config.global_rate_limit) if config.global_rate_limit else None,
            Sessions.for_pool(config.http_timeout, config.poll_concurrency, config.graph_root),
        )
        self._progress = progress
        self._jobs = {tenant: self._build(tenant) for tenant in owned(config)}
        warn_if_the_interval_is_short(config, list(self._jobs))
        self.poller = Poller(
            list(self._jobs.values()),
            interval=config.poll_interval,
            timeout=config.poll_timeout,
            concurrency=config.poll_concurrency,
            stop=self.stop,
        )
        origin = "a simulated tenant (--demo), not Microsoft Graph" if config.demo else "Microsoft Graph"
        registration = RegistrationCollector(
            lambda: self.poller.jobs, config.poll_interval_text, config.poll_interval, origin
        )
        runtime = runtime_collectors()
        self.registry = CollectorRegistry(auto_describe=False)
        for collector in (registration, *runtime):
            self.registry.register(collector)
        # The same series in parts, for the cache of /metrics; the process metrics change at every scrape.
        self.parts = (*registration.parts(), Part(lambda: [m for c in runtime for m in c.collect()], None))

    def _build(self, tenant: Tenant) -> TenantJob:
        return build_job(tenant, self.config, self.stop, self._progress, self.shared)

    def reload(self, new: Config) -> Reloaded:
        """Adopt `new`'s tenants without a restart (see exporter.reloading)."""
        done = adopt(self._jobs, owned(new), self._build)
        done = replace(done, restart_needed=restart_needed(self.config, new))
        self._jobs = done.jobs
        self.config = with_tenants_of(self.config, new)
        self.poller.replace_jobs(list(done.jobs.values()))
        return done

"""Wiring: from a validated Config to the tenant jobs, poller and registry. No logic of its own."""

from __future__ import annotations

import threading
from collections.abc import Callable

import requests
from prometheus_client import CollectorRegistry

from exporter.collector import RegistrationCollector
from exporter.config import Config, Demo, Tenant
from exporter.credentials import token_provider
from exporter.graph import GraphClient
from exporter.pacing import Gate
from exporter.poller import Poller, TenantJob
from exporter.sources import Source
from exporter.sources.auto import AutoSource
from exporter.sources.demo import DemoSource
from exporter.sources.details import DetailsSource, Progress
from exporter.sources.legacy import LegacySource
from exporter.telemetry import TenantCounters

# Told of each page of the details report: tenant, pages, users so far, seconds since the poll began.
ProgressReporter = Callable[[str, int, int, float], None]


def build_job(
    tenant: Tenant, config: Config, stop: threading.Event, progress: ProgressReporter | None = None
) -> TenantJob:
    counters = TenantCounters()
    if isinstance(tenant.credential, Demo):
        return TenantJob(tenant.name, DemoSource(), counters)
    graph = GraphClient(
        root=config.graph_root,
        tokens=token_provider(tenant, config),
        gate=Gate(config.rate_limit, sleep=stop.wait),
        counters=counters,
        read_timeout=config.http_timeout,
        sleep=stop.wait,
        session=requests.Session(),
    )
    legacy = LegacySource(graph)
    on_page: Progress | None = None
    if progress is not None:
        report_progress = progress

        def on_page(pages: int, users: int, elapsed: float) -> None:
            report_progress(tenant.name, pages, users, elapsed)

    details = DetailsSource(graph, page_size=config.page_size, max_pages=config.max_pages, progress=on_page)
    source: Source = AutoSource(legacy, details, tenant.name)
    if tenant.source == "legacy":
        source = legacy
    elif tenant.source == "details":
        source = details
    return TenantJob(tenant.name, source, counters)


class Exporter:
    def __init__(self, config: Config, progress: ProgressReporter | None = None) -> None:
        self.config = config
        self.stop = threading.Event()
        self.poller = Poller(
            [build_job(tenant, config, self.stop, progress) for tenant in config.tenants],
            interval=config.poll_interval,
            timeout=config.poll_timeout,
            concurrency=config.poll_concurrency,
            stop=self.stop,
        )
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(RegistrationCollector(lambda: self.poller.jobs, config.poll_interval_text))

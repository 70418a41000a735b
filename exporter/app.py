"""Wiring: from a validated Config to the tenant jobs, poller and registry. No logic of its own."""

from __future__ import annotations

import threading

import requests
from prometheus_client import CollectorRegistry

from exporter.collector import RegistrationCollector
from exporter.config import Config, Demo, Tenant
from exporter.credentials import token_provider
from exporter.graph import GraphClient
from exporter.pacing import Gate
from exporter.poller import Poller, TenantJob
from exporter.sources import Source
from exporter.sources.demo import DemoSource
from exporter.sources.legacy import LegacySource
from exporter.telemetry import TenantCounters


def build_job(tenant: Tenant, config: Config, stop: threading.Event) -> TenantJob:
    counters = TenantCounters()
    source: Source
    if isinstance(tenant.credential, Demo):
        source = DemoSource()
    else:
        graph = GraphClient(
            root=config.graph_root,
            tokens=token_provider(tenant, config),
            gate=Gate(None, sleep=stop.wait),
            counters=counters,
            read_timeout=config.http_timeout,
            sleep=stop.wait,
            session=requests.Session(),
        )
        source = LegacySource(graph)
    return TenantJob(tenant.name, source, counters)


class Exporter:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.stop = threading.Event()
        self.poller = Poller(
            [build_job(tenant, config, self.stop) for tenant in config.tenants],
            interval=config.poll_interval,
            timeout=config.poll_timeout,
            concurrency=config.poll_concurrency,
            stop=self.stop,
        )
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(RegistrationCollector(lambda: self.poller.jobs, config.poll_interval_text))

"""The Prometheus collector: on every scrape, fresh metric families from the current statuses.

It never calls Graph and never waits on a poll: it reads the references the poller swaps in.

Sample output (one tenant, legacy report):

    tenant_total_users{tenant="contoso"} 23123.0
    credential_registered_users{status="mfaRegistered",tenant="contoso"} 33.0
    credential_exporter_up{tenant="contoso"} 1.0
    credential_exporter_source_info{source="legacy",tenant="contoso"} 1.0
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter import __version__
from exporter.errors import REASONS
from exporter.poller import TenantJob
from exporter.telemetry import STATUS_CHANGES, TRAFFIC_CHANGES, Changes

# The git commit the image was built from: the Dockerfile bakes its REVISION build argument into the
# environment. A checkout installed with pip has none.
REVISION = os.environ.get("ENTRA_CREDENTIAL_EXPORTER_REVISION") or "unknown"


class RegistrationCollector(Collector):
    def __init__(
        self,
        jobs: Callable[[], Sequence[TenantJob]],
        interval_text: str,
        interval: float,
        origin: str = "Microsoft Graph",  # where the numbers come from: a simulation in --demo
    ) -> None:
        self._jobs = jobs
        self._interval = interval
        self._polled = f"Polled from {origin} every {interval_text}; the value of the last successful poll."

    def describe(self) -> Iterator[Metric]:
        return iter(())  # the series depend on the tenants: let the registry call collect() instead

    def collect(self) -> Iterator[Metric]:
        for part in self.parts():
            yield from part.collect()

    def parts(self) -> tuple[Part, ...]:
        """The exposition in order, cut where what changes when differs: the statuses change when a poll ends,
        the Graph traffic with every request, so a cache can render each part only when it has changed."""
        return (
            Part(self._statuses, STATUS_CHANGES),
            Part(self._traffic, TRAFFIC_CHANGES),
            Part(self._sources, STATUS_CHANGES),
        )

    def _statuses(self) -> Iterator[Metric]:
        polled = self._polled
        total = GaugeMetricFamily(
            "tenant_total_users", f"Users with an enabled account in the tenant. {polled}", labels=["tenant"]
        )
        registered = GaugeMetricFamily(
            "credential_registered_users",
            f"Users by credential registration status (registered, enabled and capable are SSPR; "
            f"mfaRegistered is MFA). {polled}",
            labels=["tenant", "status"],
        )
        segment_users = GaugeMetricFamily(
            "tenant_users",
            f"Users by user type and admin role (modern report only). {polled}",
            labels=["tenant", "user_type", "admin"],
        )
        segment_registered = GaugeMetricFamily(
            "credential_registered_segment_users",
            f"Users by user type, admin role and registration status (modern report only). {polled}",
            labels=["tenant", "user_type", "admin", "status"],
        )
        methods = GaugeMetricFamily(
            "credential_method_registered_users",
            f"Users who registered each authentication method (modern report only). {polled}",
            labels=["tenant", "method"],
        )
        strength = GaugeMetricFamily(
            "credential_mfa_strength_users",
            f"Users by the strongest class of MFA method they registered: phishing_resistant, passwordless, app, "
            f"phone or none; each user counted once (modern report only). {polled}",
            labels=["tenant", "user_type", "admin", "strength"],
        )
        up = GaugeMetricFamily(
            "credential_exporter_up", "1 if the tenant's last poll of Graph succeeded, else 0.", labels=["tenant"]
        )
        last_success = GaugeMetricFamily(
            "credential_exporter_last_success_timestamp_seconds",
            "Unix time of the tenant's last successful poll (0 if none yet).",
            labels=["tenant"],
        )
        duration = GaugeMetricFamily(
            "credential_exporter_poll_duration_seconds",
            "How long the tenant's last poll took, successful or not.",
            labels=["tenant"],
        )
        # One interval for every tenant (--poll.interval): unlabelled, for rules to compare with per tenant.
        interval = GaugeMetricFamily(
            "credential_exporter_poll_interval_seconds",
            "The configured interval between two polls of each tenant (--poll.interval).",
            value=self._interval,
        )
        errors = CounterMetricFamily(
            "credential_exporter_poll_errors", "Failed polls, by reason.", labels=["tenant", "reason"]
        )
        for job in self._jobs():
            status, name = job.status, job.name
            up.add_metric([name], 1.0 if status.up else 0.0)
            last_success.add_metric([name], status.last_success or 0.0)
            if status.last_duration is not None:
                duration.add_metric([name], status.last_duration)
            failed = job.counters.view().errors
            for reason in sorted(set(REASONS) | set(failed)):
                errors.add_metric([name, reason], failed.get(reason, 0))
            report = status.report
            if report is None:
                continue
            total.add_metric([name], report.total_users)
            for state, value in report.registered:
                registered.add_metric([name, state], value)
            for segment in report.segments:
                segment_users.add_metric([name, segment.user_type, segment.admin], segment.users)
                for state, value in segment.registered:
                    segment_registered.add_metric([name, segment.user_type, segment.admin, state], value)
            for method, value in report.methods:
                methods.add_metric([name, method], value)
            for user_type, admin, grade, value in report.strengths:
                strength.add_metric([name, user_type, admin, grade], value)
        yield from (
            total,
            registered,
            segment_users,
            segment_registered,
            methods,
            strength,
            up,
            last_success,
            duration,
            interval,
            errors,
        )

    def _traffic(self) -> Iterator[Metric]:
        requests_ = CounterMetricFamily(
            "credential_exporter_graph_requests",
            "HTTP requests sent to Microsoft Graph, by the status code of the answer.",
            labels=["tenant", "code"],
        )
        retries = CounterMetricFamily(
            "credential_exporter_graph_retries",
            "Requests to Graph or the identity platform that were retried, by the reason of the failure.",
            labels=["tenant", "reason"],
        )
        throttled = CounterMetricFamily(
            "credential_exporter_throttled_seconds",
            "Time spent waiting before requests to Graph, for its Retry-After and for our own pacing.",
            labels=["tenant"],
        )
        for job in self._jobs():
            counters, name = job.counters.view(), job.name
            for code, value in sorted(counters.requests.items()):
                requests_.add_metric([name, code], value)
            for reason, value in sorted(counters.retries.items()):
                retries.add_metric([name, reason], value)
            throttled.add_metric([name], counters.throttled_seconds)
        yield from (requests_, retries, throttled)

    def _sources(self) -> Iterator[Metric]:
        source = GaugeMetricFamily(
            "credential_exporter_source_info",
            "Which Graph report produced the tenant's data (legacy, details or demo).",
            labels=["tenant", "source"],
        )
        for job in self._jobs():
            if job.status.report is not None:
                source.add_metric([job.name, job.status.report.source], 1.0)
        build = GaugeMetricFamily(
            "credential_exporter_build_info",
            "The exporter's version, git revision and Python version; always 1.",
            labels=["version", "revision", "python_version"],
        )
        build.add_metric([__version__, REVISION, platform.python_version()], 1.0)
        yield from (source, build)


class Part(Collector):
    """Some of the exposition's families, and what moves when they change (None: they may change at any time)."""

    def __init__(self, families: Callable[[], Iterable[Metric]], changes: Changes | None) -> None:
        self._families = families
        self.changes = changes

    def collect(self) -> Iterable[Metric]:
        return self._families()

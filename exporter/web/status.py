"""The status page at `/`: is it working, and if not, why — per tenant, at a glance, on a desk or a phone.

Plain HTML and one inline style sheet: no JavaScript, no external asset. The page sends its own strict
Content-Security-Policy that allows exactly that style sheet (by its hash) and nothing else, so an injected
tag could neither run nor load anything. It refreshes itself with a meta refresh. Every value that comes
from the configuration or from Graph is escaped, and a failed poll's detail is scrubbed of every secret
the exporter holds before it is shown, as in the logs.
"""

from __future__ import annotations

import base64
import hashlib
import html
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from exporter import __version__
from exporter.poller import TenantJob
from exporter.snapshot import Report
from exporter.values import Scrubber, Secret, first_line

REFRESH_SECONDS = 30
DETAIL_CHARACTERS = 300  # one line of the failed poll's detail, enough for Graph's code and message

# Below 760 px wide (a phone) each tenant becomes a card of label: value lines instead of a wide table row.
STYLE = """
body{font-family:system-ui,sans-serif;margin:1em;color:#1b1b1b;background:#fff}
h1{font-size:1.4em;margin:.2em 0}
p{margin:.4em 0}
.banner{background:#fff3cd;border:2px solid #b38600;padding:.6em;font-weight:bold}
table{border-collapse:collapse;margin-top:1em;width:100%}
th,td{padding:.35em .6em;text-align:left;border-bottom:1px solid #ddd;vertical-align:top}
th{background:#f3f3f3}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#11722b;font-weight:bold}
.failed{color:#b00020;font-weight:bold}
.waiting{color:#6b5900;font-weight:bold}
.small{color:#555;font-size:.9em}
@media (max-width:760px){
table,thead,tbody,tr,th,td{display:block}
thead{display:none}
tr{border:1px solid #ccc;border-radius:6px;margin-bottom:.8em;padding:.3em}
td{border:none;padding:.15em .3em}
td.n{text-align:left}
td::before{content:attr(data-label) ": ";font-weight:bold;color:#333}
}
""".strip()
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
COLUMNS = (
    "Tenant",
    "Source",
    "State",
    "Last success",
    "Last attempt",
    "Next poll",
    "Users",
    "MFA",
    "SSPR",
    "Admins' MFA",
    "Phishing-resistant",
    "Problem",
)

NUMERIC = frozenset({"Users", "MFA", "SSPR", "Admins' MFA", "Phishing-resistant"})  # right-aligned on a desk


@dataclass(frozen=True)
class StatusPage:
    """What the page reads; it never calls Graph and never waits on a poll."""

    jobs: Callable[[], Sequence[TenantJob]]
    next_due: Callable[[str], float | None]  # monotonic clock
    secrets: Callable[[], Iterable[Secret]]
    demo: bool
    interval_text: str
    telemetry_path: str = "/metrics"

    def render(self) -> str:
        now, mono = time.time(), time.monotonic()
        scrub = Scrubber(self.secrets())
        rows = "\n".join(self._row(job, now, mono, scrub) for job in self.jobs())
        if self.demo:
            intro = (
                '<p class="banner">Demo mode: one simulated tenant with made-up numbers. '
                "Nothing here comes from Microsoft Graph.</p>"
            )
        else:
            intro = (
                "<p>MFA and SSPR registration of Microsoft Entra ID tenants, polled from Microsoft Graph every "
                f"{html.escape(self.interval_text)}.</p>"
            )
        head = "".join(f"<th>{c}</th>" for c in COLUMNS)
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<title>Entra credential exporter</title>
<style>{STYLE}</style></head>
<body><h1>Entra credential exporter</h1>
{intro}
<p class="small">Version {html.escape(__version__)} · page of {_clock(now)}, refreshed every {REFRESH_SECONDS} s ·
<a href="{html.escape(self.telemetry_path)}">Metrics</a> · <a href="/healthz">Health</a> ·
<a href="/readyz">Readiness</a></p>
<table><thead><tr>{head}</tr></thead>
<tbody>
{rows}
</tbody></table></body></html>
"""

    def _row(self, job: TenantJob, now: float, mono: float, scrub: Scrubber) -> str:
        status, report = job.status, job.status.report
        paging = job.counters.paging
        if not status.polled:
            state, css = "waiting for its first poll", "waiting"
        elif status.up:
            state, css = "ok", "ok"
        else:
            state, css = "failed", "failed"
        state_html = f'<span class="{css}">{state}</span>'
        if paging is not None:
            pages, users = paging
            state_html += f'<br><span class="small">polling now · pages read: {pages:,} · users: {users:,}</span>'
        due = self.next_due(job.name)
        if due is None:
            next_poll = "—"
        elif due <= mono:
            next_poll = "due now"
        else:
            next_poll = f"in {_span(due - mono)}"
        problem = "—"
        if status.polled and not status.up:
            line = first_line(scrub(status.last_detail or ""), DETAIL_CHARACTERS + 1)
            if len(line) > DETAIL_CHARACTERS:
                line = line[:DETAIL_CHARACTERS] + "…"
            problem = f"<b>{html.escape(status.last_reason or '')}</b>: {html.escape(line)}"
        cells = (
            html.escape(job.name),
            html.escape(report.source if report else job.source.name),
            state_html,
            _when(status.last_success, now),
            _when(status.last_attempt, now),
            next_poll,
            f"{report.total_users:,}" if report else "—",
            _percent(_share(report, "mfaRegistered")),
            _percent(_share(report, "registered")),
            _percent(_admins_mfa(report)),
            _percent(_phishing_resistant(report)),
            problem,
        )
        return (
            "<tr>"
            + "".join(
                f'<td data-label="{label}"{" class=n" if label in NUMERIC else ""}>{cell}</td>'
                for label, cell in zip(COLUMNS, cells, strict=True)
            )
            + "</tr>"
        )


def _share(report: Report | None, status: str) -> float | None:
    count = report.registered_count(status) if report else None
    return count / report.total_users if report and count is not None and report.total_users else None


def _admins_mfa(report: Report | None) -> float | None:
    """Only the details report knows who is an admin; the legacy report gives no segments."""
    admins = [s for s in report.segments if s.admin == "true"] if report else []
    users = sum(s.users for s in admins)
    if not users:
        return None
    return sum(dict(s.registered).get("mfaRegistered", 0) for s in admins) / users


def _phishing_resistant(report: Report | None) -> float | None:
    # Reports that know the MFA strength classes answer this; until then (and for the legacy report) none does.
    share = getattr(report, "phishing_resistant_share", None)
    return share() if callable(share) else None


def _percent(share: float | None) -> str:
    return "—" if share is None else f"{100.0 * share:.1f}%"


def _clock(unix: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(unix))


def _when(unix: float | None, now: float) -> str:
    if unix is None:
        return "never"
    return f'{_clock(unix)}<br><span class="small">{_span(now - unix)} ago</span>'


def _span(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"

"""Prometheus metrics for the primary, served at ``GET /metrics`` by an ASGI wrapper around the whole app.

Each app gets its own ``CollectorRegistry`` (never the process-global one), so several apps can run in one process
(tests). Under ``server.workers`` > 1 (registry/workers.py) the supervisor sets ``PROMETHEUS_MULTIPROC_DIR``:
every worker's values live in files there and ``/metrics`` answers the sum over all workers (prometheus_client's
multiprocess mode; in-flight requests summed over live workers, the last GC success as the maximum).

Route labels are the route *templates* (``/v2/{name}/blobs/{digest}``), never raw paths, so the label set
stays bounded; unknown paths count as ``other``.

``/metrics`` needs no authentication: it carries counts, never names, digests or credentials. Expose the port
only inside the cluster (see docs/deploy.md).
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from registry.api.http import Message, Receive, Scope, Send
from registry.api.routes import ROUTES, TOKEN_ROUTES, ASGIApp
from registry.gc.collector import GcRun
from registry.logs import request_id
from registry.workers import MULTIPROC_ENV

REQUEST_ID_HEADER = b"x-request-id"
_FIXED = {"/healthz", "/readyz", "/metrics", *TOKEN_ROUTES}
_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


def template(pattern: re.Pattern[str]) -> str:
    """``^/v2/(?P<name>...)/tags/list$`` -> ``/v2/{name}/tags/list``."""
    text = _GROUP.sub(lambda m: "{" + m.group(1) + "}", pattern.pattern)
    return text.removeprefix("^").removesuffix("$").replace("/?", "")


_TEMPLATES = [(pattern, template(pattern)) for pattern, _ in ROUTES]


def route_of(path: str) -> str:
    """The bounded route label of ``path``."""
    if path in _FIXED:
        return path
    for pattern, name in _TEMPLATES:
        if pattern.fullmatch(path):
            return name
    if path.startswith("/api/"):
        return "/api/*"
    return "other"


def auth_outcome(route: str, status: int) -> str | None:
    """What an answer says about authentication, or None when it says nothing."""
    if route == "/token":
        return "token_issued" if status == 200 else "token_denied"
    if status == 401:
        return "challenged"
    if status == 403:
        return "denied"
    return None


class HttpMetrics:
    """Request counters and histograms of one app, in the app's own registry."""

    def __init__(self, prefix: str) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.requests = Counter(
            f"{prefix}_http_requests_total",
            "HTTP requests by route template and status",
            ["method", "route", "status"],
            registry=reg,
        )
        self.latency = Histogram(
            f"{prefix}_http_request_duration_seconds",
            "Time from request start to the end of the response body",
            ["method", "route"],
            buckets=BUCKETS,
            registry=reg,
        )
        self.bytes_in = Counter(f"{prefix}_http_received_bytes", "Request body bytes received", ["route"], registry=reg)
        self.bytes_out = Counter(f"{prefix}_http_sent_bytes", "Response body bytes sent", ["route"], registry=reg)
        self.in_flight = Gauge(
            f"{prefix}_http_requests_in_flight", "Requests being served", registry=reg, multiprocess_mode="livesum"
        )
        # What /metrics answers: this registry, or the sum over every worker process's files.
        self.exposed = reg
        if MULTIPROC_ENV in os.environ:
            self.exposed = CollectorRegistry()
            MultiProcessCollector(self.exposed)  # type: ignore[no-untyped-call]


class RegistryMetrics(HttpMetrics):
    """The primary's metrics: HTTP, auth outcomes, open upload sessions (counted at scrape time) and the garbage
    collections this process ran (scheduled and ``POST /api/v1/gc``; see :meth:`observe_gc`)."""

    def __init__(self, uploads_dir: Path) -> None:
        super().__init__("registry")
        self.auth = Counter(
            "registry_auth_outcomes", "Authentication outcomes seen in answers", ["outcome"], registry=self.registry
        )
        self.exposed.register(_UploadSessions(uploads_dir))
        reg = self.registry
        self.gc_runs = Counter("registry_gc_runs", "Garbage collections run by this process", ["result"], registry=reg)
        self.gc_deleted = Counter(
            "registry_gc_deleted", "Objects deleted by garbage collection (not dry runs)", ["kind"], registry=reg
        )
        self.gc_freed = Counter("registry_gc_freed_bytes", "Bytes freed by garbage collection", registry=reg)
        self.gc_duration = Histogram(
            "registry_gc_duration_seconds", "Duration of garbage collections", buckets=BUCKETS, registry=reg
        )
        self.gc_last_success = Gauge(
            "registry_gc_last_success_timestamp_seconds",
            "Unix time the last successful (not dry-run) garbage collection ended; 0 before the first",
            registry=reg,
            multiprocess_mode="max",
        )
        for result in ("success", "failure", "dry_run"):
            self.gc_runs.labels(result)
        for kind in ("blob", "manifest", "referrer"):
            self.gc_deleted.labels(kind)

    def observe_gc(self, run: GcRun) -> None:
        """A :attr:`registry.gc.collector.GarbageCollector.observers` callback."""
        self.gc_duration.observe(run.seconds)
        if run.report is None:
            self.gc_runs.labels("failure").inc()
        elif run.dry_run:
            self.gc_runs.labels("dry_run").inc()
        else:
            report = run.report
            self.gc_runs.labels("success").inc()
            self.gc_deleted.labels("blob").inc(len(report.blobs))
            self.gc_deleted.labels("manifest").inc(len(report.manifests))
            self.gc_deleted.labels("referrer").inc(len(report.referrers))
            self.gc_freed.inc(report.bytes_freed)
            self.gc_last_success.set(run.finished_at)

    def observe(self, method: str, route: str, status: int) -> None:
        outcome = auth_outcome(route, status)
        if outcome is not None:
            self.auth.labels(outcome).inc()


class _UploadSessions(Collector):
    """``registry_upload_sessions``: entries of the uploads directory, counted at scrape time (shared by all
    worker processes, so never summed)."""

    def __init__(self, uploads_dir: Path) -> None:
        self.uploads_dir = uploads_dir

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "registry_upload_sessions", "Upload sessions in progress", value=float(_count_entries(self.uploads_dir))
        )


def _count_entries(path: Path) -> int:
    try:
        with os.scandir(path) as entries:
            return sum(1 for _ in entries)
    except OSError:
        return 0


def new_request_id(scope: Scope) -> str:
    """The client's ``X-Request-Id`` (printable, at most 128 characters) or a new random one."""
    for key, value in scope.get("headers", []):
        if key.lower() == REQUEST_ID_HEADER:
            text = bytes(value).decode("latin-1")
            if 0 < len(text) <= 128 and text.isprintable():
                return text
    return uuid.uuid4().hex


def instrument(
    app: ASGIApp, metrics: HttpMetrics, routes: Callable[[str], str], observe: Callable[[str, str, int], None] | None
) -> ASGIApp:
    """Wrap ``app``: answer ``GET /metrics``, count every other request, and give it a request id (set in
    :data:`request_id` for the logs and echoed as ``X-Request-Id``)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        rid = new_request_id(scope)
        token = request_id.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        route = routes(scope["path"])
        method = scope["method"] if scope["method"] in ("GET", "HEAD", "PUT", "POST", "PATCH", "DELETE") else "other"
        status = 0

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                metrics.bytes_in.labels(route).inc(len(message.get("body", b"")))
            return message

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [(k, v) for k, v in message.get("headers", []) if bytes(k).lower() != REQUEST_ID_HEADER]
                message = {**message, "headers": [*headers, (REQUEST_ID_HEADER, rid.encode("latin-1"))]}
            elif message["type"] == "http.response.body":
                metrics.bytes_out.labels(route).inc(len(message.get("body", b"")))
            await send(message)

        start = time.perf_counter()
        metrics.in_flight.inc()
        try:
            if route == "/metrics" and method in ("GET", "HEAD"):
                await _send_metrics(metrics, counting_send, method == "HEAD")
            else:
                await app(scope, counting_receive, counting_send)
        finally:
            metrics.in_flight.dec()
            metrics.latency.labels(method, route).observe(time.perf_counter() - start)
            metrics.requests.labels(method, route, str(status)).inc()
            if observe is not None:
                observe(method, route, status)
            request_id.reset(token)

    return wrapped


async def _send_metrics(metrics: HttpMetrics, send: Send, head: bool) -> None:
    body = generate_latest(metrics.exposed)
    headers = [(b"content-type", CONTENT_TYPE_LATEST.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


def instrument_registry(app: ASGIApp, uploads_dir: Path) -> tuple[ASGIApp, RegistryMetrics]:
    """The primary's app with ``/metrics`` and request ids."""
    metrics = RegistryMetrics(uploads_dir)
    return instrument(app, metrics, route_of, metrics.observe), metrics

"""Prometheus export, health and request ids for an edge node: an ASGI wrapper around :class:`EdgeAsgi`.

* ``GET /metrics``: the counters of :class:`edge.metrics.EdgeMetrics` as ``edge_<name>_total``, cache size
  gauges, and per-route request counts, latency histograms and body bytes. One ``CollectorRegistry`` per app.
* ``GET /healthz``: the process answers. ``GET /readyz``: the blob cache and the index answer (503 if not);
  the upstream's state is reported in the body but never makes the edge unready (it can serve from cache).
* ``X-Request-Id``: accepted from the client or generated, echoed in the answer, kept in :data:`request_id`
  (the upstream client forwards it, see :func:`forward_request_id`).

Like the primary's, ``/metrics`` needs no authentication; it carries counts only.
"""

from __future__ import annotations

import contextvars
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator

import httpx
import trio
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from edge.api.context import EdgeContext
from edge.api.routes import EDGE_ROUTES, ROUTES
from edge.http import Message, Receive, Scope, Send

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
REQUEST_ID_HEADER = b"x-request-id"
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("edge_request_id", default=None)
_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")
_TEMPLATES = [
    (pattern, _GROUP.sub(lambda m: "{" + m.group(1) + "}", pattern.pattern)[1:-1].replace("/?", ""))
    for pattern, _ in ROUTES
]
_FIXED = {"/healthz", "/readyz", "/metrics", *EDGE_ROUTES}
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
PROBE_SECONDS = 2.0


def route_of(path: str) -> str:
    if path in _FIXED:
        return path
    for pattern, name in _TEMPLATES:
        if pattern.fullmatch(path):
            return name
    return "other"


async def forward_request_id(request: httpx.Request) -> None:
    """httpx request hook: pass the current request id on to the upstream."""
    rid = request_id.get()
    if rid is not None:
        request.headers["X-Request-Id"] = rid


class _CountersCollector(Collector):
    def __init__(self, ctx: EdgeContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[CounterMetricFamily]:
        for name, value in self.ctx.metrics.snapshot().items():
            yield CounterMetricFamily(f"edge_{name}", f"edge counter {name} (see edge/metrics.py)", value=value)


class EdgeExporter:
    def __init__(self, ctx: EdgeContext) -> None:
        self.ctx = ctx
        self.registry = reg = CollectorRegistry()
        reg.register(_CountersCollector(ctx))
        self.requests = Counter("edge_http_requests", "HTTP requests", ["method", "route", "status"], registry=reg)
        self.latency = Histogram(
            "edge_http_request_duration_seconds", "Request latency", ["method", "route"], buckets=BUCKETS, registry=reg
        )
        self.bytes_out = Counter("edge_http_sent_bytes", "Response body bytes sent", ["route"], registry=reg)
        self.cache_bytes = Gauge("edge_cache_bytes", "Bytes in the blob cache", registry=reg)
        self.cache_blobs = Gauge("edge_cache_blobs", "Blobs in the blob cache", registry=reg)
        Gauge("edge_cache_limit_bytes", "Blob cache size limit", registry=reg).set(ctx.cache.limit)
        inflight = Gauge("edge_fills_in_flight", "Fills from the upstream in flight", registry=reg)
        inflight.set_function(lambda: float(len(ctx.blobs.flights)))

    async def metrics_body(self) -> bytes:
        volume, count = await self.ctx.cache.usage()
        self.cache_bytes.set(volume)
        self.cache_blobs.set(count)
        return bytes(generate_latest(self.registry))

    async def readiness(self) -> tuple[int, dict[str, str]]:
        doc = {"cache": "ok", "index": "ok", "upstream": "unknown"}
        try:
            await self.ctx.cache.usage()
        except Exception as exc:
            doc["cache"] = f"error: {type(exc).__name__}"
        try:
            await self.ctx.blobs.index.get_tag("-", "-")
        except Exception as exc:
            doc["index"] = f"error: {type(exc).__name__}"
        with trio.move_on_after(PROBE_SECONDS):
            try:
                await self.ctx.upstream.client.get("/v2/", timeout=PROBE_SECONDS)
                doc["upstream"] = "reachable"
            except httpx.HTTPError:
                doc["upstream"] = "unreachable"
        ready = doc["cache"] == "ok" and doc["index"] == "ok"
        doc["status"] = "ready" if ready else "not ready"
        return (200 if ready else 503), doc


def _request_id(scope: Scope) -> str:
    for key, value in scope.get("headers", []):
        if bytes(key).lower() == REQUEST_ID_HEADER:
            text = bytes(value).decode("latin-1")
            if 0 < len(text) <= 128 and text.isprintable():
                return text
    return uuid.uuid4().hex


async def _send_json(send: Send, status: int, body: bytes, content_type: bytes = b"application/json") -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def instrument_edge(app: ASGIApp, ctx: EdgeContext) -> tuple[ASGIApp, EdgeExporter]:
    """``app`` with ``/metrics``, ``/healthz``, ``/readyz``, request counting and request ids."""
    exporter = EdgeExporter(ctx)

    async def own(route: str, send: Send) -> bool:
        if route == "/metrics":
            body = await exporter.metrics_body()
            await _send_json(send, 200, body, CONTENT_TYPE_LATEST.encode())
        elif route == "/healthz":
            await _send_json(send, 200, b'{"status":"ok"}')
        elif route == "/readyz":
            status, doc = await exporter.readiness()
            await _send_json(send, status, json.dumps(doc).encode())
        else:
            return False
        return True

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        rid = _request_id(scope)
        token = request_id.set(rid)
        route = route_of(scope["path"])
        method = scope["method"] if scope["method"] in ("GET", "HEAD") else "other"
        status = 0

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [(k, v) for k, v in message.get("headers", []) if bytes(k).lower() != REQUEST_ID_HEADER]
                message = {**message, "headers": [*headers, (REQUEST_ID_HEADER, rid.encode("latin-1"))]}
            elif message["type"] == "http.response.body":
                exporter.bytes_out.labels(route).inc(len(message.get("body", b"")))
            await send(message)

        start = time.perf_counter()
        try:
            if not (method == "GET" and await own(route, counting_send)):
                await app(scope, receive, counting_send)
        finally:
            exporter.latency.labels(method, route).observe(time.perf_counter() - start)
            exporter.requests.labels(method, route, str(status)).inc()
            request_id.reset(token)

    return wrapped, exporter

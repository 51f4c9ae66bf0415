"""Workload 5: our edge vs Distribution's proxy mode (``proxy: remoteurl:``), both in front of the same upstream.

The upstream is a plain ``docker-registry`` with its access log on (written to a file), so upstream requests are
counted from its log for each phase, whatever the cache does. Per round and per cache (fresh cache each time):
a direct pull from the upstream (the baseline), a cold pull and a warm pull through the cache, then — with
another fresh cache — ``plan.proxy_clients`` concurrent cold pulls, counting how often the upstream served the
layer.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from bench import clients
from bench.payloads import big_image
from bench.plan import Plan, alternate, human
from bench.results import Results
from bench.servers import Server, access_log_requests, distribution, edge

REPO = "bench/proxied"
LABELS = {"ours_label": "edge", "theirs_label": "distribution proxy"}


def _log_size(server: Server) -> int:
    assert server.access_log is not None
    return server.access_log.stat().st_size


def _upstream_since(server: Server, mark: int, layer: str) -> tuple[int, int]:
    """(all requests, 200 GETs of ``layer``) the upstream logged since byte ``mark``."""
    assert server.access_log is not None
    time.sleep(0.5)  # the access log line is written when the response completes
    requests = access_log_requests(server.access_log, mark)
    layer_gets = sum(1 for method, path, status in requests
                     if method == "GET" and path.endswith(layer) and status == 200)
    return len(requests), layer_gets


def pull_through(plan: Plan, work: Path, results: Results) -> None:
    image = big_image(work / "proxy-layout", plan.proxy_image_bytes, seed=4000, tag="v1")
    layer = image.layer_digests[0]
    name = f"{human(plan.proxy_image_bytes)} image"
    dest = work / "proxy-pulled"
    with distribution(work / "w5-upstream", access_log=work / "w5-upstream-access.log") as upstream:
        clients.push(image, upstream.host, REPO)
        shutil.rmtree(image.layout)
        for round_no in range(plan.rounds):
            for who in alternate(round_no):
                cache: Callable[[Path], AbstractContextManager[Server]] = (
                    (lambda p: edge(p, upstream.url)) if who == "ours"
                    else (lambda p: distribution(p, proxy=upstream.url)))
                direct = clients.pull(upstream.host, REPO, "v1", dest)
                results.add("proxy", f"direct pull from the upstream, {name} (baseline)", "s", "lower", who, direct,
                            **LABELS)
                with cache(work / f"w5-{who}-{round_no}-cold") as server:
                    mark = _log_size(upstream)
                    cold = clients.pull(server.host, REPO, "v1", dest)
                    cold_requests, _ = _upstream_since(upstream, mark, layer)
                    mark = _log_size(upstream)
                    warm = clients.pull(server.host, REPO, "v1", dest)
                    warm_requests, _ = _upstream_since(upstream, mark, layer)
                results.add("proxy", f"cold pull, {name}", "s", "lower", who, cold, **LABELS)
                results.add("proxy", f"cold pull / direct pull, {name}", "×", "lower", who, cold / direct, **LABELS)
                results.add("proxy", f"warm pull, {name}", "s", "lower", who, warm, **LABELS)
                results.add("proxy", "upstream requests, one cold pull", "requests", "lower", who, cold_requests,
                            **LABELS)
                results.add("proxy", "upstream requests, one warm pull", "requests", "lower", who, warm_requests,
                            **LABELS)
                n = plan.proxy_clients
                with cache(work / f"w5-{who}-{round_no}-concurrent") as server:
                    mark = _log_size(upstream)
                    wall = clients.parallel_pulls(server.host, REPO, "v1", [work / f"pulled-{i}" for i in range(n)])
                    total, layer_gets = _upstream_since(upstream, mark, layer)
                results.add("proxy", f"{n} concurrent cold pulls, {name}", "s", "lower", who, wall, **LABELS)
                results.add("proxy", f"upstream layer GETs, {n} concurrent cold pulls", "requests", "lower", who,
                            layer_gets, **LABELS)
                results.add("proxy", f"upstream requests, {n} concurrent cold pulls", "requests", "lower", who,
                            total, **LABELS)
    for path in [dest, *(work / f"pulled-{i}" for i in range(plan.proxy_clients))]:
        shutil.rmtree(path, ignore_errors=True)

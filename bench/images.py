"""Image workloads: (2) skopeo push and pull of a big single-layer image and of a many-small-layer image,
(4) manifest GET and HEAD requests per second with hey. Fresh servers every round (so every push uploads every
blob), one server at a time, alternating who goes first.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bench import clients
from bench.payloads import Image, big_image, many_layer_image
from bench.plan import SIDES, Plan, alternate, human, record_as
from bench.results import Results
from tests.imagebuild import OCI_MANIFEST, build_image


def _push_pull(image: Image, name: str, plan: Plan, work: Path, results: Results) -> None:
    for round_no in range(plan.rounds):
        for who in alternate(round_no):
            repo = f"bench/{image.tag}{round_no}"
            with SIDES[who](work / f"w2-{image.tag}-{who}-{round_no}") as server:
                pushed = clients.push(image, server.host, repo)
                pulled = clients.pull(server.host, repo, image.tag, work / "pulled")
            results.add("image", f"push {name}", "s", "lower", who, pushed)
            results.add("image", f"pull {name}", "s", "lower", who, pulled)
    shutil.rmtree(work / "pulled", ignore_errors=True)


def push_pull(plan: Plan, work: Path, results: Results) -> None:
    """Workload 2: seconds for ``skopeo copy`` to (push) and from (pull, into an OCI layout) each registry."""
    big = big_image(work / "big-layout", plan.big_image_bytes, seed=3000)
    _push_pull(big, f"{human(plan.big_image_bytes)} single-layer image", plan, work, results)
    shutil.rmtree(big.layout)
    small = many_layer_image(work / "small-layout", plan.small_layers, plan.small_layer_bytes)
    _push_pull(small, f"{plan.small_layers} × {human(plan.small_layer_bytes)}-layer image", plan, work, results)
    shutil.rmtree(small.layout)


def manifest_rate(plan: Plan, work: Path, results: Results) -> None:
    """Workload 4: hey GET and HEAD of one manifest by tag; requests per second, every answer must be 200."""
    image = build_image(work / "manifest-layout", tag="v1")
    n, c = plan.manifest_requests, plan.manifest_concurrency
    for round_no in range(plan.rounds):
        for side in alternate(round_no, ("ours", "theirs", "ours-workers")):
            with SIDES[side](work / f"w4-{side}-{round_no}") as server:
                clients.run(["skopeo", "copy", "-q", "--dest-tls-verify=false", image.ref,
                             f"docker://{server.host}/bench/manifest:v1"])
                url = f"{server.url}/v2/bench/manifest/manifests/v1"
                for method in ("GET", "HEAD"):
                    rate = clients.hey(url, method, n, c, OCI_MANIFEST)
                    for who, suffix in record_as(side):
                        results.add("manifest", f"manifest {method} by tag ({c} connections){suffix}", "req/s",
                                    "higher", who, rate)
    shutil.rmtree(image.layout or work / "manifest-layout", ignore_errors=True)

"""Blob workloads: (1) ingest + serve one big blob with curl, (3) concurrent GETs of one blob, (6) RSS and CPU
of each server during big transfers. Every round starts fresh servers, one at a time, alternating who goes first.
"""

from __future__ import annotations

from pathlib import Path

from bench import clients
from bench.payloads import Blob, write_blob
from bench.plan import GIB, MIB, SIDES, Plan, alternate, human, record_as
from bench.results import Results
from bench.servers import Meter, Server


def _ingest_and_serve(server: Server, blob: Blob, repo: str) -> tuple[float, float, Meter, Meter]:
    with Meter(server.pid) as ingest_meter:
        ingest = clients.upload(server.url, repo, blob)
    with Meter(server.pid) as serve_meter:
        serve = clients.download(server.url, repo, blob.digest)
    return ingest, serve, ingest_meter, serve_meter


def blob_throughput(plan: Plan, work: Path, results: Results) -> None:
    """Workload 1: MB/s of a monolithic POST+PUT and of a GET of ``plan.blob_bytes``; CPU-s per GiB of each."""
    size = plan.blob_bytes
    label = human(size)
    for round_no in range(plan.rounds):
        blob = write_blob(work / "blob.bin", size, seed=round_no)
        for who in alternate(round_no):
            with SIDES[who](work / f"w1-{who}-{round_no}") as server:
                ingest, serve, im, sm = _ingest_and_serve(server, blob, f"bench/blob{round_no}")
            results.add("blob", f"ingest {label}", "MB/s", "higher", who, size / ingest / 1e6)
            results.add("blob", f"serve {label}", "MB/s", "higher", who, size / serve / 1e6)
            results.add("blob", f"ingest CPU per GiB ({label})", "CPU-s", "lower", who, im.cpu / (size / GIB))
            results.add("blob", f"serve CPU per GiB ({label})", "CPU-s", "lower", who, sm.cpu / (size / GIB))
        blob.path.unlink()


def concurrent_gets(plan: Plan, work: Path, results: Results) -> None:
    """Workload 3: ``plan.concurrent_clients`` curl GETs of one blob at once: aggregate MB/s, peak RSS."""
    size, clients_n = plan.concurrent_bytes, plan.concurrent_clients
    blob = write_blob(work / "concurrent.bin", size, seed=1000)
    name = f"{clients_n} concurrent GETs of {human(size)}"
    for round_no in range(plan.rounds):
        for side in alternate(round_no, ("ours", "theirs", "ours-workers")):
            with SIDES[side](work / f"w3-{side}-{round_no}") as server:
                clients.upload(server.url, "bench/concurrent", blob)
                with Meter(server.pid) as meter:
                    seconds = clients.parallel_downloads(server.url, "bench/concurrent", blob.digest, clients_n)
            for who, suffix in record_as(side):
                rate = clients_n * size / seconds / 1e6
                results.add("concurrent", f"{name}, aggregate{suffix}", "MB/s", "higher", who, rate)
                results.add("concurrent", f"{name}, peak RSS{suffix}", "MiB", "lower", who, meter.peak_rss / MIB)
    blob.path.unlink()


def transfer_resources(plan: Plan, work: Path, results: Results) -> None:
    """Workload 6: one ``plan.transfer_bytes`` ingest and serve per server (fresh): peak RSS, CPU-s per GiB."""
    size = plan.transfer_bytes
    label = human(size)
    blob = write_blob(work / "transfer.bin", size, seed=2000)
    for who in alternate(0):
        with SIDES[who](work / f"w6-{who}") as server:
            ingest, serve, im, sm = _ingest_and_serve(server, blob, "bench/transfer")
        gib = size / GIB
        results.add("resources", f"peak RSS, ingest {label}", "MiB", "lower", who, im.peak_rss / MIB)
        results.add("resources", f"peak RSS, serve {label}", "MiB", "lower", who, sm.peak_rss / MIB)
        results.add("resources", f"CPU per GiB, ingest {label}", "CPU-s", "lower", who, im.cpu / gib)
        results.add("resources", f"CPU per GiB, serve {label}", "CPU-s", "lower", who, sm.cpu / gib)
        results.add("resources", f"ingest {label}", "MB/s", "higher", who, size / ingest / 1e6)
        results.add("resources", f"serve {label}", "MB/s", "higher", who, size / serve / 1e6)
    blob.path.unlink()

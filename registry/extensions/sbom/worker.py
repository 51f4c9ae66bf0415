"""The SBOM worker process: ``python -m registry.extensions.sbom.worker`` reads
``{"layers": [path, …], "memory_mb": N}`` on stdin and writes the scan result as JSON on stdout. With
``"describe": {"repo": …, "digest": …, "platform": …}`` the result also holds the two documents,
``"cyclonedx"`` and ``"spdx"`` (JSON text).

It runs in its own process with an address-space limit, so a hostile or huge image can exhaust only the
worker, never the server. The documents are built here too: their libraries (cyclonedx, spdx-tools with
jsonschema and its grammars) take seconds of CPU to import and tens of MiB, which in the server would stall
its event loop — every request — at the first SBOM.
"""

from __future__ import annotations

import json
import resource
import sys
from typing import Any

from registry.extensions.sbom.scanner import scan_layers


def describe(subject: dict[str, str], result: dict[str, Any]) -> dict[str, str]:
    from registry.extensions.sbom import documents

    repo, digest, platform = subject["repo"], subject["digest"], subject["platform"]
    return {
        "cyclonedx": documents.cyclonedx(repo, digest, platform, result).decode(),
        "spdx": documents.spdx(repo, digest, platform, result).decode(),
    }


def main() -> int:
    request = json.load(sys.stdin)
    limit = int(request.get("memory_mb", 0)) * 1024 * 1024
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        result = scan_layers(list(request["layers"]))
        if "describe" in request:
            result.update(describe(request["describe"], result))
    except MemoryError:
        print(json.dumps({"error": "worker memory limit exceeded"}))
        return 3
    except (OSError, ValueError, EOFError) as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 2
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())

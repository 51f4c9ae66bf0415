"""The SBOM worker process: ``python -m registry.extensions.sbom.worker`` reads
``{"layers": [path, …], "memory_mb": N}`` on stdin and writes the scan result as JSON on stdout.

It runs in its own process with an address-space limit, so a hostile or huge image can exhaust only the
worker, never the server.
"""

from __future__ import annotations

import json
import resource
import sys

from registry.extensions.sbom.scanner import scan_layers


def main() -> int:
    request = json.load(sys.stdin)
    limit = int(request.get("memory_mb", 0)) * 1024 * 1024
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        result = scan_layers(list(request["layers"]))
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

"""The edge's HTTP API: the OCI pull routes, ``ns`` mapping, and the edge's own ``/edge/*`` endpoints."""

"""containerd's ``hosts.toml`` for pulling a registry through an edge node (pure text, no I/O)."""

from __future__ import annotations

import json


def hosts_toml(
    upstream_url: str, edge_url: str, dial_timeout: str = "2s", header: tuple[str, str] | None = None
) -> str:
    """The ``/etc/containerd/certs.d/<registry host>/hosts.toml`` that tries the edge first, then the upstream.

    ``header`` (name, value) is sent by containerd on every request to the edge (``[host."URL".header]``); the
    file then holds that value: keep it readable by root only. Values are written as TOML basic strings (JSON
    string escaping is a subset of TOML's).
    """
    extra = ""
    if header is not None:
        extra = f"""
[host.{json.dumps(edge_url)}.header]
  {json.dumps(header[0])} = [{json.dumps(header[1])}]
"""
    return f"""# containerd hosts.toml: pull through the edge node, fall back to the registry itself.
# Install as /etc/containerd/certs.d/<registry host>/hosts.toml.
# The CRI plugin reads this directory only when config_path is set:
#   [plugins."io.containerd.grpc.v1.cri".registry]
#     config_path = "/etc/containerd/certs.d"
# ctr reads it with --hosts-dir /etc/containerd/certs.d.
server = {json.dumps(upstream_url)}

[host.{json.dumps(edge_url)}]
  capabilities = ["pull", "resolve"]
  # Honoured only by containerd >= 2.1. On 1.x a dead mirror costs the OS connect timeout (~30 s) on every
  # request before containerd falls back to the server above: keep the edge up or remove this section.
  dial_timeout = {json.dumps(dial_timeout)}
{extra}"""

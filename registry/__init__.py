"""The primary OCI registry: protocol core (``registry.oci``), storage, HTTP API and CLI."""

__version__ = "0.1.0"

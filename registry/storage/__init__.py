"""Storage: content-addressed blobs on a filesystem, metadata in SQLite, and the OCI semantics on top."""

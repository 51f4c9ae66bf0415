"""The tamper-evident audit log: hash-chained records (``chain``), signed checkpoints (``checkpoints``),
verification (``verify``) and filtered queries (``query``)."""

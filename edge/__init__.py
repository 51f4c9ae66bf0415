"""Edge node: a pull-through cache near clusters. Imports only ``registry.oci`` from the registry."""

"""HTTP only: parse, authorize, call a service, shape the response. One route group per module."""

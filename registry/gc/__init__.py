"""Online garbage collection (``collector``) and its schedule."""

"""Pure OCI protocol core: values, grammars and wire formats.

No I/O, no trio, no HTTP framework. This is the only part of ``registry`` that ``edge`` may import.
"""

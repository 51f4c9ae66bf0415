"""Benchmarks of this registry side by side with CNCF Distribution (Debian's ``docker-registry``).

``python -m bench [--quick]`` starts both servers on loopback with equivalent settings, runs every workload
alternating ours/theirs over several rounds and writes JSON, a markdown table and PNG charts (``bench/results/``);
a full run also regenerates the tables in ``docs/performance.md``. ``bash bench/run.sh`` installs what it needs
first. Nothing here is imported by ``registry`` or ``edge``.
"""

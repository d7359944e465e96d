"""Benchmarks: each ``bench_*.py`` module has a ``main()`` that measures against a baseline run side
by side in the same process and prints the figures and their ratio. Run them all with
``python -m benchmarks`` (``make bench``) or some with ``python -m benchmarks analysis probes``.
"""

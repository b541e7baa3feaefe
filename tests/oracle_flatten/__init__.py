"""A frozen copy of ``coreviz_frames/tables/flatten.py`` and ``casting.py`` before a speed-up.

The oracle of ``tests/tables/test_flatten_speed_equivalence.py`` (and the "old" side of
``benchmarks/bench_flatten.py --compare``): copied from commit d78910c5 with only the
package-relative imports of ``errors``, ``ids`` and ``schema`` made absolute. Never edit it:
the equivalence test proves the new flatten gives exactly what this one gave.
"""

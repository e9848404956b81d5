"""Helpers shared by the test suite (tests/) and the benchmarks and drills (bench/).

Waiting on conditions, child processes, the marker face backend and the
synthetic images it reads. The application never imports this package; tests
and bench import it instead of importing each other.
"""

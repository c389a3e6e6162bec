"""The benchmark suite: the system in its production shape under load, row by row.

Run it with `bin/bench` (`bin/bench --help`). `harness/` is the machinery every row uses,
`rows/` one module per family of rows, `__main__.py` the suite's steps.
"""

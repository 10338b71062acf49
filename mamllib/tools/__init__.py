"""Maintainers' commands: benchmarks, cost measurements, slides, student copies, notebook runs.

Nothing in the library imports this package. Each module is a command line,
``python -m mamllib.tools.<name>`` (README, "Where things live").
"""

"""edgesync benchmarks: `python -m bench --help`."""

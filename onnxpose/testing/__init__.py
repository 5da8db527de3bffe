"""Model factories for tests and benchmarks (made by scripts, never committed)."""

"""numpy reference decoders, independent of the graph code (used by build validation and tests)."""

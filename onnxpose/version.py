"""The package version (ground floor: imported by the package, the build and the CLI)."""

__version__ = "0.1.0"

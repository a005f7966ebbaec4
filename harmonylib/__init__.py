"""harmonylib: a tested replication of DiffHarmony++ (ACM MM 2024)."""

__version__ = "0.1.0"

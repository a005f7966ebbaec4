"""``python -m harmonylib.claims MEASUREMENTS.csv OUT_DIR``: rebuild claims.md / claims.csv."""

from harmonylib.claims.render import main

if __name__ == "__main__":
    raise SystemExit(main())

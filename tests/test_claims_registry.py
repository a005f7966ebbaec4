"""Every row the paper reports, and Figure 2, is tied to claims or to a reason no conclusion is drawn."""

from __future__ import annotations

import pandas as pd
import pytest

from harmonylib import claims, tables
from harmonylib.claims import registry
from harmonylib.claims.registry import REGISTRY, ROW_KEYS, Entry


def _reported() -> dict:
    return {t: tables.reported(t) for t in ROW_KEYS}


def test_every_reported_row_is_in_the_registry():
    reported = _reported()
    assert set(reported) == {p for p in range(1, 6)}  # every table of harmonylib/reported/
    assert registry.uncovered_rows(reported) == []
    assert {e.artefact for e in REGISTRY if e.table is None} >= set(registry.FIGURES)


def test_a_missing_row_is_found():
    reported = _reported()
    extra = reported[4].head(1).assign(setting="2048/harmony_vae")  # a row no entry selects
    reported[4] = pd.concat([reported[4], extra], ignore_index=True)
    assert registry.uncovered_rows(reported) == ["Table 4: setting=2048/harmony_vae"]


def test_entries_name_known_claims_and_every_claim_is_registered():
    ids = {c.id for c in claims.CLAIMS}
    named = {c for e in REGISTRY for c in e.claims}
    assert named <= ids, named - ids
    assert ids <= named, ids - named  # no claim floats outside the tables and figures
    for e in REGISTRY:
        assert bool(e.claims) != bool(e.no_conclusion)
        if e.no_conclusion:
            assert len(e.no_conclusion) > 30  # a reason, not a placeholder
    with pytest.raises(ValueError, match="not both"):
        Entry("Table 1", "x", 1, {"model": ("DoveNet",)}, claims=("1a",), no_conclusion="because")
    with pytest.raises(ValueError, match="not both"):
        Entry("Table 1", "x", 1, {"model": ("DoveNet",)})


def test_each_claims_cells_are_registered_under_it():
    # a claim's arms map to reported cells; the entries selecting those cells must name the claim
    for c in claims.CLAIMS:
        if not c.terms:
            assert c.source in registry.FIGURES and c.id in registry.claims_of(c.source)
            continue
        for arm in c.arms:
            table, keys = claims.ARMS[c.experiment][arm]
            row = {k: keys[k] for k in ROW_KEYS[table]}
            names = {cid for e in registry.entries_for(row, table) for cid in e.claims}
            assert c.id in names, f"claim {c.id}: Table {table} row {row} does not list it"


def test_every_claim_quotes_the_paper():
    for c in claims.CLAIMS:
        assert c.quote and c.where, c.id
    # the new claims are there, by table
    assert registry.claims_of("Table 3") == ["4a", "4c", "4b", "4d"]
    assert registry.claims_of("Table 2") == ["6a", "6b"]
    assert set(registry.claims_of("Table 4")) == {"2", "7a", "7b"}

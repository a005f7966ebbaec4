"""``harmonylib <verb>``: every verb listed, every verb's help with its defaults, no verb dropped."""

from __future__ import annotations

import pytest

from harmonylib import cli

VERBS = ("build-data", "lists", "shrink", "augment", "human-harmony", "pretrain", "train", "retrain",
         "diagnostics", "assemble", "harmonize", "evaluate", "tables")  # fmt: skip


def test_help_lists_the_verbs(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for verb in VERBS:
        assert f"\n    {verb} " in out or f"\n    {verb}\n" in out, verb
    assert set(cli.COMMANDS) == set(VERBS)
    assert cli.main([]) == 2  # no verb: the list, and a usage error


def test_unknown_verb_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["harmonise"])
    assert exc.value.code == 2
    assert "invalid choice: 'harmonise'" in capsys.readouterr().err


@pytest.mark.parametrize("verb", VERBS)
def test_each_verb_help_shows_defaults(verb, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([verb, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: harmonylib {verb}")
    if verb not in ("augment", "human-harmony"):  # these two only list their sub-verbs
        assert "default" in out, out


def test_a_sub_verb_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.main(["augment", "generate", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--steps STEPS default: 5" in out and "--seed SEED default: 0" in out


def test_a_verb_that_fails_to_import_fails_loudly(monkeypatch, capsys):
    monkeypatch.setitem(cli.COMMANDS, "broken", ("harmonylib.no_such_module", "add_parser", "x"))
    with pytest.raises(ModuleNotFoundError):
        cli.main(["broken", "--help"])
    assert "harmonylib broken: cannot import harmonylib.no_such_module" in capsys.readouterr().err


def test_python_m_aliases_stay(capsys):
    from harmonylib import assemble, readme
    from harmonylib.training import __main__ as train_main

    for main, prog in ((assemble.main, "python -m harmonylib.assemble"), (readme.main, "python -m harmonylib.readme"),
                       (train_main.main, "python -m harmonylib.training")):  # fmt: skip
        with pytest.raises(SystemExit) as exc:
            main(["--help"])
        assert exc.value.code == 0 and capsys.readouterr().out.startswith(f"usage: {prog}")


def test_tables_merges_claims_and_writes_the_readme_block(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- results:start -->\nold\n<!-- results:end -->\n")
    args = ["tables", "--profile", "smoke", "--results", str(tmp_path / "res"), "--readme", str(readme)]
    assert cli.main([*args, "--check"]) == 1  # stale
    assert cli.main(args) == 0
    assert "none measured yet" in capsys.readouterr().err
    assert "old" not in readme.read_text() and "No Table 1 yet" in readme.read_text()
    assert cli.main([*args, "--check"]) == 0

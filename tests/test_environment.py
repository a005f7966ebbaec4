"""environment.yml and pyproject.toml must pin the same packages."""

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_norm(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1
    got = {_norm(r) for r in pip_sections[0] if not r.startswith("-e")}
    assert got == wanted
    assert "-e ." in pip_sections[0]
    assert any(str(d).startswith("python=3.11") for d in env["dependencies"])


def test_every_dependency_is_pinned():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for req in project["dependencies"]:
        assert "==" in req, f"{req} is not pinned"
    # torch must stay pinned to the CPU build that lies on disk; a bare "torch" pulls CUDA.
    assert "torch==2.13.0" in project["dependencies"]

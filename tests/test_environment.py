"""pyproject.toml (ranges), requirements.lock (exact versions) and environment.yml agree."""

import re
from pathlib import Path

import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _direct() -> list[Requirement]:
    project = _project()
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]]


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s;]+)", line.strip())
        assert m, f"requirements.lock: {line!r} is not name==version"
        name = canonicalize_name(m.group(1))
        assert name not in pins, f"requirements.lock: {name} pinned twice"
        pins[name] = m.group(2)
    return pins


def _makefile_torch() -> str:
    m = re.search(r"^TORCH_SPEC \?= (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert m, "Makefile: no TORCH_SPEC"
    return m.group(1)


def test_pyproject_declares_ranges_and_what_is_imported():
    project = _project()
    assert project["requires-python"] == ">=3.11"  # numpy 2.4 / pandas 3 need it; tests use tomllib
    names = {canonicalize_name(r.name) for r in _direct()}
    assert {"scipy", "torch", "numpy", "diffusers"} <= names  # scipy is imported directly
    for req in _direct():
        spec = str(req.specifier)
        assert ">=" in spec and "<" in spec, f"{req}: give a compatible range (lower and upper bound)"


def test_lock_pins_every_direct_dependency_within_its_range():
    pins = _lock()
    for req in _direct():
        name = canonicalize_name(req.name)
        if name == "torch":
            assert name not in pins, "torch is installed alone, first (Makefile TORCH_SPEC); not in the lock"
            continue
        assert name in pins, f"requirements.lock lacks {name}"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"lock {name}=={pins[name]} outside {req}"
        )
    assert "harmonylib" not in pins
    assert not [n for n in pins if n.startswith("nvidia-") or n == "triton"], "a CUDA build's packages"


def test_makefile_torch_is_within_range_and_installed_first():
    spec = Requirement(_makefile_torch())
    torch_req = next(r for r in _direct() if r.name == "torch")
    assert str(spec.specifier).startswith("==")
    assert torch_req.specifier.contains(str(spec.specifier)[2:])
    make = (ROOT / "Makefile").read_text()
    first, lock = make.find('"$(TORCH_SPEC)"'), make.find("-r requirements.lock")
    assert 0 < first < lock, "make installs torch alone, before the lock"


def test_environment_yml_follows_the_lock():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    python = next(str(d) for d in deps if str(d).startswith("python="))
    assert SpecifierSet(_project()["requires-python"]).contains(python.split("=", 1)[1] + ".0")
    pip_sections = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1
    pip = pip_sections[0]
    assert "-r requirements.lock" in pip and "-e .[dev]" in pip
    # the CPU torch that make installs, from an index of CPU wheels
    assert _makefile_torch() in pip
    assert any(line.endswith("download.pytorch.org/whl/cpu") and "index-url" in line for line in pip)
    # nothing pinned here besides torch: the lock is the one list of exact versions
    other = [line for line in pip if not line.startswith("-") and line != _makefile_torch()]
    assert not other, f"environment.yml pins {other}; they belong in requirements.lock"

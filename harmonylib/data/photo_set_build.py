"""Rebuild the vendored photo set (``harmonylib/assets/photos``) from Debian packages.

The set is committed, so nobody needs this module to use it; it exists so that the set can be
re-derived and audited. It reads ``.deb`` files fetched with ``apt-get download`` (exact versions
in :data:`PACKAGES`), takes the scenes listed in :data:`SCENES` and the photographic Tux Paint
stamps chosen by :func:`select_stamps`, down-sizes them, and writes the files, ``MANIFEST.csv``
and ``LICENSES/``. Commands: ``harmonylib/assets/photos/README.md``.

Author and licence of each scene were read by hand from the package's
``/usr/share/doc/<package>/copyright`` (and, for lxqt-themes, the ``License`` file that ships beside
its wallpapers); the builder checks that each scene's file name appears in its copyright file
(except lxqt's, whose credits use short names).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from harmonylib.data.photo_set import (
    FORBIDDEN_PACKAGES,
    LICENSE_FILES,
    MANIFEST_COLUMNS,
    SCENE_SHORT_SIDE,
    STAMP_LONG_SIDE,
)

# Exact versions (Debian bookworm) the committed files were made from.
PACKAGES: dict[str, str] = {
    "mate-backgrounds": "1.26.0-1",
    "lomiri-wallpapers-16.04": "20.04.0-2",
    "lomiri-wallpapers-20.04": "20.04.0-2",
    "lxqt-themes": "1.2.0-1",
    "tuxpaint-stamps-default": "2022.06.04-1",
}

_MATE = "/usr/share/backgrounds/mate/nature/"
_LOMIRI = "/usr/share/backgrounds/"
_LXQT = "/usr/share/lxqt/wallpapers/"
_LXQT_TEAM = "LXQt Project Team"


@dataclass(frozen=True)
class PhotoSource:
    """One file to vendor (scene or stamp), with its attribution and split."""

    name: str
    package: str
    original_file: str
    author: str
    licence: str
    split: str


def _mate(stem: str, author: str, split: str) -> PhotoSource:
    # mate-backgrounds nature/: every photo GPL-2+, authors from its copyright file
    return PhotoSource(
        f"mate_{stem.lower()}", "mate-backgrounds", f"{_MATE}{stem}.jpg", author, "GPL-2.0-or-later", split
    )


def _lomiri(name: str, series: str, file: str, author: str, licence: str, split: str) -> PhotoSource:
    # lomiri-wallpapers-<series>: per-file licences from its copyright file
    return PhotoSource(
        f"lomiri_{name}", f"lomiri-wallpapers-{series}", _LOMIRI + file, author, licence, split
    )


def _lxqt(name: str, file: str, split: str, credited: bool = True) -> PhotoSource:
    # lxqt-themes wallpapers/: CC-BY-SA-3.0 per the License file beside them, which credits
    # stefonarch for eight photos; Valendas and cloud carry no individual credit
    author = f"stefonarch; {_LXQT_TEAM}" if credited else _LXQT_TEAM
    return PhotoSource(f"lxqt_{name}", "lxqt-themes", _LXQT + file, author, "CC-BY-SA-3.0", split)


# The split of every scene was fixed here by hand, before any model saw the photos, so that each
# held-out split holds a landscape, a sky, a plant close-up, an animal and an indoor scene (README
# lists the subjects). Rejected from these packages: abstract renders, gradients and logos (all of
# gnome-backgrounds 43 and ukui-wallpapers; mate's abstract/ and desktop/; lomiri's umang, Fossa,
# Painting-Colors, analogpattern, Infinite-Sea, warty-final), lxqt's Butterfly-Kenneth-Wimer
# (its author drew for KDE, so it might also lie in the reserved plasma set).
_AB = "Aitzol Berasategi"
_FS = 'Trevor "Freespace"'
SCENES: tuple[PhotoSource, ...] = (
    _mate("Aqua", "Charles Barbin", "train"),
    _mate("Blinds", "Lennart Poettering; Andrea Cimitan", "train"),
    _mate("Dune", "Marco Cogoni; Hylke Bons", "train"),
    _mate("FreshFlower", "Jens Ansorg", "train"),
    _mate("Garden", "Charles Barbin", "val"),
    _mate("GreenMeadow", "Timothy Schellhase; Lapo Calamandrei", "train"),
    _mate("LadyBird", "Charles Barbin", "test"),
    _mate("RainDrops", "blackcombwhistler07", "val"),
    _mate("Storm", "Sergey Nazarov", "train"),
    _mate("TwoWings", "Charles Barbin; Hylke Bons", "train"),
    _mate("Wood", "Jean-François Fortin Tam", "train"),
    _mate("YellowFlower", "Charles Barbin", "test"),
    _lomiri("bridge", "16.04", "Bridge_by_Sander_Klootwijk.jpg", "Sander Klootwijk", "CC-BY-SA-4.0", "train"),
    _lomiri("dragonfly", "16.04", "Dragonfly_by_Bolly.jpg", "Bolly", "CC-BY-SA-4.0", "train"),
    _lomiri("fig_bowl", "16.04", "Picture_0B_by_freespace.jpg", _FS, "CC-BY-4.0", "test"),
    _lomiri("brushes", "16.04", "Picture_1A_by_freespace.jpg", _FS, "CC-BY-4.0", "train"),
    _lomiri("wine", "16.04", "Wine_by_Jakkub_Mede.jpg", "Jakub Mede", "CC-BY-4.0", "val"),
    _lomiri("aitzgorri", "16.04", "aitzgorri_by_Aitzol_Berasategi.jpg", _AB, "CC-BY-4.0", "train"),
    _lomiri("free", "16.04", "free_by_Peter_Nerlich.jpg", "Peter Nerlich", "CC-BY-SA-4.0", "train"),
    _lomiri("friends", "16.04", "friends_by_Aitzol_Berasategi.jpg", _AB, "CC-BY-4.0", "test"),
    _lomiri("greentock", "16.04", "greentock_by_Peter_Nerlich.jpg", "Peter Nerlich", "CC-BY-SA-4.0", "train"),
    _lomiri("life", "16.04", "life_by_Aitzol_Berasategi.jpg", _AB, "CC-BY-4.0", "test"),
    _lomiri("picosdeeuropa", "16.04", "picosdeeuropa_by_Aitzol_Berasategi.jpg", _AB, "CC-BY-4.0", "test"),
    _lomiri(
        "seeding", "16.04", "seeding_by_Clements_Engelhardt.jpg", "Clemens Engelhardt", "CC0-1.0", "train"
    ),
    _lomiri("sunset", "16.04", "sunset_by_Aitzol_Berasategi.jpg", _AB, "CC-BY-4.0", "train"),
    _lomiri("kleiber", "20.04", "Kleiber_by_Lukas_Baubkus.jpg", "Lukas Baubkus", "CC-BY-SA-3.0", "val"),
    _lxqt("flowers", "flowers.png", "train"),
    _lxqt("fog", "fog.jpg", "val"),
    _lxqt("after_the_rain", "after-the-rain.jpg", "test"),
    _lxqt("valendas", "Valendas.png", "train", credited=False),
    _lxqt("appleflower", "appleflower.png", "train"),
    _lxqt("cloud", "cloud.png", "train", credited=False),
    _lxqt("drop", "drop.png", "train"),
    _lxqt("not_windows", "this-is-not-windows.jpg", "train"),
    _lxqt("butterfly", "butterfly.png", "train"),
    _lxqt("beam", "beam.png", "train"),
)

# ------------------------------------------------------------------------------ stamps

_STAMPS = "/usr/share/tuxpaint/stamps/"
_STAMP_AUTHOR = "Bill Kendrick and the Tux Paint stamp contributors"
_STAMP_LICENCE = "GPL-2.0-only"  # copyright file: "Files: * ... License: GPL-2"
# Folders of letters, symbols, flags, road signs and cartoons: never photographs.
_STAMP_SKIP_PARTS = ("cartoon", "alphabets", "symbols/", "flags", "roadsigns")
# Photographs have many colours: at least this many distinct colours (6 bits per channel) among
# the opaque pixels of a 128-px thumbnail. Chosen by eye on contact sheets of all 412 candidates.
_STAMP_MIN_COLOURS = 300
# Passed the colour rule but are drawings, renders, clip art or mirrored/duplicate copies
# (judged on contact sheets).
_STAMP_REJECT = frozenset(
    """
    animals/fish/bluegroper.png animals/fish/butterflyfish.png animals/fish/clownfish.png
    animals/fish/coraltrout.png animals/fish/dolphinfish.png animals/fish/moonwrasse.png
    animals/fish/stripedfish.png animals/mammals/aquatic/dolphin.png animals/mammals/aquatic/orca.png
    animals/mammals/aquatic/whale.png clothes/button.png clothes/hats/feathered_hat.png
    clothes/hats/propeller_hat.png food/pizza.png household/key.png household/rubberduck.png
    household/tools/measuring_tape_mirror.png military/ammunition/old_naval_shell.png
    military/vehicles/bradley_mirror.png military/vehicles/ww2_german_gun.png people/body_parts/eye.png
    people/fireman200b.png people/fireman240a.png plants/trees/holly_leaves.png seasonal/christmas/Santa.png
    seasonal/christmas/tree.png seasonal/easter/bluebird.png seasonal/easter/bunny-egg.png
    seasonal/easter/bunny.png seasonal/easter/butterfly.png seasonal/easter/chick-hatched.png
    seasonal/easter/chick-in-egg.png seasonal/easter/chick.png seasonal/easter/daffodil.png
    seasonal/easter/wrapped_chocolate_easter_egg.png seasonal/easter/wrapped_chocolate_easter_egg_2.png
    seasonal/halloween/jackolantern_mean.png seasonal/hanukkah/dreydl-shin.png
    seasonal/hanukkah/dreydl-shin_mirror.png seasonal/newyears/fireworks2.png space/planets/2_venus.png
    space/planets/4_mars.png space/planets/5_jupiter.png space/planets/6_saturn.png
    space/planets/7_uranus.png space/planets/8_neptune.png space/planets/9_pluto.png sports/soccer.png
    sports/tennis_ball.png vehicles/auto/sedan.png vehicles/auto/truck.png
    vehicles/construction/dumper_mirror.png vehicles/flight/balloon360.png vehicles/ship/chineseJunk.png
    """.split()
)
# Photographs with fewer colours than the rule asks (small or low-contrast cut-outs). (The
# shrimp photo also has few colours but is semi-transparent all over: left out.)
_STAMP_ADD = frozenset(
    {
        "household/arttools/scissors_small_closed.png",
        "plants/flowers/flower9.png",
        "space/moon/moon_full.png",
    }
)


def stamp_colour_count(img: Image.Image) -> int:
    """Distinct colours (6 bits per channel) among opaque pixels of a 128-px RGBA thumbnail."""
    t = img.convert("RGBA")
    t.thumbnail((128, 128), Image.LANCZOS)
    a = np.asarray(t)  # (h, w, 4) uint8
    rgb = a[..., :3][a[..., 3] > 200]  # (n, 3)
    return len(np.unique(rgb // 4, axis=0)) if len(rgb) else 0


def select_stamps(stamp_root: Path) -> list[str]:
    """Paths (relative to the stamps folder) of the photographic PNG stamps, sorted."""
    chosen = []
    for p in sorted(stamp_root.rglob("*.png")):
        rel = p.relative_to(stamp_root).as_posix()
        if rel in _STAMP_ADD:
            chosen.append(rel)
        elif any(s in rel for s in _STAMP_SKIP_PARTS) or rel in _STAMP_REJECT:
            continue
        elif stamp_colour_count(Image.open(p)) >= _STAMP_MIN_COLOURS:
            chosen.append(rel)
    return chosen


# ------------------------------------------------------------------------------ image processing


def shrink_scene(img: Image.Image) -> Image.Image:
    """RGB, upright (EXIF orientation applied), shorter side SCENE_SHORT_SIDE (LANCZOS)."""
    img = ImageOps.exif_transpose(img).convert("RGB")
    s = SCENE_SHORT_SIDE / min(img.size)
    if s < 1:
        img = img.resize((round(img.width * s), round(img.height * s)), Image.LANCZOS)
    return img


def shrink_stamp(img: Image.Image) -> Image.Image:
    """RGBA cropped to its opaque part, longest side at most STAMP_LONG_SIDE, invisible RGB zeroed."""
    img = img.convert("RGBA")
    box = img.getchannel("A").point(lambda v: 255 if v > 0 else 0).getbbox()
    if box is None:
        raise ValueError("stamp is fully transparent")
    img = img.crop(box)
    img.thumbnail((STAMP_LONG_SIDE, STAMP_LONG_SIDE), Image.LANCZOS)  # premultiplied inside Pillow
    a = np.array(img)  # (h, w, 4)
    a[a[..., 3] == 0, :3] = 0  # smaller PNG, same picture
    return Image.fromarray(a, "RGBA")


def _encode(img: Image.Image, fmt: str, **params) -> bytes:
    """The image's bytes with no metadata (Pillow copies comment/ICC from ``info`` unless cleared)."""
    img = img.copy()
    img.info = {}  # every source is sRGB or untagged, so dropping ICC profiles changes no colour
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def _jpeg_bytes(img: Image.Image) -> bytes:
    return _encode(img, "JPEG", quality=90, optimize=True)


def _png_bytes(img: Image.Image) -> bytes:
    return _encode(img, "PNG", optimize=True)


# ------------------------------------------------------------------------------ packages and licences


def _extract(debs: Path, work: Path) -> dict[str, Path]:
    """Unpack each needed .deb into ``work/<package>``; check its version against PACKAGES."""
    roots = {}
    for pkg, version in PACKAGES.items():
        if pkg in FORBIDDEN_PACKAGES:
            raise ValueError(f"{pkg} is reserved as an outside test set")
        found = sorted(debs.glob(f"{pkg}_*.deb"))
        if len(found) != 1:
            raise FileNotFoundError(f"{debs}: need exactly one {pkg}_*.deb, found {len(found)}")
        got = subprocess.run(
            ["dpkg-deb", "-f", str(found[0]), "Version"], check=True, capture_output=True, text=True
        ).stdout.strip()
        if got != version:
            raise ValueError(f"{found[0]}: version {got}, the set was made from {version}")
        roots[pkg] = work / pkg
        subprocess.run(["dpkg-deb", "-x", str(found[0]), str(roots[pkg])], check=True)
    return roots


def _copyright_text(root: Path, pkg: str) -> str:
    text = (root / f"usr/share/doc/{pkg}/copyright").read_text(encoding="utf-8")
    if pkg == "lxqt-themes":
        text += (root / _LXQT.lstrip("/") / "License").read_text(encoding="utf-8")
    return text


def debian_licence_paragraph(copyright_text: str, name: str) -> str:
    """The full text of stand-alone ``License: <name>`` paragraph of a DEP-5 copyright file."""
    lines = copyright_text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == f"License: {name}" and i + 1 < len(lines) and lines[i + 1].startswith(" "):
            body = []
            for cont in lines[i + 1 :]:
                if not cont.startswith(" "):
                    break
                body.append("" if cont.strip() == "." else cont[1:])
            return "\n".join(body).rstrip() + "\n"
    raise ValueError(f"no stand-alone 'License: {name}' paragraph with text")


def _write_licences(roots: dict[str, Path], out: Path) -> None:
    lic = out / "LICENSES"
    lic.mkdir()
    lomiri = _copyright_text(roots["lomiri-wallpapers-16.04"], "lomiri-wallpapers-16.04")
    texts = {
        "GPL-2.0.txt": Path("/usr/share/common-licenses/GPL-2").read_text(encoding="utf-8"),
        "CC0-1.0.txt": Path("/usr/share/common-licenses/CC0-1.0").read_text(encoding="utf-8"),
        "CC-BY-4.0.txt": debian_licence_paragraph(lomiri, "CC-BY-4.0"),
        "CC-BY-SA-3.0.txt": debian_licence_paragraph(lomiri, "CC-BY-SA-3.0"),
        "CC-BY-SA-4.0.txt": debian_licence_paragraph(lomiri, "CC-BY-SA-4.0"),
    }
    if set(texts) != set(LICENSE_FILES.values()):
        raise AssertionError("LICENSE_FILES and the texts written here disagree")
    for fname, text in texts.items():
        (lic / fname).write_text(text, encoding="utf-8")


# ------------------------------------------------------------------------------ build

_BUILT = ("scenes", "stamps", "LICENSES", "MANIFEST.csv")  # README.md is written by hand


def build(debs: Path, out: Path) -> list[dict[str, str]]:
    """Write the photo set into ``out`` from the .deb files in ``debs``; nothing of it may exist yet.

    Returns:
        The manifest rows, in file order.
    """
    for part in _BUILT:
        if (out / part).exists():
            raise FileExistsError(f"{out / part} exists; pass --replace to rebuild")
    rows: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        roots = _extract(debs, Path(tmp))
        (out / "scenes").mkdir(parents=True)  # out may exist and hold README.md
        (out / "stamps").mkdir()
        for sc in SCENES:
            src = roots[sc.package] / sc.original_file.lstrip("/")
            if Path(sc.original_file).name not in _copyright_text(roots[sc.package], sc.package):
                if sc.package != "lxqt-themes":  # lxqt's copyright covers wallpapers/ as a whole
                    raise ValueError(f"{sc.original_file}: not named in {sc.package}'s copyright file")
            data = _jpeg_bytes(shrink_scene(Image.open(src)))
            rows.append(_row(sc.name, f"scenes/{sc.name}.jpg", "scene", sc.split, sc, data, out))
        stamp_root = roots["tuxpaint-stamps-default"] / _STAMPS.lstrip("/")
        for rel in select_stamps(stamp_root):
            name = "stamp_" + rel[: -len(".png")].replace("/", "_").replace("-", "_").lower()
            src = PhotoSource(
                name, "tuxpaint-stamps-default", _STAMPS + rel, _STAMP_AUTHOR, _STAMP_LICENCE, "train"
            )
            data = _png_bytes(shrink_stamp(Image.open(stamp_root / rel)))
            rows.append(_row(name, f"stamps/{name}.png", "stamp", "train", src, data, out))
        _write_licences(roots, out)
    with open(out / "MANIFEST.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(MANIFEST_COLUMNS), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return rows


def _row(name: str, file: str, kind: str, split: str, src: PhotoSource, data: bytes, out: Path) -> dict:
    (out / file).write_bytes(data)
    return {
        "name": name,
        "file": file,
        "kind": kind,
        "split": split,
        "source_package": src.package,
        "package_version": PACKAGES[src.package],
        "original_file": src.original_file,
        "author": src.author,
        "licence": src.licence,
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("debs", type=Path, help="folder holding the .deb files of PACKAGES")
    ap.add_argument("out", type=Path, help="photo-set folder to write")
    ap.add_argument("--replace", action="store_true", help="delete what an earlier build wrote there")
    args = ap.parse_args(argv)
    if args.replace:
        for part in _BUILT:
            target = args.out / part
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    rows = build(args.debs, args.out)
    n_scene = sum(r["kind"] == "scene" for r in rows)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"{args.out}: {n_scene} scenes, {len(rows) - n_scene} stamps, {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()

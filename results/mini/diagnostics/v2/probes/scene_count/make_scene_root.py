"""A filtered train root for the scene-count probe.

Usage: python make_scene_root.py SRC DST K N. DST's train list holds the train composites of
every K-th scene of SRC (scenes sorted by name; the two motorcycle views are one scene), N of them
by a seeded choice; its val/test lists and composites.csv are copies of SRC's, its subset folders
links to SRC's.
"""

import csv
import random
import shutil
import sys
from pathlib import Path


def scene(photo: str) -> str:
    """The scene of a source photo: the two motorcycle views are one."""
    return "motorcycle" if photo.startswith("motorcycle") else photo


src, dst, k, n = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
with open(src / "composites.csv", newline="") as f:
    rows = [r for r in csv.DictReader(f) if r["split"] == "train"]
scenes = sorted({scene(r["photo"]) for r in rows})
keep = set(scenes[0::k])
names = {r["name"] for r in rows if scene(r["photo"]) in keep}
entries = [e for e in (src / "IHD_train.txt").read_text().split() if Path(e).stem in names]
entries = sorted(random.Random(0).sample(entries, min(n, len(entries))))
dst.mkdir(parents=True, exist_ok=True)
for sub in ("HAdobe5k", "HCOCO", "HFlickr", "Hday2night"):
    (dst / sub).unlink(missing_ok=True)
    (dst / sub).symlink_to((src / sub).resolve())
(dst / "IHD_train.txt").write_text("\n".join(entries) + "\n")
for name in ("IHD_val.txt", "IHD_test.txt", "composites.csv"):
    shutil.copy(src / name, dst / name)
print(len(scenes), "scenes ->", len(keep), sorted(keep), "|", len(names), "composites ->", len(entries))

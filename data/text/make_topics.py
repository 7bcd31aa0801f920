"""Write data/text/topics.json: balanced topic classification from Debian's `fortunes` files.

Eight topic files of the package `fortunes` (its fortunes are sorted by topic: natural labels),
each fortune of 20 to 400 characters kept (short enough for a 64-token sequence), duplicates
dropped, 150 drawn per topic with a seeded generator, 120 for training and 30 for testing.
Needs the package installed (`apt-get install fortunes`); the executor reads the committed JSON,
never /usr/share. Run from the repository root:

    python3 data/text/make_topics.py
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
from pathlib import Path

SOURCE = Path("/usr/share/games/fortunes")
OUT = Path(__file__).resolve().parent / "topics.json"
TOPICS = ("computers", "politics", "science", "work", "art", "education", "food", "law")
PER_CLASS, TEST = 150, 30
MIN_CHARS, MAX_CHARS = 20, 400
SEED = 0


def fortunes(topic: str) -> list[str]:
    text = (SOURCE / topic).read_text(encoding="utf-8", errors="replace")
    pieces = [p.strip() for p in text.split("\n%\n")]
    kept = [p for p in dict.fromkeys(pieces) if MIN_CHARS <= len(p) <= MAX_CHARS]
    return sorted(kept)


def main() -> None:
    rng = random.Random(SEED)
    train, test, files = [], [], {}
    for label, topic in enumerate(TOPICS):
        pool = fortunes(topic)
        if len(pool) < PER_CLASS:
            raise SystemExit(f"{topic}: {len(pool)} fortunes of {MIN_CHARS}-{MAX_CHARS} "
                             f"characters, need {PER_CLASS}")
        chosen = rng.sample(pool, PER_CLASS)
        train += [[t, label] for t in chosen[TEST:]]
        test += [[t, label] for t in chosen[:TEST]]
        raw = (SOURCE / topic).read_bytes()
        files[topic] = {"fortunes_kept": len(pool), "sha256": hashlib.sha256(raw).hexdigest()}
    version = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "fortunes"],
                             capture_output=True, text=True).stdout.strip()
    data = {
        "about": "topic classification: which fortunes file a fortune comes from",
        "source": {"package": "fortunes (Debian, source package fortune-mod)",
                   "version": version, "files": files,
                   "licence": "BSD (University of California), see COPYRIGHT.fortune-mod"},
        "selection": {"chars": [MIN_CHARS, MAX_CHARS], "per_class": PER_CLASS, "test": TEST,
                      "seed": SEED, "script": "data/text/make_topics.py"},
        "classes": list(TOPICS),
        "train": train,
        "test": test,
    }
    OUT.write_text(json.dumps(data, indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT}: {len(train)} train, {len(test)} test, {len(TOPICS)} classes")


if __name__ == "__main__":
    main()

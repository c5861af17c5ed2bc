"""One shared results file: every benchmark's full run merges its figures into
``bench/results/latest.json`` under its own name (with the time it was recorded)."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

LATEST = Path(__file__).with_name("results") / "latest.json"


def record(name: str, figures: Any) -> Path:
    """Merge ``{name: {"recorded_at": ..., "figures": figures}}`` into the shared file."""
    LATEST.parent.mkdir(exist_ok=True)
    try:
        current = json.loads(LATEST.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        current = {}
    current[name] = {
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "figures": figures,
    }
    # write-then-rename, so a reader (or a concurrent run) never sees half a file
    fd, tmp = tempfile.mkstemp(dir=LATEST.parent, prefix=".latest-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(current, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, LATEST)
    return LATEST

"""``python -m enrichflow``: the same command line as ``enrichflow``."""

from __future__ import annotations

from enrichflow.cli import main

if __name__ == "__main__":
    main()

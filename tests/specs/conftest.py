"""tests/specs: the spec readers, writers, loader and their CLI commands."""

from __future__ import annotations

import sys
from pathlib import Path

# the helpers module sits next to the tests; make it importable whatever the import mode
sys.path.insert(0, str(Path(__file__).resolve().parent))

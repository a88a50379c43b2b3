"""The console line every command writes while it works: `HH:MM:SS text` on stderr, flushed
at once (docs/operations.md, "What the console shows"). Standard library only: `coop.cli`
uses it for its first line before anything heavy is imported."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

_guard = threading.Lock()


def console_line(text: str, stream: TextIO | None = None) -> bool:
    """Write `HH:MM:SS text` on stderr (or `stream`) and flush; True when written. A closed or
    broken stream never fails the command."""
    out = stream or sys.stderr
    with _guard:  # lines from worker threads never interleave
        try:
            out.write(f"{time.strftime('%H:%M:%S')} {text}\n")
            out.flush()
        except (OSError, ValueError, AttributeError):
            return False
    return True

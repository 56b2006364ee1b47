"""Settings of the uvicorn that the browser tests start: the test settings, plus static files
collected for this run (DEBUG is off, so WhiteNoise serves them from STATIC_ROOT) and live
HTML rendered off the request thread, as in production."""

from __future__ import annotations

import os
from pathlib import Path

from config.settings.test import *  # noqa: F403

STATIC_ROOT = Path(os.environ["E2E_STATIC_ROOT"])
LIVE_RENDER_INLINE = False

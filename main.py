"""Entry point for python-for-android (buildozer.spec): runs the Fieldcase field client."""

from __future__ import annotations

import sys

from mobile.__main__ import main

if __name__ == "__main__":
    sys.exit(main([]))

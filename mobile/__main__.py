"""``python -m mobile [--server URL] [--data-dir DIR]``: start the Fieldcase field client."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mobile", description=__doc__)
    parser.add_argument("--server", help="the server address, e.g. http://127.0.0.1:5000")
    parser.add_argument(
        "--data-dir", type=Path, help="where the local store lives (default: the app's data folder)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    from mobile.app import FieldcaseApp
    from mobile.fonts import FontNotFound

    try:
        FieldcaseApp(data_dir=arguments.data_dir, server_url=arguments.server).run()
    except FontNotFound as error:
        print(error, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m app.models build [--out DIR] [--force] [--only NAME ...]`"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from app.models import BUILDERS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.models")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build the offline models that are missing")
    build.add_argument("--out", type=Path, default=Path("models"), help="output folder")
    build.add_argument("--force", action="store_true", help="rebuild even if present")
    build.add_argument("--only", nargs="*", choices=sorted(BUILDERS), help="build just these")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in args.only or sorted(BUILDERS):
        builder = BUILDERS[name]
        target = args.out / builder.relative_dir
        if builder.built(args.out) and not args.force:
            print(f"{name}: present at {target}")
            continue
        builder.build(target, args.out)
        print(f"{name}: built at {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m verifier RECORD_DIR_OR_URL [...]`: the same as `shailoo verify`, for a
machine that only has this package and its two dependencies (election/, crypto/)."""

from __future__ import annotations

import argparse
import sys

from verifier import cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verifier")
    sub = parser.add_subparsers(dest="command", required=True)
    cli.register(sub)
    args = parser.parse_args(["verify", *(sys.argv[1:] if argv is None else argv)])
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())

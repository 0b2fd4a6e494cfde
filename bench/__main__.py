"""`python -m bench [NAME ...]`: run every bench/bench_*.py (or those named) and print one table."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback

import bench
from bench import Figure, format_summary, format_table, one_core


def modules() -> list[str]:
    """Names of the bench modules, e.g. ["face"] for bench/bench_face.py."""
    return sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules(bench.__path__)
        if m.name.startswith("bench_")
    )


def main(argv: list[str] | None = None) -> int:
    names = list(sys.argv[1:] if argv is None else argv) or modules()
    unknown = sorted(set(names) - set(modules()))
    if unknown:
        print(
            f"no such bench: {', '.join(unknown)} (have: {', '.join(modules())})", file=sys.stderr
        )
        return 2
    where = one_core()
    print(f"benchmarks on one core ({where}; ingest, site and storm use every core), "
          f"Python {sys.version.split()[0]}", flush=True)  # fmt: skip
    rows: list[tuple[str, Figure]] = []
    failed: list[str] = []
    began = time.perf_counter()
    for name in names:
        start = time.perf_counter()
        print(f"running bench_{name} ...", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"bench.bench_{name}")
            rows.extend((name, f) for f in module.main())
        except Exception:  # one broken bench must not hide the others' figures
            traceback.print_exc()
            failed.append(name)
        print(f"  bench_{name}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    print(format_table(rows))
    print("\nThe issue's figures (issue 8), each with its baseline from the same run and how it "
          "was measured:\n")  # fmt: skip
    print(format_summary(rows, ran=names, failed=failed))
    print(f"all benches: {time.perf_counter() - began:.0f} s", file=sys.stderr)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

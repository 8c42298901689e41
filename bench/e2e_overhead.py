"""Overhead of `stagebot e2e run` against bare `pytest` on the same generated 500-test suite.

Target (issue 4): at most 10 % + 1 s of wall time. Repetitions alternate, so drift on a shared machine hits both
sides alike; the median of each is compared. Prints figures only.

    python bench/e2e_overhead.py [--tests 500] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def write_suite(folder: Path, tests: int) -> None:
    """Write a suite of `tests` small passing tests over 10 files, with its own pytest.ini."""
    (folder / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    per_file = tests // 10
    for f in range(10):
        body = "\n\n".join(f"def test_{f}_{i}():\n    assert sum(range({i % 50})) >= 0" for i in range(per_file))
        (folder / f"test_gen_{f}.py").write_text(body + "\n", encoding="utf-8")


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{command[:4]} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stagebot-bench-") as tmp:
        root = Path(tmp)
        suite = root / "suite"
        suite.mkdir()
        write_suite(suite, args.tests)
        config = root / "stagebot.toml"
        config.write_text(
            '[services.api]\nkind = "tcp"\nurl = "tcp://127.0.0.1:9"\n\n'
            f'[tiers.bench]\npaths = ["."]\nroot = "{suite}"\n',
            encoding="utf-8",
        )
        env = {**os.environ, "STAGEBOT_HOME": str(root / "home"), "PYTHONDONTWRITEBYTECODE": "1"}
        bare = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "."]
        stagebot = [sys.executable, "-m", "bot", "e2e", "--config", str(config), "run", "bench", "--json"]
        env_bench = {**env, "PYTEST_ADDOPTS": "-p no:cacheprovider"}
        timed(bare, suite, env)  # warm the file cache and the store's first migration
        timed(stagebot, suite, env_bench)
        bare_s, ours_s, startup_s = [], [], []
        for _ in range(args.repeats):
            bare_s.append(timed(bare, suite, env))
            ours_s.append(timed(stagebot, suite, env_bench))
            startup_s.append(timed([sys.executable, "-m", "bot", "--help"], suite, env))
    bare_med, ours_med = statistics.median(bare_s), statistics.median(ours_s)
    budget = bare_med * 1.10 + 1.0
    print(f"suite: {args.tests} tests, {args.repeats} alternating repetitions, python {sys.version.split()[0]}")
    print(f"bare pytest        median {bare_med:6.2f} s  (runs: {', '.join(f'{s:.2f}' for s in bare_s)})")
    print(f"stagebot e2e run   median {ours_med:6.2f} s  (runs: {', '.join(f'{s:.2f}' for s in ours_s)})")
    print(f"of which: `stagebot --help` alone (CLI imports) median {statistics.median(startup_s):.2f} s")
    print(f"ratio              {ours_med / bare_med:6.2f} x   overhead {ours_med - bare_med:+.2f} s")
    print(f"target             <= {budget:.2f} s (bare x 1.10 + 1 s): {'met' if ours_med <= budget else 'NOT met'}")


if __name__ == "__main__":
    main()

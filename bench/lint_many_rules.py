#!/usr/bin/env python3
"""Time `flow lint` and the compiler's checks on Flowfiles of many rules (the output-clash check).

Usage: python bench/lint_many_rules.py [N ...]     (default: 500 1000 2000 4000)

Each Flowfile has N rules `r<i>(date, region)` writing `data/r<i>/{region}/{date}.tsv`, each
requiring the one before, and a target on the last: every rule must be compared with every other
for outputs that can name the same file (E203). Before the clash check was indexed by the
patterns' literal prefixes and suffixes, 2,000 rules took about 16 s to lint; the check should
grow close to linearly. Prints wall seconds of check() in-process and of `flow lint` as a user
runs it (a subprocess: start-up, parse, checks, lint rules).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from flow.compiler.checks import check  # noqa: E402
from flow.compiler.parser import parse  # noqa: E402


def flowfile(count: int) -> str:
    rules = []
    for i in range(count):
        requires = f"    requires: r{i - 1}(date, region)\n" if i else ""
        rules.append(f'rule r{i}(date: date, region: str):\n{requires}    output: "data/r{i}/{{region}}/{{date}}.tsv"\n'
                     f"    python: steps.write\n")
    rules.append(f'target last: r{count - 1}(2012-06-01, "eu")\n')
    return "\n".join(rules)


def main(sizes: list) -> None:
    print(f"{'rules':>6} {'check() s':>10} {'flow lint s':>12}")
    for count in sizes:
        text = flowfile(count)
        parsed = parse(text)
        started = time.perf_counter()
        check(parsed, text)
        in_process = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as directory:
            with open(os.path.join(directory, "Flowfile"), "w") as handle:
                handle.write(text)
            with open(os.path.join(directory, "steps.py"), "w") as handle:
                handle.write("def write(date, region, output):\n    open(output, 'w').write(region)\n")
            started = time.perf_counter()
            result = subprocess.run([sys.executable, "-m", "flow.runtime.cli", "lint"], cwd=directory,
                                    capture_output=True, text=True, env=dict(os.environ, FLOW_CACHE_DIR=directory))
            command = time.perf_counter() - started
        status = "" if result.returncode == 0 else f"  (exit {result.returncode}: {result.stdout[-200:]})"
        print(f"{count:>6} {in_process:>10.2f} {command:>12.2f}{status}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [500, 1000, 2000, 4000])

"""The benchmark's one action: write the harness's fixed 3-line file, read nothing.

The Flowfiles written by bench/workload_to_flowfile.py name this module (`flow_actions.write_fixed`);
bench/flow.sh copies it next to each generated Flowfile, whose directory flow puts on sys.path.
`burn` is the CPU-bound action of bench/parallel.py, `wait_then_write` the I/O-bound one of bench/coordinator.py.
"""

from __future__ import annotations

# Must equal CONTENT in the shared harness's gen_workload.py (workload_to_flowfile.py checks it).
CONTENT = "artist_a\t3\nartist_b\t2\nartist_c\t1\n"


def write_fixed(output: str) -> None:
    """Write the fixed content to `output` (flow hands a temporary path and renames it when done)."""
    with open(output, "w", encoding="utf-8") as handle:
        handle.write(CONTENT)


def burn(output: str) -> None:
    """Spin in pure Python for FLOW_BURN_SECONDS (default 1) of CPU, the GIL held throughout.

    Writes `start end pid checksum`, from which bench/parallel.py reads how many ran at once.
    """
    import os
    import time

    seconds = float(os.environ.get("FLOW_BURN_SECONDS", "1"))
    started = time.time()
    deadline = time.process_time() + seconds
    x = 0
    while time.process_time() < deadline:
        for i in range(10_000):
            x += i * i
    with open(output, "w", encoding="utf-8") as handle:
        handle.write(f"{started:.6f} {time.time():.6f} {os.getpid()} {x}\n")  # when and where it ran


def wait_then_write(output: str) -> None:
    """Sleep FLOW_WAIT_SECONDS (default 0.05) as an I/O-bound task would, then write the fixed file."""
    import os
    import time

    time.sleep(float(os.environ.get("FLOW_WAIT_SECONDS", "0.05")))
    write_fixed(output)

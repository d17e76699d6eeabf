"""Helpers for tests that watch processes."""


def alive(pid: int) -> bool:
    """True while the process runs; a killed child whose parent died may linger as a zombie until
    init reaps it, and that does not count as alive."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False

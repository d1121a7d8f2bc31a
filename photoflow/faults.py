"""Named crash points: where a test kills the process (SIGKILL, as a power cut or the OOM killer would)
to prove that an import is durable at each of its steps (tests/test_faults.py).

`PHOTOFLOW_CRASH_AT=<name>` makes the first `crash_point(<name>)` reached kill its process at once: no
clean-up, no `finally`, no flush. It is a test hook, not configuration, so it is read here rather than
through `Config`; spawned import workers inherit it with the rest of the environment, so a point that
runs in a worker (everything in `Pipeline.prepare`) kills that worker, and one in `finalise` kills the
process writing the rows. Unset (always, in production) a point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "PHOTOFLOW_CRASH_AT"

# Every point, in the order an import reaches them; the test runs one crash per name and checks that
# each name is used somewhere in photoflow/.
CRASH_POINTS = (
    "staged",  # the bytes are in tmp/, not yet fsynced (storage.stage, stage_file)
    "fsynced",  # the staged file is fsynced, under its temporary name (storage.stage, stage_file)
    "derivatives",  # derivatives under their final names, the original still in tmp/ (write_derivatives)
    "renamed",  # the original under its content address, no row yet (Datastore.commit)
    "in-transaction",  # the rows written inside the open transaction, not committed (importer.finalise)
    "committed",  # the rows committed, the clean-up and the summary not done (importer.finalise)
)


def crash_point(name: str) -> None:
    """Kill this process with SIGKILL if PHOTOFLOW_CRASH_AT names this point."""
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)

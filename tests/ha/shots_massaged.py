#!/usr/bin/env python3
"""The harness's browser page steps (shots.py) adapted to massaged, then massaged's own steps.

.ci/browser runs the harness's unchanged check.sh from a copy whose shots.py is this file, so
check.sh starts HA and the daemon, this runs the harness's steps and then browser_steps.py
while everything is still up, and check.sh stops it all. Two adaptations of the harness's steps:
  - the state sensor shows human names ("Idle"), the harness waits for the wire names ("idle");
  - the first entity table waits (up to 20 s) for the entities' retained availability, which
    HA reads just after it creates them from discovery.
Environment: HA_BROWSER_ORIGINAL (the harness's browser/ folder), MASSAGED_TESTS_HA (this folder).
"""

import os
import sys
import time

sys.path.insert(0, os.environ["HA_BROWSER_ORIGINAL"])
sys.path.insert(0, os.environ["MASSAGED_TESTS_HA"])
import shots  # noqa: E402  (the harness's page steps)

HUMAN = {"idle": "Idle", "running": "Running", "paused": "Paused", "fault": "Fault"}
_wait_state, _states_of = shots.wait_state, shots.states_of
_first_table = [True]


def wait_state(url, token, entity_id, want, timeout):
    if entity_id.startswith("sensor.") and entity_id.endswith("_state"):
        want = HUMAN.get(want, want)
    return _wait_state(url, token, entity_id, want, timeout)


def states_of(url, token, entity_ids):
    sts = _states_of(url, token, entity_ids)
    if _first_table[0] and len(entity_ids) > 1:
        _first_table[0] = False
        end = time.time() + 20
        while time.time() < end and any((s or {}).get("state") in (None, "unavailable") for s in sts.values()):
            time.sleep(0.25)
            sts = _states_of(url, token, entity_ids)
    return sts


shots.wait_state, shots.states_of = wait_state, states_of


def arg(name):
    return sys.argv[sys.argv.index(name) + 1]


if __name__ == "__main__":
    base = shots.main()
    import browser_steps  # noqa: E402
    sys.argv = [sys.argv[0], "--state", arg("--state"), "--harness", arg("--probe"), "--out", arg("--out")]
    steps = browser_steps.main()
    sys.exit(max(base, steps))

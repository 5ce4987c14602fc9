#!/usr/bin/env python3
"""Checks a running massaged against a real Home Assistant (the harness in ../shared/ha).

Driven by .ci/ha, which starts the harness and the daemon. Each phase polls Home Assistant
through the harness's probe.py (its documented JSON command line) with a timeout; nothing
waits for a fixed time. Prints one `ok` line per check and exits non-zero on the first
failure, naming what was expected and what Home Assistant showed.

    check.py registry  --out ENTITIES_JSON       device + the 24 contract entities
    check.py session   --routine ID --frames CSV select_option + Start, states follow; Stop
    check.py reconnect --daemon-log FILE         HA reconnects; daemon republishes; available
Common options: --probe PATH --device-id ID --broker-port N --routines TOML.
Standard library only (Python >= 3.11 for tomllib).
"""

import argparse
import datetime
import json
import pathlib
import queue
import re
import subprocess
import sys
import threading
import time
import tomllib

# DESIGN.md section 3: key -> (platform, device_class, entity_category).
CONTRACT = {
    "routine": ("select", None, None),
    "intensity": ("number", None, None),
    "minutes": ("number", None, None),
    "heat": ("switch", None, None),
    "start": ("button", None, None),
    "stop": ("button", None, None),
    "pause": ("button", None, None),
    "resume": ("button", None, None),
    "skip": ("button", None, None),
    "state": ("sensor", "enum", None),
    "ends_at": ("sensor", "timestamp", None),
    "step": ("sensor", None, None),
    "sessions_total": ("sensor", None, "diagnostic"),
    "massage_time_total": ("sensor", None, "diagnostic"),
    "running": ("binary_sensor", "running", None),
    "problem": ("binary_sensor", "problem", "diagnostic"),
    "relaxer_date": ("text", None, "config"),
    "session": ("event", None, None),
    "remaining": ("sensor", "duration", None),
    "progress": ("sensor", None, None),
    "guard": ("binary_sensor", None, None),
    "start_anyway": ("button", None, None),
    "last_message": ("sensor", None, None),
    "picture": ("image", None, None),
}
UNKNOWN_STATES = ("unknown", "unavailable", None)


class CheckFailed(Exception):
    """A check did not hold; the message says what was expected and what was seen."""


def ok(message):
    print(f"ok   {message}", flush=True)


class Probe:
    """The harness's probe.py, called as a program (its JSON output is the interface)."""

    def __init__(self, path):
        self.path = path

    def run(self, *args, check=True):
        done = subprocess.run([sys.executable, self.path, *args], capture_output=True,
                              text=True, timeout=60)
        if check and done.returncode != 0:
            raise CheckFailed(f"probe.py {' '.join(args)} exited {done.returncode}: "
                              f"{done.stderr.strip() or done.stdout.strip()}")
        return done

    def json(self, *args):
        return json.loads(self.run(*args).stdout)

    def entities(self):
        return self.json("entities")

    def devices(self):
        return self.json("devices")

    def call(self, domain, service, data):
        self.run("call", domain, service, json.dumps(data))

    def state(self, entity_id):
        done = self.run("state", entity_id, check=False)
        return json.loads(done.stdout) if done.returncode == 0 else None


def poll(what, fetch, accept, timeout):
    """Calls fetch() until accept(value) holds; returns the value or fails with the last one."""
    deadline = time.monotonic() + timeout
    value = None
    while True:
        value = fetch()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            raise CheckFailed(f"timeout after {timeout}s waiting for {what}; last seen: "
                              f"{json.dumps(value, default=str)[:1500]}")
        time.sleep(0.2)


def ours(entities, device_id):
    prefix = f"{device_id}_"
    return {e["unique_id"][len(prefix):]: e for e in entities
            if (e.get("unique_id") or "").startswith(prefix)}


def check_registry(args, probe):
    """(1) The device and every contract entity, with the right platforms."""
    # An entity is created before HA has read the retained availability: wait for both.
    mine = poll(f"all {len(CONTRACT)} entities in the entity registry, available",
                lambda: ours(probe.entities(), args.device_id),
                lambda m: set(CONTRACT) <= set(m)
                and all(e["state"] not in (None, "unavailable") for e in m.values()),
                args.timeout)
    extra = sorted(set(mine) - set(CONTRACT))
    if extra:
        raise CheckFailed(f"entities beyond the contract: {extra}")
    ok(f"{len(mine)} entities with unique_id {args.device_id}_<key>, no others")

    devices = [d for d in probe.devices()
               if any(args.device_id in ident for ident in (d.get("identifiers") or []))]
    if len(devices) != 1:
        raise CheckFailed(f"expected one device with identifier {args.device_id}, got {devices}")
    device = devices[0]
    # The software is the sw_version, not the manufacturer (config: [homeassistant]).
    if device.get("manufacturer") == "massaged" or not (device.get("sw_version") or "").startswith("massaged "):
        raise CheckFailed(f"device manufacturer/sw_version: {device}")
    if device.get("model") != "Scalp massage headrest":
        raise CheckFailed(f"device model {device.get('model')!r}, expected the default model")
    ok(f"device '{device['name']}' ({device.get('manufacturer')}, {device.get('model')}, "
       f"sw {device.get('sw_version')}) identifiers {device.get('identifiers')}")

    for key, (platform, device_class, category) in CONTRACT.items():
        entity = mine[key]
        domain = entity["entity_id"].split(".")[0]
        problems = []
        if domain != platform:
            problems.append(f"platform {domain}, expected {platform}")
        if entity["platform"] != "mqtt":
            problems.append(f"integration {entity['platform']}")
        if entity["device_id"] != device["id"]:
            problems.append("not attached to the device")
        if entity.get("entity_category") != category:
            problems.append(f"entity_category {entity.get('entity_category')}, expected {category}")
        seen_class = (entity.get("attributes") or {}).get("device_class")
        if device_class and seen_class != device_class:
            problems.append(f"device_class {seen_class}, expected {device_class}")
        if entity["state"] == "unavailable":
            problems.append("unavailable")
        if problems:
            raise CheckFailed(f"{entity['entity_id']} ({key}): {'; '.join(problems)}")
    ok("platforms, device classes and entity categories match DESIGN.md section 3")

    routine_options = (mine["routine"].get("attributes") or {}).get("options")
    names = [r["name"] for r in load_routines(args.routines)]
    if routine_options != names:
        raise CheckFailed(f"select options {routine_options}, expected {names}")
    ok(f"routine select offers the {len(names)} built-in routines by display name")

    ids = sorted(e["entity_id"] for e in mine.values())
    pathlib.Path(args.out).write_text(json.dumps(ids, indent=2) + "\n", encoding="utf-8")
    for key in sorted(mine):
        print(f"     {key:<20} {mine[key]['entity_id']:<45} {mine[key]['state']}")


def load_routines(path):
    with open(path, "rb") as f:
        return tomllib.load(f)["routines"]


def entity_ids(probe, device_id):
    return {key: e["entity_id"] for key, e in ours(probe.entities(), device_id).items()}


def frames(path):
    rows = pathlib.Path(path).read_text(encoding="utf-8").splitlines()[1:]
    return [[int(x) for x in row.split(",")[1:]] for row in rows if row]


def wait_states(probe, ids, expected, timeout, what):
    """Waits until every entity key in `expected` has a state accepted by its predicate."""
    def fetch():
        return {key: (probe.state(ids[key]) or {}).get("state") for key in expected}
    return poll(what, fetch, lambda s: all(expected[k](s[k]) for k in expected), timeout)


def check_session(args, probe):
    """(3) select_option + button.press start the routine; HA's states follow; Stop stops."""
    ids = entity_ids(probe, args.device_id)
    routine = next((r for r in load_routines(args.routines) if r["id"] == args.routine), None)
    if routine is None:
        raise CheckFailed(f"no routine {args.routine} in {args.routines}")
    name, first_label = routine["name"], routine["steps"][0]["label"]
    minutes = args.minutes

    probe.call("select", "select_option", {"entity_id": ids["routine"], "option": name})
    wait_states(probe, ids, {"routine": lambda s: s == name}, args.timeout,
                f"select to show '{name}'")
    ok(f"select.select_option '{name}' -> {ids['routine']} = '{name}' (daemon took it)")
    probe.call("number", "set_value", {"entity_id": ids["minutes"], "value": minutes})
    wait_states(probe, ids, {"minutes": lambda s: s is not None and float(s) == minutes},
                args.timeout, f"minutes number to show {minutes}")
    ok(f"number.set_value {minutes} -> {ids['minutes']} = {minutes}")

    frames_before = len(frames(args.frames))
    pressed_at = datetime.datetime.now(datetime.timezone.utc)
    probe.call("button", "press", {"entity_id": ids["start"]})
    states = wait_states(probe, ids, {
        "running": lambda s: s == "on",
        "state": lambda s: s == "Running",
        "step": lambda s: s == f"Step 1 of {len(routine['steps'])}: {first_label}",
        "remaining": lambda s: s not in UNKNOWN_STATES and 0 < float(s) <= minutes,
        "last_message": lambda s: s == "OK",
        "ends_at": lambda s: s not in UNKNOWN_STATES,
        "routine": lambda s: s == name,
    }, args.timeout, "running on, state running, step label, ends_at, routine")
    ends_at = datetime.datetime.fromisoformat(states["ends_at"])
    expected_end = pressed_at + datetime.timedelta(minutes=minutes)
    if ends_at.tzinfo is None or abs((ends_at - expected_end).total_seconds()) > 15:
        raise CheckFailed(f"ends_at {states['ends_at']} is not about {expected_end.isoformat()}")
    ok(f"button.press Start -> running on, state Running, step 'Step 1 of n: {first_label}', "
       f"ends_at {states['ends_at']} (start + {minutes} min), routine '{name}'")

    moving = poll("frames with a motor on in the sim recording",
                  lambda: frames(args.frames)[frames_before:],
                  lambda rows: any(any(levels) for levels in rows), args.timeout)
    ok(f"sim driver recorded {len(moving)} frames since Start, motors moving")

    probe.call("button", "press", {"entity_id": ids["stop"]})
    wait_states(probe, ids, {
        "running": lambda s: s == "off",
        "state": lambda s: s == "Idle",
        "step": lambda s: s == "Not running",
        "ends_at": lambda s: s in ("unknown",),
        "remaining": lambda s: s is not None and float(s) == 0,
        "progress": lambda s: s is not None and float(s) == 0,
    }, args.timeout, "running off, state Idle, step 'Not running', remaining 0, ends_at unknown")
    ok("button.press Stop -> running off, state Idle, step 'Not running', remaining and progress 0, "
       "ends_at unknown")
    last = poll("an all-zero last frame in the sim recording", lambda: frames(args.frames)[-1:],
                lambda rows: bool(rows) and not any(rows[0]), args.timeout)
    ok(f"sim driver's last frame is all zero ({len(last[0])} channels)")


class Subscriber:
    """mosquitto_sub printing retain flag and topic, read line by line on a thread."""

    def __init__(self, port, topics):
        cmd = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-F", "%r %t"]
        for topic in topics:
            cmd += ["-t", topic]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        self.seen = []  # (retain flag, topic) in arrival order
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            retain, topic = line.rstrip("\n").split(" ", 1)
            self.lines.put((retain, topic, datetime.datetime.now(datetime.timezone.utc)))

    def wait(self, what, accept, timeout, after=0):
        """Waits for a message accepted by accept(retain, topic) among those from index
        `after` on (earlier ones included); returns the index after it."""
        deadline = time.monotonic() + timeout
        while True:
            for index in range(after, len(self.seen)):
                if accept(*self.seen[index][:2]):
                    return index + 1
            left = deadline - time.monotonic()
            if left <= 0:
                raise CheckFailed(f"timeout after {timeout}s waiting for {what} on the broker")
            try:
                self.seen.append(self.lines.get(timeout=left))
            except queue.Empty:
                continue

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=5)


REPUBLISH_LINE = re.compile(
    r"^(\S+?)Z?\s+INFO .*home assistant online; republishing soon.*delay_ms=(\d+)", re.M)


def last_republish_due(log_text):
    """When the daemon's last scheduled republish is due (UTC), from its text log."""
    found = REPUBLISH_LINE.findall(log_text)
    if not found:
        return None
    stamp, delay = found[-1]
    at = datetime.datetime.fromisoformat(stamp).replace(tzinfo=datetime.timezone.utc)
    return at + datetime.timedelta(milliseconds=int(delay))


def republish_lines(path):
    return pathlib.Path(path).read_text(encoding="utf-8", errors="replace")


def check_reconnect(args, probe):
    """(4) HA reloads MQTT (birth message): the daemon republishes; entities are available."""
    discovery = f"homeassistant/device/{args.device_id}/config"
    availability = f"massaged/{args.device_id}/availability"
    birth = "homeassistant/status"
    # HA sends its first birth message some seconds after start-up; the daemon's answer to it
    # must be over before the reload, or it could pass for the answer to the reload.
    log_before = poll("the daemon to log HA's start-up birth message",
                      lambda: republish_lines(args.daemon_log),
                      lambda text: last_republish_due(text) is not None, args.timeout)
    pending_until = last_republish_due(log_before)
    poll("the daemon's answer to the start-up birth to be done",
         lambda: datetime.datetime.now(datetime.timezone.utc),
         lambda now: now > pending_until + datetime.timedelta(milliseconds=500), args.timeout)
    answers_before = len(REPUBLISH_LINE.findall(republish_lines(args.daemon_log)))

    sub = Subscriber(args.broker_port, [discovery, availability, birth])
    try:
        # The retained copies arrive first: then the subscription is in place.
        start = sub.wait("the retained discovery", lambda r, t: r == "1" and t == discovery,
                         args.timeout)
        probe.run("reload-mqtt")
        after_birth = sub.wait("HA's birth message after the reload",
                               lambda r, t: t == birth, args.timeout, start)
        ok("probe.py reload-mqtt: HA reconnected and published homeassistant/status online")
        # A live (not retained) copy after the birth can only be the daemon's answer.
        for topic in (discovery, availability):
            sub.wait(f"a live (retain 0) copy of {topic} after the birth message",
                     lambda r, t, topic=topic: r == "0" and t == topic, args.timeout,
                     after_birth)
        ok("daemon republished discovery and availability after HA's birth message")
    finally:
        sub.close()
    # The daemon logs before it publishes, so the line is there by now.
    answers = len(REPUBLISH_LINE.findall(republish_lines(args.daemon_log)))
    if answers <= answers_before:
        raise CheckFailed("daemon log lacks a new 'home assistant online; republishing soon'")
    ok("daemon log: home assistant online; republishing soon")
    mine = poll(f"all {len(CONTRACT)} entities available again",
                lambda: ours(probe.entities(), args.device_id),
                lambda m: set(CONTRACT) <= set(m)
                and all(e["state"] not in ("unavailable", None) for e in m.values()),
                args.timeout)
    ok(f"all {len(mine)} entities available after the reconnect "
       f"(state sensor: {mine['state']['state']})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=("registry", "session", "reconnect"))
    parser.add_argument("--probe", required=True, help="the harness's probe.py")
    parser.add_argument("--device-id", required=True)
    parser.add_argument("--routines", required=True, help="config/routines.toml")
    parser.add_argument("--broker-port", type=int)
    parser.add_argument("--out", help="registry: write the entity ids HA created here")
    parser.add_argument("--routine", default="neck-and-ears")
    parser.add_argument("--minutes", type=int, default=7)
    parser.add_argument("--frames", help="session: the sim driver's CSV recording")
    parser.add_argument("--daemon-log", help="reconnect: the daemon's log file")
    parser.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args(argv)
    probe = Probe(args.probe)
    phase = {"registry": check_registry, "session": check_session,
             "reconnect": check_reconnect}[args.phase]
    try:
        phase(args, probe)
    except CheckFailed as failure:
        print(f"FAIL {args.phase}: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

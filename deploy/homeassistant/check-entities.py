#!/usr/bin/env python3
"""Checks that the Home Assistant examples reference only entities that exist.

Extracts every entity id (`domain.object_id`) from the YAML files in this directory
(or the files given with --files) and compares them with the known ids, given as
arguments or read from a JSON file: a list of ids, an object whose keys are ids, or
Home Assistant's /api/states answer (a list of objects with "entity_id").

    check-entities.py --json entities.json
    check-entities.py select.massage_headrest_routine number.massage_headrest_intensity ...
    curl -s -H "Authorization: Bearer $TOKEN" http://ha:8123/api/states > states.json
    check-entities.py --json states.json

Exit status: 0 when every referenced id is known, 1 when some are not, 2 on bad input.
Standard library only.
"""

import argparse
import json
import pathlib
import re
import sys

# Entity platforms the daemon's discovery creates (DESIGN.md section 3).
DOMAINS = ("binary_sensor", "button", "event", "image", "number", "select", "sensor", "switch", "text")
ENTITY_ID = re.compile(r"(?<![\w.])(?:%s)\.[a-z0-9_]+(?![\w.])" % "|".join(DOMAINS))
# `action: select.select_option` and `service: button.press` name services, not entities.
SERVICE_LINE = re.compile(r"^\s*(?:-\s*)?(?:action|service)\s*:")
COMMENT = re.compile(r"(^|\s)#.*$")


def referenced_ids(path):
    """Entity ids in one YAML file, with the line of their first use."""
    found = {}
    text = path.read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), start=1):
        if SERVICE_LINE.match(line):
            continue
        line = COMMENT.sub("", line)
        for match in ENTITY_ID.finditer(line):
            found.setdefault(match.group(0), number)
    return found


def die(message):
    print(f"check-entities: {message}", file=sys.stderr)
    raise SystemExit(2)


def known_ids_from_json(path):
    try:
        data = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        die(f"cannot read {path}: {error}")
    if isinstance(data, dict):
        return set(data)
    ids = set()
    for item in data if isinstance(data, list) else []:
        if isinstance(item, str):
            ids.add(item)
        elif isinstance(item, dict) and isinstance(item.get("entity_id"), str):
            ids.add(item["entity_id"])
        else:
            die(f"{path}: unexpected item {item!r}")
    if not ids:
        die(f"{path}: no entity ids found")
    return ids


def main(argv=None):
    here = pathlib.Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ids", nargs="*", help="known entity ids")
    parser.add_argument("--json", help="JSON file with the known entity ids")
    parser.add_argument("--files", nargs="+", type=pathlib.Path,
                        help="YAML files to scan (default: *.yaml under this directory)")
    parser.add_argument("--list", action="store_true",
                        help="only print the referenced ids")
    args = parser.parse_args(argv)

    files = args.files or sorted(p for p in here.rglob("*.y*ml") if p.suffix in (".yaml", ".yml"))
    references = {}  # id -> [(file, line)]
    for path in files:
        try:
            found = referenced_ids(path)
        except OSError as error:
            print(f"check-entities: cannot read {path}: {error}", file=sys.stderr)
            return 2
        for entity, line in found.items():
            references.setdefault(entity, []).append((path, line))

    if args.list:
        for entity in sorted(references):
            print(entity)
        return 0

    known = set(args.ids)
    if args.json:
        known |= known_ids_from_json(args.json)
    if not known:
        print("check-entities: give the known ids as arguments or with --json", file=sys.stderr)
        return 2

    unknown = sorted(set(references) - known)
    for entity in unknown:
        for path, line in references[entity]:
            print(f"{path}:{line}: unknown entity {entity}")
    unused = sorted(i for i in known - set(references) if i.split(".")[0] in DOMAINS)
    print(f"{len(references)} entity ids referenced in {len(files)} files, "
          f"{len(unknown)} unknown, {len(unused)} known but unused")
    for entity in unused:
        print(f"  unused: {entity}")
    return 1 if unknown else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""massaged's own page steps in Home Assistant's frontend, after the harness's browser check.

Run by .ci/browser with the harness's venv (Playwright, PyYAML) while HA, Mosquitto and the
daemon are still up (check.sh with KEEP=1) and the dashboard from the shipped card exists:

    browser_steps.py --state <harness root>/state.env --harness <harness dir> --out DIR

Checks, in the sections view of the card:
  1. the card shows the "Routine" picture (an <img> from HA's image proxy that loaded);
  2. idle: Start shown, Pause/Resume/Skip hidden;
  3. with a relaxer date tomorrow a Start is refused and the card shows why (Last message
     naming the relaxer guard), with the guard on and "Start anyway" offered;
  4. pressing "Start anyway" starts a session; the reason is gone; Pause/Skip shown, Start
     hidden; 5. Pause -> Resume shown; Stop -> idle again.
Writes 1x-*.png and findings-steps.json into DIR. Exit 0 ok, 1 a check failed, 2 setup.
"""

import argparse
import datetime
import json
import os
import re
import sys
import time

from playwright.sync_api import sync_playwright

ENT = "massage_headrest"
BUTTON_NAMES = ("Start", "Start anyway", "Pause", "Resume", "Skip", "Stop")

# <img> elements anywhere (shadow roots included), with their load state.
IMAGES_JS = """() => {
  const out = [];
  const walk = (root) => { for (const el of root.querySelectorAll('*')) {
    if (el.tagName === 'IMG') out.push({src: el.src, w: el.naturalWidth, h: el.naturalHeight, done: el.complete});
    if (el.shadowRoot) walk(el.shadowRoot); } };
  walk(document); return out;
}"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--state", required=True)
    ap.add_argument("--harness", required=True, help="harness folder (probe.py, browser/shots.py)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    a = ap.parse_args()
    sys.path.insert(0, a.harness)
    sys.path.insert(0, os.path.join(a.harness, "browser"))
    import probe  # noqa: E402  (harness: state.env reader)
    import shots  # noqa: E402  (harness page helpers: shot, settle, text, states)

    st = probe.load_state(a.state)
    url, token = st["HA_URL"].rstrip("/"), st["HA_TOKEN"]
    checks = shots.Checks()
    findings = {"screenshots": []}

    def state(entity):
        return (shots.states_of(url, token, [entity])[entity] or {}).get("state")

    tokens = {"access_token": token, "token_type": "Bearer", "expires_in": 315360000,
              "hassUrl": url, "clientId": url + "/",
              "expires": int(time.time() * 1000) + 315360000000, "refresh_token": ""}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=a.chromium,
                                    args=["--no-sandbox", "--disable-dev-shm-usage"])
        ctx = browser.new_context(viewport=shots.VIEWPORT, locale="en-US", timezone_id="UTC",
                                  color_scheme="light")
        ctx.add_init_script("localStorage.setItem('hassTokens', %s);" % json.dumps(json.dumps(tokens)))
        page = ctx.new_page()

        def png(name):
            path = os.path.join(a.out, name)
            findings["screenshots"].append(path)
            shots.shot(page, path)

        def button(name):
            return page.locator("hui-button-card").filter(has_text=re.compile(r"^\s*%s\s*$" % re.escape(name)))

        def shown_buttons():
            return [n for n in BUTTON_NAMES if button(n).count() and button(n).first.is_visible()]

        def text():
            return page.evaluate(shots.DEEP_TEXT_JS, "state")

        def wait_for(what, predicate, timeout=10):
            end = time.time() + timeout
            while time.time() < end:
                if predicate():
                    return True
                time.sleep(0.25)
            log_state = predicate()
            if not log_state:
                shots.log("timeout waiting for " + what)
            return log_state

        try:
            page.goto("%s/%s/sections" % (url, shots.DASH))
            page.locator("hui-card").first.wait_for(timeout=30000)
            shots.settle(page, 2)

            # 1. the picture
            def picture_loaded():
                imgs = [i for i in page.evaluate(IMAGES_JS) if "image.%s_routine" % ENT in i["src"]]
                findings["picture_imgs"] = imgs
                return any(i["done"] and i["w"] > 0 for i in imgs)
            checks.add("card shows the Routine picture", wait_for("the picture", picture_loaded, 15),
                       json.dumps(findings.get("picture_imgs"))[:300])
            checks.add("image entity has a picture", state("image.%s_routine" % ENT) not in (None, "unknown", "unavailable"),
                       "state %r" % state("image.%s_routine" % ENT))

            # 2. idle buttons
            idle = shown_buttons()
            findings["buttons_idle"] = idle
            checks.add("idle: Start and Stop shown, Pause/Resume/Skip/Start anyway hidden",
                       idle == ["Start", "Stop"], "shown %s" % idle)
            png("10-card-idle-picture.png")

            # 3. refused Start: the reason is visible
            field = page.locator("hui-text-entity-row input").first
            tomorrow = (datetime.date.today() + datetime.timedelta(days=1)).isoformat()
            field.fill(tomorrow, timeout=5000)
            field.press("Enter")
            checks.add("relaxer date set from the card",
                       wait_for("relaxer date", lambda: state("text.%s_relaxer_date" % ENT) == tomorrow))
            checks.add("guard on", wait_for("guard", lambda: state("binary_sensor.%s_relaxer_guard" % ENT) == "on"))
            button("Start").first.click()
            checks.add("refused Start: Last message names the relaxer guard",
                       wait_for("last message", lambda: "relaxer guard" in (state("sensor.%s_last_message" % ENT) or "")),
                       "last message %r" % state("sensor.%s_last_message" % ENT))
            shots.settle(page, 1)
            checks.add("refused Start: the card shows the reason",
                       wait_for("reason on the page", lambda: re.search(r"relaxer guard:", text()) is not None),
                       "")
            refused = shown_buttons()
            findings["buttons_guard"] = refused
            checks.add("guard: Start anyway offered", "Start anyway" in refused, "shown %s" % refused)
            checks.add("guard: still idle", state("binary_sensor.%s_running" % ENT) == "off")
            png("11-card-refused-reason.png")

            # 4. Start anyway
            button("Start anyway").first.click()
            checks.add("Start anyway starts a guarded session",
                       wait_for("running", lambda: state("binary_sensor.%s_running" % ENT) == "on"))
            checks.add("accepted command clears the last message",
                       wait_for("OK", lambda: state("sensor.%s_last_message" % ENT) == "OK"),
                       "last message %r" % state("sensor.%s_last_message" % ENT))
            # The card re-renders its conditional buttons after the state arrives: wait for it.
            wait_for("running buttons", lambda: shown_buttons() == ["Pause", "Skip", "Stop"])
            shots.settle(page, 1)
            running = shown_buttons()
            findings["buttons_running"] = running
            checks.add("running: Pause, Skip and Stop shown, Start hidden",
                       running == ["Pause", "Skip", "Stop"], "shown %s" % running)
            page_text = text()
            findings["running_text"] = page_text
            checks.add("running: step n of m shown", re.search(r"Step \d+ of \d+", page_text) is not None)
            png("12-card-start-anyway-running.png")

            # 5. pause, then stop
            button("Pause").first.click()
            checks.add("Pause pauses", wait_for("paused", lambda: state("sensor.%s_state" % ENT) == "Paused"))
            shots.settle(page, 1)
            paused = shown_buttons()
            findings["buttons_paused"] = paused
            checks.add("paused: Resume, Skip and Stop shown", paused == ["Resume", "Skip", "Stop"],
                       "shown %s" % paused)
            png("13-card-paused.png")
            button("Stop").first.click()
            checks.add("Stop stops", wait_for("idle", lambda: state("sensor.%s_state" % ENT) == "Idle"))
            field.fill("", timeout=5000)
            field.press("Enter")
            checks.add("relaxer date cleared",
                       wait_for("cleared", lambda: state("text.%s_relaxer_date" % ENT) == ""))
            shots.settle(page, 2)
            png("14-card-after.png")
            page.goto("%s/%s/masonry" % (url, shots.DASH))
            page.locator("hui-card").first.wait_for(timeout=30000)
            shots.settle(page, 2)
            png("15-card-masonry-after.png")
        except Exception as e:  # a step that could not run is a failed check, not a crash
            checks.add("page steps ran to the end", False,
                       "%s: %s" % (type(e).__name__, str(e).splitlines()[0][:300]))
            try:
                page.screenshot(path=os.path.join(a.out, "19-where-steps-stopped.png"), full_page=True)
            except Exception:
                pass
        browser.close()

    findings["checks"] = checks.items
    with open(os.path.join(a.out, "findings-steps.json"), "w", encoding="utf-8") as f:
        json.dump(findings, f, indent=1, ensure_ascii=False)
    if checks.failed:
        shots.log("FAILED: " + "; ".join(c["check"] for c in checks.failed))
        return 1
    shots.log("all page steps passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

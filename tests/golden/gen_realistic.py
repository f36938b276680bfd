#!/usr/bin/env python3
"""Writes realistic.jsonl: three webinars over 40 minutes as the service's
log would hold them (arrival-ordered, a little out of order, with ticks every
second). Deterministic: the same file every run."""
import json
import random

rng = random.Random(20261126)
T0 = 1764000000000
END = T0 + 40 * 60_000
records = []
for w, audience in (("w-keynote", 120), ("w-demo", 40), ("w-qa", 12)):
    for n in range(audience):
        viewer = f"u-{w[2:]}-{n}"
        t = T0 + rng.randrange(0, 15 * 60_000)
        while t < END:
            records.append((t, {"type": "presence", "webinar_id": w, "viewer_id": viewer, "action": "ping"}))
            r = rng.random()
            if r < 0.03:  # closes the tab: a leave beacon, maybe back later
                t += rng.randrange(1_000, 30_000)
                records.append((t, {"type": "presence", "webinar_id": w, "viewer_id": viewer, "action": "leave"}))
                t += rng.randrange(30_000, 600_000)
            elif r < 0.05:  # loses the network: expires, maybe back later
                t += rng.randrange(200_000, 900_000)
            elif r < 0.07:  # a second tab pings too
                records.append((t + rng.randrange(0, 2_000), {"type": "presence", "webinar_id": w, "viewer_id": viewer, "action": "ping"}))
                t += 60_000 + rng.randrange(-1_500, 1_500)
            else:
                t += 60_000 + rng.randrange(-1_500, 1_500)
        if rng.random() < 0.2:
            records.append((t - rng.randrange(0, 60_000), {"type": "activity", "webinar_id": w, "viewer_id": viewer, "kind": rng.choice(["chat", "question", "poll"])}))
for t in range(T0, END + 300_000, 1_000):
    records.append((t, {"type": "tick"}))
# Arrival order: by time, but some events arrive up to 3 s late.
arrivals = []
for t, rec in records:
    delay = rng.randrange(0, 3_000) if rec["type"] != "tick" and rng.random() < 0.05 else 0
    arrivals.append((t + delay, t, rec))
arrivals.sort(key=lambda a: (a[0], a[1]))
with open("realistic.jsonl", "w") as f:
    for _, t, rec in arrivals:
        rec["ts"] = t
        f.write(json.dumps(rec, separators=(",", ":")) + "\n")

"""Lab `coldstart`: make the shipping-quote handler start fast, without changing what it returns.

The original is `solutions/lesson08/slow_init.py` (read it beside this one). Its
INIT, which every new execution environment runs before its first request, imports numpy and
Pillow and builds ZONES, the zone and depot of all 100,000 postcodes. Yet almost every request
is a quote, which needs one postcode's entry and neither library.

This copy keeps the original's code, except for three places marked TODO. Finish them so that
  1. INIT takes at most half as long as the original's (the check measures both, several times),
  2. every response is exactly the original's (the check compares them event by event), and
  3. warm quotes stay as fast as the original's (no rebuilding a table on every request).

Events:
  {"postcode": "10115", "weight_kg": 2.5}          a price quote (almost every request)
  {"action": "stats", "weights": [1.2, 0.4, ...]}   parcel weight statistics (rare)
  {"action": "label", "postcode": "10115"}          a PNG shipping label, as its size and hash (rare)
"""

import hashlib
import io

RATES = {1: 4.10, 2: 4.90, 3: 5.80, 4: 6.90, 5: 8.20, 6: 9.90, 7: 12.40, 8: 15.80}  # EUR by zone
PER_KG = 0.85
DEPOTS = ("Berlin", "Hamburg", "Munich", "Cologne", "Leipzig", "Frankfurt", "Stuttgart", "Bremen")


def _zone_and_depot(postcode: str) -> tuple[int, str]:
    """The delivery zone (1-8) and depot of one postcode (stands in for a real routing rule)."""
    digest = hashlib.sha256(f"route:{postcode}".encode()).digest()
    depot = hashlib.blake2b(digest, digest_size=4).digest()
    return digest[0] % 8 + 1, DEPOTS[depot[0] % len(DEPOTS)]


def lookup(postcode: str) -> tuple[int, str] | None:
    """(zone, depot) of a postcode, or None when the postcode is unknown."""
    # BEGIN SOLUTION lookup
    # The original returns ZONES.get(postcode), from a table of every postcode "00000" to
    # "99999" built at INIT. Work out just this postcode's entry when it is asked for, with
    # _zone_and_depot(), and return None exactly where the original's table has no entry
    # (it holds five ASCII digits only: not "1011", not "１０１１５").
    if len(postcode) == 5 and postcode.isascii() and postcode.isdigit():
        return _zone_and_depot(postcode)
    return None
    # END SOLUTION


def stats(weights: list[float]) -> dict:
    # BEGIN SOLUTION stats
    # The original imports numpy at module level, which costs every cold start, though only
    # "stats" requests use it. Import numpy (as np) here instead, where it is used.
    import numpy as np
    # END SOLUTION
    w = np.asarray(weights, dtype=float)
    return {"count": int(w.size), "mean_kg": round(float(w.mean()), 3),
            "p95_kg": round(float(np.percentile(w, 95)), 3)}


def label(postcode: str) -> dict:
    # BEGIN SOLUTION label
    # Likewise for Pillow: import Image and ImageDraw from PIL here, where the label is drawn.
    from PIL import Image, ImageDraw
    # END SOLUTION
    image = Image.new("L", (240, 80), 255)
    ImageDraw.Draw(image).text((12, 30), f"PARCEL TO {postcode}", fill=0)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    png = buffer.getvalue()
    return {"png_bytes": len(png), "sha256": hashlib.sha256(png).hexdigest()}


def quote(postcode: str, weight_kg: float) -> dict:
    found = lookup(postcode)
    if found is None:
        return {"error": f"unknown postcode {postcode!r}"}
    zone, depot = found
    return {"postcode": postcode, "zone": zone, "depot": depot,
            "price_eur": round(RATES[zone] + PER_KG * weight_kg, 2)}


def lambda_handler(event, context):
    action = event.get("action", "quote")
    postcode = str(event.get("postcode", ""))
    if action == "stats":
        return stats(event["weights"])
    if action == "label":
        return label(postcode)
    return quote(postcode, float(event.get("weight_kg", 1.0)))

"""Lesson 08: the ORIGINAL shipping-quote handler of lab `coldstart`, with a slow INIT.

Keep this file as it is: the lab's check measures your `labs/coldstart/handler.py` against it,
in the same run, on the same machine (its Init Duration, and its answer to every test event).

Events:
  {"postcode": "10115", "weight_kg": 2.5}          a price quote (almost every request)
  {"action": "stats", "weights": [1.2, 0.4, ...]}   parcel weight statistics (rare)
  {"action": "label", "postcode": "10115"}          a PNG shipping label, as its size and hash (rare)

Everything at module level runs in INIT, in every new execution environment: importing numpy
and Pillow, and building ZONES, the zone and depot of all 100,000 postcodes.
"""

import hashlib
import io

import numpy as np
from PIL import Image, ImageDraw

RATES = {1: 4.10, 2: 4.90, 3: 5.80, 4: 6.90, 5: 8.20, 6: 9.90, 7: 12.40, 8: 15.80}  # EUR by zone
PER_KG = 0.85
DEPOTS = ("Berlin", "Hamburg", "Munich", "Cologne", "Leipzig", "Frankfurt", "Stuttgart", "Bremen")


def _zone_and_depot(postcode: str) -> tuple[int, str]:
    """The delivery zone (1-8) and depot of one postcode (stands in for a real routing rule)."""
    digest = hashlib.sha256(f"route:{postcode}".encode()).digest()
    depot = hashlib.blake2b(digest, digest_size=4).digest()
    return digest[0] % 8 + 1, DEPOTS[depot[0] % len(DEPOTS)]


# Every postcode from "00000" to "99999", computed before the first request arrives.
ZONES = {f"{n:05d}": _zone_and_depot(f"{n:05d}") for n in range(100_000)}


def lookup(postcode: str) -> tuple[int, str] | None:
    """(zone, depot) of a postcode, or None when the postcode is unknown."""
    return ZONES.get(postcode)


def stats(weights: list[float]) -> dict:
    w = np.asarray(weights, dtype=float)
    return {"count": int(w.size), "mean_kg": round(float(w.mean()), 3),
            "p95_kg": round(float(np.percentile(w, 95)), 3)}


def label(postcode: str) -> dict:
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

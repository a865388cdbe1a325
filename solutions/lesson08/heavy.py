"""Lesson 08 demo: a heavy INIT, as data-science functions often have.

At module level it imports numpy and matplotlib (for a colour map that colours price bands) and
builds a price table of 100,000 rows, all before the first event arrives. All of that runs again
in every new execution environment.
"""

import matplotlib
import numpy as np

BANDS = matplotlib.colormaps["viridis"].resampled(8)
_prices = np.random.default_rng(8).gamma(2.0, 15.0, 100_000)
TABLE = {f"sku-{i:06d}": round(float(price), 2) for i, price in enumerate(_prices)}


def handler(event, context):
    sku = event.get("sku", "sku-000000")
    price = TABLE.get(sku)
    colour = matplotlib.colors.to_hex(BANDS(min(price or 0.0, 99.0) / 100)) if price is not None else None
    return {"handler": "heavy", "sku": sku, "price": price, "band_colour": colour}

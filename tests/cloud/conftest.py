"""The cloud tests check the events they deliver against AWS's samples with tests/events/contract.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "events"))

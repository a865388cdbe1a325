"""Instruments for the lessons, one module per notebook, named like the notebook it serves."""

"""How the served model is doing: accuracy against the sale prices fed back, drift of its inputs
and outputs from its training data, and what `/metrics` and `realty monitor` show of both.

Plain Python (no NumPy or pandas) but for `monitor`, the CLI's tables, which also read the
bundles on disk: the API imports the rest, and its image has neither. `accuracy` is also the
one definition of the AVM figures that `realty evaluate` reports, so live and offline figures
cannot mean two things.
"""

"""The model: the house contract, derived features, demographics, bundles, model kinds and the
one prediction path (`predictor`).

What may change freely: any code here, as long as `contract.py` (field names, types, ranges:
the API validates with it) and the bundle file formats stay. Bundles hold no pickles of these
classes, only LightGBM's model text, plain arrays and JSON, so moving or renaming code never
breaks a stored bundle; a change of a format needs a new bundle format version and retraining.
`contract.py` and `manifest.py` are plain Python: the API imports them without pandas or NumPy.
"""

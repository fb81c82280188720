"""Houses the tests of several layers share (importable as `houses`: tests/ is on the path of
every test, as the directory of the root conftest)."""

# The first future example's eight fields of /v1/predict/minimal, as a client sends them.
MINIMAL_HOUSE = {
    "bedrooms": 4,
    "bathrooms": 1.0,
    "sqft_living": 1680,
    "sqft_lot": 5043,
    "floors": 1.5,
    "sqft_above": 1680,
    "sqft_basement": 0,
    "zipcode": "98118",
}

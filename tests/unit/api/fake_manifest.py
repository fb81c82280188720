"""A served version's manifest, as the fakes and the parsers' tests need one."""

from shared.model.manifest import Manifest

ZIPCODES = ["98118", "98103"]


def manifest(version: str = "v2", zipcodes: list[str] | None = None) -> Manifest:
    """Version `version` of kind gbm, serving `zipcodes` (default: two Seattle zipcodes), priced
    at any month from 2014-05 to 2015-05."""
    return Manifest(
        version=version,
        kind="gbm",
        created_at="2026-11-28T00:00:00+00:00",
        input_features=[],
        request_fields=[],
        zipcodes=ZIPCODES if zipcodes is None else zipcodes,
        libraries={},
        files={},
        data_files={},
        metrics={"test": {"r2": 0.9}},
        training={},
        as_of_months=["2014-05", "2015-05"],
    )

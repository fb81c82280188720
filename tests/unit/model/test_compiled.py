"""Compiled trees (shared/model/kinds/compiled.py): a gbm bundle carries its estimators' trees as
checksummed machine code, a loaded bundle predicts with them, and they give LightGBM's own
prices to the cent; without them (absent, switched off, or unusable here) LightGBM serves."""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import SecretStr

from shared.model.bundles import BundleError, Manifest, load_bundle, verify_bundle
from shared.model.kinds import compiled
from shared.model.predictor import Predictor
from shared.model.signing import SIGNATURE_FILE
from shared.settings import Settings

pytestmark = pytest.mark.skipif(not compiled.supported(), reason="needs an x86-64-v2 CPU")


@pytest.fixture(scope="module")
def sales(data_dir: Path) -> pd.DataFrame:
    return pd.read_csv(data_dir / "kc_house_data.csv", dtype={"zipcode": str})


def test_a_gbm_bundle_carries_compiled_trees_for_each_variant(
    trained_gbm, bundle_key: SecretStr
) -> None:
    settings, manifest = trained_gbm
    assert {"trees-full.o", "trees-minimal.o"} <= set(manifest.files)
    model = load_bundle(settings.model_dir, manifest.version, key=bundle_key).model
    assert all(v.compiled is not None for v in model.variants.values())
    unused = load_bundle(
        settings.model_dir, manifest.version, key=bundle_key, artifacts=False
    ).model
    assert all(v.compiled is None for v in unused.variants.values())


@pytest.mark.parametrize("variant", ["full", "minimal"])
def test_compiled_trees_price_every_sale_to_the_cent_as_lightgbm_does(
    trained_gbm, sales: pd.DataFrame, variant: str, bundle_key: SecretStr
) -> None:
    settings, manifest = trained_gbm
    fast = Predictor(load_bundle(settings.model_dir, manifest.version, key=bundle_key))
    slow = Predictor(
        load_bundle(settings.model_dir, manifest.version, key=bundle_key, artifacts=False)
    )
    fast_prices, slow_prices = fast.predict(sales, variant), slow.predict(sales, variant)
    np.testing.assert_allclose(fast_prices, slow_prices, rtol=1e-12)
    assert (fast_prices.round(2) == slow_prices.round(2)).all()


def test_altered_compiled_trees_make_the_bundle_refuse_to_load(
    trained_gbm, tmp_path: Path, bundle_key: SecretStr
) -> None:
    settings, manifest = trained_gbm
    copy = tmp_path / manifest.version
    copy.mkdir()
    for name in (*manifest.files, "manifest.json", SIGNATURE_FILE):
        (copy / name).write_bytes((settings.model_dir / manifest.version / name).read_bytes())
    with (copy / "trees-full.o").open("ab") as code:
        code.write(b"\0")
    with pytest.raises(BundleError, match=r"trees-full\.o"):
        verify_bundle(tmp_path, manifest.version, key=bundle_key)


def test_missing_code_leaves_lightgbm_serving(
    trained_gbm: tuple[Settings, Manifest], tmp_path: Path
) -> None:
    settings, manifest = trained_gbm
    model_file = settings.model_dir / manifest.version / "lightgbm-full.txt"
    assert compiled.load_trees(model_file, tmp_path / "absent.o") is None
    assert not (tmp_path / "absent.o").exists()  # nor compiled on the serving path


def test_code_the_manifest_does_not_list_is_never_loaded(
    trained_gbm, tmp_path: Path, bundle_key: SecretStr, resign: Callable[[Path], None]
) -> None:
    """A stray trees-*.o beside a bundle (copied in later, say) is not checksummed: unused,
    even when the manifest without it is signed."""
    settings, manifest = trained_gbm
    copy = tmp_path / manifest.version
    copy.mkdir()
    for name in manifest.files:
        (copy / name).write_bytes((settings.model_dir / manifest.version / name).read_bytes())
    unlisted = manifest.model_copy(
        update={"files": {k: v for k, v in manifest.files.items() if not k.endswith(".o")}}
    )
    (copy / "manifest.json").write_text(unlisted.model_dump_json())
    resign(copy)
    model = load_bundle(tmp_path, manifest.version, key=bundle_key).model
    assert all(v.compiled is None for v in model.variants.values())

"""`realty train gbm --sales-before DAY` (shared/tools/training.py): the date-ordered split that
`make evaluate`'s holdout also uses, and the days that leave nothing on one side."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from shared.settings import Settings
from shared.tools.evaluation import TEMPORAL_CUTOFF, date_ordered_holdout
from shared.tools.training import EmptySplitError, date_ordered_split, train_gbm

REPO = Path(__file__).resolve().parents[3]


def test_the_split_is_by_sale_day_and_is_evaluates_holdout(data_dir: Path) -> None:
    sales = pd.DataFrame({"date": ["20150228T000000", "20150301T000000", "20141013T000000"]})
    before, after = date_ordered_split(sales, "2015-03-01")
    assert before["date"].tolist() == ["20150228T000000", "20141013T000000"]
    assert after["date"].tolist() == ["20150301T000000"]
    earlier, later = date_ordered_holdout(Settings(data_dir=data_dir))
    assert (len(earlier), len(later)) == (16_861, 4_752)  # the model report's holdout
    assert TEMPORAL_CUTOFF == "2015-03-01"


@pytest.mark.parametrize(("day", "side"), [("2014-05-01", "before"), ("2015-05-28", "from")])
def test_a_day_that_leaves_no_sales_on_a_side_is_refused_before_training(
    data_dir: Path, tmp_path: Path, day: str, side: str
) -> None:
    settings = Settings(data_dir=data_dir, model_dir=tmp_path / "models", secrets_dir=tmp_path)
    with pytest.raises(EmptySplitError) as caught:
        train_gbm(settings, sales_before=day)
    assert str(caught.value) == (
        f"no sales {side} {day}: the sales run from 2014-05-02 to 2015-05-27"
    )
    assert not (tmp_path / "models").exists()


def test_only_the_gbm_kind_takes_a_day(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REALTY_")}
    env |= {"REALTY_MODEL_DIR": str(tmp_path), "REALTY_SECRETS_DIR": str(tmp_path), "NO_COLOR": "1"}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "shared.tools.cli",
            "train",
            "baseline",
            "--sales-before",
            "2015-03-01",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert "--sales-before trains a gbm bundle, not baseline" in run.stderr

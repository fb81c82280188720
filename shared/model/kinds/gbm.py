"""The `gbm` kind: LightGBM on log(price), one estimator per request variant, each with price
ranges fitted to the home (normalized split-conformal, `shared.model.confidence`), its own
explanation (per-feature contributions) and input warnings; the bundle's monthly market index
(`shared.model.market`) and its comparable sales (`shared.model.comps`) are shared by both.

The trees learn prices moved to the latest month of the training sales by the market index, and
an estimate is moved from there to the requested as-of month.

Everything a served estimate needs is in the fitted objects below. A bundle stores them as
LightGBM's own model text per variant, one JSON file for the rest and NumPy arrays for the
nearest-sales context and the comparable sales (`GbmModel.save`), never as pickles, so a stored
model does not depend on where this code lives; `shared.model.predictor.Predictor` is the only
caller at serving time.
"""

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold

from shared.model.comps import ComparableSales
from shared.model.confidence import DIFFICULTY_INPUTS, Difficulty, Uncertainty
from shared.model.contract import GBM, TARGET, ZIPCODE, cents
from shared.model.derived import DERIVED_GROUPS, LocationContext, derive_features
from shared.model.files import BundleFiles, write_array, write_json
from shared.model.kinds.compiled import Predict, compile_trees, load_trees
from shared.model.market import MarketIndex

SEED = 42
FOLDS = 5
TOP_FACTORS = 5
MARKET_FACTOR = "market"  # the factor of an estimate moved away from the reference month

# Chosen by 5-fold cross-validation on the client's training split only (`realty evaluate`
# repeats the search and reports it; the client's test split plays no part in it). The loss:
# absolute error of log price, so the trees estimate the median price, which the agents'
# figures (median error, share within 10 and 20 %) reward; chosen for both variants by `realty
# evaluate`'s date-ordered validation inside the training split, which it reports.
PARAMS: dict[str, Any] = {
    "objective": "l1",
    "learning_rate": 0.03,
    "num_leaves": 31,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.5,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
}
NUM_ROUNDS = 2000
# Fixed regardless of the search: quiet, reproducible runs.
_FIXED: dict[str, Any] = {"verbose": -1, "deterministic": True, "force_col_wise": True}

# A bundle's files: MODEL_FILE for the whole model, the others one per variant.
MODEL_FILE = "model.json"


def _lightgbm_file(variant: str) -> str:
    return f"lightgbm-{variant}.txt"


def _array_file(variant: str, array: str) -> str:
    return f"context-{variant}-{array}.npy"


def _trees_file(variant: str) -> str:
    return f"trees-{variant}.o"


def demographic_columns(demographics: pd.DataFrame) -> list[str]:
    return [c for c in demographics.columns if c != ZIPCODE]


@dataclass(frozen=True)
class GbmConfig:
    """What one estimator reads: house columns, demographics or not, derived groups."""

    house_features: tuple[str, ...]
    demographics: bool
    derived: tuple[str, ...]
    log_target: bool = True
    params: dict[str, Any] = field(default_factory=lambda: dict(PARAMS))
    rounds: int = NUM_ROUNDS

    @property
    def needs_neighbours(self) -> bool:
        return "neighbour_level" in self.derived

    @property
    def needs_context(self) -> bool:
        return "zip_level" in self.derived or self.needs_neighbours

    @classmethod
    def from_json(cls, spec: dict[str, Any]) -> Self:
        return cls(
            house_features=tuple(spec["house_features"]),
            demographics=spec["demographics"],
            derived=tuple(spec["derived"]),
            log_target=spec["log_target"],
            params=spec["params"],
            rounds=spec["rounds"],
        )


VARIANT_CONFIGS: dict[str, GbmConfig] = {
    "full": GbmConfig(
        house_features=GBM.variant_features("full"),
        demographics=True,
        # Groups kept by the rule of docs/model_report.md's ablation (lower CV MAE on average
        # and in at least 3 of 5 folds); the size ratios and the zipcode's price level failed it.
        derived=("rotated_coordinates", "neighbour_level"),
    ),
    # Only the 8 fields of /v1/predict/minimal: no coordinates, so no rotated coordinates or
    # nearest-sales level; the zipcode's price level comes from the zipcode alone. The
    # living/lot ratio measured no gain here (ablation), so it is left out.
    "minimal": GbmConfig(
        house_features=GBM.variant_features("minimal"),
        demographics=True,
        derived=("zip_level",),
    ),
}


def _groups(sales: pd.DataFrame) -> np.ndarray:
    """Repeat sales of one house stay in one fold (the `id` column), else each row alone."""
    return sales["id"].to_numpy() if "id" in sales else np.arange(len(sales))


def folds(sales: pd.DataFrame, n: int = FOLDS, seed: int = SEED) -> list[tuple[Any, Any]]:
    splitter = GroupKFold(n_splits=n, shuffle=True, random_state=seed)
    return list(splitter.split(sales, groups=_groups(sales)))


def build_matrix(
    houses: pd.DataFrame, config: GbmConfig, context: LocationContext, demo_cols: list[str]
) -> pd.DataFrame:
    """The estimator's input: house columns, demographics, derived columns (index kept).
    Derived columns see only the variant's own fields, whatever else `houses` carries, so a
    training row (every column) and a served minimal request get the same features."""
    columns = list(config.house_features) + (demo_cols if config.demographics else [])
    own_fields = houses[[*config.house_features, ZIPCODE]]
    derived = derive_features(own_fields, context, config.derived)
    values = np.hstack([houses[columns].to_numpy(dtype=float), derived.to_numpy(dtype=float)])
    return pd.DataFrame(values, columns=[*columns, *derived.columns], index=houses.index)


def training_matrix(
    sales: pd.DataFrame, config: GbmConfig, demo_cols: list[str]
) -> tuple[pd.DataFrame, LocationContext]:
    """The training rows' matrix and the context for serving. A training sale must not see its
    own price in its location features, so those come from contexts fitted on the other folds
    (repeat sales of a house in one fold); served houses use the context of all sales."""
    context = LocationContext.fit(sales, neighbours=config.needs_neighbours)
    if not config.needs_context:
        return build_matrix(sales, config, context, demo_cols), context
    parts = []
    for fit_rows, apply_rows in folds(sales):
        fold_context = LocationContext.fit(sales.iloc[fit_rows], neighbours=config.needs_neighbours)
        parts.append(build_matrix(sales.iloc[apply_rows], config, fold_context, demo_cols))
    return pd.concat(parts).loc[sales.index], context


def _target(prices: pd.Series, config: GbmConfig) -> np.ndarray:
    values = prices.to_numpy(dtype=float)
    return np.log(values) if config.log_target else values


def _log_mean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(a - b) / (ln a - ln b), and a where a == b: the exact dollars per unit of log price
    between a base price and a prediction."""
    ratio = np.log(a) - np.log(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (a - b) / ratio
    return np.where(np.abs(ratio) < 1e-12, a, out)


@dataclass
class GbmVariant:
    name: str
    config: GbmConfig
    demo_cols: list[str]
    features: list[str]
    booster: lgb.Booster
    context: LocationContext
    ranges: dict[str, tuple[float, float]]
    # The ranges' difficulty model (`calibrate`); None until calibrated.
    difficulty: Difficulty | None = None
    # The booster's trees as machine code (shared.model.kinds.compiled), attached when a bundle is
    # loaded. None: LightGBM predicts.
    compiled: Predict | None = field(default=None, repr=False, compare=False)

    def matrix(self, houses: pd.DataFrame) -> pd.DataFrame:
        matrix = build_matrix(houses, self.config, self.context, self.demo_cols)
        # The bundle's recorded order rules: the code that trained it may have ordered the
        # columns differently from this code.
        return matrix if list(matrix.columns) == self.features else matrix[self.features]

    def predict_matrix(self, matrix: pd.DataFrame) -> np.ndarray:
        values = matrix.to_numpy(dtype=float)
        if self.compiled is not None:
            raw = self.compiled(values)
        else:
            # One thread: a worker is one single-threaded process among several on the machine.
            raw = self.booster.predict(values, num_threads=1)
        return np.exp(raw) if self.config.log_target else np.asarray(raw, dtype=float)

    def predict(self, houses: pd.DataFrame) -> np.ndarray:
        return self.predict_matrix(self.matrix(houses))

    def uncertainty(
        self, matrix: pd.DataFrame, prices: np.ndarray, shift: float = 0.0
    ) -> Uncertainty | None:
        """Each row's FSD, grade and ranges around prices * e^shift (`prices` at the reference
        month, `shift` the market's move to the as-of month); None before `calibrate`."""
        if self.difficulty is None:
            return None
        return self.difficulty.uncertainty(matrix, prices, shift)

    def contributions(self, matrix: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        """LightGBM's own per-feature contributions (SHAP values) in log price, and the base
        value (the model's average log price) per row."""
        raw = self.booster.predict(matrix.to_numpy(dtype=float), pred_contrib=True, num_threads=1)
        return pd.DataFrame(raw[:, :-1], columns=self.features, index=matrix.index), raw[:, -1]

    def dollar_contributions(
        self, matrix: pd.DataFrame, prices: np.ndarray, shift: float = 0.0
    ) -> pd.DataFrame:
        """Contributions in dollars, grouped into plain-language factors; `prices` are the
        estimates at the as-of month, `shift` the market's log move from the reference month to
        it, which becomes the factor MARKET_FACTOR (absent when 0).

        LightGBM explains log(price) additively: log(prediction) = base + Σ c_i. Dollars are not
        additive in log space, so each c_i is converted at the one exchange rate that makes the
        dollar effects add up exactly: effect_i = c_i * (prediction - e^base) / (log(prediction)
        - base), the logarithmic mean of the base price and the prediction. The effects then sum
        to prediction - e^base ("the typical home in the training data"), and a factor worth
        +10 % in log space is worth about 10 % of the price in dollars."""
        contrib, base = self.contributions(matrix)
        rate = _log_mean(prices, np.exp(base))
        demo = set(self.demo_cols)
        groups = {f: FEATURE_GROUP.get(f, "census" if f in demo else f) for f in self.features}
        if shift:
            contrib[MARKET_FACTOR] = shift
            groups[MARKET_FACTOR] = MARKET_FACTOR
        dollars = contrib.mul(rate, axis=0)
        return dollars.T.groupby(pd.Series(groups)).sum().T

    def warnings(self, houses: pd.DataFrame) -> list[list[str]]:
        """Per row, one message per field outside the range seen in training."""
        out: list[list[str]] = [[] for _ in range(len(houses))]
        for name, (low, high) in self.ranges.items():
            values = houses[name].to_numpy(dtype=float)
            for i in np.flatnonzero((values < low) | (values > high)):
                side, bound = (
                    ("below the smallest", low)
                    if values[i] < low
                    else (
                        "above the largest",
                        high,
                    )
                )
                out[i].append(
                    f"{name} {values[i]:,g} is {side} value in the training sales "
                    f"({bound:,g}): the estimate extrapolates and is less reliable"
                )
        return out

    def spec(self) -> dict[str, Any]:
        """Everything but the trees and the nearest-sales arrays, as JSON values."""
        return {
            "config": asdict(self.config),
            "demo_cols": self.demo_cols,
            "features": self.features,
            "ranges": self.ranges,
            "difficulty": None if self.difficulty is None else self.difficulty.spec(),
            "zip_level": self.context.zip_level,
            "overall_level": self.context.overall_level,
            "neighbours": self.context.coordinates is not None,
        }

    def save(self, directory: Path) -> list[str]:
        """The trees as LightGBM's model text and the context's arrays; the files written."""
        written = [_lightgbm_file(self.name)]
        self.booster.save_model(directory / written[0])
        for array, values in (
            ("coordinates", self.context.coordinates),
            ("levels", self.context.levels),
        ):
            if values is not None:
                written.append(write_array(directory, _array_file(self.name, array), values))
        return written

    @classmethod
    def load(cls, name: str, spec: dict[str, Any], files: BundleFiles) -> Self:
        coordinates = levels = None
        if spec["neighbours"]:
            coordinates = files.array(_array_file(name, "coordinates"))
            levels = files.array(_array_file(name, "levels"))
        context = LocationContext(spec["zip_level"], spec["overall_level"], coordinates, levels)
        return cls(
            name,
            GbmConfig.from_json(spec["config"]),
            spec["demo_cols"],
            spec["features"],
            lgb.Booster(model_str=files.text(_lightgbm_file(name))),
            context,
            {column: (low, high) for column, (low, high) in spec["ranges"].items()},
            None if spec["difficulty"] is None else Difficulty.from_spec(spec["difficulty"]),
        )


def fit_variant(
    sales: pd.DataFrame, config: GbmConfig, demo_cols: list[str], name: str = "full"
) -> GbmVariant:
    """Fit one estimator on `sales` (sales rows with demographics joined, prices at the
    reference month: `MarketIndex.to_reference`; `id` if present keeps repeat sales together in
    the internal folds). No calibration: see `calibrate`."""
    matrix, context = training_matrix(sales, config, demo_cols)
    # One thread: measured faster than two on these 2-core machines (and deterministic).
    params = {**config.params, **_FIXED, "seed": SEED, "num_threads": 1}
    booster = lgb.train(params, lgb.Dataset(matrix, _target(sales[TARGET], config)), config.rounds)
    fields = [c for c in config.house_features if c in sales]
    ranges = {c: (float(sales[c].min()), float(sales[c].max())) for c in fields}
    return GbmVariant(name, config, demo_cols, list(matrix.columns), booster, context, ranges)


def out_of_fold_predictions(
    sales: pd.DataFrame, config: GbmConfig, demo_cols: list[str]
) -> tuple[np.ndarray, pd.DataFrame]:
    """Each training sale priced by an estimator fitted (the same way) without its fold, and
    the matrix it was priced from (its location features from the other folds' sales, as a
    served house's come from sales other than itself)."""
    predictions = np.empty(len(sales))
    matrices = []
    for fit_rows, apply_rows in folds(sales):
        variant = fit_variant(sales.iloc[fit_rows], config, demo_cols)
        matrix = variant.matrix(sales.iloc[apply_rows])
        predictions[apply_rows] = variant.predict_matrix(matrix)
        matrices.append(matrix)
    return predictions, pd.concat(matrices).loc[sales.index]


def calibrate(variant: GbmVariant, sales: pd.DataFrame) -> np.ndarray:
    """Fit the variant's ranges (`shared.model.confidence.Difficulty`) from out-of-fold
    residuals on its own training sales (never a test row); returns those out-of-fold
    predictions."""
    oof, matrix = out_of_fold_predictions(sales, variant.config, variant.demo_cols)
    variant.difficulty = Difficulty.fit(
        DIFFICULTY_INPUTS[variant.name],
        matrix,
        sales[TARGET].to_numpy(dtype=float),
        oof,
        folds(sales),
    )
    return oof


@dataclass
class GbmModel:
    """The model of a `gbm` bundle: one calibrated estimator per request variant, the market
    index they were trained against and the sales they can cite as comparables."""

    KIND: ClassVar[str] = GBM.name
    # 5: range quantiles per price band (4: one for all homes; 3: comparable sales without lot
    # size and above-ground area; 2: no market index, comparable sales or difficulty models).
    FORMAT: ClassVar[int] = 5

    variants: dict[str, GbmVariant]
    market: MarketIndex
    comparables: ComparableSales

    def variant(self, name: str) -> GbmVariant:
        return self.variants[name]

    def save(self, directory: Path) -> list[str]:
        """Each variant's files, MODEL_FILE, and each variant's trees compiled from its model
        text (where this machine can compile them); the files written."""
        specs = {name: variant.spec() for name, variant in self.variants.items()}
        model = {
            "variants": specs,
            "market": self.market.spec(),
            "comparables": self.comparables.spec(),
        }
        written = [write_json(directory, MODEL_FILE, model), *self.comparables.save(directory)]
        for name, variant in self.variants.items():
            written += variant.save(directory)
            if compile_trees(directory / _lightgbm_file(name), directory / _trees_file(name)):
                written.append(_trees_file(name))
        return written

    @classmethod
    def load(cls, files: BundleFiles, *, artifacts: bool) -> Self:
        """`artifacts`: predict with the bundle's compiled trees where they can run here."""
        spec = files.json(MODEL_FILE)
        model = cls(
            {name: GbmVariant.load(name, v, files) for name, v in spec["variants"].items()},
            MarketIndex.from_spec(spec["market"]),
            ComparableSales.load(files),
        )
        for name, variant in model.variants.items():
            if artifacts and _trees_file(name) in files:
                variant.compiled = load_trees(
                    files.path(_lightgbm_file(name)), files.path(_trees_file(name))
                )
        return model


# --- plain language -------------------------------------------------------------------------
FEATURE_GROUP: dict[str, str] = {
    "sqft_living": "living_area",
    "sqft_above": "living_area",
    "sqft_basement": "living_area",
    "living_vs_neighbours": "living_area",
    "sqft_lot": "lot",
    "living_lot_ratio": "lot",
    "yr_built": "age",
    "yr_renovated": "age",
    "yr_effective": "age",
    "sqft_living15": "neighbouring_homes",
    "sqft_lot15": "neighbouring_homes",
    "lat": "location",
    "long": "location",
    "zip_level": "location",
    "neighbour_level": "location",
    "neighbour_km": "location",
    **{c: "location" for c in DERIVED_GROUPS["rotated_coordinates"]},
}


def _label(group: str, house: dict[str, Any]) -> str:
    def n(value: Any) -> str:
        return f"{float(value):,.0f}"

    match group:
        case "living_area":
            text = f"living area {n(house['sqft_living'])} sq ft"
            if house.get("sqft_basement"):
                text += f" ({n(house['sqft_basement'])} of it basement)"
            return text
        case "lot":
            return f"lot {n(house['sqft_lot'])} sq ft"
        case "bedrooms" | "bathrooms" | "floors":
            count = house[group]
            return f"{count:g} {group.removesuffix('s')}{'' if count == 1 else 's'}"
        case "waterfront":
            return "on the waterfront" if house["waterfront"] else "not on the waterfront"
        case "view":
            return f"view rated {house['view']:g} of 4"
        case "condition":
            return f"condition {house['condition']:g} of 5"
        case "grade":
            return f"construction grade {house['grade']:g} of 13"
        case "age":
            text = f"built {house['yr_built']:.0f}"
            if house.get("yr_renovated"):
                text += f", renovated {house['yr_renovated']:.0f}"
            return text
        case "neighbouring_homes":
            return f"nearby homes' living area {n(house['sqft_living15'])} sq ft"
        case "location":
            return f"location (zipcode {house[ZIPCODE]})"
        case "census":
            return f"census figures of zipcode {house[ZIPCODE]}"
    return group


def describe_factors(
    dollars: pd.DataFrame, houses: pd.DataFrame, top: int = TOP_FACTORS, as_of: str | None = None
) -> list[list[dict[str, Any]]]:
    """The `top` largest dollar effects of each row, largest first, with a sentence each:
    "living area 2,600 sq ft: +$85k"; the market factor (if any) reads "market of `as_of`"."""
    out = []
    for (_, effects), (_, house) in zip(dollars.iterrows(), houses.iterrows(), strict=True):
        row = house.to_dict()
        ranked = effects.reindex(effects.abs().sort_values(ascending=False).index)[:top]
        factors = []
        for group, usd in ranked.items():
            label = f"market of {as_of}" if group == MARKET_FACTOR else _label(str(group), row)
            sign = "+" if usd >= 0 else "-"
            factors.append(
                {
                    "feature": str(group),
                    "value": label,
                    "effect_usd": cents(usd),
                    "text": f"{label}: {sign}${abs(usd) / 1000:,.0f}k",
                }
            )
        out.append(factors)
    return out

"""Code that both the API and the workers (or the tools) use, split by what it is:

- `shared.wire`: the contract between processes (Redis names, typed messages, the Celery app,
  liveness, the version registry). The API, the workers and `realty` must agree on it:
  changing it needs them upgraded together.
- `shared.model`: the model (the house contract, derived features, demographics, bundles, model
  kinds, the predictor). The API imports only its plain-Python `contract` and `manifest`;
  bundles on disk depend on its file formats, not on its code.
- `shared.tools`: offline and operator tools (training, evaluation, the report, rollout, the
  `realty` CLI); never on the request path.
- `shared.settings`: every knob, for all of them.
"""

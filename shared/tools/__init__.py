"""Offline and operator tools: training, evaluation and its report, live rollout, the `realty`
CLI. Run by people and by `make`, never on the request path; they may change freely, within the
wire (`shared.wire`) and the bundle formats (`shared.model`).
"""

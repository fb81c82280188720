"""The client's check script passes against a running service."""

import importlib.util

from stack import REPO, Stack

spec = importlib.util.spec_from_file_location(
    "submit_examples", REPO / "scripts" / "submit_examples.py"
)
submit_examples = importlib.util.module_from_spec(spec)
spec.loader.exec_module(submit_examples)


def test_submit_examples_succeeds_for_all_rows_single_and_batch(stack: Stack):
    csv_path = REPO / "data" / "future_unseen_examples.csv"
    summary = submit_examples.run(stack.api_url, csv_path, 120, key=stack.admin_key)
    assert summary.failures == []
    assert summary.rows_ok == 100
    assert summary.batch_status == "succeeded"
    assert summary.rows_matching == 100

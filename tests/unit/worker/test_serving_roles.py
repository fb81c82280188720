"""Which pool processes answer single predictions: the first `microbatchers` of the pool."""

import pytest

from shared.settings import Settings
from worker import serving


@pytest.mark.parametrize(
    ("index", "microbatchers", "answers"),
    [(0, 1, True), (1, 1, False), (1, 2, True), (2, 2, False), (None, 1, True)],
    ids=["first", "second-of-one", "second-of-two", "third-of-two", "not-a-pool-process"],
)
def test_the_first_pool_processes_run_a_micro_batcher(
    monkeypatch: pytest.MonkeyPatch, index: int | None, microbatchers: int, answers: bool
) -> None:
    monkeypatch.setattr(serving, "current_process_index", lambda base: index)
    assert serving.answers_singles(Settings(microbatchers=microbatchers)) is answers


def test_by_default_half_the_cores_answer_singles_and_never_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for cores, expected in [(1, 1), (2, 1), (4, 2)]:
        monkeypatch.setattr("shared.settings.usable_cores", lambda cores=cores: cores)
        assert Settings().microbatchers == expected

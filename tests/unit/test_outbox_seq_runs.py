"""`outbox.seq_runs`: the runs the relay marks published, one range UPDATE each."""

from services.runtime.outbox import seq_runs


def test_runs_cover_exactly_the_numbers_given() -> None:
    seqs = [9, 3, 5, 4, 4, 12, 11, 20]
    runs = seq_runs(seqs)
    assert runs == [(3, 5), (9, 9), (11, 12), (20, 20)]
    assert {n for first, last in runs for n in range(first, last + 1)} == set(seqs)


def test_no_numbers_no_runs() -> None:
    assert seq_runs([]) == []

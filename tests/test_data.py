"""The on-disk split format, the resumable rank-sharded sampler and evaluation batches."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch

from trm_core.data import (
    DataError,
    Split,
    TrainSampler,
    eval_batches,
    mix_seed,
    read_split,
    write_split,
)
from trm_core.losses import IGNORE_LABEL

from .tiny_task import LENGTH, ReverseTask

N, AUGMENTATIONS, SEED = 6, 3, 11
EPOCH = N * (AUGMENTATIONS + 1)
CPU = torch.device("cpu")


def _arrays(n: int = N, seed: int = 0):
    """Unique rows of 8 digits (tokens 1..5), labels reversed with some ignored (0)."""
    rng = np.random.default_rng(seed)
    inputs = rng.integers(1, 6, size=(n, LENGTH))
    inputs[:, 0] = 1 + np.arange(n) % 5  # rows differ...
    inputs[:, 1] = 1 + np.arange(n) // 5  # ...whatever the draw
    labels = inputs[:, ::-1].copy()
    labels[:, -2:] = ReverseTask.ignore_label_id  # nothing scored at the last two positions
    labels[0, 0] = ReverseTask.ignore_label_id
    identifiers = 1 + np.arange(n)  # one identifier per example: rows name their example
    return inputs, labels, identifiers


@pytest.fixture
def split(tmp_path):
    inputs, labels, identifiers = _arrays()
    return read_split(write_split(tmp_path / "train", inputs, labels, identifiers), ReverseTask())


class TaggingTask(ReverseTask):
    """Augmentation that reveals which (example, variant) a row is.

    It accepts only the seeds ``mix_seed(SEED, example, variant)`` with variant >= 1
    (anything else raises), and writes the variant into the row as token 100 + variant.
    """

    def __init__(self, seed: int = SEED, n: int = N, augmentations: int = AUGMENTATIONS):
        self.seeds = {
            mix_seed(seed, e, v): (e, v) for e in range(n) for v in range(1, augmentations + 1)
        }
        self.calls: list[tuple[int, int]] = []

    def augment(self, inputs, labels, seed):
        example, variant = self.seeds[seed]  # KeyError: a seed the sampler must not use
        assert inputs[0] == 1 + example % 5  # the row handed over is the original example
        self.calls.append((example, variant))
        tagged = inputs.copy()
        tagged[0] = 100 + variant
        return tagged, labels


def _pairs(batch: dict[str, torch.Tensor]) -> list[tuple[int, int]]:
    """(example, variant) of each row of a batch drawn with TaggingTask."""
    examples = (batch["puzzle_identifiers"] - 1).tolist()
    first = batch["inputs"][:, 0].tolist()
    return [(e, t - 100 if t >= 100 else 0) for e, t in zip(examples, first, strict=True)]


def _sampler(split, task=None, batch_size=8, seed=SEED, **kwargs) -> TrainSampler:
    task = task or TaggingTask(seed=seed)
    return TrainSampler(split, task, batch_size, AUGMENTATIONS, seed=seed, **kwargs)


ALL_PAIRS = Counter((e, v) for e in range(N) for v in range(AUGMENTATIONS + 1))


# -- write_split / read_split ------------------------------------------------------


def test_write_read_round_trip(tmp_path):
    inputs, labels, identifiers = _arrays()
    path = write_split(tmp_path / "data" / "train", inputs, labels, identifiers, task="reverse")
    assert path == tmp_path / "data" / "train"
    assert sorted(p.name for p in path.iterdir()) == [
        "inputs.npy",
        "labels.npy",
        "metadata.json",
        "puzzle_identifiers.npy",
    ]
    assert [p.name for p in path.parent.iterdir()] == ["train"]  # no staging folder left

    split = read_split(path, ReverseTask())
    assert len(split) == N and split.path == path
    np.testing.assert_array_equal(split.inputs, inputs)
    np.testing.assert_array_equal(split.labels, labels)
    np.testing.assert_array_equal(split.puzzle_identifiers, identifiers)
    assert split.inputs.dtype == np.uint8  # small vocabularies are stored compactly
    assert split.metadata == {
        "num_examples": N,
        "seq_len": LENGTH,
        "num_puzzle_identifiers": N + 1,
        "task": "reverse",
    }
    assert json.loads((path / "metadata.json").read_text()) == split.metadata


def test_write_split_defaults_and_overwrite(tmp_path):
    inputs, labels, _ = _arrays()
    path = write_split(tmp_path / "s", inputs, labels)
    split = read_split(path)
    np.testing.assert_array_equal(split.puzzle_identifiers, np.ones(N))  # one shared id
    assert split.metadata["num_puzzle_identifiers"] == 2  # the shared one and blank 0

    # Rewriting replaces the folder as a whole; tokens above 255 are kept exactly.
    big = np.full((2, 3), 300)
    write_split(path, big, big, np.array([0, 4]))
    split = read_split(path)
    np.testing.assert_array_equal(split.inputs, big)
    assert split.metadata["num_examples"] == 2 and split.metadata["seq_len"] == 3
    assert split.metadata["num_puzzle_identifiers"] == 5
    assert [p.name for p in tmp_path.iterdir()] == ["s"]


def test_write_split_refuses_mismatched_arrays(tmp_path):
    inputs, labels, _ = _arrays()
    with pytest.raises(DataError, match=r"inputs \(6, 8\) and labels \(6, 7\)"):
        write_split(tmp_path / "s", inputs, labels[:, :7])
    with pytest.raises(DataError, match=r"puzzle_identifiers must be \[N\] = \[6\]"):
        write_split(tmp_path / "s", inputs, labels, np.ones(5))
    assert not (tmp_path / "s").exists()


def test_read_split_names_the_missing_files(tmp_path):
    inputs, labels, _ = _arrays()
    path = write_split(tmp_path / "s", inputs, labels)
    (path / "labels.npy").unlink()
    (path / "metadata.json").unlink()
    with pytest.raises(DataError) as error:
        read_split(path)
    message = str(error.value)
    assert str(path) in message and "not a trm data split" in message
    assert "labels.npy" in message and "metadata.json" in message
    assert "inputs.npy" not in message
    with pytest.raises(DataError, match="missing inputs.npy, labels.npy, puzzle_identifiers.npy"):
        read_split(tmp_path / "nowhere")


def test_read_split_refuses_data_that_does_not_fit_the_task(tmp_path):
    task = ReverseTask()
    inputs, labels, _ = _arrays()
    short = write_split(tmp_path / "short", inputs[:, :7], labels[:, :7])
    read_split(short)  # fine without a task
    with pytest.raises(DataError) as error:
        read_split(short, task)
    assert str(short) in str(error.value)
    assert "sequences of 7 tokens, task expects 8" in str(error.value)

    labels[2, 3] = task.vocab_size  # one token past the vocabulary, in the labels only
    wide = write_split(tmp_path / "wide", inputs, labels)
    with pytest.raises(DataError) as error:
        read_split(wide, task)
    assert str(wide) in str(error.value)
    assert f"token {task.vocab_size} outside the task's vocabulary of {task.vocab_size}" in str(
        error.value
    )


def test_write_split_keeps_negative_tokens(tmp_path):
    inputs, labels, _ = _arrays()
    labels[:, -2:] = -1
    split = read_split(write_split(tmp_path / "s", inputs, labels))
    np.testing.assert_array_equal(split.labels, labels)


def test_write_split_of_no_examples(tmp_path):
    empty = np.zeros((0, LENGTH), dtype=np.int64)
    split = read_split(write_split(tmp_path / "s", empty, empty), ReverseTask())
    assert len(split) == 0 and split.metadata["num_examples"] == 0


# -- TrainSampler --------------------------------------------------------------------


def _take(sampler: TrainSampler, count: int) -> list[dict[str, torch.Tensor]]:
    return [sampler.next_batch(CPU) for _ in range(count)]


def _assert_same_batches(first, second):
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key


def test_sampler_is_deterministic_for_a_seed(split):
    batches = _take(_sampler(split), 5)
    _assert_same_batches(batches, _take(_sampler(split), 5))
    for batch in batches:
        assert batch["inputs"].shape == batch["labels"].shape == (8, LENGTH)
        assert batch["puzzle_identifiers"].shape == (8,)
        assert all(v.dtype == torch.int64 and v.device == CPU for v in batch.values())
    other = _take(_sampler(split, seed=SEED + 1), 5)
    assert [_pairs(b) for b in other] != [_pairs(b) for b in batches]


@pytest.mark.parametrize("batch_size", [8, 10, 7, 50])
def test_an_epoch_visits_every_example_and_variant_once(split, batch_size):
    """Batch 8 divides the epoch of 24, 10 and 7 do not (batches straddle epochs), 50
    spans more than two epochs in one batch."""
    sampler = _sampler(split, batch_size=batch_size)
    epochs = 5
    steps = -(-epochs * EPOCH // batch_size)
    stream = [pair for batch in _take(sampler, steps) for pair in _pairs(batch)]
    orders = [stream[k * EPOCH : (k + 1) * EPOCH] for k in range(epochs)]
    for order in orders:
        assert Counter(order) == ALL_PAIRS
    assert len({tuple(order) for order in orders}) == epochs  # each epoch is reshuffled
    assert (sampler.epoch, sampler.offset) == divmod(steps * batch_size, EPOCH)


def test_sampler_resumes_the_exact_sequence(split):
    straight = _sampler(split, batch_size=10)
    _take(straight, 5)  # stops mid-epoch (50 = 2 epochs + 2)
    state = straight.state_dict()
    assert state == {"epoch": 2, "offset": 2}
    expected = _take(straight, 7)

    resumed = _sampler(split, batch_size=10)
    resumed.load_state_dict(dict(state))
    _assert_same_batches(expected, _take(resumed, 7))
    assert resumed.state_dict() == straight.state_dict()


def test_ranks_slices_make_the_single_process_batch(split):
    single = _sampler(split, batch_size=10)
    ranks = [_sampler(split, batch_size=10, rank=r, world_size=2) for r in range(2)]
    assert [s.local_batch_size for s in ranks] == [5, 5]
    for _ in range(6):  # crosses epoch boundaries (60 rows = 2.5 epochs)
        whole = single.next_batch(CPU)
        parts = [s.next_batch(CPU) for s in ranks]
        for key, value in whole.items():
            assert torch.equal(torch.cat([p[key] for p in parts]), value), key
    assert all(s.state_dict() == single.state_dict() for s in ranks)


def test_labels_and_augmentation(split):
    """Ignore ids become -100; only variants > 0 are augmented, by the task's augment
    seeded with mix_seed(seed, example, variant)."""
    tagging = TaggingTask()
    order = [pair for b in _take(_sampler(split, tagging, batch_size=12), 4) for pair in _pairs(b)]
    assert Counter(tagging.calls) == Counter(p for p in order if p[1] > 0)  # variant 0: never

    task = ReverseTask()
    sampler = _sampler(split, task, batch_size=12)
    inputs, labels, _ = _arrays()
    rows = 0
    for batch in _take(sampler, 4):  # the same visiting order: it depends on the seed only
        for row in range(12):
            example, variant = order[rows]
            rows += 1
            want_in, want_lab = inputs[example], labels[example]
            if variant:
                want_in, want_lab = task.augment(
                    want_in, want_lab, mix_seed(SEED, example, variant)
                )
            want_lab = np.where(want_lab == task.ignore_label_id, IGNORE_LABEL, want_lab)
            np.testing.assert_array_equal(batch["inputs"][row].numpy(), want_in)
            np.testing.assert_array_equal(batch["labels"][row].numpy(), want_lab)
            assert batch["puzzle_identifiers"][row] == example + 1
        assert (batch["labels"] == IGNORE_LABEL).any() and (batch["labels"] != 0).all()
    assert {v for _, v in order} == set(range(AUGMENTATIONS + 1))  # every variant was drawn


def test_a_global_batch_that_does_not_divide_over_ranks_is_refused(split):
    with pytest.raises(DataError, match=r"train\.global_batch_size \(9\)") as error:
        _sampler(split, batch_size=9, rank=0, world_size=2)
    assert "2 processes" in str(error.value)


def test_sampler_refuses_an_empty_split(tmp_path):
    empty = np.zeros((0, LENGTH), dtype=np.uint8)
    split = Split(tmp_path, empty, empty, np.zeros(0, np.int32), {"num_examples": 0})
    with pytest.raises(DataError, match=str(tmp_path)):
        TrainSampler(split, ReverseTask(), 8)  # never draw from it: that would hang


# -- eval_batches --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("world_size", "batch_size", "limit"), [(1, 4, None), (2, 2, None), (3, 2, 5), (2, 64, 100)]
)
def test_eval_batches_cover_each_example_once_across_ranks(split, world_size, batch_size, limit):
    task = ReverseTask()
    seen: list[int] = []
    for rank in range(world_size):
        for rows, batch in eval_batches(
            split, task, batch_size, CPU, limit=limit, rank=rank, world_size=world_size
        ):
            assert len(rows) <= batch_size
            seen.extend(rows.tolist())
            np.testing.assert_array_equal(batch["inputs"].numpy(), split.inputs[rows])
            stored = split.labels[rows].astype(np.int64)
            expected = np.where(stored == task.ignore_label_id, IGNORE_LABEL, stored)
            np.testing.assert_array_equal(batch["labels"].numpy(), expected)
            np.testing.assert_array_equal(
                batch["puzzle_identifiers"].numpy(), split.puzzle_identifiers[rows]
            )
    total = N if limit is None else min(limit, N)
    assert sorted(seen) == list(range(total))


class RenamingTask(ReverseTask):
    """Every variant is a puzzle of its own: identifier 100 * variant + the stored one."""

    def training_example(self, split, index, variant, seed):
        inputs, labels, identifier = super().training_example(split, index, 0, seed)
        return inputs, labels, 100 * variant + identifier


def test_a_task_may_serve_each_variant_under_its_own_puzzle_identifier(tmp_path):
    inputs, labels, identifiers = _arrays()
    path = write_split(tmp_path / "train", inputs, labels, identifiers, variants=4)
    split = read_split(path)
    assert split.metadata["variants"] == 4
    sampler = TrainSampler(split, RenamingTask(), EPOCH, AUGMENTATIONS, seed=SEED)
    batch = sampler.next_batch(CPU)
    served = Counter(batch["puzzle_identifiers"].tolist())
    # one epoch: every example once under each of its 4 identifiers
    assert served == Counter(100 * v + 1 + e for e in range(N) for v in range(4))
    rows = batch["inputs"].numpy()
    for row, identifier in zip(rows, batch["puzzle_identifiers"].tolist(), strict=True):
        np.testing.assert_array_equal(row, inputs[identifier % 100 - 1])


def test_a_split_with_fixed_variants_refuses_another_augmentation_count(tmp_path):
    inputs, labels, identifiers = _arrays()
    split = read_split(write_split(tmp_path / "train", inputs, labels, identifiers, variants=10))
    with pytest.raises(DataError, match=r"data\.augmentations must be 9, not 3"):
        TrainSampler(split, RenamingTask(), 8, AUGMENTATIONS)

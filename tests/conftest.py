"""Shared fixtures: tiny model configs and batches that run in milliseconds."""

from __future__ import annotations

import copy

import pytest
import torch

from . import tiny_task

TINY = {
    "vocab_size": 11,
    "seq_len": 9,
    "hidden_size": 32,
    "options": {"attention": {"num_heads": 4}},
    "expansion": 2.0,
    "num_layers": 2,
    "cycles": 3,
    "think_steps": 2,
    "puzzle_emb_len": 4,
    "num_puzzle_identifiers": 5,
    "halt_max_steps": 3,
    "dtype": "float32",
}


@pytest.fixture
def tiny_config() -> dict:
    """A tiny attention + rope model config (edit freely: it is a copy)."""
    return copy.deepcopy(TINY)


def _make_batch(size: int = 4, seq_len: int = 9, vocab: int = 11, ids: int = 5, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return {
        "inputs": torch.randint(1, vocab, (size, seq_len), generator=generator),
        "labels": torch.randint(1, vocab, (size, seq_len), generator=generator),
        "puzzle_identifiers": torch.randint(0, ids, (size,), generator=generator),
    }


@pytest.fixture
def make_batch():
    """``make_batch(size=4, seq_len=9, vocab=11, ids=5, seed=0)`` -> a random batch dict."""
    return _make_batch


@pytest.fixture
def batch():
    return _make_batch()


@pytest.fixture
def reverse(trm_registry, tmp_path, monkeypatch):
    """The tiny task registered, its data cached under tmp_path; returns the runs folder."""
    trm_registry.add_plugin(tiny_task, distribution="tests")
    monkeypatch.setenv("TRM_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "runs"

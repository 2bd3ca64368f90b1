"""Our checkpoint format, atomic writes, and ``trm-convert`` from reference checkpoints."""

from __future__ import annotations

import pytest
import torch

import trm_core
from trm_core import CheckpointError, build_model, load_checkpoint, save_checkpoint
from trm_core.cli import convert_main
from trm_core.files import atomic_save

from .reference_oracle import make_reference_state_dict, save_reference_checkpoint


def _logits(model, batch, steps=2):
    carry = model.initial_carry(batch)
    with torch.no_grad():
        for _ in range(steps):
            carry, out = model(carry, batch)
    return out


@pytest.mark.device
def test_round_trip_gives_the_same_model(tmp_path, tiny_config, batch, device):
    config = {**tiny_config, "mixer": "mlp", "options": {"grid": {"positions": "none"}}}
    model = build_model(config, device=device).eval()
    batch = {key: value.to(device) for key, value in batch.items()}
    with torch.no_grad():  # make every weight matter
        model.encoder.puzzle_embedding.weights.normal_()
        model.halting_head.linear.weight.normal_()
    path = save_checkpoint(tmp_path / "model.pt", model, note="hello")
    payload = trm_core.read_checkpoint(path)
    assert payload["note"] == "hello"
    assert payload["components"]["mixer"]["distribution"] == "trm-core"
    assert {(p["kind"], p["name"]) for p in payload["plugins"]} >= {("mixer", "mlp")}
    loaded = load_checkpoint(path, device=device)
    assert not loaded.training and loaded.config == model.config
    expected, got = _logits(model, batch), _logits(loaded, batch)
    torch.testing.assert_close(got["logits"], expected["logits"], rtol=0, atol=0)
    torch.testing.assert_close(got["halt_logits"], expected["halt_logits"], rtol=0, atol=0)


def test_checkpoint_of_another_shape_lists_the_keys(tmp_path, tiny_config):
    path = save_checkpoint(tmp_path / "small.pt", build_model(tiny_config, device="cpu"))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, config_overrides={"hidden_size": 64, "num_layers": 3})
    message = str(info.value)
    assert f"checkpoint {path} does not fit the model" in message
    assert (
        "shape mismatch at encoder.embed_tokens.weight: checkpoint [11, 32], model [11, 64]"
        in message
    )
    assert "missing key core.net.blocks.2.token_mixer.qkv_proj.weight" in message


def test_foreign_files_get_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "absent.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.pt: not a readable PyTorch checkpoint"):
        load_checkpoint(garbage)
    reference = tmp_path / "reference.pt"
    torch.save({"_orig_mod.model.inner.H_init": torch.zeros(4)}, reference)
    with pytest.raises(CheckpointError, match="convert it with trm-convert"):
        load_checkpoint(reference)


def test_atomic_save_never_leaves_a_half_written_file(tmp_path):
    path = tmp_path / "state.pt"
    atomic_save({"step": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        atomic_save({"step": 2, "bad": Unpicklable()}, path)
    assert torch.load(path) == {"step": 1}  # the previous checkpoint survives
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]  # no temporary left


REFERENCE_SHAPES = dict(
    hidden_size=32,
    num_heads=4,
    expansion=4,
    L_layers=2,
    vocab_size=11,
    seq_len=9,
    num_puzzle_identifiers=3,
    puzzle_emb_ndim=32,
    puzzle_emb_len=4,
)


def test_trm_convert_writes_a_loadable_checkpoint(tmp_path, capsys, make_batch):
    state = make_reference_state_dict(**REFERENCE_SHAPES, pos_encodings="none", mlp_t=True, seed=3)
    source = tmp_path / "reference.pt"
    save_reference_checkpoint(state, source, compiled=True)
    target = tmp_path / "ours.pt"
    options = [
        "-o",
        "L_cycles=2",
        "-o",
        "H_cycles=2",
        "-o",
        "puzzle_emb_len=4",
        "-o",
        "pos_encodings=none",
    ]
    assert convert_main([str(source), str(target), *options]) == 0
    printed = capsys.readouterr().out
    assert "mlp mixer" in printed and f"wrote {target}" in printed

    batch = make_batch(ids=3)
    ours = load_checkpoint(target)
    direct = trm_core.load_reference_checkpoint(
        source, L_cycles=2, H_cycles=2, puzzle_emb_len=4, pos_encodings="none"
    )
    assert ours.config == direct.config and ours.config.mixer == "mlp"
    torch.testing.assert_close(_logits(ours, batch)["logits"], _logits(direct, batch)["logits"])

    # Nothing already written is overwritten by accident.
    assert convert_main([str(source), str(target), *options]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert convert_main([str(source), str(target), *options, "--force"]) == 0


def test_trm_convert_reports_bad_options(tmp_path, capsys):
    state = make_reference_state_dict(**REFERENCE_SHAPES, pos_encodings="rope", mlp_t=False, seed=1)
    source = tmp_path / "reference.pt"
    save_reference_checkpoint(state, source, compiled=False)
    assert convert_main([str(source), str(tmp_path / "out.pt"), "-o", "L_cycle=2"]) == 2
    err = capsys.readouterr().err
    assert "unknown reference option 'L_cycle' (did you mean 'L_cycles'" in err
    assert not (tmp_path / "out.pt").exists()

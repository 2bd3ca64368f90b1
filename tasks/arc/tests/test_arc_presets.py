"""The ARC presets: the paper's two recipes (arXiv:2510.04871), and the CPU recipe."""

from __future__ import annotations

import pytest

import trm_core
from trm_core.config import build_run_config
from trm_core.run import resolve
from trm_core.trainer import eval_interval_for, steps_for
from trm_plugin_arc import ArcTask

# The training pairs of paper-arc1: ARC-AGI-1 training (all pairs) + evaluation
# (demonstrations) + ConceptARC (all pairs), as the data build counts them.
ARC1_PAIRS = 1302 + 416 + 1363 + 427 + 480


@pytest.mark.parametrize("name", ["paper-arc1", "paper-arc2"])
def test_the_paper_recipes(name):
    mapping, _, _ = resolve("arc", preset=name)
    mapping["model"].update(vocab_size=12, seq_len=900, num_puzzle_identifiers=2)
    config = build_run_config(mapping)
    model, train = config.model, config.train
    positions = model.options["grid"]["positions"]
    assert (model.mixer, positions, model.hidden_size) == ("attention", "rope", 512)
    assert (model.cycles, model.think_steps, model.halt_max_steps) == (3, 4, 16)
    assert (train.global_batch_size, train.lr, train.puzzle_emb_lr) == (768, 1e-4, 1e-2)
    assert (train.weight_decay, train.puzzle_emb_weight_decay, train.ema_rate) == (0.1, 0.1, 0.999)
    assert config.data.augmentations == 999
    options = ArcTask.options_from(config.data.options)
    assert options.augmentations == 1000 and options.translate and options.canvas == 30
    assert set(options.sets) == {"training", "evaluation", "concept"}
    assert options.test_set == "evaluation"
    version = "arc-agi-1" if name == "paper-arc1" else "arc-agi-2"
    assert options.sets["training"].version == options.sets["evaluation"].version == version
    model = {**mapping["model"], "dtype": "float32"}  # shapes only: any dtype counts the same
    assert trm_core.build_model(model, device="meta").num_parameters() == 6_829_058
    if name == "paper-arc1":
        # The paper: steps = epochs x groups x mean pairs per group / batch, 100,000 epochs,
        # an evaluation every 10,000: here an epoch is every pair x 1,000 augmentations.
        epoch = ARC1_PAIRS * 1000
        assert steps_for(config, epoch) == -(-100_000 * ARC1_PAIRS // 768) == 519_271
        assert eval_interval_for(config, epoch) == -(-10_000 * ARC1_PAIRS // 768)


def test_cpu_is_the_default_without_cuda_and_paper_arc1_with_it():
    assert resolve("arc", cuda=False)[2].startswith("preset cpu")
    mapping, _, chosen = resolve("arc", mixer="attention", cuda=True)
    assert chosen.startswith("preset paper ")
    assert mapping["data"]["options"]["sets"]["training"]["version"] == "arc-agi-1"
    cpu, _, _ = resolve("arc", preset="cpu", mixer="attention")
    assert cpu["model"]["options"]["grid"]["positions"] == "rope"
    options = ArcTask.options_from(cpu["data"]["options"])
    assert cpu["data"]["augmentations"] == options.augmentations - 1

"""docs/config.md is generated from the config classes: check it cannot drift."""

from __future__ import annotations

from pathlib import Path

import attrs

from trm_core import Registry
from trm_core.config import DataConfig, EvalConfig, ModelConfig, RunConfig, TrainConfig
from trm_core.configdoc import reference

DOC = Path(__file__).resolve().parents[1] / "docs" / "config.md"


def test_every_key_has_a_meaning():
    for cls in (RunConfig, ModelConfig, DataConfig, TrainConfig, EvalConfig):
        for field in attrs.fields(cls):
            assert field.metadata.get("doc"), f"{cls.__name__}.{field.name} has no doc"


def test_docs_config_md_is_the_generated_reference():
    generated = reference(Registry(select={"trm-core"}).load())
    assert DOC.read_text(encoding="utf-8") == generated, (
        "docs/config.md is out of date: run "
        "TRM_LOAD_PLUGINS=trm-core python -m trm_core.configdoc > docs/config.md"
    )


def test_the_reference_names_every_key_with_its_default():
    text = DOC.read_text(encoding="utf-8")
    for prefix, cls in (("model", ModelConfig), ("train", TrainConfig), ("eval", EvalConfig)):
        for field in attrs.fields(cls):
            assert f"| `{prefix}.{field.name}` |" in text
    assert "| `train.lr_warmup_steps` | int | `2000` |" in text
    assert "| `model.options.attention.num_heads` | int | `8` |" in text


def test_a_short_run_is_told_about_warm_up_and_ema():
    from tests.tiny_task import run_config
    from trm_core.training import schedule_notes

    config = run_config(train={"lr_warmup_steps": 2000, "ema_rate": 0.999})
    warm_up, ema = schedule_notes(config, total_steps=300)
    assert "train.lr_warmup_steps (2000) is not below the run's 300 steps" in warm_up
    assert "train.ema_rate 0.999 averages over ~1,000 steps" in ema
    assert schedule_notes(run_config(train={"lr_warmup_steps": 4, "ema_rate": 0.9}), 40) == []

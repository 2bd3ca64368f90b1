"""trm_core.structure recurses: nested attrs classes, dicts of them, their messages."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from trm_core import ConfigError, Task, structure
from trm_core.config import apply_override, build_run_config

SPLIT = {"expects": "be a mapping of split options (source: generate, csv)"}


@attrs.define(kw_only=True)
class Split:
    source: str = "generate"
    count: int | None = None

    def __attrs_post_init__(self) -> None:
        if self.source == "generate" and self.count is None:
            raise ValueError("source generate needs count: N")


@attrs.define(kw_only=True)
class Options:
    seed: int = 0
    train: Split = attrs.field(factory=lambda: Split(count=10), metadata=SPLIT)
    extra: dict[str, Split] = attrs.field(
        factory=dict, metadata={"expects": "map names to splits", "each": SPLIT["expects"]}
    )
    plain: Split | None = None


def test_a_nested_class_is_built_from_its_mapping():
    options = structure(Options, {"train": {"count": 3}, "plain": {"count": 1}}, "data.options")
    assert options.train == Split(count=3) and options.plain == Split(count=1)
    assert structure(Options, {}, "data.options").train == Split(count=10)
    assert structure(Options, {"plain": None}, "data.options").plain is None


def test_a_dict_of_classes_drops_null_entries_and_reads_null_as_empty():
    options = structure(Options, {"extra": {"a": {"count": 2}, "b": None}}, "data.options")
    assert options.extra == {"a": Split(count=2)}
    assert structure(Options, {"extra": None}, "data.options").extra == {}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"train": 5}, "data.options.train must be a mapping of split options "
         "(source: generate, csv), got 5"),
        ({"train": None}, "data.options.train must be a mapping of split options "
         "(source: generate, csv), got null; leave it out for the defaults"),
        ({"extra": [1]}, "data.options.extra must map names to splits, got [1]"),
        ({"extra": {"a": 5}}, "data.options.extra.a must be a mapping of split options "
         "(source: generate, csv), got 5"),
        ({"plain": 5}, "data.options.plain must be a mapping of keys (count, source), got 5"),
        ({"train": {"sourc": "csv"}}, "unknown key data.options.train.sourc "
         "(did you mean 'source'?). Valid keys of data.options.train: count, source"),
        ({"extra": {"a": {"cont": 1}}}, "unknown key data.options.extra.a.cont "
         "(did you mean 'count'?)"),
        ({"train": {"count": 2.5}}, "data.options.train.count must be an integer or null, got 2.5"),
        ({"train": {"count": None}}, "data.options.train: source generate needs count: N"),
    ],
)  # fmt: skip
def test_each_refusal_names_the_key_in_full(data, message):
    with pytest.raises(ConfigError) as error:
        structure(Options, data, "data.options")
    assert message in str(error.value)


def test_a_class_made_in_a_function_keeps_its_plain_checks():
    @attrs.define(kw_only=True)
    class Local:
        size: int = 1
        other: Any = None

    with pytest.raises(ConfigError, match="where.size must be an integer, got 'x'"):
        structure(Local, {"size": "x"}, "where")


def test_a_run_config_names_its_sections():
    model = {"vocab_size": 3, "seq_len": 4}
    with pytest.raises(ConfigError, match=r"^config: model must be a mapping \(e\.g\. model: "):
        build_run_config({"task": "t", "model": 5})
    with pytest.raises(ConfigError, match=r"config: data\.options must be a mapping .*got 7"):
        build_run_config({"task": "t", "model": model, "data": {"options": 7}})
    with pytest.raises(ConfigError, match="unknown key config: train.step "):
        build_run_config({"task": "t", "model": model, "train": {"step": 1}})
    with pytest.raises(ConfigError, match="config: the model section is missing"):
        build_run_config({"task": "t"})
    with pytest.raises(ConfigError, match=r"give a mapping \(e\.g\. loggers: \{tensorboard: "):
        apply_override({}, "loggers=5")
    assert apply_override({}, "data.options.train=5") == {"data": {"options": {"train": 5}}}


class _Task(Task):
    vocab_size, grid_shape = 3, (1, 2)

    def presets(self):
        return {"cpu": {}}

    def build_dataset(self, options, out_dir):
        return out_dir

    def metrics(self, inputs, labels, predictions):
        return {}


def test_a_task_reads_its_options_with_options_from():
    class Typed(_Task):
        Options = Options

    assert Typed.options_from({"seed": 2}).seed == 2
    with pytest.raises(ConfigError, match="unknown key data.options.sed"):
        Typed().configure({"sed": 1})  # the default configure checks them
    assert _Task.options_from({"anything": 1}) == {"anything": 1}  # no Options: as given
    _Task().configure({"anything": 1})

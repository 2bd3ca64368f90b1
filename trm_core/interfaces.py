"""The five interfaces every TRM component implements.

Shapes use: B batch, S task sequence length (``seq_len``), P puzzle-embedding
prefix length, L = P + S model sequence length, D hidden size, V vocabulary.

Network components (Encoder, Mixer, ThinkActCore, HaltingHead) are
``torch.nn.Module`` subclasses constructed from a :class:`~trm_core.ModelConfig`.
Each may declare its own options (an attrs class, ``Options``), read from the
config section ``model.options.<its registered name>``, and requirements on
the other components' options (``requires``). Each may map its parameter
names to those of the reference TRM code through ``reference_keys`` so that
reference checkpoints load into it.

A class that leaves an abstract member unimplemented is refused when its
plugin loads (``trm-plugins`` reports it and exits 1).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs
import numpy as np
from torch import Tensor, nn

from .config import ConfigError, ModelConfig, structure

#: Rotary position tables ``(cos, sin)``, each [L, head_dim] float32, or None.
Rotary = tuple[Tensor, Tensor] | None


@attrs.frozen
class Split:
    """One split of a task's puzzles (arrays may be memory-mapped): what ``build_dataset``
    writes (``trm_core.write_split``), ``read_split`` and ``Task.read_data`` give, and
    ``training_example`` and ``evaluate_predictions`` take."""

    path: Path
    inputs: np.ndarray  # [N, S]
    labels: np.ndarray  # [N, S]
    puzzle_identifiers: np.ndarray  # [N]
    metadata: dict[str, Any]

    def __len__(self) -> int:
        return len(self.inputs)


def read_options(options: type | None, section: Mapping[str, Any], where: str, owner: str) -> Any:
    """A plugin's ``Options`` (an attrs class) from its config ``section`` at ``where``,
    with the config's strict, nearest-key errors; None for a plugin without options,
    which refuses any key naming ``owner`` ("the mixer 'mlp'")."""
    if options is None:
        if section:
            raise ConfigError(
                f"{where}: {owner} takes no options, got {', '.join(sorted(section))}"
            )
        return None
    return structure(options, dict(section), where=where)


class Component(nn.Module, ABC):
    """What the four network interfaces share: the config, options and requirements."""

    #: The plugin kind, also the ModelConfig field naming the chosen implementation.
    kind: ClassVar[str]
    #: This component's own options: an attrs class (``kw_only``, every field with a
    #: default), read from ``model.options.<registered name>`` with the same strict
    #: nearest-key errors as every other section. None: the component takes no options.
    Options: ClassVar[type | None] = None
    #: What this component needs of the others, checked when the model is built:
    #: ``{"<kind>.<option>": allowed}`` (another component's option; skipped when
    #: that component has no such option) or ``{"<ModelConfig field>": allowed}``,
    #: ``allowed`` a value or a tuple of values.
    requires: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        #: An instance of ``Options`` from the config (None without ``Options``).
        self.options = type(self).options_from(config)

    @classmethod
    def options_from(cls, config: ModelConfig) -> Any:
        """This component's options in ``config`` (defaults where the section is absent).

        Raises ConfigError naming ``model.options.<name>.<key>`` for an unknown key
        (with the nearest valid names) or a bad value.
        """
        name = getattr(config, cls.kind)
        section = config.options.get(name) or {}
        where = f"model.options.{name}"
        if not isinstance(section, Mapping):
            raise ConfigError(f"{where} must be a mapping of option: value, got {section!r}")
        return read_options(cls.Options, section, where, f"the {cls.kind} {name!r}")


class Encoder(Component):
    """Tokens and puzzle identifiers -> the input embedding x.

    Owns the token table, the puzzle-embedding prefix and the positions, and
    therefore the prefix length P and the rotary tables.
    """

    kind = "encoder"

    @property
    @abstractmethod
    def prefix_len(self) -> int:
        """P, the number of tokens this encoder prepends to every sequence."""

    @abstractmethod
    def forward(self, inputs: Tensor, puzzle_identifiers: Tensor) -> Tensor:
        """Embed one batch.

        Args:
            inputs: [B, S] integer tokens (0 is PAD).
            puzzle_identifiers: [B] integer puzzle ids (0 is the blank id).

        Returns:
            x: [B, L, D] in the forward dtype, L = P + S.
        """

    def rotary(self, length: int, dim: int) -> Rotary:
        """Rotary tables for ``length`` (= L) positions of width ``dim``, or None.

        The model calls this once, when it is built, with the mixer's
        ``rotary_dim`` (never when that is None), and keeps the tables. Default:
        None (this encoder gives no rotary positions).

        Returns:
            ``(cos, sin)``, each [length, dim] float32, or None.
        """
        return None

    def reference_keys(self) -> dict[str, str]:
        """Map this module's state-dict keys to the reference code's keys.

        Returns:
            {our key (relative to this module): reference key (relative to the
            reference's ``model.inner.``)}. Empty when there is no reference twin.
        """
        return {}


class Mixer(Component):
    """The token-mixing sub-layer of a block, post-norm included.

    A block is ``h = mixer(h); h = rms(h + SwiGLU_D(h))``; the mixer owns its
    residual and normalisation because the axis it normalises over is its own
    business (the MLP mixer normalises over the sequence axis).
    """

    #: The sub-module name this mixer has in a reference block
    #: (``self_attn`` or ``mlp_t``); None if it has no reference twin.
    reference_prefix: ClassVar[str | None] = None
    #: The reference's ``mlp_t`` flag value this mixer corresponds to.
    reference_mlp_t: ClassVar[bool | None] = None
    kind = "mixer"
    #: The width of the rotary tables this mixer applies (attention: the head
    #: width), set in ``__init__``; None (the default): it ignores rotary tables.
    rotary_dim: int | None = None

    def __init__(self, config: ModelConfig, length: int) -> None:
        """``length`` is L = P + S, the number of positions the mixer sees."""
        super().__init__(config)
        self.length = length

    @abstractmethod
    def forward(self, hidden: Tensor, rotary: Rotary) -> Tensor:
        """Mix information across positions.

        Args:
            hidden: [B, L, D] in the forward dtype.
            rotary: the encoder's rotary tables or None (mixers may ignore them).

        Returns:
            [B, L, D], same dtype: the sub-layer's output after residual and norm.
        """

    def flops(self, batch: int) -> int | None:
        """Matmul FLOPs of one forward call on [batch, L, D] (2 per multiply-add), for
        ``trm-bench``'s model-FLOPs and MFU figures; None (the default): not known."""
        return None

    def reference_keys(self) -> dict[str, str]:
        """{our key: reference key}, both relative to this mixer; see Encoder."""
        return {}


class ThinkActCore(Component):
    """One supervision step of recursive reasoning.

    Holds the reasoning network and the initial states. Given the carry (y, z)
    and the input embedding x it runs T cycles of n think updates
    ``z <- f(z, y + x)`` and one act update ``y <- f(y, z)``; the paper's core
    takes gradients through the last cycle only.
    """

    kind = "core"

    def __init__(self, config: ModelConfig, make_mixer: Callable[[], Mixer]) -> None:
        """``make_mixer()`` returns a fresh token mixer for each block it builds."""
        super().__init__(config)

    @abstractmethod
    def initial_state(self) -> tuple[Tensor, Tensor]:
        """The fixed starting answer and latent: ``(y_init, z_init)``, each [D]."""

    @abstractmethod
    def forward(self, y: Tensor, z: Tensor, x: Tensor, rotary: Rotary) -> tuple[Tensor, Tensor]:
        """Run one supervision step.

        Args:
            y: [B, L, D] current answer state (forward dtype).
            z: [B, L, D] current latent state.
            x: [B, L, D] input embedding from the encoder.
            rotary: the encoder's rotary tables or None.

        Returns:
            ``(y, z)`` after the step, [B, L, D] each, still attached to the
            autograd graph (the model detaches them for the carry).
        """

    def reference_keys(self) -> dict[str, str]:
        """{our key: reference key}, both relative to this core; see Encoder."""
        return {}


class HaltingHead(Component):
    """Reads the answer state and says whether to stop thinking."""

    kind = "halting_head"

    @abstractmethod
    def forward(self, y: Tensor) -> dict[str, Tensor]:
        """Score halting for every slot.

        Args:
            y: [B, L, D] the answer state after a supervision step.

        Returns:
            ``{"halt_logits": [B] float32}`` (halt when > 0), optionally with
            more [B] entries (the paper's head adds ``"continue_logits"``).
        """

    def reference_keys(self) -> dict[str, str]:
        """{our key: reference key}, both relative to this head; see Encoder."""
        return {}


#: The optional Task members that have no default behaviour: a task has the
#: capability when its class defines the member (``Task.supports``).
CAPABILITIES = (
    "augment",
    "inverse_augment",
    "parse_puzzle",
    "read_data",
    "export_state",
    "import_state",
    "source_files",
    "typed_puzzle",
)


class Task(ABC):
    """Everything problem-specific about one kind of puzzle.

    Required (abstract): ``vocab_size``, ``grid_shape``, ``presets``,
    ``build_dataset`` and ``metrics``: what the engine cannot train or score
    without. Everything else is optional:

    - capabilities the engine checks for with :meth:`supports` and does without:
      ``augment`` (without it ``data.augmentations`` must be 0),
      ``inverse_augment`` (never called by the engine; for a task's own voting
      and tests) and ``parse_puzzle`` (without it, and without its own
      ``read_puzzles``, ``trm-solve`` says the task cannot read puzzles);
    - members with a default: ``configure``, ``read_puzzles``,
      ``training_example``, ``evaluate_predictions``, ``check_answer``,
      ``render_text`` (rows of token numbers), ``render_image`` (tokens as grey
      levels), ``token_style`` (token numbers on grey levels, for ``trm-demo``),
      ``example_puzzles`` (none) and ``data_version``.

    Arrays below are numpy; a grid is [rows, cols] of tokens, a sequence [S].
    Stored splits keep tokens as uint8 (int32 when V > 256): cast before
    arithmetic that can go below zero (``np.diff``) or past 255.
    """

    #: Token used as the "do not score" label on disk.
    ignore_label_id: ClassVar[int] = 0
    #: The version of this task's data: built data sets are cached per (task,
    #: options, data version). Change it when a fix changes what ``build_dataset``
    #: writes. None (the default): the task distribution's version.
    data_version: ClassVar[str | None] = None
    #: The task's data options: an attrs class (``kw_only``, every field with a
    #: default), read from ``data.options`` by :meth:`options_from` with the same strict,
    #: nearest-key errors as the config. None (the default): the task reads them itself.
    Options: ClassVar[type | None] = None

    # -- required ------------------------------------------------------------

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """V, including PAD (token 0)."""

    @property
    @abstractmethod
    def grid_shape(self) -> tuple[int, int]:
        """(rows, cols) of one puzzle grid; S = rows * cols."""

    @property
    def seq_len(self) -> int:
        """S, the flattened grid length."""
        rows, cols = self.grid_shape
        return rows * cols

    @abstractmethod
    def presets(self) -> dict[str, dict[str, Any]]:
        """Named configurations (as nested mappings, like YAML files).

        Returns:
            {preset name: config mapping}; must include ``"cpu"``.
        """

    @abstractmethod
    def build_dataset(self, options: Mapping[str, Any], out_dir: Path) -> Path:
        """Write the original (un-augmented) puzzles to ``out_dir``.

        Writes the splits ``out_dir/"train"`` and ``out_dir/"test"`` with
        :func:`trm_core.write_split`; :func:`trm_core.build_once` makes the
        folder atomically and reuses it when it is complete.

        Args:
            options: the task's data options (``data.options`` of the config).
            out_dir: a folder the task owns, one per distinct ``options`` and
                data version: reuse what is already there instead of building it again.

        Returns:
            ``out_dir``.
        """

    @abstractmethod
    def metrics(
        self, inputs: np.ndarray, labels: np.ndarray, predictions: np.ndarray
    ) -> dict[str, float]:
        """Task-specific scores, reported beside the engine's token and exact accuracy.

        Args:
            inputs, labels, predictions: [N, S] token arrays.

        Returns:
            {metric name: value}; may be empty.
        """

    # -- optional capabilities (no default behaviour) ------------------------

    def augment(
        self, inputs: np.ndarray, labels: np.ndarray, seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Capability: apply the augmentation drawn deterministically from ``seed``.

        Args:
            inputs, labels: [S] token sequences of one example.
            seed: identifies the augmentation; the same seed gives the same one.

        Returns:
            The augmented ``(inputs, labels)``, [S] each.
        """
        raise NotImplementedError(self._lacks("augment"))

    def inverse_augment(self, tokens: np.ndarray, seed: int) -> np.ndarray:
        """Capability: undo ``augment`` with the same ``seed`` on a [S] sequence."""
        raise NotImplementedError(self._lacks("inverse_augment"))

    def parse_puzzle(self, text: str) -> np.ndarray:
        """Capability: a user's puzzle (the task's own text format) as [S] input tokens.

        Raises ValueError naming what is wrong with the text.
        """
        raise NotImplementedError(self._lacks("parse_puzzle"))

    def read_data(self, path: Path) -> Split:
        """Capability: one file of puzzles and their answers, in one of the task's own
        formats, as a split to score (``trm-eval --data FILE``; the split is named after
        the file).

        Called on a task configured with the model's data options (and given its
        :meth:`import_state`), so it reads the puzzles the model was trained for. Make
        the split with :func:`trm_core.make_split`, its ``path`` the file.

        Raises :class:`~trm_core.DataError` naming the file (and the line or puzzle)
        when the file is none of the task's formats, is malformed, or holds puzzles the
        model cannot take (another grid size; puzzles it never learned the identifiers
        of), saying what would make them fit.
        """
        raise NotImplementedError(self._lacks("read_data"))

    def export_state(self, data_dir: Path) -> dict[str, Any]:
        """Capability: what a model folder must keep of the task's built data for the
        model to answer without it (ARC: which puzzle identifiers belong to which task,
        and each task's augmentations).

        Args:
            data_dir: the data folder ``build_dataset`` wrote from the model's options.

        Returns:
            ``{name: value}``: numpy arrays (kept in ``model.safetensors``) and JSON
            values (kept in ``config.json``). Names are plain identifiers.
        """
        raise NotImplementedError(self._lacks("export_state"))

    def import_state(self, state: Mapping[str, Any]) -> None:
        """Capability: take back what :meth:`export_state` returned (arrays as numpy
        arrays), when a model is loaded; called after :meth:`configure`, before any
        puzzle is read. Raise :class:`~trm_core.DataError` for a state that does not fit."""
        raise NotImplementedError(self._lacks("import_state"))

    def source_files(self, options: Mapping[str, Any]) -> list[Path]:
        """Capability: the user's files ``build_dataset`` reads for ``options`` (a CSV, a
        puzzle list, ARC JSON), resolved as the task resolves them. The data cache is
        keyed on each one's resolved path, size, modification time and content hash, so
        an edited, replaced or deleted file is never served from the cache of its old
        content. Without it the engine takes every string option naming a file or a
        path (relative ones against the working folder)."""
        raise NotImplementedError(self._lacks("source_files"))

    def typed_puzzle(self, cells: list[list[str]]) -> str:
        """Capability: a puzzle typed cell by cell as the task's puzzle text (what
        :meth:`read_puzzles` reads). With it, ``trm-demo``'s page offers a grid of
        ``grid_shape`` to type into beside the text box.

        Args:
            cells: ``grid_shape`` rows of the cells' texts, ``""`` for a cell left empty;
                each as typed, so it may hold spaces or several characters.

        Raises ValueError naming the first cell (row and column, from 1) that is not one
        of the task's symbols.
        """
        raise NotImplementedError(self._lacks("typed_puzzle"))

    @classmethod
    def supports(cls, capability: str) -> bool:
        """Whether this task class implements the optional ``capability``
        (one of ``CAPABILITIES``)."""
        if capability not in CAPABILITIES:
            raise ValueError(
                f"unknown task capability {capability!r}; capabilities: {', '.join(CAPABILITIES)}"
            )
        return getattr(cls, capability) is not getattr(Task, capability)

    def _lacks(self, capability: str) -> str:
        return f"the task {type(self).__name__} does not implement Task.{capability}"

    # -- optional, with defaults -----------------------------------------------

    @classmethod
    def options_from(cls, options: Mapping[str, Any]) -> Any:
        """``Options`` from ``data.options`` (defaults for absent keys; nested attrs
        classes and ``dict[str, AttrsClass]`` fields structured too). Raises ConfigError
        naming ``data.options.<key>`` for an unknown key (with the nearest valid names)
        or a bad value. Without ``Options``: a plain copy of the mapping."""
        if cls.Options is None:
            return dict(options)
        return structure(cls.Options, options, where="data.options")

    def configure(self, options: Mapping[str, Any]) -> None:
        """Adapt to the run's data options before any size or data is used.

        Called with ``data.options`` before ``build_dataset`` and before the
        model is sized, on every process and when a run is loaded again. A task
        whose grid shape depends on its options (a maze's side) sets it here;
        raise :class:`~trm_core.ConfigError` naming the key for a bad value.
        Default: check them with :meth:`options_from` when the task has ``Options``;
        else nothing.
        """
        if self.Options is not None:
            self.options_from(options)

    def render_text(self, tokens: np.ndarray) -> str:
        """A [S] token sequence as human-readable text.

        Default: the grid's rows of token numbers, right-aligned.
        """
        rows, cols = self.grid_shape
        grid = np.asarray(tokens).reshape(rows, cols)
        width = len(str(int(grid.max(initial=0))))
        return "\n".join(" ".join(f"{int(t):>{width}}" for t in row) for row in grid)

    def token_style(self) -> list[tuple[str, str]]:
        """How each token is drawn in a grid for people (``trm-demo``'s page).

        Returns:
            ``[(symbol, colour)]``, one per token 0..V-1: the text shown in the cell
            (may be empty) and its background as a CSS colour (``#rrggbb``). Default:
            the token's number on a grey level (PAD: empty, white).
        """
        top = max(self.vocab_size - 1, 1)
        style = [("", "#ffffff")]
        for token in range(1, self.vocab_size):
            level = 245 - (110 * (token - 1)) // top  # light greys, dark text stays legible
            style.append((str(token), f"#{level:02x}{level:02x}{level:02x}"))
        return style

    def example_puzzles(self) -> list[tuple[str, str]]:
        """A few puzzles for people to try (``trm-demo`` offers them on its page).

        Returns:
            ``[(name, text)]``: each a short name and one puzzle in the task's own text
            format (what :meth:`read_puzzles` reads), of the configured grid shape, made
            without the network or files. Default: none.
        """
        return []

    def render_image(
        self, inputs: np.ndarray, prediction: np.ndarray, target: np.ndarray
    ) -> np.ndarray:
        """Draw one example for TensorBoard.

        Args:
            inputs, prediction, target: [S] token sequences.

        Returns:
            An RGB image, [H, W, 3] uint8. Default: the three grids side by side,
            tokens as grey levels, wrong predicted cells red.
        """
        rows, cols = self.grid_shape
        scale = 255 // max(self.vocab_size - 1, 1)
        grids = [
            np.asarray(g).reshape(rows, cols).astype(np.int64) for g in (inputs, prediction, target)
        ]
        panels = []
        for index, grid in enumerate(grids):
            panel = np.repeat((grid * scale).clip(0, 255).astype(np.uint8)[..., None], 3, axis=2)
            if index == 1:
                panel[grid != grids[2]] = (220, 40, 40)
            panels.append(panel)
            panels.append(np.full((rows, 1, 3), 128, dtype=np.uint8))
        image = np.concatenate(panels[:-1], axis=1)
        zoom = max(1, 96 // max(rows, 1))
        return image.repeat(zoom, axis=0).repeat(zoom, axis=1)

    def read_puzzles(self, text: str, source: str) -> list[tuple[str, np.ndarray]]:
        """Every puzzle in a user's text (a file or standard input), for ``trm-solve``.

        Returns:
            ``[(where, [S] input tokens)]``; ``where`` names the puzzle for
            messages (e.g. ``"puzzles.txt, line 3"``). Default: the whole text
            is one puzzle, parsed by :meth:`parse_puzzle`. Raises ValueError
            naming ``source`` and the place of the first bad puzzle, or saying
            that the task cannot read puzzles (no ``parse_puzzle``).
        """
        if not self.supports("parse_puzzle"):
            raise ValueError(
                f"this task cannot read puzzles: {type(self).__name__} implements neither "
                "Task.read_puzzles nor Task.parse_puzzle"
            )
        try:
            return [(source, self.parse_puzzle(text))]
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None

    def training_example(
        self, split: Split, index: int, variant: int, seed: int
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """One training row as the sampler serves it.

        Args:
            split: the training split.
            index: the example's row in ``split``.
            variant: 0 for the original, 1..``data.augmentations`` for an
                augmented variant (each drawn once per epoch).
            seed: ``mix_seed(train.seed, index, variant)``.

        Returns:
            ``(inputs [S], labels [S], puzzle identifier)``. Default: the stored
            row, through :meth:`augment` with ``seed`` when ``variant`` > 0, with
            its stored identifier. A task whose augmented variants are puzzles
            of their own (ARC: one identifier per augmentation) overrides this.
        """
        inputs, labels = np.array(split.inputs[index]), np.array(split.labels[index])
        if variant:
            inputs, labels = self.augment(inputs, labels, seed)
        return inputs, labels, int(split.puzzle_identifiers[index])

    def evaluate_predictions(
        self,
        split: Split,
        rows: np.ndarray,
        predictions: np.ndarray,
        halt_logits: np.ndarray,
        out_dir: Path | None,
        images: int,
    ) -> tuple[dict[str, float], list[np.ndarray]]:
        """Task-specific scores (and pictures) of one evaluation of ``split``.

        Args:
            split: the evaluated split.
            rows: [N] the rows evaluated (ascending; a prefix under
                ``eval.max_examples``).
            predictions: [N, S] predicted tokens of those rows.
            halt_logits: [N] final halt logits.
            out_dir: the run folder (for an extra split, its ``<name>/``
                subfolder) where the task may write outputs, e.g. ARC's
                ``submission.json``; None when nothing should be written.
            images: how many pictures to return (``eval.images``).

        Returns:
            ``(metrics, images)``: metrics added beside the engine's token and
            exact accuracy, and RGB images [H, W, 3] uint8 for TensorBoard.
            Default: :meth:`metrics` over the rows, and :meth:`render_image` of
            the first ``images`` rows.
        """
        inputs, labels = np.asarray(split.inputs[rows]), np.asarray(split.labels[rows])
        pictures = [
            self.render_image(inputs[i], predictions[i], labels[i])
            for i in range(min(images, len(rows)))
        ]
        return self.metrics(inputs, labels, predictions), pictures

    def check_answer(self, inputs: np.ndarray, prediction: np.ndarray) -> list[str] | None:
        """What is wrong with a predicted answer, judged by the task's own rules.

        Args:
            inputs, prediction: [S] tokens (the puzzle and the model's answer).

        Returns:
            A list of problems (empty: a correct answer), or None when the task
            cannot check answers without the solution (the default).
        """
        return None


class Strategy(ABC):
    """How a trained model turns a batch of puzzles into answers (inference only).

    A strategy decides how many trajectories each puzzle gets, what is perturbed
    and how one answer is chosen among them. It is chosen by name
    (``trm-eval --strategy``, ``trm-solve --strategy``, the config's
    ``strategy.name``) and its ``Options`` are read from the rest of the
    ``strategy`` section (``--set strategy.k=32``). The engine batches puzzles so
    that ``rows_per_puzzle() x puzzles`` stays within ``eval.batch_size``, scores
    every selection at every budget, and prints accuracy against compute.
    """

    kind: ClassVar[str] = "strategy"
    #: The strategy's options: an attrs class (``kw_only``, every field with a
    #: default), read from the ``strategy`` section (all keys but ``name``) with
    #: the same strict, nearest-key errors as the config. None: no options.
    Options: ClassVar[type | None] = None

    def __init__(self, options: Any = None) -> None:
        #: An instance of ``Options`` (its defaults when none is given).
        self.options = options if options is not None or self.Options is None else self.Options()

    @classmethod
    def options_from(cls, section: Mapping[str, Any]) -> Any:
        """``Options`` from a ``strategy`` section without its ``name`` (errors name
        ``strategy.<key>``)."""
        return read_options(cls.Options, section, "strategy", "this strategy")

    def problem(self, task: Task, model: nn.Module) -> str | None:
        """Why this strategy cannot serve ``task`` with ``model`` (None: it can).

        Checked before any data is built; e.g. a strategy that augments puzzles
        needs ``task.supports("augment")``.
        """
        return None

    def rows_per_puzzle(self) -> int:
        """Model rows one puzzle occupies in a forward pass (1 for one trajectory)."""
        return 1

    @abstractmethod
    def answer(self, model: nn.Module, task: Task, batch: Mapping[str, Tensor], seed: int) -> Any:
        """Answer one batch of puzzles.

        Args:
            model: a ``TRMModel`` in eval mode, called under ``torch.no_grad``.
            task: the run's task (for augmentations and answer checks).
            batch: ``inputs`` [B, S], ``puzzle_identifiers`` [B] (and ``labels``
                during evaluation, which a strategy must not read), on the model's device.
            seed: this batch's seed, for whatever the strategy draws.

        Returns:
            A ``trm_core.Answers``: for each budget (1, 2, 4, ... up to the full one)
            each selection's predictions [B, S] and the forward passes per puzzle.
        """


class Logger(ABC):
    """Where a run's metrics go: TensorBoard (built in), an experiment tracker, a file.

    Chosen by name in the config's ``loggers`` section, which maps each logger's
    registered name to its options (``loggers: {tensorboard: {}, mlflow: {experiment:
    sudoku}}``; ``--set loggers.tensorboard=null`` drops one). Only the process that
    writes the run folder logs (rank 0 under torchrun). The run log
    (:class:`trm_core.runlog.RunLog`) calls a logger in this order: :meth:`start`, then
    :meth:`scalars` and :meth:`images` as training and evaluations go, :meth:`flush`
    after each evaluation is on disk, and :meth:`close` at the end, also when the run
    fails. Values are plain Python floats and ints; images are [H, W, 3] uint8 arrays.
    """

    kind: ClassVar[str] = "logger"
    #: The logger's options: an attrs class (``kw_only``, every field with a default),
    #: read from ``loggers.<its registered name>`` with the same strict, nearest-key
    #: errors as the config. None: the logger takes no options.
    Options: ClassVar[type | None] = None

    def __init__(self, run_dir: Path, options: Any = None) -> None:
        #: The run folder (a logger may write inside it, e.g. TensorBoard's event files).
        self.run_dir = Path(run_dir)
        #: An instance of ``Options`` (its defaults when none is given).
        self.options = options if options is not None or self.Options is None else self.Options()

    @classmethod
    def options_from(cls, name: str, section: Mapping[str, Any] | None) -> Any:
        """``Options`` from the ``loggers.<name>`` section (errors name its keys)."""
        return read_options(cls.Options, section or {}, f"loggers.{name}", f"the logger {name!r}")

    def start(self, config: Mapping[str, Any], step: int) -> None:  # noqa: B027 (optional)
        """The run begins (``step`` 0) or resumes from its checkpoint of ``step``.

        Args:
            config: the run's whole config, flattened (``{"train.lr": 0.0001, ...}``).
            step: where the run goes on from. A resumed run was killed after this
                step's checkpoint, maybe after logging later points: a logger that can
                drop them should (TensorBoard does), so no step is logged twice.
        """

    @abstractmethod
    def scalars(self, prefix: str, values: Mapping[str, float], step: int) -> None:
        """Log ``values`` at ``step`` under ``prefix`` (``train``, ``eval``,
        ``strategy/<name>/<split>/<selection>``), each as ``<prefix>/<name>``.
        Non-finite values are never passed."""

    def images(self, prefix: str, images: Mapping[str, np.ndarray], step: int) -> None:  # noqa: B027
        """Log an evaluation's drawn puzzles (``Task.render``): ``images`` maps names
        to [H, W, 3] uint8 arrays. Default: not logged."""

    def flush(self) -> None:  # noqa: B027 (optional)
        """Make what was logged so far durable (called after each evaluation)."""

    def close(self) -> None:  # noqa: B027 (optional)
        """The run ends (or fails): release files and connections."""


@attrs.frozen
class Kind:
    """One kind of plugin: its name (``trm-plugins --kind``, ``registry.get(kind, ...)``),
    the interface an implementation subclasses, the hook that registers one, and whether
    the model is assembled from it (a ModelConfig field names the one chosen)."""

    name: str
    interface: type
    hook: str
    component: bool


#: The plugin kinds, in listing order: the one table every list of kinds is read from.
KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("encoder", Encoder, "register_encoders", component=True),
        Kind("mixer", Mixer, "register_mixers", component=True),
        Kind("core", ThinkActCore, "register_cores", component=True),
        Kind("halting_head", HaltingHead, "register_halting_heads", component=True),
        Kind("task", Task, "register_tasks", component=False),
        Kind("strategy", Strategy, "register_strategies", component=False),
        Kind("logger", Logger, "register_loggers", component=False),
    )
}
#: The network components a model is assembled from (a ModelConfig field each).
COMPONENT_KINDS: tuple[str, ...] = tuple(name for name, kind in KINDS.items() if kind.component)

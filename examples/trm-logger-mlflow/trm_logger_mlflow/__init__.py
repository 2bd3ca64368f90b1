"""MLflow tracking for trm runs: the example third-party logger.

Installed beside trm-core, it adds the logger ``mlflow``. Turn it on for a run with
``--set loggers.mlflow={}`` (or ``loggers: {mlflow: {experiment: sudoku}}`` in a
config file); TensorBoard stays on unless ``--set loggers.tensorboard=null``.

By default the run goes to an MLflow file store inside the run folder
(``RUN/mlruns``: offline, nothing to set up), one MLflow experiment per task
(``trm-<task>``) and one MLflow run per trm run, named after the run folder. Point
``tracking_uri`` (or ``$MLFLOW_TRACKING_URI``) at a server or database to share runs.
A resumed trm run continues the same MLflow run: its id is kept in
``RUN/mlflow_run.json``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from typing import Any

import attrs

import trm_core

#: The trm plugin contract this plugin is written for (see trm_core.PLUGIN_CONTRACT).
TRM_PLUGIN_CONTRACT = 2

#: Where the MLflow run of a trm run is named, in the run folder.
RUN_FILE = "mlflow_run.json"
#: MLflow takes at most this many parameters, and parameter values this long, per call.
PARAMS_PER_CALL, PARAM_LENGTH = 100, 6000


@attrs.define(kw_only=True, frozen=True)
class MLflowOptions:
    #: The tracking store: a server (http://...), a database (sqlite:///...) or a
    #: folder (file:///...). None: $MLFLOW_TRACKING_URI, else RUN/mlruns.
    tracking_uri: str | None = None
    #: The MLflow experiment. None: ``trm-<task>``.
    experiment: str | None = None
    #: The MLflow run's name. None: the run folder's name.
    run_name: str | None = None


class MLflow(trm_core.Logger):
    """Parameters (the flattened run config), metrics and the run's status in MLflow."""

    Options = MLflowOptions

    def __init__(self, run_dir, options: Any = None) -> None:
        super().__init__(run_dir, options)
        self._client = None
        self._run_id: str | None = None

    @property
    def tracking_uri(self) -> str:
        uri = self.options.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        return uri or (self.run_dir / "mlruns").resolve().as_uri()

    def _connect(self):
        if self._client is None:
            uri = self.tracking_uri
            if uri.startswith("file:"):  # a local file store, as the trm default is
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=uri)
        return self._client

    def _known_run(self) -> str | None:
        """The MLflow run this folder was logged to before, in this tracking store."""
        try:
            known = json.loads((self.run_dir / RUN_FILE).read_text())
        except (OSError, ValueError):
            return None
        if isinstance(known, dict) and known.get("tracking_uri") == self.tracking_uri:
            return known.get("run_id")
        return None

    def _new_run(self, task: str) -> str:
        client = self._connect()
        name = self.options.experiment or f"trm-{task}"
        experiment = client.get_experiment_by_name(name)
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
        run = client.create_run(
            experiment_id,
            run_name=self.options.run_name or self.run_dir.name,
            tags={"trm.run_dir": str(self.run_dir.resolve()), "trm.task": task},
        )
        record = {"tracking_uri": self.tracking_uri, "run_id": run.info.run_id}
        trm_core.atomic_write_text(self.run_dir / RUN_FILE, json.dumps(record, indent=2))
        return run.info.run_id

    def start(self, config: Mapping[str, Any], step: int) -> None:
        client = self._connect()
        known = self._known_run() if step else None
        if known is not None:  # a resumed run goes on in its MLflow run
            client.update_run(known, status="RUNNING")
            self._run_id = known
            return
        self._run_id = self._new_run(str(config.get("task", "run")))
        from mlflow.entities import Param

        params = [Param(key, str(value)[:PARAM_LENGTH]) for key, value in config.items()]
        for first in range(0, len(params), PARAMS_PER_CALL):
            client.log_batch(self._run_id, params=params[first : first + PARAMS_PER_CALL])

    def scalars(self, prefix: str, values: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        if self._run_id is None:  # trm-eval --strategy on a finished run: add to its run
            self._run_id = self._known_run() or self._new_run("run")
        now = int(time.time() * 1000)
        metrics = [
            Metric(f"{prefix}/{name}", float(value), now, step)
            for name, value in values.items()
            if math.isfinite(value)
        ]
        if metrics:
            self._connect().log_batch(self._run_id, metrics=metrics)

    def close(self) -> None:
        if self._run_id is not None:
            self._connect().set_terminated(self._run_id)
            self._run_id = None


@trm_core.hookimpl
def register_loggers(register):
    register("mlflow", MLflow)

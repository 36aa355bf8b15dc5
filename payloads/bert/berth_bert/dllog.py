"""DLLogger's JSON-stream format on stdout (``DLLL {...}`` lines), as NVIDIA's BERT scripts write it,
so berth's metric parser reads our trainer and NVIDIA's alike. Only rank 0 writes."""

from __future__ import annotations

import datetime
import json
import sys
import time
from typing import Any, TextIO

Step = str | list[int]

# Units of every metric the trainer emits, announced once as METADATA records at start.
UNITS: dict[str, str | None] = {
    "step_loss": None, "average_loss": None, "learning_rate": None, "skipped_steps": None,
    "final_loss": None, "e2e_train_time": "s", "raw_train_time": "s",
    "training_sequences_per_second": "sequences/s", "e2e_inference_time": "s",
    "inference_sequences_per_second": "sequences/s", "exact_match": "%", "F1": "%",
    "accuracy": None, "mcc": None, "precision": None, "recall": None,
}


class DLLogger:
    def __init__(self, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stdout
        self.start = time.time()

    def _write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        now = time.time()
        head = {"timestamp": str(now), "datetime": str(datetime.datetime.fromtimestamp(now)),
                "elapsedtime": str(now - self.start)}
        self.stream.write("DLLL " + json.dumps({**head, **record}) + "\n")
        self.stream.flush()

    def metadata(self, metric: str, unit: str | None) -> None:
        self._write({"type": "METADATA", "metric": metric, "metadata": {"unit": unit}})

    def log(self, step: Step, data: dict[str, Any]) -> None:
        self._write({"type": "LOG", "step": step, "data": data})

    def announce_units(self) -> None:
        for metric, unit in UNITS.items():
            self.metadata(metric, unit)

    def parameters(self, params: dict[str, Any]) -> None:
        self.log("PARAMETER", {k: (v if isinstance(v, (int, float, str, bool)) or v is None else str(v))
                               for k, v in params.items() if not callable(v)})

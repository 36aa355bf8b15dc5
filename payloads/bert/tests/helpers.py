"""Shared test fixtures: a micro model config, a small vocab and corpus, and a subprocess runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PAYLOAD = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MICRO = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
         "max_position_embeddings": 64, "vocab_size": 64}
WORDS = ("the harbour of velmora lies on the island of kesh . its harbourmaster is ada brant . "
         "ships carry copper and salt every year").split()


def write_micro_config(folder: str) -> str:
    path = os.path.join(folder, "micro.json")
    with open(path, "w") as f:
        json.dump(MICRO, f)
    return path


def write_corpus(folder: str, lines: int = 60) -> str:
    path = os.path.join(folder, "corpus.txt")
    with open(path, "w") as f:
        for i in range(lines):
            f.write(" ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(12)) + "\n")
            if i % 5 == 4:
                f.write("\n")
    return path


def run_cli(*args: str, env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "berth_bert", *args], cwd=PAYLOAD, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": PAYLOAD, **(env or {})}, timeout=120, **kw)


def popen_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "berth_bert", *args], cwd=PAYLOAD, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": PAYLOAD,
                                                                    **(env or {})})


def dll_records(stdout: str) -> list[dict]:
    return [json.loads(line[5:]) for line in stdout.splitlines() if line.startswith("DLLL ")]


def step_losses(stdout: str) -> dict[int, float]:
    return {r["step"][1]: r["data"]["step_loss"] for r in dll_records(stdout)
            if r["type"] == "LOG" and isinstance(r["step"], list) and len(r["step"]) == 2}

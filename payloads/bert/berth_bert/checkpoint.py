"""Crash-safe checkpoints under the output directory.

Layout (documented in README.md)::

    <output>/checkpoints/step-00000120/state.pt   model, optimizer, scheduler, scaler, RNG, data position
    <output>/checkpoints/step-00000120/meta.json  written last: {"step", "epoch", "task", ...}
    <output>/checkpoints/latest                   the name of the newest complete step directory

A checkpoint is written into ``.tmp-step-…`` beside the others, every file fsynced, then renamed into
place; ``latest`` is replaced by rename too. A kill at any moment leaves the previous checkpoint whole.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import time
from typing import Any, Iterator

import torch

CHECKPOINTS = "checkpoints"
LATEST = "latest"
STATE = "state.pt"
META = "meta.json"
_STEP_DIR = re.compile(r"^step-(\d+)$")
# Test hook: seconds to pause inside a save, after state.pt is written and before the checkpoint is
# committed, so a test can kill the process mid-save. Unset in production.
SLOW_SAVE_ENV = "BERTH_TEST_SLOW_SAVE_SECONDS"


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: str, mode: str = "wb") -> Iterator[Any]:
    """Yields a file that appears at ``path`` only once fully written and fsynced."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    fsync_dir(os.path.dirname(os.path.abspath(path)))


def _write_json(path: str, obj: Any) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def _torch_save(obj: Any, path: str) -> None:
    with open(path, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


def step_dir_name(step: int) -> str:
    return f"step-{step:08d}"


def _complete_steps(root: str) -> list[tuple[int, str]]:
    if not os.path.isdir(root):
        return []
    found = []
    for name in os.listdir(root):
        m = _STEP_DIR.match(name)
        if m and os.path.isfile(os.path.join(root, name, META)):
            found.append((int(m.group(1)), name))
    return sorted(found)


def save_checkpoint(output_dir: str, step: int, state: dict[str, Any], meta: dict[str, Any], keep: int = 3) -> str:
    root = os.path.join(output_dir, CHECKPOINTS)
    os.makedirs(root, exist_ok=True)
    final = os.path.join(root, step_dir_name(step))
    tmp = os.path.join(root, f".tmp-{step_dir_name(step)}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    _torch_save(state, os.path.join(tmp, STATE))
    delay = float(os.environ.get(SLOW_SAVE_ENV, "0") or 0)
    if delay:
        print(f"checkpoint: pausing {delay}s mid-save ({SLOW_SAVE_ENV})", file=sys.stderr, flush=True)
        time.sleep(delay)
    _write_json(os.path.join(tmp, META), {**meta, "step": step, "saved_at": time.time()})
    fsync_dir(tmp)
    if os.path.exists(final):  # the same step saved again (e.g. SIGTERM right after a periodic save)
        shutil.rmtree(final)
    os.rename(tmp, final)
    fsync_dir(root)
    with atomic_file(os.path.join(root, LATEST), "w") as f:
        f.write(step_dir_name(step) + "\n")
    for _, name in _complete_steps(root)[:-keep] if keep > 0 else []:
        shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    return final


def latest_checkpoint(output_dir: str) -> str | None:
    """The newest complete checkpoint directory: the one ``latest`` names, else the highest step found."""
    root = os.path.join(output_dir, CHECKPOINTS)
    try:
        with open(os.path.join(root, LATEST)) as f:
            name = f.read().strip()
        if _STEP_DIR.match(name) and os.path.isfile(os.path.join(root, name, META)):
            return os.path.join(root, name)
    except OSError:
        pass
    steps = _complete_steps(root)
    return os.path.join(root, steps[-1][1]) if steps else None


def remove_stale_temporaries(output_dir: str) -> None:
    """Leftovers of saves that were killed; never a complete checkpoint."""
    root = os.path.join(output_dir, CHECKPOINTS)
    if os.path.isdir(root):
        for name in os.listdir(root):
            if name.startswith(".tmp-"):
                shutil.rmtree(os.path.join(root, name), ignore_errors=True)


def read_meta(path: str) -> dict[str, Any]:
    with open(os.path.join(path, META)) as f:
        return json.load(f)


def load_checkpoint(path: str, map_location: str | torch.device = "cpu") -> tuple[dict[str, Any], dict[str, Any]]:
    meta = read_meta(path)
    # Our own file; it holds RNG states (numpy arrays, tuples) that weights_only would refuse.
    state = torch.load(os.path.join(path, STATE), map_location=map_location, weights_only=False)
    return state, meta

"""The Ray Data engine: runs a run's `FilePipeline` over a file list on a Ray cluster, or on one started here.

It decides only where the stages run, never what they do. `prepare` (decode, faces) runs as Ray tasks, one file
per block; each worker process builds the run's pipeline once from a `PipelineRecipe` (the model file, the
settings, the run's id and operating point). `score` and `finish` (the model, the record, the known-content match)
run in a pool of `workers` actors, each with its own ONNX Runtime session, taking `ACTOR_CPUS` of a CPU so that
the actors never hold every CPU and starve the decode tasks. The records are written as JSONL shards (one file per
block, in a folder beside the output), then the driver merges them by input position into the records a local
run yields, and removes the shards. A task whose worker dies is retried (`RETRIES` times); a file still without a
record after that, or when Ray stops the whole run (e.g. out of memory), gets status `error`, and the records
written before the stop are kept, so no input goes unaccounted.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from deepdetect.contract import ModelCard
from deepdetect.inference.explain import FaceEvidence
from deepdetect.inference.pipeline import FilePipeline, FileTodo, PreparedFile
from deepdetect.inference.predictor import Predictor
from deepdetect.inference.settings import PredictSettings
from deepdetect.inference.stages.faces import detector_backend, detector_uses_torch, predict_detector
from deepdetect.inference.stages.known import open_index
from deepdetect.inference.stages.record import RunInfo, new_record
from deepdetect.utils.threads import torch_threads

log = logging.getLogger(__name__)

RETRIES = 2  # retries of a task or actor call whose worker died, before its files get status `error`
ACTOR_CPUS = 0.5  # per model actor: a pool that asks for every CPU leaves none to the decode tasks (no progress)
FILES_PER_CALL = 4  # files whose crops share one model call in an actor


@dataclass(frozen=True)
class PipelineRecipe:
    """What a Ray worker needs to build the run's `FilePipeline` itself (it cannot be shipped: it holds a model)."""

    model_path: str
    settings: PredictSettings
    run: RunInfo


_BUILT: dict[tuple[PipelineRecipe, bool], FilePipeline] = {}


def build_pipeline(recipe: PipelineRecipe, for_model: bool) -> FilePipeline:
    """The run's pipeline in this process, built once: with the face detector for `prepare`, or with the matcher
    (`--index`) for `score` and `finish`."""
    key = (recipe, for_model)
    if key not in _BUILT:
        s = recipe.settings
        predictor = Predictor.from_path(recipe.model_path, device=s.device, batch_size=s.batch_size)
        detector = None
        if not for_model:
            backend = detector_backend(s.detector, predictor.kind, s.device)
            detector = predict_detector(predictor.contract, s.device, 1, s.detect_min_face_fraction, backend)
        matcher = open_index(s.index) if for_model and s.index is not None else None
        _BUILT[key] = FilePipeline(predictor, detector, s, recipe.run, matcher, file_progress=False)
    return _BUILT[key]


def _prepare(row: dict[str, Any], recipe: PipelineRecipe) -> dict[str, Any]:
    """Ray task: decode and find the faces of one file."""
    todo: FileTodo = pickle.loads(row["todo"])  # written by this module's driver, never read from a file
    pipeline = build_pipeline(recipe, for_model=False)
    threads = recipe.settings.detect_threads if detector_uses_torch(pipeline.detector) else None
    with torch_threads(threads):
        prep = pipeline.prepare(todo)
    prep.start = time.perf_counter() - prep.start  # seconds so far: clocks differ between processes and nodes
    return {"order": row["order"], "prep": pickle.dumps(prep)}


class _ScoreAndFinish:
    """Ray actor: one ONNX Runtime session; scores a batch of prepared files and finishes their records."""

    def __init__(self, recipe: PipelineRecipe) -> None:
        self.pipeline = build_pipeline(recipe, for_model=True)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        preps: list[PreparedFile] = [pickle.loads(b) for b in batch["prep"]]
        now = time.perf_counter()
        for prep in preps:
            prep.start = now - prep.start
        records = []
        for prep, probs in zip(preps, self.pipeline.score(preps), strict=True):
            rec, _ = self.pipeline.finish(prep, probs)
            records.append(json.dumps(rec, ensure_ascii=True))  # ASCII: names that are not UTF-8 survive Arrow
        return {"order": np.asarray(batch["order"]), "record": np.asarray(records, dtype=object)}


def _connect(address: str) -> bool:
    """Join the Ray cluster at `address` (`auto`, host:port) or start one here (`local`); True if started here."""
    import ray

    if ray.is_initialized():
        return False
    quiet = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address == "local":
        ray.init(num_cpus=os.cpu_count() or 1, **quiet)  # type: ignore[arg-type]
    else:
        ray.init(address=address, **quiet)  # type: ignore[arg-type]
    return True


def read_shards(folder: Path) -> dict[int, dict[str, Any]]:
    """The records in a folder of JSONL shards, by input position (a position written twice keeps one)."""
    out: dict[int, dict[str, Any]] = {}
    for shard in sorted(folder.glob("*.json*")):
        with shard.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    row = json.loads(line)
                    out[int(row["order"])] = json.loads(row["record"])
                except (ValueError, KeyError, TypeError):  # a shard cut short by a dying writer: that file is lost
                    continue
    return out


def run_ray(
    recipe: PipelineRecipe,
    todo: Iterable[FileTodo],
    contract: ModelCard,
    address: str = "local",
    workers: int = 1,
    shard_dir: str | os.PathLike[str] | None = None,
) -> Iterator[tuple[dict[str, Any], FaceEvidence | None]]:
    """Each input's (record, None), in input order, computed on Ray (see the module docstring). `shard_dir`: where
    the JSONL shards go (on a cluster: a folder every node can write); a fresh folder is made inside it."""
    import ray
    from ray.data import ActorPoolStrategy, DataContext

    items = list(todo)
    if not items:
        return
    parent = Path(shard_dir) if shard_dir is not None else None
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="shards-", dir=parent))
    started = _connect(address)
    try:
        ctx = DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.max_errored_blocks = len(items)  # a file whose worker died RETRIES + 1 times: a status, not a crash
        rows = [{"order": i, "todo": pickle.dumps(t)} for i, t in enumerate(items)]
        ds: Any = ray.data.from_items(rows, override_num_blocks=len(rows))
        ds = ds.map(partial(_prepare, recipe=recipe), num_cpus=1, max_retries=RETRIES)
        ds = ds.map_batches(
            _ScoreAndFinish,
            fn_constructor_kwargs={"recipe": recipe},
            batch_size=FILES_PER_CALL,
            compute=ActorPoolStrategy(size=max(1, workers)),
            num_cpus=ACTOR_CPUS,
            max_restarts=RETRIES,
            max_task_retries=RETRIES,
        )
        stopped = None
        try:
            ds.write_json(str(folder))
        except Exception as exc:  # Ray gave up (workers out of memory, an actor lost beyond its restarts)
            stopped = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
            log.warning("the Ray run stopped early (%s); files without a record get status error", stopped)
        records = read_shards(folder)  # what was written before a stop is kept
    finally:
        if started:
            ray.shutdown()
    shutil.rmtree(folder, ignore_errors=True)
    for i, item in enumerate(items):
        rec = records.get(i)
        if rec is None:
            rec = new_record(item.path, contract, recipe.run, recipe.settings)
            rec["error"] = (
                f"not scored: the Ray run stopped early ({stopped})"
                if stopped
                else f"lost on a Ray worker: its task failed {RETRIES + 1} times"
            )
            log.warning("%s: %s", item.path, rec["error"])
        yield rec, None

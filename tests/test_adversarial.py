"""Hostile inputs, one class per section (docs/threat-model.md lists them): what a config, an override, a path list,
a file name or an index file handed over by someone else can make the toolkit do. Each case uses a harmless marker
(a file in tmp_path) where the attack would write or run something, and asserts it never happened."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deepdetect.utils.config import vet_command_line
from deepdetect.utils.targets import ForbiddenTargetError

# ---------------------------------------------------------------------------------------------------------------
# Configs and overrides: nothing executed, nothing written outside output_dir (utils/targets.py, utils/config.py)


def _hydra_attacks(marker: Path) -> dict[str, list[str]]:
    return {
        "callback": [
            "+hydra.callbacks.x._target_=deepdetect.utils.io.atomic_write_text",
            f"+hydra.callbacks.x.path={marker}",
            "+hydra.callbacks.x.text=pwned",
        ],
        "callback_os_system": ["+hydra.callbacks.x._target_=os.system", f"+hydra.callbacks.x.command='touch {marker}'"],
        "log_file_handler": [
            "+hydra.job_logging.handlers.x.class=logging.FileHandler",
            f"+hydra.job_logging.handlers.x.filename={marker}",
        ],
        "hydra_log_file_handler": [
            "+hydra.hydra_logging.handlers.x.class=logging.FileHandler",
            f"+hydra.hydra_logging.handlers.x.filename={marker}",
        ],
        "log_filter": ["+hydra.job_logging.filters.x.name=a"],
        "log_stream": ["hydra.job_logging.handlers.console.stream=ext://os.system"],
        "log_file_moved": [f"hydra.job_logging.handlers.file.filename={marker}"],
        "handler_class": ["hydra.job_logging.handlers.console.class=logging.handlers.SocketHandler"],
        "launcher": ["hydra.launcher._target_=deepdetect.utils.io.atomic_write_text"],
        "sweeper": ["hydra.sweeper._target_=os.system"],
        "env": ["+hydra.job.env_set.LD_PRELOAD=/tmp/evil.so"],
        "searchpath": ["hydra.searchpath=[pkg://antigravity]"],
        "output_subdir": [f"hydra.output_subdir={marker}"],
        "output_subdir_up": ["hydra.output_subdir=../../x"],
        "run_dir": [f"hydra.run.dir={marker}"],
        "job_name": ["hydra.job.name=../../x"],
        "optimizer_unpickles": ["optimizer._target_=timm.models.load_state_dict", "+optimizer.weights_only=false"],
        "writes_text": ["+_target_=deepdetect.utils.io.atomic_write_text", f"+path={marker}", "+text=x"],
        "scheduler_writes": ["scheduler._target_=deepdetect.data.demo_set.build_demo_set", f"+scheduler.root={marker}"],
    }


@pytest.mark.parametrize("attack", sorted(_hydra_attacks(Path("m"))))
def test_config_attacks_refused_before_hydra_acts(attack: str, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    with pytest.raises(ForbiddenTargetError) as info:
        vet_command_line("train", [f"output_dir={tmp_path / 'run'}", *_hydra_attacks(marker)[attack]])
    assert "\n" not in str(info.value) and str(info.value).startswith("refusing")
    assert not marker.exists()


def test_config_dir_logging_factory_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    (tmp_path / "hydra" / "job_logging").mkdir(parents=True)
    (tmp_path / "hydra" / "job_logging" / "evil.yaml").write_text(
        "version: 1\nformatters:\n  x:\n    '()': deepdetect.utils.io.atomic_write_text\n"
        f"    path: {marker}\n    text: x\nroot:\n  level: INFO\n",
        encoding="utf-8",
    )
    with pytest.raises(ForbiddenTargetError, match=r"formatters\.x\.\(\)"):
        vet_command_line("train", ["--config-dir", str(tmp_path), "hydra/job_logging=evil"])
    assert not marker.exists()


def test_config_attack_in_one_multirun_job_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ForbiddenTargetError, match=r"os\.system"):
        vet_command_line("train", ["-m", f"output_dir={tmp_path}", "optimizer._target_=torch.optim.SGD,os.system"])


def test_pickled_rerun_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ForbiddenTargetError, match="experimental-rerun"):
        vet_command_line("train", ["--experimental-rerun", str(tmp_path / "config.pickle")])


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["optimizer=sgd", "scheduler=onecycle"],
        ["hydra/job_logging=disabled", "hydra/hydra_logging=hydra_debug", "hydra.verbose=true"],
        ["hydra.job_logging.root.level=DEBUG", "+hydra.job.env_copy=[HOME]"],
        ["-m", "data.cv_fold=0,1,2", "scheduler=cosine,onecycle"],
        ["--cfg", "job"],
    ],
)
def test_ordinary_command_lines_pass(argv: list[str]) -> None:
    vet_command_line("train", argv)


def test_cli_refuses_hydra_callback_and_log_file(tmp_path: Path) -> None:
    """The entry points' wrapper (cli/_hydra.py) refuses before Hydra builds a callback or a log handler; the task,
    which would write `ran`, never runs."""
    marker = tmp_path / "PWNED"
    attack = _hydra_attacks(marker)
    task = f"lambda cfg: open({str(tmp_path / 'ran')!r}, 'w')"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from deepdetect.cli._hydra import hydra_main; hydra_main('export', {task})()",
            f"output_dir={tmp_path / 'run'}",
            *attack["log_file_handler"],
            *attack["callback"],
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "refusing hydra." in proc.stderr and "Traceback" not in proc.stderr
    assert not marker.exists() and not (tmp_path / "run").exists() and not (tmp_path / "ran").exists()


# ---------------------------------------------------------------------------------------------------------------
# Known-content index files and hash lists handed over by someone else (hashing/index.py, hashing/exchange.py)


def _index(path: Path, n: int = 3) -> Path:
    from deepdetect.hashing.index import HashIndex, HashRow, Item

    rng = np.random.default_rng(0)
    items = [
        Item(f"ref{i}", "image", "ncii", [HashRow(0, 0.0, 90, rng.integers(0, 256, 32, np.uint8).tobytes())])
        for i in range(n)
    ]
    items.append(
        Item(
            "vid",
            "video",
            "ncii",
            [HashRow(k, float(k), 80, rng.integers(0, 256, 32, np.uint8).tobytes()) for k in range(3)],
        )
    )
    with HashIndex(path, create=True) as index:
        index.add(items)
    return path


def _tamper(path: Path, *sql: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA ignore_check_constraints = ON")
    for statement in sql:
        conn.execute(statement)
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    "sql",
    [
        [  # a view in place of items that relabels every entry
            "ALTER TABLE items RENAME TO items_real",
            "CREATE VIEW items AS SELECT id, ref, kind, 'benign' AS label, sha256, duration_s, source, added_at, "
            "metadata FROM items_real",
        ],
        [  # a recursive view (bounded here; unbounded it hangs every query)
            "CREATE VIEW loop AS WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < 5) "
            "SELECT x FROM r"
        ],
        ["CREATE TRIGGER relabel AFTER INSERT ON items BEGIN UPDATE items SET label = 'benign'; END"],
        ["CREATE TABLE extra (x)"],
        ["DROP INDEX items_sha256"],
    ],
    ids=["view_relabels", "recursive_view", "trigger", "foreign_table", "missing_index"],
)
def test_index_with_foreign_schema_is_refused(tmp_path: Path, sql: list[str]) -> None:
    from deepdetect.hashing.index import HashIndex, IndexFileError

    path = _index(tmp_path / "known.db")
    _tamper(path, *sql)
    with pytest.raises(IndexFileError, match="schema"):
        HashIndex(path)


def test_index_is_opened_read_only_for_reading(tmp_path: Path) -> None:
    from deepdetect.hashing.index import HashIndex

    path = _index(tmp_path / "known.db")
    before = path.read_bytes()
    with HashIndex(path) as index:
        assert len(index) == 4 and index.table().codes.shape == (6, 32)
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            index.conn.execute("DELETE FROM items")
        assert index.remove(["ref0"]) == 1  # a write opens it for writing
    assert path.read_bytes() != before


@pytest.mark.parametrize(
    ("sql", "what"),
    [
        ("UPDATE hashes SET hash = X'00' WHERE rowid = 1", "32-byte"),
        ("UPDATE items SET kind = 'evil' WHERE id = 1", "kind"),
        ("UPDATE hashes SET quality = 1000 WHERE rowid = 2", "out-of-range"),
        ("UPDATE items SET metadata = '[1]' WHERE id = 1", "metadata"),
        ("DELETE FROM hashes WHERE item_id = 1", "without hashes"),
        ("UPDATE items SET label = 'a,b' WHERE id = 2", "ref/label"),
    ],
)
def test_verify_catches_tampered_rows(tmp_path: Path, sql: str, what: str) -> None:
    from deepdetect.cli.index import main
    from deepdetect.hashing.index import HashIndex, IndexFileError

    path = _index(tmp_path / "known.db")
    _tamper(path, sql)
    with HashIndex(path) as index, pytest.raises(IndexFileError, match=what):
        index.verify()
    assert main(["info", str(path), "--verify"]) == 2


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE hashes SET quality = 9223372036854775807 WHERE rowid = 1",
        "UPDATE items SET metadata = '" + "[" * 100_000 + "]" * 100_000 + "' WHERE id = 1",
        "UPDATE hashes SET frame_index = 'x' WHERE rowid = 1",
    ],
    ids=["huge_int", "deep_json", "text_in_int_column"],
)
def test_hostile_values_are_clean_errors(tmp_path: Path, sql: str, capsys: pytest.CaptureFixture[str]) -> None:
    from deepdetect.cli.index import main
    from deepdetect.hashing.index import HashIndex, IndexFileError

    path = _index(tmp_path / "known.db")
    _tamper(path, sql)
    with HashIndex(path) as index, pytest.raises(IndexFileError):
        index.table()
        index.items()
    assert main(["export", str(path), str(tmp_path / "share")]) == 2
    assert "Traceback" not in capsys.readouterr().err


def _with_alarm(seconds: int) -> None:
    def _expired(signum: int, frame: object) -> None:
        raise TimeoutError("blocked")

    signal.signal(signal.SIGALRM, _expired)
    signal.alarm(seconds)


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_import_reads_only_regular_files(tmp_path: Path, kind: str) -> None:
    """A symlink to a device (/dev/zero would grow memory without bound; /dev/null stands in) or a FIFO (would hang)."""
    from deepdetect.hashing.exchange import HashListError, read_hash_list

    path = tmp_path / "list.txt"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/null")
    _with_alarm(20)
    try:
        with pytest.raises(HashListError, match="not a regular file"):
            read_hash_list(path, "ncii")
    finally:
        signal.alarm(0)


HEX = "f" * 64


def test_import_size_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deepdetect.hashing import exchange

    monkeypatch.setattr(exchange, "MAX_LIST_BYTES", 1000)
    (tmp_path / "list.txt").write_text(f"{HEX},90,x,l\n" * 100, encoding="utf-8")
    with pytest.raises(exchange.HashListError, match="larger than 1000 bytes"):
        exchange.read_hash_list(tmp_path / "list.txt")


@pytest.mark.parametrize(
    ("files", "match"),
    [
        ({"items.csv": "ref,kind\nx,image\n"}, "missing column"),
        (
            {
                "items.csv": ",".join(("ref", "kind", "label", "sha256", "duration_s", "source", "file", "metadata"))
                + "\nx,image,l,,,,,"
                + "a" * (2 << 20)
                + "\n",
                "pdq.txt": f"{HEX},90,x,l\n",
            },
            "CSV",
        ),
        (
            {
                "items.csv": 'ref,kind,label,sha256,duration_s,source,file,metadata\nx,image,l,,,,,"'
                + "[" * 50_000
                + '"\n',
                "pdq.txt": f"{HEX},90,x,l\n",
            },
            "unreadable value",
        ),
        (
            {
                "items.csv": "ref,kind,label,sha256,duration_s,source,file,metadata\n",
                "faces.txt": f"{HEX},90,x,{'9' * 5000}\n",
            },
            "frame number",
        ),
        (
            {
                "items.csv": "ref,kind,label,sha256,duration_s,source,file,metadata\n",
                "faces.txt": f"{HEX},{10**30},x,1\n",
            },
            "quality",
        ),
        (
            {
                "items.csv": "ref,kind,label,sha256,duration_s,source,file,metadata\nv,video,l,,1e400,,vpdq/0.txt,\n",
                "vpdq/0.txt": f"0,90,{HEX},0.000\n",
            },
            "time",
        ),
    ],
    ids=["missing_columns", "long_cell", "deep_json", "huge_int_text", "huge_quality", "infinite_duration"],
)
def test_hostile_bundles_are_clean_errors(tmp_path: Path, files: dict[str, str], match: str) -> None:
    from deepdetect.cli.index import main
    from deepdetect.hashing.exchange import HashListError, read_hash_list

    bundle = tmp_path / "share"
    for name, text in files.items():
        (bundle / name).parent.mkdir(parents=True, exist_ok=True)
        (bundle / name).write_text(text, encoding="utf-8")
    with pytest.raises(HashListError, match=match):
        read_hash_list(bundle)
    assert main(["import", str(tmp_path / "new.db"), str(bundle)]) == 2


def test_export_neutralises_cells_and_round_trips(tmp_path: Path) -> None:
    from deepdetect.hashing.exchange import export_bundle, read_hash_list
    from deepdetect.hashing.index import HashIndex, HashRow, Item

    bits = bytes(range(32))
    hostile = Item("=HYPERLINK(1)", "image", "@label", [HashRow(0, 0.0, 90, bits)], source="+cmd", metadata={"a": 1})
    with HashIndex(tmp_path / "known.db", create=True) as index:
        index.add([hostile])
        export_bundle(index, tmp_path / "share")
    text = (tmp_path / "share" / "items.csv").read_text(encoding="utf-8")
    cells = next(csv.reader(io.StringIO(text.splitlines()[1])))
    assert cells[0] == "'=HYPERLINK(1)" and cells[2] == "'@label" and cells[5] == "'+cmd"
    back = read_hash_list(tmp_path / "share")
    assert [(it.ref, it.label, it.source) for it in back] == [("=HYPERLINK(1)", "@label", "+cmd")]


# ---------------------------------------------------------------------------------------------------------------
# Lists of paths (media.read_path_list, shared by predict, hash and index add/match)


def _hostile_lists(folder: Path) -> dict[str, Path]:
    """name -> list file; `text` names odd-but-valid entries, the others are not text at all."""
    import gzip
    import zipfile

    folder.mkdir(parents=True, exist_ok=True)
    lists = {name: folder / f"{name}.txt" for name in ("nul", "gzip", "zip", "random", "text")}
    lists["nul"].write_bytes(b"a.jpg\nb\x00c.jpg\n")
    lists["gzip"].write_bytes(gzip.compress(b"a.jpg\n" * 10))
    with zipfile.ZipFile(lists["zip"], "w") as z:
        z.writestr("a.jpg", "x" * 100)
    lists["random"].write_bytes(np.random.default_rng(1).integers(0, 256, 4000, np.uint8).tobytes())
    lists["text"].write_text(
        "~nosuchuser_deepdetect/x.jpg\n"
        + "y" * 300
        + "/a.jpg\n"
        + "z" * 300
        + ".jpg\nline\u2028sep.jpg\nnext\x85line.jpg\n",
        encoding="utf-8",
    )
    return lists


EXPECTED_TEXT_ENTRIES = {
    "x.jpg": "not_found",  # ~nosuchuser/x.jpg, kept literally
    "a.jpg": "unreadable",  # a folder name longer than 255 bytes
    "z" * 300 + ".jpg": "unreadable",
    "line\u2028sep.jpg": "not_found",  # one entry each: lists split on newlines only
    "next\x85line.jpg": "not_found",
}


def test_hash_lists_that_are_not_text_or_name_impossible_paths(tmp_path: Path) -> None:
    from deepdetect.hashing.records import hash_paths

    lists = _hostile_lists(tmp_path)
    for name in ("nul", "gzip", "zip", "random"):
        (rec,) = list(hash_paths([lists[name]]))
        assert rec["status"] == "unreadable" and "not a text path list" in rec["error"], rec
    recs = list(hash_paths([lists["text"]]))
    assert {Path(r["path"]).name: r["status"] for r in recs} == EXPECTED_TEXT_ENTRIES


def test_predict_lists_that_are_not_text_or_name_impossible_paths(tmp_path: Path) -> None:
    from deepdetect.cli.predict import main as predict_main
    from test_export import make_tiny_checkpoint

    model = make_tiny_checkpoint(tmp_path / "model" / "run").parent
    lists = _hostile_lists(tmp_path / "lists")
    out = tmp_path / "out.jsonl"
    argv = [*map(str, lists.values()), "--model", str(model), "--output", str(out), "--frames", "2", "--quiet"]
    assert predict_main(argv) in (0, 1)
    recs = [json.loads(line) for line in out.read_text(encoding="utf-8").split("\n") if line.strip()]
    by_name = {Path(r["path"]).name: r for r in recs}
    for name in ("nul", "gzip", "zip", "random"):
        rec = by_name[f"{name}.txt"]
        assert rec["status"] == "unreadable" and "not a text path list" in rec["error"], rec
    assert {n: by_name[n]["status"] for n in EXPECTED_TEXT_ENTRIES} == EXPECTED_TEXT_ENTRIES


# ---------------------------------------------------------------------------------------------------------------
# Bounds: size-like settings and command-line numbers (media.sample_frame_indices, ExtractSettings, utils/cliargs.py)


def test_a_video_claiming_billions_of_frames_is_bounded() -> None:
    from deepdetect.media import MAX_FRAMES_PER_VIDEO, MediaError, sample_frame_indices

    huge = 2**31 - 1
    with pytest.raises(ValueError, match="frames_per_video"):
        sample_frame_indices(huge, 10**9)
    for every_k in (None, 1):
        with pytest.raises(MediaError) as info:
            sample_frame_indices(huge, None, every_k)
        assert info.value.status == "too_large"
    assert len(sample_frame_indices(huge, 32, 1)) == 32
    assert len(sample_frame_indices(huge, MAX_FRAMES_PER_VIDEO)) == MAX_FRAMES_PER_VIDEO


@pytest.mark.parametrize(
    "override",
    [{"frames_per_video": 1e9}, {"frames_per_video": 0}, {"size": 10**6}, {"every_k": -1}, {"margin": float("nan")}],
)
def test_extract_size_settings_are_bounded(override: dict[str, float]) -> None:
    from deepdetect.data.extract import ExtractSettings

    with pytest.raises(ValueError, match=next(iter(override))):
        ExtractSettings.from_config(override)


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ("hash", ["x", "--fps", "nan"]),
        ("hash", ["x", "--fps", "-1"]),
        ("hash", ["x", "--dedup", "-5"]),
        ("index", ["match", "a.db", "x", "--max-distance", "-5"]),
        ("index", ["match", "a.db", "x", "--min-query-share", "-5"]),
        ("index", ["match", "a.db", "x", "--min-indexed-share", "inf"]),
        ("index", ["add", "a.db", "x", "--label", "l", "--fps", "1e9"]),
    ],
)
def test_cli_numbers_are_checked_before_any_work(
    command: str, argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib

    main = importlib.import_module(f"deepdetect.cli.{command}").main
    with pytest.raises(SystemExit) as info:
        main([str(tmp_path / a) if a.endswith(".db") else a for a in argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "out of range" in err and "Traceback" not in err
    assert not (tmp_path / "a.db").exists()


# ---------------------------------------------------------------------------------------------------------------
# Names that round-trip exactly (inference/writers.py)

ODD_NAMES = ["a\u2028b.png", "c\x85d.png", "e\u2029f.png", "g\x0ch.png", "i\x0bj.png", "k\x1cl.png", "m\rn.png"]


def test_odd_names_are_one_jsonl_record_each_and_resume(tmp_path: Path) -> None:
    from PIL import Image

    from deepdetect.cli.predict import main as predict_main
    from deepdetect.inference.writers import json_line
    from face_images import lfw_face
    from test_export import make_tiny_checkpoint

    line = json_line({"path": "".join(ODD_NAMES)})
    assert len(line.splitlines()) == 1 and json.loads(line)["path"] == "".join(ODD_NAMES)

    model = make_tiny_checkpoint(tmp_path / "model" / "run").parent
    folder = tmp_path / "in"
    folder.mkdir()
    for i, name in enumerate(ODD_NAMES):
        Image.fromarray(lfw_face(i % 3)).save(folder / name, format="PNG")
    out = tmp_path / "o.jsonl"
    argv = [str(folder), "--model", str(model), "--output", str(out), "--frames", "2", "--quiet"]
    assert predict_main(argv) == 0
    text = out.read_text(encoding="utf-8")
    assert len(text.splitlines()) == len(ODD_NAMES)  # no reader splits a record, even str.splitlines
    assert sorted(Path(json.loads(x)["path"]).name for x in text.split("\n") if x) == sorted(ODD_NAMES)
    assert predict_main([*argv, "--resume"]) == 0  # every record read back, every file already done
    assert out.read_text(encoding="utf-8") == text


def test_val_scores_csv_is_spreadsheet_safe_and_reads_back(tmp_path: Path) -> None:
    import pandas as pd

    from deepdetect.training.valscores import VAL_SCORES, read_out_of_fold, write_val_scores

    rows = pd.DataFrame(
        {
            "crop_path": ["=cmd|' /C calc'!A0", "+b.png"],
            "video_id": ["@v", "-w"],
            "source": ["s", "s"],
            "group": ["g1", "g2"],
            "label": ["fake", "real"],
        }
    )
    write_val_scores(tmp_path / VAL_SCORES, rows, np.array([1.0, -1.0]))
    text = (tmp_path / VAL_SCORES).read_text(encoding="utf-8")
    assert "\n=" not in text and "\n+" not in text and ",@" not in text and ",-w" not in text
    back = read_out_of_fold([tmp_path])
    assert list(back["crop_path"]) == list(rows["crop_path"]) and list(back["video_id"]) == list(rows["video_id"])


# Names that are not UTF-8 (byte 0xFF, kept as a surrogate escape) next to a name spelling those escapes literally.
BYTES_NAME = os.fsdecode(b"x\xff.png")
LITERAL_NAME = "x\\xff.png"


def test_manifest_and_failures_round_trip_every_odd_name(tmp_path: Path) -> None:
    from deepdetect.data.manifest import (
        CropRecord,
        FailureRecord,
        read_failures,
        read_manifest,
        records_to_frame,
        write_failures,
        write_manifest,
    )

    names = [*ODD_NAMES, "lone\rcr.png", "=cmd|' /C calc'!A0", BYTES_NAME, LITERAL_NAME, 'q"uote,comma.png']
    records = [
        CropRecord(crop_path=f"crops/{i}.png", source_path=f"/in/{n}", label="fake", group=f"d:{n}", split="train")
        for i, n in enumerate(names)
    ]
    write_manifest(records_to_frame(records), tmp_path / "manifest.csv")
    back = read_manifest(tmp_path / "manifest.csv")
    assert len(back) == len(names)  # one file, one record
    assert list(back["source_path"]) == [f"/in/{n}" for n in names]  # exact, bytes included
    assert list(back["video_id"]) == [f"/in/{n}" for n in names]
    assert list(back["group"]) == [f"d:{n}" for n in names]
    assert back["group"].nunique() == len(names)  # the 0xFF name and the literal one are two groups

    write_failures([FailureRecord(f"/in/{n}", "no_face") for n in names], tmp_path / "failures.csv")
    assert list(read_failures(tmp_path / "failures.csv")["source_path"]) == [f"/in/{n}" for n in names]


def test_normalisation_twins_share_one_group_and_split() -> None:
    from deepdetect.data.layouts import Source
    from deepdetect.data.splits import assign_splits

    nfc, nfd = "caf\u00e9.png", "cafe\u0301.png"
    others = [Source(Path(f"/in/{i}.png"), f"{i}.png", "real", "d") for i in range(40)]
    twins = [Source(Path(f"/in/{n}"), n, "real", "d") for n in (nfc, nfd)]
    for seed in range(10):
        out = {s.rel: s for s in assign_splits([*others, *twins], 0.3, 0.3, seed)}
        assert out[nfc].group == out[nfd].group and out[nfc].split == out[nfd].split


def test_resume_keys_are_exact_bytes() -> None:
    from deepdetect.inference.stages.record import path_key, record_key

    folder = "/data"
    for fmt_abs in (f"{folder}/{BYTES_NAME}", f"{folder}/x\\xff.png"):  # CSV shows the byte as its literal twin
        rec = {"abs_path": fmt_abs, "path": f"{folder}/{BYTES_NAME}", "path_bytes_b64": "L2RhdGEveP8ucG5n"}
        key, _ = record_key(rec)
        assert key == b"/data/x\xff.png"
    literal, _ = record_key({"abs_path": f"{folder}/{LITERAL_NAME}", "path_bytes_b64": None})
    assert literal == b"/data/x\\xff.png" != path_key(f"{folder}/{BYTES_NAME}")


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_resume_does_not_take_a_name_for_its_printable_twin(tmp_path: Path, fmt: str) -> None:
    from PIL import Image

    from deepdetect.cli.predict import main as predict_main
    from face_images import lfw_face
    from test_export import make_tiny_checkpoint

    model = make_tiny_checkpoint(tmp_path / "model" / "run").parent
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(lfw_face(0)).save(folder / LITERAL_NAME, format="PNG")
    out = tmp_path / f"o.{fmt}"
    argv = [str(folder), "--model", str(model), "--output", str(out), "--frames", "2", "--quiet"]
    assert predict_main(argv) == 0
    Image.fromarray(lfw_face(0)).save(os.fsencode(folder / BYTES_NAME), format="PNG")  # same bytes, same sha256
    n_lines = 2 + (fmt == "csv")  # a CSV header, then one record per file
    assert predict_main([*argv, "--resume"]) == 0
    text = out.read_text(encoding="utf-8")
    assert len([x for x in text.split("\n") if x]) == n_lines  # the second name was scored, not skipped as done
    assert predict_main([*argv, "--resume"]) == 0
    assert out.read_text(encoding="utf-8") == text  # and both are done now


# ---------------------------------------------------------------------------------------------------------------
# Names printed to the terminal (utils/terminal.py: every print site and the argparse commands' log lines)

HOSTILE_SHOWN = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred\u202egnp.exe"


def test_shown_escapes_everything_a_terminal_acts_on() -> None:
    import logging

    from deepdetect.utils.terminal import ShownFormatter, shown

    text = shown(HOSTILE_SHOWN + BYTES_NAME + "\n\u2028\x9b\x7f")
    assert text.isprintable() and text.isascii()
    assert "\\x1b]0;pwned\\x07\\x1b[2J" in text and "\\u202e" in text and "x\\xff.png" in text
    assert shown("café 😀 a\\b.png") == "café 😀 a\\b.png"  # ordinary text is left alone
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "bad file %s", (HOSTILE_SHOWN,), None)
    line = ShownFormatter("%(levelname)s %(message)s").format(record)
    assert "\x1b" not in line and line.startswith("WARNING bad file \\x1b]0;")


def test_commands_print_hostile_names_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from deepdetect.cli.hash import main as hash_main
    from deepdetect.cli.index import main as index_main

    bad = tmp_path / (HOSTILE_SHOWN + ".jpg")
    bad.write_bytes(b"not an image")
    assert index_main(["add", str(tmp_path / "k.db"), str(bad), "--label", "l"]) == 1
    folder = tmp_path / (HOSTILE_SHOWN + "_out")
    folder.mkdir()
    assert hash_main([str(bad), "--output", str(folder)]) == 2
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "\u202e" not in out + err
    lines = [line for line in err.splitlines() if line]
    assert [line.split(":")[0] for line in lines] == ["  not added", "deepdetect-hash"]
    assert all("\\x1b]0;pwned\\x07\\x1b[2J" in line for line in lines)  # both shown escaped


# ---------------------------------------------------------------------------------------------------------------
# Outputs that would destroy something, and a full disk (utils/io.check_outputs, inference/writers.py)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from test_export import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("model") / "run").parent


def _face_files(folder: Path, n: int) -> list[Path]:
    from PIL import Image

    from face_images import lfw_face

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"f{i}.png" for i in range(n)]
    for i, p in enumerate(paths):
        Image.fromarray(lfw_face(i)).save(p, format="PNG")
    return paths


def test_outputs_that_would_destroy_something_are_refused(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from deepdetect.cli.hash import main as hash_main
    from deepdetect.cli.predict import main as predict_main
    from deepdetect.cli.report_triage import main as report_main

    (image,) = _face_files(tmp_path / "in", 1)
    before = image.read_bytes()
    elsewhere = tmp_path / "precious.jsonl"
    elsewhere.write_text("keep me\n", encoding="utf-8")
    link = tmp_path / "link.jsonl"
    link.symlink_to(elsewhere)
    out = tmp_path / "o.jsonl"
    model = ["--model", str(tiny_model), "--quiet"]
    cases = {
        "the same file as --output": [str(image), *model, "--output", str(out), "--report", str(out)],
        "one of the inputs": [str(image), *model, "--output", str(image), "--overwrite"],
        "a symlink": [str(image), *model, "--output", str(link), "--overwrite"],
    }
    for why, argv in cases.items():
        assert predict_main(argv) == 2, why
        err = capsys.readouterr().err
        assert why in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert hash_main([str(tmp_path / "in"), "--output", str(image)]) == 2
    assert "one of the inputs" in capsys.readouterr().err
    elsewhere.write_text('{"path": "x"}\n', encoding="utf-8")
    assert report_main([str(elsewhere), "-o", str(elsewhere)]) == 2
    assert image.read_bytes() == before and elsewhere.read_text(encoding="utf-8") == '{"path": "x"}\n'
    assert not out.exists()


def test_disk_full_keeps_the_records_and_marks_the_run_failed(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import errno

    from deepdetect.cli.predict import main as predict_main

    _face_files(tmp_path / "in", 3)
    real_write, seen = os.write, []

    def full_after_one_record(fd: int, data: bytes) -> int:
        if data.startswith(b'{"path"'):
            seen.append(data)
            if len(seen) > 1:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    out = tmp_path / "o.jsonl"
    argv = [str(tmp_path / "in"), "--model", str(tiny_model), "--output", str(out), "--quiet", "--workers", "0"]
    monkeypatch.setattr(os, "write", full_after_one_record)
    assert predict_main(argv) == 1
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert "disk full" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    header = json.loads((tmp_path / "o.jsonl.run.json").read_text(encoding="utf-8"))
    assert header["status"] == "failed" and "disk full" in header["error"]
    (kept,) = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]  # the record before stays
    assert kept["path"].endswith("f0.png") and kept["status"] == "ok"
    assert predict_main([*argv, "--resume"]) == 0  # the kept record stays, the others are scored now
    assert len(out.read_text(encoding="utf-8").splitlines()) == 3


def test_extract_on_a_full_disk_stops_with_one_line_and_keeps_finished_sources(
    cfg_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from deepdetect.data import extract as extract_module

    _face_files(tmp_path / "in" / "real", 3)
    real_save, calls = extract_module._save_image, []

    def full_on_second_source(array: np.ndarray, path: Path, fmt: str) -> None:
        calls.append(path)
        if len({p.name.split("_f")[0] for p in calls}) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(array, path, fmt)

    monkeypatch.setattr(extract_module, "_save_image", full_on_second_source)
    out = tmp_path / "out"
    cfg = cfg_factory("extract", [f"input={tmp_path / 'in'}", f"output_dir={out}"])
    with pytest.raises(extract_module.DiskFullError, match="disk full"):
        extract_module.extract(cfg)
    info = json.loads((out / "extract.json").read_text(encoding="utf-8"))
    assert info["status"] == "failed" and "disk full" in info["error"]
    assert len(list((out / "parts").glob("*.json"))) == 1  # the finished source is kept
    monkeypatch.undo()
    result = extract_module.extract(cfg)  # the same command resumes after it
    assert result.n_skipped == 1 and result.n_crops == 3
    assert json.loads((out / "extract.json").read_text(encoding="utf-8"))["status"] == "finished"


# ---------------------------------------------------------------------------------------------------------------
# Model contracts' free strings, predict's numbers (contract/checks.py, utils/cliargs.py)


@pytest.mark.parametrize(
    ("where", "value"),
    [("model.name", "x" * 100_000), ("model.name", "ok\x1b[2Jname"), ("calibration.failed", "\x07" * 3)],
)
def test_contract_strings_are_bounded(tiny_model: Path, where: str, value: str) -> None:
    from deepdetect.contract import ContractValueError, ModelCard

    meta = json.loads((tiny_model / "model.json").read_text(encoding="utf-8"))
    section, key = where.split(".")
    meta.setdefault(section, {})[key] = value
    with pytest.raises(ContractValueError, match=where.replace(".", r"\.")) as info:
        ModelCard.from_sidecar(meta)
    assert len(str(info.value)) < 200  # the message shows a cut, escaped repr
    onnx_layout = {**meta, "model": {"name": "tiny", "version": value}, "calibration": {}}
    with pytest.raises(ContractValueError, match=r"model\.version"):
        ModelCard.from_onnx_metadata(onnx_layout)


@pytest.mark.parametrize(
    "flag",
    [
        ["--frames", "1e9"],
        ["--frames", "100000"],
        ["--frames", "0"],
        ["--threshold", "nan"],
        ["--fpr", "-1"],
        ["--min-face-score", "inf"],
        ["--batch-size", "0"],
        ["--workers", "-1"],
        ["--topk", "0"],
        ["--detect-every", "0"],
        ["--detect-min-face-fraction", "2"],
    ],
)
def test_predict_numbers_are_checked_before_any_work(
    flag: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from deepdetect.cli.predict import main as predict_main

    out = tmp_path / "o.jsonl"
    with pytest.raises(SystemExit) as info:
        predict_main([str(tmp_path), "--model", str(tmp_path / "none.onnx"), "--output", str(out), *flag])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert ("out of range" in err or "not an integer" in err) and "Traceback" not in err
    assert not out.exists()


# ---------------------------------------------------------------------------------------------------------------
# Media: display rotation, multi-page TIFF (media.frame_rgb, media.load_image)


def _sideways_clip(path: Path, degrees: int) -> np.ndarray:
    """A clip stored sideways with a display matrix that turns it upright; returns the upright picture."""
    import av

    upright = np.zeros((48, 96, 3), np.uint8)
    upright[:24, :24] = 255  # a white block top-left: where it lands shows the orientation
    stored = np.ascontiguousarray(np.rot90(upright, -degrees // 90))  # what a phone camera writes
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=5)
        stream.height, stream.width = stored.shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.set_display_rotation(degrees)
        for _ in range(4):
            for packet in stream.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return upright


@pytest.mark.parametrize("degrees", [90, -90, 180])
def test_video_display_rotation_is_honoured(tmp_path: Path, degrees: int) -> None:
    from deepdetect.hashing.video import scan_frames
    from deepdetect.media import read_video_frames, read_video_frames_at

    clip = tmp_path / f"r{degrees}.mp4"
    upright = _sideways_clip(clip, degrees)
    frames = [f for _, f in read_video_frames(clip, 2)]
    frames += [f for _, f in read_video_frames_at(clip, [1])]
    frames += [rgb for _, _, rgb, _ in scan_frames(clip, fps=5.0)]
    for frame in frames:
        assert frame.shape == upright.shape  # as players show it, not as stored
        assert frame[:24, :24].mean() > 200 and frame[24:, 24:].mean() < 50


def test_multipage_tiff_reads_one_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image, TiffImagePlugin

    from deepdetect.media import load_image

    path = tmp_path / "pages.tif"
    pages = [Image.new("RGB", (2, 2), (i % 256, 0, 0)) for i in range(3000)]
    pages[0].save(path, save_all=True, append_images=pages[1:])
    real_seek, seeks = TiffImagePlugin.TiffImageFile._seek, []

    def counted(self: object, frame: int) -> None:
        seeks.append(frame)
        real_seek(self, frame)

    monkeypatch.setattr(TiffImagePlugin.TiffImageFile, "_seek", counted)
    assert load_image(path).shape == (2, 2, 3)
    assert max(seeks, default=0) <= 1  # the first page only: counting 3,000 pages is never asked for

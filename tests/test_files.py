"""Files the suite writes are whole or absent, and files it reads are what they claim.

- Every file is written atomically (a temporary file in the same folder, then a rename); a
  failed write leaves neither a temporary file nor a file at the target.
- Each cell file carries a checksum of its rows: an edited cell is refused on resume and by
  `report` and `check`; so is a results table edited without changing its row count
  (the manifest's checksum).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import generators
import generators.io
from generators.io import open_atomic, save_npz, write_atomic
from pid_bench.cli import main
from pid_bench.embeddings import save_embeddings
from pid_bench.results import RunFolderWarning, read

TINY = ["--generator", "bits", "--set", "n_train=160", "--set", "n_test=96"]
FAST = ["--epochs", "1", "--batch-size", "32", "--no-mlp", "--quiet"]
FAST += ["--config-set", "probe.pid_clusters=3", "--interaction", "redundancy"]


def _run_argv(out: Path) -> list[str]:
    return ["run", "--learners", "random", *TINY, *FAST, "--out", str(out)]


def _stray(folder: Path) -> list[str]:
    """Temporary files left in `folder` (and below)."""
    return sorted(str(p) for p in folder.rglob("*.tmp"))


def _full_disk(*_args, **_kwargs):
    raise OSError(28, "No space left on device")


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Path]:
    """A finished tiny run and a baseline made from it."""
    root = tmp_path_factory.mktemp("finished")
    out = root / "run"
    assert main(_run_argv(out)) == 0
    assert main(["baseline", str(out), "--out", str(root / "baseline.json")]) == 0
    return out, root / "baseline.json"


@pytest.fixture
def run_copy(finished, tmp_path) -> tuple[Path, Path]:
    out, baseline = finished
    shutil.copytree(out, tmp_path / "run")
    return tmp_path / "run", baseline


# -- atomic writes -------------------------------------------------------------------------


def test_write_atomic_replaces_whole_or_not_at_all(tmp_path, monkeypatch):
    target = tmp_path / "table.csv"
    write_atomic(target, "old\n")
    write_atomic(target, "new\n")
    assert target.read_text() == "new\n"
    assert _stray(tmp_path) == []
    monkeypatch.setattr(generators.io.os, "fsync", _full_disk)
    with pytest.raises(OSError, match="No space"):
        write_atomic(target, "half written\n")
    assert target.read_text() == "new\n"  # the old file is untouched
    assert _stray(tmp_path) == []
    with pytest.raises(OSError), open_atomic(tmp_path / "new.bin") as f:
        f.write(b"x")
    assert not (tmp_path / "new.bin").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def _savez_then_fail(file, **arrays):
    file.write(b"PK\x03\x04 a few bytes of a zip")  # a truncated .npz, as a full disk leaves
    raise OSError(28, "No space left on device")


def test_generate_full_disk_leaves_no_file(tmp_path, monkeypatch, capsys):
    target = tmp_path / "data.npz"
    monkeypatch.setattr(generators.io.np, "savez", _savez_then_fail)
    code = main(
        ["generate", "--generator", "bits", "--set", "n_train=80", "--set", "n_test=40"]
        + ["--out", str(target)]
    )
    assert code == 2
    assert "No space left on device" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no truncated data.npz, no temporary file


def test_save_embeddings_and_npz_full_disk_leave_no_file(tmp_path, monkeypatch):
    ds = generators.make("bits", n_train=80, n_test=40)
    monkeypatch.setattr(np, "savez", _savez_then_fail)
    with pytest.raises(OSError):
        save_npz(ds, tmp_path / "data.npz")
    z = np.zeros((80, 2))
    with pytest.raises(OSError):
        save_embeddings(tmp_path / "emb.npz", ds, z_train=z, z_test=z[:40])
    assert list(tmp_path.iterdir()) == []


def test_run_full_disk_leaves_no_temporary_file(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    monkeypatch.setattr(generators.io.os, "fsync", _full_disk)
    assert main(_run_argv(out)) == 2
    assert "cannot write the run folder" in capsys.readouterr().err
    assert _stray(tmp_path) == []
    assert not (out / "config.json").exists()


def test_report_full_disk_leaves_no_temporary_file(run_copy, tmp_path, monkeypatch):
    out, _ = run_copy
    monkeypatch.setattr(generators.io.os, "fsync", _full_disk)
    assert main(["report", str(out), "--out", str(tmp_path / "report")]) == 2
    assert _stray(tmp_path) == []
    assert list((tmp_path / "report").iterdir()) == []


# -- checksums: cells and the results table ---------------------------------------------------


def _edit_cell(out: Path, drop_checksum: bool = False) -> Path:
    """Change one value of one cell file of `out` (its checksum kept, or dropped)."""
    cell = sorted((out / "cells").glob("*.json"))[0]
    doc = json.loads(cell.read_text())
    doc["rows"][0]["value"] = 0.999
    if drop_checksum:
        del doc["sha256"]
    cell.write_text(json.dumps(doc))
    return cell


def test_cell_files_carry_a_checksum(finished):
    out, _ = finished
    for cell in (out / "cells").glob("*.json"):
        assert len(json.loads(cell.read_text())["sha256"]) == 64


def test_edited_cell_is_refused_on_resume_report_and_check(run_copy, tmp_path, capsys):
    out, baseline = run_copy
    cell = _edit_cell(out)
    before = (out / "results.csv").read_bytes()
    capsys.readouterr()
    for argv in (
        _run_argv(out),
        ["report", str(out), "--out", str(tmp_path / "report")],
        ["check", str(out), "--baseline", str(baseline)],
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        assert str(cell) in err and "was edited" in err, err
    assert (out / "results.csv").read_bytes() == before  # the resume rewrote nothing


def test_cell_without_checksum(run_copy, tmp_path, capsys):
    """Refused on resume (it would enter a new table unverified); accepted with a warning by
    report and check, which draw from the table its manifest guards (run folders written
    before cells carried checksums, as several under reports/, stay readable)."""
    out, baseline = run_copy
    cell = _edit_cell(out, drop_checksum=True)
    capsys.readouterr()
    assert main(_run_argv(out)) == 2
    err = capsys.readouterr().err
    assert str(cell) in err and "carries no checksum" in err, err
    with pytest.warns(RunFolderWarning, match="carry no checksum"):
        read(out)
    assert main(["check", str(out), "--baseline", str(baseline)]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warned == [
        f"pid-bench check: warning: 1 cell file(s) in {out / 'cells'} carry no checksum "
        "(written before pid-bench recorded one), so they were not verified"
    ]


def test_edited_table_is_refused_by_its_manifest_checksum(run_copy, tmp_path, capsys):
    """A value edited, the row count kept: the row-count check passes, the checksum fails."""
    out, baseline = run_copy
    lines = (out / "results.csv").read_text().splitlines(keepends=True)
    row = lines[1].split(",")
    i = lines[0].strip().split(",").index("value")
    row[i] = "0.5" if row[i] != "0.5" else "0.25"
    lines[1] = ",".join(row)
    (out / "results.csv").write_text("".join(lines))
    with pytest.raises(ValueError, match="does not match the checksum in"):
        read(out)
    capsys.readouterr()
    for argv in (
        ["report", str(out), "--out", str(tmp_path / "report")],
        ["check", str(out), "--baseline", str(baseline)],
    ):
        assert main(argv) == 2
        assert "does not match the checksum in" in capsys.readouterr().err


# -- files read: each checked for what it claims ----------------------------------------------


@pytest.fixture(scope="module")
def good_npz(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "data.npz"
    save_npz(generators.make("bits", n_train=120, n_test=80), path)
    return path


def _rewrite(src: Path, dst: Path, change) -> Path:
    """A copy of the .npz `src` at `dst`, its arrays (a dict) changed by `change`."""
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    np.savez(dst, **arrays)
    return dst


def _drop_fingerprint(arrays: dict) -> None:
    meta = json.loads(str(arrays["meta"]))
    del meta["fingerprint"]
    arrays["meta"] = np.array(json.dumps(meta))


def _short_x2(arrays: dict) -> None:
    _drop_fingerprint(arrays)  # no fingerprint: the shapes are checked all the same
    arrays["train_x2"] = arrays["train_x2"][:-1]


def _bad_files(good: Path, tmp: Path) -> list[tuple[str, Path, str]]:
    """(label, file, what the one-line error says) for bad files made from `good`."""
    empty = tmp / "empty.npz"
    empty.write_bytes(b"")
    truncated = tmp / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    text = tmp / "text.npz"
    text.write_text("x1,x2,y\n0.1,0.2,1\n")
    return [
        ("empty", empty, "empty file (0 bytes)"),
        ("truncated", truncated, "truncated or damaged .npz"),
        ("text", text, "not an .npz file but text"),
    ]


def _bad_datasets(good: Path, tmp: Path) -> list[tuple[str, Path, str]]:
    def no_test_x2(a):
        del a["test_x2"]

    def meta_not_json(a):
        a["meta"] = np.array("{name: bits")

    def label_2d(a):
        a["train_y_synergy"] = a["train_y_synergy"][:, None]

    return _bad_files(good, tmp) + [
        ("missing array", _rewrite(good, tmp / "m.npz", no_test_x2), "missing entries test_x2"),
        ("unequal rows", _rewrite(good, tmp / "u.npz", _short_x2), "unequal row counts"),
        ("meta not JSON", _rewrite(good, tmp / "j.npz", meta_not_json), "'meta' is not JSON"),
        ("label 2-D", _rewrite(good, tmp / "l.npz", label_2d), "1-D integer class labels"),
    ]


def _one_line_error(capsys, command: str, path: Path, match: str) -> None:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"pid-bench {command}: error: "), err
    assert str(path) in err and match in err, err


def test_bad_dataset_files_are_refused_by_run(good_npz, tmp_path, capsys):
    for label, bad, match in _bad_datasets(good_npz, tmp_path):
        out = tmp_path / f"out-{bad.stem}"
        argv = ["run", "--data", str(bad), "--learners", "random", *FAST, "--out", str(out)]
        assert main(argv) == 2, label
        _one_line_error(capsys, "run", bad, match)
        assert not out.exists(), label


def test_bad_embeddings_files_are_refused_by_score(good_npz, tmp_path, capsys):
    for label, bad, match in _bad_files(good_npz, tmp_path):
        argv = ["score", "--data", str(good_npz), "--embeddings", str(bad), "--name", "m"]
        assert main([*argv, "--out", str(tmp_path / "o")]) == 2, label
        _one_line_error(capsys, "score", bad, match.replace("dataset", "embeddings"))


def test_bad_json_files_are_refused(run_copy, tmp_path, capsys):
    out, baseline = run_copy
    report = ["report", str(out), "--out", str(tmp_path / "report")]
    cell = sorted((out / "cells").glob("*.json"))[0]
    good = {p: p.read_bytes() for p in (baseline, out / "manifest.json", cell)}
    good[out / "environment.json"] = (out / "environment.json").read_bytes()
    good[out / "config.json"] = (out / "config.json").read_bytes()
    empty_baseline = tmp_path / "empty.json"
    empty_baseline.write_text("")
    cases = [  # (file, its new content, command, error)
        (out / "manifest.json", "{rows: 3", report, "the manifest is not JSON"),
        (out / "config.json", "", report, "empty file; expected the run config"),
        (out / "config.json", "[]", _run_argv(out), "must be a JSON object, got list"),
        (out / "environment.json", "", _run_argv(out), "expected the run environment"),
        (cell, "{", _run_argv(out), "the cell file is not JSON"),
        (cell, '{"rows": [{"value": 1.0}], "sha256": "0"}', _run_argv(out), "lacks epoch"),
    ]
    capsys.readouterr()
    for path, content, argv, match in cases:
        path.write_text(content)
        assert main(argv) == 2, (path, content)
        _one_line_error(capsys, argv[0], path, match)
        path.write_bytes(good[path])
    assert main(["check", str(out), "--baseline", str(empty_baseline)]) == 2
    _one_line_error(capsys, "check", empty_baseline, "empty file")

"""Nothing lost, nothing silently wrong: interrupted runs resume to the table of an
uninterrupted one, `--jobs` does not change numbers, and a cut table is refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from pid_bench.cli import main
from pid_bench.report import make_report
from pid_bench.results import read

TINY = ["--generator", "bits", "--set", "n_train=160", "--set", "n_test=96"]
FAST = ["--epochs", "1", "--batch-size", "32", "--no-mlp", "--quiet"]
FAST += ["--config-set", "probe.pid_clusters=3", "--config-set", "model.d_model=16"]
#: Columns that legitimately differ between two executions of the same run.
VOLATILE = ["run_id", "elapsed_s"]


def _argv(hang_file: Path, out: Path, *extra: str) -> list[str]:
    learners = ["--learners", "cross", "random", f"{hang_file}:Hang"]
    return ["run", *learners, *TINY, *FAST, "--interaction", "all", "--out", str(out), *extra]


def _table(path: Path) -> pd.DataFrame:
    return read(path).drop(columns=VOLATILE)


@pytest.fixture(scope="module")
def reference(hang_file, tmp_path_factory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("ref") / "run"
    assert main(_argv(hang_file, out)) == 0
    return _table(out)


def _signal_state(pid: int) -> str:
    """The signal masks (blocked, ignored, caught) and the wait channel of process `pid`,
    from /proc, for the message of a run that did not end on its signal."""
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        wchan = Path(f"/proc/{pid}/wchan").read_text()
    except OSError as e:
        return f"no /proc entry ({e})"
    sig = [line for line in status if line.startswith(("SigPnd", "ShdPnd", "SigBlk", "SigIgn"))]
    return "; ".join(sig) + f"; wchan {wchan or '?'}"


def _sigint_as_from_a_terminal() -> None:
    """In the child: SIGINT handled by default and not blocked, as a shell started from a
    terminal gives it (an ignored or blocked signal is inherited across exec). A guard, not a
    proven cure: in the full suite (never alone) the run slept through the signal until the
    timeout three times, while a check after every test found pytest's main thread with
    SIGINT at its default and unblocked; the suite passed with this guard once since."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _interrupt(argv: list[str], out: Path, sig: int) -> subprocess.Popen:
    """Start `pid-bench argv` with the plug-in hanging, wait for the four cells of cross and
    random (a model for the shared training split and one on the synergy pretraining split
    each), send `sig`, and return the finished process."""
    env = {**os.environ, "PIDB_TEST_HANG": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pid_bench", *argv],
        env=env,
        preexec_fn=_sigint_as_from_a_terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while len(list((out / "cells").glob("*.json"))) < 4:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "cross's and random's cells did not finish"
            time.sleep(0.2)
        proc.send_signal(sig)
        # 180 s, well under the plug-in's 600-s hang, so a run that ignores the signal fails
        wait = 180
        try:
            proc.stdout_text, proc.stderr_text = proc.communicate(timeout=wait)
        except subprocess.TimeoutExpired:
            state = _signal_state(proc.pid)
            pytest.fail(f"the run did not end within {wait} s of {sig!r}: {state}")
    finally:
        if proc.poll() is None:  # never leave a hanging run (and its workers) behind
            os.killpg(proc.pid, signal.SIGKILL)
    return proc


def _group_ends(pgid: int, seconds: float) -> bool:
    """Whether every process of group `pgid` has ended within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize(
    "sig, jobs",
    [
        pytest.param(signal.SIGINT, "1", id="SIGINT"),
        pytest.param(signal.SIGKILL, "1", id="SIGKILL"),
        pytest.param(signal.SIGINT, "2", marks=pytest.mark.slow, id="SIGINT-jobs2"),
    ],
)
def test_interrupted_run_resumes_to_the_same_table(hang_file, reference, tmp_path, sig, jobs):
    out = tmp_path / "run"
    argv = _argv(hang_file, out, "--jobs", jobs)
    done = _interrupt(argv, out, sig)
    assert not (out / "results.csv").exists()
    if sig == signal.SIGINT:
        assert done.returncode == 130
        assert "interrupted: 4 of 6 cells are done" in done.stderr_text
        assert "Traceback" not in done.stderr_text
        assert _group_ends(done.pid, 10), "workers of --jobs still run after the interruption"
    else:
        assert done.returncode == -signal.SIGKILL
    # a resumed run keeps the finished cells and runs the others
    before = {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")}
    assert len(before) == 4
    assert main(argv) == 0
    after = {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")}
    assert {k: after[k] for k in before} == before  # not run again
    pd.testing.assert_frame_equal(_table(out), reference)
    env = json.loads((out / "environment.json").read_text())
    assert [e["jobs"] for e in env["executions"]] == [int(jobs), int(jobs)]


def test_rerun_of_a_finished_run_changes_nothing(hang_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_argv(hang_file, out)) == 0
    stamp = (out / "results.csv").read_bytes()
    cells = {p: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")}
    assert main(_argv(hang_file, out)) == 0
    assert (out / "results.csv").read_bytes() == stamp
    assert {p: p.stat().st_mtime_ns for p in cells} == cells


def test_other_config_is_refused_and_force_starts_over(hang_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_argv(hang_file, out)) == 0
    stale = out / "logs" / "stale_from_before.csv"
    stale.write_text("epoch,loss\n")
    capsys.readouterr()
    assert main([*_argv(hang_file, out), "--epochs", "2"]) == 2
    err = capsys.readouterr().err
    assert "holds a run with another config (train.epochs: 1 -> 2)" in err
    assert "--force" in err
    assert main([*_argv(hang_file, out), "--epochs", "2", "--force"]) == 0
    assert not stale.exists()
    assert json.loads((out / "config.json").read_text())["train"]["epochs"] == 2
    assert len(json.loads((out / "environment.json").read_text())["executions"]) == 1


def test_jobs_do_not_change_numbers(hang_file, reference, tmp_path):
    out = tmp_path / "run"
    assert main([*_argv(hang_file, out), "--jobs", "2"]) == 0
    pd.testing.assert_frame_equal(_table(out), reference)


@pytest.mark.parametrize("manifest", [True, False], ids=["with-manifest", "config-only"])
def test_truncated_table_is_refused(hang_file, tmp_path, manifest, capsys):
    out = tmp_path / "run"
    assert main(_argv(hang_file, out)) == 0
    baseline = tmp_path / "baseline.json"
    assert main(["baseline", str(out), "--out", str(baseline)]) == 0
    lines = (out / "results.csv").read_text().splitlines(keepends=True)
    if not manifest:
        (out / "manifest.json").unlink()
    for keep in (len(lines) - 1, len(lines) // 2):  # cut at a row boundary
        (out / "results.csv").write_text("".join(lines[:keep]))
        with pytest.raises(ValueError, match="cut"):
            read(out)
        with pytest.raises(ValueError, match="cut"):
            make_report([out], tmp_path / "report")
        capsys.readouterr()
        assert main(["report", str(out), "--out", str(tmp_path / "report")]) == 2
        assert "the table was cut" in capsys.readouterr().err
        assert main(["check", str(out), "--baseline", str(baseline)]) == 2
        assert "the table was cut" in capsys.readouterr().err


def test_unfinished_run_is_named_as_such(hang_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_argv(hang_file, out)) == 0
    (out / "results.csv").rename(out / "results.csv.partial")
    with pytest.raises(ValueError, match="unfinished run"):
        read(out)

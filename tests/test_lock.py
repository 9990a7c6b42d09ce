"""One run per folder: a run holds `run.lock` while it writes; a second run into the folder is
refused with the holder's pid, nothing of the first is lost, and the lock of a run that died
(SIGKILL included) is taken over."""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pid_bench.cli import main
from pid_bench.results import read
from pid_bench.runfolder import LOCK, run_lock

TINY = ["--generator", "bits", "--set", "n_train=160", "--set", "n_test=96"]
FAST = ["--epochs", "1", "--batch-size", "32", "--no-mlp", "--quiet"]
FAST += ["--config-set", "probe.pid_clusters=3", "--interaction", "redundancy"]


def _argv(out: Path, *learners: str) -> list[str]:
    return ["run", "--learners", *(learners or ("random",)), *TINY, *FAST, "--out", str(out)]


def test_second_run_is_refused_and_a_killed_runs_lock_taken_over(hang_file, tmp_path, capsys):
    out = tmp_path / "run"
    argv = _argv(out, "random", f"{hang_file}:Hang")
    first = subprocess.Popen(
        [sys.executable, "-m", "pid_bench", *argv],
        env={**os.environ, "PIDB_TEST_HANG": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not list((out / "cells").glob("random_*.json")):  # random's cell is done
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first run's random cell did not finish"
            time.sleep(0.2)
        done = next((out / "cells").glob("random_*.json"))
        kept = (done.read_bytes(), done.stat().st_mtime_ns)
        holder = json.loads((out / LOCK).read_text())
        assert holder["pid"] == first.pid and holder["host"] == platform.node()

        capsys.readouterr()
        assert main(argv) == 2  # the second run, while the first holds the lock
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        assert f"is being written by another pid-bench run (pid {first.pid} on" in err, err
        assert (done.read_bytes(), done.stat().st_mtime_ns) == kept  # nothing lost
        assert first.poll() is None  # the first run goes on
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=60)

    assert json.loads((out / LOCK).read_text())["pid"] == first.pid  # left by the dead run
    stray = out / "cells" / ".hang_seed0_redundancy.json.0123abcd.tmp"  # as a kill leaves one
    stray.write_text('{"cell": ')
    assert main(argv) == 0  # taken over: the run resumes and finishes
    assert (done.read_bytes(), done.stat().st_mtime_ns) == kept  # its finished cell kept
    assert not (out / LOCK).exists()
    assert not stray.exists()  # the dead run's temporary file removed under the lock
    assert set(read(out)["learner"]) == {"random", "hang"}


def test_lock_file_of_a_dead_pid_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "run"
    out.mkdir()
    stale = {"pid": dead.pid, "host": platform.node(), "started": "2026-01-01T00:00:00+00:00"}
    (out / LOCK).write_text(json.dumps(stale))
    assert main(_argv(out)) == 0
    assert not (out / LOCK).exists()
    assert len(read(out)) > 0


def test_live_lock_refuses_run_and_score_naming_its_pid(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    with run_lock(out):
        held = json.loads((out / LOCK).read_text())
        assert held["pid"] == os.getpid() and held["host"] == platform.node()
        with pytest.raises(ValueError, match=f"pid {os.getpid()} on"):
            with run_lock(out):
                pass
        capsys.readouterr()
        assert main(_argv(out)) == 2
        assert f"another pid-bench run (pid {os.getpid()} on" in capsys.readouterr().err
        assert not (out / "config.json").exists()  # refused before writing anything
    assert not (out / LOCK).exists()

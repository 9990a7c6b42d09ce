"""CLI smoke tests: help, list, bad arguments (exit 2, one line), estimate, generate, run."""

from __future__ import annotations

import re

import numpy as np
import pytest

from estimators import SmallSampleWarning
from pid_bench.cli import main

COMMANDS = [
    "list",
    "generate",
    "estimate",
    "run",
    "score",
    "sweep",
    "show",
    "report",
    "baseline",
    "check",
]


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    assert "usage: pid-bench" in capsys.readouterr().out


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("bits", "gaussian", "comm", "cross_self", "factorcl", "broja", "clustered"):
        assert name in out


@pytest.mark.parametrize(
    "argv",
    [
        ["nope"],
        ["run", "--interaction", "nope"],
        ["run", "--epochs", "abc"],
        ["run", "--device", "tpu"],
    ],
)
def test_bad_arguments_exit_2_one_line(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error" in err


@pytest.mark.parametrize(
    "argv, match",
    [
        (["run", "--learners", "nope"], "unknown learner"),
        (["run", "--generator", "nope"], "unknown generator"),
        (["run", "--set", "noise"], "key=value"),
        (["run", "--set", "wrong=1"], "wrong"),
        (["run", "--config-set", "x"], "--config-set expects key=value"),
        (["run", "--config-set", "model.nope=1"], "ModelConfig has no field 'nope'"),
        (["run", "--config-set", "aug.image.crop_scale=2,3"], "crop_scale needs 0 < low"),
        (["estimate", "--joint", "/nonexistent.npy"], "no such file"),
        (["estimate", "--task", "nope"], "unknown task"),
        (["report", "/nonexistent", "--out", "/tmp/x"], ""),
        (["check", "/nonexistent", "--baseline", "/nonexistent.json"], ""),
    ],
)
def test_bad_values_exit_2(argv, match, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1


def test_estimate_joint(tmp_path, capsys):
    p = np.zeros((2, 2, 2))
    for a in range(2):
        for b in range(2):
            p[a, b, a ^ b] = 0.25
    f = tmp_path / "xor.npy"
    np.save(f, p)
    assert main(["estimate", "--joint", str(f)]) == 0
    out = capsys.readouterr().out
    assert "S= 1.0000" in out and "R= 0.0000" in out
    bad = tmp_path / "bad.npy"
    np.save(bad, p * 2)
    assert main(["estimate", "--joint", str(bad)]) == 2


def test_estimate_generator_synergy_close_to_truth(capsys):
    """The issue's acceptance check: the default clustered estimate is within 0.1 bit."""
    assert main(["estimate", "--generator", "bits", "--task", "synergy"]) == 0
    out = capsys.readouterr().out
    true_line = next(ln for ln in out.splitlines() if "true (latent, exact)" in ln)
    est_line = next(ln for ln in out.splitlines() if "clustered" in ln)

    def atoms(line: str) -> dict[str, float]:
        return {k: float(v) for k, v in re.findall(r"(R|U1|U2|S|I)=\s*([-\d.]+)", line)}

    t, e = atoms(true_line), atoms(est_line)
    assert t["S"] == pytest.approx(2.0, abs=1e-6) and t["R"] == pytest.approx(0.0, abs=1e-6)
    for k in ("R", "U1", "U2", "S"):
        assert abs(t[k] - e[k]) < 0.1, (k, t[k], e[k])


def test_estimate_prints_the_small_sample_flag(capsys):
    argv = ["estimate", "--generator", "bits", "--task", "synergy", "--set", "n_train=300"]
    with pytest.warns(SmallSampleWarning, match="300 samples over"):
        assert main(argv) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "clustered" in ln)
    assert re.search(r"S=\s*[\d.]+  I=\s*[\d.]+  small sample: \d\.\d/cell$", line)


def test_generate_npz(tmp_path, capsys):
    f = tmp_path / "d.npz"
    assert (
        main(
            [
                "generate",
                "--generator",
                "bits",
                "--set",
                "n_train=50",
                "--set",
                "n_test=20",
                "--out",
                str(f),
            ]
        )
        == 0
    )
    with np.load(f) as z:
        assert z["train_x1"].shape[0] == 50
        assert "test_y_synergy" in z.files


def test_run_cli(tmp_path, capsys):
    out = tmp_path / "r"
    argv = [
        "run",
        "--learners",
        "cross",
        "--epochs",
        "1",
        "--set",
        "n_train=200",
        "--set",
        "n_test=100",
        "--quiet",
        "--no-mlp",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "cross" in text and (out / "results.csv").is_file()


def test_sweep_then_report(tmp_path, capsys):
    root = tmp_path / "sw"
    argv = [
        "sweep",
        "--param",
        "noise",
        "--values",
        "0.1",
        "1.0",
        "--learners",
        "cross",
        "--epochs",
        "1",
        "--set",
        "n_train=200",
        "--set",
        "n_test=100",
        "--quiet",
        "--no-mlp",
        "--out",
        str(root),
    ]
    assert main(argv) == 0
    runs = sorted(root.iterdir())
    assert [p.name for p in runs] == ["noise=0.1", "noise=1.0"]
    from pid_bench.results import read

    df = read(runs[1])
    assert set(df["sweep_param"]) == {"noise"} and set(df["sweep_value"]) == {"1.0"}
    assert main(["report", *map(str, runs), "--out", str(tmp_path / "rep")]) == 0
    assert any(p.name.startswith("sweep") for p in (tmp_path / "rep").iterdir())
    # a swept value the generator rejects is a clear error, exit 2
    bad = [
        "sweep",
        "--param",
        "noise",
        "--values",
        "-1",
        "--learners",
        "cross",
        "--out",
        str(tmp_path / "b"),
    ]
    assert main(bad) == 2


@pytest.mark.parametrize(
    "values, match",
    [
        (["0.1", "0.1"], "--values must be distinct: '0.1' and '0.1' both give noise=0.1; give"),
        (["0.1", "0.2", "0.10"], "'0.1' and '0.10' both give noise=0.1"),
        (["0.1\n"], "--values '0.1\\n': each value names its run folder (noise=VALUE), so it"),
        (["a/b"], "--values 'a/b': each value names its run folder"),
    ],
)
def test_sweep_values_distinct_single_words(values, match, tmp_path, capsys):
    """`sweep --values 0.1 0.1` ran once and printed twice (issue 29, item 5)."""
    out = tmp_path / "sw"
    argv = ["sweep", "--param", "noise", "--values", *values, "--learners", "cross"]
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pid-bench sweep: error: ") and match in err, err
    assert len(err.splitlines()) == 1 and not out.exists()


@pytest.mark.parametrize(
    "argv, match",
    [
        (["run", "--epochs", "0"], "argument --epochs: must be at least 1, got 0"),
        (["run", "--seeds", "-1"], "argument --seeds: must be at least 0, got -1"),
        (["run", "--jobs", "0"], "argument --jobs: must be at least 1, got 0"),
        (["run", "--threads", "0"], "argument --threads: must be at least 1, got 0"),
        (["run", "--batch-size", "1"], "argument --batch-size: must be at least 2, got 1"),
        (["run", "--lr", "-1"], "argument --lr: must be a positive finite number, got -1"),
        (["run", "--lr", "nan"], "argument --lr: must be a positive finite number, got nan"),
        (["score", "--seed", "-3", "--data", "d", "--embeddings", "e", "--name", "n"], "--seed"),
        (["estimate", "--clusters", "0"], "argument --clusters: must be at least 1, got 0"),
        (["check", "r", "--baseline", "b", "--tolerance", "-0.1"], "must be a finite number"),
    ],
)
def test_out_of_range_flags_exit_2(argv, match, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1


@pytest.fixture
def places(tmp_path):
    """A file, a folder, a path under a file and a place nothing can be written to."""
    a_file = tmp_path / "a_file.txt"
    a_file.write_text("not a folder\n")
    a_dir = tmp_path / "a_dir"
    a_dir.mkdir()
    return {
        "file": str(a_file),
        "dir": str(a_dir),
        "under_file": str(a_file / "sub"),
        "unwritable": "/proc/pid_bench_cannot_write_here",  # even root cannot create it
        "text": str(a_file),
    }


@pytest.mark.parametrize(
    "argv, match",
    [
        (["run", "--out", "{file}"], "--out {file} is a file; give a folder"),
        (["run", "--out", "{under_file}"], "cannot write the run folder {under_file}"),
        (["run", "--out", "{unwritable}"], "cannot write the run folder {unwritable}"),
        (["generate", "--generator", "bits", "--out", "{dir}"], "--out {dir} is a folder"),
        (
            ["generate", "--generator", "bits", "--out", "{under_file}/d.npz"],
            "cannot create the folder of {under_file}/d.npz",
        ),
        (["report", "{dir}", "--out", "{file}"], "--out {file} is a file; report writes"),
        (["baseline", "{dir}", "--out", "{dir}"], "--out {dir} is a folder"),
        (["run", "--learner-set", "junk"], "--learner-set expects LEARNER.KEY=VALUE, got 'junk'"),
        (["run", "--learner-set", "comm=1"], "--learner-set expects LEARNER.KEY=VALUE"),
        (["estimate", "--joint", "{text}"], "{text} is not a .npy file; --joint takes a .npy"),
        (
            ["estimate", "--joint", "{text}", "--generator", "bits"],
            "--generator belong to estimating from a generator's samples",
        ),
        (["estimate", "--measure", "mmi"], "--measure applies to --joint"),
    ],
)
def test_bad_places_and_combinations_exit_2(argv, match, places, capsys):
    argv = [a.format(**places) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert match.format(**places) in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_estimate_joint_rejects_an_npz(tmp_path, capsys):
    f = tmp_path / "joint.npz"
    np.savez(f, p=np.full((2, 2, 2), 1 / 8))
    assert main(["estimate", "--joint", str(f)]) == 2
    assert "is a .npz archive; --joint takes a .npy file" in capsys.readouterr().err

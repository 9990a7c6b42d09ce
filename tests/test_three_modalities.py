"""Three modalities (issue 30): the `bits` generator with `modalities=3`, its lattice ground
truth, pretraining splits, files; two-modality data unchanged."""

from __future__ import annotations

import numpy as np
import pytest

import generators
from generators.base import TASK_ATOM3, TASKS3
from generators.bits import X3_FACTORS, bias_maps3
from generators.io import fingerprint, load_npz, save_npz

SMALL = {"n_train": 600, "n_test": 300}


def codes(group: np.ndarray) -> np.ndarray:
    """Class code of 0/1 bit rows, bit 0 least significant (the module's convention)."""
    return group @ (1 << np.arange(group.shape[1]))


@pytest.mark.parametrize("bits", [1, 2])
def test_each_task_holds_all_its_bits_in_its_lattice_node(bits: int) -> None:
    """redundancy -> "1|2|3", unique_i -> "i", synergy_ab -> "ab", synergy123 -> "123", each
    with H(Y) = `bits` bits and every other of the 18 atoms zero (exact I_min, computed)."""
    ds = generators.make("bits", modalities=3, bits=bits, **SMALL)
    assert ds.n_modalities == 3 and ds.tasks == TASKS3
    for task in TASKS3:
        r = ds.true_pid[task]
        node = ds.task_atom(task)
        assert node == TASK_ATOM3[task] and r.n_sources == 3 and len(r.atoms) == 18
        assert r.atom(node) == pytest.approx(bits, abs=1e-9), task
        assert r.mutual_info == pytest.approx(bits, abs=1e-9)
        others = {k: v for k, v in r.atoms.items() if k != node}
        assert max(abs(v) for v in others.values()) < 1e-9, (task, others)
        assert ds.n_classes[task] == 1 << bits


def test_labels_follow_the_groups() -> None:
    ds = generators.make("bits", modalities=3, bits=2, seed=3, **SMALL)
    for split in (ds.train, ds.test, *ds.pretrain.values()):
        c = {f: codes(g) for f, g in split.latents.items()}
        lab = split.labels
        np.testing.assert_array_equal(lab["redundancy"], c["r"])
        for i in (1, 2, 3):
            np.testing.assert_array_equal(lab[f"unique{i}"], c[f"u{i}"])
        np.testing.assert_array_equal(lab["synergy12"], c["p12_1"] ^ c["p12_2"])
        np.testing.assert_array_equal(lab["synergy13"], c["p13_1"] ^ c["p13_3"])
        np.testing.assert_array_equal(lab["synergy23"], c["p23_2"] ^ c["p23_3"])
        np.testing.assert_array_equal(lab["synergy123"], c["t1"] ^ c["t2"] ^ c["t3"])


def test_each_modality_is_a_function_of_its_own_groups_only() -> None:
    """Noise-free: rows with the same held groups have the same features; rows differing in a
    held group differ. So a synergy123 label is readable only from all three modalities."""
    ds = generators.make("bits", modalities=3, bits=1, noise=0.0, n_train=3000, n_test=10)
    lat = ds.train.latents
    assert [len(ds.train.modalities[i]) for i in range(3)] == [3000] * 3
    for x, held in zip(ds.train.modalities, X3_FACTORS, strict=True):
        key = np.stack([codes(lat[f]) for f in held], axis=1) @ (2 ** np.arange(len(held)))
        for k in np.unique(key)[:8]:
            rows = x[key == k]
            assert np.ptp(rows, axis=0).max() == 0.0  # one feature vector per pattern
        assert len({x[key == k][0].tobytes() for k in np.unique(key)}) == len(np.unique(key))
    # modality 1 does not see t2 or t3: the synergy123 label is independent of x1 alone
    x1_key = np.stack([codes(lat[f]) for f in X3_FACTORS[0]], axis=1) @ (2 ** np.arange(5))
    y = ds.train.labels["synergy123"]
    for k in np.unique(x1_key)[:8]:
        assert 0.3 < y[x1_key == k].mean() < 0.7


def test_pretraining_splits_tie_each_synergy_tasks_groups() -> None:
    ds = generators.make("bits", modalities=3, bits=2, seed=5, **SMALL)
    assert sorted(ds.pretrain) == ["synergy12", "synergy123", "synergy13", "synergy23"]
    maps = bias_maps3(2, 5)
    assert ds.params["synergy_maps"] == {t: [int(v) for v in m] for t, m in maps.items()}
    pairs = {"synergy12": ("p12_1", "p12_2"), "synergy13": ("p13_1", "p13_3"),
             "synergy23": ("p23_2", "p23_3")}  # fmt: skip
    for task, (a, b) in pairs.items():
        c = {f: codes(g) for f, g in ds.pretrain[task].latents.items()}
        np.testing.assert_array_equal(c[b], maps[task][c[a]])
        assert sorted(maps[task]) == [0, 1, 2, 3]  # a permutation
        # the unbiased training split does not tie them
        ct = {f: codes(g) for f, g in ds.train.latents.items()}
        assert (ct[b] == maps[task][ct[a]]).mean() < 0.5
    c = {f: codes(g) for f, g in ds.pretrain["synergy123"].latents.items()}
    np.testing.assert_array_equal(c["t3"], maps["synergy123"][c["t1"] * 4 + c["t2"]])
    none = generators.make("bits", modalities=3, synergy_pretrain="none", **SMALL)
    assert none.pretrain == {} and "synergy_maps" not in none.params


def test_file_round_trip_keeps_the_third_modality_and_the_lattice(tmp_path) -> None:
    ds = generators.make("bits", modalities=3, **SMALL)
    path = save_npz(ds, tmp_path / "d.npz")
    back = load_npz(path)
    assert back.n_modalities == 3 and fingerprint(back) == fingerprint(ds)
    for key in ("train", "test"):
        np.testing.assert_array_equal(getattr(back, key).x3, getattr(ds, key).x3)
    np.testing.assert_array_equal(back.pretrain["synergy23"].x3, ds.pretrain["synergy23"].x3)
    assert back.true_pid["synergy13"].atoms == ds.true_pid["synergy13"].atoms
    assert back.true_pid["synergy13"].atom("13") == 2.0
    # the fingerprint covers x3: a changed third modality is a different dataset
    ds.train.x3[0, 0] += 1.0
    assert fingerprint(ds) != fingerprint(back)


def test_a_file_missing_its_third_modality_is_refused(tmp_path) -> None:
    ds = generators.make("bits", modalities=3, **SMALL)
    path = save_npz(ds, tmp_path / "d.npz")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files if k != "test_x3"}
    np.savez(tmp_path / "cut.npz", **arrays)
    with pytest.raises(ValueError, match="missing entries test_x3"):
        load_npz(tmp_path / "cut.npz")


def test_bad_modalities_and_bits_say_what_is_accepted() -> None:
    with pytest.raises(ValueError, match="modalities"):
        generators.make("bits", modalities=4)
    with pytest.raises(ValueError, match="bits"):
        generators.make("bits", modalities=3, bits=4)


def test_two_modalities_draw_what_they_drew_before() -> None:
    """The option leaves two-modality data as it was: fingerprints of the defaults measured
    on the code before `modalities` existed (e96406b)."""
    assert fingerprint(generators.make("bits")) == "8ab2745a98926340"
    assert "modalities" not in generators.make("bits", n_train=50, n_test=20).params
    assert generators.make("bits", modalities=2, n_train=50, n_test=20).train.x3 is None


def test_show_draws_each_synergy_tasks_groups(tmp_path) -> None:
    from pid_bench.cli import main

    out = tmp_path / "show.png"
    argv = ["show", "--generator", "bits", "--set", "modalities=3", "--set", "n_train=400"]
    assert main([*argv, "--set", "n_test=100", "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_refuses_three_modalities_until_learners_take_them(tmp_path, capsys) -> None:
    """Generated, saved and shown; not trained yet: one line, nothing written."""
    from pid_bench.cli import main

    out = tmp_path / "r"
    argv = ["run", "--generator", "bits", "--set", "modalities=3", "--learners", "random"]
    assert main([*argv, "--seeds", "0", "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "has 3 modalities; learners, probes and reports take two so far" in err
    assert len(err.splitlines()) == 1 and not out.exists()

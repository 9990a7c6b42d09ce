"""Three modalities (issue 30): the `bits` generator with `modalities=3`, its lattice ground
truth, pretraining splits, files; two-modality data unchanged."""

from __future__ import annotations

import numpy as np
import pytest

import generators
from estimators import mutual_info_bits
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


def _pairwise_mi(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Plug-in mutual information (bits) of two class columns."""
    p = np.zeros((k, k))
    np.add.at(p, (a, b), 1.0)
    return mutual_info_bits(p / p.sum())


@pytest.mark.parametrize("name", ["bits", "content_style"])
def test_latin_triple_map_ties_the_three_without_tying_any_two(name: str) -> None:
    """triple_map="latin" (the default): t3 = g(t1, t2) on the synergy123 pretraining split
    with g a Latin square, so t3 carries nothing about t1 or t2 alone (Symile's case); a random
    table ("table") leaves it pairwise dependent. The other splits and maps are the same."""
    kw = {"modalities": 3, "bits": 2, "seed": 1, "n_train": 4000, "n_test": 100}
    latin = generators.make(name, **kw)
    table = generators.make(name, triple_map="table", **kw)
    assert latin.params["triple_map"] == "latin" and table.params["triple_map"] == "table"
    g = np.array(latin.params["synergy_maps"]["synergy123"]).reshape(4, 4)
    for line in (*g, *g.T):
        assert sorted(line) == [0, 1, 2, 3]  # every row and column a permutation
    for ds, tied_pairwise in ((latin, False), (table, True)):
        c = {f: codes(v) for f, v in ds.pretrain["synergy123"].latents.items()}
        m = np.array(ds.params["synergy_maps"]["synergy123"])
        np.testing.assert_array_equal(c["t3"], m[c["t1"] * 4 + c["t2"]])
        pair = max(_pairwise_mi(c["t1"], c["t3"], 4), _pairwise_mi(c["t2"], c["t3"], 4))
        assert (pair > 0.15) if tied_pairwise else (pair < 0.02), (name, pair)
    for split in ("train", "test"):
        np.testing.assert_array_equal(getattr(latin, split).x1, getattr(table, split).x1)
    np.testing.assert_array_equal(latin.pretrain["synergy12"].x2, table.pretrain["synergy12"].x2)
    with pytest.raises(ValueError, match="triple_map applies to modalities=3 only"):
        generators.make(name, triple_map="table", n_train=20, n_test=10)
    with pytest.raises(ValueError, match="triple_map must be one of latin, table"):
        generators.make(name, modalities=3, triple_map="xor", n_train=20, n_test=10)


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


@pytest.mark.parametrize("learner", ["factorcl", "shared_private"])
def test_bimodal_learners_are_refused_in_one_line(learner, tmp_path, capsys) -> None:
    """Bimodal by design: refused before anything is written."""
    from pid_bench.cli import main

    out = tmp_path / "r"
    argv = ["run", "--generator", "bits", "--set", "modalities=3", "--learners", "random", learner]
    assert main([*argv, "--seeds", "0", "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"learner {learner!r} takes 2 modalities and this dataset has 3" in err, err
    assert len(err.splitlines()) == 1 and not out.exists()


def test_three_modality_interaction_names_need_three_modalities(capsys) -> None:
    from pid_bench.cli import main

    argv = ["run", "--generator", "bits", "--learners", "random", "--interaction", "synergy123"]
    assert main([*argv, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "unknown interaction 'synergy123' for 2 modalities (a three-modality name" in err


LEARNERS3 = ("random", "supervised", "cross", "cross_self", "comm", "random_fusion", "symile")


@pytest.fixture(scope="module")
def run3(tmp_path_factory):
    """Every learner that takes three modalities, one short run on every task."""
    from pid_bench.runner import resolve_config, run

    cfg = resolve_config(
        generator="bits",
        generator_params={"modalities": 3, "n_train": 600, "n_test": 300},
        learners=list(LEARNERS3),
        seeds=[0],
        interaction="all",
        train_overrides={"epochs": 1},
        probe_overrides={"mlp": False},
    )
    out = tmp_path_factory.mktemp("run3") / "r"
    df, _ = run(cfg, out, quiet=True)
    return cfg, df, out


def test_every_three_modality_learner_runs_on_every_task(run3) -> None:
    cfg, df, out = run3
    assert cfg.tasks == TASKS3
    acc = df[(df.metric == "balanced_accuracy") & (df.probe == "linear")]
    assert set(acc.learner) == set(LEARNERS3)
    assert {(r.learner, r.task) for r in acc.itertuples()} == {
        (learner, t) for learner in LEARNERS3 for t in TASKS3
    }
    # each row carries the lattice node of its task and its true bits
    rows = df[df.task == "synergy123"]
    assert set(rows.true_atom) == {"123"} and set(rows.true_bits) == {2.0}
    assert set(df[df.task == "redundancy"].true_atom) == {"1|2|3"}
    # the clustered and BATCH PID estimates are bivariate: not made for three modalities
    assert "pid_clustered" not in set(df.probe)
    assert (out / "results.csv").exists() and (out / "manifest.json").exists()


def test_three_modality_learners_embed_and_train(tmp_path) -> None:
    """Shapes of `embed` and `embed_unimodal` (three arrays), and CoMM's four loss terms."""
    import torch

    from pid_bench.config import AugConfig, ModelConfig
    from pid_bench.learners import get_learner

    ds = generators.make("bits", modalities=3, n_train=64, n_test=10)
    xs = [torch.as_tensor(x[:16]) for x in ds.train.modalities]
    model = ModelConfig(d_model=16, hidden=32, proj_dim=8, fusion_heads=2)
    for name in ("random", "supervised", "cross", "cross_self", "comm", "symile"):
        torch.manual_seed(0)
        cls = get_learner(name)
        m = cls(ds.modality_kinds, ds.modality_shapes, model, AugConfig(), n_classes=4)
        z = m.embed(xs[0], xs[1], x3=xs[2])
        uni = m.embed_unimodal(xs[0], xs[1], x3=xs[2])
        assert z.shape[0] == 16 and len(uni) == 3 and all(u.shape[0] == 16 for u in uni), name
        if m.trainable:
            y = torch.zeros(16, dtype=torch.long)
            loss, terms = m.loss(xs[0], xs[1], y, torch.arange(16), None, x3=xs[2])
            loss.backward()
            assert torch.isfinite(loss), name
            if name == "comm":
                assert set(terms) == {"fused", "uni1", "uni2", "uni3"}
            if name == "cross":
                assert set(terms) == {"cross12", "cross13", "cross23"}
    # CoMM's Z1 reads modality 1 only: changing x2 and x3 leaves it unchanged
    torch.manual_seed(0)
    m = get_learner("comm")(ds.modality_kinds, ds.modality_shapes, model, AugConfig())
    z1, z2, z3 = m.embed_unimodal(xs[0], xs[1], x3=xs[2])
    w1, w2, w3 = m.embed_unimodal(xs[0], xs[1] + 1.0, x3=xs[2] - 1.0)
    torch.testing.assert_close(z1, w1)
    assert not torch.allclose(z2, w2) and not torch.allclose(z3, w3)


PLUGIN3 = """
import torch
from pid_bench.learners import Learner


class Triple(Learner):
    \"\"\"A frozen linear map of each modality (a user's three-modality plug-in).\"\"\"

    name = "triple"
    trainable = False
    modalities = (2, 3)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.maps = torch.nn.ModuleList(torch.nn.Linear(s[0], 8) for s in self.shapes)
        self.requires_grad_(False)

    def embed(self, x1, x2, x3=None):
        xs = (x1, x2) if x3 is None else (x1, x2, x3)
        return torch.cat([m(x) for m, x in zip(self.maps, xs)], 1)
"""


def test_a_plugin_takes_three_modalities(tmp_path) -> None:
    from pid_bench.cli import main

    plugin = tmp_path / "triple.py"
    plugin.write_text(PLUGIN3)
    out = tmp_path / "r"
    argv = ["run", "--generator", "bits", "--set", "modalities=3", "--set", "n_train=400"]
    argv += ["--set", "n_test=200", "--learners", f"{plugin}:Triple", "--interaction", "synergy123"]
    assert main([*argv, "--seeds", "0", "--no-mlp", "--quiet", "--out", str(out)]) == 0
    import pandas as pd

    df = pd.read_csv(out / "results.csv")
    assert set(df.learner) == {"triple"} and set(df.task) == {"synergy123"}


def test_score_takes_three_modality_data(tmp_path) -> None:
    """A user's embeddings of a three-modality dataset file are scored on its tasks; the
    bivariate PID estimates are skipped even where the file holds unimodal embeddings."""
    import json

    import pandas as pd

    from pid_bench.cli import main

    ds = generators.make("bits", modalities=3, n_train=400, n_test=200)
    data = save_npz(ds, tmp_path / "d.npz")
    fp = json.loads(str(np.load(data)["meta"]))["fingerprint"]
    emb = tmp_path / "e.npz"
    z = {"z_train": np.hstack(ds.train.modalities), "z_test": np.hstack(ds.test.modalities)}
    np.savez(emb, fingerprint=np.array(fp), z1_test=ds.test.x1, z2_test=ds.test.x2, **z)
    out = tmp_path / "s"
    argv = ["score", "--data", str(data), "--embeddings", str(emb), "--name", "raw"]
    assert main([*argv, "--interaction", "synergy", "--no-mlp", "--out", str(out)]) == 0
    df = pd.read_csv(out / "results.csv")
    assert set(df.task) == {"synergy12", "synergy13", "synergy23", "synergy123"}
    assert set(df.probe) == {"linear"}


# --- content_style with three modalities ---------------------------------------------------


def test_content_style_three_modalities_tasks_truth_and_views(tmp_path) -> None:
    """Each task all in its node; a view keeps every modality's content exactly and draws new
    style (read back through the inverse of the linear mixing); files rebuild the views."""
    ds = generators.make("content_style", modalities=3, n_train=400, n_test=200, seed=4)
    assert ds.n_modalities == 3 and ds.tasks == TASKS3
    cd = ds.params["content_dim"]
    assert ds.modality_shapes == ((5 * cd + 192,),) * 3
    for task in TASKS3:
        r = ds.true_pid[task]
        assert r.atom(ds.task_atom(task)) == pytest.approx(2.0, abs=1e-9)
        assert max(abs(v) for k, v in r.atoms.items() if k != ds.task_atom(task)) < 1e-9
    c = {f: codes(g) for f, g in ds.train.latents.items()}
    np.testing.assert_array_equal(ds.train.labels["synergy123"], c["t1"] ^ c["t2"] ^ c["t3"])
    rng = np.random.default_rng(0)
    views = ds.views.draw(ds.train.latents, rng)
    assert len(views) == 3
    for m, (x, v) in enumerate(zip(ds.train.modalities, views, strict=True)):
        mod = ds.views.modalities[m]
        zx = (x.astype(np.float64) * mod.scale) @ mod.mixing[0].T
        zv = (v.astype(np.float64) * mod.scale) @ mod.mixing[0].T
        np.testing.assert_allclose(zv[:, : 5 * cd], zx[:, : 5 * cd], atol=1e-3)
        assert abs(np.corrcoef(zx[:, 5 * cd :].ravel(), zv[:, 5 * cd :].ravel())[0, 1]) < 0.05
        # the modality holds its own groups: its content is the tables of those groups
        want = np.hstack([mod.tables[f][c[f]] for f in mod.factors])
        np.testing.assert_allclose(zx[:, : 5 * cd], want, atol=1e-3)
    assert [m.factors for m in ds.views.modalities] == list(X3_FACTORS)
    back = load_npz(save_npz(ds, tmp_path / "cs3.npz"))
    again = back.views.draw(ds.train.latents, np.random.default_rng(0))
    for a, b in zip(views, again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_content_style_two_modalities_draw_what_they_drew_before() -> None:
    """Fingerprints measured on the code before `modalities` existed (e96406b)."""
    assert fingerprint(generators.make("content_style")) == "ceba43394e09e8ea"
    kw = {"n_train": 300, "n_test": 100}
    ds = generators.make("content_style", depth=2, view_keep=0.5, **kw)
    assert fingerprint(ds) == "6396ec7e126358cc"
    assert ds.params["synergy_scale"] == 8.0


def test_content_style_synergy_scale_defaults_per_modality_count() -> None:
    """Left unset, the synergy groups are scaled x8 with two modalities and x16 with three
    (where x8 leaves the triple XOR unlearnt by the supervised ceiling at the quick profile);
    the recorded value is the one used, and an explicit value wins."""
    kw = {"n_train": 50, "n_test": 20}
    three = generators.make("content_style", modalities=3, **kw)
    assert three.params["synergy_scale"] == 16.0
    explicit = generators.make("content_style", modalities=3, synergy_scale=16.0, **kw)
    assert fingerprint(explicit) == fingerprint(three)
    eight = generators.make("content_style", modalities=3, synergy_scale=8, **kw)
    assert eight.params["synergy_scale"] == 8.0 and fingerprint(eight) != fingerprint(three)
    # the scale multiplies the synergy groups' tables only
    t16, t8 = three.views.modalities[0].tables, eight.views.modalities[0].tables
    np.testing.assert_allclose(t16["t1"], 2.0 * t8["t1"])
    np.testing.assert_array_equal(t16["u1"], t8["u1"])


def test_report_and_check_take_a_three_modality_run(run3, tmp_path) -> None:
    """Figures group unique1-3 as uniqueness and the pairwise synergies as one interaction;
    the bits figure shows every task by its symbol; a baseline of the run passes `check`."""
    from pid_bench.cli import main
    from pid_bench.report.data import ATOM_SYMBOL, interaction

    _, _, out = run3
    assert {interaction(t) for t in TASKS3} == {
        "redundancy", "uniqueness", "pairwise synergy", "triple synergy"
    }  # fmt: skip
    assert [ATOM_SYMBOL[t] for t in TASKS3][-4:] == ["S12", "S13", "S23", "S123"]
    rep = tmp_path / "rep"
    assert main(["report", str(out), "--out", str(rep)]) == 0
    for name in ("accuracy_bars.png", "pid_bars.png", "summary.md", "summary.html"):
        assert (rep / name).stat().st_size > 0, name
    text = (rep / "summary.md").read_text()
    assert "synergy123" in text and "unique3" in text
    # the accuracy figure's caption names what each of its bars averages
    assert "(uniqueness averages the unique1, unique2 and unique3 tasks; pairwise synergy " in text
    assert "averages the synergy12, synergy13 and synergy23 tasks)" in text
    base = tmp_path / "base.json"
    assert main(["baseline", str(out), "--out", str(base)]) == 0
    assert main(["check", str(out), "--baseline", str(base)]) == 0


def test_nan_in_the_third_modality_is_blamed_on_the_data() -> None:
    from pid_bench.cell import check_dataset

    ds = generators.make("bits", modalities=3, n_train=200, n_test=100)
    ds.train.x3[0, 0] = np.nan
    with pytest.raises(ValueError, match="x3 of the train split has 1 NaN or inf values"):
        check_dataset(ds, ds.tasks)


def test_a_table_of_synergy123_alone_reads_its_atom_back_as_text(run3, tmp_path) -> None:
    """A results table whose only task is synergy123 has true_atom "123" on every row; it must
    come back as the text "123" (not the integer 123, which broke `report`)."""
    import pandas as pd

    from pid_bench.cli import main
    from pid_bench.results import read

    _, _, out = run3
    df = pd.read_csv(out / "results.csv", dtype=str, keep_default_na=False)
    only = tmp_path / "only123"
    only.mkdir()
    df[df["task"] == "synergy123"].to_csv(only / "results.csv", index=False)
    back = read(only / "results.csv", complete=False)
    assert set(back["true_atom"]) == {"123"}
    assert main(["report", str(only), "--out", str(tmp_path / "rep")]) == 0
    assert "| synergy123 | 123 |" in (tmp_path / "rep" / "summary.md").read_text()

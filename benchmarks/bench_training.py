"""Training cost per learner: FLOPs, time and the share of the machine's matmul rate.

    python benchmarks/bench_training.py [--data bits trifeature] [--learners ...] [--steps N]
        [--threads N] [--learner-set LEARNER.KEY=VALUE ...] [--no-split] [--options]
        [--compile] [--views] [--baseline REV] [--profile NAME] [--flops-only]

For each learner, one training step (both augmented views, forward + backward, optimiser
step; default `ModelConfig`) on `bits` (batch 256) and `trifeature` 32 x 32 (batch 128):

- GFLOP per step: forward + backward as counted by `torch.utils.flop_counter.FlopCounterMode`
  (matrix products and convolutions; elementwise work is not counted),
- ms per step (median over `--steps` after five warm-up steps) and the GFLOP/s that makes,
- that rate as a share of a float32 matrix product's rate measured in the same run at the same
  thread count (the best of n = 512, 1024, 2048),
- where the step's time goes (`--no-split` skips it): augmentation, encoders, fusion, loss
  (heads, critics and the loss itself) and the optimiser step, forward and backward together,
  from torch's profiler (a backward op is charged to the part whose forward op created it).

`--profile NAME` measures the step as `pid-bench run --profile NAME` trains it instead: the
profile's batch size, image size and generator parameters, model, augmentation and optimiser
settings (e.g. `--profile published --data trifeature`: 224 x 224, AlexNet, batch 64), and also
prints the steps per epoch and TFLOP per epoch. `--flops-only` counts FLOPs and times nothing
(no matmul rate, step time or split): the way to size a configuration too large for this CPU.

`--baseline REV` first runs the same measurements on the code at git revision REV (extracted
to a temporary folder, in a subprocess) and then prints before/after GFLOP and ms per step.
`--options` measures the step time as trained (image encoders in channels_last, fused AdamW)
against contiguous NCHW image encoders, AdamW's per-parameter loop and foreach
implementations, and one torch thread instead of all cores (what `--jobs` > 1 runs with), as
ratios to the reference measured interleaved with them; `--views` the cost of
generator views on `content_style` (seconds per epoch of the training loop); `--compile`
torch.compile of the encoders (compile time, then step time against eager).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile, record_function
from torch.utils.flop_counter import FlopCounterMode

import generators
from pid_bench.commands import parse_learner_params
from pid_bench.config import AugConfig, ModelConfig
from pid_bench.learners import LEARNERS, get_learner
from pid_bench.learners.base import check_hyperparams
from pid_bench.learners.plugins import entry_points

DATA = {"bits": {"batch": 256}, "trifeature": {"batch": 128, "size": 32}}
PARTS = ("augmentation", "encoders", "fusion", "loss", "optimiser")
#: learner -> hyperparameter overrides (`--learner-set`, as `pid-bench run` takes them)
LEARNER_SET: dict[str, dict] = {}


def _optimizer(model: torch.nn.Module, adamw: dict | None) -> torch.optim.Optimizer:
    """The training loop's optimiser (AdamW at lr 1e-3), or AdamW with `adamw`'s keywords."""
    if adamw is None:
        try:
            from pid_bench.config import TrainConfig
            from pid_bench.training import make_optimizer
        except ImportError:  # a --baseline revision from before make_optimizer
            adamw = {}
        else:
            return make_optimizer(model, TrainConfig(lr=1e-3), torch.device("cpu"))
    return torch.optim.AdamW(model.parameters(), lr=1e-3, **adamw)


def _loads(name: str) -> bool:
    """Whether the learner can be loaded (a --baseline revision may predate a plug-in)."""
    try:
        get_learner(name)
    except ValueError as e:
        print(f"skipped {name}: {e}")
        return False
    return True


def matmul_rate(reps: int = 5) -> float:
    """Best float32 GFLOP/s of an n x n matrix product, n in 512, 1024, 2048 (median of reps)."""
    best = 0.0
    for n in (512, 1024, 2048):
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            torch.mm(a, b)
            ts.append(time.perf_counter() - t0)
        best = max(best, 2 * n**3 / float(np.median(ts)) / 1e9)
    return best


class Step:
    """One learner with its optimiser and a fixed batch; `run()` is one training step.

    Defaults are what `pid_bench.training.train` runs; `contiguous=True` puts image encoders
    in NCHW instead of their channels_last layout, `adamw` gives AdamW's own keyword
    arguments instead of the training loop's optimiser.
    """

    def __init__(
        self,
        name: str,
        data: str,
        contiguous: bool = False,
        adamw: dict | None = None,
        compile_encoders: bool = False,
        profile: str | None = None,
    ) -> None:
        spec = DATA[data]
        b = spec["batch"]
        kw = {"size": spec["size"]} if "size" in spec else {}
        model_cfg, aug_cfg, train_cfg = ModelConfig(), AugConfig(), None
        n_train = generators.parameters(data)["n_train"]
        if profile is not None:
            from pid_bench.runner import resolve_config

            cfg = resolve_config(
                generator=data, profile=profile, learners=[name], device_here=False
            )
            b, model_cfg, aug_cfg, train_cfg = cfg.train.batch_size, cfg.model, cfg.aug, cfg.train
            params = cfg.generator_params
            n_train = params.get("n_train", n_train)
            kw = {k: v for k, v in params.items() if k not in ("n_train", "n_test")}
        #: optimiser steps per epoch of the training loop (which drops a ragged last batch)
        self.steps_per_epoch = max(n_train // b, 1)
        ds = generators.make(data, n_train=b, n_test=16, **kw)
        self.fmt = torch.contiguous_format if contiguous else None
        with self._layout():
            torch.manual_seed(0)
            self.model = get_learner(name)(
                ds.modality_kinds, ds.modality_shapes, model_cfg, aug_cfg, n_classes=4
            )
        for key, value in LEARNER_SET.get(name, {}).items():
            setattr(self.model, key, value)
        self.trainable = self.model.trainable
        self.opt = None
        if self.trainable:
            if train_cfg is not None and adamw is None:
                from pid_bench.training import make_optimizer

                self.opt = make_optimizer(self.model, train_cfg, torch.device("cpu"))
            else:
                self.opt = _optimizer(self.model, adamw)
        self.model.start_epoch(1, b)
        if compile_encoders:
            for attr in ("enc1", "enc2"):
                setattr(self.model, attr, torch.compile(getattr(self.model, attr)))
        self.x1 = torch.as_tensor(ds.train.x1[:b])
        self.x2 = torch.as_tensor(ds.train.x2[:b])
        task = next(iter(ds.train.labels))
        self.y = torch.as_tensor(ds.train.labels[task][:b], dtype=torch.long) % 4
        self.idx = torch.arange(b)
        self.g = torch.Generator().manual_seed(0)

    @contextlib.contextmanager
    def _layout(self):
        """The image encoders' memory format set to this step's for the duration (where the
        code has the knob; older revisions measured by --baseline are contiguous anyway)."""
        from pid_bench.learners import image

        classes = [
            c
            for c in (getattr(image, n, None) for n in ("CNNEncoder", "AlexNetEncoder"))
            if c is not None and getattr(c, "memory_format", None) is not None
        ]
        saved = [c.memory_format for c in classes]
        if self.fmt is not None:
            for c in classes:
                c.memory_format = self.fmt
        try:
            yield
        finally:
            for c, fmt in zip(classes, saved, strict=True):
                c.memory_format = fmt

    def run(self) -> None:
        with self._layout():
            loss, _ = self.model.loss(self.x1, self.x2, self.y, self.idx, self.g)
            self.opt.zero_grad()
            loss.backward()
            with record_function("optimiser"):
                self.opt.step()

    def gflop(self) -> float:
        """Forward + backward GFLOP of one step (the optimiser's elementwise work excluded)."""
        with self._layout(), FlopCounterMode(display=False) as fc:
            loss, _ = self.model.loss(self.x1, self.x2, self.y, self.idx, self.g)
            loss.backward()
        self.opt.zero_grad()
        return fc.get_total_flops() / 1e9

    def seconds(self, steps: int, warmup: int = 2) -> float:
        """Median seconds per step after `warmup` steps."""
        ts = []
        for i in range(steps + warmup):
            t0 = time.perf_counter()
            self.run()
            if i >= warmup:
                ts.append(time.perf_counter() - t0)
        return float(np.median(ts))


@contextlib.contextmanager
def _labelled(model: torch.nn.Module):
    """Profiler ranges around the augmentations and the encoder and fusion modules."""
    handles, saved = [], {}

    def part_of(name: str) -> str | None:
        if name.startswith("enc"):
            return "encoders"
        if name in ("fusion", "fuse"):
            return "fusion"
        return None

    for name, mod in model.named_children():
        part = part_of(name)
        if part is None:
            continue
        stack: list = []

        def pre(_m, _a, part=part, stack=stack):
            stack.append(record_function(part))
            stack[-1].__enter__()

        def post(_m, _a, _o, stack=stack):
            stack.pop().__exit__(None, None, None)

        handles += [mod.register_forward_pre_hook(pre), mod.register_forward_hook(post)]
    for attr in ("aug1", "aug2"):
        fn = getattr(model, attr)
        saved[attr] = fn

        def wrapped(*a, fn=fn, **k):
            with record_function("augmentation"):
                return fn(*a, **k)

        setattr(model, attr, wrapped)
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        for attr, fn in saved.items():
            setattr(model, attr, fn)


def time_split(step: Step, steps: int = 3) -> dict[str, float]:
    """Share of a step's profiled CPU time per part (forward and backward together)."""
    with _labelled(step.model):
        step.run()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                step.run()
    events = prof.events()
    part_of_seq: dict[int, str] = {}
    totals: dict[str, float] = defaultdict(float)
    for e in events:
        if e.name in PARTS and e.cpu_parent is None:
            totals[e.name] += e.cpu_time_total
    # Forward ops inside a labelled range: their sequence numbers charge the backward ops
    for e in events:
        if e.sequence_nr < 0 or "Backward" in e.name or e.sequence_nr in part_of_seq:
            continue
        p = e.cpu_parent
        while p is not None and p.name not in PARTS:
            p = p.cpu_parent
        if p is not None:
            part_of_seq[e.sequence_nr] = p.name
    total = 0.0
    for e in events:
        if e.cpu_parent is None:
            total += e.cpu_time_total
            if e.name.startswith("autograd::engine::evaluate_function"):
                part = part_of_seq.get(e.sequence_nr)
                if part is not None:
                    totals[part] += e.cpu_time_total
    totals["loss"] = total - sum(totals[p] for p in PARTS if p != "loss")
    return {p: totals[p] / total for p in PARTS}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", default=list(DATA), choices=list(DATA))
    ap.add_argument(
        "--learners", nargs="+", default=None, help="default: every trainable one, plug-ins too"
    )
    ap.add_argument("--steps", type=int, default=None, help="default: 20 on bits, 6 on images")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    ap.add_argument(
        "--learner-set",
        action="append",
        default=[],
        metavar="LEARNER.KEY=VALUE",
        help="a learner's hyperparameter, as for pid-bench run (e.g. infmasking.n_masks=6)",
    )
    ap.add_argument("--no-split", action="store_true", help="skip the profiler time split")
    ap.add_argument(
        "--options", action="store_true", help="memory layout, AdamW implementations, threads"
    )
    ap.add_argument("--views", action="store_true", help="generator views on content_style")
    ap.add_argument("--compile", action="store_true", help="torch.compile of the encoders")
    ap.add_argument("--baseline", metavar="REV", help="also measure git revision REV, before")
    ap.add_argument(
        "--profile", metavar="NAME", help="the step as pid-bench run --profile NAME trains it"
    )
    ap.add_argument("--flops-only", action="store_true", help="count FLOPs, time nothing")
    ap.add_argument("--json", help=argparse.SUPPRESS)  # where a baseline run leaves its figures
    args = ap.parse_args()
    before = run_baseline(args.baseline) if args.baseline else None
    if args.threads:
        torch.set_num_threads(args.threads)
    # built-ins and installed plug-ins (infmasking is one)
    known = [*LEARNERS, *(n for n in entry_points() if n not in LEARNERS)]
    names = args.learners or [n for n in known if _loads(n) and get_learner(n).trainable]
    unknown = sorted(set(names) - set(known))
    if unknown:
        ap.error(f"unknown learners {unknown}; known: {', '.join(known)}")
    try:
        for learner, values in parse_learner_params(args.learner_set).items():
            if learner not in names:
                ap.error(
                    f"--learner-set names {learner!r}, which is not measured ({' '.join(names)})"
                )
            LEARNER_SET[learner] = check_hyperparams(get_learner(learner), values, learner)
    except ValueError as e:
        ap.error(str(e))
    if LEARNER_SET:
        print(f"hyperparameters: {LEARNER_SET}")
    if args.flops_only:
        flops_only(names, args.data, args.profile)
        return
    peak = matmul_rate()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"float32 matmul rate {peak:.1f} GFLOP/s")  # fmt: skip
    head = f"{'data':<12}{'learner':<16}{'GFLOP/step':>11}{'ms/step':>9}{'GFLOP/s':>9}{'of mm':>7}"
    if not args.no_split:
        head += "".join(f"{p[:6]:>8}" for p in PARTS)
    print(head)
    results = {}
    for data in args.data:
        steps = args.steps or (20 if data == "bits" else 6)
        for name in names:
            st = Step(name, data, profile=args.profile)
            if not st.trainable:
                continue
            # oneDNN and the allocator settle over the first steps: 5 warm-up steps
            gf, sec = st.gflop(), st.seconds(steps, warmup=5)
            results[f"{data}/{name}"] = (gf, sec)
            line = f"{data:<12}{name:<16}{gf:>11.3f}{1e3 * sec:>9.1f}{gf / sec:>9.1f}"
            line += f"{gf / sec / peak:>7.0%}"
            if not args.no_split:
                line += "".join(f"{v:>8.0%}" for v in time_split(st).values())
            print(line, flush=True)
    for data in args.data:
        for a, b, label in (
            ("comm", "cross", "CoMM / Cross"),
            ("infmasking", "comm", "InfMasking / CoMM"),
        ):
            if f"{data}/{a}" in results and f"{data}/{b}" in results:
                (ga, ta), (gb, tb) = results[f"{data}/{a}"], results[f"{data}/{b}"]
                print(f"{data}: {label}  FLOPs {ga / gb:.2f}x, time {ta / tb:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"peak": peak, "results": results}))
    if before is not None:
        print(f"\nbefore ({args.baseline}, matmul {before['peak']:.1f} GFLOP/s) -> after (now)")
        print(f"{'step':<28}{'GFLOP before':>13}{'after':>8}{'ms before':>11}{'after':>8}"
              f"{'time ratio':>11}")  # fmt: skip
        for key, (gf, sec) in results.items():
            if key in before["results"]:
                gb, sb = before["results"][key]
                print(f"{key:<28}{gb:>13.3f}{gf:>8.3f}{1e3 * sb:>11.1f}{1e3 * sec:>8.1f}"
                      f"{sec / sb:>11.2f}")  # fmt: skip
    if args.options:
        options(names, args.data, args.steps)
    if args.compile:
        compiled(names, args.data, args.steps)
    if args.views:
        views()


def flops_only(names: list[str], data: list[str], profile: str | None) -> None:
    """GFLOP per training step (forward + backward) and TFLOP per epoch; nothing timed."""
    print(f"profile {profile or '(none: default ModelConfig, batch of DATA)'}")
    print(f"{'data':<12}{'learner':<16}{'batch':>6}{'GFLOP/step':>12}{'steps/epoch':>12}"
          f"{'TFLOP/epoch':>12}")  # fmt: skip
    for d in data:
        for name in names:
            st = Step(name, d, profile=profile)
            if not st.trainable:
                continue
            gf, b = st.gflop(), st.x1.shape[0]
            print(f"{d:<12}{name:<16}{b:>6}{gf:>12.1f}{st.steps_per_epoch:>12}"
                  f"{gf * st.steps_per_epoch / 1e3:>12.1f}", flush=True)  # fmt: skip


def run_baseline(rev: str) -> dict:
    """This benchmark's figures on the code at git revision `rev` (same arguments)."""
    root = Path(__file__).resolve().parents[1]
    tmp = Path(tempfile.mkdtemp(prefix="bench_training_"))
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", rev], capture_output=True, check=False
    )
    if archive.returncode != 0:
        sys.exit(f"--baseline: git archive {rev} failed: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive.stdout, check=True)
    argv = [a for a in sys.argv[1:]]
    i = argv.index("--baseline")
    del argv[i : i + 2]
    argv = [a for a in argv if a not in ("--options", "--views", "--compile")]
    out = tmp / "figures.json"
    print(f"baseline {rev} (in {tmp}):", flush=True)
    env = {**os.environ, "PYTHONPATH": str(tmp)}
    subprocess.run([sys.executable, __file__, *argv, "--json", str(out)], env=env, check=True)
    print(flush=True)
    return json.loads(out.read_text())


def options(names: list[str], data: list[str], steps: int | None) -> None:
    """Step time under each option against the reference (contiguous, default AdamW, all
    threads), measured interleaved so that drifts of the machine hit every column alike."""
    n_all = torch.get_num_threads()
    variants = {
        "reference": {},
        "contiguous": {"contiguous": True},
        "adamw_loop": {"adamw": {"foreach": False, "fused": False}},
        "adamw_foreach": {"adamw": {"foreach": True, "fused": False}},
        "1 thread": {"threads": 1},
    }
    print(f"\noptions: ms/step (reference: as trained, {n_all} threads), then ratios to it")
    print(f"{'data':<12}{'learner':<16}" + "".join(f"{v:>14}" for v in variants))
    for d in data:
        k = steps or (20 if d == "bits" else 6)
        for name in names:
            if not get_learner(name).trainable:
                continue
            runs = {}
            for v, kw in variants.items():
                kw = dict(kw)
                torch.set_num_threads(kw.pop("threads", n_all))
                runs[v] = (Step(name, d, **kw), [])
            torch.set_num_threads(n_all)
            for _ in range(3):  # interleave rounds
                for v, (st, ts) in runs.items():
                    torch.set_num_threads(variants[v].get("threads", n_all))
                    ts.append(st.seconds(max(2, k // 3)))
            torch.set_num_threads(n_all)
            ms = {v: 1e3 * float(np.median(ts)) for v, (_, ts) in runs.items()}
            line = f"{d:<12}{name:<16}{ms['reference']:>14.1f}"
            line += "".join(f"{ms[v] / ms['reference']:>13.2f}x" for v in list(variants)[1:])
            print(line, flush=True)


def compiled(names: list[str], data: list[str], steps: int | None) -> None:
    """torch.compile of the encoders: its one-off compile time and the step time after it."""
    print("\ntorch.compile (encoders): compile seconds, ms/step eager -> compiled")
    for d in data:
        k = steps or (20 if d == "bits" else 6)
        for name in names:
            if not get_learner(name).trainable:
                continue
            eager = Step(name, d).seconds(k)
            st = Step(name, d, compile_encoders=True)
            t0 = time.perf_counter()
            st.run()
            first = time.perf_counter() - t0
            comp = st.seconds(k)
            print(f"{d:<12}{name:<16}compile {first:6.1f} s   {1e3 * eager:7.1f} -> "
                  f"{1e3 * comp:7.1f} ms ({comp / eager:.2f}x)", flush=True)  # fmt: skip


def views() -> None:
    """Seconds per epoch on content_style: generator views against tensor augmentations."""
    from pid_bench.config import TrainConfig
    from pid_bench.runner import split_views
    from pid_bench.training import train

    cs = generators.make("content_style", n_train=3072, n_test=16)
    print("\ncontent_style, 3,072 pairs, batch 128: seconds per epoch of the training loop")
    print(f"{'learner':<16}{'tensor aug':>12}{'gen. views':>12}{'ratio':>8}")
    for name in ("cross", "comm"):
        out = []
        for use_views in (False, True):
            torch.manual_seed(0)
            m = LEARNERS[name](cs.modality_kinds, cs.modality_shapes, ModelConfig(), AugConfig())
            t0 = time.perf_counter()
            train(m, cs.train.x1, cs.train.x2, None, TrainConfig(epochs=2, batch_size=128),
                  device=torch.device("cpu"), seed=0, progress=False,
                  views=split_views(cs, cs.train) if use_views else None)  # fmt: skip
            out.append((time.perf_counter() - t0) / 2)
        print(f"{name:<16}{out[0]:>12.2f}{out[1]:>12.2f}{out[1] / out[0]:>8.2f}")


if __name__ == "__main__":
    main()

"""Remove one step at a time and show that the tests named after it fail.

    python benchmarks/mutations.py            # every mutation
    python benchmarks/mutations.py --list     # names only
    python benchmarks/mutations.py --only gaussian-closed-form

Each mutation edits one source file of the checkout (a text replacement that must match
exactly once), runs the tests named after the step it removes, records which fail, and puts
the file back (also on Ctrl-C). The tests are first run on the unmutated code, where they must
pass. A mutation that none of its tests notices is reported SURVIVED and the script exits 1.
Run it on a clean working tree (it refuses otherwise): it restores files with `git checkout`.

The estimator and generator steps of reliability issue 29, item 9: BATCH's alignment on
gates where the starting coupling is not the optimum, the Gaussian PID's optimiser on
vector-M systems (reference values of praveenv253/gpid), InfMasking's masking against an
expected value built without its helpers, the manifest's checksum of results.csv, and the
content_style views at mixing depth >= 1. CoMM's fidelity mutations are
tools/fidelity/mutations_comm.py.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    """One removed step: `old` replaced by `new` in `path`; each of `tests` must then fail.

    `blind`: tests of the same step that the mutation does not fail (shown, not required):
    why `tests` were written.
    """

    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    blind: tuple[str, ...] = ()


MUTATIONS: tuple[Mutation, ...] = (
    Mutation(
        "batch-alignment-off",
        "estimators/_batch_torch.py",
        'epochs=p["align_epochs"],',
        "epochs=0,",
        ("tests/test_batch_pid.py::test_atoms_on_gates_where_alignment_matters",),
        # on pure R/U/S bits the starting coupling is already optimal
        ("tests/test_batch_pid.py::test_atoms_on_latent_bits",),
    ),
    Mutation(
        "gaussian-closed-form",
        "estimators/gaussian.py",
        "if rx == 0 or ry == 0 or _ordered(hx, hy):",
        "if True:",
        ("tests/test_gaussian_pid.py::test_vector_target_matches_the_authors_code",),
        # a scalar M takes the closed form anyway
        ("tests/test_gaussian_pid.py::test_scalar_target_equals_mmi",),
    ),
    Mutation(
        "infmasking-zeros-for-mask-token",
        "pid_bench/contrib/infmasking.py",
        "masked = torch.where(keep[..., None], tokens, self.mask_token.to(tokens.dtype))",
        "masked = torch.where(keep[..., None], tokens, torch.zeros_like(tokens))",
        (
            "tests/test_infmasking.py::test_masked_views_replace_tokens_by_the_mask_token_and_keep_cls",
        ),
    ),
    Mutation(
        "infmasking-keeps-the-ratio",
        "pid_bench/contrib/infmasking.py",
        "n_keep = int(n * (1 - self.mask_ratio))  # as the authors count it",
        "n_keep = int(n * self.mask_ratio)",
        (
            "tests/test_infmasking.py::test_masked_views_replace_tokens_by_the_mask_token_and_keep_cls",
        ),
    ),
    Mutation(
        "manifest-checksum-unchecked",
        "pid_bench/results.py",
        "if hashlib.sha256(p.read_bytes()).hexdigest() != digest:",
        "if False:",
        ("tests/test_files.py::test_edited_table_is_refused_by_its_manifest_checksum",),
    ),
    Mutation(
        "content-style-deep-layers-skipped",
        "generators/content_style.py",
        "for m in self.mixing[1:]:",
        "for m in self.mixing[1:1]:",
        ("tests/test_content_style.py::test_views_keep_the_content_and_draw_new_style",),
    ),
)


def run_tests(tests: tuple[str, ...]) -> dict[str, str]:
    """Outcome ("passed" / "failed") of each test id (a parametrized test: all its cases)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = {}
    for t in tests:
        r = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", t],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        if r.returncode not in (0, 1):
            raise SystemExit(f"pytest could not run {t} (exit {r.returncode}):\n{r.stdout[-2000:]}")
        out[t] = "passed" if r.returncode == 0 else "failed"
    return out


def apply(m: Mutation) -> None:
    """Edit `m.path`; the replaced text must occur exactly once."""
    p = ROOT / m.path
    src = p.read_text()
    if src.count(m.old) != 1:
        raise SystemExit(
            f"{m.name}: {m.path} holds the text to replace {src.count(m.old)} times, not once; "
            "update the mutation to the current code"
        )
    p.write_text(src.replace(m.old, m.new))


def restore(m: Mutation) -> None:
    subprocess.run(["git", "checkout", "--", m.path], cwd=ROOT, check=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--list", action="store_true", help="print the mutations' names and exit")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run these mutations only")
    args = p.parse_args(argv)
    names = [m.name for m in MUTATIONS]
    if args.list:
        print("\n".join(names))
        return 0
    unknown = sorted(set(args.only or []) - set(names))
    if unknown:
        p.error(f"unknown mutation(s) {unknown}; known: {', '.join(names)}")
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", *sorted({m.path for m in chosen})],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if dirty:
        p.error(f"the files to mutate have uncommitted changes; commit or stash them:\n{dirty}")

    survived = 0
    print(f"{'mutation':34s} {'test':80s} {'main':7s} mutated")
    for m in chosen:
        t0 = time.perf_counter()
        every = m.tests + m.blind
        before = run_tests(every)
        apply(m)
        try:
            after = run_tests(every)
        finally:
            restore(m)
        for t in every:
            role = "" if t in m.tests else "  (blind to it: not required)"
            print(f"{m.name:34s} {t.split('/')[-1]:80s} {before[t]:7s} {after[t]}{role}")
        ok = all(before[t] == "passed" and after[t] == "failed" for t in m.tests)
        survived += not ok
        verdict = "caught" if ok else "SURVIVED"
        print(f"{m.name:34s} -> {verdict} ({time.perf_counter() - t0:.0f} s)")
    print(f"{len(chosen) - survived} of {len(chosen)} mutations caught")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())

"""A/B of the matting code against an earlier commit, as ``bench.matting_cases`` times it: the first
4.6 MP call in a fresh process (after its small warm-up), the two versions alternating.

Each version runs from its own checkout folder (the earlier one in a temporary ``git worktree``).
``PYTHONPATH`` alone does not do it: ``python -m`` puts the current folder first on ``sys.path``, so
a child started from this checkout runs this checkout's code whatever ``PYTHONPATH`` says.

    .venv/bin/python -m bench.matting_ab REV [--case hair] [--megapixels 4.6] [--rounds 10]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

from bench.matting_cases import CASES, ROOT, make_case


def timed_call(checkout, case_path):
    """Seconds and peak MB of one call in a fresh process running `checkout`'s code."""
    done = subprocess.run([sys.executable, "-m", "bench.matting_cases", "--child", "fast", case_path],
                          cwd=checkout, env={**os.environ, "PYTHONPATH": checkout}, capture_output=True,
                          text=True, check=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return figures["seconds"], figures["peak_mb"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rev", help="the earlier commit (any git revision)")
    parser.add_argument("--case", default="hair", choices=list(CASES))
    parser.add_argument("--megapixels", type=float, default=4.6)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        before = os.path.join(tmp, "before")
        subprocess.run(["git", "worktree", "add", "--detach", "-q", before, args.rev], cwd=ROOT, check=True)
        try:
            case_path = make_case(args.case, args.megapixels, tmp)
            runs = {"before": [], "after": []}
            for _ in range(args.rounds):
                for name, checkout in (("before", before), ("after", ROOT)):
                    runs[name].append(timed_call(checkout, case_path))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", before], cwd=ROOT, check=True)
    median = {name: statistics.median(s for s, _ in calls) for name, calls in runs.items()}
    for name, calls in runs.items():
        print(f"{name:6s} {' '.join(f'{s:.3f}' for s, _ in calls)}  median {median[name]:.3f} s, "
              f"peak {statistics.median(p for _, p in calls):.0f} MB")
    print(f"{args.case} at {args.megapixels:g} MP, {args.rev} -> working tree: {median['after'] / median['before']:.3f}x")


if __name__ == "__main__":
    main()

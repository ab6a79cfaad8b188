"""What the weight stamp buys: a new process's first segment() with the stamp beside the
model's file (the file trusted), and with the stamp deleted (the file hashed again, as every
process did before). Fresh processes, the two alternating, the numba cache as it is.

    .venv/bin/python -m bench.verify_stamp [--model u2net] [--megapixels 1] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

from segkit.models.lookup import get_model
from segkit.models.weights import find_cached, stamp_path

from .cold_start import CHILD, fresh_process


def measure(model: str, megapixels: float, rounds: int) -> dict[str, list[float]]:
    """Per case ("hashed", "stamped"): first call minus warm call, seconds, one per round."""
    path = find_cached(get_model(model))
    if path is None:
        raise SystemExit(f"{model} is not cached: python -m segkit download {model}")
    code = CHILD.format(megapixels=megapixels, model=model, matting=False)
    fresh_process(code, dict(os.environ))  # leaves the stamp in place (the file has been still for long)
    extra: dict[str, list[float]] = {"hashed": [], "stamped": []}
    for _ in range(rounds):
        for case in extra:
            if case == "hashed":
                stamp_path(path).unlink(missing_ok=True)  # the child hashes the file and stamps it again
            out = json.loads(fresh_process(code, dict(os.environ)).splitlines()[-1])
            extra[case].append(out["first"] - out["warm"])
    return extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="u2net")
    parser.add_argument("--megapixels", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    extra = measure(args.model, args.megapixels, args.rounds)
    print(f"{args.model}, {args.megapixels:g} MP: first call minus warm call, {args.rounds} fresh processes each")
    for case, values in extra.items():
        print(f"| {case} | median {statistics.median(values):+.2f} s | " + " ".join(f"{v:+.2f}" for v in values))
    hashed, stamped = (statistics.median(extra[c]) for c in ("hashed", "stamped"))
    print(f"the stamp takes {hashed - stamped:.2f} s off the first call's extra ({stamped / hashed:.2f}x of it)")


if __name__ == "__main__":
    main()

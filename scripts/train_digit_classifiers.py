"""Train the two label classifiers that ship with nicegan and score the digits translations.

Run once by a maintainer (a minute on a CPU); users never run it. It trains one
:class:`nicegan.evaluation.digits.DigitClassifier` per domain on ``builtin:digits``' training split with
:func:`nicegan.evaluation.digits.train_classifier` (seed 0), writes them as safetensors into
``src/nicegan/evaluation/classifiers/`` and prints the SHA-256 and test-accuracy lines to paste into
``nicegan/evaluation/digits.py``, plus the untranslated cross-domain baselines. Retraining on another machine gives
slightly different weights (CPU kernels differ): that is why the weights are shipped rather than trained at use.

    python scripts/train_digit_classifiers.py [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import torch
from safetensors.torch import save_file

from nicegan.data.digits import load_digits_pair
from nicegan.evaluation.digits import CLASSIFIER_DIR, accuracy, source_tensor, train_classifier


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=CLASSIFIER_DIR, help="folder for digits_a/b.safetensors")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    pair = load_digits_pair()
    sha, acc, clfs = {}, {}, {}
    for dom in "AB":
        src = pair.split("train", dom)
        clf = train_classifier(source_tensor(src), src.labels, seed=args.seed)
        path = args.out / f"digits_{dom.lower()}.safetensors"
        # contiguous float tensors, BatchNorm running statistics included: everything eval mode needs
        save_file({k: v.detach().contiguous() for k, v in clf.state_dict().items()}, str(path),
                  metadata={"trained_on": f"builtin:digits train {dom}", "seed": str(args.seed),
                            "torch": torch.__version__})
        sha[dom] = hashlib.sha256(path.read_bytes()).hexdigest()
        test = pair.split("test", dom)
        acc[dom] = accuracy(clf, source_tensor(test), test.labels)
        clfs[dom] = clf
        print(f"{path}: {path.stat().st_size} bytes, test accuracy {100 * acc[dom]:.1f} %")
    for src_dom, dst_dom in (("A", "B"), ("B", "A")):
        test = pair.split("test", src_dom)
        base = accuracy(clfs[dst_dom], source_tensor(test), test.labels)
        print(f"untranslated baseline {src_dom}->{dst_dom}: {100 * base:.1f} %")
    print("\nCLASSIFIER_SHA256 = {")
    for dom in "AB":
        print(f'    "{dom}": "{sha[dom]}",')
    print("}")
    print(f'CLASSIFIER_TEST_ACCURACY = {{"A": {acc["A"]!r}, "B": {acc["B"]!r}}}')


if __name__ == "__main__":
    main()

"""A picture of a multimodal model's styles: for five test digits per direction (spread over the class-sorted test
split of builtin:digits), the input and its translations with K seeded random styles (the ``--styles K`` codes).

    python scripts/style_grid.py sweeps/main/runs/munit/seed0 docs/findings/munit_styles.png --styles 6
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image

from nicegan import Translator
from nicegan.data import open_domain

TILE = 64


def _tile(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB").resize((TILE, TILE), Image.NEAREST))


def _gap(width: int, height: int = TILE) -> np.ndarray:
    return np.full((height, width, 3), 255, np.uint8)


def style_grid(run: str, styles: int, style_seed: int = 0, per_direction: int = 5) -> np.ndarray:
    tr = Translator.load(run, device="cpu")
    blocks = []
    for direction, domain in (("a2b", "A"), ("b2a", "B")):
        src = open_domain("builtin:digits", "test", domain)
        rows = []
        for i in (round(k * (len(src) - 1) / (per_direction - 1)) for k in range(per_direction)):
            img = src.load(i)
            outs = tr(img, direction, styles=styles, style_seed=style_seed)
            parts = [_tile(img), _gap(12)]
            for y in outs:
                parts += [_tile(y), _gap(2)]
            rows.append(np.concatenate(parts[:-1], axis=1))
        blocks.append(np.concatenate(rows, axis=0))
    return np.concatenate([blocks[0], _gap(blocks[0].shape[1], 8), blocks[1]], axis=0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="a run folder or checkpoint of a multimodal model trained on builtin:digits")
    p.add_argument("output", help="PNG file")
    p.add_argument("--styles", type=int, default=6)
    p.add_argument("--style-seed", type=int, default=0)
    args = p.parse_args()
    grid = style_grid(args.run, args.styles, args.style_seed)
    Image.fromarray(grid).save(args.output, optimize=True)
    print(f"{args.output}: {grid.shape[1]} x {grid.shape[0]} px")


if __name__ == "__main__":
    main()

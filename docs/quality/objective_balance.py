"""Which content/style balance has an optimum that still shows the photo? Gatys et al. from white noise.

A feed-forward network trained on an objective can at best reach that objective's optimum. If
L-BFGS from noise (Johnson et al.'s baseline) converges to a texture without the photo's content,
so will the network. Usage: python docs/quality/objective_balance.py STYLE_IMAGE PHOTO OUT_DIR SW [SW...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from fastnst.evaluate import gatys, noise_image, prepare_photo
from fastnst.images import tensor_to_pil
from fastnst.objective import PerceptualObjective
from fastnst.settings import ObjectiveSettings

ITERATIONS = (10, 20, 30, 50, 100, 200)


def main() -> None:
    style, photo, out, *weights = sys.argv[1:]
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    content = prepare_photo(photo, 256)
    for sw in map(float, weights):
        settings = ObjectiveSettings(loss_network="vgg16-hed", style_weight=sw, content_weight=1.0, tv_weight=10.0,
                                     loss_scaling="relative", style_size=384)
        objective = PerceptualObjective.for_style(settings, style)
        with torch.no_grad():
            photo_terms = objective(content, content).as_floats()
        points = gatys(content, objective, ITERATIONS, init=noise_image(content))
        row = {"style_weight": sw, "photo": photo_terms, "gatys_from_noise": [p.to_json() for p in points]}
        (out_dir / f"sw{sw:g}.json").write_text(json.dumps(row, indent=1))
        for p in points:
            if p.iterations in (100, 200):
                tensor_to_pil(p.image).save(out_dir / f"sw{sw:g}_it{p.iterations}.png")
        print(sw, photo_terms, [(p.iterations, p.loss) for p in points], flush=True)


if __name__ == "__main__":
    main()

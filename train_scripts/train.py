#!/usr/bin/env python
"""Train one fastnst style. Same code as `fastnst train`; also runs under torchrun.

GPU, COCO streamed from the Hub (the paper's settings):
    python train_scripts/train.py --preset paper --loss-network vgg16 \
        --style-image ../shared/data/styles/starry_night.jpg -o styles/starry_night --push-to-hub you/starry-night
Many GPUs:
    torchrun --nproc_per_node=8 train_scripts/train.py --preset paper --style-image starry.jpg -o styles/starry
Offline on a CPU, local photos (the recipe of the shipped styles, ~55 min on one core):
    python train_scripts/train.py --preset cpu-joint --loss-network vgg16-hed --data ../shared/data/photos \
        --style-image ../shared/data/styles/starry_night.jpg -o styles/starry_night
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from fastnst.cli import train_script_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(train_script_main())

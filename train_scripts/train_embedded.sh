#!/usr/bin/env bash
# Trains the styles shipped in fastnst/embedded/ (CPU, offline, ../shared/data/photos minus the
# held-out photos of train_scripts/holdout_photos.txt) and copies them into the package.
#
# Usage: [EXTRA_FLAGS="--resume"] bash train_scripts/train_embedded.sh STEPS GROUP NAME [NAME...]
#   trains the named styles of train_scripts/embedded_styles.json (`--styles`, `--preset cpu-joint`;
#   several names: one network with conditional instance norm, exported as one ordinary style folder
#   each) into out/GROUP/NAME and copies them to fastnst/embedded/NAME. Each shipped style's model
#   card gives the exact command it was trained with (this round's styles were trained one at a
#   time: a joint run differentiated its styles too slowly, see docs/quality/README.md), e.g.
#     bash train_scripts/train_embedded.sh 3500 sn starry_night
#   To continue in a later sitting from the committed weights (no checkpoint needed):
#     EXTRA_FLAGS="--init-from fastnst/embedded" bash train_scripts/train_embedded.sh 2000 sn2 starry_night
#   The shipped styles end with a leg at 256 px (the size they are evaluated at) with bilinear
#   upsampling (no 4 px grid in flat areas, see docs/quality/README.md section 6), e.g.
#     EXTRA_FLAGS="--init-from fastnst/embedded --image-size 256 --lr 5e-4 --upsample bilinear" \
#       bash train_scripts/train_embedded.sh 600 gw256 great_wave
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=$1 GROUP=$2
shift 2
ONLY=$(IFS=,; echo "$*")
PHOTOS=${PHOTOS:-../shared/data/photos}
PY=${PY:-.venv/bin/python}

OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} $PY train_scripts/train.py --preset cpu-joint --loss-network vgg16-hed \
  --data "$PHOTOS" --exclude-list train_scripts/holdout_photos.txt \
  --styles train_scripts/embedded_styles.json --only "$ONLY" --steps "$STEPS" -o "out/$GROUP" ${EXTRA_FLAGS:-} \
  --data-description "${DATA_DESCRIPTION:-1,528 photos (COCO, BSDS500 and ImageNet samples; research use, not redistributed)}"
for name in "$@"; do
  mkdir -p "fastnst/embedded/$name"
  cp "out/$GROUP/$name"/{config.json,model.safetensors,README.md,style.jpg,example.jpg} "fastnst/embedded/$name/"
done

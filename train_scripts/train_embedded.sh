#!/usr/bin/env bash
# Trains the styles shipped in fastnst/embedded/ (CPU, offline, ../shared/data/photos minus the
# held-out photos of train_scripts/holdout_photos.txt) and copies them into the package.
#
# Usage: [EXTRA_FLAGS="--resume"] bash train_scripts/train_embedded.sh STEPS GROUP NAME [NAME...]
#   trains the named styles of train_scripts/embedded_styles.json together in one network
#   (conditional instance norm, `--styles`), exported as one ordinary style folder each, into
#   out/GROUP/NAME and fastnst/embedded/NAME. The shipped styles were trained as two groups, one
#   single-threaded process each at the same time (see their model cards for the exact commands):
#     bash train_scripts/train_embedded.sh 3500 a great_wave the_scream composition_vii
#     (starry_night alone: see its model card)
#   To continue in a later sitting from the committed weights (no checkpoint needed):
#     EXTRA_FLAGS="--init-from fastnst/embedded" bash train_scripts/train_embedded.sh 3000 a2 starry_night ...
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

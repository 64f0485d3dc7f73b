#!/usr/bin/env bash
# Sanity check: can the network fit ONE photo as well as Gatys et al.'s optimisation does?
# Trains the shipped architecture (cpu-joint preset, one style) on a single held-out photo, then
# evaluates it on that photo against the Gatys runs already in docs/eval/noise/STYLE (reused).
# If it cannot come near Gatys 100 there, the limit is a bug or the network's capacity, not data.
# Usage: bash docs/quality/overfit_one_photo.sh [STYLE] [PHOTO_NAME] [STEPS]
set -euo pipefail
cd "$(dirname "$0")/../.."
STYLE=${1:-starry_night} NAME=${2:-coco_train2017_000000000446.jpg} STEPS=${3:-1500}
PY=${PY:-.venv/bin/python}
work=out/overfit-$STYLE
mkdir -p "$work/photo"
ln -sf "$(realpath ../shared/data/photos/$NAME)" "$work/photo/$NAME"
image=$($PY -c "import json,sys; print(next(e['image'] for e in json.load(open('train_scripts/embedded_styles.json')) if e['name']=='$STYLE'))")
OMP_NUM_THREADS=1 $PY train_scripts/train.py --preset cpu-joint --loss-network vgg16-hed --data "$work/photo" \
  --style-image "$image" --name "$STYLE" --image-size 256 --batch-size 1 --steps "$STEPS" --style-warmup 300 \
  --sample-every 250 -o "$work/style" >/dev/null
mkdir -p "$work/eval"
cp docs/eval/noise/$STYLE/eval.json "$work/eval/eval.json"   # reuse its Gatys runs (same objective)
OMP_NUM_THREADS=1 $PY -m fastnst.cli eval "$work/style" --photos "../shared/data/photos/$NAME" --init noise \
  --out "$work/eval" --resume --style-image "$image"

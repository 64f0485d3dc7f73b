#!/usr/bin/env bash
# Trains the embedded styles shipped in fastnst/embedded/ (CPU, offline, ../shared/data/photos).
# Usage: [EXTRA_FLAGS="--style-weight 50"] bash train_scripts/train_embedded.sh [STEPS] [NAME...]
# The shipped styles used the steps recorded in their model cards (config.json "training").
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-2500}
shift || true
# the_scream is listed but not shipped: after 1000 steps it had not reached the quality bar of
# tests/test_embedded_styles.py (style loss 0.67 of the photo's, the bar is 0.6).
ONLY=" ${*:-starry_night great_wave composition_vii} "
PHOTOS=${PHOTOS:-../shared/data/photos}
STYLES=${STYLES:-../shared/data/styles}
PY=${PY:-.venv/bin/python}

train() {  # name file title artist year licence [extra flags]
  local name=$1 file=$2 title=$3 artist=$4 year=$5 licence=$6; shift 6
  [[ "$ONLY" == *" $name "* ]] || return 0
  $PY train_scripts/train.py --preset cpu-small --loss-network vgg16-hed --data "$PHOTOS" \
    --style-image "$STYLES/$file" --name "$name" --title "$title" --artist "$artist" --year "$year" \
    --licence "$licence" --steps "$STEPS" -o "out/$name" ${EXTRA_FLAGS:-} "$@"
  mkdir -p "fastnst/embedded/$name"
  cp "out/$name"/{config.json,model.safetensors,README.md,style.jpg,example.jpg} "fastnst/embedded/$name/"
}

train starry_night starry_night.jpg "The Starry Night" "Vincent van Gogh" 1889 "public domain"
train great_wave great_wave.jpg "The Great Wave off Kanagawa" "Katsushika Hokusai" "c. 1830-32" "public domain"
train the_scream the_scream.jpg "The Scream" "Edvard Munch" 1893 "public domain (US; EU since 2015)"
train composition_vii composition_vii.jpg "Composition VII" "Wassily Kandinsky" 1913 "public domain (US; EU since 2015)"

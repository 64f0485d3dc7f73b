#!/usr/bin/env bash
# Trains the embedded styles shipped in fastnst/embedded/ (CPU, offline, ../shared/data/photos).
# Usage: [EXTRA_FLAGS="--resume"] bash train_scripts/train_embedded.sh [STEPS] [NAME...]
# The shipped styles: 2500 steps of the cpu-small preset each (about 25 min on 2 free cores), trained
# in legs with --resume (exact resume: the same as one run); their model cards record the exact command.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-2500}
shift || true
ONLY=" ${*:-starry_night great_wave the_scream composition_vii} "
PHOTOS=${PHOTOS:-../shared/data/photos}
STYLES=${STYLES:-../shared/data/styles}
PY=${PY:-.venv/bin/python}

train() {  # name file title artist year licence [extra flags]
  local name=$1 file=$2 title=$3 artist=$4 year=$5 licence=$6; shift 6
  [[ "$ONLY" == *" $name "* ]] || return 0
  $PY train_scripts/train.py --preset cpu-small --loss-network vgg16-hed --data "$PHOTOS" \
    --style-image "$STYLES/$file" --name "$name" --title "$title" --artist "$artist" --year "$year" \
    --licence "$licence" --steps "$STEPS" -o "out/$name" ${EXTRA_FLAGS:-} "$@" \
    --data-description "${DATA_DESCRIPTION:-1,533 photos (COCO, BSDS500 and ImageNet samples; research use, not redistributed)}"
  mkdir -p "fastnst/embedded/$name"
  cp "out/$name"/{config.json,model.safetensors,README.md,style.jpg,example.jpg} "fastnst/embedded/$name/"
}

train starry_night starry_night.jpg "The Starry Night" "Vincent van Gogh" 1889 "public domain"
train great_wave great_wave.jpg "The Great Wave off Kanagawa" "Katsushika Hokusai" "c. 1830-32" "public domain"
train the_scream the_scream.jpg "The Scream" "Edvard Munch" 1893 "public domain (US; EU since 2015)"
train composition_vii composition_vii.jpg "Composition VII" "Wassily Kandinsky" 1913 "public domain (US; EU since 2015)"

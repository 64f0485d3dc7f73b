#!/usr/bin/env bash
# Evaluates every embedded style against Gatys et al. (fastnst eval) and writes the table the README shows.
# Usage: [INIT=noise|content] [JOBS=2] bash train_scripts/eval_embedded.sh [NAME...]
# Photos: the held-out split of ../shared/data/photos (train_scripts/holdout_photos.txt, never trained on;
# research-use photos, so no pictures are made of them) plus the public-domain astronaut (pictured).
# Gatys runs are kept in docs/eval/<init>/<style>/eval.json and reused (--resume): after retraining a
# style, re-running this measures only the networks. One thread per process, JOBS processes at a time.
# Every painting's objective has content weight 1 and TV weight 10 (--content-weight 1 --tv-weight 10): a style
# whose last legs trained at other weights (its config.json's training block) is measured on that objective, as
# the others are. Each style is measured against its painting as train_scripts/embedded_styles.json lists it
# (--style-image), whichever copy its training read (a GPU run reads the folder's style.jpg thumbnail).
set -euo pipefail
cd "$(dirname "$0")/.."
PHOTOS=${PHOTOS:-../shared/data/photos}
INIT=${INIT:-noise}
JOBS=${JOBS:-2}
WEIGHTS=(--content-weight 1 --tv-weight 10)  # every painting's shared objective (see above)
PY=${PY:-.venv/bin/python}
OUT=docs/eval/$INIT
NAMES=${*:-$(ls fastnst/embedded)}
mapfile -t HELD < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' -e "s|^|$PHOTOS/|" train_scripts/holdout_photos.txt)

for name in $NAMES; do
  echo "$name"
done | xargs -P "$JOBS" -I{} env OMP_NUM_THREADS=1 $PY -m fastnst.cli eval {} --photos "${HELD[@]}" fastnst/assets/astronaut.jpg \
  --style-image train_scripts/embedded_styles.json --init "$INIT" --out "$OUT/{}" --resume "${WEIGHTS[@]}" >/dev/null
# the combined table, and each result into its style folder (config.json, evaluation.jpg, card); Gatys runs reused
OMP_NUM_THREADS=1 $PY -m fastnst.cli eval $NAMES --photos "${HELD[@]}" fastnst/assets/astronaut.jpg --init "$INIT" \
  --style-image train_scripts/embedded_styles.json \
  --out "$OUT" --resume "${WEIGHTS[@]}" --table "$OUT/table.md" --into-card >/dev/null
cat "$OUT/table.md"

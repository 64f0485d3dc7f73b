#!/usr/bin/env bash
# Fine-tune embedded styles on one GPU, all at once, for a fixed time: one training process per style,
# each warm-started from its shipped network (--init-from) and trained with the settings its
# config.json records (loss weights, network shape, style image size), at 256 px, with a cosine
# learning rate that decays over --max-minutes. The processes share the GPU; a short smoke run
# first stops the script before the long runs if anything is missing.
#
#   bash train_scripts/gpu_finetune_embedded.sh                    # every embedded style, COCO from the Hub
#   MINUTES=6 BATCH=8 LR=2e-4 EMA=0.998 DATA=photos/ OUT=gpu_styles bash train_scripts/gpu_finetune_embedded.sh udnie
#   (LR: 4e-4 knocked the most-trained style, udnie, off its minimum; 2e-4 knocked none off. EMA: --ema-decay.)
#   SMOKE=0 skips the smoke run (settings known to work).
#   here (smoke): DEVICE=cpu MINUTES=0.2 BATCH=1 SIZE=64 DATA=photos/ bash train_scripts/gpu_finetune_embedded.sh udnie
#
# Writes OUT/NAME (a style folder: weights, config.json with the run's figures, model card) and
# OUT/NAME.log per style, OUT/gpu.log (nvidia-smi every 30 s) and OUT/summary.txt (steps, images/s, losses).
# Evaluate and compare before shipping: fastnst eval OUT/NAME ... (train_scripts/eval_embedded.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu_styles}
py=${PYTHON:-python3}
minutes=${MINUTES:-6}
data=${DATA:-detection-datasets/coco}
desc=${DATA_DESCRIPTION:-}
device=${DEVICE:-cuda}
export PYTHONUNBUFFERED=1
names=("$@")
[ ${#names[@]} -gt 0 ] || mapfile -t names < <(ls fastnst/embedded)
mkdir -p "$out"

# The flags a style folder's config.json records (loss, shape, metadata), then this run's own.
recorded() {
    $py - "$1" <<'EOF'
import json, shlex, sys
from pathlib import Path
from fastnst.settings import TrainConfig, config_to_argv
folder = Path(sys.argv[1])
config = json.loads((folder / "config.json").read_text())
keep = ("content_layer", "style_layers", "content_weight", "style_weight", "tv_weight", "loss_scaling",
        "style_size", "loss_network", "channels", "num_residual", "input_skip", "centred_skip", "skip_gain",
        "upsample", "turns")
block = config["training"]
cfg = TrainConfig(**{k: tuple(block[k]) if k == "style_layers" else block[k] for k in keep if k in block},
                  **{k: v for k, v in config.get("style", {}).items() if k in ("name", "title", "artist", "year", "licence")})
print(" ".join(config_to_argv(cfg)), "--style-image", shlex.quote(str(folder / "style.jpg")))
EOF
}

train_one() {  # NAME OUTPUT_DIR MINUTES STEPS
    local flags
    flags=$(recorded "fastnst/embedded/$1") || return 1
    eval "local -a rec=($flags)"
    $py train_scripts/train.py "${rec[@]}" --init-from "fastnst/embedded/$1" -o "$2" \
        --data "$data" --data-description "$desc" --exclude-list train_scripts/holdout_photos.txt \
        --image-size "${SIZE:-256}" --batch-size "${BATCH:-8}" --lr "${LR:-2e-4}" --lr-schedule cosine \
        --lr-final-ratio 0.1 --lr-warmup "${WARMUP:-50}" --ema-decay "${EMA:-0}" --steps "$4" --max-minutes "$3" --device "$device" \
        --num-workers "${WORKERS:-2}" --sample-every 100000 --checkpoint-every 1000 --log-every 100 \
        ${LOSS_NETWORK_PATH:+--loss-network-path "$LOSS_NETWORK_PATH"}
}

if [ "${SMOKE:-1}" = 1 ]; then
    echo "smoke: 3 steps of ${names[0]}"
    if ! train_one "${names[0]}" "$out/smoke" 0 3 > "$out/smoke.log" 2>&1; then
        tail -c 3000 "$out/smoke.log"; echo "smoke run failed: nothing started"; exit 1
    fi
    rm -rf "$out/smoke"
fi

pids=()
for n in "${names[@]}"; do
    train_one "$n" "$out/$n" "$minutes" 1000000 > "$out/$n.log" 2>&1 &
    pids+=($!)
done
echo "training ${names[*]} for $minutes min each (pids ${pids[*]})"
if command -v nvidia-smi > /dev/null; then
    (while true; do nvidia-smi --query-gpu=utilization.gpu,memory.used,power.draw --format=csv,noheader; sleep 30; done) \
        > "$out/gpu.log" 2>&1 &
    smi=$!
fi
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
[ -n "${smi:-}" ] && kill "$smi" 2>/dev/null

$py - "$out" "${names[@]}" <<'EOF' | tee "$out/summary.txt"
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
print("| style | steps | minutes | images/s | content | style | tv |\n| --- | --- | --- | --- | --- | --- | --- |")
for name in sys.argv[2:]:
    cfg = out / name / "config.json"
    if not cfg.is_file():
        print(f"| {name} | failed: see {name}.log | | | | | |")
        continue
    t = json.loads(cfg.read_text())["training"]
    loss = t["final_losses"]
    print(f"| {name} | {t['steps']} | {t['wall_time_s'] / 60:.1f} | {t['steps'] * t['batch_size'] / t['wall_time_s']:.0f} | "
          f"{loss['content']:.3f} | {loss['style']:.3f} | {loss['tv']:.4f} |")
EOF
exit $failed

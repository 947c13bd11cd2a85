#!/usr/bin/env bash
# End-to-end demo on an embedded default: generate a phantom abdominal-CT Decathlon folder, fine-tune the
# 3D UNet of the pancreas_ct_ssl bundle on it, evaluate Dice on the held-out test cases, predict NIfTI masks.
# Usage: scripts/demo.sh [OUTPUT_DIR]   (default: demo_output/). About 1.5 minutes on 2 CPU cores after the first-time install.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
cd "$ROOT"
OUT="$(mkdir -p "${1:-demo_output}" && cd "${1:-demo_output}" && pwd)"
B="$ROOT/bundles/pancreas_ct_ssl"
EPOCHS="${DEMO_EPOCHS:-100}"
COMMON=(--bundle_root "$B" --meta_file "$B/configs/metadata.json" --logging_file "$B/configs/logging.conf")
SMALL=(--patch_size "[32,32,32]" --base_filters 8 --batch_size 2 --num_samples 2 --crop_ratios "[1,1,1]")

echo "[demo] 1/4 generating phantom CT volumes in $OUT/Task00_Phantom"
python scripts/make_phantoms.py "$OUT/Task00_Phantom" --num-cases 16 --num-test 2 --seed 0 --overwrite

echo "[demo] 2/4 training the 3D UNet from scratch ($EPOCHS epochs)"
python -m monai.bundle run --config_file "$B/configs/train.json" "${COMMON[@]}" "${SMALL[@]}" \
    --dataset_dir "$OUT/Task00_Phantom" --output_dir "$OUT/scratch" --epochs "$EPOCHS" --learning_rate 0.003 --val_interval 5

echo "[demo] 3/4 evaluating on the test split"
python -m monai.bundle run --config_file "['$B/configs/train.json','$B/configs/evaluate.json']" "${COMMON[@]}" \
    "${SMALL[@]}" --output_dir "$OUT/scratch"

echo "[demo] 4/4 predicting masks for imagesTs"
python -m monai.bundle run --config_file "$B/configs/inference.json" "${COMMON[@]}" \
    --patch_size "[32,32,32]" --base_filters 8 --dataset_dir "$OUT/Task00_Phantom" \
    --ckpt_path "$OUT/scratch/model.pt" --output_dir "$OUT/predictions"

python - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
m = json.load(open(f"{out}/scratch/metrics.json"))
print("\n[demo] test Dice per class:", {k: (round(v, 3) if v is not None else None) for k, v in m["dice_per_class"].items()})
print(f"[demo] mean Dice (foreground) = {m['mean_dice_foreground']:.3f}, (all classes) = {m['mean_dice_all_classes']:.3f}")
print(f"[demo] model:        {out}/scratch/model.pt")
print(f"[demo] metrics:      {out}/scratch/metrics.json")
print(f"[demo] split:        {out}/scratch/split.json")
print(f"[demo] tensorboard:  tensorboard --logdir {out}/scratch/tensorboard")
print(f"[demo] predictions:  {out}/predictions/")
PY

#!/usr/bin/env bash
# End-to-end demo on an embedded default: generate a phantom abdominal-CT Decathlon folder, pretrain the
# 3D UNet encoder with the jigsaw pretext task on every image (labels unused), fine-tune segmentation at
# 10 % of the labels from that encoder and from scratch, evaluate Dice on the same held-out test cases,
# plot Dice against the label fraction, and predict NIfTI masks with the pretrained model.
# Usage: scripts/demo.sh [OUTPUT_DIR]   (default: demo_output/). About 4 minutes on 2 CPU cores after the first-time install.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
cd "$ROOT"
OUT="$(mkdir -p "${1:-demo_output}" && cd "${1:-demo_output}" && pwd)"
B="$ROOT/bundles/pancreas_ct_ssl"
EPOCHS="${DEMO_EPOCHS:-100}"
PRETRAIN_EPOCHS="${DEMO_PRETRAIN_EPOCHS:-8}"
DATA="$OUT/Task00_Phantom"

echo "[demo] 1/3 generating phantom CT volumes in $DATA"
python scripts/make_phantoms.py "$DATA" --num-cases 40 --num-test 4 --seed 0 --overwrite

echo "[demo] 2/3 jigsaw pretraining ($PRETRAIN_EPOCHS epochs), then fine-tuning at 10 % labels, pretrained and from scratch"
# one study: pretrain once, fine-tune each method with the same budget, evaluate on one fixed test split
python scripts/data_efficiency.py "$B" "$DATA" --study-dir "$OUT/study" --methods scratch jigsaw \
    --fractions 10 --repeats 1 --no-progress \
    --pretrain-override epochs="$PRETRAIN_EPOCHS" --pretrain-override base_filters=8 --pretrain-override batch_size=4 \
    --pretrain-override pretext_patch_size=16 --pretrain-override val_fraction=0.1 \
    --finetune-override epochs="$EPOCHS" --finetune-override base_filters=8 --finetune-override 'patch_size=[32,32,32]' \
    --finetune-override batch_size=2 --finetune-override num_samples=2 --finetune-override 'crop_ratios=[1,1,1]' \
    --finetune-override learning_rate=0.003 --finetune-override val_interval=5 --finetune-override freeze_encoder_epochs=10

FINETUNED="$OUT/study/finetune/jigsaw/f10/r0"
echo "[demo] 3/3 predicting masks for imagesTs with the jigsaw-pretrained model"
python -m monai.bundle run --config_file "$B/configs/inference.json" --bundle_root "$B" \
    --meta_file "$B/configs/metadata.json" --logging_file "$B/configs/logging.conf" \
    --patch_size "[32,32,32]" --base_filters 8 --dataset_dir "$DATA" \
    --ckpt_path "$FINETUNED/model.pt" --output_dir "$OUT/predictions"

python - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
enc = f"{out}/study/pretrain/jigsaw"
import torch
held = torch.load(f"{enc}/encoder.pt", weights_only=True)["heldout_metrics"]
print(f"\n[demo] jigsaw pretext accuracy on held-out images: {held['heldout_pretext_accuracy']:.3f} (chance 0.010)")
for method in ("scratch", "jigsaw"):
    m = json.load(open(f"{out}/study/finetune/{method}/f10/r0/metrics.json"))
    per_class = {k: (round(v, 3) if v is not None else None) for k, v in m["dice_per_class"].items()}
    print(f"[demo] 10 % labels, {method:8s}: mean Dice (foreground) = {m['mean_dice_foreground']:.3f}  {per_class}")
print(f"[demo] results:      {out}/study/results.csv")
print(f"[demo] plot:         {out}/study/data_efficiency.png")
print(f"[demo] encoder:      {enc}/encoder.pt")
print(f"[demo] tensorboard:  tensorboard --logdir {out}/study")
print(f"[demo] predictions:  {out}/predictions/")
PY

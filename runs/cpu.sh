#!/usr/bin/env bash
# The whole tiny pipeline on a laptop CPU: SFT -> IGPO -> evaluation on the toy task.
set -euo pipefail
cd "$(dirname "$0")/.."
python sft.py --preset=tiny --out_dir=out/sft                            # masked-diffusion SFT
python train_igpo.py --preset=tiny --init_from=out/sft --out_dir=out/igpo   # IGPO from the SFT checkpoint
python eval.py --ckpt=out/igpo --task=toy                                   # held-out accuracy

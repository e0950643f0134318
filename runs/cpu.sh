#!/usr/bin/env bash
# The whole tiny pipeline on a laptop CPU: SFT -> IGPO -> evaluation on the toy task (about 12 minutes on 2
# cores). SFT trains on easy problems and on hard ones traced by a weak teacher (right on a big step half the
# time): the big steps are a latent skill. Half of IGPO's prompts are hard.
set -euo pipefail
cd "$(dirname "$0")/.."
python sft.py --preset=tiny --out_dir=out/sft                               # masked-diffusion SFT, 2500 steps
python train_igpo.py --preset=tiny --init_from=out/sft --out_dir=out/igpo   # IGPO, easy + hard, 60 rounds
python eval.py --ckpt=out/igpo --task=toy --out_dir=out/eval/igpo           # held-out: 1000 easy + 1000 hard

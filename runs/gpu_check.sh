#!/usr/bin/env bash
# One prepared GPU check (one H200/H100, a few minutes): LLaDA-8B shapes with random bf16 weights.
#  1. bench.py: reference vs exact vs cached sampler at the B.9 rollout settings, training MFU, peak memory
#  2. one IGPO step at the headline settings (G=8, 256 tokens, block 32, 128 steps, LoRA r=128): peak memory
#     (mem_gb) and the time split: rollouts (rollout_s), old/ref log-prob forwards (logp_s), the mu updates (train_s)
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
PY=${PYTHON:-$(command -v python || command -v python3)}  # GPU images often have python3 only
"$PY" bench.py --preset=llada-8b
"$PY" train_igpo.py --preset=llada-8b --init_from= --task=toy --eval_task=toy --levels=6 --max_steps=1 \
    --prompts_per_step=1 --n_eval=0 --ckpt_interval=0 --out_dir=/tmp/igpo_8b_check

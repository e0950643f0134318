#!/usr/bin/env bash
# One prepared GPU check (one H200/H100, about 5 minutes):
#  1. the tiny pipeline on CUDA (SFT 200 steps -> 2 IGPO rounds -> eval, exact and dual cache): every script's
#     CUDA path (autocast bf16, fused AdamW, generators on the device) end to end
#  2. bench.py at LLaDA-8B shapes with random bf16 weights and B.9's rollout settings: reference vs exact vs
#     cached sampler (tokens/s, MFU, peak memory), each log-prob estimator's forward + backward MFU
#  3. one IGPO step at the headline settings (G=8, 256 tokens, block 32, 128 steps, LoRA r=128): peak memory
#     (mem_gb) and the time split: rollouts (rollout_s), old/ref log-prob forwards (logp_s), the mu updates (train_s)
# Every part runs even if an earlier one fails; the log goes to $OUT/gpu_check.log (or /tmp) and the exit status
# says whether all passed.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
PY=${PYTHON:-$(command -v python || command -v python3)}  # GPU images often have python3 only
LOG=${OUT:-/tmp}/gpu_check.log
TMP=$(mktemp -d)
failed=()
part() {  # part NAME CMD...: run, log, remember a failure
    echo "=== $1 ($(date -u +%H:%M:%S))" | tee -a "$LOG"
    "${@:2}" 2>&1 | sed -u "s/.*\r//" | tee -a "$LOG" || failed+=("$1")  # a progress bar: its last state
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee -a "$LOG"
"$PY" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" 2>&1 | tee -a "$LOG"
part tiny-sft "$PY" sft.py --preset=tiny --max_steps=200 --n_eval=64 --out_dir="$TMP/sft"
part tiny-igpo "$PY" train_igpo.py --preset=tiny --init_from="$TMP/sft" --max_steps=2 --n_eval=64 --out_dir="$TMP/igpo"
part tiny-eval "$PY" eval.py --ckpt="$TMP/igpo" --task=toy --limit=200 --out_dir="$TMP/eval"
part tiny-eval-dual "$PY" eval.py --ckpt="$TMP/igpo" --task=toy --limit=200 --cache=dual --out_dir="$TMP/eval_dual"
part bench-8b "$PY" bench.py --preset=llada-8b
part igpo-step-8b "$PY" train_igpo.py --preset=llada-8b --init_from= --task=toy --eval_task=toy --levels=6 \
    --max_steps=1 --prompts_per_step=1 --n_eval=0 --ckpt_interval=0 --out_dir="$TMP/igpo_8b"
rm -rf "$TMP"
echo "failed parts: ${failed[*]:-none}" | tee -a "$LOG"
[ ${#failed[@]} -eq 0 ]

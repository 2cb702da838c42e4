#!/usr/bin/env bash
# The GPU checks of issue 16 part 4 in one device call (BENCHMARKS.md, "GPU"): CUDA tests, scripts/bench_gpu.py,
# a MiniLM-L6 training on 2,000 CoNLL-2003 teach tasks in bf16 and its test F1, and the loop's update()
# and scoring on the GPU. Prepare the kit here first, then call the device tool from the repository root:
#     python scripts/gpu_kit.py
#     run(command="bash scripts/gpu_session.sh", carry=[".gpu"], timeout_s=590)
# About 6 minutes of the 15 a session is lent (the steps' limits add up to 580 s); a rerun names only
# what it needs: STEPS="train evaluate" bash scripts/gpu_session.sh. Each step has its own time limit
# and writes its log under $OUT (what comes back), so a step that fails or runs out of time costs only
# its own minutes. A dry run on a CPU machine checks the script:
#     PY=python OUT=/tmp/gpu_out SMOKE=1 bash scripts/gpu_session.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OUT=${OUT:?set OUT to a folder for the logs}
SMOKE=${SMOKE:-0}
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
mkdir -p "$OUT"; rm -f "$OUT/summary.txt"
if [ -d .gpu/whl ] && [ "$SMOKE" != 1 ]; then  # the packages the device image lacks (scripts/gpu_kit.py)
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl \
    || for w in .gpu/whl/*.whl; do "$PY" -m zipfile -e "$w" /tmp/site; done  # no pip: a wheel is a zip
  export PYTHONPATH=/tmp/site:$PWD/.gpu/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
DATA=../shared/data; [ -d .gpu/shared/data ] && DATA=.gpu/shared/data  # the kit's copy (no link beside the repo needed)

STEPS=${STEPS:-tests bench_gpu train evaluate bench_online}  # a rerun can name only the steps it needs
step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to $OUT/NAME.log, report the status
  local name=$1 limit=$2; shift 2
  case " $STEPS " in *" $name "*) ;; *) return 0 ;; esac
  local t0=$SECONDS
  echo "=== $name (limit ${limit}s): $*"
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "--- $name: rc $rc, $((SECONDS - t0)) s"
  tail -n 25 "$OUT/$name.log"
  echo "$name rc=$rc seconds=$((SECONDS - t0))" >> "$OUT/summary.txt"
}

{
  date -u; nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
  "$PY" -c "import torch, pytorch_lightning as pl, transformers, platform
print('python', platform.python_version(), 'torch', torch.__version__, 'lightning', pl.__version__, 'transformers', transformers.__version__)
print('cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '', 'bf16', torch.cuda.is_available() and torch.cuda.is_bf16_supported())
import sparse_ner, srsly, jsonargparse; from sparse_ner.core.encoders import default_minilm_path; print('minilm', default_minilm_path())"
} 2>&1 | tee "$OUT/env.log"

if [ "$SMOKE" = 1 ]; then
  DEV=cpu; GPU_STEPS=(--device cpu --steps 2 --warmup 1 --batch 4 --repeats 2 --crf-shapes 4x16x4 --encoders minilm)
  ONLINE=(--warmup 10 --updates 2 --score-limit 40); TRAIN=(--trainer.accelerator cpu --trainer.precision 32 --trainer.max_epochs 1
    --data.max_tasks 60 --data.num_workers 0 --trainer.limit_val_batches 2 --data.test null --model.o_bias 0)
  TEST=$OUT/test_head.txt; head -n 300 "$DATA/conll2003/test.txt" > "$TEST"
else
  DEV=cuda; GPU_STEPS=(); ONLINE=(--warmup 100 --updates 30)
  TRAIN=(--trainer.max_epochs 20 --data.max_tasks 2000 --trainer.accelerator gpu --trainer.precision bf16-mixed
    --data.num_workers 4); TEST=$DATA/conll2003/test.txt
fi

# 1. what needs CUDA in the tests (the BiLSTM and bf16 steps, scores on the GPU against the CPU, the loop built on the
#    GPU and saved there, the reject prior's strict lattice on the device), and the CRF's brute-force tests under this torch
step tests 90 "$PY" -m pytest -q -p no:cacheprovider -m "gpu or not gpu" tests/loop/test_suggest.py tests/loop/test_learner.py tests/loop/test_online.py tests/core -k "gpu or crf or lattice"
# 2. training throughput (MiniLM-L6, a BERT-base-size encoder) and the CRF against pytorch-crf / torch-struct
step bench_gpu 120 "$PY" scripts/bench_gpu.py "${GPU_STEPS[@]}"
# 3. the bench_binary row crf-minilm-shape-looplr (MiniLM-L6 + shape at the loop's learning rates, first 2,000
#    teach tasks, up to 20 epochs, early stopping on dev) on the GPU in bf16; CPU: test F1 0.772 at O bias 0,
#    0.784 with the O bias tuned on dev (BENCHMARKS.md)
step train 240 "$PY" -m sparse_ner.train --config configs/conll_teach.yaml --run_name gpu_session \
  --data.train "$DATA/teach/conll2003_train_teach.jsonl" --data.dev "$DATA/conll2003/dev.txt" \
  --data.test "$DATA/conll2003/test.txt" --trainer.default_root_dir /tmp/gpu_runs --export_dir /tmp/gpu_model \
  --trainer.enable_progress_bar false \
  --model.encoder minilm --model.encoder_options '{"shape_dim": 16}' --model.lr 2e-3 --model.encoder_lr 1e-4 \
  --model.dropout 0.1 "${TRAIN[@]}"
step evaluate 40 "$PY" -m sparse_ner.evaluate /tmp/gpu_model "$TEST" --encoding iob1 --no-progress
# 4. the annotation loop on the GPU: update() latency (1 step, as beside the recipes' idle thread) and stream
#    scoring, MiniLM-L6 (bf16 autocast where the GPU has it)
step bench_online 90 "$PY" scripts/bench_online.py --data "$DATA" --encoders minilm --device "$DEV" --no-patterns --threads 4 --steps 1 "${ONLINE[@]}"
cat "$OUT/summary.txt"

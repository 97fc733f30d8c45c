#!/usr/bin/env bash
# The one device check: on a lent GPU, in at most 8 minutes, (1) the engine's throughput on the
# product path (a single run and a sweep of 32 grid points, against the simulator bound and the
# evosax + Brax peer: benchmarks/throughput.py) and (2) a reduced GPU default sweep
# (sweep_default_gpu, sized from the CPU experiment configs/reacher_goal_gru_cpu.yaml) run to
# the end, everything written under one folder.
#
#   bash benchmarks/gpu_check.sh [--out DIR] [--wheels DIR] [--tiny]
#
# --wheels DIR  install the wheels of ../shared/device/fetch-wheels.sh from DIR first (the device
#               image has JAX with CUDA but no brax or evosax, and no network)
# --out DIR     where results go (default: $OUT when set, else runs/gpu_check)
# --tiny        every step at CI size on a CPU (tests/test_gpu_check.py): the analytic family,
#               2 grid points, 2 generations
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-runs/gpu_check}"
wheels=""
tiny=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --wheels) wheels="$2"; shift 2 ;;
    --tiny) tiny=1; shift ;;
    *) echo "gpu_check.sh: unknown argument $1 (known: --out DIR, --wheels DIR, --tiny)" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
if [ -n "$wheels" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target .whl-site "$wheels"/*.whl
  export PYTHONPATH="$PWD/.whl-site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export JAX_COMPILATION_CACHE_DIR="${JAX_COMPILATION_CACHE_DIR:-/tmp/meta-evo-gpu-check-cache}"
py=python3
t0=$(date +%s)
$py - <<'EOF' > "$out/device.json"
import json, jax
print(json.dumps({"backend": jax.default_backend(),
                  "devices": [str(d) for d in jax.devices()],
                  "device_kind": jax.devices()[0].device_kind, "jax": jax.__version__}))
EOF
cat "$out/device.json"

if [ "$tiny" = 1 ]; then
  # every step of the script at CI size; analytic instead of Brax (no physics to compile), so
  # CI checks the plumbing in seconds: the device run is the Brax one below
  bench=(--family analytic --agent direct --population 4 --lifetime 2 --candidates 2
         --generations 1 --rounds 1)
  grid=2
  config=meta_evo/configs/sweep_default.yaml
  sweep=(meta.generations=2 meta.chunk=1 sweep.seeds=1 "sweep.intensities=[0.0,1.5]"
         "sweep.diversities=[0]" learner.lifetime=2 meta.population=4 learner.hidden=2
         task.tasks_per_member=1 measure.heldout_tasks=2 measure.pool_tasks=2
         measure.reference_samples=2 measure.alignment_samples=2)
else
  config=meta_evo/configs/sweep_default_gpu.yaml
  bench=(--population 64 --generations 1 --rounds 3)
  grid=32
  # the reduced default: the CPU experiment's lifetime and episode sizes, all 8 seeds, the
  # default's 5 intensities and 2 diversities (80 points a group on one device), 300 generations
  sweep=(meta.generations=300 meta.chunk=50 task.episode_length=30 learner.lifetime=6
         task.tasks_per_member=4)
fi
$py benchmarks/throughput.py --learner gru --cache "$JAX_COMPILATION_CACHE_DIR" "${bench[@]}" \
  --out "$out/single_gru.json"
$py benchmarks/throughput.py --mode sweep --learner gru --grid "$grid" \
  --cache "$JAX_COMPILATION_CACHE_DIR" "${bench[@]}" --out "$out/sweep_gru.json"
$py -m meta_evo.cli sweep "$config" "${sweep[@]}" \
  log.progress=false --out "$out/sweep" --quiet
t1=$(date +%s)
$py - "$out" "$((t1 - t0))" <<'EOF'
import json, sys
from pathlib import Path
out, wall = Path(sys.argv[1]), int(sys.argv[2])
rep = json.loads((out / "sweep" / "report.json").read_text())
summary = {"wall_s": wall, "device": json.loads((out / "device.json").read_text()),
           "sweep_env_steps": rep["env_steps"], "sweep_wall_s": rep["wall_s"],
           "primary": [{k: o.get(k) for k in ("diversity", "summary", "p", "p_adjusted")}
                       for o in rep["onsets"] if o["role"] == "primary"]}
for name in ("single_gru", "sweep_gru"):
    b = json.loads((out / f"{name}.json").read_text())
    summary[name] = {k: b.get(k) for k in ("ratio_engine_to_simulator", "ratio_engine_to_peer",
                                           "engine_steps_per_s")}
(out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
print(json.dumps(summary, indent=1))
EOF

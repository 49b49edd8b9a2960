#!/bin/bash
# Face crops for the face-swap runs of docs/RESULTS.md §1 (128 px, 224 px, margin 0.5): the sources of
# configs/reference.yaml extracted with the arguments that file gives `make reference` (same detector, frames, group
# patterns, split fractions and seed, so every person lands in the same split and fold), with another crop size or
# margin.
# Usage: SIZE=224 DIR=crops224 bash docs/results-tools/extract.sh [SOURCE...]
#        MARGIN=0.5 DIR=crops_m50 bash docs/results-tools/extract.sh faceswap-dfl ffpp-c23 dfdc-sample
# SIZE / MARGIN unset: reference.yaml's. No SOURCE: every source of reference.yaml (cross-validation reads only the
# three train sources); gan-faces (not in reference.yaml) on request, with RESULTS §2.1's split, for leave one
# source out. Crops go to $R/$DIR/<source>.
set -eu
cd "$(dirname "$0")/../.."
R=${R:-outputs/reference}
DIR=${DIR:?set DIR, e.g. DIR=crops224}
DATA=${DEEPDETECT_DEV_DATA:-../shared/data}
X=.venv/bin/deepdetect-extract
mkdir -p "$R/logs"

reference_args() { # source: its input folder, then reference.yaml's shared extract arguments and its own, one per line
  .venv/bin/python - "$1" <<'PY'
import sys
from omegaconf import OmegaConf
cfg = OmegaConf.load("configs/reference.yaml")
name = sys.argv[1]
if name == "gan-faces":
    path, own = name, ["val_fraction=0.15", "test_fraction=0"]
elif name in cfg.sources:
    path, own = cfg.sources[name].path, list(cfg.sources[name].extract)
else:
    sys.exit(f"unknown source {name}: expected gan-faces or one of {list(cfg.sources)}")
print("\n".join([str(path), *cfg.extract, *own]))
PY
}
sources=$(.venv/bin/python -c 'from omegaconf import OmegaConf; print(*OmegaConf.load("configs/reference.yaml").sources)')
for s in "${@:-$sources}"; do for x in $s; do
  mapfile -t args < <(reference_args "$x"); [ ${#args[@]} -gt 0 ] || exit 2
  input=${args[0]}; args=("${args[@]:1}")
  [ -n "${SIZE:-}" ] && args+=("size=$SIZE")
  [ -n "${MARGIN:-}" ] && args+=("margin=$MARGIN")
  echo "== $x -> $R/$DIR/$x: ${args[*]}"
  ( time $X input="$DATA/$input" output_dir="$R/$DIR/$x" dataset="$x" "${args[@]}" ) > "$R/logs/extract_${DIR}_$x.log" 2>&1
done; done

#!/bin/bash
# Face crops for the crop-size and margin levers of docs/RESULTS.md §1.4: the sources of configs/reference.yaml
# extracted as `make reference` extracts them (same detector, frames, group patterns, split fractions and seed, so
# every person lands in the same split and fold), with another crop size or margin.
# Usage: SIZE=224 DIR=crops224 bash docs/results-tools/extract.sh [SOURCE...]
#        MARGIN=0.5 DIR=crops_m50 bash docs/results-tools/extract.sh faceswap-dfl ffpp-c23 dfdc-sample
# (no SOURCE: the five of configs/reference.yaml; cross-validation reads only the three train sources; gan-faces on
# request, for leave one source out). Crops go to $R/$DIR/<source>.
set -eu
cd "$(dirname "$0")/../.."
R=${R:-outputs/reference}
SIZE=${SIZE:-128}; MARGIN=${MARGIN:-0.3}; DIR=${DIR:?set DIR, e.g. DIR=crops224}
DATA=${DEEPDETECT_DEV_DATA:-../shared/data}
X=.venv/bin/deepdetect-extract
COMMON="size=$SIZE margin=$MARGIN num_workers=2 torch_threads=1 val_fraction=0.2 test_fraction=0.25 seed=0"
mkdir -p "$R/logs"

one() { # source extra-args...
  local name=$1; shift
  echo "== $name -> $R/$DIR/$name"
  ( time $X input="$DATA/$name" output_dir="$R/$DIR/$name" dataset="$name" $COMMON "$@" ) \
    > "$R/logs/extract_${DIR}_$name.log" 2>&1
}
for s in "${@:-faceswap-dfl ffpp-c23 dfdc-sample photos videos}"; do for x in $s; do case $x in
  faceswap-dfl) one "$x" frames_per_video=64 "group_pattern='^(.+)_\\d+\$'" ;;
  ffpp-c23)     one "$x" frames_per_video=32 downscale=960 "group_pattern=['^(\\d+)_\\d+__','_(\\d+)_\\d+_frame\\d+\$']" ;;
  dfdc-sample)  one "$x" frames_per_video=32 downscale=960 "group_pattern='^([a-z]{10})(?:-\\d+-\\d+)?\$'" ;;
  photos)       one "$x" layout=single label=real ;;
  videos)       one "$x" layout=single label=real frames_per_video=32 ;;
  gan-faces)    one "$x" val_fraction=0.15 test_fraction=0 ;;   # RESULTS §2.1's split (§1 scores all of it)
  *) echo "unknown source $x" >&2; exit 2 ;;
esac; done; done

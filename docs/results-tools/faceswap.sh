#!/bin/bash
# The face-swap runs of docs/RESULTS.md §1 ("Face-swap reference detector"), with the commands that were run.
# Needs 128 px crops in $R/crops128 (`SIZE=128 DIR=crops128 bash docs/results-tools/extract.sh`) and, for the
# 224 px runs, $R/crops224 (`SIZE=224 DIR=crops224`: the crops `make reference` extracts). Runs that score
# gan-faces also need `extract.sh gan-faces` at their size. Each run's wall time ends its log in $R/logs/.
# Usage: bash docs/results-tools/faceswap.sh [RUN...]   (no argument: every run)
set -u
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=2
R=${R:-outputs/reference}
C=$R/crops128
DFL=$C/faceswap-dfl/manifest.csv; FF=$C/ffpp-c23/manifest.csv; DC=$C/dfdc-sample/manifest.csv
PH=$C/photos/manifest.csv; VI=$C/videos/manifest.csv; GAN=$C/gan-faces/manifest.csv
T=.venv/bin/deepdetect-train; E=.venv/bin/deepdetect-evaluate
EV="bootstrap.n=1000 report.gradcam=0 robustness=[]"
mkdir -p $R/logs $R/runs

train() { # name train-args...   (the `main` recipe and its lever runs are unpaired: PAIRED=true for the paired
  local name=$1; shift          # runs; 128 px unless a later model.input_size overrides it)
  ( time $T experiment=faceswap_reference data.paired=${PAIRED:-false} model.input_size=128 "$@" output_dir=$R/runs/$name ) \
    > $R/logs/$name.log 2>&1
}
ev() { # name eval-name manifests split [extra...]: evaluate a run
  local name=$1 tag=$2 man=$3 split=$4; shift 4
  ( time $E checkpoint=$R/runs/$name "data.manifest=[$man]" data.split=$split $EV "$@" \
      output_dir=$R/runs/$name/eval_$tag ) > $R/logs/$name.eval_$tag.log 2>&1
}
standard() { # name: held-out people (test split of the train sources) + unseen reals (photos, videos whole)
  ev $1 test "$DFL,$FF,$DC" test
  ev $1 dfl_test "$DFL" test
  ev $1 unseen "$PH,$VI" all
}

run_main()       { train main "data.manifest=[$DFL,$FF,$DC]"; standard main
                   for a in max topk; do ev main test_$a "$DFL,$FF,$DC" test aggregate=$a; done; }
run_random()     { train random "data.manifest=[$DFL,$FF,$DC]" model.pretrained=false; standard random; }
run_sbi()        { train sbi "data.manifest=[$DFL,$FF,$DC]" data.sbi.mode=mix data.sbi.prob=0.3; standard sbi; }
run_fpv4()       { train fpv4 "data.manifest=[$DFL,$FF,$DC]" data.frames_per_video_epoch=4; standard fpv4; }
run_paired_all() { train all_frames "data.manifest=[$DFL,$FF,$DC]" data.frames_per_video_epoch=null; standard all_frames; }
run_gan()        { train with_gan "data.manifest=[$DFL,$FF,$DC,$GAN]"; standard with_gan; }
run_gan_eval()   { standard with_gan; }   # evaluations only (after a run_gan training)
run_fpv4_eval()  { standard fpv4; }
run_paired_all_eval() { standard all_frames; }
L2="model=efficientnet_lite2 model.input_size=128"
loso() { # name held-out-manifest train-manifests train-args...: train without a source, score all of it and the unseen reals
  local name=$1 held=$2 kept=$3; shift 3
  train $name "data.manifest=[$kept]" "$@"; ev $name heldout "$held" all; ev $name unseen "$PH,$VI" all
}
run_loso_dfl_lite2()  { loso loso_dfl_lite2 "$DFL" "$FF,$DC" $L2; }
run_loso_ffpp_lite2() { loso loso_ffpp_lite2 "$FF" "$DFL,$DC" $L2; }
run_lite2()      { train lite2 "data.manifest=[$DFL,$FF,$DC]" $L2; standard lite2; }
# learning curve: the same recipe on a seeded, nested fraction of each source's training people
run_lc25()       { train lc25 "data.manifest=[$DFL,$FF,$DC]" data.train_groups=0.25; standard lc25; }
run_lc50()       { train lc50 "data.manifest=[$DFL,$FF,$DC]" data.train_groups=0.5; standard lc50; }
# leave one source out: train without it, score all of it
run_loso_dfl()   { loso loso_dfl "$DFL" "$FF,$DC"; }
run_loso_gan()   { ev main gan "$GAN" all; }   # main never sees gan-faces: score all of it
run_loso_gan_lite2() { ev lite2 gan "$GAN" all; }
run_loso_ffpp()  { loso loso_ffpp "$FF" "$DFL,$DC"; }
# selection by 3-fold cross-validation over the train+val people (test people untouched): one run per fold
cv() { # name extra-args...: folds 0..2 of a candidate recipe (FOLDS="2": only those folds)
  local name=$1; shift
  for k in ${FOLDS:-0 1 2}; do train cv_${name}_$k "data.manifest=[$DFL,$FF,$DC]" data.cv_folds=3 data.cv_fold=$k "$@"; done
}
crops_in() { # dir: the same sources extracted by extract.sh with another size or margin (same detector, frames
  C=$R/$1      # and split): $R/<dir>/<source>
  DFL=$C/faceswap-dfl/manifest.csv; FF=$C/ffpp-c23/manifest.csv; DC=$C/dfdc-sample/manifest.csv
  PH=$C/photos/manifest.csv; VI=$C/videos/manifest.csv; GAN=$C/gan-faces/manifest.csv
}
run_cv_main()    { cv main; }
run_cv_paired()  { PAIRED=true cv paired; }
# the 128 px paired recipe (chosen over `main` by cross-validation, RESULTS §1.4): `main` with pairs side by side
run_paired()     { PAIRED=true train paired "data.manifest=[$DFL,$FF,$DC]"; standard paired; }
run_cv_lite2()   { cv lite2 $L2; }
# refit: the reference recipe's folds keep their last epoch (their val_scores.csv are then the scores of what a refit
# keeps), and the refit trains on all 9 train+val people, calibrated on those pooled out-of-fold scores
run_cv_paired_last() { PAIRED=true cv paired_last trainer.keep=last; }
run_refit()      { PAIRED=true train refit "data.manifest=[$DFL,$FF,$DC]" data.refit=true \
                     "calibration.from_runs=[$R/runs/cv_paired_last_0,$R/runs/cv_paired_last_1,$R/runs/cv_paired_last_2]"
                   standard refit; }
# crop size: 224 px crops (extracted with `size=224`, otherwise as the 128 px ones) at the model's 224 px input
run_cv_paired224() { crops_in crops224; PAIRED=true cv paired224 model.input_size=224; }
# 224 px folds keeping their last epoch, comparable with cv_paired_last (same keep rule, pooled out-of-fold scores);
# then the 224 px refit on all 9 train+val people, calibrated on those folds' pooled scores
run_cv_paired224_last() { crops_in crops224; PAIRED=true cv paired224_last model.input_size=224 trainer.keep=last; }
run_refit224()   { crops_in crops224; PAIRED=true train refit224 "data.manifest=[$DFL,$FF,$DC]" model.input_size=224 data.refit=true \
                     "calibration.from_runs=[$R/runs/cv_paired224_last_0,$R/runs/cv_paired224_last_1,$R/runs/cv_paired224_last_2]"
                   standard refit224; }
# margin: 128 px crops with a 0.5 margin (`MARGIN=0.5 DIR=crops_m50 extract.sh`), folds keeping their last epoch
run_cv_paired_m50_last() { crops_in crops_m50; PAIRED=true cv paired_m50_last trainer.keep=last; }
# leave one source out with the reference recipe (paired, 224 px); gan-faces: the reference scores all of it
run_loso_dfl224()  { crops_in crops224; PAIRED=true loso loso_dfl224 "$DFL" "$FF,$DC" model.input_size=224; }
run_loso_ffpp224() { crops_in crops224; PAIRED=true loso loso_ffpp224 "$FF" "$DFL,$DC" model.input_size=224; }
run_loso_gan224()  { crops_in crops224; ev paired224 gan "$GAN" all; }
# the reference (RESULTS §1.6): the paired recipe on 224 px crops at 224 px input, what `make reference` trains
run_paired224()  { crops_in crops224; PAIRED=true train paired224 "data.manifest=[$DFL,$FF,$DC]" model.input_size=224; standard paired224; }

for r in "${@:-main random sbi fpv4 loso_dfl loso_ffpp}"; do for x in $r; do echo "== $x"; run_$x; done; done

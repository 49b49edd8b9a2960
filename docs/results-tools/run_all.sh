#!/bin/bash
# Every reference run of docs/RESULTS.md, in the order they were run (they ran as queue scripts; same commands).
# Needs the crops of the "Data" section and the SBI manifests from make_sbi.py. Each step's wall time ends its log.
set -u
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=2
R=outputs/ref
G=$R/crops-gan-faces/manifest.csv; P=$R/crops-photos/manifest.csv; V=$R/crops-videos/manifest.csv
C=$R/crops-crops/manifest.csv; SP=$R/crops-sbi-photos/manifest.csv; SV=$R/crops-sbi-videos/manifest.csv
T=.venv/bin/deepdetect-train; E=.venv/bin/deepdetect-evaluate
mkdir -p $R/logs

run() { # name robustness train-args...: train, then evaluate in-domain and cross-source
  local name=$1 rob=$2; shift 2
  ( time $T "$@" trainer=cpu output_dir=$R/$name ) > $R/logs/$name.log 2>&1
  ( time $E checkpoint=$R/$name data.manifest=$G data.split=test report.gradcam=0 "robustness=[$rob]" \
      output_dir=$R/$name/eval_gan_test ) > $R/logs/$name.eval_test.log 2>&1
  ( time $E checkpoint=$R/$name "manifests=[$P,$V,$C,$SP,$SV]" data.split=all report.gradcam=0 "robustness=[$rob]" \
      output_dir=$R/$name/eval_cross ) > $R/logs/$name.eval_cross.log 2>&1
}

SBI="experiment=sbi_only model=resnet18 model.input_size=128 data.manifest=$G data.num_workers=2"
run baseline "" experiment=gan_faces_baseline data.manifest=$G data.num_workers=2
run reference "" experiment=gan_faces_reference data.manifest=$G
run loso_sb_photos "" experiment=loso_source_balanced "data.manifest=[$G,$P,$V]" data.holdout_source=photos
run sbi_only "" $SBI trainer.max_epochs=6
run loso_sbpatch_photos "" experiment=loso_source_balanced_patch "data.manifest=[$G,$P,$V]" data.holdout_source=photos
run loso_base_photos "" experiment=loso_baseline "data.manifest=[$G,$P,$V]" data.holdout_source=photos
run loso_sbres_photos downscale50 experiment=loso_source_balanced_resnorm "data.manifest=[$G,$P,$V]" data.holdout_source=photos
run loso_sb_videos "" experiment=loso_source_balanced "data.manifest=[$G,$P,$V]" data.holdout_source=videos
run sbi_only_30ep "" $SBI trainer.max_epochs=30 trainer.patience=null
run loso_sbpatch_videos "" experiment=loso_source_balanced_patch "data.manifest=[$G,$P,$V]" data.holdout_source=videos
run loso_base_videos "" experiment=loso_baseline "data.manifest=[$G,$P,$V]" data.holdout_source=videos
# 2d (after the data.sbi.val fix): SBI fakes come from evaluate's sbi_fakes=true, not from make_sbi.py
( time $T $SBI trainer.max_epochs=30 trainer.patience=null trainer=cpu output_dir=$R/sbi_only_sbival ) > $R/logs/sbi_only_sbival.log 2>&1
$E checkpoint=$R/sbi_only_sbival data.manifest=$G data.split=test report.gradcam=0 "robustness=[]" output_dir=$R/sbi_only_sbival/eval_gan_test
$E checkpoint=$R/sbi_only_sbival "manifests=[$P,$V,$C]" data.split=all sbi_fakes=true report.gradcam=0 "robustness=[]" output_dir=$R/sbi_only_sbival/eval_cross

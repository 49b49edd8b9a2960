#!/bin/bash
# Every GAN-faces run of docs/RESULTS.md (§3-§5), with the commands that produced its figures, in the order they ran.
# Needs the crops of RESULTS §2.1 and the SBI manifests of §2.2 (make_sbi.py). Each step's wall time ends its log.
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
run sbi_only "" $SBI trainer.max_epochs=6 data.sbi.val=manifest   # §4.2: validated on the manifest's val rows
run loso_sbpatch_photos "" experiment=loso_source_balanced_patch "data.manifest=[$G,$P,$V]" data.holdout_source=photos
run loso_base_photos "" experiment=loso_baseline "data.manifest=[$G,$P,$V]" data.holdout_source=photos
run loso_sbres_photos downscale50 experiment=loso_source_balanced_resnorm "data.manifest=[$G,$P,$V]" data.holdout_source=photos
run loso_sb_videos "" experiment=loso_source_balanced "data.manifest=[$G,$P,$V]" data.holdout_source=videos
run sbi_only_30ep "" $SBI trainer.max_epochs=30 trainer.patience=null data.sbi.val=manifest   # §4.3
run loso_sbpatch_videos "" experiment=loso_source_balanced_patch "data.manifest=[$G,$P,$V]" data.holdout_source=videos
run loso_base_videos "" experiment=loso_baseline "data.manifest=[$G,$P,$V]" data.holdout_source=videos
# §4.4: validated on self-blends (data.sbi.val=auto, the default); SBI fakes from evaluate's sbi_fakes=true, not make_sbi.py
( time $T $SBI trainer.max_epochs=30 trainer.patience=null trainer=cpu output_dir=$R/sbi_only_sbival ) > $R/logs/sbi_only_sbival.log 2>&1
$E checkpoint=$R/sbi_only_sbival data.manifest=$G data.split=test report.gradcam=0 "robustness=[]" output_dir=$R/sbi_only_sbival/eval_gan_test
$E checkpoint=$R/sbi_only_sbival "manifests=[$P,$V,$C]" data.split=all sbi_fakes=true report.gradcam=0 "robustness=[]" output_dir=$R/sbi_only_sbival/eval_cross
# §5.5: recipe (a) with crop-level resolution normalisation (model.resolution=64), photos held out
( time $T experiment=loso_resolution "data.manifest=[$G,$P,$V]" data.holdout_source=photos trainer=cpu output_dir=$R/loso_res_photos ) > $R/logs/loso_res_photos.log 2>&1
$E checkpoint=$R/loso_res_photos data.manifest=$G data.split=test report.gradcam=0 "robustness=[]" output_dir=$R/loso_res_photos/eval_gan_test
$E checkpoint=$R/loso_res_photos "manifests=[$P,$V,$C]" data.split=all sbi_fakes=true report.gradcam=0 "robustness=[]" output_dir=$R/loso_res_photos/eval_cross

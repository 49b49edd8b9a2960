#!/bin/bash
# Runs every reference job in sequence (priority order); each step's wall time at the end of its log.
cd /work/main
export OMP_NUM_THREADS=2
R=outputs/ref
G=$R/crops-gan-faces/manifest.csv; P=$R/crops-photos/manifest.csv; V=$R/crops-videos/manifest.csv
C=$R/crops-crops/manifest.csv; SP=$R/crops-sbi-photos/manifest.csv; SV=$R/crops-sbi-videos/manifest.csv
T=.venv/bin/deepdetect-train; E=.venv/bin/deepdetect-evaluate
ev() { # run-dir [robustness]
  ( time $E checkpoint=$R/$1 data.manifest=$G data.split=test report.gradcam=0 "robustness=[$2]" output_dir=$R/$1/eval_gan_test ) > $R/logs/$1.eval_test.log 2>&1
  ( time $E checkpoint=$R/$1 "manifests=[$P,$V,$C,$SP,$SV]" data.split=all report.gradcam=0 "robustness=[$2]" output_dir=$R/$1/eval_cross ) > $R/logs/$1.eval_cross.log 2>&1
}
( time $T experiment=gan_faces_reference data.manifest=$G trainer=cpu output_dir=$R/reference ) > $R/logs/reference.log 2>&1
ev reference
( time $T experiment=loso_source_balanced "data.manifest=[$G,$P,$V]" data.holdout_source=photos trainer=cpu output_dir=$R/loso_sb_photos ) > $R/logs/loso_sb_photos.log 2>&1
ev loso_sb_photos
( time $T experiment=sbi_only model=resnet18 model.input_size=128 data.manifest=$G data.num_workers=2 trainer=cpu trainer.max_epochs=6 output_dir=$R/sbi_only ) > $R/logs/sbi_only.log 2>&1
ev sbi_only
( time $T experiment=loso_source_balanced_patch "data.manifest=[$G,$P,$V]" data.holdout_source=photos trainer=cpu output_dir=$R/loso_sbpatch_photos ) > $R/logs/loso_sbpatch_photos.log 2>&1
ev loso_sbpatch_photos
( time $T experiment=loso_baseline "data.manifest=[$G,$P,$V]" data.holdout_source=photos trainer=cpu output_dir=$R/loso_base_photos ) > $R/logs/loso_base_photos.log 2>&1
ev loso_base_photos
( time $T experiment=loso_source_balanced_resnorm "data.manifest=[$G,$P,$V]" data.holdout_source=photos trainer=cpu output_dir=$R/loso_sbres_photos ) > $R/logs/loso_sbres_photos.log 2>&1
ev loso_sbres_photos downscale50
( time $T experiment=loso_source_balanced "data.manifest=[$G,$P,$V]" data.holdout_source=videos trainer=cpu output_dir=$R/loso_sb_videos ) > $R/logs/loso_sb_videos.log 2>&1
ev loso_sb_videos
echo QUEUE DONE > $R/logs/queue.done

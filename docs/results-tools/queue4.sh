#!/bin/bash
# After queue3.sh: recipe (b) (patch head) with videos held out.
cd /work/main
export OMP_NUM_THREADS=2
R=outputs/ref
G=$R/crops-gan-faces/manifest.csv; P=$R/crops-photos/manifest.csv; V=$R/crops-videos/manifest.csv
C=$R/crops-crops/manifest.csv; SP=$R/crops-sbi-photos/manifest.csv; SV=$R/crops-sbi-videos/manifest.csv
T=.venv/bin/deepdetect-train; E=.venv/bin/deepdetect-evaluate
while [ ! -e $R/logs/queue3.done ]; do sleep 5; done
( time $T experiment=loso_source_balanced_patch "data.manifest=[$G,$P,$V]" data.holdout_source=videos trainer=cpu output_dir=$R/loso_sbpatch_videos ) > $R/logs/loso_sbpatch_videos.log 2>&1
( time $E checkpoint=$R/loso_sbpatch_videos data.manifest=$G data.split=test report.gradcam=0 "robustness=[]" output_dir=$R/loso_sbpatch_videos/eval_gan_test ) > $R/logs/loso_sbpatch_videos.eval_test.log 2>&1
( time $E checkpoint=$R/loso_sbpatch_videos "manifests=[$P,$V,$C,$SP,$SV]" data.split=all report.gradcam=0 "robustness=[]" output_dir=$R/loso_sbpatch_videos/eval_cross ) > $R/logs/loso_sbpatch_videos.eval_cross.log 2>&1
echo done > $R/logs/queue4.done

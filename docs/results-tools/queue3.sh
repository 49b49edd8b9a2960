#!/bin/bash
# After queue.sh: SBI-only trained longer (30 epochs, no early stop).
cd /work/main
export OMP_NUM_THREADS=2
R=outputs/ref
G=$R/crops-gan-faces/manifest.csv; P=$R/crops-photos/manifest.csv; V=$R/crops-videos/manifest.csv
C=$R/crops-crops/manifest.csv; SP=$R/crops-sbi-photos/manifest.csv; SV=$R/crops-sbi-videos/manifest.csv
T=.venv/bin/deepdetect-train; E=.venv/bin/deepdetect-evaluate
while [ ! -e $R/logs/queue.done ]; do sleep 5; done
( time $T experiment=sbi_only model=resnet18 model.input_size=128 data.manifest=$G data.num_workers=2 trainer=cpu trainer.max_epochs=30 trainer.patience=null output_dir=$R/sbi_only_30ep ) > $R/logs/sbi_only_30ep.log 2>&1
( time $E checkpoint=$R/sbi_only_30ep data.manifest=$G data.split=test report.gradcam=0 "robustness=[]" output_dir=$R/sbi_only_30ep/eval_gan_test ) > $R/logs/sbi_only_30ep.eval_test.log 2>&1
( time $E checkpoint=$R/sbi_only_30ep "manifests=[$P,$V,$C,$SP,$SV]" data.split=all report.gradcam=0 "robustness=[]" output_dir=$R/sbi_only_30ep/eval_cross ) > $R/logs/sbi_only_30ep.eval_cross.log 2>&1
echo done > $R/logs/queue3.done

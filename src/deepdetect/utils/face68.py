"""The 68 face points of iBUG 300-W (dlib's shape predictor): which indices make which part of the face.

Shared by the self-blend masks (`data.sbi`), the temporal self-blends' mouth alignment (`data.temporal_blend`) and
the temporal expert's lower-face crop (`models.temporal`), so all three mean the same points by "mouth" and "lower
face".
"""

from __future__ import annotations

JAW, BROW_R, BROW_L, NOSE_BRIDGE, NOSE_LOW = range(0, 17), range(17, 22), range(22, 27), range(27, 31), range(31, 36)
EYE_R, EYE_L, MOUTH = range(36, 42), range(42, 48), range(48, 68)
LOWER_JAW, NOSE_TO_TIP = range(2, 15), range(29, 36)  # the jaw below the cheekbones; the nose from mid-bridge down
LOWER_FACE = (*LOWER_JAW, *NOSE_TO_TIP, *MOUTH)  # what lip-sync regenerates: lower jaw, lower nose, mouth

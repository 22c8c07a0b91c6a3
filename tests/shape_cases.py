"""Known shape answers from ../shared/SPEC.md and issue 4, shared by the shape tests.

Each number here was computed by PyTorch / TensorFlow (see SPEC.md), not by
convcli; ``tests/test_shape_torch.py`` re-derives the forward and transposed
vectors from torch when it is installed.
"""

from __future__ import annotations

#: (H, k, s, padding, d, H') — H' None means "an error".
FORWARD_VECTORS = [
    (5, 3, 1, 0, 1, 3),
    (5, 3, 1, "full", 1, 7),
    (7, 3, 2, 1, 1, 4),
    (6, 3, 2, 1, 1, 3),
    (7, 3, 1, 0, 2, 3),
    (10, 3, 3, 0, 2, 2),
    (224, 7, 2, 3, 1, 112),
    (4, 5, 1, 0, 1, None),
]

#: `same` (TF SAME / ONNX SAME_UPPER): (H, k, s, d, H', (before, after)).
SAME_VECTORS = [
    (5, 3, 2, 1, 3, (1, 1)),
    (6, 3, 2, 1, 3, (0, 1)),
    (13, 6, 5, 1, 3, (1, 2)),
    (10, 3, 2, 2, 5, (1, 2)),
    (3, 5, 2, 1, 2, (2, 2)),
]

#: Transposed: (H, k, s, p, d, output_padding, H') — None means "an error".
TRANSPOSED_VECTORS = [
    (3, 3, 2, 0, 1, 0, 7),
    (3, 3, 2, 1, 1, 0, 5),
    (3, 3, 2, 1, 1, 1, 6),
    (4, 4, 2, 1, 1, 0, 8),
    (3, 3, 2, 1, 2, 0, 7),
    (3, 3, 2, 1, 3, 2, 11),
    (3, 3, 2, 1, 1, 2, None),
]

#: Receptive-field stacks: (name, --layer specs, (k_eff, s, pad) per layer, r, jump, start or None).
RF_STACKS = [
    ("spec check conv7/s2/p3 + pool3/s2/p1", ["conv:k=7,s=2,p=3", "pool:k=3,s=2,p=1"],
     [(7, 2, 3), (3, 2, 1)], 11, 4, 5),
    ("3 x conv3 p1", ["conv:k=3,p=1"] * 3, [(3, 1, 1)] * 3, 7, 1, 3),
    ("conv3, conv3/s2, conv3 (p1)", ["conv:k=3,p=1", "conv:k=3,s=2,p=1", "conv:k=3,p=1"],
     [(3, 1, 1), (3, 2, 1), (3, 1, 1)], 9, 2, None),
    ("VGG-like: conv3 conv3 pool2 conv3 conv3 pool2",
     ["conv:k=3,p=1", "conv:k=3,p=1", "pool:k=2,s=2", "conv:k=3,p=1", "conv:k=3,p=1", "pool:k=2,s=2"],
     [(3, 1, 1), (3, 1, 1), (2, 2, 0), (3, 1, 1), (3, 1, 1), (2, 2, 0)], 16, 4, None),
    ("dilated conv3 d=1,2,4 (p=d)", ["conv:k=3,d=1,p=1", "conv:k=3,d=2,p=2", "conv:k=3,d=4,p=4"],
     [(3, 1, 1), (5, 1, 2), (9, 1, 4)], 15, 1, None),
    ("AlexNet-like: conv11/s4/p2, pool3/s2, conv5/p2", ["conv:k=11,s=4,p=2", "pool:k=3,s=2", "conv:k=5,p=2"],
     [(11, 4, 2), (3, 2, 0), (5, 1, 2)], 51, 8, None),
]

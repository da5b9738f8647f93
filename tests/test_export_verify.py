"""Verification's detection agreement: PyTorch's detections that an artifact reproduces."""
from __future__ import annotations

import numpy as np

from edgeyolo.export.verify import matched_detections, parity


def _decoded(boxes: list[tuple[float, float, float, float, float, int]], nc: int = 3, n: int = 20) -> np.ndarray:
    """(1, n, 5 + nc) decoded rows: cx, cy, w, h, objectness, one-hot class; the rest background."""
    out = np.zeros((1, n, 5 + nc), np.float32)
    out[0, :, :4] = (50, 50, 10, 10)
    for i, (cx, cy, w, h, obj, c) in enumerate(boxes):
        out[0, i, :5] = (cx, cy, w, h, obj)
        out[0, i, 5 + c] = 1.0
    return out


REF = [(20, 20, 10, 10, 0.9, 0), (80, 80, 20, 20, 0.8, 1), (150, 60, 30, 10, 0.7, 2), (60, 150, 10, 10, 0.1, 0)]


def test_identical_outputs_match_every_confident_detection() -> None:
    ref = _decoded(REF)
    assert matched_detections(ref, ref.copy()) == (3, 3)  # the 0.1-confidence box is below 0.25


def test_moved_box_and_changed_class_do_not_match() -> None:
    ref = _decoded(REF)
    moved = _decoded([REF[0], (95, 95, 20, 20, 0.8, 1), (150, 60, 30, 10, 0.7, 0)])  # IoU 0.14; wrong class
    assert matched_detections(ref, moved) == (1, 3)
    slightly = _decoded([(21, 20, 10, 10, 0.5, 0), *REF[1:]])  # IoU 0.82, lower score: still the same detection
    assert matched_detections(ref, slightly) == (3, 3)


def test_one_artifact_box_matches_one_reference_box() -> None:
    # A = [0, 10] and B = [4, 14] in x overlap at IoU 0.43 (both survive NMS at 0.45); C = [2, 12] overlaps
    # each at IoU 0.67, so C may stand for either, but not for both
    ref = _decoded([(5, 5, 10, 10, 0.9, 0), (9, 5, 10, 10, 0.8, 0)])
    assert matched_detections(ref, ref) == (2, 2)
    assert matched_detections(ref, _decoded([(7, 5, 10, 10, 0.9, 0)])) == (1, 2)


def test_parity_reports_detections_for_decoded_outputs() -> None:
    ref = _decoded(REF)
    par = parity(lambda x: [ref], lambda x: [_decoded(REF[:2])], [np.zeros((1, 3, 8, 8), np.float32)] * 2, decoded=True)
    assert (par.det_matched, par.det_reference, par.images) == (4, 6, 2)
    assert "detections: 4/6 of PyTorch's" in par.line()
    assert par.as_dict()["det_reference"] == 6
    assert "det_reference" not in parity(lambda x: [ref], lambda x: [ref], [np.zeros((1, 3, 8, 8))]).as_dict()

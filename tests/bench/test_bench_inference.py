"""``signs bench --only inference``: the section is known to the option parser and its table puts
batch 1 and batch 120 side by side per backend (benchmarks/inference.py)."""

from __future__ import annotations

from benchmarks.inference import BATCHES, inference_markdown
from benchmarks.settings import parse_sections


def _row(backend, batch, median, low, high):
    return {"backend": backend, "batch": batch, "images_per_s": median, "images_per_s_min": low,
            "images_per_s_max": high}


def test_inference_is_a_section():
    assert parse_sections("inference,layers") == ("layers", "inference")


def test_table_has_one_row_per_backend_and_one_column_per_batch():
    results = {"inference": {"images": "the 120 SIGNS test images", "unavailable": {"tf": "not installed"},
                             "rows": [_row("numpy", 1, 900.4, 800, 1000), _row("numpy", 120, 1700, 1600, 1800),
                                      _row("onnx", 1, 1775, 1500, 2500)]}}
    lines = inference_markdown(results)
    assert BATCHES == (1, 120)
    assert "| backend | batch 1 | batch 120 |" in lines
    assert "| numpy | 900 (800-1000) | 1700 (1600-1800) |" in lines
    assert "| onnx | 1775 (1500-2500) | - |" in lines
    assert any("tf: not measured (not installed)" in line for line in lines)
    assert inference_markdown({}) == []

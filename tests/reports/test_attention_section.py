"""Attention pictures (reports/attention_section.py): one colour scale per figure, every kind drawn."""

from __future__ import annotations

import numpy as np
import pytest

from reports import attention_section as section


def test_one_colour_scale_spans_every_variant_of_a_figure(monkeypatch) -> None:
    panels = {"reference": {"tokens": ["not", "bad"], "weights": [0.9, 0.1], "label": 1, "prediction": 1},
              "uniform": {"tokens": ["not", "bad"], "weights": [0.5, 0.5], "label": 1, "prediction": 1}}
    assert section.shared_scale(panels) == 0.9
    assert section.shared_scale({"x": {"weights": [[0.0, 0.0]]}}) == 1.0  # nothing to scale by
    limits = []
    real = section.plots.plt.Axes.imshow

    def spy(self, data, *args, **kwargs):
        limits.append((np.asarray(data).shape, kwargs.get("vmin"), kwargs.get("vmax")))
        return real(self, data, *args, **kwargs)

    monkeypatch.setattr(section.plots.plt.Axes, "imshow", spy)
    assert section._pooling("t", panels).startswith(b"\x89PNG")
    assert limits == [((2, 2), 0.0, 0.9)]  # the same words: one heatmap, a row per variant
    limits.clear()
    panels["uniform"] = {**panels["uniform"], "tokens": ["bad", "not"]}
    section._pooling("t", panels)
    assert limits == [((1, 2), 0.0, 0.9), ((1, 2), 0.0, 0.9)]  # other words: strips, the same scale
    limits.clear()
    alignment = {v: {"source": ["a", "b"], "target": ["x"], "weights": [w]} for v, w in
                 (("luong", [0.2, 0.8]), ("uniform", [0.5, 0.5]))}
    section._alignment("t", alignment)
    assert [limit[1:] for limit in limits] == [(0.0, 0.8), (0.0, 0.8)]


@pytest.mark.parametrize("top, expected", [(1.0, 0.25), (0.25, 1.0)])
def test_region_heat_follows_the_figures_scale(top: float, expected: float) -> None:
    example = {"image": np.zeros((3, 4, 4)).tolist(), "grid": [2, 2], "weights": [[0.25, 0.25, 0.25, 0.25]]}
    overlay = section._overlay(example, 0, top)
    jet = section.plots.plt.get_cmap("jet")(expected)[:3]
    assert np.allclose(overlay[0, 0], 0.45 * np.asarray(jet))

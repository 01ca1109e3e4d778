"""tools/face_threshold.py: the calibration that sets ``face.match_threshold`` extrapolates correctly.

The threshold decides who the door opens for, and it comes from this tool's tail fits. They are
checked here against samples drawn from distributions whose far tail is known exactly (a
generalised Pareto tail, an exponential one, a normal), at probabilities far below what the
samples themselves can show, and the recommendation rule (the highest of the two fits and of
the highest score seen, rounded up to 0.01) is checked end to end through the command.
"""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import face_threshold as ft  # noqa: E402  (a tool of the source checkout)


def _gpd_sample(rng, n, *, k, scale):
    """Hosking's generalised Pareto (survival (1 - k*y/scale)^(1/k)) by its inverse."""
    uniform = rng.random(n)
    return scale / k * (1.0 - uniform ** k) if k else -scale * np.log(uniform)


def test_the_per_comparison_rate_compounds_to_the_asked_rate_over_n_comparisons():
    p = ft.per_comparison_far(1e-4, 1000)
    assert 1.0 - (1.0 - p) ** 1000 == pytest.approx(1e-4, rel=1e-9)
    assert p == pytest.approx(1e-7, rel=1e-3)
    assert ft.per_comparison_far(1e-3, 1) == pytest.approx(1e-3, rel=1e-12)


@pytest.mark.parametrize("k, scale", [(0.25, 0.04), (0.0, 0.03), (-0.1, 0.02)])
def test_the_tail_fit_finds_a_quantile_a_hundred_times_rarer_than_the_sample_shows(k, scale):
    rng = np.random.default_rng(7)
    n, p = 200_000, 1e-7
    scores = _gpd_sample(rng, n, k=k, scale=scale)
    true = scale / k * (1.0 - p ** k) if k else -scale * math.log(p)
    estimate, shape, fitted_scale, u = ft.gpd_tail_threshold(scores, p, tail=0.01)
    assert estimate == pytest.approx(true, rel=0.15)
    assert shape == pytest.approx(k, abs=0.1)
    # well beyond anything observed for the unbounded tails: the extrapolation does extrapolate
    if k <= 0:
        assert estimate > scores.max()


def test_a_bounded_tail_is_not_extrapolated_past_its_end():
    rng = np.random.default_rng(11)
    scores = rng.random(100_000)  # uniform: a GPD with k = 1, ending at 1.0
    estimate, shape, _, _ = ft.gpd_tail_threshold(scores, 1e-7, tail=0.01)
    assert shape == pytest.approx(1.0, abs=0.15)
    assert 0.99 < estimate <= 1.0 + 1e-3


def test_the_normal_fit_gives_the_normal_quantile():
    rng = np.random.default_rng(3)
    scores = rng.normal(0.1, 0.09, 300_000)
    assert ft.normal_threshold(scores, 1e-7) == pytest.approx(0.1 + 0.09 * 5.1993, abs=0.004)


def test_the_empirical_threshold_lets_at_most_the_asked_share_exceed_it():
    scores = np.arange(10_000, dtype=np.float64)
    threshold = ft.empirical_threshold(scores, 1e-3)
    assert np.mean(scores > threshold) <= 1e-3 and np.mean(scores >= threshold) > 1e-3
    assert ft.empirical_threshold(scores[:10], 1e-3) == 9.0
    assert ft.empirical_threshold(np.arange(100.0), 1.0) is None


def test_the_rule_takes_the_highest_estimate_and_rounds_it_up_never_down():
    assert ft.recommend(0.511, 0.505, 0.49) == 0.52
    assert ft.recommend(0.40, 0.41, 0.6031) == 0.61   # an impostor seen above both fits
    assert ft.recommend(0.56, 0.5) == 0.56             # already on the grid: not raised a step


def test_the_command_recommends_the_highest_estimate_rounded_up(tmp_path, capsys):
    rng = np.random.default_rng(5)
    impostor = rng.normal(0.1, 0.08, 100_000)
    impostor[:3] = [np.nan, np.inf, 0.2]  # a failed pair is not a score
    genuine = np.array([0.30, 0.55, 0.56, 0.60, 0.75, 0.80])
    path = tmp_path / "scores.npz"
    np.savez(path, genuine=genuine, impostor_all=impostor)
    assert ft.main([str(path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    finite = impostor[np.isfinite(impostor)]
    assert result["impostor_pairs"] == len(finite)
    highest = max(result["gpd_fit"]["threshold"], result["normal_fit_threshold"], finite.max())
    assert result["recommended_threshold"] == math.ceil(highest * 100) / 100
    assert result["recommended_threshold"] >= highest
    # the normal fit dominates for a normal sample: mean + 5.2 sd, about 0.52
    assert result["recommended_threshold"] == pytest.approx(0.52, abs=0.015)
    expected_tar = np.mean(genuine >= result["recommended_threshold"])
    assert result["tar_at_recommended"][str(path)] == pytest.approx(expected_tar)


def test_a_genuine_score_at_the_threshold_counts_as_accepted_as_the_decision_rule_does(tmp_path, capsys):
    impostor = np.linspace(-0.2, 0.3, 50_001)
    path = tmp_path / "scores.npz"
    np.savez(path, genuine=np.array([0.0]), impostor_all=impostor)
    assert ft.main([str(path), "--json"]) == 0
    recommended = json.loads(capsys.readouterr().out)["recommended_threshold"]
    np.savez(path, genuine=np.array([recommended, recommended - 0.01]), impostor_all=impostor)
    assert ft.main([str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tar_at_recommended"][str(path)] == 0.5

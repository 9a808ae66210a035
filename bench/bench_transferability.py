"""Benchmark of the transferability scores against their reference implementations.

Standalone: ``python bench/bench_transferability.py [--n 10000] [--d 2048] [--c 100]
[--source-classes 1000] [--rounds 1] [--threads 1] [--skip-slow-references]``.

Each score of :mod:`spectral_probe.transferability` and a NumPy transcription of its published
reference implementation (below, with the source of each) run on the same seeded features
(``N x D`` float32, ``C`` Gaussian classes) in the same process, one after the other; the
ratio is ``time(reference) / time(ours)`` (> 1: ours is faster) and the values are compared.
The goal of issue 13: LogME at least 3x faster than the reference at N = 10k, D = 2048,
C = 100. Times are the minimum over ``--rounds`` rounds.

References (transcribed, numba removed, printing removed):

* LogME: thuml/LogME ``LogME.py`` (``_fit_fixed_point``, ``truncated_svd``).
* LEEP, NCE, H-score, regularized H-score, TransRate: thuml/Transfer-Learning-Library
  ``tllib/ranking/{leep,nce,hscore,transrate}.py`` (the regularized H-score with scikit-learn's
  ``LedoitWolf``, as there).
* SFDA: TencentARC/SFDA ``metrics.py`` (``SFDA``, ``SFDA_Score``) and ``utils.py`` (``iterative_A``).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from scipy import linalg

from spectral_probe.transferability import SCORES


# --- reference transcriptions ------------------------------------------------------------------
def ref_logme(f: np.ndarray, y: np.ndarray) -> float:
    f = f.astype(np.float64)
    n, d = f.shape
    if n > d:
        u, s, vh = np.linalg.svd(f.T @ f)
        s = np.sqrt(s)
        u_times_sigma = f @ vh.T
        k = int(np.sum(s > 1e-10))
        s = s.reshape(-1, 1)[:k]
        vh = vh[:k]
        u = u_times_sigma[:, :k] / s.reshape(1, -1)
    else:
        u, s, vh = np.linalg.svd(f, full_matrices=False)
        s = s.reshape(-1, 1)
    sigma = s**2
    evidences = []
    for i in range(int(y.max() + 1)):
        y_ = (y == i).astype(np.float64).reshape(-1, 1)
        x = u.T @ y_
        x2 = x**2
        res_x2 = (y_**2).sum() - x2.sum()
        alpha, beta = 1.0, 1.0
        for _ in range(11):
            t = alpha / beta
            gamma = (sigma / (sigma + t)).sum()
            m2 = (sigma * x2 / ((t + sigma) ** 2)).sum()
            res2 = (x2 / ((1 + sigma / t) ** 2)).sum() + res_x2
            alpha = gamma / (m2 + 1e-5)
            beta = (n - gamma) / (res2 + 1e-5)
            if abs(alpha / beta - t) / t <= 1e-3:
                break
        evidence = (
            d / 2.0 * np.log(alpha)
            + n / 2.0 * np.log(beta)
            - 0.5 * np.sum(np.log(alpha + beta * sigma))
            - beta / 2.0 * res2
            - alpha / 2.0 * m2
            - n / 2.0 * np.log(2 * np.pi)
        )
        evidences.append(evidence / n)
    return float(np.mean(evidences))


def ref_leep(source_pred: np.ndarray, target_label: np.ndarray) -> float:
    n, c_s = source_pred.shape
    c_t = int(np.max(target_label) + 1)
    normalized_prob = source_pred / float(n)
    joint = np.zeros((c_t, c_s), dtype=float)
    for i in range(c_t):
        joint[i] = np.sum(normalized_prob[target_label == i], axis=0)
    p_target_given_source = (joint / joint.sum(axis=0, keepdims=True)).T
    empirical_prediction = source_pred @ p_target_given_source
    empirical_prob = np.array([p[label] for p, label in zip(empirical_prediction, target_label)])
    return float(np.mean(np.log(empirical_prob)))


def ref_nce(source_labels: np.ndarray, target_labels: np.ndarray) -> float:
    c_t = int(np.max(target_labels) + 1)
    c_s = int(np.max(source_labels) + 1)
    n = len(source_labels)
    joint = np.zeros((c_t, c_s), dtype=float)
    for s, t in zip(source_labels, target_labels):
        joint[int(t), int(s)] += 1.0 / n
    p_z = joint.sum(axis=0, keepdims=True)
    mask = p_z.reshape(-1) != 0
    p_target_given_source = (joint / np.where(p_z == 0, 1, p_z)).T[mask] + 1e-20
    entropy_y_given_z = np.sum(
        -p_target_given_source * np.log(p_target_given_source), axis=1, keepdims=True
    )
    return float(-np.sum(entropy_y_given_z * p_z.reshape((-1, 1))[mask]))


def _class_mean_rows(f: np.ndarray, y: np.ndarray) -> np.ndarray:
    g = np.zeros_like(f)
    for i in range(int(y.max() + 1)):
        g[y == i] = np.mean(f[y == i, :], axis=0)
    return g


def ref_h_score(f: np.ndarray, y: np.ndarray) -> float:
    f = f.astype(np.float64)
    covf = np.cov(f, rowvar=False)
    covg = np.cov(_class_mean_rows(f, y), rowvar=False)
    return float(np.trace(np.dot(np.linalg.pinv(covf, rcond=1e-15), covg)))


def ref_regularized_h_score(features: np.ndarray, y: np.ndarray) -> float:
    from sklearn.covariance import LedoitWolf

    f = features.astype("float64")
    f = f - np.mean(f, axis=0, keepdims=True)
    cov = LedoitWolf(assume_centered=False).fit(f)
    covg = np.cov(_class_mean_rows(f, y), rowvar=False)
    return float(
        np.trace(np.dot(np.linalg.pinv(cov.covariance_, rcond=1e-15), (1 - cov.shrinkage_) * covg))
    )


def _coding_rate(f: np.ndarray, eps: float) -> float:
    n, d = f.shape
    return 0.5 * np.linalg.slogdet(np.eye(d) + 1 / (n * eps) * f.T @ f)[1]


def ref_transrate(f: np.ndarray, y: np.ndarray, eps: float = 1e-4) -> float:
    f = f.astype(np.float64)
    f = f - np.mean(f, axis=0, keepdims=True)
    c = int(y.max() + 1)
    return float(_coding_rate(f, eps) - sum(_coding_rate(f[y == i], eps) for i in range(c)) / c)


def _cov(x: np.ndarray, shrinkage: float = -1) -> np.ndarray:
    emp_cov = np.cov(np.asarray(x).T, bias=1)
    if shrinkage < 0:
        return emp_cov
    n_features = emp_cov.shape[0]
    shrunk = (1.0 - shrinkage) * emp_cov
    shrunk.flat[:: n_features + 1] += shrinkage * np.trace(emp_cov) / n_features
    return shrunk


def _softmax(x: np.ndarray) -> np.ndarray:
    x = np.exp(x - x.max(axis=1, keepdims=True))
    return x / x.sum(axis=1, keepdims=True)


def _iterative_a(a: np.ndarray, max_iterations: int = 3) -> float:
    x = a.sum(axis=1)
    for _ in range(max_iterations):
        y = np.dot(a, x) / np.linalg.norm(np.dot(a, x), 2)
        x = np.dot(a, y) / np.linalg.norm(np.dot(a, y), 2)
    return float(np.dot(np.dot(x.T, a), y))


def _sfda_fit_predict(
    x: np.ndarray, y: np.ndarray, shrinkage: float | None
) -> tuple[np.ndarray, float]:
    classes, y_t = np.unique(y, return_inverse=True)
    priors = np.bincount(y_t) / float(len(y))
    means = np.zeros((len(classes), x.shape[1]))
    np.add.at(means, y_t, x)
    means /= np.bincount(y_t)[:, None]
    sw = np.zeros((x.shape[1], x.shape[1]))
    for idx, group in enumerate(classes):
        sw += priors[idx] * np.atleast_2d(_cov(x[y == group, :]))
    if shrinkage is None:
        shrinkage = max(np.exp(-5 * _iterative_a(sw)), 1e-10)
    st = _cov(x, shrinkage=shrinkage)
    n_features = sw.shape[0]
    shrunk_sw = (1.0 - shrinkage) * sw
    shrunk_sw.flat[:: n_features + 1] += shrinkage * np.trace(sw) / n_features
    evals, evecs = linalg.eigh(st - shrunk_sw, shrunk_sw)
    evecs = evecs[:, np.argsort(evals)[::-1]]
    coef = np.dot(means, evecs).dot(evecs.T)
    intercept = -0.5 * np.diag(np.dot(means, coef.T)) + np.log(priors)
    return _softmax(np.dot(x, coef.T) + intercept), shrinkage


def ref_sfda(features: np.ndarray, y: np.ndarray) -> float:
    x = features.astype(np.float64)
    n, c = len(y), len(np.unique(y))
    prob, shrinkage = _sfda_fit_predict(x, y, None)
    prob = np.exp(prob) / np.exp(prob).sum(axis=1, keepdims=True)
    means = np.zeros((c, x.shape[1]))
    np.add.at(means, y, x)
    means /= np.bincount(y)[:, None]
    others = np.stack([(means.sum(0) - means[i]) / (c - 1) for i in range(c)])
    for k in range(c):
        idx = np.where(y == k)[0]
        p = prob[idx, k].reshape(-1, 1)
        x[idx] = p * x[idx] + (1 - p) * others[k]
    prob, _ = _sfda_fit_predict(x, y, shrinkage)
    return float(np.sum(prob[np.arange(n), y]) / n)


REFERENCES: dict[str, Callable[[Any, np.ndarray], float]] = {
    "logme": ref_logme,
    "leep": ref_leep,
    "nce": ref_nce,
    "h_score": ref_h_score,
    "regularized_h_score": ref_regularized_h_score,
    "transrate": ref_transrate,
    "sfda": ref_sfda,
}
SLOW = {"transrate", "sfda"}  # references that take minutes at D = 2048 on 2 cores


# --- the run -----------------------------------------------------------------------------------
def _timed(fn: Callable[[], float], rounds: int) -> tuple[float, float]:
    best, value = float("inf"), float("nan")
    for _ in range(rounds):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return best, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--d", type=int, default=2048)
    parser.add_argument("--c", type=int, default=100)
    parser.add_argument("--source-classes", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--scores", nargs="*", default=list(SCORES))
    parser.add_argument("--threads", type=int, default=1, help="BLAS/torch threads for both sides")
    parser.add_argument(
        "--skip-slow-references", action="store_true", help=f"time ours only for {sorted(SLOW)}"
    )
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)  # NumPy's BLAS gets the same threads as torch

    rng = np.random.default_rng(0)
    y = np.arange(args.n) % args.c
    rng.shuffle(y)
    f = (
        0.5 * rng.standard_normal((args.c, args.d))[y] + rng.standard_normal((args.n, args.d))
    ).astype(np.float32)
    logits = (
        rng.standard_normal((args.n, args.source_classes))
        + 2.0 * np.eye(args.source_classes)[y % args.source_classes]
    )
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    print(
        f"N = {args.n}, D = {args.d}, C = {args.c}, C_s = {args.source_classes}; torch {torch.__version__}, "
        f"{args.threads} BLAS/torch thread(s), numpy {np.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs"
    )
    print(f"{'score':<22}{'ours (s)':>10}{'reference (s)':>15}{'ratio':>8}{'rel. diff':>12}")
    for name in args.scores:
        score = SCORES[name]
        inputs: Any = (
            f
            if score.needs == "features"
            else probs
            if score.needs == "source_probs"
            else probs.argmax(1)
        )
        t_ours, v_ours = _timed(lambda fn=score.fn, x=inputs: fn(x, y), args.rounds)
        if args.skip_slow_references and name in SLOW:
            print(f"{name:<22}{t_ours:>10.2f}{'(skipped)':>15}")
            continue
        t_ref, v_ref = _timed(lambda fn=REFERENCES[name], x=inputs: fn(x, y), args.rounds)
        diff = abs(v_ours - v_ref) / max(abs(v_ref), 1e-300)
        print(
            f"{name:<22}{t_ours:>10.2f}{t_ref:>15.2f}{t_ref / t_ours:>7.1f}x{diff:>12.1e}",
            flush=True,
        )


if __name__ == "__main__":
    main()

"""Small linear algebra for the embedded builder without BLAS or LAPACK, so its bytes do not depend on
the machine.

Measured: numpy's ``@``, ``tensordot``, ``linalg.norm`` and ``linalg.lstsq`` call OpenBLAS/LAPACK, whose
kernel is chosen per CPU (and by ``OPENBLAS_CORETYPE``); two kernels round differently in the last bit,
and those bits reach the stored complex64 data (the mini-build hash changed with the kernel). Every
operation here is elementwise numpy arithmetic in a fixed order, or Python floats, which round the same
everywhere. Written by hand because the point is to avoid the libraries that do this.
"""

from __future__ import annotations

import math

import numpy as np


def apply_matrix(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``matrix @ points`` for a small ``(m, k)`` matrix and ``(k, ...)`` points, summed in index order."""
    rows = []
    for row in matrix:
        total = row[0] * points[0]
        for k in range(1, len(row)):
            total = total + row[k] * points[k]
        rows.append(total)
    return np.stack(rows)


def matmul(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Product of two small matrices, each entry summed in index order in Python floats."""
    return np.array(
        [[math.fsum(0.0 + left[i, k] * right[k, j] for k in range(left.shape[1])) for j in range(right.shape[1])]
         for i in range(left.shape[0])]
    )  # fmt: skip


def unit(vector: np.ndarray) -> np.ndarray:
    """``vector / |vector|`` with the norm from Python floats (correctly rounded sum)."""
    return vector / math.sqrt(math.fsum(float(v) * float(v) for v in vector))


def least_squares(design: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Solution of ``min |design @ w - target|`` through the normal equations: the Gram matrix and the
    right-hand side with ``math.fsum`` (correctly rounded, order-free), then Gaussian elimination with
    partial pivoting in Python floats. For the builder's well-conditioned few-column fits."""
    columns = design.shape[1]
    gram = [[math.fsum((design[:, i] * design[:, j]).tolist()) for j in range(columns)] for i in range(columns)]
    rhs = [math.fsum((design[:, i] * target).tolist()) for i in range(columns)]
    return np.array(solve(gram, rhs))


def solve(matrix: list[list[float]], rhs: list[float]) -> list[float]:
    """``matrix^-1 rhs`` by Gaussian elimination with partial pivoting in Python floats."""
    n = len(rhs)
    rows = [list(map(float, row)) + [float(b)] for row, b in zip(matrix, rhs, strict=True)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(rows[r][col]))
        if rows[pivot][col] == 0.0:
            raise ValueError("singular system")
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for r in range(col + 1, n):
            factor = rows[r][col] / rows[col][col]
            rows[r] = [a - factor * b for a, b in zip(rows[r], rows[col], strict=True)]
    solution = [0.0] * n
    for r in reversed(range(n)):
        solution[r] = (rows[r][n] - sum(rows[r][c] * solution[c] for c in range(r + 1, n))) / rows[r][r]
    return solution

"""VICReg (Bardes, Ponce & LeCun 2022, "VICReg: Variance-Invariance-Covariance Regularization for Self-Supervised
Learning", ICLR, https://arxiv.org/abs/2105.04906) and its SiCoVa variant, which adds a cross-correlation term
between the two views (the fundus SiCoVa reference; the term has the form of Barlow Twins, Zbontar et al. 2021,
"Barlow Twins: Self-Supervised Learning via Redundancy Reduction", ICML, https://arxiv.org/abs/2103.03230).

The covariance and cross-correlation terms need the squared off-diagonal entries of a D x D matrix. When the batch
is smaller than the embedding (B < D, e.g. 256 x 8192) they are computed from the B x B Gram matrices in
O(B^2 D) instead of O(B D^2), in float64 to avoid cancellation: for centred Z (B, D),
``||Z^T Z||_F^2 = ||Z Z^T||_F^2`` and, for two views, ``||Z1^T Z2||_F^2 = sum((Z1 Z1^T) * (Z2 Z2^T))``; the
diagonal entries (``sum_b Z1[b, d] Z2[b, d]``) cost O(B D) and are subtracted.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.utils import look_up_option

from medssl3d.utils.checks import check_non_negative, check_positive

__all__ = ["VICRegLoss", "covariance_loss", "cross_correlation_loss", "invariance_loss", "variance_loss"]

_METHODS = ("auto", "gram", "direct")


def _check_embeddings(name: str, z: torch.Tensor) -> None:
    if z.ndim != 2 or z.shape[0] < 2:
        raise ValueError(f"{name} must be (B, D) with B >= 2 (a batch variance is needed), got {tuple(z.shape)}.")


def _check_pair(z1: torch.Tensor, z2: torch.Tensor) -> None:
    if z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must have the same (B, D) shape, got {tuple(z1.shape)} and {tuple(z2.shape)}.")
    _check_embeddings("z1", z1)


def _use_gram(method: str, batch: int, dim: int) -> bool:
    method = look_up_option(method, _METHODS)
    return method == "gram" or (method == "auto" and batch < dim)


def _wide_dtype(z: torch.Tensor) -> torch.dtype:
    """float64 for the Gram path (MPS has no float64: float32 there)."""
    return torch.float32 if z.device.type == "mps" else torch.float64


def _standardise(z: torch.Tensor, eps: float) -> torch.Tensor:
    """(B, D) -> (B, D) with zero mean and (unbiased) unit variance per dimension."""
    zc = z - z.mean(dim=0)
    return zc / torch.sqrt(zc.pow(2).sum(dim=0) / (z.shape[0] - 1) + eps)


def _off_diagonal_sum_of_squares(matrix: torch.Tensor) -> torch.Tensor:
    """(D, D) -> scalar sum of the squared off-diagonal entries (no subtraction, so no cancellation)."""
    eye = torch.eye(matrix.shape[0], dtype=torch.bool, device=matrix.device)
    return matrix.masked_fill(eye, 0).pow(2).sum()


def variance_loss(z: torch.Tensor, gamma: float = 1.0, eps: float = 1e-4) -> torch.Tensor:
    """VICReg variance term: hinge on the standard deviation of each dimension over the batch.

    ``mean_d max(0, gamma - sqrt(Var(z[:, d]) + eps))`` with the unbiased variance (Bardes et al. 2022, eq. 1).

    Args:
        z: (B, D) embeddings, B >= 2.
        gamma: target standard deviation.
        eps: added to the variance for a finite gradient at zero variance (the SiCoVa reference uses 1e-3).

    Returns:
        Scalar.
    """
    _check_embeddings("z", z)
    check_non_negative("eps", eps)
    std = torch.sqrt(z.var(dim=0) + eps)
    return F.relu(gamma - std).mean()


def invariance_loss(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """VICReg invariance term: mean squared error between the two views (Bardes et al. 2022, eq. 5).

    Args:
        z1: (B, D) embeddings of the first view.
        z2: (B, D) embeddings of the second view.

    Returns:
        Scalar ``mean((z1 - z2) ** 2)`` over all B x D entries.
    """
    if z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must have the same shape, got {tuple(z1.shape)} and {tuple(z2.shape)}.")
    return F.mse_loss(z1, z2)


def covariance_loss(z: torch.Tensor, method: str = "auto") -> torch.Tensor:
    """VICReg covariance term: squared off-diagonal covariances divided by the dimension.

    ``sum_{i != j} C_ij^2 / D`` with ``C = Zc^T Zc / (B - 1)``, ``Zc`` the centred embeddings (Bardes et al. 2022,
    eq. 3-4).

    Args:
        z: (B, D) embeddings, B >= 2.
        method: ``"gram"`` (from the B x B Gram matrix, O(B^2 D), computed in float64), ``"direct"`` (from the
            D x D covariance, O(B D^2)) or ``"auto"`` (``"gram"`` when B < D).

    Returns:
        Scalar, in the dtype of ``z``.
    """
    _check_embeddings("z", z)
    batch, dim = z.shape
    if _use_gram(method, batch, dim):
        with torch.autocast(device_type=z.device.type, enabled=False):
            zc = z.to(_wide_dtype(z))
            zc = zc - zc.mean(dim=0)
            gram = zc @ zc.T  # (B, B)
            diagonal = zc.pow(2).sum(dim=0)  # (D,) (B - 1) * Var(z[:, d])
            off = (gram.pow(2).sum() - diagonal.pow(2).sum()) / (batch - 1) ** 2
        return (off / dim).to(z.dtype)
    zc = z - z.mean(dim=0)
    cov = zc.T @ zc / (batch - 1)  # (D, D)
    return _off_diagonal_sum_of_squares(cov) / dim


def cross_correlation_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    off_diagonal_weight: float = 1.0,
    eps: float = 1e-5,
    method: str = "auto",
) -> torch.Tensor:
    """SiCoVa cross-correlation term: the two views' correlation matrix pulled towards the identity.

    Each view is standardised per dimension over the batch (zero mean, unbiased unit variance); with
    ``C = Z1n^T Z2n / (B - 1)`` the (D, D) Pearson cross-correlation matrix, the term is
    ``sum_d (1 - C_dd)^2 + off_diagonal_weight * sum_{i != j} C_ij^2``. With ``off_diagonal_weight=1`` it is
    ``||C - I||_F^2``, the SiCoVa reference's form (its ``cross_corr_loss`` scales ``C - I`` by ``lmbda=5e-3``
    before squaring, see :meth:`VICRegLoss.sicova`); ``off_diagonal_weight=5e-3`` gives the Barlow Twins loss
    (Zbontar et al. 2021).

    The reference divides ``Z1n^T Z2n`` by ``B`` instead of ``B - 1``, so its diagonal cannot reach 1; here ``C``
    is an exact correlation and two identical views give a zero diagonal part.

    Args:
        z1: (B, D) embeddings of the first view, B >= 2.
        z2: (B, D) embeddings of the second view.
        off_diagonal_weight: weight of the off-diagonal (redundancy) part, >= 0.
        eps: added to each dimension's variance before dividing (a constant dimension becomes 0).
        method: ``"gram"`` (O(B^2 D) from the two B x B Gram matrices, in float64), ``"direct"`` (O(B D^2) from
            ``C``) or ``"auto"`` (``"gram"`` when B < D).

    Returns:
        Scalar, in the dtype of ``z1``.
    """
    _check_pair(z1, z2)
    check_non_negative("off_diagonal_weight", off_diagonal_weight)
    check_non_negative("eps", eps)
    batch, dim = z1.shape
    if _use_gram(method, batch, dim):
        with torch.autocast(device_type=z1.device.type, enabled=False):
            dtype = _wide_dtype(z1)
            n1, n2 = _standardise(z1.to(dtype), eps), _standardise(z2.to(dtype), eps)
            diagonal = (n1 * n2).sum(dim=0) / (batch - 1)  # (D,) C_dd
            full = ((n1 @ n1.T) * (n2 @ n2.T)).sum() / (batch - 1) ** 2  # ||C||_F^2
            off = full - diagonal.pow(2).sum()
            loss = (1 - diagonal).pow(2).sum() + off_diagonal_weight * off
        return loss.to(z1.dtype)
    n1, n2 = _standardise(z1, eps), _standardise(z2, eps)
    corr = n1.T @ n2 / (batch - 1)  # (D, D)
    return (1 - corr.diagonal()).pow(2).sum() + off_diagonal_weight * _off_diagonal_sum_of_squares(corr)


class VICRegLoss(nn.Module):
    """VICReg loss, with SiCoVa's optional cross-correlation term.

    ``sim_weight * invariance + var_weight * (variance(z1) + variance(z2)) / 2
    + cov_weight * (covariance(z1) + covariance(z2)) + cross_weight * cross_correlation(z1, z2)``,
    as in Bardes et al. (2022), "VICReg: Variance-Invariance-Covariance Regularization for Self-Supervised
    Learning", https://arxiv.org/abs/2105.04906 (lambda = mu = 25, nu = 1). ``cross_weight > 0`` adds the
    cross-correlation term of the SiCoVa fundus reference (:func:`cross_correlation_loss`); use
    :meth:`sicova` for the reference's settings. Batch sizes come from the tensors; nothing is gathered
    across processes.

    After each call, :attr:`last_terms` holds the unweighted terms and the total as floats, for logging:
    ``{"invariance", "variance", "covariance", ["cross_correlation",] "loss"}`` (the cross-correlation only
    when ``cross_weight > 0``; it is not computed otherwise).

    Args:
        sim_weight: weight of the invariance (MSE) term.
        var_weight: weight of the variance term.
        cov_weight: weight of the covariance term.
        cross_weight: weight of the cross-correlation term; 0 (plain VICReg) skips it.
        gamma: target standard deviation of the variance term.
        eps: variance stabiliser of the variance term.
        off_diagonal_weight: off-diagonal weight inside the cross-correlation term (1: ``||C - I||_F^2``).
        method: ``"auto"``, ``"gram"`` or ``"direct"`` for the covariance and cross-correlation terms.

    Raises:
        ValueError: a negative weight, a non-positive ``gamma``, a negative ``eps`` or an unknown ``method``.

    Example:
        >>> loss = VICRegLoss()
        >>> value = loss(torch.randn(16, 512), torch.randn(16, 512))
        >>> sorted(loss.last_terms)
        ['covariance', 'invariance', 'loss', 'variance']
    """

    def __init__(
        self,
        sim_weight: float = 25.0,
        var_weight: float = 25.0,
        cov_weight: float = 1.0,
        cross_weight: float = 0.0,
        gamma: float = 1.0,
        eps: float = 1e-4,
        off_diagonal_weight: float = 1.0,
        method: str = "auto",
    ) -> None:
        super().__init__()
        self.sim_weight = check_non_negative("sim_weight", sim_weight)
        self.var_weight = check_non_negative("var_weight", var_weight)
        self.cov_weight = check_non_negative("cov_weight", cov_weight)
        self.cross_weight = check_non_negative("cross_weight", cross_weight)
        self.off_diagonal_weight = check_non_negative("off_diagonal_weight", off_diagonal_weight)
        self.eps = check_non_negative("eps", eps)
        self.gamma = check_positive("gamma", gamma)
        self.method = look_up_option(method, _METHODS)
        self.last_terms: dict[str, float] = {}

    @classmethod
    def sicova(cls, **kwargs: float | str) -> VICRegLoss:
        """The SiCoVa reference's settings: weights 25/25/1, variance ``eps=1e-3``, and ``cross_weight=1.25e-7``.

        The reference weights its cross-correlation by ``lambda_cross=5e-3`` and scales ``C - I`` by
        ``lmbda=5e-3`` before squaring, i.e. ``5e-3 * 5e-3 ** 2 * ||C - I||_F^2``. ``kwargs`` override these.
        """
        settings: dict[str, float | str] = {"cross_weight": 5e-3 * 5e-3**2, "eps": 1e-3, "off_diagonal_weight": 1.0}
        settings.update(kwargs)
        return cls(**settings)  # type: ignore[arg-type]

    def forward_terms(self, z1: torch.Tensor, z2: torch.Tensor) -> dict[str, torch.Tensor]:
        """Unweighted terms and the weighted total ``"loss"`` as tensors (keys as in :attr:`last_terms`).

        Args:
            z1: (B, D) embeddings of the first view, B >= 2.
            z2: (B, D) embeddings of the second view.
        """
        _check_pair(z1, z2)
        terms = {
            "invariance": invariance_loss(z1, z2),
            "variance": (variance_loss(z1, self.gamma, self.eps) + variance_loss(z2, self.gamma, self.eps)) / 2,
            "covariance": covariance_loss(z1, self.method) + covariance_loss(z2, self.method),
        }
        total = self.sim_weight * terms["invariance"] + self.var_weight * terms["variance"]
        total = total + self.cov_weight * terms["covariance"]
        if self.cross_weight > 0:
            terms["cross_correlation"] = cross_correlation_loss(
                z1, z2, off_diagonal_weight=self.off_diagonal_weight, method=self.method
            )
            total = total + self.cross_weight * terms["cross_correlation"]
        terms["loss"] = total
        return terms

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        """Weighted total of the terms.

        Args:
            z1: (B, D) embeddings of the first view, B >= 2.
            z2: (B, D) embeddings of the second view.

        Returns:
            Scalar loss; the terms are kept in :attr:`last_terms`.

        Raises:
            ValueError: the shapes differ, are not 2-D, or B < 2.
        """
        terms = self.forward_terms(z1, z2)
        values = torch.stack([value.detach().float() for value in terms.values()]).tolist()  # one device sync
        self.last_terms = dict(zip(terms, values))
        return terms["loss"]

"""K-means quantizer: frame features (F, D) → unit ids (F,) in [0, K).

Fitted with faiss on sampled frames; assignment by nearest centroid (faiss flat L2 index).
Interop: :meth:`KMeansQuantizer.from_sklearn` reads the fairseq / GSLM ``km.bin`` files,
which are a scikit-learn ``KMeans`` (or ``MiniBatchKMeans``) saved with joblib.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from tmt.errors import TmtError


class KMeansQuantizer:
    """Nearest-centroid assignment over ``centroids`` of shape (K, D)."""

    def __init__(self, centroids: torch.Tensor | np.ndarray) -> None:
        cents = np.ascontiguousarray(np.asarray(centroids, dtype=np.float32))
        if cents.ndim != 2 or cents.shape[0] < 2:
            raise TmtError(f"k-means centroids must be (K >= 2, D), got {cents.shape}")
        self.centroids = cents
        self._index = None

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def dim(self) -> int:
        return int(self.centroids.shape[1])

    @classmethod
    def fit(
        cls,
        features: np.ndarray | torch.Tensor,
        k: int = 200,
        niter: int = 20,
        seed: int = 0,
        max_frames: int | None = 100_000,
    ) -> KMeansQuantizer:
        """Fit K centroids with faiss on (a random sample of at most ``max_frames``) frames."""
        import faiss

        if isinstance(features, torch.Tensor):
            features = features.detach().cpu().numpy()
        x = np.ascontiguousarray(np.asarray(features, dtype=np.float32))
        if x.ndim != 2 or x.shape[0] < k:
            raise TmtError(f"k-means needs at least K={k} frames of shape (N, D); got {x.shape}")
        if max_frames is not None and x.shape[0] > max_frames:
            rows = np.random.default_rng(seed).choice(x.shape[0], max_frames, replace=False)
            x = x[np.sort(rows)]
        # faiss warns (and subsamples) above 256 points per centroid; raise the cap instead.
        km = faiss.Kmeans(x.shape[1], k, niter=niter, seed=seed, max_points_per_centroid=10_000)
        km.train(x)
        assert km.centroids is not None
        return cls(km.centroids.reshape(k, x.shape[1]))

    @classmethod
    def from_sklearn(cls, path: str | Path, *, trust_pickle: bool = False) -> KMeansQuantizer:
        """Read k-means centroids: a ``.safetensors`` file (``centroids``, as :meth:`save`
        writes; safe), or a fairseq/GSLM ``km.bin`` (a joblib-saved scikit-learn KMeans).

        A ``km.bin`` is a pickle: loading it **runs any code inside it**, so it is read only with
        ``trust_pickle=True`` (CLI: ``--trust-pickle``), for a file from a source you trust.
        Convert it once with ``KMeansQuantizer.from_sklearn(bin, trust_pickle=True).save(out)``
        (``tmt codec convert-km``) and use the safetensors file from then on."""
        p = Path(path)
        if not p.exists():
            raise TmtError(f"k-means file not found: {p}")
        if p.suffix == ".safetensors":
            return cls.load(p)
        if not trust_pickle:
            raise TmtError(f"{p} is a pickle (loading it runs the code inside it): pass "
                           "trust_pickle=True / --trust-pickle for a file you trust, or convert it "
                           "once with `tmt codec convert-km` and use the .safetensors file")
        import joblib

        try:
            model = joblib.load(p)
        except Exception as error:  # joblib raises many types for a bad pickle
            raise TmtError(f"cannot read k-means model {p}: {type(error).__name__}") from None
        centers = getattr(model, "cluster_centers_", None)
        if centers is None:
            raise TmtError(f"{p} holds a {type(model).__name__}, not a fitted KMeans")
        return cls(centers)

    def save(self, path: str | Path) -> Path:
        """Write the centroids as ``safetensors`` (``centroids``: (K, D) float32)."""
        from safetensors.numpy import save_file

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        save_file({"centroids": self.centroids}, str(path))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> KMeansQuantizer:
        """Centroids written by :meth:`save` (no pickle involved)."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            return cls(load_file(str(path))["centroids"])
        except (OSError, KeyError, SafetensorError) as error:
            raise TmtError(f"cannot read k-means centroids {path}: {error}") from None

    def _faiss_index(self):  # type: ignore[no-untyped-def]
        if self._index is None:
            import faiss

            index = faiss.IndexFlatL2(self.dim)
            index.add(self.centroids)
            self._index = index
        return self._index

    def assign(self, features: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(F, D) features → (F,) LongTensor of nearest-centroid ids."""
        if isinstance(features, torch.Tensor):
            features = features.detach().cpu().numpy()
        x = np.ascontiguousarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise TmtError(f"features of shape {x.shape} do not match k-means dim {self.dim}")
        if x.shape[0] == 0:
            return torch.zeros(0, dtype=torch.long)
        _, ids = self._faiss_index().search(x, 1)
        return torch.from_numpy(ids[:, 0].astype(np.int64))

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"centroids": torch.from_numpy(self.centroids.copy())}


def time_fit_and_assign(
    features: np.ndarray, k: int = 200, niter: int = 20
) -> tuple[float, float, KMeansQuantizer]:
    """(fit seconds, assign seconds for all frames, quantizer) — used by the benchmark."""
    t0 = time.perf_counter()
    quantizer = KMeansQuantizer.fit(features, k=k, niter=niter)
    t1 = time.perf_counter()
    quantizer.assign(features)
    return t1 - t0, time.perf_counter() - t1, quantizer

"""Synthetic abdominal CT phantoms with a pancreas and tumour label, in the Decathlon folder layout.

The phantoms stand in for Medical Segmentation Decathlon Task07 (Pancreas) in tests, demos and CI,
where the real data cannot be had. Each case is a non-contrast abdominal CT slab in Hounsfield
units: air around an elliptical body, subcutaneous fat, an abdominal-wall muscle ring, visceral fat
with bowel loops (some with gas), liver (right), spleen and stomach (left), kidneys, vertebra
(cortical and cancellous bone, disc spaces, spinal canal, posterior elements), paraspinal and psoas
muscles, aorta and inferior vena cava, and a curved pancreas (class 1, ~45 HU) from the head near
the duodenum to the tail near the splenic hilum, wrapped in a thin fat plane, with a hypodense
tumour (class 2, ~0-15 HU) in most cases. Sizes, positions, in-plane rotation and the pancreas' curve
vary per case; the image is slightly smoothed (partial volume) and gets Gaussian noise.

Array axes are (x, y, z) = (patient left to right, posterior to anterior, inferior to superior), so the
affine is RAS with the given spacing on its diagonal.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["generate_phantom_dataset", "make_phantom_case", "PHANTOM_LABELS"]

PathLike = str | os.PathLike

#: Class names of the phantom labels, as in dataset.json.
PHANTOM_LABELS: dict[str, str] = {"0": "background", "1": "pancreas", "2": "tumour"}


class _Grid:
    """Open coordinate grids of one case, normalised to (-1, 1) per axis, with a random pose.

    ``x``/``y`` are the patient frame after an in-plane rotation and shift (shape (X, Y, 1)); ``z`` is
    shape (1, 1, Z). ``xo``/``yo``/``zo`` are the unrotated coordinates (open 1-D grids).
    """

    def __init__(self, shape: tuple[int, int, int], angle: float, shift: tuple[float, float, float]) -> None:
        self.shape = shape
        nx, ny, nz = shape
        self.xo = ((np.arange(nx, dtype=np.float32) + 0.5) / nx * 2 - 1)[:, None, None]
        self.yo = ((np.arange(ny, dtype=np.float32) + 0.5) / ny * 2 - 1)[None, :, None]
        self.zo = ((np.arange(nz, dtype=np.float32) + 0.5) / nz * 2 - 1)[None, None, :]
        self.cos, self.sin, self.shift = math.cos(angle), math.sin(angle), shift
        dx, dy = self.xo - shift[0], self.yo - shift[1]
        self.x = (self.cos * dx + self.sin * dy).astype(np.float32)
        self.y = (-self.sin * dx + self.cos * dy).astype(np.float32)
        self.z = self.zo - np.float32(shift[2])

    def to_unrotated(self, points: np.ndarray) -> np.ndarray:
        """Patient-frame points (N, 3) to unrotated normalised coordinates."""
        x, y, z = points[:, 0], points[:, 1], points[:, 2]
        xo = self.cos * x - self.sin * y + self.shift[0]
        yo = self.sin * x + self.cos * y + self.shift[1]
        return np.stack([xo, yo, z + self.shift[2]], axis=1)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, angle: float = 0.0) -> np.ndarray:
        """In-plane ellipse (same on every slice), shape (X, Y, 1)."""
        dx, dy = self.x - cx, self.y - cy
        if angle:
            c, s = math.cos(angle), math.sin(angle)
            dx, dy = c * dx + s * dy, -s * dx + c * dy
        return (dx / rx) ** 2 + (dy / ry) ** 2 <= 1.0

    def ellipsoid(
        self, center: Sequence[float], radii: Sequence[float], angle: float = 0.0, tilt: float = 0.0
    ) -> np.ndarray:
        """Ellipsoid rotated by ``angle`` in-plane and ``tilt`` about the x axis, shape (X, Y, Z)."""
        dx, dy, dz = self.x - center[0], self.y - center[1], self.z - center[2]
        if angle:
            c, s = math.cos(angle), math.sin(angle)
            dx, dy = c * dx + s * dy, -s * dx + c * dy
        if tilt:
            c, s = math.cos(tilt), math.sin(tilt)
            dy, dz = c * dy + s * dz, -s * dy + c * dz
        return (dx / radii[0]) ** 2 + (dy / radii[1]) ** 2 + (dz / radii[2]) ** 2 <= 1.0


def _smooth(volume: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian smoothing (kernel radius 2, edges replicated), in voxels."""
    if sigma <= 0:
        return volume
    offsets = np.arange(-2, 3)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = (kernel / kernel.sum()).astype(np.float32)
    out = volume
    for axis in range(volume.ndim):
        padded = np.pad(out, [(2, 2) if a == axis else (0, 0) for a in range(volume.ndim)], mode="edge")
        n = out.shape[axis]
        acc = np.zeros_like(out)
        for k, w in zip(range(5), kernel):
            acc += w * np.take(padded, np.arange(k, k + n), axis=axis)
        out = acc
    return out


def _pancreas(
    grid: _Grid, rng: np.random.Generator, with_tumour: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pancreas, tumour and surrounding fat-plane masks (each (X, Y, Z) bool).

    The gland is a tube of varying radius along a quadratic Bezier curve from the head (right, lower)
    over the aorta (bowed anteriorly) to the tail (left, higher, posterior), sampled densely; the
    distance to the curve is computed inside the curve's bounding box only.
    """
    head = np.array([rng.uniform(0.1, 0.2), rng.uniform(-0.08, 0.02), rng.uniform(-0.4, -0.15)])
    tail = np.array([rng.uniform(-0.52, -0.38), rng.uniform(-0.2, -0.08), rng.uniform(0.0, 0.3)])
    mid = np.array([rng.uniform(-0.08, 0.06), rng.uniform(0.12, 0.3), rng.uniform(-0.15, 0.1)])
    t = np.linspace(0.0, 1.0, 48)[:, None]
    curve = (1 - t) ** 2 * head + 2 * (1 - t) * t * mid + t**2 * tail  # patient frame, (48, 3)
    r_head, r_body, r_tail = rng.uniform(0.15, 0.19), rng.uniform(0.11, 0.14), rng.uniform(0.08, 0.11)
    tt = t[:, 0]
    radius = np.where(tt < 0.5, r_head + (r_body - r_head) * tt / 0.5, r_body + (r_tail - r_body) * (tt - 0.5) / 0.5)
    radius = radius * (1.0 + 0.08 * np.sin(2 * math.pi * (rng.uniform(2, 4) * tt + rng.uniform(0, 1))))  # lobulation
    fat = rng.uniform(0.05, 0.08)  # fat plane around the gland

    points = grid.to_unrotated(curve)
    nx, ny, nz = grid.shape
    reach = float(radius.max() + fat)
    lo = np.floor(((points.min(0) - reach + 1) / 2) * np.array([nx, ny, nz])).astype(int)
    hi = np.ceil(((points.max(0) + reach + 1) / 2) * np.array([nx, ny, nz])).astype(int)
    lo, hi = np.clip(lo, 0, [nx, ny, nz]), np.clip(hi, 0, [nx, ny, nz])
    xs, ys, zs = (slice(lo[i], hi[i]) for i in range(3))
    sub = (grid.xo[xs], grid.yo[:, ys], grid.zo[:, :, zs])

    best = np.full((hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]), np.inf, dtype=np.float32)  # distance / radius
    dist_at_best = np.full_like(best, np.inf)
    for (px, py, pz), r in zip(points.astype(np.float32), radius.astype(np.float32)):
        d = np.sqrt((sub[0] - px) ** 2 + (sub[1] - py) ** 2 + (sub[2] - pz) ** 2)
        ratio = d / r
        closer = ratio < best
        best = np.where(closer, ratio, best)
        dist_at_best = np.where(closer, d - r, dist_at_best)

    pancreas = np.zeros(grid.shape, dtype=bool)
    halo = np.zeros(grid.shape, dtype=bool)
    tumour = np.zeros(grid.shape, dtype=bool)
    pancreas[xs, ys, zs] = best <= 1.0
    halo[xs, ys, zs] = (dist_at_best <= fat) & (best > 1.0)
    if with_tumour:
        i = int(rng.integers(6, 40))
        r = float(radius[i])
        centre = curve[i] + rng.uniform(-0.3, 0.3, size=3) * r
        radii = r * rng.uniform(0.8, 1.15, size=3)
        blob = grid.ellipsoid(centre, radii, angle=rng.uniform(0, math.pi))
        inside = np.zeros(grid.shape, dtype=bool)
        inside[xs, ys, zs] = best <= 1.3  # may bulge beyond the gland, as real tumours do
        tumour = blob & inside
    return pancreas, tumour, halo


def make_phantom_case(
    shape: Sequence[int] = (64, 64, 48), rng: np.random.Generator | None = None, tumour_probability: float = 0.8
) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic abdominal CT volume and its label map.

    Args:
        shape: array shape (x, y, z).
        rng: random generator (``numpy.random.default_rng(0)`` when ``None``).
        tumour_probability: probability that the case has a tumour.

    Returns:
        ``(image, label)``: int16 Hounsfield units and uint8 labels (0 background, 1 pancreas,
        2 tumour), both of ``shape``.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    shape3 = (int(shape[0]), int(shape[1]), int(shape[2]))
    grid = _Grid(
        shape3,
        angle=rng.uniform(-0.15, 0.15),
        shift=(rng.uniform(-0.04, 0.04), rng.uniform(-0.05, 0.03), rng.uniform(-0.06, 0.06)),
    )
    x, y, z = grid.x, grid.y, grid.z
    u = rng.uniform
    img = np.full(shape3, -1000.0, dtype=np.float32)

    # body outline, subcutaneous fat, abdominal wall muscle, visceral fat
    a, b = u(0.8, 0.92), u(0.6, 0.72)
    scale = 1.0 + u(-0.05, 0.05) * z  # body widens or narrows along z
    rho = (x / (a * scale)) ** 2 + (y / (b * scale)) ** 2
    fat_t, muscle_t = u(0.1, 0.2), u(0.05, 0.08)
    img[rho <= 1.0] = u(-110, -90)
    img[rho <= (1 - fat_t) ** 2] = u(40, 55)
    interior = rho <= (1 - fat_t - muscle_t) ** 2
    img[interior] = u(-95, -75)

    # bowel loops (soft tissue, some with gas or fluid), mostly anterior
    for _ in range(int(rng.integers(18, 26))):
        c = (u(-0.6, 0.6), u(-0.15, 0.55), u(-1.0, 1.0))
        r = (u(0.08, 0.18), u(0.08, 0.16), u(0.15, 0.4))
        loop = grid.ellipsoid(c, r, angle=u(0, math.pi)) & interior
        img[loop] = u(25, 40)
        if u() < 0.5:
            lumen = grid.ellipsoid(c, [0.5 * ri for ri in r], angle=0.0) & loop
            img[lumen] = u(-850, -600) if u() < 0.6 else u(0, 15)

    # liver (right, superior), spleen and stomach (left), gallbladder
    liver_c, liver_r = (u(0.42, 0.5), u(-0.05, 0.1), u(0.35, 0.55)), (u(0.3, 0.38), u(0.4, 0.5), u(0.6, 0.75))
    liver = grid.ellipsoid(liver_c, liver_r, angle=u(-0.3, 0.3)) & interior
    img[liver] = u(55, 65)
    protected = liver.copy()  # solid organs, vessels and bone: the pancreas' fat plane stays off them
    spleen_c, spleen_r = (u(-0.52, -0.44), u(-0.28, -0.14), u(0.3, 0.5)), (u(0.13, 0.18), u(0.2, 0.26), u(0.3, 0.45))
    spleen = grid.ellipsoid(spleen_c, spleen_r, angle=u(-0.6, -0.2)) & interior
    img[spleen] = u(42, 52)
    protected |= spleen
    stomach_c = (u(-0.4, -0.25), u(0.2, 0.35), u(0.45, 0.7))
    stomach = grid.ellipsoid(stomach_c, (0.24, 0.2, 0.3), angle=u(-0.4, 0.4)) & interior
    img[stomach] = u(35, 45)
    img[grid.ellipsoid(stomach_c, (0.19, 0.15, 0.25)) & interior] = u(0, 15)
    img[grid.ellipsoid((stomach_c[0], stomach_c[1] + 0.08, stomach_c[2] + 0.1), (0.14, 0.08, 0.15)) & stomach] = -800
    if u() < 0.7:
        img[grid.ellipsoid((u(0.2, 0.3), u(0.2, 0.3), u(0.0, 0.2)), (0.07, 0.07, 0.12)) & interior] = u(0, 15)

    # kidneys with renal sinus fat
    for side in (-1, 1):
        c = (side * u(0.32, 0.4), u(-0.42, -0.32), u(-0.25, 0.1))
        r = (u(0.1, 0.13), u(0.13, 0.17), u(0.3, 0.4))
        angle = side * u(0.3, 0.6)
        kidney = grid.ellipsoid(c, r, angle=angle) & interior
        img[kidney] = u(28, 35)
        protected |= kidney
        img[grid.ellipsoid((c[0] - side * 0.03, c[1], c[2]), [0.4 * ri for ri in r], angle=angle) & interior] = -40

    # psoas and paraspinal muscles
    for side in (-1, 1):
        psoas_r = 0.05 + 0.05 * np.clip(0.5 - 0.5 * z, 0, 1)  # grows inferiorly
        psoas = ((x - side * 0.18) / psoas_r) ** 2 + ((y + 0.36) / (psoas_r * 1.1)) ** 2 <= 1.0
        img[psoas & interior] = u(45, 55)
        img[grid.ellipse(side * 0.2, -0.66, 0.15, 0.1) & (rho <= (1 - fat_t) ** 2)] = u(45, 55)
        protected |= psoas & interior

    # vertebra: cancellous body with cortical rim, discs, canal, posterior elements
    body_c = (0.0, u(-0.47, -0.42))
    vb_outer = grid.ellipse(body_c[0], body_c[1], 0.13, 0.11)
    vb_inner = grid.ellipse(body_c[0], body_c[1], 0.105, 0.085)
    period, phase = u(0.45, 0.55), u(0, 1)
    disc = (((z + 1) / period + phase) % 1.0) < 0.18
    img[np.broadcast_to(vb_outer, shape3)] = u(600, 750)
    img[np.broadcast_to(vb_inner, shape3)] = u(200, 300)
    img[np.broadcast_to(vb_outer, shape3) & disc] = u(80, 100)
    posterior = grid.ellipse(0.0, body_c[1] - 0.17, 0.1, 0.07) | grid.ellipse(0.0, body_c[1] - 0.3, 0.03, 0.08)
    img[np.broadcast_to(posterior, shape3) & ~disc] = u(400, 550)
    img[np.broadcast_to(grid.ellipse(0.0, body_c[1] - 0.165, 0.055, 0.045), shape3)] = u(5, 15)
    protected |= vb_outer | posterior

    # aorta (left of midline) and inferior vena cava (right), anterior to the spine
    aorta = grid.ellipse(u(-0.1, -0.05), body_c[1] + 0.2, 0.065, 0.065)
    ivc = grid.ellipse(u(0.1, 0.15), body_c[1] + 0.22, 0.075, 0.045)
    img[np.broadcast_to(aorta, shape3)] = u(40, 50)
    img[np.broadcast_to(ivc, shape3)] = u(35, 45)
    protected |= aorta | ivc

    # pancreas in its fat plane, with a hypodense tumour
    pancreas, tumour, halo = _pancreas(grid, rng, with_tumour=bool(u() < tumour_probability))
    pancreas &= interior
    tumour &= interior
    halo &= interior & ~protected
    img[halo] = u(-100, -80)
    texture = _smooth(rng.normal(0.0, 6.0, size=shape3).astype(np.float32), 1.0)
    img[pancreas] = u(42, 50) + texture[pancreas]
    img[tumour] = u(0, 15) + 0.5 * texture[tumour]  # hypodense, 30-50 HU below the gland

    label = np.zeros(shape3, dtype=np.uint8)
    label[pancreas] = 1
    label[tumour] = 2

    img = _smooth(img, u(0.5, 0.8))
    img += rng.normal(0.0, u(10, 20), size=shape3).astype(np.float32)
    image = np.clip(np.rint(img), -1024, 3071).astype(np.int16)
    return image, label


def _check_int_tuple(name: str, value: Sequence[int], minimum: int) -> tuple[int, int, int]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 3:
        raise ValueError(f"{name} must be 3 integers (x, y, z), got {value!r}.")
    if any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum for v in value):
        raise ValueError(f"{name} must be 3 integers >= {minimum}, got {tuple(value)!r}.")
    return (int(value[0]), int(value[1]), int(value[2]))


def _save_nifti(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    import nibabel as nib

    image = nib.Nifti1Image(array, affine)
    image.header.set_data_dtype(array.dtype)
    image.header.set_xyzt_units("mm", "sec")
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    nib.save(image, str(path))


def generate_phantom_dataset(
    output_dir: PathLike,
    num_cases: int = 10,
    num_test: int = 2,
    shape: Sequence[int] = (64, 64, 48),
    spacing: Sequence[float] = (1.5, 1.5, 2.0),
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write a Medical Segmentation Decathlon style folder of synthetic pancreas CT phantoms.

    Layout: ``dataset.json`` (modality ``{"0": "CT"}``, labels background / pancreas / tumour, ``training``
    and ``test`` lists), ``imagesTr/phantom_000.nii.gz`` ..., ``labelsTr/`` and ``imagesTs/``. Images are
    int16 Hounsfield units, labels uint8, with ``spacing`` on the affine's diagonal (RAS, centred at 0).
    Case ``i`` depends only on ``seed`` and ``i`` (one ``numpy.random.SeedSequence`` child per case), so
    a larger ``num_cases`` adds cases without changing the first ones. See the module docstring for the
    anatomy.

    Args:
        output_dir: the folder to write (created if missing).
        num_cases: number of labelled training cases (>= 1).
        num_test: number of unlabelled test images (>= 0).
        shape: array shape (x, y, z), each >= 16.
        spacing: voxel size in mm (x, y, z), positive.
        seed: random seed.
        overwrite: replace ``dataset.json``, ``imagesTr``, ``labelsTr`` and ``imagesTs`` in a non-empty
            folder (other files are left alone).

    Returns:
        the dataset folder.

    Raises:
        ValueError: a bad argument.
        FileExistsError: ``output_dir`` is not empty and ``overwrite`` is False.

    Example:
        >>> path = generate_phantom_dataset("/tmp/phantoms", num_cases=4, overwrite=True)  # doctest: +SKIP
        >>> sorted(p.name for p in path.iterdir())  # doctest: +SKIP
        ['dataset.json', 'imagesTr', 'imagesTs', 'labelsTr']
    """
    if isinstance(num_cases, bool) or not isinstance(num_cases, numbers.Integral) or num_cases < 1:
        raise ValueError(f"num_cases must be an integer >= 1, got {num_cases!r}.")
    if isinstance(num_test, bool) or not isinstance(num_test, numbers.Integral) or num_test < 0:
        raise ValueError(f"num_test must be an integer >= 0, got {num_test!r}.")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    shape3 = _check_int_tuple("shape", shape, 16)
    if (
        isinstance(spacing, (str, bytes))
        or not isinstance(spacing, Sequence)
        or len(spacing) != 3
        or any(isinstance(s, bool) or not isinstance(s, numbers.Real) or not s > 0 for s in spacing)
    ):
        raise ValueError(f"spacing must be 3 positive numbers in mm (x, y, z), got {spacing!r}.")

    out = Path(os.fspath(output_dir)).expanduser()
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"output_dir {out} is a file; pass a folder path.")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"output_dir {out} is not empty; pass overwrite=True to replace its phantom dataset, "
                "or choose an empty folder."
            )
        for sub in ("imagesTr", "labelsTr", "imagesTs"):
            if (out / sub).is_dir():
                shutil.rmtree(out / sub)
        if (out / "dataset.json").exists():
            (out / "dataset.json").unlink()
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (out / sub).mkdir(parents=True, exist_ok=True)

    spacing_arr = np.asarray([float(s) for s in spacing])
    affine = np.diag([*spacing_arr, 1.0])
    affine[:3, 3] = -(np.asarray(shape3) - 1) / 2.0 * spacing_arr
    children = np.random.SeedSequence(int(seed)).spawn(int(num_cases) + int(num_test))

    training, test = [], []
    for i in range(int(num_cases)):
        image, label = make_phantom_case(shape3, np.random.default_rng(children[i]))
        name = f"phantom_{i:03d}.nii.gz"
        _save_nifti(image, affine, out / "imagesTr" / name)
        _save_nifti(label, affine, out / "labelsTr" / name)
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    for j in range(int(num_test)):
        image, _ = make_phantom_case(shape3, np.random.default_rng(children[int(num_cases) + j]))
        name = f"phantom_{int(num_cases) + j:03d}.nii.gz"
        _save_nifti(image, affine, out / "imagesTs" / name)
        test.append(f"./imagesTs/{name}")

    info = {
        "name": "SyntheticPancreasPhantom",
        "description": "Synthetic abdominal CT phantoms with pancreas and tumour labels (medssl3d)",
        "reference": "generated by medssl3d.data.generate_phantom_dataset",
        "licence": "CC0-1.0",
        "release": "1.0",
        "tensorImageSize": "3D",
        "modality": {"0": "CT"},
        "labels": dict(PHANTOM_LABELS),
        "numTraining": int(num_cases),
        "numTest": int(num_test),
        "training": training,
        "test": test,
        "generator": {"seed": int(seed), "shape": list(shape3), "spacing": spacing_arr.tolist()},
    }
    with open(out / "dataset.json", "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    return out

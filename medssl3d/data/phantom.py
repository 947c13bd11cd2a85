"""One synthetic abdominal CT phantom with a pancreas and tumour label: :func:`make_phantom_case`.

The phantoms stand in for Medical Segmentation Decathlon Task07 (Pancreas) in tests, demos and CI, where
the real data cannot be had (:func:`medssl3d.data.synthetic.generate_phantom_dataset` writes a Decathlon
folder of them). Each case is a non-contrast abdominal CT slab in Hounsfield units: air around an
elliptical body, subcutaneous fat, an abdominal-wall muscle ring, visceral fat with bowel loops (some with
gas), liver (right), spleen and stomach (left), kidneys, vertebra (cortical and cancellous bone, disc
spaces, spinal canal, posterior elements), paraspinal and psoas muscles, aorta and inferior vena cava,
and a curved pancreas (class 1, ~45 HU) from the head near the duodenum to the tail near the splenic
hilum, wrapped in a thin fat plane, with a hypodense tumour (class 2, ~0-15 HU) in most cases. Sizes,
positions, in-plane rotation and the pancreas' curve vary per case; the image is slightly smoothed
(partial volume) and gets Gaussian noise.

Array axes are (x, y, z) = (patient left to right, posterior to anterior, inferior to superior), so an
affine with the voxel spacing on its diagonal is RAS.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["make_phantom_case", "PHANTOM_LABELS"]

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
        for k, w in zip(range(5), kernel, strict=True):
            acc += w * np.take(padded, np.arange(k, k + n), axis=axis)
        out = acc
    return out


def _pancreas_masks(
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
    for (px, py, pz), r in zip(points.astype(np.float32), radius.astype(np.float32), strict=True):
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


def _add_body(img: np.ndarray, grid: _Grid, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Body outline, subcutaneous fat, abdominal wall muscle and visceral fat.

    Returns:
        ``(inside_fat, interior)``: the masks inside the subcutaneous fat and inside the abdominal wall.
    """
    u, z = rng.uniform, grid.z
    a, b = u(0.8, 0.92), u(0.6, 0.72)
    scale = 1.0 + u(-0.05, 0.05) * z  # body widens or narrows along z
    rho = (grid.x / (a * scale)) ** 2 + (grid.y / (b * scale)) ** 2
    fat_t, muscle_t = u(0.1, 0.2), u(0.05, 0.08)
    img[rho <= 1.0] = u(-110, -90)
    inside_fat = rho <= (1 - fat_t) ** 2
    img[inside_fat] = u(40, 55)
    interior = rho <= (1 - fat_t - muscle_t) ** 2
    img[interior] = u(-95, -75)
    return inside_fat, interior


def _add_bowel(img: np.ndarray, grid: _Grid, rng: np.random.Generator, interior: np.ndarray) -> None:
    """Bowel loops (soft tissue, some with gas or fluid), mostly anterior."""
    u = rng.uniform
    for _ in range(int(rng.integers(18, 26))):
        c = (u(-0.6, 0.6), u(-0.15, 0.55), u(-1.0, 1.0))
        r = (u(0.08, 0.18), u(0.08, 0.16), u(0.15, 0.4))
        loop = grid.ellipsoid(c, r, angle=u(0, math.pi)) & interior
        img[loop] = u(25, 40)
        if u() < 0.5:
            lumen = grid.ellipsoid(c, [0.5 * ri for ri in r], angle=0.0) & loop
            img[lumen] = u(-850, -600) if u() < 0.6 else u(0, 15)


def _add_upper_organs(img: np.ndarray, grid: _Grid, rng: np.random.Generator, interior: np.ndarray) -> np.ndarray:
    """Liver (right, superior), spleen and stomach (left) and often a gallbladder; returns liver | spleen."""
    u = rng.uniform
    liver_c, liver_r = (u(0.42, 0.5), u(-0.05, 0.1), u(0.35, 0.55)), (u(0.3, 0.38), u(0.4, 0.5), u(0.6, 0.75))
    liver = grid.ellipsoid(liver_c, liver_r, angle=u(-0.3, 0.3)) & interior
    img[liver] = u(55, 65)
    spleen_c, spleen_r = (u(-0.52, -0.44), u(-0.28, -0.14), u(0.3, 0.5)), (u(0.13, 0.18), u(0.2, 0.26), u(0.3, 0.45))
    spleen = grid.ellipsoid(spleen_c, spleen_r, angle=u(-0.6, -0.2)) & interior
    img[spleen] = u(42, 52)
    stomach_c = (u(-0.4, -0.25), u(0.2, 0.35), u(0.45, 0.7))
    stomach = grid.ellipsoid(stomach_c, (0.24, 0.2, 0.3), angle=u(-0.4, 0.4)) & interior
    img[stomach] = u(35, 45)
    img[grid.ellipsoid(stomach_c, (0.19, 0.15, 0.25)) & interior] = u(0, 15)
    img[grid.ellipsoid((stomach_c[0], stomach_c[1] + 0.08, stomach_c[2] + 0.1), (0.14, 0.08, 0.15)) & stomach] = -800
    if u() < 0.7:
        img[grid.ellipsoid((u(0.2, 0.3), u(0.2, 0.3), u(0.0, 0.2)), (0.07, 0.07, 0.12)) & interior] = u(0, 15)
    return liver | spleen


def _add_kidneys(img: np.ndarray, grid: _Grid, rng: np.random.Generator, interior: np.ndarray) -> np.ndarray:
    """Both kidneys with renal sinus fat; returns their mask."""
    u = rng.uniform
    kidneys = np.zeros(grid.shape, dtype=bool)
    for side in (-1, 1):
        c = (side * u(0.32, 0.4), u(-0.42, -0.32), u(-0.25, 0.1))
        r = (u(0.1, 0.13), u(0.13, 0.17), u(0.3, 0.4))
        angle = side * u(0.3, 0.6)
        kidney = grid.ellipsoid(c, r, angle=angle) & interior
        img[kidney] = u(28, 35)
        kidneys |= kidney
        img[grid.ellipsoid((c[0] - side * 0.03, c[1], c[2]), [0.4 * ri for ri in r], angle=angle) & interior] = -40
    return kidneys


def _add_muscles(
    img: np.ndarray, grid: _Grid, rng: np.random.Generator, interior: np.ndarray, inside_fat: np.ndarray
) -> np.ndarray:
    """Psoas and paraspinal muscles on both sides; returns the psoas mask."""
    u, x, y = rng.uniform, grid.x, grid.y
    psoas_both = np.zeros(grid.shape, dtype=bool)
    for side in (-1, 1):
        psoas_r = 0.05 + 0.05 * np.clip(0.5 - 0.5 * grid.z, 0, 1)  # grows inferiorly
        psoas = ((x - side * 0.18) / psoas_r) ** 2 + ((y + 0.36) / (psoas_r * 1.1)) ** 2 <= 1.0
        img[psoas & interior] = u(45, 55)
        img[grid.ellipse(side * 0.2, -0.66, 0.15, 0.1) & inside_fat] = u(45, 55)
        psoas_both |= psoas & interior
    return psoas_both


def _add_spine(img: np.ndarray, grid: _Grid, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Vertebra: cancellous body with cortical rim, discs, canal, posterior elements.

    Returns:
        ``(bone, y)``: the mask of the vertebral body and posterior elements, and the body's y centre.
    """
    u, z, shape = rng.uniform, grid.z, grid.shape
    body_y = u(-0.47, -0.42)
    vb_outer = grid.ellipse(0.0, body_y, 0.13, 0.11)
    vb_inner = grid.ellipse(0.0, body_y, 0.105, 0.085)
    period, phase = u(0.45, 0.55), u(0, 1)
    disc = (((z + 1) / period + phase) % 1.0) < 0.18
    img[np.broadcast_to(vb_outer, shape)] = u(600, 750)
    img[np.broadcast_to(vb_inner, shape)] = u(200, 300)
    img[np.broadcast_to(vb_outer, shape) & disc] = u(80, 100)
    posterior = grid.ellipse(0.0, body_y - 0.17, 0.1, 0.07) | grid.ellipse(0.0, body_y - 0.3, 0.03, 0.08)
    img[np.broadcast_to(posterior, shape) & ~disc] = u(400, 550)
    img[np.broadcast_to(grid.ellipse(0.0, body_y - 0.165, 0.055, 0.045), shape)] = u(5, 15)
    return vb_outer | posterior, body_y


def _add_vessels(img: np.ndarray, grid: _Grid, rng: np.random.Generator, spine_y: float) -> np.ndarray:
    """Aorta (left of midline) and inferior vena cava (right), anterior to the spine; returns their mask."""
    u = rng.uniform
    aorta = grid.ellipse(u(-0.1, -0.05), spine_y + 0.2, 0.065, 0.065)
    ivc = grid.ellipse(u(0.1, 0.15), spine_y + 0.22, 0.075, 0.045)
    img[np.broadcast_to(aorta, grid.shape)] = u(40, 50)
    img[np.broadcast_to(ivc, grid.shape)] = u(35, 45)
    return aorta | ivc


def _add_pancreas(
    img: np.ndarray,
    grid: _Grid,
    rng: np.random.Generator,
    interior: np.ndarray,
    protected: np.ndarray,
    tumour_probability: float,
) -> np.ndarray:
    """The pancreas in its fat plane (kept off ``protected`` organs), with a hypodense tumour; returns the label."""
    u = rng.uniform
    pancreas, tumour, halo = _pancreas_masks(grid, rng, with_tumour=bool(u() < tumour_probability))
    pancreas &= interior
    tumour &= interior
    halo &= interior & ~protected
    img[halo] = u(-100, -80)
    texture = _smooth(rng.normal(0.0, 6.0, size=grid.shape).astype(np.float32), 1.0)
    img[pancreas] = u(42, 50) + texture[pancreas]
    img[tumour] = u(0, 15) + 0.5 * texture[tumour]  # hypodense, 30-50 HU below the gland
    label = np.zeros(grid.shape, dtype=np.uint8)
    label[pancreas] = 1
    label[tumour] = 2
    return label


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
    img = np.full(shape3, -1000.0, dtype=np.float32)
    inside_fat, interior = _add_body(img, grid, rng)
    _add_bowel(img, grid, rng, interior)
    # solid organs, vessels and bone: the pancreas' fat plane stays off them
    protected = _add_upper_organs(img, grid, rng, interior)
    protected |= _add_kidneys(img, grid, rng, interior)
    protected |= _add_muscles(img, grid, rng, interior, inside_fat)
    bone, spine_y = _add_spine(img, grid, rng)
    protected |= bone
    protected |= _add_vessels(img, grid, rng, spine_y)
    label = _add_pancreas(img, grid, rng, interior, protected, tumour_probability)

    img = _smooth(img, rng.uniform(0.5, 0.8))
    img += rng.normal(0.0, rng.uniform(10, 20), size=shape3).astype(np.float32)
    image = np.clip(np.rint(img), -1024, 3071).astype(np.int16)
    return image, label

"""Analytic parallel-beam projections of ellipsoids (exact line integrals).

Geometry (tomopy's): rotation about the z axis (detector rows); at angle θ a point
``(x, y, z)`` projects to detector column coordinate ``s = x cos θ + y sin θ`` and row
coordinate ``z``. The volume and detector coordinates are centred on the rotation axis;
see :func:`tomopipe.recon` for how array indices map onto them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validate import check_theta_radians

__all__ = ["Ellipsoid", "project_ellipsoids", "rasterize_ellipsoids", "shepp_logan_ellipsoids"]


@dataclass(frozen=True)
class Ellipsoid:
    """A uniform ellipsoid.

    Parameters
    ----------
    center : (3,) tuple of float
        Centre ``(z, y, x)`` in pixels, relative to the rotation axis (z relative to the
        middle of the detector rows; y grows towards row 0 of a slice, see
        :func:`tomopipe.recon`).
    semi_axes : (3,) tuple of float
        Semi-axes along the ellipsoid's own ``(z, y, x)`` axes, in pixels.
    value : float
        Attenuation μ inside, in 1/pixel (additive where ellipsoids overlap).
    phi : float
        Rotation about z, radians (counter-clockwise from x towards y).
    """

    center: tuple
    semi_axes: tuple
    value: float
    phi: float = 0.0

    def _quadric(self):
        c, s = np.cos(self.phi), np.sin(self.phi)
        # rotation in (x, y); z untouched. Columns: ellipsoid axes in world (x, y, z) coords.
        rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        az, ay, ax = self.semi_axes
        a = rot @ np.diag([1 / ax**2, 1 / ay**2, 1 / az**2]) @ rot.T
        z0, y0, x0 = self.center
        return a, np.array([x0, y0, z0], dtype=np.float64)


def project_ellipsoids(ellipsoids, theta, n_rows, n_cols, *, center=None, dtype=np.float64):
    """Exact line integrals of a sum of uniform ellipsoids (parallel beam).

    Parameters
    ----------
    ellipsoids : sequence of Ellipsoid
        The objects; coordinates in pixels about the rotation axis.
    theta : (n_angles,) array_like
        Projection angles in radians.
    n_rows, n_cols : int
        Detector size. Row ``i`` samples ``z = i + ½ − n_rows/2``; column ``j`` samples
        ``s = j − center``.
    center : float, optional
        Rotation-axis position on the detector as a column index (tomopy's convention, see
        :func:`tomopipe.recon`); default ``(n_cols − 1)/2``, the middle of the detector.
    dtype : numpy dtype
        Output dtype.

    Returns
    -------
    proj : (n_angles, n_rows, n_cols) ndarray
        Line integrals of μ, in the units of ``value × pixel`` (i.e. what ``minus_log``
        returns for a μ given in 1/pixel).
    """
    theta = check_theta_radians(theta)
    if center is None:
        center = (n_cols - 1) / 2.0
    s = np.arange(n_cols) - center
    z = np.arange(n_rows) + 0.5 - n_rows / 2.0
    out = np.zeros((theta.size, n_rows, n_cols), dtype=dtype)
    quadrics = [(e._quadric(), e.value) for e in ellipsoids]
    for k, t in enumerate(theta):
        n = np.array([np.cos(t), np.sin(t), 0.0])
        d = np.array([-np.sin(t), np.cos(t), 0.0])
        acc = np.zeros((n_rows, n_cols))
        for (a, c0), value in quadrics:
            # ray start p0 = s n + z e_z ; q = p0 - c0
            qx = s[None, :] * n[0] - c0[0]
            qy = s[None, :] * n[1] - c0[1]
            qz = z[:, None] - c0[2]
            ad = a @ d
            dad = d @ ad
            daq = ad[0] * qx + ad[1] * qy + ad[2] * qz
            qaq = (
                a[0, 0] * qx * qx + a[1, 1] * qy * qy + a[2, 2] * qz * qz
                + 2 * a[0, 1] * qx * qy + 2 * a[0, 2] * qx * qz + 2 * a[1, 2] * qy * qz
            )
            disc = daq * daq - dad * (qaq - 1.0)
            acc += value * 2.0 * np.sqrt(np.clip(disc, 0.0, None)) / dad
        out[k] = acc
    return out


def rasterize_ellipsoids(ellipsoids, shape, *, supersample=1):
    """Sample a sum of ellipsoids on the reconstruction grid of :func:`tomopipe.recon`.

    Parameters
    ----------
    ellipsoids : sequence of Ellipsoid
    shape : (n_z, n_y, n_x) tuple of int
        Output shape; slice pixel ``(r, q)`` sits at ``x = q − n_x//2``,
        ``y = (n_y − 1)//2 − r`` (tomopy's grid, as :func:`tomopipe.recon`), and slice ``k``
        at ``z = k + ½ − n_z/2``.
    supersample : int
        Sub-samples per pixel and axis in the slice plane (area-averaging of edges).

    Returns
    -------
    vol : (n_z, n_y, n_x) ndarray of float64
        μ per pixel.
    """
    nz, ny, nx = shape
    ss = int(supersample)
    off = (np.arange(ss) + 0.5) / ss - 0.5
    z = np.arange(nz) + 0.5 - nz / 2.0
    y = ((ny - 1) // 2 - np.arange(ny, dtype=np.float64))[:, None] - off[None, :]
    x = (np.arange(nx, dtype=np.float64) - nx // 2)[:, None] + off[None, :]
    Z = z[:, None, None, None, None]
    Y = y[None, :, :, None, None]
    X = x[None, None, None, :, :]
    vol = np.zeros((nz, ny, ss, nx, ss))
    for e in ellipsoids:
        a, c0 = e._quadric()
        px, py, pz = X - c0[0], Y - c0[1], Z - c0[2]
        q = (
            a[0, 0] * px * px + a[1, 1] * py * py + a[2, 2] * pz * pz
            + 2 * a[0, 1] * px * py + 2 * a[0, 2] * px * pz + 2 * a[1, 2] * py * pz
        )
        vol += e.value * (q <= 1.0)
    return vol.mean(axis=(2, 4))


def shepp_logan_ellipsoids(n, *, scale=1.0, height=None):
    """The modified Shepp–Logan head phantom (Toft's contrast) as ellipsoids for an n-px slice.

    Parameters
    ----------
    n : int
        Slice width in pixels; the head fills ~90 % of it.
    scale : float
        Multiplies all μ values (1/pixel). The outer skull has ``μ = scale``.
    height : float, optional
        Semi-axis along z in pixels of every ellipsoid (default: ``n`` — long cylinders, so
        every slice is the 2-D phantom).

    Returns
    -------
    list of Ellipsoid
    """
    # (value, a_x, a_y, x0, y0, phi_deg) in units of the half width (Toft 1996 / skimage)
    table = [
        (1.0, 0.69, 0.92, 0.0, 0.0, 0),
        (-0.8, 0.6624, 0.8740, 0.0, -0.0184, 0),
        (-0.2, 0.1100, 0.3100, 0.22, 0.0, -18),
        (-0.2, 0.1600, 0.4100, -0.22, 0.0, 18),
        (0.1, 0.2100, 0.2500, 0.0, 0.35, 0),
        (0.1, 0.0460, 0.0460, 0.0, 0.1, 0),
        (0.1, 0.0460, 0.0460, 0.0, -0.1, 0),
        (0.1, 0.0460, 0.0230, -0.08, -0.605, 0),
        (0.1, 0.0230, 0.0230, 0.0, -0.606, 0),
        (0.1, 0.0230, 0.0460, 0.06, -0.605, 0),
    ]
    half = 0.49 * n
    hz = float(n if height is None else height)
    return [
        Ellipsoid((0.0, y0 * half, x0 * half), (hz, ay * half, ax * half), v * scale,
                  np.deg2rad(phi))
        for v, ax, ay, x0, y0, phi in table
    ]

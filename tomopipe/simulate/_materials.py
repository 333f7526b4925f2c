"""X-ray optical constants of the materials of a Li | β-Li3PS4 | CuS solid-state cell.

Attenuation coefficients and refractive-index decrements come from ``xraydb`` (the
Elam–Ravel–Sieber tabulation for μ, the Chantler tables for δ and β); this module fixes the
compositions and densities of the cell's phases and converts units (keV in, 1/cm out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..prep import wavelength_m

__all__ = [
    "Material",
    "MATERIALS",
    "get_material",
    "attenuation",
    "refractive_decrement",
    "absorption_index",
    "delta_beta_ratio",
    "PhaseProperties",
    "phase_properties",
]


@dataclass(frozen=True)
class Material:
    """A homogeneous material: composition and mass density.

    Parameters
    ----------
    name : str
        Name used in label schemas and messages.
    formula : str or None
        Chemical formula as understood by ``xraydb`` (e.g. ``"Li3PS4"``, ``"CuS"``); None for
        vacuum (pores, cracks, air), whose μ and δ are zero.
    density_g_cm3 : float
        Mass density in g/cm³ (0 for vacuum).
    """

    name: str
    formula: str | None
    density_g_cm3: float

    def __post_init__(self):
        rho = float(self.density_g_cm3)
        if not (np.isfinite(rho) and rho >= 0):
            raise ValueError(
                f"Material {self.name!r}: density_g_cm3 must be a finite number >= 0, got "
                f"{self.density_g_cm3!r}"
            )
        if (self.formula is None) != (rho == 0):
            raise ValueError(
                f"Material {self.name!r}: vacuum has formula None and density 0; a material "
                f"with formula {self.formula!r} needs a positive density"
            )

    @property
    def is_vacuum(self) -> bool:
        """True for the empty phase (no formula, zero density)."""
        return self.formula is None


#: The phases of an in-situ Li | β-Li3PS4 | CuS cell, by name (densities at room
#: temperature, g/cm³). ``"stainless_steel"`` (the pistons / current collectors of the
#: pressure cell) is approximated by pure iron at 7.87 g/cm³ (the Cr/Ni of 304/316 steel
#: change μ at 35 keV by a few per cent); ``"Cu"`` (8.96) is both the metallic copper that
#: the conversion CuS + 2 Li → Li2S + Cu forms inside the cathode particles and a Cu-foil
#: current collector. ``"vacuum"`` stands for pores, cracks and air (air at 35 keV has
#: μ ≈ 3e-4 /cm, negligible over a sample).
MATERIALS: dict[str, Material] = {
    m.name: m
    for m in (
        Material("vacuum", None, 0.0),
        Material("CuS", "CuS", 4.76),  # covellite
        Material("Cu", "Cu", 8.96),
        Material("Li3PS4", "Li3PS4", 1.87),  # β-Li3PS4 solid electrolyte
        Material("Li", "Li", 0.534),  # lithium metal anode
        Material("Li2S", "Li2S", 1.66),  # conversion product of CuS
        Material("carbon_black", "C", 1.9),  # conductive additive (amorphous carbon)
        Material("stainless_steel", "Fe", 7.87),  # pure-Fe approximation
    )
}

#: Other names accepted by :func:`get_material` for the entries of :data:`MATERIALS`.
_ALIASES = {
    "pore": "vacuum",
    "air": "vacuum",
    "crack": "vacuum",
    "void": "vacuum",
    "electrolyte": "Li3PS4",
    "solid_electrolyte": "Li3PS4",
    "carbon": "carbon_black",
    "steel": "stainless_steel",
    "current_collector": "stainless_steel",
}


def get_material(material):
    """Look up a material by name (or pass a :class:`Material` through).

    Parameters
    ----------
    material : str or Material
        A key of :data:`MATERIALS` (case-insensitive), an alias (``pore``, ``air``, ``crack``,
        ``void`` → vacuum; ``electrolyte`` → Li3PS4; ``carbon`` → carbon_black; ``steel``,
        ``current_collector`` → stainless_steel), or a Material.

    Returns
    -------
    Material

    Raises
    ------
    KeyError
        If the name is unknown (the message lists the known names).
    """
    if isinstance(material, Material):
        return material
    if not isinstance(material, str):
        raise TypeError(f"material must be a name or a Material, got {type(material).__name__}")
    lowered = {k.lower(): k for k in MATERIALS}
    key = material.lower()
    key = _ALIASES.get(key, key)
    if key.lower() in lowered:
        return MATERIALS[lowered[key.lower()]]
    raise KeyError(
        f"unknown material {material!r}; known: {', '.join(MATERIALS)} (aliases: "
        f"{', '.join(_ALIASES)}), or pass a Material"
    )


def _energy_ev(energy_keV):
    e = np.asarray(energy_keV, dtype=np.float64)
    if not np.all(np.isfinite(e)) or np.any(e <= 0):
        raise ValueError(f"energy_keV must be finite and positive, got {energy_keV!r}")
    return e * 1e3


def _scalar_or_array(x, like):
    x = np.asarray(x, dtype=np.float64)
    return float(x) if np.ndim(like) == 0 else x


def attenuation(material, energy_keV):
    """Linear attenuation coefficient μ of a material.

    Parameters
    ----------
    material : str or Material
        See :func:`get_material`.
    energy_keV : float or array_like
        Photon energy in keV.

    Returns
    -------
    mu : float or ndarray of float64
        μ in **1/cm** (total: photo-absorption plus coherent and incoherent scattering, which
        is what a transmission measurement sees); 0 for vacuum.

    Raises
    ------
    KeyError
        Unknown material name.
    ValueError
        Non-positive or non-finite energy.

    References
    ----------
    .. [1] W. T. Elam, B. D. Ravel, J. R. Sieber, "A new atomic database for X-ray
       spectroscopic calculations", Radiat. Phys. Chem. 63, 121–128 (2002), through
       ``xraydb.material_mu``. https://doi.org/10.1016/S0969-806X(01)00227-4
    """
    mat = get_material(material)
    ev = _energy_ev(energy_keV)
    if mat.is_vacuum:
        return _scalar_or_array(np.zeros_like(ev), energy_keV)
    import xraydb

    mu = xraydb.material_mu(mat.formula, ev, density=mat.density_g_cm3, kind="total")
    return _scalar_or_array(mu, energy_keV)


def refractive_decrement(material, energy_keV):
    """Refractive-index decrement δ of a material (``n = 1 − δ + iβ``).

    Parameters
    ----------
    material : str or Material
        See :func:`get_material`.
    energy_keV : float or array_like
        Photon energy in keV.

    Returns
    -------
    delta : float or ndarray of float64
        δ, dimensionless (e.g. ~3e-7 for Li3PS4 at 35 keV); 0 for vacuum.

    Raises
    ------
    KeyError
        Unknown material name.
    ValueError
        Non-positive or non-finite energy.

    References
    ----------
    .. [1] C. T. Chantler, "Theoretical form factor, attenuation and scattering tabulation
       for Z = 1–92 from E = 1–10 eV to E = 0.4–1.0 MeV", J. Phys. Chem. Ref. Data 24,
       71–643 (1995), https://doi.org/10.1063/1.555974 (f₁ summed over the formula),
       through ``xraydb.xray_delta_beta``.
    """
    mat = get_material(material)
    ev = _energy_ev(energy_keV)
    if mat.is_vacuum:
        return _scalar_or_array(np.zeros_like(ev), energy_keV)
    import xraydb

    delta = np.vectorize(lambda e: xraydb.xray_delta_beta(mat.formula, mat.density_g_cm3, e)[0],
                         otypes=[np.float64])(ev)
    return _scalar_or_array(delta, energy_keV)


def absorption_index(material, energy_keV):
    """Absorption index β that matches the total attenuation: ``β = μ λ / (4π)``.

    xraydb's own β (Chantler's f₂) holds photo-absorption only; a transmission image, and
    hence a consistent simulation and Paganin retrieval, attenuates with the total μ of
    :func:`attenuation` (Compton scattering is ~25 % of μ for Li3PS4 at 35 keV).

    Parameters
    ----------
    material : str or Material
    energy_keV : float or array_like
        Photon energy in keV.

    Returns
    -------
    beta : float or ndarray of float64
        Dimensionless β; 0 for vacuum.
    """
    mu_per_m = np.asarray(attenuation(material, energy_keV)) * 100.0
    lam = np.vectorize(wavelength_m, otypes=[np.float64])(np.asarray(energy_keV, dtype=np.float64))
    return _scalar_or_array(mu_per_m * lam / (4 * np.pi), energy_keV)


def delta_beta_ratio(material, energy_keV):
    """δ/β of a material, with β from the total attenuation (:func:`absorption_index`).

    This is the `delta_beta` to give :func:`tomopipe.retrieve_phase_paganin` for a phase
    made of `material`.

    Parameters
    ----------
    material : str or Material
        Not vacuum.
    energy_keV : float or array_like
        Photon energy in keV.

    Returns
    -------
    float or ndarray of float64

    Raises
    ------
    ValueError
        For vacuum (δ/β undefined).
    """
    mat = get_material(material)
    if mat.is_vacuum:
        raise ValueError("material: δ/β is undefined for vacuum")
    return _scalar_or_array(
        np.asarray(refractive_decrement(mat, energy_keV)) / np.asarray(absorption_index(mat, energy_keV)),
        energy_keV,
    )


class PhaseProperties(NamedTuple):
    """Optical constants indexed by label: ``mu_per_cm[labels]`` maps a label volume to μ."""

    #: (n_labels,) float64, μ in 1/cm; NaN for labels missing from the schema.
    mu_per_cm: np.ndarray
    #: (n_labels,) float64, δ (dimensionless); NaN for labels missing from the schema.
    delta: np.ndarray


def phase_properties(labels_schema, energy_keV):
    """Lookup tables of μ and δ for a label schema.

    Parameters
    ----------
    labels_schema : mapping of int to (str or Material)
        Label value → material, e.g. ``{0: "pore", 1: "Li3PS4", 2: "CuS", 3: "Cu"}``.
    energy_keV : float
        Photon energy in keV.

    Returns
    -------
    PhaseProperties
        ``(mu_per_cm, delta)``, each a (max_label + 1,) float64 array indexed by label, so
        ``mu_per_cm[labels]`` is the μ volume (1/cm) of an integer label volume and
        ``delta[labels]`` its δ volume. Labels absent from the schema hold NaN, so that an
        unexpected label shows up instead of passing for vacuum.

    Raises
    ------
    ValueError
        If the schema is empty, a label is negative or not an integer, or the energy is
        not positive.
    KeyError
        If a material name is unknown.

    Examples
    --------
    >>> mu, delta = phase_properties({0: "pore", 1: "Li3PS4", 2: "CuS"}, 35.0)
    >>> float(mu[0]), round(float(mu[2]), 1)
    (0.0, 24.6)
    """
    if not labels_schema:
        raise ValueError("labels_schema is empty")
    labels = []
    for label in labels_schema:
        if isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer)) or label < 0:
            raise ValueError(f"labels_schema: label {label!r} is not a non-negative integer")
        labels.append(int(label))
    energy = float(np.asarray(energy_keV))
    mu = np.full(max(labels) + 1, np.nan)
    delta = np.full(max(labels) + 1, np.nan)
    for label, material in labels_schema.items():
        mu[int(label)] = attenuation(material, energy)
        delta[int(label)] = refractive_decrement(material, energy)
    return PhaseProperties(mu, delta)

import numpy as np
import pytest
import scipy.constants as const

from tomopipe.prep import wavelength_m
from tomopipe.simulate._materials import (
    MATERIALS,
    Material,
    absorption_index,
    attenuation,
    delta_beta_ratio,
    get_material,
    phase_properties,
    refractive_decrement,
)


def test_cu_attenuation_matches_nist_xcom():
    # NIST XCOM, Cu, total attenuation with coherent scattering: 10.89 cm²/g at 30 keV and
    # 4.862 cm²/g at 40 keV; log-log interpolation to 35 keV gives 7.07 cm²/g.
    e0, e1, m0, m1 = 30.0, 40.0, 10.89, 4.862
    slope = np.log(m1 / m0) / np.log(e1 / e0)
    mass_att_35 = m0 * (35.0 / e0) ** slope
    expected = mass_att_35 * 8.96  # 1/cm
    assert attenuation("Cu", 35.0) == pytest.approx(expected, rel=0.03)
    # the tables themselves at the two XCOM energies
    assert attenuation("Cu", [30.0, 40.0]) / 8.96 == pytest.approx([m0, m1], rel=0.03)


def test_delta_matches_free_electron_formula():
    # Far above the absorption edges δ ≈ r_e λ² n_e / (2π) (n_e: electrons per volume).
    # Li3PS4: 3·3 + 15 + 4·16 = 88 electrons per formula unit of 184.0 g/mol.
    molar_mass = 3 * 6.94 + 30.974 + 4 * 32.06
    n_e = 1.87 / molar_mass * const.Avogadro * 88  # 1/cm³
    lam_cm = wavelength_m(35.0) * 100
    r_e_cm = const.physical_constants["classical electron radius"][0] * 100
    expected = r_e_cm * lam_cm**2 * n_e / (2 * np.pi)
    assert refractive_decrement("Li3PS4", 35.0) == pytest.approx(expected, rel=0.05)
    # δ ∝ 1/E² away from edges
    ratio = refractive_decrement("Li3PS4", 70.0) / refractive_decrement("Li3PS4", 35.0)
    assert ratio == pytest.approx(0.25, rel=0.03)


@pytest.mark.parametrize("name", [n for n in MATERIALS if n != "vacuum"])
def test_optical_constants_positive(name):
    mu = attenuation(name, 35.0)
    delta = refractive_decrement(name, 35.0)
    beta = absorption_index(name, 35.0)
    assert mu > 0 and delta > 0 and beta > 0
    assert mu == pytest.approx(4 * np.pi * beta / (wavelength_m(35.0) * 100), rel=1e-10)
    assert delta_beta_ratio(name, 35.0) == pytest.approx(delta / beta)
    assert attenuation(name, 30.0) > attenuation(name, 40.0)  # no edge between 30 and 40 keV


def test_cell_materials_order_and_vacuum():
    mu = {n: attenuation(n, 35.0) for n in MATERIALS}
    assert mu["vacuum"] == 0.0 and refractive_decrement("pore", 35.0) == 0.0
    # dense Cu ≫ steel (Fe) > CuS ≫ Li2S ~ Li3PS4 > carbon > Li metal
    assert mu["Cu"] > mu["stainless_steel"] > mu["CuS"] > mu["Li3PS4"] > mu["carbon_black"] > mu["Li"]
    assert 20 < mu["CuS"] < 30 and 1.5 < mu["Li3PS4"] < 3
    with pytest.raises(ValueError, match="vacuum"):
        delta_beta_ratio("air", 35.0)


def test_phase_properties_lookup():
    schema = {0: "pore", 1: "Li3PS4", 2: "CuS", 4: Material("Cu foil", "Cu", 8.96)}
    mu, delta = phase_properties(schema, 35.0)
    assert mu.shape == delta.shape == (5,)
    assert mu[0] == 0.0 and delta[0] == 0.0
    assert mu[2] == pytest.approx(attenuation("CuS", 35.0))
    assert delta[1] == pytest.approx(refractive_decrement("Li3PS4", 35.0))
    assert mu[4] == pytest.approx(attenuation("Cu", 35.0))
    assert np.isnan(mu[3]) and np.isnan(delta[3])  # label absent from the schema
    labels = np.array([[0, 1], [2, 4]])
    assert mu[labels][1, 0] == mu[2]


def test_bad_inputs_are_named():
    with pytest.raises(KeyError, match="unobtainium"):
        get_material("unobtainium")
    with pytest.raises(ValueError, match="energy_keV"):
        attenuation("Cu", -1.0)
    with pytest.raises(ValueError, match="label"):
        phase_properties({-1: "Cu"}, 35.0)
    with pytest.raises(ValueError, match="density"):
        Material("x", "Cu", 0.0)
    assert get_material("Electrolyte") is MATERIALS["Li3PS4"]

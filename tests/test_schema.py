"""Label schemas (tomopipe.schema): roles, storage in attributes, missing classes."""

import copy
import json
import pickle

import numpy as np
import pytest
import zarr

from tomopipe.errors import TomopipeError
from tomopipe.schema import (
    CUS_SEGMENTATION,
    OUTSIDE,
    SIMULATOR_TRUTH,
    UNREVIEWED,
    LabelSchema,
    LabelSchemaError,
    MissingClassError,
    as_schema,
)


def test_a_schema_is_a_mapping_with_roles():
    s = LabelSchema({"pore": 0, "NMC": 1, "binder": 2})
    assert s["NMC"] == 1 and dict(s) == {"pore": 0, "NMC": 1, "binder": 2}
    assert list(s) == ["pore", "NMC", "binder"] and len(s) == 3 and "binder" in s
    assert s == {"pore": 0, "NMC": 1, "binder": 2}  # compares with a plain mapping
    assert s.void == ("pore",) and s.solid == ("NMC", "binder")
    assert s.outside is None and s.crack is None
    assert s.values_of(("pore", "binder")) == (0, 2)
    assert s.name_of(2) == "binder" and s.name_of(9) is None
    assert s.get("carbon", -1) == -1


def test_cus_and_simulator_schemas():
    assert CUS_SEGMENTATION.void == ("pore", "crack") and CUS_SEGMENTATION.crack == "crack"
    assert CUS_SEGMENTATION.outside == "outside" and CUS_SEGMENTATION["outside"] == OUTSIDE == 255
    assert "crack" not in CUS_SEGMENTATION.solid and "pore" not in CUS_SEGMENTATION.sample[-1:]
    assert SIMULATOR_TRUTH.void == ("pore",) and SIMULATOR_TRUTH.crack is None
    assert "carbon" in SIMULATOR_TRUTH.solid
    # the modules that used to own them re-export these instances
    from tomopipe.segment import DEFAULT_SCHEMA, UNLABELLED
    from tomopipe.simulate import LABELS

    assert DEFAULT_SCHEMA is CUS_SEGMENTATION and LABELS is SIMULATOR_TRUTH
    assert UNLABELLED == UNREVIEWED == 254


def test_explicit_roles():
    s = LabelSchema({"void": 0, "can": 1, "electrode": 2, "air": 3}, void="void", outside="air")
    assert s.void == ("void",) and s.outside == "air" and s.solid == ("can", "electrode")
    assert s.sample == ("void", "can", "electrode")
    # an outside class found by its conventional value
    assert LabelSchema({"pore": 0, "bg": 255}).outside == "bg"
    assert LabelSchema({"pore": 0, "bg": 255}, outside="").outside is None


def test_storage_in_attributes_round_trip(tmp_path):
    s = LabelSchema({"void": 0, "can": 1, "electrode": 2, "air": 255}, void=["void"],
                    name="cylindrical cell")
    attrs = s.to_attrs()
    assert attrs["labels"] == {"void": 0, "can": 1, "electrode": 2, "air": 255}
    json.dumps(attrs)  # JSON-ready
    z = zarr.create_array(str(tmp_path / "l.zarr"), shape=(2, 2, 2), dtype="uint8")
    z.attrs.update(attrs)
    back = LabelSchema.from_attrs(dict(zarr.open_array(str(tmp_path / "l.zarr")).attrs))
    assert back == s and back.name == "cylindrical cell" and back.outside == "air"
    assert as_schema(None, array=zarr.open_array(str(tmp_path / "l.zarr"))) == s
    # the plain {"labels": {name: value}} attributes of earlier versions
    old = LabelSchema.from_attrs({"labels": {"pore": 0, "active": 2, "crack": 7, "outside": 255}})
    assert old.void == ("pore", "crack") and old.crack == "crack" and old.outside == "outside"
    assert as_schema({"labels": dict(CUS_SEGMENTATION)}) == CUS_SEGMENTATION


def test_pickle_copy_hash():
    s = CUS_SEGMENTATION
    assert pickle.loads(pickle.dumps(s)) == s
    assert copy.deepcopy(s) is s
    assert hash(s) == hash(LabelSchema(dict(s)))
    assert len({s, LabelSchema(dict(s))}) == 1


def test_require_names_what_is_missing():
    s = LabelSchema({"pore": 0, "NMC": 1, "binder": 2})
    assert s.require("pore", void=True) is s
    with pytest.raises(MissingClassError) as info:
        s.require("inclusion", "active", outside=True, metric="inclusion_stats")
    msg = str(info.value)
    assert "inclusion_stats" in msg and "'inclusion'" in msg and "'active'" in msg
    assert "<outside class>" in msg and "{pore: 0, NMC: 1, binder: 2}" in msg
    assert info.value.missing == ("inclusion", "active", "<outside class>")
    assert isinstance(info.value, TomopipeError) and isinstance(info.value, KeyError)
    with pytest.raises(MissingClassError, match="'carbon'"):
        s["carbon"]
    with pytest.raises(MissingClassError, match="<void class>"):
        LabelSchema({"a": 1}).require(void=True)


@pytest.mark.parametrize("classes, kw, match", [
    ({}, {}, "non-empty"),
    ({"a": 0, "b": 0}, {}, "share the label value"),
    ({"a": 254}, {}, "reserved"),
    ({"a": 256}, {}, "0 … 255"),
    ({"a": 1.5}, {}, "integer"),
    ({"a": True}, {}, "integer"),
    ({"": 1}, {}, "non-empty str"),
    ({"a": 0}, {"void": "b"}, "void class"),
    ({"a": 0, "b": 1}, {"void": "a", "solid": ("a", "b")}, "solid and void"),
    ({"a": 0, "b": 1}, {"void": "a", "outside": "a"}, "outside and void"),
    ({"a": 0, "b": 1}, {"void": "a", "crack": "b"}, "crack class"),
])
def test_bad_schemas(classes, kw, match):
    with pytest.raises(LabelSchemaError, match=match):
        LabelSchema(classes, **kw)


def test_as_schema():
    assert as_schema(CUS_SEGMENTATION) is CUS_SEGMENTATION
    assert as_schema({"pore": 0, "x": np.uint8(1)})["x"] == 1
    assert as_schema(None, default=SIMULATOR_TRUTH) is SIMULATOR_TRUTH
    with pytest.raises(LabelSchemaError, match="no label schema"):
        as_schema(None, array=np.zeros((2, 2, 2)))
    with pytest.raises(LabelSchemaError, match="must be a LabelSchema"):
        as_schema(["pore"])
    with pytest.raises(LabelSchemaError, match="no label schema in the attributes"):
        LabelSchema.from_attrs({"units": "1/cm"})

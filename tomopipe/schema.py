"""Label schemas: what the values of a label volume mean.

A label volume ``(z, y, x)`` of uint8 holds one value per voxel; its :class:`LabelSchema` says
which class each value is and what role the class plays:

- *void* classes (``pore``, ``crack``): empty space; porosity and pore sizes count all of them;
- *solid* phases (``electrolyte``, ``active``, ``NMC``, ``binder`` …): everything that is neither
  void nor outside;
- the *outside* class (``outside``, value 255 by convention): air around the sample, left out
  of every fraction;
- the *crack* class, when a segmentation separates cracks from pores (it is also void).

Two values are reserved: :data:`UNREVIEWED` (254) marks voxels of sparse annotations or
corrections that nobody labelled (never a class), :data:`OUTSIDE` (255) is the conventional
value of the outside class.

One schema is stored with every labels array (:meth:`LabelSchema.to_attrs`, read back with
:meth:`LabelSchema.from_attrs`, which also reads the plain ``{"labels": {name: value}}``
attributes written by earlier versions). Functions that need classes ask the schema
(:meth:`LabelSchema.require`), which names what is missing.

Instances: :data:`CUS_SEGMENTATION` (the classes of the segmentation models of the CuS cell)
and :data:`SIMULATOR_TRUTH` (the ground truth of :mod:`tomopipe.simulate`).
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import TomopipeError

__all__ = [
    "UNREVIEWED",
    "OUTSIDE",
    "VOID_NAMES",
    "LabelSchema",
    "LabelSchemaError",
    "MissingClassError",
    "as_schema",
    "CUS_SEGMENTATION",
    "SIMULATOR_TRUTH",
]

#: Label value of voxels nobody labelled (sparse annotations, unreviewed corrections).
UNREVIEWED = 254
#: Conventional label value of the "outside the sample" class.
OUTSIDE = 255
#: Class names taken as void when a schema is built without an explicit ``void=``.
VOID_NAMES = ("pore", "crack", "void")

_ATTRS_KEY = "label_schema"
_VERSION = 1


class LabelSchemaError(TomopipeError, ValueError):
    """A label schema is malformed (bad value, duplicate value, unknown role name)."""


class MissingClassError(LabelSchemaError, KeyError):
    """A metric needs a class (or a role: void, outside, crack) that the schema lacks.

    Attributes
    ----------
    missing : tuple of str
        The class names (or ``"<void class>"``, ``"<outside class>"``) that are missing.
    """

    def __init__(self, message, missing=()):
        self.missing = tuple(missing)
        super().__init__(message)

    def __str__(self):  # KeyError would repr() the message
        return self.args[0]


def _names(value, what):
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    try:
        out = tuple(value)
    except TypeError:
        raise LabelSchemaError(f"{what} must be a class name or a sequence of them, got {value!r}") from None
    for n in out:
        if not isinstance(n, str):
            raise LabelSchemaError(f"{what} must hold class names (str), got {n!r}")
    return out


class LabelSchema(Mapping):
    """Classes of a label volume (name → label value) and their roles.

    A read-only mapping ``name -> int``, so ``schema["pore"]``, ``dict(schema)``, ``"crack" in
    schema`` and iteration in class order work as with a dict.

    Parameters
    ----------
    classes : mapping of str to int
        Class name → label value, 0 … 255 except :data:`UNREVIEWED` (254); values unique.
    void : str or sequence of str, optional
        Void classes. Default: the classes named ``pore``, ``crack`` or ``void`` present.
    outside : str or None, optional
        The class outside the sample. Default: the class named ``outside`` if present, else
        the class of value :data:`OUTSIDE` (255) if any, else none. Pass ``""`` for none.
    solid : str or sequence of str, optional
        Solid phases. Default: every class that is neither void nor outside.
    crack : str or None, optional
        The void class that holds cracks (a segmentation that tells cracks from pores).
        Default: ``"crack"`` if it is a void class, else none. Pass ``""`` for none.
    name : str, optional
        A short name used in messages (e.g. ``"CuS segmentation"``).

    Raises
    ------
    LabelSchemaError
        If `classes` is empty, a name is not a non-empty str, a value is not an integer in
        0 … 255, is 254 or repeats, a role names a class not in `classes`, or roles overlap
        (a class both void and solid, the outside class void or solid, a crack class not void).

    Examples
    --------
    >>> s = LabelSchema({"pore": 0, "NMC": 1, "binder": 2})
    >>> s["NMC"], s.void, s.solid, s.outside
    (1, ('pore',), ('NMC', 'binder'), None)
    >>> LabelSchema.from_attrs(s.to_attrs()) == s
    True
    """

    __slots__ = ("_classes", "_void", "_solid", "_outside", "_crack", "_name")

    def __init__(self, classes, *, void=None, outside=None, solid=None, crack=None, name=None):
        if isinstance(classes, LabelSchema):
            void = classes.void if void is None else void
            outside = (classes.outside or "") if outside is None else outside
            solid = classes.solid if solid is None else solid
            crack = (classes.crack or "") if crack is None else crack
            name = classes.name if name is None else name
        if not isinstance(classes, Mapping) or len(classes) == 0:
            raise LabelSchemaError(f"a label schema needs a non-empty mapping class name -> label value, got {classes!r}")
        out = {}
        for key, value in classes.items():
            if not isinstance(key, str) or not key:
                raise LabelSchemaError(f"label schema: class names must be non-empty str, got {key!r}")
            if isinstance(value, bool) or not hasattr(value, "__index__"):
                raise LabelSchemaError(f"label schema: the value of class {key!r} must be an integer, got {value!r}")
            value = int(value.__index__())
            if not 0 <= value <= 255:
                raise LabelSchemaError(f"label schema: the value of class {key!r} must be in 0 … 255 (uint8), got {value}")
            if value == UNREVIEWED:
                raise LabelSchemaError(
                    f"label schema: class {key!r} has value {UNREVIEWED}, which is reserved for "
                    "unreviewed voxels")
            out[key] = value
        values = list(out.values())
        dup = sorted({v for v in values if values.count(v) > 1})
        if dup:
            names = [k for k, v in out.items() if v in dup]
            raise LabelSchemaError(f"label schema: classes {names} share the label value(s) {dup}")
        self._classes = out
        self._name = None if name is None else str(name)

        def check(names, role):
            bad = [n for n in names if n not in out]
            if bad:
                raise LabelSchemaError(f"label schema: {role} class(es) {bad} not among the classes {list(out)}")
            return tuple(dict.fromkeys(names))

        if outside is None:
            outside = "outside" if "outside" in out else next((k for k, v in out.items() if v == OUTSIDE), "")
        if not isinstance(outside, str):
            raise LabelSchemaError(f"label schema: outside must be a class name or None, got {outside!r}")
        self._outside = check((outside,), "outside")[0] if outside else None
        void_names = _names(void, "void")
        if void_names is None:
            void_names = tuple(n for n in out if n in VOID_NAMES)
        self._void = check(void_names, "void")
        if self._outside in self._void:
            raise LabelSchemaError(f"label schema: class {self._outside!r} cannot be both outside and void")
        solid_names = _names(solid, "solid")
        if solid_names is None:
            solid_names = tuple(n for n in out if n not in self._void and n != self._outside)
        self._solid = check(solid_names, "solid")
        both = [n for n in self._solid if n in self._void or n == self._outside]
        if both:
            raise LabelSchemaError(f"label schema: class(es) {both} cannot be solid and void/outside at once")
        if crack is None:
            crack = "crack" if "crack" in self._void else ""
        if not isinstance(crack, str):
            raise LabelSchemaError(f"label schema: crack must be a class name or None, got {crack!r}")
        if crack and crack not in self._void:
            raise LabelSchemaError(f"label schema: the crack class {crack!r} must be one of the void classes {list(self._void)}")
        self._crack = crack or None

    # ---- Mapping --------------------------------------------------------------------------
    def __getitem__(self, key):
        try:
            return self._classes[key]
        except KeyError:
            raise MissingClassError(
                f"class {key!r} is not in the label schema {self._describe()}", (key,)) from None

    def __iter__(self):
        return iter(self._classes)

    def __len__(self):
        return len(self._classes)

    def __contains__(self, key):
        return key in self._classes

    def __eq__(self, other):
        if isinstance(other, LabelSchema):
            return (self._classes == other._classes and set(self._void) == set(other._void)
                    and set(self._solid) == set(other._solid) and self._outside == other._outside
                    and self._crack == other._crack)
        if isinstance(other, Mapping):
            return self._classes == dict(other)
        return NotImplemented

    def __hash__(self):
        return hash((tuple(self._classes.items()), frozenset(self._void), frozenset(self._solid),
                     self._outside, self._crack))

    def __repr__(self):
        extra = f", name={self._name!r}" if self._name else ""
        return (f"LabelSchema({self._classes!r}, void={self._void!r}, outside={self._outside!r}, "
                f"crack={self._crack!r}{extra})")

    def __reduce__(self):
        return (_rebuild, (self._classes, self._void, self._outside or "", self._solid,
                           self._crack or "", self._name))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    # ---- roles ----------------------------------------------------------------------------
    @property
    def name(self):
        """Short name of the schema (None if not given)."""
        return self._name

    @property
    def void(self):
        """Names of the void classes (tuple, class order)."""
        return self._void

    @property
    def solid(self):
        """Names of the solid phases (tuple)."""
        return self._solid

    @property
    def outside(self):
        """Name of the outside class, or None."""
        return self._outside

    @property
    def crack(self):
        """Name of the crack class (a void class), or None."""
        return self._crack

    @property
    def sample(self):
        """Names of the classes inside the sample (all but the outside class)."""
        return tuple(n for n in self._classes if n != self._outside)

    def values_of(self, names):
        """Label values of the classes `names` (a name or a sequence), as a tuple of int.

        Raises
        ------
        MissingClassError
            If a name is not in the schema.
        """
        names = _names(names, "names") or ()
        self.require(*names)
        return tuple(self._classes[n] for n in names)

    def name_of(self, value):
        """Class name of a label value (None for a value not in the schema)."""
        for k, v in self._classes.items():
            if v == int(value):
                return k
        return None

    def require(self, *names, void=False, outside=False, crack=False, solid=False, metric=None):
        """Check that the schema has the classes (and roles) a metric needs.

        Parameters
        ----------
        *names : str
            Class names that must be present.
        void, outside, crack, solid : bool
            Whether at least one void class / an outside class / a crack class / a solid
            phase is needed.
        metric : str, optional
            What needs them, for the message (e.g. ``"inclusion_stats"``).

        Returns
        -------
        LabelSchema
            ``self``, to chain.

        Raises
        ------
        MissingClassError
            Naming every missing class or role and the classes the schema has.

        Examples
        --------
        >>> LabelSchema({"pore": 0, "NMC": 1}).require("inclusion", "active", metric="inclusions")
        Traceback (most recent call last):
        ...
        tomopipe.schema.MissingClassError: inclusions needs the class(es) 'inclusion', 'active', missing from the label schema {pore: 0, NMC: 1}
        """
        missing = [n for n in names if n not in self._classes]
        if void and not self._void:
            missing.append("<void class>")
        if outside and self._outside is None:
            missing.append("<outside class>")
        if crack and self._crack is None:
            missing.append("<crack class>")
        if solid and not self._solid:
            missing.append("<solid phase>")
        if missing:
            who = metric or "this metric"
            raise MissingClassError(
                f"{who} needs the class(es) {', '.join(repr(m) for m in missing)}, missing from the "
                f"label schema {self._describe()}", missing)
        return self

    def _describe(self):
        inner = ", ".join(f"{k}: {v}" for k, v in self._classes.items())
        return f"{{{inner}}}"

    # ---- storage --------------------------------------------------------------------------
    def to_attrs(self):
        """The schema as JSON-ready attributes of a labels array.

        Returns
        -------
        dict
            ``{"labels": {name: value}, "label_schema": {"version": 1, "classes": {...},
            "void": [...], "solid": [...], "outside": name or None, "crack": name or None,
            "unreviewed": 254, "name": ...}}``. The ``labels`` key keeps readers of the plain
            name → value attribute working.
        """
        return {
            "labels": dict(self._classes),
            _ATTRS_KEY: {
                "version": _VERSION,
                "classes": dict(self._classes),
                "void": list(self._void),
                "solid": list(self._solid),
                "outside": self._outside,
                "crack": self._crack,
                "unreviewed": UNREVIEWED,
                "name": self._name,
            },
        }

    @classmethod
    def from_attrs(cls, attrs):
        """Read a schema from the attributes of a labels array (or group).

        Parameters
        ----------
        attrs : mapping
            Attributes holding ``label_schema`` (written by :meth:`to_attrs`) or the plain
            ``labels`` mapping name → value of earlier versions (roles then follow the
            defaults of :class:`LabelSchema`).

        Returns
        -------
        LabelSchema

        Raises
        ------
        LabelSchemaError
            If `attrs` holds neither key, or what it holds is not a valid schema.
        """
        if not isinstance(attrs, Mapping):
            raise LabelSchemaError(f"label schema attributes must be a mapping, got {type(attrs).__name__}")
        full = attrs.get(_ATTRS_KEY)
        if isinstance(full, Mapping):
            if "classes" not in full:
                raise LabelSchemaError(f"attribute {_ATTRS_KEY!r} has no 'classes'")
            return cls(full["classes"], void=full.get("void"), outside=full.get("outside") or "",
                       solid=full.get("solid"), crack=full.get("crack") or "", name=full.get("name"))
        plain = attrs.get("labels")
        if isinstance(plain, Mapping):
            return cls(plain)
        raise LabelSchemaError(
            f"no label schema in the attributes (expected {_ATTRS_KEY!r} or 'labels'; keys: "
            f"{sorted(map(str, attrs))})")


def _rebuild(classes, void, outside, solid, crack, name):
    return LabelSchema(classes, void=void, outside=outside, solid=solid, crack=crack, name=name)


def as_schema(schema, *, array=None, default=None, name="schema"):
    """A :class:`LabelSchema` from what a caller passed.

    Parameters
    ----------
    schema : LabelSchema, mapping or None
        A schema; a plain mapping class name → value; the attributes of a labels array
        (a mapping holding ``label_schema`` or ``labels``); or None.
    array : object, optional
        With ``schema=None``: an array whose ``attrs`` (zarr) may hold the schema.
    default : LabelSchema, optional
        Used when `schema` is None and `array` carries none.
    name : str
        Parameter name for messages.

    Returns
    -------
    LabelSchema

    Raises
    ------
    LabelSchemaError
        If nothing gives a schema, or what is given is not a valid one.
    """
    if isinstance(schema, LabelSchema):
        return schema
    if schema is None:
        attrs = getattr(array, "attrs", None)
        if isinstance(attrs, Mapping) or hasattr(attrs, "asdict"):
            attrs = dict(attrs)
            if _ATTRS_KEY in attrs or isinstance(attrs.get("labels"), Mapping):
                return LabelSchema.from_attrs(attrs)
        if default is None:
            raise LabelSchemaError(f"{name}: no label schema given and none stored with the labels")
        return as_schema(default, name=name)
    if isinstance(schema, Mapping):
        if _ATTRS_KEY in schema or isinstance(schema.get("labels"), Mapping):
            return LabelSchema.from_attrs(schema)
        return LabelSchema(schema)
    raise LabelSchemaError(
        f"{name} must be a LabelSchema, a mapping class name -> label value or labels-array "
        f"attributes, got {type(schema).__name__}")


#: Classes of the segmentation of the CuS cell (what the U-Net and the baselines write).
#: Carbon black is not a class: at ~1 µm voxels its 1-voxel aggregates (μ ≈ 0.4 /cm at
#: 35 keV, a fifth of the electrolyte's) are not resolved from pores, so it is part of
#: ``pore`` (the pore + carbon-binder domain). Void: ``pore`` and ``crack``.
CUS_SEGMENTATION = LabelSchema(
    {
        "pore": 0,
        "electrolyte": 1,
        "active": 2,
        "inclusion": 3,
        "lithium": 5,
        "current_collector": 6,
        "crack": 7,
        "outside": OUTSIDE,
    },
    name="CuS segmentation",
)

#: Classes of the simulator's ground truth (:mod:`tomopipe.simulate`): ``pore`` holds pores
#: *and* cracks (their ids are in the truth's ``crack_ids``); carbon is a solid phase.
SIMULATOR_TRUTH = LabelSchema(
    {
        "pore": 0,
        "electrolyte": 1,
        "active": 2,
        "inclusion": 3,
        "carbon": 4,
        "lithium": 5,
        "current_collector": 6,
        "outside": OUTSIDE,
    },
    name="simulator truth",
)

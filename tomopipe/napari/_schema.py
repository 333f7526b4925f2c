"""The label schema of a labels array as the plugin uses it: class names, values, roles, colours.

Everything the plugin knows about a schema goes through :func:`label_schema`, so that it can
switch to the schema module of the package in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["NOT_REVIEWED", "OUTSIDE", "Schema", "label_schema", "label_colours"]

#: Value of voxels nobody reviewed in a corrections array (ignored by training).
NOT_REVIEWED = 254
#: Value of voxels outside the sample.
OUTSIDE = 255

#: Fixed colours of the classes tomopipe's models know (the CuS cell); other classes take the
#: palette below by their value, so a colour never depends on which classes a view holds.
_CLASS_COLOURS = {
    "pore": "#3b6fd8",
    "crack": "#ff3b1f",
    "electrolyte": "#8fd14f",
    "active": "#ffd92f",
    "inclusion": "#e7298a",
    "lithium": "#4fd6c4",
    "current_collector": "#b0b0b0",
    "carbon": "#7a4a2a",
    "binder": "#c59ee8",
    "outside": "#00000000",
}
_PALETTE = ("#1b9e77", "#d95f02", "#7570b3", "#e6ab02", "#a6761d", "#66a61e", "#e41a1c", "#377eb8",
            "#984ea3", "#ff7f00", "#a65628", "#f781bf")
_VOID_NAMES = ("pore", "crack", "void", "porosity")
_OUTSIDE_NAMES = ("outside", "air", "background")


@dataclass(frozen=True)
class Schema:
    """A label schema with the roles the plugin needs.

    Attributes
    ----------
    classes : dict of str to int
        Class name → label value (uint8), in the stored order.
    void : tuple of str
        Classes counted as void (porosity).
    outside : tuple of str
        Classes that are not the sample (excluded from fractions).
    """

    classes: dict = field(default_factory=dict)
    void: tuple = ()
    outside: tuple = ()

    @property
    def values(self):
        """Label values of the classes (list of int)."""
        return list(self.classes.values())

    def name_of(self, value):
        """Class name of a label value, ``"not reviewed"`` for 254, else ``str(value)``."""
        for k, v in self.classes.items():
            if v == int(value):
                return k
        return "not reviewed" if int(value) == NOT_REVIEWED else str(int(value))


def label_schema(attrs):
    """The schema of a labels array from its attributes.

    Parameters
    ----------
    attrs : mapping
        Attributes of a ``labels`` array (or its group): ``labels`` = {class name: value}.

    Returns
    -------
    Schema or None
        None when the attributes hold no schema.
    """
    raw = dict(attrs).get("labels")
    if not isinstance(raw, dict) or not raw:
        return None
    classes = {str(k): int(v) for k, v in raw.items()}
    void = tuple(c for c in classes if c in _VOID_NAMES)
    outside = tuple(c for c in classes if c in _OUTSIDE_NAMES or classes[c] == OUTSIDE)
    return Schema(classes=classes, void=void, outside=outside)


def label_colours(schema, *, not_reviewed="transparent"):
    """Fixed colours of a schema's label values (a napari direct label colormap as a dict).

    Parameters
    ----------
    schema : Schema
    not_reviewed : str
        Colour of 254.

    Returns
    -------
    dict
        ``{value: colour}`` with ``None`` (values outside the schema) transparent.

    Examples
    --------
    >>> c = label_colours(Schema({"pore": 0, "solid": 1}))
    >>> c[0], c[1], c[254]
    ('#3b6fd8', '#d95f02', 'transparent')
    """
    out = {None: "transparent", NOT_REVIEWED: not_reviewed}
    for name, value in schema.classes.items():
        out[value] = _CLASS_COLOURS.get(name, _PALETTE[value % len(_PALETTE)])
    out.setdefault(OUTSIDE, "transparent")
    return out

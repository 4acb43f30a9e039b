"""OPC UA companion specification NodeSets shipped with linectl (unchanged, with their licence).

:data:`PACKML_NODESET` is OPC 30050 (PackML) 1.01; ``PackML/README.md`` says where it comes
from. The files are package data, so they are found from an installed package as well.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable

PACKML_NODESET: Traversable = resources.files(__name__).joinpath(
    "PackML", "Opc.Ua.PackML.NodeSet2.xml"
)

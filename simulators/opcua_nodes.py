"""Small helpers the OPC UA simulators share: node creation with readable string NodeIds,
method argument descriptions, and checking a method's string and numeric arguments."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from asyncua import Node, Server, ua

MethodCallback = Callable[..., Awaitable[Any]]


def arg(
    name: str, description: str, data_type: int = ua.ObjectIds.String, array: bool = False
) -> ua.Argument:
    return ua.Argument(
        Name=name,
        DataType=ua.NodeId(data_type),
        ValueRank=ua.ValueRank.OneDimension if array else ua.ValueRank.Scalar,
        ArrayDimensions=[0] if array else [],
        Description=ua.LocalizedText(description),
    )


def array(name: str, description: str, data_type: int = ua.ObjectIds.String) -> ua.Argument:
    return arg(name, description, data_type, array=True)


def bad(code: int) -> ua.StatusCode:
    return ua.StatusCode(code)


def string_args(args: tuple[Any, ...], count: int) -> list[str] | ua.StatusCode:
    """Method input arguments as strings, or the Bad status to answer with."""
    if len(args) < count:
        return bad(ua.StatusCodes.BadArgumentsMissing)
    if len(args) > count:
        return bad(ua.StatusCodes.BadTooManyArguments)
    values: list[str] = []
    for a in args:
        value = a.Value if isinstance(a, ua.Variant) else a
        if not isinstance(value, str):
            return bad(ua.StatusCodes.BadInvalidArgument)
        values.append(value)
    return values


def double_args(args: tuple[Any, ...], count: int) -> list[float] | ua.StatusCode:
    """Method input arguments as finite floats, or the Bad status to answer with."""
    if len(args) < count:
        return bad(ua.StatusCodes.BadArgumentsMissing)
    if len(args) > count:
        return bad(ua.StatusCodes.BadTooManyArguments)
    values: list[float] = []
    for a in args:
        value = a.Value if isinstance(a, ua.Variant) else a
        if isinstance(value, bool) or not isinstance(value, int | float):
            return bad(ua.StatusCodes.BadInvalidArgument)
        if not math.isfinite(value):
            return bad(ua.StatusCodes.BadOutOfRange)
        values.append(float(value))
    return values


class Builder:
    """Creates nodes under one namespace, each with the string NodeId ``<path joined by .>``."""

    def __init__(self, server: Server, idx: int) -> None:
        self.server = server
        self.idx = idx

    def nid(self, path: Sequence[str]) -> ua.NodeId:
        return ua.NodeId(".".join(path), self.idx)

    def qn(self, name: str) -> ua.QualifiedName:
        return ua.QualifiedName(name, self.idx)

    async def obj(self, parent: Node, path: Sequence[str], folder: bool = False) -> Node:
        """An object of ``FolderType`` or ``BaseObjectType``. Neither type has children to copy,
        so the node is added directly: asyncua's instantiation of a type walks every one of its
        subtypes (hundreds for ``BaseObjectType``), some 60 ms per object."""
        if folder:
            return await parent.add_folder(self.nid(path), self.qn(path[-1]))
        return await parent.add_object(self.nid(path), self.qn(path[-1]))

    async def var(
        self,
        parent: Node,
        path: Sequence[str],
        value: Any,
        vtype: ua.VariantType,
        writable: bool = False,
    ) -> Node:
        node = await parent.add_variable(
            self.nid(path), self.qn(path[-1]), value, varianttype=vtype
        )
        if writable:
            await node.set_writable()
        return node

    async def prop(
        self,
        parent: Node,
        path: Sequence[str],
        value: Any,
        vtype: ua.VariantType = ua.VariantType.String,
    ) -> Node:
        return await parent.add_property(
            self.nid(path), self.qn(path[-1]), value, varianttype=vtype
        )

    async def method(
        self,
        parent: Node,
        path: Sequence[str],
        callback: MethodCallback,
        inputs: Sequence[ua.Argument] = (),
        outputs: Sequence[ua.Argument] = (),
    ) -> Node:
        return await parent.add_method(
            self.nid(path), self.qn(path[-1]), callback, list(inputs), list(outputs)
        )

    async def event_type(
        self, name: str, fields: Sequence[tuple[str, ua.VariantType, bool]]
    ) -> Node:
        base = self.server.get_node(ua.ObjectIds.BaseEventType)
        etype = await base.add_object_type(self.nid(["Types", name]), self.qn(name))
        for field_name, vtype, is_array in fields:
            value: Any = [] if is_array else ua.get_default_value(vtype)
            prop = await etype.add_property(
                self.nid(["Types", name, field_name]), self.qn(field_name), value, varianttype=vtype
            )
            if is_array:
                await prop.write_attribute(
                    ua.AttributeIds.ValueRank,
                    ua.DataValue(ua.Variant(ua.ValueRank.OneDimension, ua.VariantType.Int32)),
                )
                await prop.write_attribute(
                    ua.AttributeIds.ArrayDimensions,
                    ua.DataValue(ua.Variant([0], ua.VariantType.UInt32)),
                )
            await prop.set_modelling_rule(True)
        return etype

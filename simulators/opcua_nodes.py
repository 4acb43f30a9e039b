"""Small helpers the OPC UA simulators share: node creation with readable string NodeIds,
method argument descriptions, and checking a method's string and numeric arguments.

They also hold the simulators to OPC UA where asyncua is lenient: array variables and method
argument lists are declared one-dimensional (ValueRank 1, ArrayDimensions [0]);
:func:`answer_not_writable` makes a write to a read-only variable answer ``BadNotWritable``;
and :class:`EventSource` delivers an event to the notifiers above its node as well, up to the
Server object (a notifier hierarchy built with :meth:`Builder.notifier`).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeAlias

from asyncua import Node, Server, ua
from asyncua.server.event_generator import EventGenerator

MethodCallback = Callable[..., Awaitable[Any]]
MethodAnswer: TypeAlias = list[ua.Variant] | ua.StatusCode  # output arguments, or a Bad status


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


UINT32_MAX = 2**32 - 1


def uint32_arg(args: tuple[Any, ...]) -> int | ua.StatusCode:
    """The one UInt32 input argument of a method (a journal's ``Since``), or the Bad status to
    answer with."""
    if not args:
        return bad(ua.StatusCodes.BadArgumentsMissing)
    if len(args) > 1:
        return bad(ua.StatusCodes.BadTooManyArguments)
    value = args[0].Value if isinstance(args[0], ua.Variant) else args[0]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= UINT32_MAX:
        return bad(ua.StatusCodes.BadInvalidArgument)
    return value


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
        if isinstance(value, list):
            await one_dimension(node)
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
        node = await parent.add_method(
            self.nid(path), self.qn(path[-1]), callback, list(inputs), list(outputs)
        )
        for child in await node.get_properties():  # InputArguments, OutputArguments
            await one_dimension(child)
        return node

    async def notifier(self, parent: Node, child: Node) -> None:
        """``parent`` HasNotifier ``child``: events of ``child`` also reach subscribers of
        ``parent`` (through :class:`EventSource`), and ``parent`` accepts event
        subscriptions."""
        await parent.add_reference(child.nodeid, ua.ObjectIds.HasNotifier)
        await parent.set_event_notifier([ua.EventNotifier.SubscribeToEvents])

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
                await one_dimension(prop)
            await prop.set_modelling_rule(True)
        return etype


async def one_dimension(node: Node) -> None:
    """Declare a variable a one-dimensional array of any length (asyncua leaves ValueRank 0,
    "one or more dimensions", which a strict client cannot rely on)."""
    await node.write_attribute(
        ua.AttributeIds.ValueRank,
        ua.DataValue(ua.Variant(ua.ValueRank.OneDimension, ua.VariantType.Int32)),
    )
    await node.write_attribute(
        ua.AttributeIds.ArrayDimensions, ua.DataValue(ua.Variant([0], ua.VariantType.UInt32))
    )


def answer_not_writable(server: Server) -> None:
    """Make a client's write to a variable whose AccessLevel has no CurrentWrite (or to an
    attribute other than Value) answer ``BadNotWritable``, as OPC UA Part 4 asks; asyncua
    answers ``BadUserAccessDenied``, which it keeps for a user denied a writable variable."""
    service = server.iserver.attribute_service
    write = service.write
    aspace = server.iserver.aspace

    def writable(nodeid: ua.NodeId, attribute: int) -> bool:
        if attribute != ua.AttributeIds.Value:
            return False
        level = aspace.read_attribute_value(nodeid, ua.AttributeIds.AccessLevel)
        value = level.Value.Value if level.Value is not None else None
        return isinstance(value, int) and bool(value & (1 << ua.AccessLevel.CurrentWrite))

    async def strict_write(params: ua.WriteParameters, *args: Any, **kwargs: Any) -> Any:
        results: list[ua.StatusCode] = await write(params, *args, **kwargs)
        denied = ua.StatusCodes.BadUserAccessDenied
        return [
            ua.StatusCode(ua.StatusCodes.BadNotWritable)
            if status.value == denied and not writable(item.NodeId, item.AttributeId)
            else status
            for item, status in zip(params.NodesToWrite, results, strict=True)
        ]

    service.write = strict_write


class EventSource:
    """An event generator whose events reach the subscribers of its own node and of every
    notifier above it (inverse HasNotifier/HasEventSource references up to the Server object).
    asyncua delivers an event only to subscriptions on the node it is emitted from; a client
    that subscribes to the Server object alone is entitled to every event (Part 3, 7.16)."""

    def __init__(self, generator: EventGenerator, notifiers: Sequence[ua.NodeId]) -> None:
        self._generator = generator
        self._notifiers = tuple(notifiers)

    @property
    def event(self) -> Any:
        return self._generator.event

    async def trigger(self, time_attr: datetime, message: str) -> None:
        await self._generator.trigger(time_attr=time_attr, message=message)
        event = self._generator.event
        own = event.emitting_node
        service = self._generator.isession.subscription_service
        try:
            for nodeid in self._notifiers:
                event.emitting_node = nodeid
                await service.trigger_event(event)
        finally:
            event.emitting_node = own


async def event_source(server: Server, event_type: Node, node: Node) -> EventSource:
    """An :class:`EventSource` for events of ``event_type`` emitted by ``node``."""
    generator = await server.get_event_generator(event_type, node.nodeid)
    notifiers: list[ua.NodeId] = []
    todo = [node]
    while todo:
        parents = await todo.pop().get_referenced_nodes(
            ua.ObjectIds.HasEventSource, ua.BrowseDirection.Inverse, includesubtypes=True
        )
        for parent in parents:
            if parent.nodeid not in notifiers and parent.nodeid != node.nodeid:
                notifiers.append(parent.nodeid)
                todo.append(parent)
    return EventSource(generator, notifiers)

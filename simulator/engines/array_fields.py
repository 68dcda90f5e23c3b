"""Structs of arrays whose fields compiled code can read without counting references.

NOTE: for performance reasons. numba's structref reads a field by asking the runtime for the
struct's data (which it refuses to do in code compiled without reference counting) and
returns the field as a new reference: each read increments the field array's reference count
and a later decrement undoes it, both atomic calls into the runtime. The fast kernel reads
several fields in every step of every event, and those calls took about a third of a run at a
million users (perf). A type registered with `register` reads its fields by loading the data
pointer from the struct's memory info directly, so that code compiled with
`compiled(reference_counted=False)` can read them, and there borrows them. It is safe as long
as such code neither keeps a field across a call that replaces it, nor replaces one itself
(writing a field still needs reference counting: compiling it without is an error).

numba's on-disk cache of the kernel does not see this file: after editing it, clear
`simulator/engines/__pycache__`.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numba.core.cgutils
import numba.core.datamodel
import numba.core.extending
import numba.core.imputils
import numba.core.runtime.nrtdynmod
import numba.core.typing.templates
from numba.core import types

# numba's extension API is untyped: these names stand for it.
cgutils: Any = numba.core.cgutils
datamodel: Any = numba.core.datamodel
extending: Any = numba.core.extending
imputils: Any = numba.core.imputils
templates: Any = numba.core.typing.templates
MEMINFO: Any = numba.core.runtime.nrtdynmod._meminfo_struct_type
"""The runtime's layout of a memory info: its fourth member points to the data."""

T = TypeVar("T", bound=type)


class ArrayFields(types.StructRef):
    """A structref type whose fields are typed by their values, not as literals."""

    def preprocess_fields(self, fields: Any) -> Any:
        return tuple((name, types.unliteral(typ)) for name, typ in fields)  # type: ignore[no-untyped-call]


def _fields(context: Any, builder: Any, typ: Any, value: Any) -> Any:
    """The struct's fields, in the memory its memory info points to."""
    meminfo = cgutils.create_struct_proxy(typ)(context, builder, value=value).meminfo
    info = builder.bitcast(meminfo, MEMINFO.as_pointer())
    data = builder.load(cgutils.gep(builder, info, 0, 3))
    payload = typ.get_data_type()
    pointer = builder.bitcast(data, context.data_model_manager[payload].get_value_type().as_pointer())
    return cgutils.create_struct_proxy(payload)(context, builder, ref=pointer)


def register(struct_type: T) -> T:
    """Register an `ArrayFields` subclass for compiled code (as `structref.register` does)."""
    datamodel.default_manager.register(struct_type, datamodel.models.StructRefModel)

    @templates.infer_getattr
    class _FieldType(templates.AttributeTemplate):  # type: ignore[misc]
        key = struct_type

        def generic_resolve(self, typ: Any, attr: str) -> Any:
            return typ.field_dict.get(attr)

    def _read(context: Any, builder: Any, typ: Any, value: Any, attr: str) -> Any:
        field = getattr(_fields(context, builder, typ, value), attr)
        # With reference counting, a read is a new reference, as numba's own structref gives.
        return imputils.impl_ret_borrowed(context, builder, typ.field_dict[attr], field)

    def _write(context: Any, builder: Any, sig: Any, args: Any, attr: str) -> None:
        struct, new_type = sig.args
        fields = _fields(context, builder, struct, args[0])
        new = context.cast(builder, args[1], new_type, struct.field_dict[attr])
        old = getattr(fields, attr)
        context.nrt.incref(builder, new_type, new)  # raises when compiled without counting
        context.nrt.decref(builder, new_type, old)  # after the incref: new may be old
        setattr(fields, attr, new)

    extending.lower_getattr_generic(struct_type)(_read)
    extending.lower_setattr_generic(struct_type)(_write)
    return struct_type

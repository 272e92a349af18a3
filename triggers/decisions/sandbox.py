"""A Jinja2 sandbox whose renders are bounded in time and memory.

Jinja's ``ImmutableSandboxedEnvironment`` stops a template from reaching Python objects;
it does not stop one from spending seconds or gigabytes: ``{{ 9**64**64**64**64 }}``,
three nested ``range(100000)`` loops or ``'x'|center(10**8)`` each did in an attacker's
test. Here every render carries a :class:`RenderMeter` that counts, against
:class:`RenderLimits`:

- **operations**: a loop iteration (and each item a ``{% for ... if %}`` tests), an
  intercepted operator (``* ** + %``) and a filter, which also costs one operation per
  :data:`CHARS_PER_OPERATION` characters it reads or builds, are one each; a call
  (macros, methods, globals) is :data:`CALL_OPERATIONS`;
- **output**: every character written by an output node, wherever it goes (the
  template's own output, a macro's, a ``{% set %}`` block's), counted as it is written;
- **values**: a string or container built by an operator, a filter, a call or ``~``
  may not exceed ``max_value_chars`` (measured by :func:`value_size`); an integer power
  or product may not exceed ``max_int_bits``; arguments that would make a builtin
  allocate more than that (``center(10**8)``, ``'%*d'``, ``batch(10**8)``) are refused
  *before* the allocation;
- **ranges**: ``range()`` yields at most ``max_range`` numbers;
- **time** (optional): a clock function passed in by the caller. The module never
  reads a clock itself (the core is pure); with one, a render that passes
  ``timeout_s`` by that clock stops at its next operation.

A violation raises :class:`TemplateLimitError` (a ``SecurityError``), which the content
engine reports as ``template_error`` with its message. Method calls are limited to an
allow-list of side-effect-free methods of strings, numbers and containers
(:data:`SAFE_METHODS`); ``lipsum`` is not available.

The counting is put into the compiled code by transforming the template's syntax tree
(:class:`BoundedCodeGenerator`): loop bodies start with a tick, output and ``~``
expressions go through metering filters. Those filters have names no template can
spell (``geopush.tick``), so a template cannot call or shadow them.
"""

from __future__ import annotations

import math
import operator
import re
import string
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from jinja2 import nodes, pass_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

CHARS_PER_OPERATION: Final = 64
"""A filter or call reading or building this many characters (or items) costs one more
operation: sorting a 1,000-item list is not one step."""

CALL_OPERATIONS: Final = 10
"""What a call costs: a macro call takes ~5 µs, ten times a loop iteration."""

_CLOCK_EVERY: Final = 16
"""Operations between two looks at the clock (a look costs ~50 ns; an operation 0.2 to
0.7 µs)."""


@dataclass(frozen=True, slots=True)
class RenderLimits:
    """What one render (a variant's title and body together) may spend.

    The defaults leave a real push template (a few branches, a loop over the user's tags,
    a few hundred characters) two orders of magnitude of room, and stop a hostile one
    within a few milliseconds and well under a megabyte.
    """

    max_operations: int = 20_000
    """Loop iterations, calls, operators and filters (see the module docstring)."""
    max_output_chars: int = 32_768
    """Characters written by output nodes in all, intermediate buffers included (the
    final title and body have their own, smaller limits)."""
    max_value_chars: int = 16_384
    """Largest string or container (by :func:`value_size`) an operation may build."""
    max_range: int = 1_000
    """Longest ``range()``: a push template has no use for more."""
    max_int_bits: int = 256
    """Largest integer ``**`` or ``*`` may build (about 77 decimal digits)."""
    timeout_s: float = 0.05
    """Wall time per render, enforced only when the caller passes a clock."""


class TemplateLimitError(SecurityError):
    """A render went past one of its :class:`RenderLimits`; the message says which.

    ``spent``: the render was stopped after spending its budget (operations, time or
    output), not refused an allocation before making it (a width, a size, a range).
    """

    def __init__(self, message: str, *, spent: bool = False) -> None:
        super().__init__(message)
        self.spent = spent


class RenderMeter:
    """What one render has spent so far; raises :class:`TemplateLimitError` past a
    limit. ``clock`` (seconds, any origin) enables the time limit."""

    __slots__ = ("_clock", "_deadline", "_next_look", "emitted", "limits", "operations")

    def __init__(self, limits: RenderLimits, clock: Callable[[], float] | None = None) -> None:
        self.limits = limits
        self.operations = 0
        self.emitted = 0
        self._clock = clock
        self._deadline = None if clock is None else clock() + limits.timeout_s
        self._next_look = _CLOCK_EVERY

    def charge(self, operations: int = 1) -> None:
        """Count ``operations``; raise when past the operation or time limit."""
        self.operations += operations
        if self.operations > self.limits.max_operations:
            raise TemplateLimitError(
                f"more than {self.limits.max_operations:,} operations (loops, calls, "
                "filters); simplify the template", spent=True)
        if self._clock is not None and self.operations >= self._next_look:
            self._next_look = self.operations + _CLOCK_EVERY
            assert self._deadline is not None
            if self._clock() > self._deadline:
                raise TemplateLimitError(
                    f"rendering took longer than {self.limits.timeout_s * 1000:g} ms",
                    spent=True)

    def emit(self, chars: int) -> None:
        """Count ``chars`` characters of output."""
        self.emitted += chars
        if self.emitted > self.limits.max_output_chars:
            raise TemplateLimitError(
                f"more than {self.limits.max_output_chars:,} characters of output",
                spent=True)

    def checked(self, value: Any) -> Any:
        """``value``, once it is known to be within ``max_value_chars``; charges one
        operation per :data:`CHARS_PER_OPERATION` characters of it."""
        size = value_size(value, self.limits.max_value_chars)
        if size > self.limits.max_value_chars:
            raise TemplateLimitError(
                f"a value of more than {self.limits.max_value_chars:,} characters")
        if size >= CHARS_PER_OPERATION:
            self.charge(size // CHARS_PER_OPERATION)
        return value

    def allow_size(self, size: int, what: str) -> None:
        """Refuse, before building it, a value of ``size`` characters."""
        if size > self.limits.max_value_chars:
            raise TemplateLimitError(
                f"{what} would build {size:,} characters, more than "
                f"{self.limits.max_value_chars:,}")


def value_size(value: Any, cap: int) -> int:
    """About how many characters ``str(value)`` has, counted up to just past ``cap``
    (a container is not walked further once it is known to be too big). Lazy values
    (ranges, generators) count as a few characters: what they produce is counted when
    something consumes it."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return 8
    if isinstance(value, int):
        return value.bit_length() * 3 // 10 + 1
    if isinstance(value, Mapping):
        total = 2
        for key, item in value.items():
            total += 4 + value_size(key, cap - total) + value_size(item, cap - total)
            if total > cap:
                break
        return total
    if isinstance(value, list | tuple | set | frozenset):
        total = 2
        for item in value:
            total += 2 + value_size(item, cap - total)
            if total > cap:
                break
        return total
    return 8


def _length(value: Any) -> int:
    """Items or characters a filter will read from ``value``, when that is known."""
    if isinstance(value, str | list | tuple | dict | set | frozenset | range):
        return len(value)
    return 0


# --------------------------------------------------------------------------- checks


_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")


def _check_printf(meter: RenderMeter, fmt: str) -> None:
    """Refuse ``'%*d'`` and widths or precisions beyond ``max_value_chars``."""
    for match in _PRINTF.finditer(fmt):
        for group in match.groups():
            if group == "*":
                raise TemplateLimitError("'%*' widths are not allowed in templates")
            if group is not None:
                meter.allow_size(int(group), f"the format width {group}")


def _check_format(meter: RenderMeter, fmt: str) -> None:
    """Refuse nested replacement fields in a format spec (``{:{}}``) and widths
    beyond ``max_value_chars`` in ``str.format`` strings."""
    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError:
        return  # str.format raises the same error itself
    for _, _, spec, _ in parsed:
        if not spec:
            continue
        if "{" in spec:
            raise TemplateLimitError("nested format fields are not allowed in templates")
        for number in _DIGITS.findall(spec):
            meter.allow_size(int(number), f"the format width {number}")


def _int_arg(args: tuple[Any, ...], kwargs: Mapping[str, Any], index: int, name: str,
             default: Any = None) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _pad_check(meter: RenderMeter, value: Any, args: tuple[Any, ...],
               kwargs: Mapping[str, Any], name: str = "width") -> None:
    width = _int_arg(args, kwargs, 0, name)
    if isinstance(width, int):
        meter.allow_size(width, f"a width of {width:,}")


def _replace_check(meter: RenderMeter, value: Any, args: tuple[Any, ...],
                   kwargs: Mapping[str, Any]) -> None:
    old, new = _int_arg(args, kwargs, 0, "old"), _int_arg(args, kwargs, 1, "new")
    if not (isinstance(value, str) and isinstance(old, str) and isinstance(new, str)):
        return
    count = _int_arg(args, kwargs, 2, "count", -1)
    found = len(value) + 1 if old == "" else value.count(old)
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    meter.allow_size(len(value) + found * max(0, len(new) - len(old)), "replace()")


def _indent_check(meter: RenderMeter, value: Any, args: tuple[Any, ...],
                  kwargs: Mapping[str, Any]) -> None:
    width = _int_arg(args, kwargs, 0, "width", 4)
    prefix = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    lines = value.count("\n") + 1 if isinstance(value, str) else 1
    meter.allow_size(_length(value) + lines * max(prefix, 0), "indent()")


def _wordwrap_check(meter: RenderMeter, value: Any, args: tuple[Any, ...],
                    kwargs: Mapping[str, Any]) -> None:
    wrap = _int_arg(args, kwargs, 2, "wrapstring")
    joint = len(wrap) if isinstance(wrap, str) else 1
    meter.allow_size(_length(value) * (1 + joint), "wordwrap()")


def _count_check(meter: RenderMeter, value: Any, args: tuple[Any, ...],
                 kwargs: Mapping[str, Any], name: str) -> None:
    count = _int_arg(args, kwargs, 0, name)
    if isinstance(count, int):
        meter.allow_size(count, f"{name} {count:,}")


def _format_filter_check(meter: RenderMeter, value: Any, args: tuple[Any, ...],
                         kwargs: Mapping[str, Any]) -> None:
    if isinstance(value, str):
        _check_printf(meter, value)


def _join_check(meter: RenderMeter, items: list[Any], glue: Any) -> None:
    joints = len(glue) * max(len(items) - 1, 0) if isinstance(glue, str) else 0
    total = joints + sum(value_size(i, meter.limits.max_value_chars) for i in items)
    meter.allow_size(total, "join()")


_Precheck = Callable[[RenderMeter, Any, tuple[Any, ...], Mapping[str, Any]], None]

_FILTER_PRECHECKS: Final[Mapping[str, _Precheck]] = {
    "center": _pad_check,
    "indent": _indent_check,
    "wordwrap": _wordwrap_check,
    "replace": _replace_check,
    "format": _format_filter_check,
    "batch": lambda m, v, a, k: _count_check(m, v, a, k, "linecount"),
    "slice": lambda m, v, a, k: _count_check(m, v, a, k, "slices"),
}
"""Filters whose arguments alone can make them allocate: checked before they run."""


SAFE_METHODS: Final[Mapping[type, frozenset[str]]] = {
    str: frozenset({
        "capitalize", "casefold", "center", "count", "endswith", "find", "format",
        "format_map", "index", "isalnum", "isalpha", "isdecimal", "isdigit", "islower",
        "isnumeric", "isspace", "istitle", "isupper", "join", "ljust", "lower", "lstrip",
        "partition", "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rjust",
        "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip",
        "swapcase", "title", "upper", "zfill",
    }),
    int: frozenset({"bit_length", "conjugate"}),
    float: frozenset({"is_integer", "conjugate"}),
    list: frozenset({"count", "index", "copy"}),
    tuple: frozenset({"count", "index"}),
    dict: frozenset({"get", "items", "keys", "values", "copy"}),
}
"""Methods a template may call, by the type of the object they are called on. Anything
else on these types (``int.to_bytes(10**8)``, ``str.translate`` with a table of long
strings, ``str.expandtabs``) is refused. Methods of Jinja's own helpers (``loop``,
``cycler``, ``joiner``, ``namespace``, macros) are not limited."""


def _method_check(meter: RenderMeter, method: Any, args: tuple[Any, ...],
                  kwargs: Mapping[str, Any]) -> None:
    """Refuse a safe method whose arguments would make it allocate too much."""
    owner, name = getattr(method, "__self__", None), getattr(method, "__name__", "")
    if not isinstance(owner, str):
        return
    if name in ("center", "ljust", "rjust", "zfill"):
        _pad_check(meter, owner, args, kwargs)
    elif name == "replace":
        _replace_check(meter, owner, args, kwargs)
    elif name == "join" and args:
        items = args[0]
        if isinstance(items, list | tuple):
            _join_check(meter, list(items), owner)


def _base_type(value: Any) -> type | None:
    for kind in SAFE_METHODS:
        if isinstance(value, kind) and not isinstance(value, bool):
            return kind
    return int if isinstance(value, bool) else None


# --------------------------------------------------------------------------- metering filters

TICK: Final = "geopush.tick"
EMIT: Final = "geopush.emit"
CONCAT: Final = "geopush.concat"


def _meter(context: Context) -> RenderMeter:
    meter: RenderMeter = context.meter  # type: ignore[attr-defined]
    return meter


def _tick(context: Context) -> bool:
    """One loop iteration (or one item a loop's ``if`` tests)."""
    _meter(context).charge()
    return True


@pass_context
def _emit(context: Context, value: Any) -> Any:
    """An output value: counted, and returned as the output node would write it
    (``str()`` of it; a string, ``Markup`` included, unchanged)."""
    text = value if isinstance(value, str) else str(value)
    _meter(context).emit(len(text))
    return text


@pass_context
def _concat(context: Context, parts: list[Any]) -> str:
    """``a ~ b``: Jinja's own join, once the result is known to be small enough."""
    meter = _meter(context)
    meter.charge()
    meter.allow_size(sum(value_size(p, meter.limits.max_value_chars) for p in parts), "'~'")
    joined: str = markup_join(parts) if context.eval_ctx.autoescape else str_join(parts)
    return joined


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` (a Jinja filter) charged and checked: one operation plus its input's
    size, the :data:`_FILTER_PRECHECKS` before it runs, the result's size after."""
    passes = getattr(func, "jinja_pass_arg", None)
    kind = None if passes is None else passes.name
    precheck = _FILTER_PRECHECKS.get(name)

    @pass_context
    def bounded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        meter = _meter(context)
        meter.charge(1 + _length(value) // CHARS_PER_OPERATION)
        if precheck is not None:
            precheck(meter, value, args, kwargs)
        if name == "join":
            value = list(value) if not isinstance(value, str) else value
            glue = _int_arg(args, kwargs, 0, "d", "")
            if not isinstance(value, str):
                _join_check(meter, value, glue)
        if kind == "context":
            result = func(context, value, *args, **kwargs)
        elif kind == "eval_context":
            result = func(context.eval_ctx, value, *args, **kwargs)
        elif kind == "environment":
            result = func(context.environment, value, *args, **kwargs)
        else:
            result = func(value, *args, **kwargs)
        return meter.checked(result)

    bounded.__name__ = getattr(func, "__name__", name)
    return bounded


# --------------------------------------------------------------------------- the environment


class MeteredContext(Context):
    """A template context with the :class:`RenderMeter` of its render (a fresh one
    per context; a caller rendering two templates as one render shares one)."""

    def __init__(self, environment: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(environment, *args, **kwargs)
        self.meter = RenderMeter(environment.limits, environment.clock)


def _tick_node(lineno: int) -> nodes.Expr:
    node = nodes.Filter(nodes.ContextReference(), TICK, [], [], None, None)
    node.set_lineno(lineno)
    return node


def bound_template(template: nodes.Template) -> nodes.Template:
    """Put the meter into a parsed template: a tick at the start of every loop body and
    on every item a loop's ``if`` tests, every output value through :data:`EMIT`, every
    ``~`` through :data:`CONCAT`. Changes ``template`` in place and returns it."""
    bounded: nodes.Template = _Metering().visit(template)
    return bounded


class _Metering(NodeTransformer):
    """The rewrite of :func:`bound_template`, children first."""

    def visit_For(self, node: nodes.For) -> nodes.Node:  # noqa: N802 (Jinja's visitor name)
        self.generic_visit(node)
        tick = nodes.ExprStmt(_tick_node(node.lineno), lineno=node.lineno)
        node.body.insert(0, tick)
        if node.test is not None:
            node.test = nodes.And(_tick_node(node.lineno), node.test, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:  # noqa: N802
        self.generic_visit(node)
        parts = nodes.List(list(node.nodes), lineno=node.lineno)
        return nodes.Filter(parts, CONCAT, [], [], None, None, lineno=node.lineno)

    def visit_Output(self, node: nodes.Output) -> nodes.Node:  # noqa: N802
        self.generic_visit(node)
        node.nodes = [nodes.Filter(child, EMIT, [], [], None, None, lineno=child.lineno)
                      for child in node.nodes]
        return node


class BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator, fed the metered tree (:func:`bound_template`): every
    template this environment compiles, from any entry point, is bounded."""

    def visit_Template(  # noqa: N802 (Jinja's visitor name)
        self, node: nodes.Template, frame: Frame | None = None
    ) -> None:
        super().visit_Template(bound_template(node), frame)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with :class:`RenderLimits` on every render (see the
    module docstring). ``clock`` (seconds, any origin; e.g. ``time.monotonic`` passed
    in by the server) enables ``limits.timeout_s``; without it renders are bounded by
    operations only, and deterministic."""

    code_generator_class = BoundedCodeGenerator
    context_class = MeteredContext
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, *args: Any, limits: RenderLimits | None = None,
                 clock: Callable[[], float] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits or RenderLimits()
        self.clock = clock
        self.globals["range"] = _bounded_range
        self.globals.pop("lipsum", None)
        self.unmetered_filters: Mapping[str, Callable[..., Any]] = dict(self.filters)
        """Jinja's filters as they are, for code that runs one outside a render (the
        content engine's plain templates call ``default``, which builds nothing)."""
        self.filters = {name: _bounded_filter(name, func) for name, func in self.filters.items()}
        self.filters[TICK] = _tick
        self.filters[EMIT] = _emit
        self.filters[CONCAT] = _concat

    def is_safe_callable(self, obj: Any) -> bool:
        if not super().is_safe_callable(obj):
            return False
        owner = getattr(obj, "__self__", None)
        if owner is None or isinstance(owner, types.ModuleType):
            return True
        if isinstance(owner, type):
            return False  # classmethods of builtins (str.maketrans, int.from_bytes)
        kind = _base_type(owner)
        if kind is None:
            return True  # Jinja's helpers: loop, cycler, joiner, namespace
        return getattr(obj, "__name__", "") in SAFE_METHODS[kind]

    def call(__self, __context: Context, __obj: Any, *args: Any,  # noqa: N805
             **kwargs: Any) -> Any:
        meter = _meter(__context)
        meter.charge(CALL_OPERATIONS)
        wrapped = getattr(__obj, "__wrapped__", __obj)  # the sandbox's str.format wrapper
        if getattr(wrapped, "__name__", "") in ("format", "format_map") and isinstance(
                getattr(wrapped, "__self__", None), str):
            _check_format(meter, wrapped.__self__)
        else:
            _method_check(meter, __obj, args, kwargs)
        return meter.checked(super().call(__context, __obj, *args, **kwargs))

    def call_binop(self, context: Context, op: str, left: Any, right: Any) -> Any:
        meter = _meter(context)
        meter.charge()
        limits = meter.limits
        if op == "**":
            if _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
                bits = left.bit_length() * right
                if bits > limits.max_int_bits:
                    raise TemplateLimitError(
                        f"{_short(left)} ** {_short(right)} would have about "
                        f"{math.ceil(bits * math.log10(2)):,} digits, more than "
                        f"{math.floor(limits.max_int_bits * math.log10(2))}")
            return operator.pow(left, right)
        if op == "*":
            if _is_int(left) and _is_int(right):
                if left.bit_length() + right.bit_length() > limits.max_int_bits:
                    raise TemplateLimitError(
                        f"a product of more than {limits.max_int_bits} bits")
            else:
                for seq, count in ((left, right), (right, left)):
                    if isinstance(seq, str | list | tuple) and _is_int(count):
                        size = value_size(seq, limits.max_value_chars)
                        meter.allow_size(max(count, 0) * max(size, 1), "'*'")
            return meter.checked(operator.mul(left, right))
        if op == "+":
            if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
                cap = limits.max_value_chars
                meter.allow_size(value_size(left, cap) + value_size(right, cap), "'+'")
            return operator.add(left, right)
        if op == "%" and isinstance(left, str):
            _check_printf(meter, left)
            return meter.checked(operator.mod(left, right))
        return self.binop_table[op](left, right)


def _is_int(value: Any) -> bool:
    return isinstance(value, int)


def _short(number: int) -> str:
    text = str(number) if number.bit_length() < 64 else f"a {number.bit_length()}-bit number"
    return text


@pass_context
def _bounded_range(context: Context, *args: int) -> range:
    """``range()`` of at most ``max_range`` numbers."""
    numbers = range(*args)
    limit = _meter(context).limits.max_range
    if len(numbers) > limit:
        raise TemplateLimitError(f"range() of {len(numbers):,} numbers, more than {limit:,}")
    return numbers


def is_limit_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a render stopped by its limits (rather than a template bug
    such as an undefined name)."""
    return isinstance(exc, TemplateLimitError | RecursionError | MemoryError)


def spent_its_budget(exc: BaseException) -> bool:
    """Whether the render that raised ``exc`` was stopped only after spending a
    render's budget (operations, time, output, stack): trying it again costs as much."""
    if isinstance(exc, TemplateLimitError):
        return exc.spent
    return isinstance(exc, RecursionError | MemoryError)


__all__ = [
    "BoundedSandbox",
    "RenderLimits",
    "RenderMeter",
    "TemplateLimitError",
    "bound_template",
    "is_limit_error",
    "spent_its_budget",
    "value_size",
]

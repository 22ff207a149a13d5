"""Cloud KMS's ``filter`` and ``order_by`` on list methods, over the messages a list answers.

The language of cloud.google.com/kms/docs/sorting-and-filtering: comparisons ``field OP value`` with ``=``, ``!=``,
``<``, ``>``, ``<=``, ``>=`` (also written ``=>``) and ``:`` (a case-insensitive substring; on a map, "has this key");
``AND`` (or a space), ``OR`` (which binds tighter than ``AND``), ``NOT`` or ``-``, parentheses. A field is a dotted
path of the listed resource's fields (snake_case or the JSON camelCase), a map's key after the map (``labels.team``);
enums compare by name, timestamps as RFC 3339, durations as ``<seconds>s``. A path the resource does not have, or a
value its field cannot hold, is refused (INVALID_ARGUMENT). ``order_by``: ``field [asc|desc]``, comma separated.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from kubekms.errors import InvalidArgument

MAX_QUERY_CHARS = 2048
MAX_DEPTH = 32  # nested parentheses and negations: no recursion bomb
_WORD_END = set(' \t\r\n()"')
_OPERATORS = ("<=", ">=", "=>", "!=", "=", "<", ">", ":")
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}
Value = str | int | float | bool | datetime | timedelta
_SCALAR_MESSAGES = ("google.protobuf.Timestamp", "google.protobuf.Duration")


@dataclass(frozen=True)
class _Field:
    """A resolved path: the protobuf field names to walk, and the map key that ends it (if any)."""

    path: tuple[FieldDescriptor, ...]
    key: str | None

    @property
    def last(self) -> FieldDescriptor:
        return self.path[-1]

    def is_map(self) -> bool:
        return self.key is None and _is_map(self.last)

    def value(self, message: Message) -> Value | dict[str, str] | None:
        current: Any = message
        for field in self.path:
            if field.message_type is not None and not _is_map(field) and not current.HasField(field.name):
                return None
            current = getattr(current, field.name)
        if self.key is not None:
            return str(current[self.key]) if self.key in current else None
        if _is_map(self.last):
            return {str(k): str(v) for k, v in current.items()}
        return _typed(self.last, current)


def _kind(field: FieldDescriptor) -> str:
    """The full name of a message field's type ("" for other fields)."""
    return field.message_type.full_name if field.message_type is not None else ""


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _typed(field: FieldDescriptor, raw: Any) -> Value:
    if field.enum_type is not None:
        named = field.enum_type.values_by_number.get(raw)
        return named.name if named is not None else str(raw)
    if field.message_type is not None:
        if _kind(field) == "google.protobuf.Timestamp":
            return raw.ToDatetime(tzinfo=UTC)  # type: ignore[no-any-return]
        return raw.ToTimedelta()  # type: ignore[no-any-return]  # Duration: _resolve lets no other message through
    return raw  # type: ignore[no-any-return]


def _literal(field: FieldDescriptor, text: str) -> Value:
    """The filter's value as the field's type, refused in words if the field cannot hold it."""
    try:
        if _kind(field) == "google.protobuf.Timestamp":
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        if _kind(field) == "google.protobuf.Duration":
            if not text.endswith("s"):
                raise ValueError(text)
            return timedelta(seconds=float(text[:-1]))
        if field.type == FieldDescriptor.TYPE_BOOL:
            if text not in ("true", "false"):
                raise ValueError(text)
            return text == "true"
        if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            return float(text)
        if field.cpp_type in (FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64,
                              FieldDescriptor.CPPTYPE_UINT32, FieldDescriptor.CPPTYPE_UINT64):  # fmt: skip
            return int(text)
    except (ValueError, OverflowError):
        raise InvalidArgument(f"invalid filter: {text!r} is not a value of field {field.name}") from None
    return text


def _resolve(descriptor: Descriptor, dotted: str, what: str) -> _Field:
    parts = dotted.split(".")
    path: list[FieldDescriptor] = []
    current = descriptor
    for index, part in enumerate(parts):
        field = current.fields_by_name.get(part) or current.fields_by_camelcase_name.get(part)
        if field is None:
            raise InvalidArgument(f"invalid {what}: {descriptor.name} has no field {dotted!r}")
        path.append(field)
        rest = parts[index + 1 :]
        if _is_map(field):
            if len(rest) > 1:
                raise InvalidArgument(f"invalid {what}: {dotted!r} names a key of map {field.name} and more")
            return _Field(tuple(path), rest[0] if rest else None)
        if not rest:
            break
        if field.message_type is None or field.is_repeated:
            raise InvalidArgument(f"invalid {what}: {field.name} in {dotted!r} has no fields")
        current = field.message_type
    last = path[-1]
    if last.is_repeated:
        raise InvalidArgument(f"invalid {what}: {dotted!r} is a list; this server does not filter or sort on lists")
    if last.message_type is not None and _kind(last) not in _SCALAR_MESSAGES:
        raise InvalidArgument(f"invalid {what}: {dotted!r} is a message; name one of its fields")
    return _Field(tuple(path), None)


Predicate = Callable[[Message], bool]


def _comparison(field: _Field, op: str, text: str) -> Predicate:
    if op == ":":
        if field.is_map():
            return lambda message: text in _keys(field.value(message))  # ``labels:team``: has the key
        needle = text.casefold()
        return lambda message: needle in str(_shown(field.value(message))).casefold()
    if field.is_map():
        raise InvalidArgument(f"invalid filter: compare a key of {field.last.name} ({field.last.name}.<key>)")
    compare = _COMPARE[">=" if op == "=>" else op]
    wanted = text if field.key is not None else _literal(field.last, text)

    def matches(message: Message) -> bool:
        value = field.value(message)
        if value is None:
            return op == "!="
        if isinstance(value, str) and not isinstance(wanted, str):  # an unknown enum number, shown as digits
            return op == "!="
        return bool(compare(value, wanted))

    return matches


def _keys(value: object) -> Sequence[str]:
    return list(value) if isinstance(value, dict) else []


def _shown(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, timedelta):
        return f"{value.total_seconds():g}s"
    return str(value).lower() if isinstance(value, bool) else str(value)


class _Parser:
    """Recursive descent over the filter text: ``expr := or_seq (["AND"] or_seq)*``,
    ``or_seq := unary ("OR" unary)*``, ``unary := ("NOT" | "-") unary | "(" expr ")" | field OP value``."""

    def __init__(self, text: str, descriptor: Descriptor) -> None:
        self.text, self.at, self.descriptor = text, 0, descriptor

    def fail(self, why: str) -> InvalidArgument:
        return InvalidArgument(f"invalid filter at character {self.at + 1}: {why}")

    def skip_space(self) -> None:
        while self.at < len(self.text) and self.text[self.at].isspace():
            self.at += 1

    def peek_word(self) -> str:
        self.skip_space()
        end = self.at
        while end < len(self.text) and self.text[end] not in _WORD_END:
            end += 1
        return self.text[self.at : end]

    def at_end(self) -> bool:
        self.skip_space()
        return self.at >= len(self.text)

    def parse(self) -> Predicate:
        predicate = self.expression(0)
        if not self.at_end():
            raise self.fail("unexpected text")
        return predicate

    def expression(self, depth: int) -> Predicate:
        terms = [self.or_sequence(depth)]
        while not self.at_end() and self.text[self.at] != ")":
            if self.peek_word() == "AND":
                self.at += 3
            terms.append(self.or_sequence(depth))
        return terms[0] if len(terms) == 1 else (lambda message: all(term(message) for term in terms))

    def or_sequence(self, depth: int) -> Predicate:
        terms = [self.unary(depth)]
        while self.peek_word() == "OR":
            self.at += 2
            terms.append(self.unary(depth))
        return terms[0] if len(terms) == 1 else (lambda message: any(term(message) for term in terms))

    def unary(self, depth: int) -> Predicate:
        if depth >= MAX_DEPTH:
            raise self.fail(f"more than {MAX_DEPTH} levels of parentheses and negations")
        if self.at_end():
            raise self.fail("a comparison is missing")
        if self.peek_word() == "NOT":
            self.at += 3
            negated = self.unary(depth + 1)
            return lambda message: not negated(message)
        if self.text[self.at] == "-":
            self.at += 1
            negated = self.unary(depth + 1)
            return lambda message: not negated(message)
        if self.text[self.at] == "(":
            self.at += 1
            inner = self.expression(depth + 1)
            if self.at_end() or self.text[self.at] != ")":
                raise self.fail("a ')' is missing")
            self.at += 1
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        start = self.at
        while self.at < len(self.text) and (self.text[self.at].isalnum() or self.text[self.at] in "._"):
            self.at += 1
        dotted = self.text[start : self.at]
        if not dotted:
            raise self.fail("a field name is missing")
        self.skip_space()
        op = next((candidate for candidate in _OPERATORS if self.text.startswith(candidate, self.at)), None)
        if op is None:
            raise self.fail(f"an operator ({' '.join(_OPERATORS)}) is missing after {dotted!r}")
        self.at += len(op)
        return _comparison(_resolve(self.descriptor, dotted, "filter"), op, self.value())

    def value(self) -> str:
        self.skip_space()
        if self.at < len(self.text) and self.text[self.at] == '"':
            chars, self.at = [], self.at + 1
            while self.at < len(self.text) and self.text[self.at] != '"':
                if self.text[self.at] == "\\" and self.at + 1 < len(self.text):
                    self.at += 1
                chars.append(self.text[self.at])
                self.at += 1
            if self.at >= len(self.text):
                raise self.fail("a closing '\"' is missing")
            self.at += 1
            return "".join(chars)
        word = self.peek_word()
        if not word:
            raise self.fail("a value is missing")
        self.at += len(word)
        return word


@dataclass(frozen=True)
class _SortKey:
    field: _Field
    descending: bool


def _sort_keys(order_by: str, descriptor: Descriptor) -> tuple[_SortKey, ...]:
    keys = []
    for clause in order_by.split(","):
        words = clause.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise InvalidArgument(f"invalid order_by: {clause.strip()!r} is not 'field', 'field asc' or 'field desc'")
        field = _resolve(descriptor, words[0], "order_by")
        if field.is_map():
            raise InvalidArgument(f"invalid order_by: sort on a key of {field.last.name} ({field.last.name}.<key>)")
        keys.append(_SortKey(field, len(words) == 2 and words[1].lower() == "desc"))
    return tuple(keys)


@dataclass(frozen=True)
class ListQuery:
    """A list request's filter and order_by, parsed against the listed resource's message type."""

    predicate: Predicate | None
    order: tuple[_SortKey, ...]

    @property
    def trivial(self) -> bool:
        return self.predicate is None and not self.order

    def apply(self, messages: Sequence[Any]) -> list[Any]:
        """The messages (proto-plus) that match, in the requested order (a stable sort: ties keep list order)."""
        chosen = [m for m in messages if self.predicate is None or self.predicate(type(m).pb(m))]
        for key in reversed(self.order):  # least significant first: each stable sort keeps the previous one's ties
            chosen.sort(key=functools.partial(_sortable, key.field), reverse=key.descending)
        return chosen


def _sortable(field: _Field, message: Any) -> tuple[int, Any]:
    value = field.value(type(message).pb(message))
    return (0, 0) if value is None else (1, value)  # absent sorts first


def message_filter(text: str, descriptor: Descriptor) -> Predicate | None:
    """A ``filter`` text on messages of ``descriptor`` (None when blank); InvalidArgument names what is wrong."""
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidArgument(f"filter must be at most {MAX_QUERY_CHARS} characters")
    return _Parser(text, descriptor).parse() if text.strip() else None


def list_query(request: Any, resource: type[Any]) -> ListQuery:
    """The request's ``filter`` and ``order_by`` for a list of ``resource`` (a proto-plus message class)."""
    text, order_by = str(request.filter), str(request.order_by)
    for name, given in (("filter", text), ("order_by", order_by)):
        if len(given) > MAX_QUERY_CHARS:
            raise InvalidArgument(f"{name} must be at most {MAX_QUERY_CHARS} characters")
    descriptor: Descriptor = resource.pb().DESCRIPTOR
    return ListQuery(message_filter(text, descriptor), _sort_keys(order_by, descriptor) if order_by.strip() else ())

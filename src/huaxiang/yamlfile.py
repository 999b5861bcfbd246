"""Load YAML into pydantic models with errors that point at the file and line.

A pydantic error knows the field path (``sources.users.colums``); the YAML node
tree knows where that path is written. Joining the two gives messages like::

    huaxiang.yaml:12: sources.users.colums: unknown field. Allowed: path, format, ...
    Did you mean 'columns'?
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from huaxiang.errors import ConfigError, did_you_mean

Model = TypeVar("Model", bound=BaseModel)


def node_line(root: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """1-based line of the deepest node of ``loc`` that exists in the YAML tree."""
    node, line = root, (root.start_mark.line + 1 if root is not None else None)
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    line = key.start_mark.line + 1
                    node = value
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _allowed_fields(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """Field names allowed at ``loc`` (the parent of an unknown key)."""
    annotation: Any = model
    for part in loc:
        origin = getattr(annotation, "__origin__", None)
        if origin in (list, dict):
            # A list index or a dict key: step into the item type.
            annotation = annotation.__args__[-1]
            continue
        current = _item_model(annotation)
        if current is None or current.model_fields.get(str(part)) is None:
            return []
        annotation = _strip_optional(current.model_fields[str(part)].annotation)
    current = _item_model(annotation) if getattr(annotation, "__origin__", None) is None else None
    if current is not None:
        return [f.alias or name for name, f in current.model_fields.items()]
    return []


def _item_model(annotation: Any) -> Any:
    """The BaseModel inside ``X``, ``list[X]``, ``dict[str, X]`` or ``X | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _item_model(arg)
        if found is not None:
            return found
    return None


def _strip_optional(annotation: Any) -> Any:
    args = [a for a in getattr(annotation, "__args__", ()) if a is not type(None)]
    if getattr(annotation, "__origin__", None) is None and len(args) == 1:
        return args[0]
    return annotation


def describe_error(error: Any, model: type[BaseModel]) -> str:
    loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    kind = error["type"]
    given = error.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_fields(model, loc[:-1])
        hint = did_you_mean(str(loc[-1]), allowed)
        return f"unknown field '{loc[-1]}'. Allowed: {', '.join(allowed)}.{hint}"
    if kind == "missing":
        return "this field is required but missing."
    if kind in ("literal_error", "enum"):
        expected = error.get("ctx", {}).get("expected", "")
        choices = [c.strip().strip("'") for c in expected.replace(" or ", ",").split(",")]
        return (
            f"got {given!r}; allowed: {expected}.{did_you_mean(str(given), choices)}"
        )
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if isinstance(given, dict | list) or repr(given) in message:
        return message if message.endswith((".", "?")) else message + "."
    return f"{message.rstrip('.')} (got {given!r})."


def named_key(error: Any) -> tuple[str, ...]:
    """The key of a mapping that a validator's message names (``'gendr' is not a column``).

    A validator of a whole mapping reports the mapping's path; the line of the
    key it complains about is more useful. The key quoted first in the message wins.
    """
    given, message = error.get("input"), str(error.get("msg", ""))
    if not isinstance(given, dict):
        return ()
    named = [(message.find(repr(key)), key) for key in given if isinstance(key, str) and repr(key) in message]
    return (min(named)[1],) if named else ()


def format_loc(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not (isinstance(part, str) and part.startswith("function-")):
            text += ("." if text else "") + str(part)
    return text or "(top level)"


def load_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    """Parse ``path`` into plain data and its node tree (for line numbers)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found.") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8 at byte {exc.start}; save it as UTF-8.") from None
    try:
        return yaml.safe_load(text), yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML: {problem}.") from None


def validate_file(path: Path, model: type[Model], data: Any, node: yaml.Node | None) -> Model:
    """Validate ``data`` (read from ``path``) as ``model``; errors name file and line."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            line = node_line(node, loc + named_key(error))
            where = f"{path.name}:{line}" if line else path.name
            lines.append(f"{where}: {format_loc(loc)}: {describe_error(error, model)}")
        raise ConfigError("\n".join(lines)) from None

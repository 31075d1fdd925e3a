"""Whether a value from the spec stays one inert word in the ``ray start`` shell command.

KubeRay pastes ``rayStartParams`` values into ``bash -c`` verbatim, so users shell-quote JSON
values themselves (``'{"CPU": 1}'``) and reference variables (``$REDIS_PASSWORD``). metaray
keeps that, but refuses anything that would make the shell run or split something else.
"""

from __future__ import annotations

import re

_OPERATORS = set(";&|<>(){}*?[`")
_VARIABLE = re.compile(r"\$(\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)")


def shell_word_problem(value: str) -> str | None:
    """Why ``value`` is not a single shell word without substitutions, or None if it is."""
    if any(char in value for char in "\n\r\0"):
        return "must not contain a newline or NUL character"
    quote: str | None = None
    index = 0
    while index < len(value):
        char = value[index]
        if quote == "'":
            quote = None if char == "'" else quote
        elif char == "\\":
            if index + 1 == len(value):
                return "ends with a lone backslash"
            index += 1  # the next character is taken literally
        elif char == "$":
            variable = _VARIABLE.match(value, index)
            if variable is None:
                return "has a '$' that is not a plain $NAME or ${NAME} variable"
            index = variable.end() - 1
        elif char == "`":
            return "must not run a command (backquote)"
        elif quote == '"':
            quote = None if char == '"' else quote
        elif char in "'\"":
            quote = char
        elif char.isspace():
            return "has unquoted white space: it would become several arguments"
        elif char in _OPERATORS:
            return f"has an unquoted {char!r}, which the shell would interpret"
        index += 1
    if quote is not None:
        return "has unbalanced quotes"
    return None

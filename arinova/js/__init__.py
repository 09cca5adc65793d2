"""JavaScript's behaviour where the contract depends on it, in one place: ``String()``
of a JSON value, ``string.length`` and ``slice`` in UTF-16 units, well-formed text,
``trim``, ``parseInt``, ``JSON.parse``/``JSON.stringify`` and ``decodeURI``'s refusals.

Every area (the auth, REST and socket validators, the sandbox route, the body parser,
the router, static files, push previews) calls these; none keeps its own copy.
``tests/test_js.py`` checks them against values Node 20 prints.
"""

from arinova.js.json_text import json_parse, json_stringify, well_formed_value
from arinova.js.text import (
    PAST_DOUBLES,
    WHITESPACE,
    escape_surrogates,
    join_pairs,
    parse_int,
    trim,
    utf16_length,
    utf16_slice,
    well_formed,
)
from arinova.js.uri import URIError, decode_uri_throws, unescape
from arinova.js.values import (
    UNDEFINED,
    Undefined,
    int_to_double,
    is_truthy,
    number_to_string,
    to_string,
)

__all__ = [
    "PAST_DOUBLES",
    "UNDEFINED",
    "WHITESPACE",
    "URIError",
    "Undefined",
    "decode_uri_throws",
    "escape_surrogates",
    "int_to_double",
    "is_truthy",
    "join_pairs",
    "json_parse",
    "json_stringify",
    "number_to_string",
    "parse_int",
    "to_string",
    "trim",
    "unescape",
    "utf16_length",
    "utf16_slice",
    "well_formed",
    "well_formed_value",
]

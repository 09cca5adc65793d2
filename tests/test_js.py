"""``arinova.js`` against JavaScript: a table of what Node 20 prints (always runs), and
the same table plus generated inputs computed by ``node`` itself (skipped without it).
"""

from __future__ import annotations

import json
import random
import shutil
import struct
import subprocess
from typing import Any

import pytest

from arinova import js

# -- recorded with Node 20 ---------------------------------------------------------------

#: JSON text -> String(JSON.parse(text))
STRING = [
    ("9007199254740993", "9007199254740992"),
    ("9007199254740992", "9007199254740992"),
    ("-9007199254740993", "-9007199254740992"),
    ("123456789012345678901", "123456789012345680000"),
    ("18446744073709551615", "18446744073709552000"),
    ("18446744073709551616", "18446744073709552000"),
    ("1e21", "1e+21"),
    ("999999999999999999999", "1e+21"),
    ("100000000000000000000", "100000000000000000000"),
    ("0.1", "0.1"),
    ("-0", "0"),
    ("-0.0", "0"),
    ("0", "0"),
    ("1.0", "1"),
    ("1.5", "1.5"),
    ("12345.678", "12345.678"),
    ("1e-6", "0.000001"),
    ("0.000001234", "0.000001234"),
    ("1e-7", "1e-7"),
    ("1.5e-7", "1.5e-7"),
    ("123e-20", "1.23e-18"),
    ("2.5e+25", "2.5e+25"),
    ("1.7976931348623157e308", "1.7976931348623157e+308"),
    ("5e-324", "5e-324"),
    ("1e400", "Infinity"),
    ("-1e400", "-Infinity"),
    ("100", "100"),
    ("-42", "-42"),
    ("true", "true"),
    ("false", "false"),
    ("null", "null"),
    ('"text"', "text"),
    ("[]", ""),
    ("[null]", ""),
    ("[1,null,2]", "1,,2"),
    ("[[1,2],[3,[4]]]", "1,2,3,4"),
    ("[[],[]]", ","),
    ("[{}]", "[object Object]"),
    ("{}", "[object Object]"),
    ('{"a":1}', "[object Object]"),
    ('[true,"x",1.5e-7]', "true,x,1.5e-7"),
]

#: string -> string.length
LENGTH = [
    ("abc", 3),
    ("", 0),
    ("é", 1),
    ("😀", 2),
    ("a😀b", 4),
    ("\ud83d", 1),
    ("\ude00", 1),
    ("\ude00\ud83d", 2),
    ("ab\ud83dcd", 5),
    ("日本語", 3),
]

#: (string, start, end) -> string.slice(start, end)
SLICE = [
    (("a😀b", 0, 2), "a\ud83d"),
    (("a😀b", 0, 3), "a😀"),
    (("😀😀", 1, None), "\ude00😀"),
    (("hello", -3, None), "llo"),
    (("hello", 1, 100), "ello"),
    (("abc", 2, 1), ""),
]

#: string -> string.toWellFormed()
WELL_FORMED = [
    ("ok", "ok"),
    ("a\ud83db", "a\ufffdb"),
    ("\ude00", "\ufffd"),
    ("😀", "😀"),
    ("\ud83d\ud83d\ude00", "\ufffd😀"),
    ("", ""),
]

#: string -> string.trim()
TRIM = [
    ("  a b  ", "a b"),
    ("\ufeffx\ufeff", "x"),
    ("\xa0x\u3000", "x"),
    ("\x1cx\x1f", "\x1cx\x1f"),
    ("\x85x", "\x85x"),
    ("\u200bx", "\u200bx"),
    ("\t\n\x0b\x0c\r x \u2028\u2029", "x"),
    ("\u180ex", "\u180ex"),
]

#: string -> String(parseInt(string, 10))
PARSE_INT = [
    ("12abc", "12"),
    (" 12", "12"),
    ("-5", "-5"),
    ("+7", "7"),
    ("abc", "NaN"),
    ("", "NaN"),
    ("   ", "NaN"),
    ("7.9", "7"),
    ("-0", "0"),
    ("0x10", "0"),
    ("1e3", "1"),
    ("\ufeff3", "3"),
    ("\xa0 4", "4"),
    ("\x1c5", "NaN"),
    ("٣", "NaN"),
    ("- 1", "NaN"),
    ("+-1", "NaN"),
    ("12345678901234567890", "12345678901234567000"),
    ("9007199254740993", "9007199254740992"),
    ("1" * 400, "Infinity"),
    ("-" + "9" * 400, "-Infinity"),
]

#: JSON text -> JSON.parse(text) with numbers replaced by String(number), None: throws
PARSE = [
    ('{"a":1}', {"a": "1"}),
    ('"\\ud83d"', "\ud83d"),
    ('["\\ud83d\\ude00", "\\ude00"]', ["😀", "\ude00"]),
    ("[1e400]", ["Infinity"]),
    ("123456789012345678901234", "1.2345678901234569e+23"),
    ("[-0]", ["0"]),
    (" \t\n\r1", "1"),
    ('"\\u00e9"', "é"),
    ('{"__proto__":1}', {"__proto__": "1"}),
    ("NaN", None),
    ("Infinity", None),
    ("-Infinity", None),
    ("[1,]", None),
    ("{'a':1}", None),
    ("\xa01", None),
    ("\ufeff1", None),
    ("01", None),
    ("1.", None),
    (".5", None),
    ('"\\x41"', None),
    ('"a\tb"', None),
    ("1 2", None),
]

#: value -> JSON.stringify(value)
STRINGIFY = [
    ({"a": "\ud83d"}, '{"a":"\\ud83d"}'),
    (["\ude00x"], '["\\ude00x"]'),
    ("plain", '"plain"'),
    ({"k": [1, "😀", None, True]}, '{"k":[1,"😀",null,true]}'),
    ("\ud83d\ude00", '"😀"'),
]

#: JSON text -> Boolean(JSON.parse(text))
TRUTHY = [
    ("0", False),
    ("-0", False),
    ("0.0", False),
    ('""', False),
    ('" "', True),
    ("[]", True),
    ("{}", True),
    ("null", False),
    ("false", False),
    ("true", True),
    ("1", True),
    ('"0"', True),
]

#: path -> whether decodeURI(path) throws
DECODE_URI_THROWS = [
    ("/a", False),
    ("/a%20b", False),
    ("/%", True),
    ("/%2", True),
    ("/%zz", True),
    ("/%C3%A9", False),
    ("/%C3", True),
    ("/%C3a", True),
    ("/%E2%82%AC", False),
    ("/%E2%82", True),
    ("/%ED%A0%80", True),
    ("/%C0%80", True),
    ("/%F4%90%80%80", True),
    ("/%F0%9F%98%80", False),
    ("/%80", True),
    ("/%2f%2F", False),
    ("/%41%C3%A9%C3", True),
    ("/100%25", False),
]


# -- our side ----------------------------------------------------------------------------


def numbers_as_strings(value: Any) -> Any:
    """A parsed value with each number as ``String(number)``: compares what JSON.parse
    built without depending on how a serialiser writes numbers."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return js.to_string(value)
    if isinstance(value, list):
        return [numbers_as_strings(v) for v in value]
    return {k: numbers_as_strings(v) for k, v in value.items()}


def parsed(text: str) -> Any:
    try:
        return numbers_as_strings(js.json_parse(text))
    except ValueError:
        return None


def parse_int_text(text: str) -> str:
    value = js.parse_int(text)
    return "NaN" if value is None else js.to_string(value)


def slice_of(args: tuple[str, int, int | None]) -> str:
    return js.utf16_slice(*args)


OURS: dict[str, Any] = {
    "string": lambda text: js.to_string(js.json_parse(text)),
    "length": js.utf16_length,
    "slice": slice_of,
    "wellFormed": js.well_formed,
    "trim": js.trim,
    "parseInt": parse_int_text,
    "parse": parsed,
    "stringify": js.json_stringify,
    "truthy": lambda text: js.is_truthy(js.json_parse(text)),
    "decodeURI": lambda path: js.decode_uri_throws(path.encode("latin-1")),
}

TABLES: dict[str, list[tuple[Any, Any]]] = {
    "string": STRING,
    "length": LENGTH,
    "slice": SLICE,
    "wellFormed": WELL_FORMED,
    "trim": TRIM,
    "parseInt": PARSE_INT,
    "parse": PARSE,
    "stringify": STRINGIFY,
    "truthy": TRUTHY,
    "decodeURI": DECODE_URI_THROWS,
}


@pytest.mark.parametrize("kind", TABLES)
def test_recorded_node_values(kind: str) -> None:
    ours = OURS[kind]
    wrong = [(given, ours(given), node) for given, node in TABLES[kind] if ours(given) != node]
    assert wrong == []


def test_string_of_undefined_and_deep_arrays() -> None:
    assert js.to_string(js.UNDEFINED) == "undefined"
    assert js.to_string([js.UNDEFINED, 1]) == ",1"
    assert js.to_string(2**2000) == "Infinity"  # Number() of an integer past the doubles
    deep = js.json_parse("[" * 1000 + "7" + "]" * 1000)
    assert js.to_string(deep) == "7"


def test_text_with_lone_surrogates_never_raises() -> None:
    text = "a\ud83d" * 3 + "\ude00"
    assert js.utf16_length(text) == 7
    assert js.well_formed(text) == "a\ufffd" * 2 + "a😀"
    assert js.json_stringify(text) == '"a\\ud83da\\ud83da😀"'


def test_json_parse_of_bytes_decodes_invalid_utf8_with_replacement() -> None:
    assert js.json_parse(b'{"a":"\xff"}') == {"a": "\ufffd"}
    assert js.json_parse(b"[1" + b"0" * 30 + b"]") == [1e30]
    with pytest.raises(ValueError):
        js.json_parse(b"[" * 100_000)


def test_well_formed_value_fixes_keys_and_nested_strings() -> None:
    value = js.json_parse('{"\\ud83d": ["\\ude00", {"k": "\\ud800x"}], "n": 1}')
    assert js.well_formed_value(value) == {"\ufffd": ["\ufffd", {"k": "\ufffdx"}], "n": 1}


def test_well_formed_value_goes_deeper_than_the_recursion_limit() -> None:
    deep: list[Any] = ["\ud800"]
    for _ in range(5000):
        deep = [{"\udc00": deep}]
    fixed = js.well_formed_value(deep)
    for _ in range(5000):
        fixed = fixed[0]["\ufffd"]
    assert fixed == ["\ufffd"]


def test_unescape_refuses_a_bare_percent() -> None:
    assert js.unescape(b"/a%20b%C3%A9") == b"/a b\xc3\xa9"
    assert js.unescape(b"/plain") == b"/plain"
    with pytest.raises(js.URIError):
        js.unescape(b"/100%")


# -- computed by Node --------------------------------------------------------------------

NODE_SCRIPT = r"""
const inp = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const asStrings = (v) => JSON.parse(
  JSON.stringify(v, (k, x) => (typeof x === 'number' ? String(x) : x)));
const out = {
  string: inp.string.map((t) => String(JSON.parse(t))),
  length: inp.length.map((s) => s.length),
  slice: inp.slice.map(([s, a, b]) => (b === null ? s.slice(a) : s.slice(a, b))),
  wellFormed: inp.wellFormed.map((s) => s.toWellFormed()),
  trim: inp.trim.map((s) => s.trim()),
  parseInt: inp.parseInt.map((s) => String(parseInt(s, 10))),
  parse: inp.parse.map((t) => { try { return asStrings(JSON.parse(t)); } catch (e) { return null; } }),
  stringify: inp.stringify.map((v) => JSON.stringify(v)),
  truthy: inp.truthy.map((t) => Boolean(JSON.parse(t))),
  decodeURI: inp.decodeURI.map((p) => { try { decodeURI(p); return false; } catch (e) { return true; } }),
};
const spaces = [];
for (let c = 0; c < 0x10000; c++) {
  if (String.fromCharCode(c).trim() === '') spaces.push(c);
}
out.whitespace = spaces;
process.stdout.write(JSON.stringify(out));
"""

_UNITS = ["a", "é", "日", "😀", "\ud83d", "\ude00", " ", "\ufeff", "\x1c"]
_ESCAPES = ["%41", "%C3", "%A9", "%E2", "%82", "%AC", "%F0", "%9F", "%98", "%80", "%ED"]
_ESCAPES += ["%A0", "%C0", "%F4", "%90", "%FF", "%", "%2", "x"]


def generated(rng: random.Random) -> dict[str, list[Any]]:
    doubles = []
    while len(doubles) < 3000:
        (value,) = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))
        if value == value and value not in (float("inf"), float("-inf")):
            doubles.append(repr(value))
    doubles += [repr(rng.uniform(-1e6, 1e6)) for _ in range(500)]
    doubles += [str(rng.getrandbits(rng.randrange(1, 90))) for _ in range(500)]
    strings = ["".join(rng.choices(_UNITS, k=rng.randrange(0, 8))) for _ in range(500)]
    lengths = [len(s.encode("utf-16-le", "surrogatepass")) // 2 for s in strings]
    slices = [
        [s, rng.randrange(-n - 1, n + 2), rng.choice([None, rng.randrange(-n - 1, n + 2)])]
        for s, n in zip(strings, lengths, strict=True)
    ]
    ints = [
        rng.choice(["", " ", "\ufeff", "\u3000", "\x1c", "-", "+"])
        + "".join(rng.choices("0123456789.xe -", k=rng.randrange(0, 25)))
        for _ in range(500)
    ]
    paths = ["/" + "".join(rng.choices(_ESCAPES, k=rng.randrange(1, 6))) for _ in range(1000)]
    return {
        "string": doubles,
        "length": strings,
        "slice": slices,
        "wellFormed": strings,
        "trim": strings,
        "parseInt": ints,
        "parse": doubles[:500],
        "stringify": strings,
        "truthy": doubles[:100],
        "decodeURI": paths,
    }


def as_js(value: Any) -> Any:
    """Strings as JavaScript sees them: a surrogate pair is one character either way."""
    if isinstance(value, str):
        return js.join_pairs(value)
    if isinstance(value, list):
        return [as_js(v) for v in value]
    if isinstance(value, dict):
        return {as_js(k): as_js(v) for k, v in value.items()}
    return value


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH")
def test_against_node() -> None:
    inputs: dict[str, list[Any]] = {kind: [given for given, _ in TABLES[kind]] for kind in TABLES}
    for kind, extra in generated(random.Random(20)).items():
        inputs[kind] += extra
    inputs["slice"] = [list(args) for args in inputs["slice"]]
    run = subprocess.run(
        ["node", "-e", NODE_SCRIPT],
        input=json.dumps(inputs),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    node = json.loads(run.stdout)
    for kind, given in inputs.items():
        ours = OURS[kind]
        if kind == "slice":
            given = [tuple(args) for args in given]
        answers = zip(given, node[kind], strict=True)
        wrong = [(g, ours(g), n) for g, n in answers if as_js(ours(g)) != as_js(n)]
        assert wrong[:5] == [], kind
    assert sorted(map(ord, js.WHITESPACE)) == node["whitespace"]

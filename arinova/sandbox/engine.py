"""Run one user script in a fresh QuickJS context (behaviours.md §6, quirk Q03).

The context holds only ECMAScript built-ins and a ``console`` written in JavaScript:
no Python callables, no host objects, so nothing reachable from the script leads out of
the engine. Code generation from strings (``eval``, ``Function`` and its async/generator
siblings) throws, as in the original. QuickJS enforces the CPU-time limit (an
uncatchable interrupt), the heap limit and the stack limit; the worker process that calls
this (``arinova.sandbox.worker``) is the hard boundary around it.

The promise jobs a script leaves (async functions past their first ``await``, ``then``
callbacks) run after it under the same CPU-time budget, so an async infinite loop is a
timeout like a synchronous one (the original's timeout did not cover them, quirk Q03).
Their console lines are not in the output: the original answered before they ran.

This module is imported by the worker process only; it must stay free of server imports.
"""

from __future__ import annotations

import json
import time
from typing import Final, TypedDict

import quickjs  # type: ignore[import-untyped]

TIME_LIMIT_S: Final = 5.0
MEMORY_LIMIT_BYTES: Final = 64 * 1024 * 1024
STACK_LIMIT_BYTES: Final = 512 * 1024
#: extra heap allowed for reading the captured output back after the script hit the limit
OUTPUT_HEADROOM_BYTES: Final = 4 * 1024 * 1024
#: CPU time for reading the captured output back (at most 50 000 characters)
OUTPUT_TIME_LIMIT_S: Final = 0.5
TIMEOUT_MESSAGE: Final = "Script execution timed out after 5000ms"
OUT_OF_MEMORY_MESSAGE: Final = "InternalError: out of memory"
STACK_OVERFLOW_MESSAGE: Final = "InternalError: stack overflow"


class Result(TypedDict):
    output: str
    error: str | None
    executionTimeMs: int


# Runs once per context, before the user code. Returns the runner: run(code) -> [output,
# error-or-null]. Everything it needs is captured in its closure; the globals it leaves
# behind are plain data and functions of this realm.
PRELUDE: Final = r"""
(() => {
  "use strict";
  const MAX_OUTPUT = 50000;
  const realEval = eval;
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const toStr = String;
  const lines = [];
  let total = 0;

  const format = (value) => {
    if (typeof value === "string") return value;
    try { return stringify(value, null, 2); } catch (_) { return toStr(value); }
  };
  const emit = (...args) => {
    const line = args.map(format).join(" ");
    total += line.length;
    if (total <= MAX_OUTPUT) lines.push(line);
  };
  const console = { log: emit, info: emit, warn: emit, error: emit, debug: emit };

  // Errors made by the script through the global constructors print their bare message
  // (the original's host-realm errors); engine-made ones print "Name: message".
  const userMade = new WeakSet();
  const track = (Ctor) => {
    const proxy = new Proxy(Ctor, {
      construct(target, args, newTarget) {
        const error = Reflect.construct(target, args, newTarget === proxy ? target : newTarget);
        userMade.add(error);
        return error;
      },
      apply(target, self, args) {
        const error = Reflect.apply(target, self, args);
        userMade.add(error);
        return error;
      },
    });
    Object.defineProperty(Ctor.prototype, "constructor", { value: proxy, writable: true, configurable: true });
    return proxy;
  };
  const ERRORS = { Error, TypeError, RangeError, SyntaxError, ReferenceError, URIError };
  const IntrinsicSyntaxError = SyntaxError;
  const tracked = {};
  for (const name of Object.keys(ERRORS)) tracked[name] = track(ERRORS[name]);

  const noCodeGeneration = function () {
    throw new EvalError("Code generation from strings disallowed for this context");
  };
  const blockConstructor = (fn) => {
    const proto = Object.getPrototypeOf(fn);
    Object.defineProperty(proto, "constructor", { value: noCodeGeneration, writable: false, configurable: false });
  };
  blockConstructor(function () {});
  blockConstructor(async function () {});
  blockConstructor(function* () {});
  blockConstructor(async function* () {});
  noCodeGeneration.prototype = Function.prototype;

  const g = globalThis;
  delete g.__date_clock;
  g.console = console;
  for (const name of Object.keys(tracked)) g[name] = tracked[name];
  g.eval = noCodeGeneration;
  g.Function = noCodeGeneration;
  for (const name of ["require", "process", "global", "Buffer", "__dirname", "__filename",
                      "module", "exports", "setTimeout", "setInterval", "setImmediate",
                      "fetch", "XMLHttpRequest", "globalThis"]) {
    g[name] = undefined;
  }

  const describe = (error) => {
    try {
      if (userMade.has(error) || error instanceof IntrinsicSyntaxError) return toStr(error.message);
      return toStr(error);
    } catch (_) {
      return "Error";
    }
  };

  // lone surrogates cannot leave the engine as UTF-8: they become U+FFFD
  const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
  const wellFormed = (text) => text.replace(LONE_SURROGATE, "\uFFFD");

  // The output is what the synchronous part printed (the original built its answer
  // before the promise jobs ran): "printed" lines, "answered" with the completion value's
  // echo. Until the run returns (an uncatchable interrupt), every line counts.
  let printed = -1;
  let answered = -1;

  // Answers are JSON text, and so is the code (NUL characters survive the trip either
  // way: the engine's binding ends a string at its first NUL).
  // api("run", code) -> the error string or null;
  // api("output", echo) -> the captured output, with the echo unless echo is false
  return (action, code) => {
    if (action === "output") {
      const end = printed < 0 ? lines.length : code ? answered : printed;
      return stringify(wellFormed(lines.slice(0, end).join("\n")));
    }
    try {
      const result = (0, realEval)(parse(code));
      printed = lines.length;
      if (printed === 0 && result !== undefined) emit(result);
      answered = lines.length;
      return "null";
    } catch (error) {
      printed = answered = lines.length;
      return stringify(wellFormed(describe(error)));
    }
  };
})()
"""


def _engine_error(exc: Exception) -> str:
    """The message for a failure the script's own ``catch`` could not see: the CPU-time
    interrupt, a stack overflow, or memory so short that not even the error was built."""
    first = str(exc).split("\n", 1)[0]
    if "interrupted" in first:
        return TIMEOUT_MESSAGE
    if isinstance(exc, quickjs.StackOverflow) or "stack overflow" in first:
        return STACK_OVERFLOW_MESSAGE
    return OUT_OF_MEMORY_MESSAGE


def _text_or_none(answer: object) -> str | None:
    value = json.loads(answer) if isinstance(answer, str) else None
    return value if isinstance(value, str) else None


def _run_jobs(context: quickjs.Context, deadline: float) -> str | None:
    """Run the promise jobs the script left, within what is left of its CPU time.

    QuickJS turns its interrupt inside an async function or a promise callback into a
    rejection, so a job that hit the limit returns normally: the budget spent tells.
    Returns ``TIMEOUT_MESSAGE`` once the budget is spent, the engine's message for a job
    that failed uncatchably (out of memory, stack overflow), or ``None``."""
    while (remaining := deadline - time.process_time()) > 0:
        context.set_time_limit(remaining)
        try:
            if not context.execute_pending_job():
                return None
        except Exception as exc:
            return _engine_error(exc)
    return TIMEOUT_MESSAGE


def run_javascript(
    code: str,
    *,
    time_limit_s: float = TIME_LIMIT_S,
    memory_limit: int = MEMORY_LIMIT_BYTES,
) -> Result:
    """Run ``code`` as the original's executor would, in a context of its own.

    ``time_limit_s`` is CPU time for the script and the promise jobs it leaves (async
    functions, ``then`` callbacks), together: spending it is ``TIMEOUT_MESSAGE`` wherever
    it happened. The output and the completion value's echo are those of the synchronous
    part, as the original answered before its jobs ran (behaviours.md §6: a Promise
    result prints ``{}``, resolved or pending); a run that timed out shows the lines
    printed, without the echo."""
    context = quickjs.Context()
    context.set_max_stack_size(STACK_LIMIT_BYTES)
    runner = context.eval(PRELUDE)
    context.set_memory_limit(memory_limit)
    context.set_time_limit(time_limit_s)
    started = time.perf_counter()
    deadline = time.process_time() + time_limit_s
    error: str | None
    try:
        error = _text_or_none(runner("run", json.dumps(code)))
    except Exception as exc:  # interrupted, out of memory, stack overflow: uncatchable
        error = _engine_error(exc)
    else:
        if error == "null" and "throw" not in code:
            # QuickJS throws null when even the out-of-memory error could not be allocated;
            # a script without ``throw`` cannot throw null itself
            error = OUT_OF_MEMORY_MESSAGE
        if error != OUT_OF_MEMORY_MESSAGE:  # the heap is not reliable after that
            error = _run_jobs(context, deadline) or error
    elapsed = round((time.perf_counter() - started) * 1000)
    try:
        context.set_time_limit(OUTPUT_TIME_LIMIT_S)
        context.set_memory_limit(memory_limit + OUTPUT_HEADROOM_BYTES)
        output = _text_or_none(runner("output", error != TIMEOUT_MESSAGE)) or ""
    except Exception:
        output = ""
    return {"output": output, "error": error, "executionTimeMs": elapsed}

"""Content types of stored files, by extension (what the original's static server sent).

The table holds the extensions an upload or avatar can plausibly carry, with the
types of the ``mime`` package's database; anything else is
``application/octet-stream``. Text and JSON types get ``; charset=utf-8``.
"""

from __future__ import annotations

from typing import Final

OCTET_STREAM: Final = "application/octet-stream"

_TYPES: Final[dict[str, str]] = {
    # images
    "apng": "image/apng",
    "avif": "image/avif",
    "bmp": "image/bmp",
    "gif": "image/gif",
    "heic": "image/heic",
    "heif": "image/heif",
    "ico": "image/vnd.microsoft.icon",
    "jfif": "image/jpeg",
    "jpe": "image/jpeg",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "png": "image/png",
    "svg": "image/svg+xml",
    "svgz": "image/svg+xml",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "webp": "image/webp",
    # documents and data
    "csv": "text/csv",
    "htm": "text/html",
    "html": "text/html",
    "shtml": "text/html",
    "xhtml": "application/xhtml+xml",
    "xht": "application/xhtml+xml",
    "json": "application/json",
    "map": "application/json",
    "md": "text/markdown",
    "markdown": "text/markdown",
    "pdf": "application/pdf",
    "rtf": "text/rtf",
    "txt": "text/plain",
    "text": "text/plain",
    "conf": "text/plain",
    "def": "text/plain",
    "list": "text/plain",
    "log": "text/plain",
    "in": "text/plain",
    "ini": "text/plain",
    "xml": "application/xml",
    "xsl": "application/xml",
    "yaml": "text/yaml",
    "yml": "text/yaml",
    "css": "text/css",
    "js": "application/javascript",
    "mjs": "application/javascript",
    "wasm": "application/wasm",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt": "application/vnd.ms-powerpoint",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "zip": "application/zip",
    "gz": "application/gzip",
    "tar": "application/x-tar",
    "7z": "application/x-7z-compressed",
    # audio / video
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "ogg": "audio/ogg",
    "wav": "audio/wav",
    "weba": "audio/webm",
    "mp4": "video/mp4",
    "m4v": "video/mp4",
    "mov": "video/quicktime",
    "webm": "video/webm",
    # fonts
    "otf": "font/otf",
    "ttf": "font/ttf",
    "woff": "font/woff",
    "woff2": "font/woff2",
}

#: types a browser may render inline from the API origin without running script
_INLINE_SAFE: Final = frozenset(
    {
        "image/apng",
        "image/avif",
        "image/bmp",
        "image/gif",
        "image/heic",
        "image/heif",
        "image/vnd.microsoft.icon",
        "image/jpeg",
        "image/png",
        "image/tiff",
        "image/webp",
        "application/pdf",
        "text/plain",
        "text/csv",
        "text/markdown",
        "application/json",
        "audio/mpeg",
        "audio/mp4",
        "audio/ogg",
        "audio/wav",
        "audio/webm",
        "video/mp4",
        "video/quicktime",
        "video/webm",
    }
)


def type_for_name(name: str) -> str:
    """The bare MIME type for a file name, from its extension (case-insensitive)."""
    base = name.rsplit("/", 1)[-1]
    dot = base.rfind(".")
    if dot <= 0:  # no extension, or a dotfile such as ".png"
        return OCTET_STREAM
    return _TYPES.get(base[dot + 1 :].lower(), OCTET_STREAM)


def with_charset(mime: str) -> str:
    """The ``Content-Type`` header value: text and JSON types declare UTF-8."""
    if mime.startswith(("text/", "application/json", "application/javascript")):
        return f"{mime}; charset=utf-8"
    return mime


def inline_safe(mime: str) -> bool:
    """False for types that can carry script (HTML, SVG, XML, JS) or are unknown."""
    return mime in _INLINE_SAFE

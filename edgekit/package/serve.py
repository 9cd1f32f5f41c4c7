"""``edgekit serve DIR``: serve a web package on 127.0.0.1, with the headers wasm threads need.

Only files under DIR are served: ``..`` cannot climb out of it (the standard library's handler
drops it), and a symbolic link inside DIR that points outside it is answered 404.
A busy port is not fatal: the next free one is used, and the address is printed.

Example:
    >>> server = make_server("dist/web", port=0)     # doctest: +SKIP
    >>> server.server_address[1] > 0                  # doctest: +SKIP
    True
"""

from __future__ import annotations

import errno
import functools
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from edgekit.errors import InputError
from edgekit.page_headers import PAGE_HEADERS


class _Handler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm", ".mjs": "text/javascript",
                      ".js": "text/javascript", ".json": "application/json"}

    def end_headers(self):
        for header, value in PAGE_HEADERS.items():  # cross-origin isolation, no caching
            self.send_header(header, value)
        super().end_headers()

    def translate_path(self, path):
        local = super().translate_path(path)
        root = Path(self.directory).resolve()
        resolved = Path(local).resolve()
        if resolved != root and root not in resolved.parents:  # a link out of DIR
            return str(root / ".edgekit-outside-the-served-folder")  # does not exist: 404
        return local

    def log_message(self, format, *args):  # noqa: A002 (the standard library's name)
        pass


def make_server(directory: str | Path, *, port: int = 8000, tries: int = 20) -> ThreadingHTTPServer:
    d = Path(directory)
    if not d.is_dir():
        raise InputError(f"{d} is not a folder", hint="pass the folder `edgekit package ARTIFACT --target web` wrote")
    if not (d / "index.html").is_file():
        raise InputError(f"{d} has no index.html", hint="package a TF.js model with `edgekit package ARTIFACT --target web --out DIR`")
    handler = functools.partial(_Handler, directory=str(d.resolve()))
    last = None
    for p in ([0] if port == 0 else range(port, port + tries)):
        try:
            return ThreadingHTTPServer(("127.0.0.1", p), handler)
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise InputError(f"cannot listen on 127.0.0.1:{p}: {e.strerror}") from None
            last = p
    raise InputError(f"ports {port} to {last} on 127.0.0.1 are all busy", hint="pass --port N")

"""The headers of every page and file edgekit serves to a browser (the local runtimes' page server,
``edgekit serve``, a phone's page through ``bench --remote``): cross-origin isolation, which wasm
threads (SharedArrayBuffer) and precise timers need, and no caching, so a page never runs an older
model than the one just written.

Example:
    >>> PAGE_HEADERS["Cross-Origin-Embedder-Policy"]
    'require-corp'
"""

PAGE_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}

"""Where a client reaches this machine: its address on the LAN.

Example:
    >>> lan_address()   # doctest: +SKIP
    '192.168.1.20'
"""

from __future__ import annotations


def lan_address() -> str:
    """This machine's address on its LAN (what a client types), without sending anything."""
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # TEST-NET-1: picks the outgoing interface; no packet is sent
        return s.getsockname()[0]
    except OSError:
        return socket.gethostname()
    finally:
        s.close()


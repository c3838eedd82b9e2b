"""amber-relay: geo-targeted AMBER Alerts from agencies to exactly the right open sockets.

The core package holds the pure parts (model, frames, geometry, CAP parsing, signing)
and the shared Redis layout; ``broadcaster``, ``workers`` and ``clients`` are the
processes and tools built on it.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]

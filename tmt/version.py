"""The version of tmt (one place: setup.cfg and ``tmt.__version__`` read it)."""

__version__ = "0.2.0"

"""``tmt serve``: a local web page and HTTP API over one loaded bundle (the ``serve`` extra)."""

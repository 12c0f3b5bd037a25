"""``tmt serve``: the web page and HTTP API over one bundle (needs the ``serve`` extra)."""

from __future__ import annotations

import argparse

from tmt.cli.help import HelpFormatter, add_precision_argument
from tmt.errors import TmtError


def _cmd_serve(args: argparse.Namespace) -> None:
    try:
        import uvicorn

        from tmt.serve.app import create_app
    except ImportError as error:
        raise TmtError(f"tmt serve needs the serve extra ({error.name} is missing): "
                       "pip install 'tmt[serve]'") from None
    import socket

    import torch

    from tmt.bundle import Bundle

    if not 0 <= args.port <= 65535:
        raise TmtError(f"--port {args.port}: not a TCP port (0-65535)")
    if args.max_upload_mb <= 0 or args.max_batch < 1 or args.threads < 1:
        raise TmtError("--max-upload-mb must be positive, --max-batch and --threads at least 1")
    with socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET) as probe:
        try:  # a taken port or an address that is not this machine's: one line, before loading
            probe.bind((args.host, args.port))
        except OSError as error:
            raise TmtError(f"cannot listen on {args.host}:{args.port}: {error.strerror}") from None
    torch.set_num_threads(args.threads)
    bundle = Bundle.load(args.model, device=args.device, precision=args.precision)
    app = create_app(bundle, max_upload=int(args.max_upload_mb * 1024 * 1024),
                     max_batch=args.max_batch, window=args.batch_window_ms / 1000)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"tmt serve: model {bundle.name} at http://{host}:{args.port}/ (Ctrl-C to stop)",
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


def add_commands(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser(
        "serve", help="a local web page and HTTP API for all six directions",
        description="Serve one bundle: a page (microphone or sound file, image upload or drop, "
        "text) and POST /translate, GET /health, GET /info. Binds to 127.0.0.1 unless --host "
        "says otherwise. Requests of one direction that arrive together are batched.",
        formatter_class=HelpFormatter)
    serve.add_argument("--model", default="shapes", help="bundle name or path (tmt models)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (0.0.0.0: every interface; think twice)")
    serve.add_argument("--port", type=int, default=7860, help="TCP port")
    serve.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")
    serve.add_argument("--threads", type=int, default=1, help="torch threads for the model")
    add_precision_argument(serve)
    serve.add_argument("--max-batch", type=int, default=8,
                       help="most requests translated as one batch (1: one at a time)")
    serve.add_argument("--batch-window-ms", type=float, default=10.0,
                       help="how long the first waiting request waits for others to batch with")
    serve.add_argument("--max-upload-mb", type=float, default=16.0, help="largest request body")
    serve.set_defaults(handler=_cmd_serve)

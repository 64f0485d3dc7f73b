"""Start the fastnst demo: ``python app.py [--host H] [--port P] [--share]``.

This is the Hugging Face Spaces entry point too (Spaces set GRADIO_SERVER_NAME/PORT). Every flag
has an environment variable; see README, "Demo".
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

TRUE = ("1", "true", "yes", "on")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(description="fastnst demo: stylize images in the browser.")
    p.add_argument("--host", default=env("FASTNST_HOST") or env("GRADIO_SERVER_NAME") or "127.0.0.1",
                   help="interface to listen on (0.0.0.0 for all); env FASTNST_HOST / GRADIO_SERVER_NAME")
    p.add_argument("--port", type=int, default=int(env("FASTNST_PORT") or env("GRADIO_SERVER_PORT") or 7860),
                   help="port; env FASTNST_PORT / GRADIO_SERVER_PORT (default 7860)")
    p.add_argument("--share", action="store_true", default=(env("GRADIO_SHARE") or "").lower() in TRUE,
                   help="also open a public gradio.live link (needs network); env GRADIO_SHARE=1")
    p.add_argument("--styles", help="comma-separated style sources (embedded, a folder, hub:owner/name, "
                                    "author:NAME, cache); env FASTNST_STYLE_SOURCES")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:1, mps; env FASTNST_DEVICE")
    p.add_argument("--max-size", type=int, help="cap on the output's longest side in px; env FASTNST_DEMO_MAX_SIZE")
    p.add_argument("--concurrency", type=int, help="requests processed at once per device; env FASTNST_DEMO_CONCURRENCY")
    p.add_argument("--tmp", help="bounded folder for temporary files; env FASTNST_DEMO_TMP")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for noisy in ("httpx", "httpcore"):  # one INFO line per HTTP request otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Nothing phones home: no Gradio analytics or version check, no Hub telemetry.
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    if args.styles:
        os.environ["FASTNST_STYLE_SOURCES"] = args.styles

    from demo.service import Settings, StyleService

    from fastnst.errors import FastNSTError

    try:
        settings = Settings.from_env(device=args.device, max_size=args.max_size, concurrency=args.concurrency,
                                     tmp_dir=args.tmp)
        # Gradio's uploads and cache go inside the bounded folder (set before Gradio is imported).
        os.environ.setdefault("GRADIO_TEMP_DIR", str(settings.tmp_dir / "gradio"))
        service = StyleService(settings)
    except (FastNSTError, ValueError, OSError) as e:
        sys.exit(f"fastnst demo: {e}")
    for warning in service.warnings:
        logging.getLogger("fastnst.demo").warning(warning)

    from demo.ui import launch

    launch(service, host=args.host, port=args.port, share=args.share)


if __name__ == "__main__":
    main()

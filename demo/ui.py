"""The Gradio app: a gallery of styles, an image (upload, webcam, clipboard) and its stylization
before/after, a live webcam mode and a contact sheet of every style.

Build it with :func:`build` and serve it with :func:`launch`; ``app.py`` does both. All the work
is done by :class:`demo.service.StyleService`; this module only lays out components and turns
fastnst's errors into ``gr.Error`` messages (the app keeps serving after any of them).
"""

from __future__ import annotations

import functools
import html
import logging
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import gradio as gr

from fastnst.errors import FastNSTError
from fastnst.images import MAX_FILE_BYTES

from .service import LIVE_SIZES, EXAMPLES_DIR, FpsMeter, StyleService, example_images

log = logging.getLogger("fastnst.demo")

TITLE = "fastnst · fast neural style transfer"
CSS = """
#style-gallery .caption-label { white-space: normal; font-size: 0.8em; }
.fastnst-notice { border-left: 4px solid var(--color-accent); padding-left: 0.6em; }
"""
LIVE_CHOICES = ["auto", "128", "192", "256", "320", "384", "512"]


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Expected failures (bad image, unknown style, bad parameter) become a ``gr.Error`` with the
    message; anything else is logged and reported without internals. The server keeps running."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (FastNSTError, ValueError) as e:
            raise gr.Error(html.escape(str(e), quote=False), title="Cannot do that", print_exception=False) from None
        except MemoryError:
            raise gr.Error("out of memory: try a smaller output size.", print_exception=False) from None
        except Exception as e:  # a bug or a device failure: log it, keep serving
            log.exception("request failed")
            if "out of memory" in str(e).lower():
                raise gr.Error("the device ran out of memory: try a smaller output size.",
                               print_exception=False) from None
            raise gr.Error(f"internal error ({type(e).__name__}); the request was not processed.",
                           print_exception=False) from None

    return wrapper


def _style_choices(service: StyleService) -> list[tuple[str, str]]:
    return [(f"{e.info.label} [{e.info.source}]", e.key) for e in service.entries]


def _status_md(service: StyleService) -> str:
    n = len(service.entries)
    parts = [f"Device: **{service.device_label}**", f"{n} style{'s' if n != 1 else ''}",
             f"output up to {service.settings.max_size} px"]
    lines = [" · ".join(parts)]
    if not n:
        lines.append(f'<div class="fastnst-notice">{html.escape(service.no_styles_message(), quote=False)}</div>')
    for w in service.warnings:
        lines.append(f'<div class="fastnst-notice">⚠ {html.escape(w, quote=False)}</div>')
    return "\n\n".join(lines)


def build(service: StyleService | None = None) -> gr.Blocks:
    """The Blocks app over ``service`` (by default one built from the environment)."""
    service = service or StyleService()
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(600, service.settings.tmp_max_age_s)) as demo:
        gr.Markdown(f"# {TITLE}\nPick a style, give an image, press **Stylize**. "
                    "Styles are feed-forward networks (Johnson et al., 2016): one pass per image.")
        status = gr.Markdown(_status_md(service), label="Status", elem_id="status")
        with gr.Row(equal_height=False):
            picker = _style_picker(service)
            inputs = _input_panel(service)
            results = _results_panel()
        live = _live_panel()
        _wire(demo, service, status, picker, inputs, results, live)
    demo.queue(default_concurrency_limit=service.concurrency, max_size=service.settings.queue_size)
    return demo


def _style_picker(service: StyleService) -> SimpleNamespace:
    """The gallery of styles, the style dropdown, and the Hub pull box."""
    keys = service.keys()
    with gr.Column(scale=5):
        rows = max(1, min(3, -(-len(keys) // 3)))        # the gallery scrolls beyond three rows
        gallery = gr.Gallery(value=service.gallery(), label="Styles", columns=3, height=40 + 170 * rows,
                             allow_preview=False, object_fit="cover", interactive=False, elem_id="style-gallery")
        style = gr.Dropdown(choices=_style_choices(service), value=keys[0] if keys else None,
                            label="Style", elem_id="style-choice")
        with gr.Row(visible=service.settings.allow_pull):
            repo = gr.Textbox(label="Add a style from the Hub", placeholder="owner/name", scale=4, elem_id="hub-repo")
            pull = gr.Button("Pull", scale=1, elem_id="hub-pull")
    return SimpleNamespace(gallery=gallery, style=style, repo=repo, pull=pull)


def _input_panel(service: StyleService) -> SimpleNamespace:
    """The image (upload, webcam, clipboard, examples), the options, and the two buttons."""
    settings = service.settings
    with gr.Column(scale=5):
        image = gr.Image(label="Your image", sources=["upload", "webcam", "clipboard"], type="filepath",
                         image_mode=None, height=360, elem_id="input-image")
        if example_images():
            gr.Examples([[str(p)] for p in example_images()], inputs=[image],
                        label="Examples (public domain, see demo/examples/SOURCES.md)")
        strength = gr.Slider(0, 1, value=1.0, step=0.05, label="Strength",
                             info="0 keeps the photo, 1 is the full style", elem_id="strength")
        preserve = gr.Checkbox(False, label="Preserve colours", info="take only the style's luminance",
                               elem_id="preserve")
        size = gr.Slider(64, settings.max_size, value=settings.default_size, step=16,
                         label="Output size (longest side, px)", elem_id="size")
        with gr.Row():
            run = gr.Button("Stylize", variant="primary", elem_id="stylize")
            sheet_btn = gr.Button("Contact sheet: every style", elem_id="contact-sheet")
    return SimpleNamespace(image=image, strength=strength, preserve=preserve, size=size, run=run, sheet_btn=sheet_btn)


def _results_panel() -> SimpleNamespace:
    """Before/after slider with the download, and the contact sheet, in two tabs."""
    with gr.Column(scale=6):
        with gr.Tabs() as tabs:
            with gr.Tab("Before / after", id="compare"):
                compare = gr.ImageSlider(label="Before / after", type="filepath", elem_id="compare")
                download = gr.DownloadButton("Download PNG (full resolution)", value=None, size="md",
                                             elem_id="download")
                info = gr.Markdown(label="Result", elem_id="result-info")
            with gr.Tab("Contact sheet", id="sheet"):
                sheet = gr.Image(label="Every style", type="filepath", interactive=False,
                                 buttons=["download", "fullscreen"], elem_id="sheet")
    return SimpleNamespace(tabs=tabs, compare=compare, download=download, info=info, sheet=sheet)


def _live_panel() -> SimpleNamespace:
    """The live webcam accordion: camera, stylized stream, working size and frame rate."""
    with gr.Accordion("Live webcam", open=False, elem_id="live"):
        gr.Markdown("Stream your camera through the chosen style, frame by frame. "
                    "`auto` picks the largest working size that keeps several frames per second.")
        with gr.Row():
            cam = gr.Image(label="Camera", sources=["webcam"], streaming=True, type="filepath",
                           webcam_options=gr.WebcamOptions(mirror=True, constraints={
                               "video": {"width": {"ideal": 640}, "height": {"ideal": 480}}}),
                           elem_id="live-cam")
            out = gr.Image(label="Stylized (live)", streaming=True, interactive=False, elem_id="live-out")
        with gr.Row():
            size = gr.Dropdown(LIVE_CHOICES, value="auto", label="Working size (longest side, px)",
                               elem_id="live-size")
            fps = gr.Markdown("Start the camera to see the frame rate.", elem_id="live-fps")
        meter = gr.State(None)
    return SimpleNamespace(cam=cam, out=out, size=size, fps=fps, meter=meter)


def _wire(demo: gr.Blocks, service: StyleService, status: gr.Markdown, picker: SimpleNamespace,
          inputs: SimpleNamespace, results: SimpleNamespace, live: SimpleNamespace) -> None:
    """The handlers and their events: stylizing shares the device queue, pulls the Hub queue."""
    device_events = dict(concurrency_id="device", concurrency_limit=service.concurrency)

    @user_errors
    def do_stylize(image: Any, style: str, strength: float, preserve_color: bool, max_size: float):
        size = service.clamp_size(max_size)
        if max_size not in (None, "") and float(max_size) > size:
            gr.Warning(f"output size capped at the server's maximum of {service.settings.max_size} px.")
        t0 = time.perf_counter()
        before, after = service.stylize(image, style, strength, preserve_color, size)
        dt = time.perf_counter() - t0
        entry = service.entry(style)
        stem = entry.key.replace("/", "-")
        png = str(service.save_output(after, stem))
        shown = str(service.save_output(before, f"{stem}-input", ".webp"))
        label = html.escape(entry.info.label, quote=False)
        text = f"**{label}** · {after.width}×{after.height} px · {dt:.2f} s on {service.device.type}"
        return (shown, png), png, text

    @user_errors
    def do_sheet(image: Any, strength: float, preserve_color: bool):
        grid = service.contact_sheet(image, strength=strength, preserve_color=preserve_color)
        return str(service.save_output(grid, "contact-sheet")), gr.Tabs(selected="sheet")

    @user_errors
    def do_pull(repo_id: str, progress=gr.Progress(track_tqdm=True)):
        progress(0, desc=f"pulling {repo_id}")
        entry = service.add_hub_style(repo_id)
        gr.Info(f"added {html.escape(entry.key, quote=False)}")
        return (service.gallery(), gr.Dropdown(choices=_style_choices(service), value=entry.key), "",
                _status_md(service))

    def do_pick(evt: gr.SelectData):
        entries = service.entries
        if isinstance(evt.index, int) and 0 <= evt.index < len(entries):
            return gr.Dropdown(value=entries[evt.index].key)
        return gr.Dropdown()

    def do_refresh():
        return service.gallery(), gr.Dropdown(choices=_style_choices(service)), _status_md(service)

    @user_errors
    def do_frame(frame: Any, style: str, strength: float, preserve_color: bool, working: str,
                 m: FpsMeter | None):
        if frame is None:
            return gr.Image(), "waiting for the camera…", m
        m = m or FpsMeter(size=256 if service.device.type == "cpu" else LIVE_SIZES[1])
        out = service.stylize_frame(frame, style, strength, preserve_color, m, working)
        return out, f"**{m.fps:.1f} fps** · {out.width}×{out.height} px · {service.device.type}", m

    options = [inputs.strength, inputs.preserve]
    inputs.run.click(do_stylize, [inputs.image, picker.style, *options, inputs.size],
                     [results.compare, results.download, results.info], api_name="stylize", preprocess=False,
                     **device_events)
    inputs.sheet_btn.click(do_sheet, [inputs.image, *options], [results.sheet, results.tabs],
                           api_name="contact_sheet", preprocess=False, **device_events)
    pulled = [picker.gallery, picker.style, picker.repo, status]
    picker.pull.click(do_pull, [picker.repo], pulled, api_name="add_style", concurrency_id="hub", concurrency_limit=1)
    picker.repo.submit(do_pull, [picker.repo], pulled, api_visibility="private", concurrency_id="hub",
                       concurrency_limit=1)
    picker.gallery.select(do_pick, None, [picker.style], queue=False, api_visibility="private")
    demo.load(do_refresh, None, [picker.gallery, picker.style, status], queue=False, api_visibility="private")
    live.cam.stream(do_frame, [live.cam, picker.style, *options, live.size, live.meter], [live.out, live.fps, live.meter],
                    stream_every=0.1, time_limit=120, preprocess=False, api_visibility="private",
                    concurrency_id="live", concurrency_limit=max(2, service.concurrency), show_progress="hidden")


def launch(service: StyleService, host: str = "127.0.0.1", port: int = 7860, share: bool = False,
           **kwargs: Any) -> Any:
    """Build and serve the app (blocks unless ``prevent_thread_lock=True``)."""
    demo = build(service)
    service.start_janitor(keep=lambda: set().union(*(getattr(b, "keep_in_cache", set()) for b in demo.blocks.values())))
    return demo.launch(
        server_name=host, server_port=port, share=share,
        max_file_size=MAX_FILE_BYTES, show_error=True, css=CSS,
        allowed_paths=[str(EXAMPLES_DIR), str(service.settings.tmp_dir)],
        footer_links=["api", "gradio"], enable_monitoring=False, ssr_mode=False, pwa=False, mcp_server=False,
        **kwargs,
    )

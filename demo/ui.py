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
from PIL import Image

from fastnst.errors import FastNSTError
from fastnst.images import MAX_FILE_BYTES

from .service import EXAMPLES_DIR, FpsMeter, StyleService, example_images

log = logging.getLogger("fastnst.demo")

TITLE = "fastnst · fast neural style transfer"
CSS = """
#style-gallery .thumbnail-item { display: flex; flex-direction: column; aspect-ratio: auto; overflow: visible; }
#style-gallery .thumbnail-item img { aspect-ratio: 1; height: auto; }
#style-gallery .caption-label { position: static; background: none; color: var(--body-text-color); border: none;
  max-width: 100%; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; font-size: 0.8em; padding: 2px 0; }
#style-gallery .thumbnail-item.selected { outline: 4px solid var(--color-accent); outline-offset: 1px; }
#intro h2 { margin: 0 0 0.2em; }
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


def with_busy_button(trigger: Callable[..., Any], button: gr.Button, text: str, fn: Callable[..., Any],
                     inputs: list[Any], outputs: list[Any], **event: Any) -> None:
    """``trigger`` runs ``fn`` with its outputs free of progress and error states; meanwhile ``button`` says
    ``text`` and is disabled, and afterwards (success or failure) it is as it was."""
    label = button.value
    quiet = dict(queue=False, api_visibility="private", show_progress="hidden")
    work = trigger(lambda: gr.Button(value=text, interactive=False), None, [button], **quiet).then(
        fn, inputs, outputs, show_progress="hidden", **event)
    for after in (work.success, work.failure):  # (.then alone does not follow a failure in Gradio 6's front end)
        after(lambda: gr.Button(value=label, interactive=True), None, [button], **quiet)


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
    """The Blocks app over ``service`` (by default one built from the environment).

    Input and result side by side, Stylize and the result in view without scrolling on a laptop
    (1280x900); the gallery of styles, the Hub box and the examples below; on a phone the columns stack."""
    service = service or StyleService()
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(600, service.settings.tmp_max_age_s)) as demo:
        gr.Markdown(f"## {TITLE}\nPick a style, give an image, press **Stylize**: one pass of a feed-forward "
                    "network per image (Johnson et al., 2016).", elem_id="intro")
        status = gr.Markdown(_status_md(service), label="Status", elem_id="status")
        with gr.Row(equal_height=False):
            inputs = _input_panel(service)
            results = _results_panel()
        picker = _style_picker(service, inputs)
        live = _live_panel()
        video = _video_panel(service)
        _wire(demo, service, status, picker, inputs, results, live, video)
    demo.queue(default_concurrency_limit=service.concurrency, max_size=service.settings.queue_size)
    return demo


def _input_panel(service: StyleService) -> SimpleNamespace:
    """The image (upload, webcam, clipboard), the style, the two buttons, then the options."""
    settings, keys = service.settings, service.keys()
    with gr.Column(scale=4, min_width=320):
        image = gr.Image(label="Your image", sources=["upload", "webcam", "clipboard"], type="filepath",
                         image_mode=None, height=280, elem_id="input-image")
        style = gr.Dropdown(choices=_style_choices(service), value=keys[0] if keys else None,
                            label="Style (or pick one in the gallery below)", elem_id="style-choice")
        with gr.Row():
            run = gr.Button("Stylize", variant="primary", scale=2, elem_id="stylize")
            sheet_btn = gr.Button("Every style", variant="secondary", scale=1, elem_id="contact-sheet")
        with gr.Accordion("Options", open=True):
            strength = gr.Slider(0, 1, value=1.0, step=0.05, label="Strength",
                                 info="0 keeps the photo, 1 is the full style", elem_id="strength")
            size = gr.Slider(64, settings.max_size, value=settings.default_size, step=16,
                             label="Output size (longest side, px)", elem_id="size")
            preserve = gr.Checkbox(False, label="Preserve colours", info="take only the style's luminance",
                                   elem_id="preserve")
    return SimpleNamespace(image=image, style=style, strength=strength, preserve=preserve, size=size, run=run,
                           sheet_btn=sheet_btn)


def _results_panel() -> SimpleNamespace:
    """The largest part of the page: before/after slider with the download, and the contact sheet."""
    with gr.Column(scale=6, min_width=320):
        with gr.Tabs() as tabs:
            with gr.Tab("Before / after", id="compare"):
                compare = gr.ImageSlider(label="Before / after", type="filepath", height=520, elem_id="compare")
                with gr.Row():
                    info = gr.Markdown("Your result appears here.", label="Result", elem_id="result-info")
                    download = gr.DownloadButton("Download PNG", value=None, size="md", scale=0,
                                                 elem_id="download")
            with gr.Tab("Contact sheet", id="sheet"):
                sheet = gr.Image(label="Every style", type="filepath", interactive=False, height=560,
                                 buttons=["download", "fullscreen"], elem_id="sheet")
    return SimpleNamespace(tabs=tabs, compare=compare, download=download, info=info, sheet=sheet)


def _style_picker(service: StyleService, inputs: SimpleNamespace) -> SimpleNamespace:
    """The gallery of styles (the painting, its title under it), the Hub pull box and the example photos."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=7, min_width=320):
            rows = max(1, min(2, -(-len(service.keys()) // 5)))  # the gallery scrolls beyond two rows
            gallery = gr.Gallery(value=service.gallery(), label="Styles", columns=5, height=50 + 215 * rows,
                                 allow_preview=False, object_fit="cover", interactive=False, elem_id="style-gallery")
        with gr.Column(scale=3, min_width=240):
            with gr.Row(visible=service.settings.allow_pull):
                repo = gr.Textbox(label="Add a style from the Hub", placeholder="owner/name", scale=3,
                                  elem_id="hub-repo")
                pull = gr.Button("Pull", scale=1, min_width=60, elem_id="hub-pull")
            if example_images():
                gr.Examples([[str(p)] for p in example_images()], inputs=[inputs.image],
                            label="Example photos (public domain, see demo/examples/SOURCES.md)")
    return SimpleNamespace(gallery=gallery, style=inputs.style, repo=repo, pull=pull)


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


def _video_panel(service: StyleService) -> SimpleNamespace:
    """The video accordion: a short clip in, the stylized clip (with its sound) out."""
    s = service.settings
    with gr.Accordion("Video", open=False, elem_id="video"):
        gr.Markdown(f"Upload a clip of up to {s.max_video_s} s: every frame through the chosen style (at most "
                    f"{s.max_video_size} px), its sound kept; flicker is smoothed where the picture is still.")
        with gr.Row():
            clip = gr.Video(label="Your clip", sources=["upload"], elem_id="video-in")
            out = gr.Video(label="Stylized clip", interactive=False, elem_id="video-out")
        run = gr.Button("Stylize video", variant="primary", elem_id="stylize-video")
    return SimpleNamespace(clip=clip, out=out, run=run)


def _wire(demo: gr.Blocks, service: StyleService, status: gr.Markdown, picker: SimpleNamespace,
          inputs: SimpleNamespace, results: SimpleNamespace, live: SimpleNamespace, video: SimpleNamespace) -> None:
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
    def do_video(clip: Any, style: str, strength: float, preserve_color: bool, max_size: float):
        return str(service.stylize_video(clip, style, strength, preserve_color, max_size))

    @user_errors
    def do_sheet(image: Any, strength: float, preserve_color: bool):
        grid = service.contact_sheet(image, strength=strength, preserve_color=preserve_color)
        return str(service.save_output(grid, "contact-sheet")), gr.Tabs(selected="sheet")

    @user_errors
    def do_pull(repo_id: str, request: gr.Request):
        entry = service.add_hub_style(repo_id, session=getattr(request, "session_hash", None))
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
        m = m or service.live_meter()
        out = service.stylize_frame(frame, style, strength, preserve_color, m, working)
        return out, f"**{m.fps:.1f} fps** · {out.width}×{out.height} px · {service.device.type}", m

    def do_check_upload(image: Any):
        """A bad file is named at once and removed, not shown as a broken image until Stylize."""
        if image is None:
            return gr.skip()
        try:
            service.prepare(image, 16, Image.Resampling.NEAREST)
        except (FastNSTError, ValueError) as e:
            gr.Warning(html.escape(str(e), quote=False), title="Cannot use this image")
            return None
        return gr.skip()

    # A failed action leaves every component as it was: its error is a toast (gr.Error, which API
    # clients receive as an error), the outputs show no progress or error state (show_progress
    # hidden), and the button itself says what is running.
    options = [inputs.strength, inputs.preserve]
    with_busy_button(inputs.run.click, inputs.run, "Stylizing…", do_stylize,
                     [inputs.image, picker.style, *options, inputs.size],
                     [results.compare, results.download, results.info], api_name="stylize", preprocess=False,
                     **device_events)
    with_busy_button(inputs.sheet_btn.click, inputs.sheet_btn, "Making the sheet…", do_sheet,
                     [inputs.image, *options], [results.sheet, results.tabs], api_name="contact_sheet",
                     preprocess=False, **device_events)
    with_busy_button(video.run.click, video.run, "Stylizing the clip…", do_video,
                     [video.clip, picker.style, *options, inputs.size], [video.out], api_name="stylize_video",
                     **device_events)
    pulled = [picker.gallery, picker.style, picker.repo, status]
    hub_events = dict(concurrency_id="hub", concurrency_limit=4)  # one pull per repo at a time (the service's lock)
    with_busy_button(picker.pull.click, picker.pull, "Pulling…", do_pull, [picker.repo], pulled,
                     api_name="add_style", **hub_events)
    with_busy_button(picker.repo.submit, picker.pull, "Pulling…", do_pull, [picker.repo], pulled,
                     api_visibility="private", **hub_events)
    inputs.image.upload(do_check_upload, [inputs.image], [inputs.image], preprocess=False,  # queued: toasts need it
                        api_visibility="private", show_progress="hidden")
    picker.gallery.select(do_pick, None, [picker.style], queue=False, api_visibility="private")
    demo.load(do_refresh, None, [picker.gallery, picker.style, status], queue=False, api_visibility="private")
    live.cam.stream(do_frame, [live.cam, picker.style, *options, live.size, live.meter], [live.out, live.fps, live.meter],
                    stream_every=0.1, time_limit=120, preprocess=False, api_visibility="private",
                    concurrency_id="live", concurrency_limit=max(2, service.concurrency), show_progress="hidden")


def launch(service: StyleService, host: str = "127.0.0.1", port: int = 7860, share: bool = False) -> gr.Blocks:
    """Build and serve the app until interrupted; prints where it is (Gradio's own banner is silenced,
    since it names ``launch()`` arguments rather than the app's ``--share``)."""
    demo = build(service)
    service.start_janitor(keep=lambda: set().union(*(getattr(b, "keep_in_cache", set()) for b in demo.blocks.values())))
    demo.launch(
        server_name=host, server_port=port, share=share, quiet=True, prevent_thread_lock=True,
        max_file_size=MAX_FILE_BYTES, show_error=True, css=CSS,
        allowed_paths=[str(EXAMPLES_DIR), str(service.settings.tmp_dir)],
        footer_links=["api", "gradio"], enable_monitoring=False, ssr_mode=False, pwa=False, mcp_server=False,
    )
    public = f"; public link {demo.share_url}" if demo.share_url else " (python app.py --share for a public link)"
    print(f"fastnst demo running at {demo.local_url}{public}. Ctrl+C stops it.", flush=True)
    demo.block_thread()
    return demo

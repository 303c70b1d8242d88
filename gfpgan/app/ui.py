"""The Gradio page: upload photos, restore them, compare before/after, download; plus the `/restore` API.

The page takes raw files (not gradio's decoded images) so that every upload goes through
`gfpgan.app.uploads` (16-bit, CMYK and gray files converted, broken ones named on the page, large ones
shrunk and said so). A problem with one file is a line in the status box and the others still run;
a model that cannot be loaded stops the request with a message naming the weight file. The `/restore`
endpoint is the same work for one file, for `gradio_client` callers: restored image and faces out.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import gradio as gr
import numpy as np

from gfpgan.app.service import ModelError, Restored, RestorerService
from gfpgan.app.uploads import UploadError, UploadLimits, check_video, read_upload
from gfpgan.app.workspace import Workspace
from gfpgan.utils.image_io import imwrite

TITLE = 'GFPGAN face restoration'
RESTORE_QUEUE = 'restore'  # one concurrency limit (--concurrency) over the photo, API and video events


def video_available() -> bool:
    """True once the project has video restoration (`gfpgan.video` and `GFPGANer.enhance_video`)."""
    try:
        import gfpgan.video  # noqa: F401
        from gfpgan.restorer import GFPGANer
    except Exception:  # any import failure means no video tab
        return False
    return hasattr(GFPGANer, 'enhance_video')


def refuse(message: object, duration: float | None = 10) -> gr.Error:
    """An error toast for the page, without a traceback in the server log: the message says it all."""
    return gr.Error(str(message), duration=duration, print_exception=False)


def rgb(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(img[:, :, ::-1])


def before_after(item: Restored) -> tuple[np.ndarray, np.ndarray]:
    """(input, result) in RGB at the result's size, for the comparison slider."""
    after = item.result
    before = cv2.resize(item.image, (after.shape[1], after.shape[0]), interpolation=cv2.INTER_CUBIC)
    return rgb(before), rgb(after)


class RestorePage:
    """The page's handlers, bound to one service, one set of limits and one workspace."""

    def __init__(self, service: RestorerService, limits: UploadLimits, workspace: Workspace) -> None:
        self.service, self.limits, self.workspace = service, limits, workspace

    def _restore_file(self, path: str, choice: str, upscale: float, weight: float, only_center_face: bool,
                      aligned: bool) -> tuple[Restored, str]:
        """Read and restore one upload; returns the result and the note to show ('' when none)."""
        upload = read_upload(path, self.limits, upscale, aligned)
        item = self.service.restore(upload.image, choice, upscale=upscale, weight=weight,
                                    only_center_face=only_center_face, aligned=aligned)
        notes = [upload.note] if upload.note else []
        if not aligned and not item.restored_faces:
            notes.append(f'{upload.name}: no face found; the photo is only enlarged. For a face crop, tick '
                         '"Input is an aligned face".')
        return item, ' '.join(notes)

    def restore_photos(self, files: list[str] | None, choice: str, upscale: float, weight: float,
                       only_center_face: bool, aligned: bool):
        """Page handler: every uploaded file in turn; outputs slider, faces, photos, downloads, status."""
        if not files:
            return None, [], [], [], 'Upload one or more photos first.'
        if len(files) > self.limits.max_files:
            return None, [], [], [], (f'**Not restored**: {len(files)} files uploaded; the app restores at most '
                                      f'{self.limits.max_files} per request (--max_files). Remove some and press '
                                      'Restore again.')
        out_dir = self.workspace.new_request_dir()
        slider, faces, photos, downloads, lines = None, [], [], [], []
        for index, path in enumerate(files):
            name = Path(path).name
            try:
                item, note = self._restore_file(path, choice, upscale, weight, only_center_face, aligned)
            except ModelError as err:  # the same for every file: stop here, say it once
                raise refuse(err, duration=None) from err
            except UploadError as err:
                lines.append(f'- **Not restored**: {err}')  # the message names the file
                continue
            except (ValueError, RuntimeError, MemoryError) as err:
                lines.append(f'- **{name} failed**: {err}')
                continue
            stem = Path(name).stem
            target = out_dir / str(index) / f'{stem}_restored.png'  # a folder each: a.jpg and a.png both kept
            imwrite(item.result, target)
            downloads.append(str(target))
            photos.append((str(target), name))
            faces.extend((rgb(face), f'{stem} face {i + 1}') for i, face in enumerate(item.restored_faces))
            if slider is None:
                slider = before_after(item)
            lines.append(f'- {name}: restored {len(item.restored_faces)} face(s), result '
                         f'{item.result.shape[1]}x{item.result.shape[0]}.' + (f' {note}' if note else ''))
        return slider, faces, photos, downloads, '\n'.join(lines)

    def restore_api(self, file: str | None, choice: str, upscale: float, weight: float, only_center_face: bool,
                    aligned: bool):
        """`/restore`: one image file in; the restored image and the restored faces out."""
        if not file:
            raise refuse('No image file given.')
        try:
            item, _ = self._restore_file(file, choice, upscale, weight, only_center_face, aligned)
        except (ModelError, UploadError, ValueError, RuntimeError, MemoryError) as err:
            raise refuse(err) from err
        out_dir = self.workspace.new_request_dir()
        target = out_dir / f'{Path(file).stem}_restored.png'
        imwrite(item.result, target)
        faces = [(rgb(face), f'face {i + 1}') for i, face in enumerate(item.restored_faces)]
        return str(target), faces

    def restore_video(self, file: str | None, choice: str, upscale: float, weight: float, only_center_face: bool):
        """Video tab: the clip probed against the limits, then `GFPGANer.enhance_video`; the video and a status."""
        if not file:
            raise refuse('Upload a video first.')
        name = Path(file).name
        try:
            clip = check_video(file, self.limits, upscale, name)
        except UploadError as err:
            raise refuse(err) from err
        max_frames = self.limits.max_video_frames

        def count_frames(stage: str, done: int, total: int) -> None:  # the header may give no count, or a wrong one
            if stage == 'tracking' and done > max_frames:
                raise UploadError(f'{name}: over the app\'s {max_frames} frame limit (--max_video_frames); '
                                  'trim the clip before uploading.')

        target = self.workspace.new_request_dir() / f'{Path(file).stem}_restored.mp4'
        try:
            with self.service.restorer(choice, clip.upscale) as restorer:
                result = restorer.enhance_video(file, str(target), weight=weight, only_center_face=only_center_face,
                                                progress=count_frames)
        except (ModelError, UploadError, ValueError, RuntimeError, OSError) as err:
            raise refuse(str(err).replace(file, name)) from err
        status = (f'{name}: restored {result.faces} face crop(s) in {result.frames} frames '
                  f'({result.tracks} face track(s)) at {clip.upscale:g}x.' + (f' {clip.note}' if clip.note else ''))
        return str(target), status


def model_controls(service: RestorerService) -> list[Any]:
    """Model, upscale, fidelity weight and only-centre-face: shared by the photo tab and the video tab."""
    choice = gr.Dropdown(service.choices, value=service.default_choice, label='Model',
                         info='Release version (weights from the weights folder) or a local file given with '
                              '--model_path')
    upscale = gr.Slider(1, 4, value=2, step=0.5, label='Upscale', info='size of the result / size of the input')
    weight = gr.Slider(0, 1, value=1.0, step=0.05, label='Fidelity weight',
                       info='1 = the network\'s face only, 0 = the input face')
    only_center = gr.Checkbox(False, label='Only the centre face')
    return [choice, upscale, weight, only_center]


def build_demo(service: RestorerService, limits: UploadLimits, workspace: Workspace,
               video: bool | None = None) -> gr.Blocks:
    """The page (photo tab, a video tab when video restoration exists) and the `/restore` API endpoint."""
    page = RestorePage(service, limits, workspace)
    video = video_available() if video is None else video
    sweep = (max(1, round(workspace.sweep_every_s)), max(1, round(workspace.max_age_s)))  # gradio's own folder
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=sweep) as demo:
        gr.Markdown(f'# {TITLE}\nUp to {limits.max_files} photos per request, each up to {limits.max_file_mb:g} MB; '
                    f'results up to {limits.max_output_megapixels:g} Mpx (larger photos are downscaled first). '
                    'Files stay on this computer, in the app\'s temporary folder, and are removed after '
                    f'{workspace.max_age_s / 60:g} minutes.')
        with gr.Tab('Photos'):
            with gr.Row():
                with gr.Column():
                    files = gr.File(file_count='multiple', file_types=['image'], label='Photos or aligned faces',
                                    elem_id='upload')
                    controls = model_controls(service)
                    aligned = gr.Checkbox(False, label='Input is an aligned face (a 512x512 crop)')
                    run = gr.Button('Restore', variant='primary', elem_id='restore-btn')
                with gr.Column():
                    status = gr.Markdown(label='status', elem_id='status')
                    slider = gr.ImageSlider(label='Before / after (first photo)', format='png',
                                            elem_id='result-slider', interactive=False)
                    faces = gr.Gallery(label='Restored faces', format='png', columns=4, elem_id='faces')
                    photos = gr.Gallery(label='Restored photos', columns=3, object_fit='contain', elem_id='photos')
                    downloads = gr.File(label='Download', file_count='multiple', elem_id='downloads')
            run.click(page.restore_photos, inputs=[files, *controls, aligned],
                      outputs=[slider, faces, photos, downloads, status], api_name='restore_photos',
                      concurrency_id=RESTORE_QUEUE)
            with gr.Row(visible=False):  # the `/restore` API: no widgets of its own on the page
                api_file = gr.File(type='filepath', label='image')
                api_image = gr.Image(type='filepath', format='png', label='restored')
                api_faces = gr.Gallery(format='png', label='faces')
                api_run = gr.Button()
            api_run.click(page.restore_api, inputs=[api_file, *controls, aligned], outputs=[api_image, api_faces],
                          api_name='restore', concurrency_id=RESTORE_QUEUE)
        if video:
            with gr.Tab('Video'):
                with gr.Row():
                    with gr.Column():
                        gr.Markdown(f'Clips up to {limits.max_video_frames} frames; restored frames up to '
                                    f'{limits.max_output_megapixels:g} Mpx (a lower upscale is used when needed).')
                        clip = gr.File(file_types=['video'], label='Video', elem_id='video-upload')
                        video_controls = model_controls(service)
                        video_run = gr.Button('Restore video', variant='primary', elem_id='video-btn')
                    with gr.Column():
                        video_status = gr.Markdown(elem_id='video-status')
                        video_out = gr.Video(label='Restored video', elem_id='video-result')
                video_run.click(page.restore_video, inputs=[clip, *video_controls], outputs=[video_out, video_status],
                                api_name='restore_video', concurrency_id=RESTORE_QUEUE)
    return demo

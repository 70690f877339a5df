"""One recorded episode per task, as GIF files and as animated images in TensorBoard.

Rendering is offscreen MuJoCo: set `MUJOCO_GL=egl` (or `osmesa`) before MuJoCo is first imported, which
`evaluate.py --video` does for you. Episodes run to the protocol's time limit (they do not stop at the first
success), so every video of a protocol has the same length: `max_episode_steps + 1` frames, the first being
the reset state.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np

from mtrl.envs import MT10, PROTOCOLS, TASK_NAMES, Protocol
from mtrl.evaluation import Policy


def video_env(protocol: str | Protocol, seed: int, reward_version: str = "v2", size: int = 256) -> MT10:
    """MT10 rendering `size` x `size` frames, its time limit one step past the protocol's.

    The vector env resets an episode in the very step that ends it, so the last state of an episode could not
    be rendered; with one step of slack, `record_episodes` stops at the protocol's limit itself.
    """
    protocol = PROTOCOLS[protocol] if isinstance(protocol, str) else protocol
    slack = dataclasses.replace(protocol, max_episode_steps=protocol.max_episode_steps + 1)
    return MT10(slack, seed, reward_version, render_mode="rgb_array", width=size, height=size)


def record_episodes(policy: Policy, env: MT10) -> dict[str, np.ndarray]:
    """Frames `[T + 1, H, W, 3]` (uint8, row 0 at the top of the picture) of one deterministic episode per task,
    T being the protocol's episode length; `env` comes from `video_env`."""
    steps = env.protocol.max_episode_steps - 1
    obs = env.reset()
    frames = [np.stack(env.render())]
    for _ in range(steps):
        step = env.step(policy.act(obs, deterministic=True))
        if step.done.any():
            raise RuntimeError("an episode ended before the time limit; build the env with video_env")
        frames.append(np.stack(env.render()))
        obs = step.obs
    video = np.stack(frames, axis=1)  # [K, T + 1, H, W, 3]
    return {task: video[i] for i, task in enumerate(TASK_NAMES)}


def gif_bytes(frames: np.ndarray, fps: int = 30) -> bytes:
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps),
                   loop=0)
    return buffer.getvalue()


def save_videos(videos: dict[str, np.ndarray], directory: Path, step: int, fps: int = 30) -> list[Path]:
    """Write `<task>_step<N>.gif` files into `directory` and return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for task, frames in videos.items():
        path = directory / f"{task}_step{step}.gif"
        path.write_bytes(gif_bytes(frames, fps))
        paths.append(path)
    return paths


def log_videos(tensorboard_dir: Path, videos: dict[str, np.ndarray], step: int, fps: int = 30) -> None:
    """Add each video to TensorBoard as `video/<task>`: an animated GIF in the Images tab."""
    from tensorboard.compat.proto.summary_pb2 import Summary
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(tensorboard_dir)) as writer:
        for task, frames in videos.items():
            _, height, width, channels = frames.shape
            image = Summary.Image(height=height, width=width, colorspace=channels,
                                  encoded_image_string=gif_bytes(frames, fps))
            writer.file_writer.add_summary(Summary(value=[Summary.Value(tag=f"video/{task}", image=image)]), step)

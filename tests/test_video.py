"""Recorded videos: one per task, the expected number of frames, the right way up, readable as GIFs and in
TensorBoard."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # before MuJoCo is imported by the modules below

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mtrl.envs import TASK_NAMES, Protocol
from mtrl.evaluation import RandomPolicy
from mtrl.video import log_videos, record_episodes, save_videos, video_env

SHORT = Protocol("short", max_episode_steps=12, fixed_goals=True, eval_episodes=1)


def upright(frame: np.ndarray) -> bool:
    """Meta-World's default camera sees a plain grey wall at the top of the picture and the robot's dark base
    and the floor at the bottom: the top rows are flat, the bottom rows are not."""
    pixels = frame.astype(float)
    return pixels[:4].std() < 10 and pixels[-4:].std() > 40


@pytest.fixture(scope="module")
def videos() -> dict[str, np.ndarray]:
    env = video_env(SHORT, seed=1, size=64)
    try:
        yield record_episodes(RandomPolicy(env.action_dim, seed=0), env)
    finally:
        env.close()


def test_one_video_per_task_with_one_frame_per_step_plus_the_reset(videos):
    assert list(videos) == list(TASK_NAMES)
    for frames in videos.values():
        assert frames.shape == (SHORT.max_episode_steps + 1, 64, 64, 3) and frames.dtype == np.uint8
        assert not np.array_equal(frames[0], frames[-1])  # the arm moved


def test_frames_are_the_right_way_up(videos):
    for task, frames in videos.items():
        assert upright(frames[0]), task
        assert not upright(frames[0][::-1]), task  # the check itself tells an upside-down picture apart


def test_gif_files_and_tensorboard_images(videos, tmp_path):
    paths = save_videos(videos, tmp_path / "videos", step=7)
    assert sorted(p.name for p in paths) == sorted(f"{t}_step7.gif" for t in TASK_NAMES)
    with Image.open(paths[0]) as gif:
        assert gif.n_frames == SHORT.max_episode_steps + 1
        assert upright(np.asarray(gif.convert("RGB")))

    log_videos(tmp_path / "tensorboard", videos, step=7)
    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert sorted(events.Tags()["images"]) == sorted(f"video/{t}" for t in TASK_NAMES)
    image = events.Images("video/reach-v3")[0]
    assert image.step == 7 and image.encoded_image_string[:6] == b"GIF89a"

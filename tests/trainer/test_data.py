"""Decoding a dataset once: odd and broken images are handled, never a crash."""

from pathlib import Path

import pytest
import torch
from PIL import Image

from services.trainer import data as data_module
from services.trainer.data import ImageTensors, load_split_data, place
from shared.datasets.imagefolder import DatasetError, scan_image_folder
from shared.datasets.splits import stratified_split
from shared.images import Geometry, decode_image


def write_images(folder: Path, count: int, mode: str = "RGB", size=(40, 30)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.new(mode, size, color=(i * 20) % 255 if mode in ("L", "P") else (i * 20 % 255, 100, 50)).save(
            folder / f"{i}.png"
        )


def test_images_of_any_mode_become_rgb_of_the_requested_size(tmp_path):
    for mode in ("L", "RGBA", "P", "CMYK"):
        path = tmp_path / f"x.{'jpg' if mode == 'CMYK' else 'png'}"
        Image.new(mode, (50, 20)).save(path)
        assert decode_image(path, Geometry(32, 32), 10**6).shape == (32, 32, 3)


def test_broken_and_oversized_images_are_skipped_and_counted(tmp_path):
    write_images(tmp_path / "a", 5)
    write_images(tmp_path / "b", 5, mode="L")
    (tmp_path / "a" / "truncated.png").write_bytes((tmp_path / "a" / "0.png").read_bytes()[:60])
    (tmp_path / "b" / "not-an-image.jpg").write_text("hello")
    write_images(tmp_path / "b" / "big", 1, size=(400, 400))  # over the 100,000 px limit below
    index = scan_image_folder(tmp_path)
    data = load_split_data(index, stratified_split(index.labels, 0), Geometry(16, 16), max_pixels=100_000)
    assert data.skipped_files == 3
    assert len(data.train) + len(data.val) + len(data.test) == 10
    assert data.train.images.shape[1:] == (3, 16, 16)


def test_a_split_left_without_readable_images_is_a_clear_error(tmp_path):
    for class_name in ("a", "b"):
        (tmp_path / class_name).mkdir()
        for i in range(3):
            (tmp_path / class_name / f"{i}.jpg").write_text("not an image")
    index = scan_image_folder(tmp_path)
    with pytest.raises(DatasetError, match="no readable images"):
        load_split_data(index, stratified_split(index.labels, 0), Geometry(16, 16), max_pixels=10**6)


def tiny_images() -> ImageTensors:
    return ImageTensors(torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.tensor([0, 1, 0, 1]))


def test_on_the_cpu_the_images_stay_where_they_are():
    data = tiny_images()
    assert place(data, torch.device("cpu")) is data


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize(
    ("fraction", "pin", "on_gpu", "pinned"),
    [(0.5, True, True, False), (0.0, True, False, True), (0.0, False, False, False)],
)
def test_on_cuda_the_images_move_to_the_gpu_or_wait_in_host_memory(fraction, pin, on_gpu, pinned):
    placed = place(tiny_images(), torch.device("cuda"), fraction, pin)
    assert placed.images.is_cuda == on_gpu and placed.labels.is_cuda == on_gpu
    if not on_gpu:
        assert placed.images.is_pinned() == pinned


def test_each_decoded_image_knows_its_file_when_others_are_skipped(tmp_path):
    write_images(tmp_path / "a", 6)
    write_images(tmp_path / "b", 6)
    for broken in ("a/1.png", "a/4.png", "b/2.png"):
        (tmp_path / broken).write_text("not an image")
    index = scan_image_folder(tmp_path)
    split = stratified_split(index.labels, 0)
    data = load_split_data(index, split, Geometry(16, 16), max_pixels=10**6)
    for name in ("train", "val", "test"):
        tensors = getattr(data, name)
        readable = [
            p
            for p in split[name]
            if index.paths[p].relative_to(tmp_path).as_posix() not in ("a/1.png", "a/4.png", "b/2.png")
        ]
        assert tensors.positions == readable
        assert tensors.labels.tolist() == [index.labels[p] for p in readable]
    assert sum(len(getattr(data, name).positions) for name in ("train", "val", "test")) == 9


def test_the_next_job_on_the_same_files_split_and_geometry_reuses_the_decoded_images(tmp_path):
    write_images(tmp_path / "a", 6)
    write_images(tmp_path / "b", 6)
    index = scan_image_folder(tmp_path)
    split = stratified_split(index.labels, 0)
    first = load_split_data(index, split, Geometry(16, 16), max_pixels=10**6)
    assert load_split_data(scan_image_folder(tmp_path), split, Geometry(16, 16), max_pixels=10**6) is first
    # Another geometry, another split: decoded again.
    assert load_split_data(index, split, Geometry(16, 24), max_pixels=10**6) is not first
    other_split = stratified_split(index.labels, 1)
    assert load_split_data(index, other_split, Geometry(16, 16), max_pixels=10**6) is not first
    # A file replaced under the same name: its new pixels, not the kept ones.
    before = load_split_data(index, split, Geometry(16, 16), max_pixels=10**6)
    position = before.train.positions[0]
    Image.new("RGB", (40, 30), color=(255, 255, 255)).save(index.paths[position])
    after = load_split_data(scan_image_folder(tmp_path), split, Geometry(16, 16), max_pixels=10**6)
    assert after is not before
    assert (after.train.images[0] == 255).all() and not (before.train.images[0] == 255).all()


def test_decoded_images_too_large_to_keep_are_decoded_again(tmp_path, monkeypatch):
    write_images(tmp_path / "a", 6)
    write_images(tmp_path / "b", 6)
    index = scan_image_folder(tmp_path)
    split = stratified_split(index.labels, 0)
    monkeypatch.setattr(data_module, "KEPT_DECODED_BYTES", 12 * 3 * 16 * 16 - 1)  # one byte short of all 12
    first = load_split_data(index, split, Geometry(16, 16), max_pixels=10**6)
    assert load_split_data(index, split, Geometry(16, 16), max_pixels=10**6) is not first
